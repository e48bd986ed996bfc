"""Random affine augmentation throughput: cvtool vs albumentations, PyTorch, OpenCV, scipy.

The workload (issue 8): 10,000 Fashion-MNIST training images (28x28 uint8),
each with its own random affine transform -- rotation +-15 degrees, zoom
0.9..1.1, translation +-2 px -- plus a horizontal flip with probability 0.5;
bilinear interpolation, zero fill, uint8 in and out.

Methods, all in the same run, each in a forked child (benchmarks/_common.py):

- cvtool       ``augment.random_affine_batch`` (sampling + matrices + batched warp);
               also the warp alone, and float32 (N, H, W, 1) input (train-cnn's case)
- torch        batched ``affine_grid`` + ``grid_sample`` (align_corners=True, zeros
               padding), uint8 -> float32 -> uint8 included; with --threads
               intra-op threads (default 2) and again with 1 (on a loaded
               2-core machine OpenMP threads that spin can make 2 slower than 1)
- opencv       ``cv2.warpAffine`` per image in a Python loop (INTER_LINEAR, BORDER_CONSTANT)
- scipy        ``scipy.ndimage.affine_transform`` per image (order=1, grid-constant)
- albumentations  ``Compose([HorizontalFlip(p=0.5), Affine(...)])`` per image

torch, opencv and scipy get the same matrices as cvtool (sampled and built by
``cvtool.augment``, inside their timed region), so their outputs can be
compared: the mean absolute difference to cvtool is printed as a check.
Each child warms up on 64 images, then times the 10,000; the median of
--repeat runs is reported. Usage::

    python benchmarks/bench_augment.py [--n 10000] [--repeat 5] [--threads 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import report, run_isolated  # noqa: E402
from cvtool import augment as aug  # noqa: E402

RANGES = dict(rotation=15, zoom=0.1, translate=2, hflip=0.5)


def _matrices(n, seed):
    rng = np.random.default_rng(seed)
    params = aug.sample_params(n, aug.make_ranges(**RANGES), rng)
    return aug.affine_matrices(params, (28, 28))[1]  # inverse: output -> input


def run_cvtool(x, seed):
    rng = np.random.default_rng(seed)
    kw = dict(rotation=15, shift=2, zoom=0.1, hflip=0.5)
    aug.random_affine_batch(x[:64], np.random.default_rng(0), **kw)  # warm-up
    t0 = time.perf_counter()
    out = aug.random_affine_batch(x, rng, **kw)
    return time.perf_counter() - t0, out


def run_cvtool_float(x, seed):
    """The train-cnn case: float32 (N, H, W, 1) images in [0, 1] (not compared: other dtype)."""
    xf = (x / np.float32(255)).astype(np.float32)[..., None]
    rng = np.random.default_rng(seed)
    kw = dict(rotation=15, shift=2, zoom=0.1, hflip=0.5)
    aug.random_affine_batch(xf[:64], np.random.default_rng(0), **kw)
    t0 = time.perf_counter()
    out = aug.random_affine_batch(xf, rng, **kw)
    return time.perf_counter() - t0, out


def run_cvtool_warp(x, seed):
    """The resampling alone, matrices given (what the others below also get)."""
    inverse = _matrices(len(x), seed)
    aug.warp_affine(x[:64], inverse[:64])
    t0 = time.perf_counter()
    out = aug.warp_affine(x, inverse)
    return time.perf_counter() - t0, out


def run_torch(x, seed, threads):
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(threads)

    def go(x):
        inverse = _matrices(len(x), seed)
        n, h, w = x.shape
        # pixel centres -> [-1, 1] (align_corners=True): u = 2x/(W-1) - 1
        norm = np.array([[2 / (w - 1), 0, -1], [0, 2 / (h - 1), -1], [0, 0, 1]])
        theta = (norm @ inverse @ np.linalg.inv(norm))[:, :2, :]
        xt = torch.from_numpy(x).unsqueeze(1).float()  # (N, 1, H, W)
        grid = F.affine_grid(torch.from_numpy(theta).float(), list(xt.shape), align_corners=True)
        y = F.grid_sample(xt, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
        return y.add_(0.5).clamp_(0, 255).to(torch.uint8).squeeze(1).numpy()

    go(x[:64])
    t0 = time.perf_counter()
    out = go(x)
    return time.perf_counter() - t0, out


def run_opencv(x, seed):
    import cv2

    cv2.setNumThreads(1)  # per-image loop: threads only add overhead at 28x28

    def go(x):
        inverse = _matrices(len(x), seed)[:, :2, :]
        out = np.empty_like(x)
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        for i in range(len(x)):
            out[i] = cv2.warpAffine(x[i], inverse[i], (28, 28), flags=flags,
                                    borderMode=cv2.BORDER_CONSTANT, borderValue=0)  # fmt: skip
        return out

    go(x[:64])
    t0 = time.perf_counter()
    out = go(x)
    return time.perf_counter() - t0, out


def run_scipy(x, seed):
    from scipy import ndimage

    def go(x):
        inverse = _matrices(len(x), seed)
        out = np.empty_like(x)
        for i in range(len(x)):
            a = inverse[i]
            m = np.array([[a[1, 1], a[1, 0]], [a[0, 1], a[0, 0]]])
            out[i] = ndimage.affine_transform(x[i], m, offset=(a[1, 2], a[0, 2]), order=1,
                                              mode="grid-constant", cval=0)  # fmt: skip
        return out

    go(x[:64])
    t0 = time.perf_counter()
    out = go(x)
    return time.perf_counter() - t0, out


def run_albumentations(x, seed):
    import albumentations as A

    transform = A.Compose([
        A.HorizontalFlip(p=0.5),
        A.Affine(rotate=(-15, 15), scale=(0.9, 1.1), translate_px=(-2, 2),
                 interpolation=1, border_mode=0, fill=0, p=1.0),
    ], seed=seed)  # fmt: skip

    def go(x):
        return np.stack([transform(image=img)["image"] for img in x])

    go(x[:64])
    t0 = time.perf_counter()
    out = go(x)
    return time.perf_counter() - t0, out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip", default="", help="comma-separated methods to skip")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    from cvtool.data.datasets import load_dataset

    x = np.ascontiguousarray(load_dataset("fashion-mnist").x_train[: args.n])
    methods = {
        "cvtool": (run_cvtool, (x, args.seed)),
        "cvtool-warp-only": (run_cvtool_warp, (x, args.seed)),
        "cvtool-float32-nhwc": (run_cvtool_float, (x, args.seed)),
        "torch-affine_grid": (run_torch, (x, args.seed, args.threads)),
        "torch-affine_grid-1thread": (run_torch, (x, args.seed, 1)),
        "opencv-loop": (run_opencv, (x, args.seed)),
        "scipy-loop": (run_scipy, (x, args.seed)),
        "albumentations": (run_albumentations, (x, args.seed)),
    }
    skip = set(filter(None, args.skip.split(",")))
    rows, outputs = [], {}
    for name, (fn, fargs) in methods.items():
        if name in skip:
            continue
        try:
            import importlib

            mod = {"torch-affine_grid": "torch", "torch-affine_grid-1thread": "torch",
                   "opencv-loop": "cv2", "scipy-loop": "scipy",
                   "albumentations": "albumentations"}.get(name)  # fmt: skip
            if mod:
                importlib.import_module(mod)
        except ImportError:
            print(f"{name}: not installed, skipped")
            continue
        times = []
        for _ in range(args.repeat):
            (seconds, out), _, peak = run_isolated(fn, *fargs)
            times.append(seconds)
        outputs[name] = out
        med = statistics.median(times)
        rows.append({"name": name, "seconds": med, "img_per_s": round(args.n / med),
                     "min_s": min(times), "max_s": max(times), "peak_mb": peak})  # fmt: skip
    for r in rows:  # same matrices -> outputs comparable (albumentations samples its own)
        if r["name"] in ("torch-affine_grid", "opencv-loop", "scipy-loop", "cvtool-warp-only",
                         "torch-affine_grid-1thread"):  # fmt: skip
            diff = np.abs(outputs[r["name"]].astype(int) - outputs["cvtool"].astype(int))
            r["mean_abs_diff_vs_cvtool"] = round(float(diff.mean()), 4)
            r["max_abs_diff_vs_cvtool"] = int(diff.max())
    title = (f"random affine + hflip, {args.n} Fashion-MNIST 28x28 uint8, median of "
             f"{args.repeat}; ratio = seconds / torch seconds")  # fmt: skip
    report(title, rows, "torch-affine_grid", args.json,
           columns=("seconds", "img_per_s", "min_s", "max_s", "peak_mb"))  # fmt: skip
    by = {r["name"]: r["seconds"] for r in rows}
    for other in ("torch-affine_grid", "torch-affine_grid-1thread", "opencv-loop", "albumentations",
                  "scipy-loop"):  # fmt: skip
        if "cvtool" in by and other in by:
            print(f"cvtool speed / {other} speed = {by[other] / by['cvtool']:.2f}x")


if __name__ == "__main__":
    main()
