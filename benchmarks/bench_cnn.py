"""One training epoch of the course's CNNs: cvtool (NumPy) against PyTorch on the CPU.

Same architecture (a preset from ``cvtool.nn.spec``), Adam (eta 0.001),
batch 128, log-likelihood / cross-entropy over softmax, shuffled mini-batches,
Fashion-MNIST training images (``--images`` for fewer). Each run is a forked
child (``benchmarks/_common.run_isolated``), so its peak memory is its own;
the two libraries alternate run by run so that load from other processes hits
both alike, and the table shows medians over ``--repeat`` runs.

Reported per library and preset: epoch seconds (the training loop only, no
evaluation), ratio to PyTorch, the CPU seconds the epoch used (all threads; with
``--threads 1`` the figure least disturbed by other processes), peak extra resident memory of training (MiB;
includes the float copy of the images each library makes), and inference
images per second on the 10,000 test images (batches of 2,000, no gradients)
with that run's own peak memory (``infer_peak_mb``).

    python benchmarks/bench_cnn.py                        # both presets, 60k images, 3 runs
    python benchmarks/bench_cnn.py --images 6000 --repeat 1 --json out.json
    python benchmarks/bench_cnn.py --threads 1     # both libraries on one thread

Not a test: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import report, run_isolated  # noqa: E402

BATCH = 128
EVAL_BATCH = 2000


def _data(images: int):
    from cvtool.data.datasets import load_dataset

    ds = load_dataset("fashion-mnist")
    return ds.x_train[:images], ds.y_train[:images], ds.x_test, ds.y_test


def _limit_threads(threads, torch=None):
    """Hold BLAS and cvtool's conv workers (or `torch`) to `threads`; None: library defaults."""
    if threads is None:
        return
    from threadpoolctl import threadpool_limits

    os.environ["CVTOOL_THREADS"] = str(threads)
    threadpool_limits(threads)
    if torch is not None:
        torch.set_num_threads(threads)


def _cvtool_model(preset, seed=0):
    from cvtool.nn import cnn
    from cvtool.nn.spec import PRESETS

    return cnn.cnn_model(PRESETS[preset], (28, 28, 1), init="glorot").build(np, "float32", seed)


def train_cvtool(preset, x, y, threads=None, seed=0):
    """Seconds of one training epoch of cvtool on the NumPy backend."""
    from cvtool.nn import optim
    from cvtool.nn.conv import training_threads

    _limit_threads(threads)
    model = _cvtool_model(preset, seed)
    t0, c0 = time.perf_counter(), time.process_time()
    with training_threads():  # as train-cnn does: conv chunks in threads, BLAS on one
        hist = model.fit(x, y, epochs=1, batch_size=BATCH, optimizer=optim.Adam(1e-3),
                         loss="log-likelihood", monitor=(), seed=seed)  # fmt: skip
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert hist.stopped == "completed"
    assert all(np.isfinite(p).all() for layer in model.layers for p in layer.params.values())
    return seconds, cpu


def infer_cvtool(preset, x_test, threads=None):
    """Images per second of cvtool's predict (batches of 2,000)."""
    _limit_threads(threads)
    from cvtool.nn.conv import training_threads

    model = _cvtool_model(preset)
    t0 = time.perf_counter()
    with training_threads():
        model.predict(x_test, batch_size=EVAL_BATCH)
    return len(x_test) / (time.perf_counter() - t0)


def _torch_model(preset):
    import torch.nn as nn

    from cvtool import shapes
    from cvtool.nn.spec import PRESETS, parse_spec

    specs = parse_spec(PRESETS[preset])
    shape, mods = tuple(specs[0]["shape"]), []
    acts = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}
    for s in specs[1:]:
        a = s.args
        if s.kind == "conv":
            pad = shapes.resolve_padding(a["padding"], a["kernel"][0], a["dilation"])
            mods.append(nn.Conv2d(shape[2], a["filters"], a["kernel"], a["stride"], pad,
                                  a["dilation"], bias=a["bias"]))  # fmt: skip
            shape = shapes.conv2d_output(shape, a["filters"], a["kernel"], a["stride"],
                                         a["padding"], a["dilation"], floor=True)  # fmt: skip
        elif s.kind == "pool":
            assert a["mode"] == "max"
            mods.append(nn.MaxPool2d(a["pool"], a["stride"], a["padding"]))
            shape = shapes.pool2d_output(shape, a["pool"], a["stride"], a["padding"], floor=True)
        elif s.kind == "flatten":
            mods.append(nn.Flatten())
            shape = shapes.flatten_output(shape)
        elif s.kind == "dropout":
            mods.append(nn.Dropout(a["rate"]))
        elif s.kind == "dense":
            mods.append(nn.Linear(shape[0], a["units"], bias=a["bias"]))
            shape = (a["units"],)
        act = a.get("activation") if s.kind in ("conv", "dense", "activation") else None
        if act in acts:
            mods.append(acts[act]())
    return nn.Sequential(*mods)  # softmax lives in the loss (cross_entropy)


