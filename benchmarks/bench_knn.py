"""Benchmark: k-NN classification of Fashion-MNIST (60,000 x 10,000, k=5) -- cvtool against
scikit-learn's brute force and faiss-cpu's flat index, in one run, as ratios.

    python benchmarks/bench_knn.py                       # L2 and L1, full test set
    python benchmarks/bench_knn.py --metric l2 --repeat 5
    python benchmarks/bench_knn.py --slow-test 1000      # sklearn L1 on 1000 test images
    python benchmarks/bench_knn.py --json knn.json

Every method runs in a forked child (benchmarks/_common.py): wall time is the
median of --repeat runs (slow anchors: --slow-repeat), peak memory is the
child's resident high-water mark above what it inherited (the uint8 dataset).
Each timed run includes the method's own data preparation (float conversion,
index building). Accuracy is against the test labels; 'agree' is the fraction
of predictions equal to scikit-learn's on the same test images.

scikit-learn's L1 brute force takes minutes on 2 cores; with --slow-test N it
and a cvtool run on the same N images form the L1 ratio, while cvtool and
faiss still run the full test set. The machine may be shared: quote medians,
and trust ratios from one run more than absolute seconds.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks._common import measure, report  # noqa: E402
from cvtool import knn  # noqa: E402
from cvtool.data.datasets import load_dataset  # noqa: E402

K = 5
DATA: dict = {}


def _vote(idx):
    y = DATA["y_train"]
    return knn.vote(y[idx], np.ones(idx.shape), "uniform", 10)


def run_cvtool(metric, n_test, engine="auto"):
    d, i = knn.kneighbors(DATA["x_train"], DATA["x_test"][:n_test], K, metric, engine=engine)
    return knn.vote(DATA["y_train"][i], d, "uniform", 10)


def run_sklearn(metric, n_test):
    from sklearn.neighbors import KNeighborsClassifier

    # What a user writes: raw pixels as float32, brute force, default n_jobs
    # (its pairwise-distance reduction uses all cores through OpenMP anyway).
    clf = KNeighborsClassifier(
        n_neighbors=K, algorithm="brute", metric={"l1": "manhattan", "l2": "euclidean"}[metric]
    )
    clf.fit(DATA["x_train"].reshape(60000, -1).astype(np.float32), DATA["y_train"])
    return clf.predict(DATA["x_test"][:n_test].reshape(n_test, -1).astype(np.float32))


def run_faiss(metric, n_test):
    import faiss

    xb = DATA["x_train"].reshape(60000, -1).astype(np.float32)
    xq = DATA["x_test"][:n_test].reshape(n_test, -1).astype(np.float32)
    index = (
        faiss.IndexFlatL2(xb.shape[1])
        if metric == "l2"
        else faiss.IndexFlat(xb.shape[1], faiss.METRIC_L1)
    )
    index.add(xb)
    _, idx = index.search(xq, K)
    return _vote(idx)


def row(name, m, n_test, reference=None):
    pred = np.asarray(m["result"])
    out = {
        "name": name, "test_images": n_test, "seconds": m["seconds"], "peak_mb": m["peak_mb"],
        "accuracy": float(np.mean(pred == DATA["y_test"][:n_test])),
        "runs": [round(t, 2) for t in m["runs"]],
        "s_per_1k": m["seconds"] * 1000 / n_test,
    }  # fmt: skip
    if reference is not None:
        n = min(len(pred), len(reference))  # sklearn may have run on a subsample
        out["agree_sklearn"] = float(np.mean(pred[:n] == reference[:n]))
        out["agree_on"] = n
    return out


def bench(metric, args):
    n_full = len(DATA["y_test"])
    n_slow = args.slow_test if (metric == "l1" and args.slow_test) else n_full
    rows, ratio_rows = [], []
    print(f"\n[{metric}] sklearn on {n_slow} test images ...", flush=True)
    sk = measure(
        run_sklearn, metric, n_slow, repeat=args.slow_repeat if metric == "l1" else args.repeat
    )
    ref = np.asarray(sk["result"])
    print(f"[{metric}] cvtool ...", flush=True)
    cv = measure(run_cvtool, metric, n_full, repeat=args.repeat)
    rows.append(row(f"cvtool-{metric}", cv, n_full, ref))
    numpy_rows = []
    if metric == "l1" and args.numpy_l1_test:  # the path without Numba, on fewer images
        n_np = args.numpy_l1_test
        cvn = measure(run_cvtool, metric, n_np, "numpy", repeat=1)
        cvb = measure(run_cvtool, metric, n_np, "numba", repeat=1)
        numpy_rows = [
            row("cvtool-l1-numba", cvb, n_np, ref),
            row("cvtool-l1-numpy", cvn, n_np, ref),
        ]
    print(f"[{metric}] faiss ...", flush=True)
    try:
        fa = measure(run_faiss, metric, n_full, repeat=args.repeat if metric == "l2" else 1)
        rows.append(row(f"faiss-{metric}", fa, n_full, ref))
    except RuntimeError as exc:  # faiss missing: say so, keep the rest
        print(f"faiss unavailable: {str(exc).strip().splitlines()[-1]}")
    if n_slow == n_full:
        rows.insert(0, row(f"sklearn-{metric}", sk, n_full, ref))
        report(f"Fashion-MNIST k={K} {metric}: {n_full} test images", rows, f"sklearn-{metric}")
    else:  # the ratio to sklearn on the same subsample
        cvs = measure(run_cvtool, metric, n_slow, repeat=args.repeat)
        ratio_rows = [
            row(f"sklearn-{metric}", sk, n_slow, ref),
            row(f"cvtool-{metric}", cvs, n_slow, ref),
        ]
        report(
            f"Fashion-MNIST k={K} {metric}: first {n_slow} test images (sklearn subsample)",
            ratio_rows, f"sklearn-{metric}",
        )  # fmt: skip
        report(f"Fashion-MNIST k={K} {metric}: {n_full} test images", rows, f"faiss-{metric}")
    if numpy_rows:
        report(f"cvtool L1 engines: first {numpy_rows[0]['test_images']} test images",
               numpy_rows, "cvtool-l1-numba")  # fmt: skip
    return rows + ratio_rows + numpy_rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--metric", default="l2,l1")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--slow-repeat", type=int, default=1, help="runs of sklearn L1")
    ap.add_argument("--slow-test", type=int, default=0, help="sklearn L1 on this many images")
    ap.add_argument("--numpy-l1-test", type=int, default=0, help="also time the NumPy L1 path")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    ds = load_dataset("fashion-mnist")
    DATA.update(x_train=ds.x_train, y_train=ds.y_train, x_test=ds.x_test, y_test=ds.y_test)
    print(f"cpus={os.cpu_count()} load={os.getloadavg()[0]:.1f} (shared machine: medians)")
    all_rows = []
    for metric in args.metric.split(","):
        all_rows += bench(metric, args)
    if args.json:  # ratios are in the tables above; the JSON keeps every row
        report("all rows (s_per_1k: seconds per 1000 test images)", all_rows, "none", args.json)


if __name__ == "__main__":
    main()
