"""Writes tests/fixtures/reference_micro.pth.tar: a checkpoint in the reference implementation's
layout, saved by PyTorch's own torch.save from modules built as the project's docs describe the
encoder (tubelet Conv3d, fixed 3-D sin-cos positions, pre-norm blocks with one fused qkv, exact
GELU, a final LayerNorm, eps 1e-6) and the JEPA predictor, wrapped in DistributedDataParallel-style
`module.backbone.` names, with an AdamW state and scalars beside them. Also writes the encoder's
input and its output tokens (reference_micro_input.npy, reference_micro_tokens.npy), so that the
Rust test can check an imported encoder against PyTorch's forward pass.

    python python/reference_checkpoint.py tests/fixtures      # needs torch and numpy
"""

import math
import sys
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DIM, DEPTH, HEADS, PATCH = 24, 1, 2, 4
PRED_DIM, PRED_DEPTH = 12, 1
INPUT = (8, 8, 8)  # T, H, W
GRID = tuple(s // PATCH for s in INPUT)


def sincos_1d(pos, width):
    half = width // 2
    omega = 1.0 / 10000 ** (np.arange(half, dtype=np.float64) / half)
    out = np.outer(pos, omega)
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)


def sincos_3d(grid, dim):
    a = 2 * math.ceil(dim / 6)
    t, h, w = np.meshgrid(*[np.arange(g, dtype=np.float64) for g in grid], indexing="ij")
    parts = [sincos_1d(x.reshape(-1), a) for x in (t, h, w)]
    return torch.tensor(np.concatenate(parts, axis=1)[:, :dim], dtype=torch.float32)[None]


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        return self.proj(y.transpose(1, 2).reshape(b, n, d))


class Mlp(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.fc1 = nn.Linear(dim, 4 * dim)
        self.fc2 = nn.Linear(4 * dim, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Conv3d(1, DIM, kernel_size=PATCH, stride=PATCH)


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.patch_embed = PatchEmbed()
        self.pos_embed = nn.Parameter(sincos_3d(GRID, DIM), requires_grad=False)
        self.blocks = nn.ModuleList([Block(DIM, HEADS) for _ in range(DEPTH)])
        self.norm = nn.LayerNorm(DIM, eps=1e-6)

    def forward(self, x):
        x = self.patch_embed.proj(x).flatten(2).transpose(1, 2) + self.pos_embed
        for b in self.blocks:
            x = b(x)
        return self.norm(x)


class Predictor(nn.Module):
    def __init__(self):
        super().__init__()
        self.predictor_embed = nn.Linear(DIM, PRED_DIM)
        self.mask_tokens = nn.ParameterList([nn.Parameter(torch.zeros(1, 1, PRED_DIM))])
        self.predictor_pos_embed = nn.Parameter(sincos_3d(GRID, PRED_DIM), requires_grad=False)
        self.predictor_blocks = nn.ModuleList([Block(PRED_DIM, HEADS) for _ in range(PRED_DEPTH)])
        self.predictor_norm = nn.LayerNorm(PRED_DIM, eps=1e-6)
        self.predictor_proj = nn.Linear(PRED_DIM, DIM)


class Wrapped(nn.Module):
    """`module.backbone.` before every name, as the reference's DDP-wrapped modules save them."""

    def __init__(self, inner):
        super().__init__()
        self.module = nn.Module()
        self.module.backbone = inner


def randomised(m, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in m.named_parameters():
            if "pos_embed" not in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return m


def main(out):
    torch.manual_seed(0)
    enc, target, pred = randomised(Encoder(), 1), randomised(Encoder(), 2), randomised(Predictor(), 3)
    opt = torch.optim.AdamW(list(enc.parameters()) + list(pred.parameters()), lr=1e-4)
    x = torch.randn(1, 1, *INPUT, generator=torch.Generator().manual_seed(4))
    loss = enc(x).pow(2).mean()
    loss.backward()
    opt.step()  # the optimiser state holds moments, as a real checkpoint's does
    state = lambda m: OrderedDict(Wrapped(m).state_dict())
    torch.save(
        {
            "encoder": state(enc),
            "predictor": state(pred),
            "target_encoder": state(target),
            "opt": opt.state_dict(),
            "scaler": None,
            "epoch": 7,
            "loss": float(loss.detach()),
            "batch_size": 2,
            "world_size": 1,
            "lr": 1e-4,
        },
        f"{out}/reference_micro.pth.tar",
    )
    with torch.no_grad():
        tokens = enc(x)
    np.save(f"{out}/reference_micro_input.npy", x.numpy().astype(np.float32))
    np.save(f"{out}/reference_micro_tokens.npy", tokens[0].numpy().astype(np.float32))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures")
