"""The segmentation layers, forward + backward: cvtool (NumPy) against PyTorch on the CPU.

Workloads (float32, batch ``--batch``, default 64):

- ``deconv``: transposed convolution 32x32x32 -> 64x64x16, kernel 4, stride 2,
  padding 1 (issue 15's target: within 1.2x PyTorch's time), forward and the
  backward pass with both the input and the weight gradients;
- ``upsample``: bilinear x2 upsampling (align_corners=False) of 32x32x16 images;
- ``pixel-loss``: softmax + log-likelihood over 64x64 pixels and 11 classes,
  class weights and an ignore label, value and gradient with respect to the logits
  (PyTorch: ``cross_entropy`` and its backward).

Each run is a forked child (``benchmarks/_common.run_isolated``) that builds its
data, warms up twice and times ``--iters`` iterations; ``seconds`` is the median
iteration, and the table shows the median over ``--repeat`` children, the two
libraries alternating so background load hits both alike. ``forward_s`` is the
median forward pass alone. Both libraries run on ``--threads`` threads (default 2:
cvtool's conv workers with one BLAS thread each, as train-cnn runs; PyTorch's
intra-op threads).

    python benchmarks/bench_segment_layers.py     # about 30 s on an idle 2-core machine
    python benchmarks/bench_segment_layers.py --only deconv --repeat 5 --json out.json

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

CLASSES = 11
IGNORE = 255
WEIGHT = [0.1] + [1.0] * (CLASSES - 1)  # background is most pixels


def _inputs(workload: str, batch: int):
    """(x, dout or labels) as NHWC float32 host arrays, the same for both libraries."""
    rng = np.random.default_rng(0)
    if workload == "deconv":
        return (rng.standard_normal((batch, 32, 32, 32), np.float32),
                rng.standard_normal((batch, 64, 64, 16), np.float32))  # fmt: skip
    if workload == "upsample":
        return (rng.standard_normal((batch, 32, 32, 16), np.float32),
                rng.standard_normal((batch, 64, 64, 16), np.float32))  # fmt: skip
    labels = rng.integers(0, CLASSES, (batch, 64, 64))
    labels[:, :2] = IGNORE
    return rng.standard_normal((batch, 64, 64, CLASSES), np.float32), labels


def _time(step, forward, iters: int) -> tuple[float, float]:
    """(median seconds of step(), median seconds of forward()) after two warm-up steps."""
    for _ in range(2):
        step()
    both, fwd = [], []
    for _ in range(iters):
        t0 = time.perf_counter()
        step()
        both.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        forward()
        fwd.append(time.perf_counter() - t0)
    return statistics.median(both), statistics.median(fwd)


def run_cvtool(workload: str, batch: int, iters: int, threads: int):
    os.environ["CVTOOL_THREADS"] = str(threads)
    from threadpoolctl import threadpool_limits

    from cvtool.nn.conv import training_threads
    from cvtool.nn.pixelwise import PixelLogLikelihood
    from cvtool.nn.upsample import ConvTranspose2D, UpSampling2D

    threadpool_limits(threads)
    x, g = _inputs(workload, batch)
    if workload == "pixel-loss":
        loss = PixelLogLikelihood(weight=WEIGHT, ignore_index=IGNORE, check=False)

        def step():
            loss.value_and_delta(x, g)

        def forward():
            loss.fn(x, g)

    else:
        if workload == "deconv":
            layer = ConvTranspose2D(16, 4, stride=2, padding=1)
        else:
            layer = UpSampling2D(2, "bilinear")
        layer.build(x.shape[1:], np, np.float32, np.random.default_rng(0))

        def step():
            layer.forward(x, training=True)
            layer.backward(g)

        def forward():
            layer.forward(x, training=True)

    with training_threads():  # as train-cnn runs: conv chunks in threads, BLAS on one
        return _time(step, forward, iters)


def run_torch(workload: str, batch: int, iters: int, threads: int):
    import torch

    torch.set_num_threads(threads)
    x, g = _inputs(workload, batch)
    xt = torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, 3, 1))).requires_grad_()
    if workload == "pixel-loss":
        yt, wt = torch.from_numpy(g), torch.tensor(WEIGHT)

        def fwd():
            return torch.nn.functional.cross_entropy(xt, yt, weight=wt, ignore_index=IGNORE)

        def step():
            xt.grad = None
            fwd().backward()

    else:
        gt = torch.from_numpy(np.ascontiguousarray(np.moveaxis(g, 3, 1)))
        if workload == "deconv":
            module = torch.nn.ConvTranspose2d(32, 16, 4, stride=2, padding=1)
        else:
            module = torch.nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)

        def fwd():
            return module(xt)

        def step():
            xt.grad = None
            module.zero_grad(set_to_none=True)
            fwd().backward(gt)

    return _time(step, fwd, iters)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default="deconv,upsample,pixel-loss", help="workloads")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--iters", type=int, default=6, help="timed iterations per child")
    parser.add_argument("--repeat", type=int, default=3, help="children per library (median)")
    parser.add_argument("--threads", type=int, default=2, help="threads for both libraries")
    parser.add_argument("--json", dest="json_path", default=None, help="write results here")
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]
    print(f"batch {args.batch}, float32, {args.iters} iterations x {args.repeat} runs each, "
          f"medians; {os.cpu_count()} CPUs, threads {args.threads}; load average at start "
          f"{load:.2f} (shared machine: noisy)", flush=True)  # fmt: skip
    all_rows = []
    for workload in args.only.split(","):
        libs = {"cvtool": run_cvtool, "torch": run_torch}
        runs = {name: [] for name in libs}
        for _ in range(args.repeat):  # alternate, so both see the same background load
            for name, fn in libs.items():
                (both, fwd), _, peak = run_isolated(
                    fn, workload, args.batch, args.iters, args.threads
                )
                runs[name].append((both, fwd, peak))
        rows = [
            {
                "name": name,
                "seconds": statistics.median(r[0] for r in rs),
                "forward_s": statistics.median(r[1] for r in rs),
                "peak_mb": max(r[2] for r in rs),
                "runs": [round(r[0], 4) for r in rs],
                "workload": workload,
            }
            for name, rs in runs.items()
        ]
        report(f"{workload}: forward + backward (seconds = median)", rows, baseline="torch")
        all_rows += rows
    print(f"load average at end {os.getloadavg()[0]:.2f}")
    if args.json_path:
        doc = {"title": "bench_segment_layers", "python": sys.version.split()[0],
               "threads": args.threads, "batch": args.batch,
               "load_average": [load, os.getloadavg()[0]], "rows": all_rows}  # fmt: skip
        Path(args.json_path).write_text(json.dumps(doc, indent=2, default=str))
        print(f"(written to {args.json_path})")


if __name__ == "__main__":
    main()
