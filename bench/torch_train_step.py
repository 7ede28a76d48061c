"""PyTorch baseline for `brainssl bench train`: the same 3D-ViT pretraining step, same shapes.

Builds the models of docs/method.md#model (Conv3d tubelet embedding, fixed sin-cos positions,
pre-norm blocks, mask-token predictor/decoder), draws reference masks (int(0.75 N) one-token
blocks with replacement, shared by the batch), and times forward + backward + global-norm clipping
per module + AdamW (+ EMA for JEPA). SL-MAE steps are all spectral, as on the Rust side.

With --mode embed it times the encoder's forward pass alone (no gradients) on whole volumes, the
cost of `brainssl embed` and of caching a frozen probe's tokens.

Prints one JSON line: {"ms": [...], "median_ms": ..., "peak_rss_mb": ..., "torch": version}.
Written for this project from the descriptions in docs/method.md; not taken from the reference code.
"""
import argparse
import json
import math
import resource
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def sincos_1d(pos, width):
    half = width // 2
    omega = 1.0 / 10000 ** (np.arange(half, dtype=np.float64) / half)
    out = np.outer(pos, omega)
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)


def sincos_3d(grid, dim):
    a = 2 * math.ceil(dim / 6)
    t, h, w = np.meshgrid(*[np.arange(g) for g in grid], indexing="ij")
    emb = np.concatenate([sincos_1d(x.reshape(-1), a) for x in (t, h, w)], axis=1)[:, :dim]
    return torch.tensor(emb, dtype=torch.float32).unsqueeze(0)


