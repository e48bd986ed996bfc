"""Epoch time and accuracy of train-mlp's engine against PyTorch on the CPU.

Fashion-MNIST, 60,000 training images, sigmoid layers, cross-entropy cost
(sigmoid outputs), plain SGD eta = 0.5, N(0, 1/n_in) weights:

- [784, 30, 10] at mini-batch 10 (target: <= 0.15x PyTorch's epoch time);
- [784, 100, 10] at mini-batch 128 (target: no slower than PyTorch).

Each (library, config, seed) run trains in a forked child (``_common.run_isolated``)
for --epochs epochs; the epoch time is the median over that run's epochs
(training only, no evaluation), then the median over seeds; accuracy is the
test accuracy after the last epoch, median over seeds. A plain vectorised
NumPy loop (Nielsen's network2 restated over whole mini-batches) is shown for
reference. The machine is shared: compare the ratios within one run.
Every library gets the same number of threads (--threads, default 1: BLAS
threads via threadpoolctl, PyTorch intra-op threads): on this busy 2-core
machine two threads made PyTorch's mini-batch-10 epoch ~10x slower (29 s
against 2.4 s, measured) and OpenBLAS's 2-thread GEMMs stall the same way.

    python benchmarks/bench_mlp.py [--epochs 3] [--seeds 3] [--json out.json]
    python benchmarks/bench_mlp.py --nielsen 400 [--seeds 3]   # overfitting experiment
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

THREADS = [1]
CONFIGS = [("784,30,10", 10), ("784,100,10", 128)]
ETA = 0.5


def _limit_blas():
    from threadpoolctl import threadpool_limits

    return threadpool_limits(THREADS[0])


def _data():
    _limit_blas()
    from cvtool.data.datasets import load_dataset

    ds = load_dataset("fashion-mnist")
    x = ds.x_train.reshape(len(ds.x_train), -1).astype(np.float32) / 255
    xt = ds.x_test.reshape(len(ds.x_test), -1).astype(np.float32) / 255
    return x, ds.y_train, xt, ds.y_test


def run_cvtool(sizes, batch, epochs, seed):
    from cvtool.nn.model import Sequential
    from cvtool.nn.optim import SGD
    from cvtool.nn.spec import layers_from_sizes

    x, y, xt, yt = _data()
    model = Sequential.from_spec(layers_from_sizes(sizes, "sigmoid")).build(seed=seed)
    hist = model.fit(x, y, epochs=epochs, batch_size=batch, optimizer=SGD(ETA),
                     loss="cross-entropy", monitor=(), seed=seed)  # fmt: skip
    acc = float((model.predict(xt) == yt).mean())
    return [r["train_seconds"] for r in hist.records], acc


def run_torch(sizes, batch, epochs, seed):
    import torch

    torch.set_num_threads(THREADS[0])
    torch.manual_seed(seed)
    x, y, xt, yt = _data()
    dims = [int(s) for s in sizes.split(",")]
    layers = []
    for a, b in zip(dims[:-1], dims[1:], strict=True):
        lin = torch.nn.Linear(a, b)
        torch.nn.init.normal_(lin.weight, 0.0, 1.0 / np.sqrt(a))
        torch.nn.init.normal_(lin.bias, 0.0, 1.0)
        layers += [lin, torch.nn.Sigmoid()]
    net = torch.nn.Sequential(*layers)
    opt = torch.optim.SGD(net.parameters(), lr=ETA)
    X, Y = torch.from_numpy(x), torch.nn.functional.one_hot(torch.from_numpy(y), 10).float()
    gen = torch.Generator().manual_seed(seed)
    times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(len(X), generator=gen)
        for i in range(0, len(X), batch):
            idx = perm[i : i + batch]
            a = net(X[idx])
            loss = torch.nn.functional.binary_cross_entropy(a, Y[idx], reduction="sum") / len(idx)
            opt.zero_grad()
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - t0)
    with torch.no_grad():
        acc = float((net(torch.from_numpy(xt)).argmax(1).numpy() == yt).mean())
    return times, acc


def run_numpy_loop(sizes, batch, epochs, seed):
    """Nielsen's network2 over whole mini-batches, written plainly with NumPy."""
    x, y, xt, yt = _data()
    rng = np.random.default_rng(seed)
    dims = [int(s) for s in sizes.split(",")]
    W = [(rng.standard_normal((a, b)) / np.sqrt(a)).astype(np.float32)
         for a, b in zip(dims[:-1], dims[1:], strict=True)]  # fmt: skip
    B = [rng.standard_normal(b).astype(np.float32) for b in dims[1:]]
    Y = np.eye(10, dtype=np.float32)[y]

    def sig(z):
        return 1 / (1 + np.exp(-z))

    times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        perm = rng.permutation(len(x))
        for i in range(0, len(x), batch):
            idx = perm[i : i + batch]
            acts = [x[idx]]
            for w, b in zip(W, B, strict=True):
                acts.append(sig(acts[-1] @ w + b))
            d = (acts[-1] - Y[idx]) / len(idx)
            for j in range(len(W) - 1, -1, -1):
                gw, gb = acts[j].T @ d, d.sum(0)
                if j:
                    d = (d @ W[j].T) * acts[j] * (1 - acts[j])
                W[j] -= ETA * gw
                B[j] -= ETA * gb
        times.append(time.perf_counter() - t0)
    a = xt
    for w, b in zip(W, B, strict=True):
        a = sig(a @ w + b)
    return times, float((a.argmax(1) == yt).mean())


RUNNERS = {"cvtool": run_cvtool, "pytorch": run_torch, "numpy-loop": run_numpy_loop}


