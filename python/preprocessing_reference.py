#!/usr/bin/env python3
"""Independent reference of evaluation-mode preprocessing (docs/preprocessing.md#steps), written
with nibabel, numpy and scipy only. Used two ways:

  preprocessing_reference.py one INPUT OUT.npy --depth T --size S [--margin 6] [--mask MASK]
  preprocessing_reference.py bench --depth T --size S --threads N --repeat R FILE...   (prints JSON timing)

Steps: RAS+ by nibabel.as_closest_canonical; foreground = mask > 0 or voxels != 0; crop
[max(0, lo-m), min(n, hi+1+m)); depth axis = shortest extent of P = [Z, X, Y] (first on ties);
centre square crop, offset floor(|h-w|/2); clip to the 1st/99th percentile (numpy linear);
scipy.ndimage.zoom(order=1, grid_mode=False) to (T, S, S); z-score with the unbiased std.
"""
import argparse, json, sys, time

import nibabel as nib
import numpy as np
from scipy import ndimage


def load_ras(path):
    img = nib.load(path)
    if len(img.shape) == 4 and img.shape[3] == 1:
        img = img.slicer[..., 0]
    img = nib.as_closest_canonical(img)
    return np.asarray(img.get_fdata(dtype=np.float64))


def preprocess(path, depth, size, margin=6, mask=None):
    vol = load_ras(path)
    vol[~np.isfinite(vol)] = 0
    fg = (load_ras(mask) > 0) if mask else (vol != 0)
    idx = np.argwhere(fg)
    if idx.size == 0:
        raise ValueError(f"{path}: empty foreground")
    lo, hi = idx.min(0), idx.max(0)
    sl = tuple(slice(max(0, l - margin), min(n, h + 1 + margin)) for l, h, n in zip(lo, hi, vol.shape))
    a = vol[sl]
    p = np.transpose(a, (2, 0, 1))  # [Z, X, Y]
    k = int(np.argmin(p.shape))
    if k == 1:
        p = np.transpose(p, (1, 0, 2))  # [X, Z, Y]
    elif k == 2:
        p = np.transpose(p, (2, 0, 1))  # [Y, Z, X]
    d, h, w = p.shape
    side = min(h, w)
    off = abs(h - w) // 2
    p = p[:, off:off + side, :] if h > w else p[:, :, off:off + side]
    lo_v, hi_v = np.percentile(p, [1, 99])
    p = np.clip(p, lo_v, hi_v)
    p = ndimage.zoom(p, (depth / p.shape[0], size / p.shape[1], size / p.shape[2]), order=1, grid_mode=False)
    assert p.shape == (depth, size, size), p.shape
    m, s = p.mean(), p.std(ddof=1)
    if s < 1e-8:
        s = 1.0
    return ((p - m) / (s + 1e-8)).astype(np.float32)


def _work(args):
    path, depth, size = args
    return preprocess(path, depth, size).shape


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    one = sub.add_parser("one")
    one.add_argument("input")
    one.add_argument("out")
    one.add_argument("--depth", type=int, required=True)
    one.add_argument("--size", type=int, required=True)
    one.add_argument("--margin", type=int, default=6)
    one.add_argument("--mask")
    b = sub.add_parser("bench")
    b.add_argument("files", nargs="+")
    b.add_argument("--depth", type=int, default=144)
    b.add_argument("--size", type=int, default=160)
    b.add_argument("--threads", type=int, default=1)
    b.add_argument("--repeat", type=int, default=1)
    a = ap.parse_args()
    if a.cmd == "one":
        np.save(a.out, preprocess(a.input, a.depth, a.size, a.margin, a.mask))
        return
    jobs = [(f, a.depth, a.size) for f in a.files] * a.repeat
    _work(jobs[0])  # warm imports and caches
    t0 = time.perf_counter()
    if a.threads > 1:
        from multiprocessing import Pool
        with Pool(a.threads) as pool:
            pool.map(_work, jobs, chunksize=1)
    else:
        for j in jobs:
            _work(j)
    dt = time.perf_counter() - t0
    json.dump({"volumes": len(jobs), "seconds": dt}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
