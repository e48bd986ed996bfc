"""Conv2D and MaxPool2D, forward + backward: cvtool (NumPy) against PyTorch on the CPU.

The layer shapes of three networks (float32, training mode, input gradient included
except for a first layer, as the models run them):

- ``det-*``: the grid detector (``cvtool.detect.train.DETECTOR``, batch 32, 64x64x1);
- ``seg-*``: the segmenter (``cvtool.segment.SEGMENTER``, batch 32, 64x64x1, 11 classes);
- ``ch6-*``: nielsen-ch6 on Fashion-MNIST (batch 128, 28x28x1).

Each side runs in its own long-lived child process (``--worker``): cvtool from this
checkout, PyTorch, and optionally a second cvtool from ``--baseline DIR`` (another
checkout, say /work/main, imported through PYTHONPATH). The parent asks the children
for one timing at a time, cycling through the sides, so background load on a shared
machine hits every side alike. A timing is the median of ``--iters`` forward+backward
steps after two warm-up steps; the table shows the median over ``--repeat`` rounds and
the ratio to PyTorch; ``best`` is the ratio of the fastest rounds, steadier when
other work loads the machine. Both libraries run on ``--threads`` threads (cvtool: its conv
workers with one BLAS thread each, as training runs; PyTorch: ``set_num_threads``).

    python benchmarks/bench_conv_layers.py                       # about a minute
    python benchmarks/bench_conv_layers.py --baseline /work/main --only det

Not a test: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

# name: (kind, batch, H, W, C_in, C_out or pool, kernel, padding, needs dx)
SHAPES = {
    "det-conv1": ("conv", 32, 64, 64, 1, 16, 3, 1, False),
    "det-pool1": ("pool", 32, 64, 64, 16, 2, 2, 0, True),
    "det-conv2": ("conv", 32, 32, 32, 16, 32, 3, 1, True),
    "det-pool2": ("pool", 32, 32, 32, 32, 2, 2, 0, True),
    "det-conv3": ("conv", 32, 16, 16, 32, 64, 3, 1, True),
    "det-conv4": ("conv", 32, 8, 8, 64, 64, 3, 1, True),
    "det-head": ("conv", 32, 8, 8, 64, 15, 1, 0, True),
    "seg-conv1": ("conv", 32, 64, 64, 1, 16, 3, 1, False),
    "seg-conv2": ("conv", 32, 32, 32, 16, 32, 3, 1, True),
    "seg-conv3": ("conv", 32, 16, 16, 32, 32, 3, 1, True),
    "seg-conv4": ("conv", 32, 8, 8, 32, 64, 3, 1, True),
    "seg-up16": ("conv", 32, 16, 16, 96, 32, 3, 1, True),
    "seg-up32": ("conv", 32, 32, 32, 64, 32, 3, 1, True),
    "seg-up64": ("conv", 32, 64, 64, 48, 16, 3, 1, True),
    "seg-head": ("conv", 32, 64, 64, 16, 11, 1, 0, True),
    "ch6-conv1": ("conv", 128, 28, 28, 1, 20, 5, 0, False),
    "ch6-pool1": ("pool", 128, 24, 24, 20, 2, 2, 0, True),
    "ch6-conv2": ("conv", 128, 12, 12, 20, 40, 5, 0, True),
    "ch6-pool2": ("pool", 128, 8, 8, 40, 2, 2, 0, True),
}


def _data(name):
    kind, n, h, w, c, f, k, p, _ = SHAPES[name]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, h, w, c), np.float32)
    if kind == "conv":
        ho, wo = h + 2 * p - k + 1, w + 2 * p - k + 1
        dout = rng.standard_normal((n, ho, wo, f), np.float32)
    else:
        dout = rng.standard_normal((n, h // f, w // f, c), np.float32)
    return x, dout


def _timed(step, iters):
    for _ in range(2):
        step()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _cvtool_step(name, threads):
    from cvtool.nn.conv import Conv2D, MaxPool2D

    kind, n, h, w, c, f, k, p, need_dx = SHAPES[name]
    x, dout = _data(name)
    if kind == "conv":
        layer = Conv2D(f, k, padding=p)
        layer.build((h, w, c), np, np.float32, np.random.default_rng(0))
        layer.need_dx = need_dx
    else:
        layer = MaxPool2D(f)
        layer.build((h, w, c), np, np.float32)

    def step():
        layer.forward(x, training=True)
        layer.backward(dout)

    return step


def _torch_step(name, threads):
    import torch

    kind, n, h, w, c, f, k, p, need_dx = SHAPES[name]
    x, dout = _data(name)
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    dt = torch.from_numpy(np.ascontiguousarray(dout.transpose(0, 3, 1, 2)))
    xt.requires_grad_(need_dx)
    layer = torch.nn.Conv2d(c, f, k, padding=p) if kind == "conv" else torch.nn.MaxPool2d(f)

    def step():
        layer.zero_grad(set_to_none=True)
        xt.grad = None
        layer(xt).backward(dt)

    return step


def worker(side: str, threads: int) -> None:
    """Answer 'name iters' lines on stdin with median seconds on stdout, until EOF."""
    if side == "torch":
        import torch

        torch.set_num_threads(threads)
        make, context = _torch_step, None
    else:
        os.environ["CVTOOL_THREADS"] = str(threads)
        from cvtool.nn._parallel import training_threads

        make, context = _cvtool_step, training_threads(np)
    if context is not None:
        context.__enter__()
    steps = {}
    for line in sys.stdin:
        name, iters = line.split()
        if name not in steps:
            steps[name] = make(name, threads)
        print(_timed(steps[name], int(iters)), flush=True)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5, help="rounds; the median is shown")
    ap.add_argument("--iters", type=int, default=5, help="timed steps per round (median)")
    ap.add_argument("--only", default="", help="run shapes whose name contains this")
    ap.add_argument("--baseline", default="", help="another checkout to time as 'before'")
    ap.add_argument("--json", default="", help="also write the rows here")
    ap.add_argument("--worker", default="", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        worker(a.worker, a.threads)
        return
    sides = {"cvtool": str(ROOT), "torch": str(ROOT)}
    if a.baseline:
        sides["before"] = str(Path(a.baseline).resolve())
    procs = {}
    for side, path in sides.items():
        env = dict(os.environ, PYTHONPATH=path)
        cmd = [sys.executable, __file__, "--worker", "torch" if side == "torch" else "cvtool",
               "--threads", str(a.threads)]  # fmt: skip
        procs[side] = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       text=True, env=env, cwd=path)  # fmt: skip
    names = [s for s in SHAPES if a.only in s]
    times = {(s, n): [] for s in sides for n in names}
    for _ in range(a.repeat):
        for n in names:
            for side, proc in procs.items():
                proc.stdin.write(f"{n} {a.iters}\n")
                proc.stdin.flush()
                times[side, n].append(float(proc.stdout.readline()))
    for proc in procs.values():
        proc.stdin.close()
        proc.wait()
    rows = []
    labels = {"cvtool": "cvtool", "before": "before"}
    head = f"{'shape':<11} {'torch ms':>9}" + "".join(
        f" {labels[s] + ' ms':>10} {'ratio':>6} {'best':>6}" for s in labels if s in sides
    )
    print(f"Conv2D / MaxPool2D forward+backward, {a.threads} threads, medians of {a.repeat}")
    print(head)
    for n in names:
        med = {s: statistics.median(times[s, n]) for s in sides}
        best = {s: min(times[s, n]) for s in sides}
        row = {"name": n, **{f"{s}_ms": 1e3 * v for s, v in med.items()}}
        line = f"{n:<11} {1e3 * med['torch']:9.2f}"
        for s in labels:
            if s in sides:
                row[f"{s}_ratio"] = med[s] / med["torch"]
                row[f"{s}_best_ratio"] = best[s] / best["torch"]
                line += f" {1e3 * med[s]:10.2f} {row[f'{s}_ratio']:6.2f}"
                line += f" {row[f'{s}_best_ratio']:6.2f}"
        rows.append(row)
        print(line)
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