def _mnist_sample_1000():
    from cvtool.data.datasets import load_dataset

    _limit_blas()
    ds = load_dataset("mnist-sample")
    x = ds.x_train[:1000].reshape(1000, -1).astype(np.float32) / 255
    xt = ds.x_test.reshape(len(ds.x_test), -1).astype(np.float32) / 255
    return x, ds.y_train[:1000], xt, ds.y_test


def nielsen_cvtool(lmbda, epochs, seed):
    """Nielsen's overfitting run: [784,30,10], large init, cross-entropy, eta 0.5, m 10."""
    from cvtool.nn.model import Sequential
    from cvtool.nn.optim import SGD
    from cvtool.nn.spec import layers_from_sizes

    x, y, xt, yt = _mnist_sample_1000()
    model = Sequential.from_spec(layers_from_sizes("784,30,10"), init="large").build(seed=seed)
    model.fit(x, y, epochs=epochs, batch_size=10, optimizer=SGD(ETA, lmbda), monitor=(),
              seed=seed)  # fmt: skip
    return float((model.predict(xt) == yt).mean())


def nielsen_torch(lmbda, epochs, seed):
    import torch

    torch.set_num_threads(THREADS[0])
    torch.manual_seed(seed)
    x, y, xt, yt = _mnist_sample_1000()
    l1, l2 = torch.nn.Linear(784, 30), torch.nn.Linear(30, 10)
    for p in (*l1.parameters(), *l2.parameters()):
        torch.nn.init.normal_(p, 0.0, 1.0)  # Nielsen's large initialisation
    net = torch.nn.Sequential(l1, torch.nn.Sigmoid(), l2, torch.nn.Sigmoid())
    opt = torch.optim.SGD([{"params": [l1.weight, l2.weight], "weight_decay": lmbda / len(x)},
                           {"params": [l1.bias, l2.bias], "weight_decay": 0.0}], lr=ETA)  # fmt: skip
    X, Y = torch.from_numpy(x), torch.nn.functional.one_hot(torch.from_numpy(y), 10).float()
    for _ in range(epochs):
        perm = torch.randperm(len(X))
        for i in range(0, len(X), 10):
            idx = perm[i : i + 10]
            loss = torch.nn.functional.binary_cross_entropy(net(X[idx]), Y[idx], reduction="sum")
            opt.zero_grad()
            (loss / len(idx)).backward()
            opt.step()
    with torch.no_grad():
        return float((net(torch.from_numpy(xt)).argmax(1).numpy() == yt).mean())


def run_nielsen(epochs: int, seeds: int) -> list[dict]:
    """Final test accuracy of the overfitting experiment, cvtool and PyTorch, per lambda."""
    rows = []
    for lmbda in (0.0, 0.1):
        accs = {"cvtool": [], "pytorch": []}
        for seed in range(seeds):
            for name, fn in (("cvtool", nielsen_cvtool), ("pytorch", nielsen_torch)):
                acc, seconds, _ = run_isolated(fn, lmbda, epochs, seed)
                accs[name].append(acc)
                print(f"lambda={lmbda} seed={seed} {name}: {acc:.4f} ({seconds:.1f} s)", flush=True)
        for name, values in accs.items():
            rows.append({"name": name, "lmbda": lmbda, "accuracy": statistics.median(values),
                         "seed_accuracy": values})  # fmt: skip
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--json", default=None)
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="BLAS threads for NumPy and intra-op threads for PyTorch (same for both)",
    )
    ap.add_argument(
        "--nielsen",
        type=int,
        default=0,
        metavar="EPOCHS",
        help="instead: Nielsen's overfitting experiment for EPOCHS epochs "
        "(1000 mnist-sample images, large init, lambda 0 and 0.1), cvtool vs PyTorch",
    )
    ap.add_argument("--skip", nargs="*", default=[], help="runners to skip, e.g. numpy-loop")
    args = ap.parse_args()
    THREADS[0] = args.threads
    if args.nielsen:
        rows = run_nielsen(args.nielsen, args.seeds)
        for r in rows:
            print(
                f"{r['name']:8s} lambda={r['lmbda']:<4} median test accuracy {r['accuracy']:.4f} "
                f"seeds {r['seed_accuracy']}"
            )
        if args.json:
            import json

            Path(args.json).write_text(json.dumps({"nielsen_epochs": args.nielsen, "rows": rows},
                                                  indent=2))  # fmt: skip
        return
    all_rows = []
    for sizes, batch in CONFIGS:
        runs = {name: ([], [], []) for name in RUNNERS if name not in args.skip}
        for seed in range(args.seeds):  # interleaved, so every library sees the same noise
            for name, (medians, bests, accs) in runs.items():
                (times, acc), _, _ = run_isolated(RUNNERS[name], sizes, batch, args.epochs, seed)
                medians.append(statistics.median(times))
                bests.append(min(times))
                accs.append(acc)
        rows = [{"name": name, "config": f"[{sizes}] m={batch}",
                 "seconds": statistics.median(medians), "best_epoch_s": min(bests),
                 "accuracy": statistics.median(accs),
                 "seed_seconds": [round(t, 4) for t in medians], "seed_accuracy": accs}
                for name, (medians, bests, accs) in runs.items()]  # fmt: skip
        report(f"[{sizes}] mini-batch {batch}: seconds per epoch (median), test accuracy "
               f"after {args.epochs} epochs (median of {args.seeds} seeds)", rows, "pytorch",
               columns=("seconds", "best_epoch_s", "accuracy"))  # fmt: skip
        all_rows += rows
    if args.json:
        import json

        Path(args.json).write_text(json.dumps({"epochs": args.epochs, "seeds": args.seeds,
                                               "threads": args.threads, "rows": all_rows},
                                              indent=2))  # fmt: skip
        print(f"(written to {args.json})")


if __name__ == "__main__":
    main()