class Block(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.fc1 = nn.Linear(dim, 4 * dim)
        self.fc2 = nn.Linear(4 * dim, dim)

    def forward(self, x):
        b, n, d = x.shape
        qkv = self.qkv(self.norm1(x)).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        x = x + self.proj(a.transpose(1, 2).reshape(b, n, d))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class Encoder(nn.Module):
    def __init__(self, dim, depth, heads, patch, grid):
        super().__init__()
        self.patch_embed = nn.Conv3d(1, dim, kernel_size=patch, stride=patch)
        self.register_buffer("pos", sincos_3d(grid, dim))
        self.blocks = nn.ModuleList([Block(dim, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x, keep=None):
        x = self.patch_embed(x).flatten(2).transpose(1, 2) + self.pos
        if keep is not None:
            x = x[:, keep]
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)


class Head(nn.Module):
    def __init__(self, in_dim, dim, depth, heads, out_dim, grid):
        super().__init__()
        self.embed = nn.Linear(in_dim, dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.register_buffer("pos", sincos_3d(grid, dim))
        self.blocks = nn.ModuleList([Block(dim, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.proj = nn.Linear(dim, out_dim)

    def forward(self, z, ctx, tgt):
        b = z.shape[0]
        x = self.embed(z) + self.pos[:, ctx]
        q = self.mask_token.expand(b, len(tgt), -1) + self.pos[:, tgt]
        h = torch.cat([x, q], 1)
        for blk in self.blocks:
            h = blk(h)
        return self.proj(self.norm(h)[:, -len(tgt):])


def patchify(x, p):
    b, c, t, h, w = x.shape
    x = x.reshape(b, c, t // p, p, h // p, p, w // p, p).permute(0, 2, 4, 6, 3, 5, 7, 1)
    return x.reshape(b, -1, p ** 3 * c)


def unpatchify(tok, p, grid):
    b = tok.shape[0]
    gt, gh, gw = grid
    return tok.reshape(b, gt, gh, gw, p, p, p, 1).permute(0, 7, 1, 4, 2, 5, 3, 6).reshape(b, 1, gt * p, gh * p, gw * p)


def high_pass(shape, cutoff):
    f = [torch.fft.fftfreq(n, dtype=torch.float64) for n in shape]
    ft, fh, fw = torch.meshgrid(*f, indexing="ij")
    r = torch.sqrt(ft ** 2 + fh ** 2 + fw ** 2)
    return (r / r.max() >= cutoff).float()


def spectral_loss(recon, x, mask):
    def spec(v):
        v = v[:, 0]
        v = (v - v.mean(dim=(1, 2, 3), keepdim=True)) / (v.std(dim=(1, 2, 3), keepdim=True) + 1e-6)
        return torch.fft.fftn(v, dim=(1, 2, 3)) * mask
    a, b = spec(recon), spec(x)
    return ((torch.log1p(a.abs() + 1e-6) - torch.log1p(b.abs() + 1e-6)) ** 2).mean()


def vcr(z, gamma=1.0, eps=1e-4):
    std = torch.sqrt(z.var(dim=0) + eps)
    var = F.relu(gamma - std).mean()
    x = z.reshape(-1, z.shape[-1])
    x = x - x.mean(0)
    c = x.T @ x / (x.shape[0] - 1)
    off = (c ** 2).sum() - (torch.diagonal(c) ** 2).sum()
    return var + 0.1 * off / z.shape[-1]


def groups(model):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if name.endswith("bias") or p.ndim == 1 else decay).append(p)
    return [{"params": decay}, {"params": no_decay, "weight_decay": 0.0}]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--objective", required=True, choices=["mae", "sl-mae", "jepa", "vcr-jepa"])
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--depth", type=int, required=True)
    ap.add_argument("--size", type=int, required=True)
    ap.add_argument("--patch", type=int, default=8)
    ap.add_argument("--dim", type=int, required=True)
    ap.add_argument("--enc-depth", type=int, required=True)
    ap.add_argument("--heads", type=int, required=True)
    ap.add_argument("--pred-dim", type=int, required=True)
    ap.add_argument("--pred-depth", type=int, required=True)
    ap.add_argument("--pred-heads", type=int, required=True)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--mode", default="train", choices=["train", "embed"])
    ap.add_argument("--precision", default="f32", choices=["f32", "bf16"],
                    help="bf16: forward and loss under torch.autocast(bfloat16), as brainssl's bf16 mode")
    a = ap.parse_args()
    torch.manual_seed(0)
    if a.device == "cpu":
        torch.set_num_threads(a.threads)
        torch.set_num_interop_threads(1)
    dev = torch.device(a.device)
    p = a.patch
    grid = (a.depth // p, a.size // p, a.size // p)
    n = grid[0] * grid[1] * grid[2]
    mae = a.objective in ("mae", "sl-mae")
    enc = Encoder(a.dim, a.enc_depth, a.heads, p, grid).to(dev)
    if a.mode == "embed":
        return embed(a, enc, dev)
    head = Head(a.dim, a.pred_dim, a.pred_depth, a.pred_heads, p ** 3 if mae else a.dim, grid).to(dev)
    teacher = None
    if not mae:
        teacher = Encoder(a.dim, a.enc_depth, a.heads, p, grid).to(dev)
        teacher.load_state_dict(enc.state_dict())
        for q in teacher.parameters():
            q.requires_grad_(False)
    opt = torch.optim.AdamW(groups(enc) + groups(head), lr=5e-4, betas=(0.9, 0.975), eps=1e-8, weight_decay=0.005)
    x = torch.randn(a.batch, 1, a.depth, a.size, a.size, device=dev)
    hp = high_pass((a.depth, a.size, a.size), 0.3).to(dev)
    rng = np.random.default_rng(0)
    npred = int(0.75 * n)
    times = []
    for i in range(a.warmup + a.steps):
        keep = np.ones(n, dtype=bool)
        keep[rng.integers(0, n, npred)] = False
        ctx = torch.tensor(np.nonzero(keep)[0], device=dev)
        tgt = torch.tensor(np.nonzero(~keep)[0], device=dev)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=a.precision == "bf16"):
            z = enc(x, ctx)
            pred = head(z, ctx, tgt)
        pred, z = pred.float(), z.float()
        if mae:
            patches = patchify(x, p)
            loss = 0.5 * ((pred - patches[:, tgt]) ** 2).mean()
            if a.objective == "sl-mae":
                full = patches.detach().clone()
                full[:, tgt] = pred
                loss = loss + 0.1 * spectral_loss(unpatchify(full, p, grid), x, hp)
        else:
            with torch.no_grad(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=a.precision == "bf16"):
                h = F.layer_norm(teacher(x).float(), (a.dim,))[:, tgt]
            loss = (pred - h).abs().mean()
            if a.objective == "vcr-jepa":
                loss = loss + 0.25 * vcr(torch.cat([z, h], 1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(enc.parameters(), 1.0)
        torch.nn.utils.clip_grad_norm_(head.parameters(), 1.0)
        opt.step()
        if teacher is not None:
            with torch.no_grad():
                for pt, ps in zip(teacher.parameters(), enc.parameters()):
                    pt.mul_(0.998).add_(ps.detach(), alpha=0.002)
        loss.item()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        if i >= a.warmup:
            times.append((time.perf_counter() - t0) * 1e3)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = {"ms": times, "median_ms": float(np.median(times)), "peak_rss_mb": peak, "torch": torch.__version__}
    if dev.type == "cuda":
        out["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2 ** 20
    print(json.dumps(out))


def embed(a, enc, dev):
    x = torch.randn(a.batch, 1, a.depth, a.size, a.size, device=dev)
    times = []
    bf16 = torch.autocast(dev.type, dtype=torch.bfloat16, enabled=a.precision == "bf16")
    with torch.inference_mode(), bf16:
        for i in range(a.warmup + a.steps):
            if dev.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            enc(x).float().sum().item()
            if dev.type == "cuda":
                torch.cuda.synchronize()
            if i >= a.warmup:
                times.append((time.perf_counter() - t0) * 1e3)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = {"ms": times, "median_ms": float(np.median(times)), "peak_rss_mb": peak, "torch": torch.__version__}
    if dev.type == "cuda":
        out["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2 ** 20
    print(json.dumps(out))


if __name__ == "__main__":
    main()