def train_torch(preset, x, y, threads=None, seed=0):
    """Seconds of one training epoch of PyTorch on the CPU (its default threads)."""
    import torch

    _limit_threads(threads, torch)
    torch.manual_seed(seed)
    model = _torch_model(preset)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    t0, c0 = time.perf_counter(), time.process_time()
    xt = torch.from_numpy(x).float().div_(255).unsqueeze(1)  # (N, 1, 28, 28)
    yt = torch.from_numpy(y)
    order = torch.randperm(len(xt))
    model.train()
    for s in range(0, len(xt), BATCH):
        idx = order[s : s + BATCH]
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx])
        loss.backward()
        opt.step()
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert torch.isfinite(loss)
    return seconds, cpu


def infer_torch(preset, x_test, threads=None):
    """Images per second of PyTorch inference (batches of 2,000, no gradients)."""
    import torch

    _limit_threads(threads, torch)
    model = _torch_model(preset).eval()
    t0 = time.perf_counter()
    with torch.no_grad():
        xe = torch.from_numpy(x_test).float().div_(255).unsqueeze(1)
        for s in range(0, len(xe), EVAL_BATCH):
            model(xe[s : s + EVAL_BATCH]).argmax(1)
    return len(x_test) / (time.perf_counter() - t0)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presets", default="nielsen-ch6,keras-course")
    parser.add_argument("--images", type=int, default=60000, help="training images per epoch")
    parser.add_argument("--repeat", type=int, default=3, help="runs per library (median)")
    parser.add_argument("--json", dest="json_path", default=None, help="write results here")
    parser.add_argument(
        "--threads", type=int, default=None, help="threads for both libraries (default: theirs)"
    )
    args = parser.parse_args(argv)

    x, y, x_test, _ = _data(args.images)
    load = os.getloadavg()[0]
    threads = args.threads or "default"
    print(f"{len(x)} training images, batch {BATCH}, Adam; {args.repeat} runs each, medians; "
          f"{os.cpu_count()} CPUs, threads {threads}; load average at start {load:.2f} "
          "(shared machine: noisy)", flush=True)  # fmt: skip
    all_rows = []
    for preset in args.presets.split(","):
        libs = {"cvtool": (train_cvtool, infer_cvtool), "torch": (train_torch, infer_torch)}
        runs = {name: [] for name in libs}
        for _ in range(args.repeat):  # alternate, so both see the same background load
            for name, (train, infer) in libs.items():
                (seconds, cpu), _, peak = run_isolated(train, preset, x, y, args.threads)
                ips, _, peak_infer = run_isolated(infer, preset, x_test, args.threads)
                runs[name].append((seconds, peak, ips, peak_infer, cpu))
        rows = []
        for name, rs in runs.items():
            rows.append({
                "name": name,
                "seconds": statistics.median(r[0] for r in rs),
                "peak_mb": max(r[1] for r in rs),
                "images_per_s": statistics.median(r[2] for r in rs),
                "infer_peak_mb": max(r[3] for r in rs),
                "cpu_seconds": statistics.median(r[4] for r in rs),
                "runs": [round(r[0], 3) for r in rs],
                "preset": preset,
                "images": len(x),
                "threads": threads,
            })  # fmt: skip
        report(f"{preset}: one epoch (seconds = median epoch time)", rows, baseline="torch")
        all_rows += rows
    print(f"load average at end {os.getloadavg()[0]:.2f}")
    if args.json_path:  # ratios were computed per preset by report()
        doc = {"title": "bench_cnn", "python": sys.version.split()[0], "threads": threads,
               "load_average": [load, os.getloadavg()[0]], "rows": all_rows}  # fmt: skip
        Path(args.json_path).write_text(json.dumps(doc, indent=2, default=str))
        print(f"(written to {args.json_path})")


if __name__ == "__main__":
    main()
