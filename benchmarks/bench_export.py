"""Inference speed of exported models on ONNX Runtime (CPU) against cvtool's own predict.

For nielsen-ch6 and keras-course (weights from a seeded build: speed does not
depend on their values), on mnist-sample's 1000 test images (uint8, scaled
by each side as ``predict`` does): images per second of

- ``cvtool``: ``Sequential.predict_proba`` (NumPy backend, batches of 2000);
- ``onnxruntime``: the file ``export_onnx`` wrote, through ``load_onnx``
  (``OnnxModel.predict_proba``, ONNX Runtime's CPU provider, all graph
  optimisations on).

Both sides get the same number of threads (--threads, default 1: cvtool's
convolution worker threads and BLAS threads through threadpoolctl; ONNX
Runtime's intra-op threads): the machine is shared, and on 2 busy cores extra
threads measure the neighbours more than the library. Each figure is the
median of --repeat timed calls after one warm-up call, all in this process;
``load_s`` is the time to load the model file once (Sequential.load /
load_onnx). Compare the ratios within one run, not across machines.

    python benchmarks/bench_export.py [--repeat 5] [--threads 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import report  # noqa: E402

MODELS = ["nielsen-ch6", "keras-course"]


def _median_seconds(fn, x, repeat: int) -> tuple[float, list[float]]:
    fn(x)  # warm-up: buffers, ORT's first-run allocations
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def bench_model(name: str, x, y, folder: Path, repeat: int, threads: int) -> list[dict]:
    from cvtool.nn.export import export_onnx, load_onnx
    from cvtool.nn.model import Sequential
    from cvtool.nn.spec import parse_network

    npz, onnx_path = folder / f"{name}.npz", folder / f"{name}.onnx"
    Sequential.from_spec(parse_network(name)).build(seed=0).save(npz)
    t0 = time.perf_counter()
    model = Sequential.load(npz, backend_name="numpy")
    load_cvtool = time.perf_counter() - t0
    export_onnx(model, onnx_path, overwrite=True)
    t0 = time.perf_counter()
    ort_model = load_onnx(onnx_path, threads=threads)
    load_ort = time.perf_counter() - t0

    a = np.asarray(model.predict_proba(x))
    b = ort_model.predict_proba(x)
    diff = float(np.abs(a - b).max())
    agree = float((a.argmax(1) == b.argmax(1)).mean())
    rows = []
    for label, fn, load_s in (("cvtool", model.predict_proba, load_cvtool),
                              ("onnxruntime", ort_model.predict_proba, load_ort)):  # fmt: skip
        seconds, runs = _median_seconds(fn, x, repeat)
        rows.append({"name": label, "model": name, "seconds": seconds, "runs": runs,
                     "images_per_s": len(x) / seconds, "load_s": load_s,
                     "max_abs_diff": diff, "same_class": agree})  # fmt: skip
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None, help="Also write the rows to this JSON file.")
    args = ap.parse_args()

    os.environ["CVTOOL_THREADS"] = str(args.threads)
    from threadpoolctl import threadpool_limits

    threadpool_limits(args.threads)
    import onnxruntime  # noqa: F401  (imported up front: load_s times the file, not the import)

    from cvtool.data.datasets import load_dataset

    ds = load_dataset("mnist-sample")
    x, y = ds.x_test, ds.y_test  # (1000, 28, 28) uint8
    all_rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in MODELS:
            rows = bench_model(name, x, y, Path(tmp), args.repeat, args.threads)
            report(f"{name}: predict on {len(x)} mnist-sample test images, {args.threads} "
                   f"thread(s), median of {args.repeat}", rows, baseline="cvtool",
                   columns=("seconds", "images_per_s", "load_s"))  # fmt: skip
            all_rows += rows
    if args.json:
        report("all models", all_rows, baseline="cvtool", json_path=args.json,
               columns=("seconds", "images_per_s", "load_s"))  # fmt: skip


if __name__ == "__main__":
    main()
