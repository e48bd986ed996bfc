"""Where a training step's time goes: forward and backward of every layer, cvtool on NumPy.

For the networks of the open speed targets (issues 14, 15, 19): the default
detector (``det``, batch 32 of 64x64x1), the default segmenter (``seg``, batch
32 of 64x64x1), ``nielsen-ch6`` and ``keras-course`` (batch 128 of 28x28x1).
Each network is built as the trainers build it (ReLU pairing included), one
random batch runs forward (training mode) and backward with a random output
gradient, ``--steps`` times; the table gives each layer's median forward and
backward milliseconds over the steps after ``--warmup``, and the step total.

``--roots A,B`` times the same networks from other cvtool trees too (say the
checkout before a change), each in its own process, alternating A, B, A, B for
``--repeat`` rounds, and reports the median step total per tree: a before/after
figure for one change that is not at the mercy of a whole training run's
noise.

    python benchmarks/bench_steps.py --nets det,seg
    python benchmarks/bench_steps.py --nets det --roots .,/tmp/base --repeat 3

Threads: ``CVTOOL_THREADS`` as set (default: the CPU count, at most 8), BLAS
held to one thread as the trainers hold it. Not a test: nothing here asserts a
speed.
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

ROOT = Path(__file__).resolve().parents[1]
NETS = ("det", "seg", "nielsen-ch6", "keras-course")


def _spec(net: str) -> tuple[str, tuple[int, ...]]:
    if net == "det":
        from cvtool.detect.train import DETECTOR

        return "input:64x64x1, " + DETECTOR.format(pool=2, head=20), (32, 64, 64, 1)
    if net == "seg":
        from cvtool.segment import SEGMENTER

        return "input:64x64x1, " + SEGMENTER.format(classes=11), (32, 64, 64, 1)
    from cvtool.nn.spec import PRESETS

    return PRESETS[net].replace(":softmax", ""), (128, 28, 28, 1)


def time_layers(net: str, steps: int, warmup: int) -> dict:
    """{'layers': [(index, kind, forward ms, backward ms)], 'step_ms': total} for one net."""
    import numpy as np

    from cvtool.nn._parallel import training_threads
    from cvtool.nn.model import Sequential
    from cvtool.nn.spec import parse_spec

    text, shape = _spec(net)
    model = Sequential.from_spec(parse_spec(text)).build(seed=0)
    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    fw = [[] for _ in model.layers]
    bw = [[] for _ in model.layers]
    with training_threads(np):
        for _ in range(warmup + steps):
            h = x
            for i, layer in enumerate(model.layers):
                t = time.perf_counter()
                h = layer.forward(h, training=True)
                fw[i].append(time.perf_counter() - t)
            d = np.random.default_rng(1).standard_normal(h.shape).astype(np.float32)
            for i in range(len(model.layers) - 1, -1, -1):
                t = time.perf_counter()
                d = model.layers[i].backward(d)
                bw[i].append(time.perf_counter() - t)
                if d is None:
                    break
    rows = []
    for i, layer in enumerate(model.layers):
        f = statistics.median(fw[i][warmup:]) * 1e3
        b = statistics.median(bw[i][warmup:]) * 1e3 if bw[i] else 0.0
        rows.append((i, type(layer).__name__, round(f, 3), round(b, 3)))
    return {"net": net, "layers": rows, "step_ms": round(sum(r[2] + r[3] for r in rows), 2)}


def _child(net: str, steps: int, warmup: int) -> None:
    print(json.dumps(time_layers(net, steps, warmup)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", default="det,seg", help=f"comma list of {', '.join(NETS)}")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--roots", default="", help="comma list of cvtool trees to compare")
    parser.add_argument("--repeat", type=int, default=3, help="alternating rounds with --roots")
    parser.add_argument("--child", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.steps, args.warmup)
        return
    nets = [n.strip() for n in args.nets.split(",") if n.strip()]
    for net in nets:
        if net not in NETS:
            parser.error(f"unknown net {net!r}; choose from {', '.join(NETS)}")
    roots = [str(Path(r).resolve()) for r in args.roots.split(",") if r.strip()] or [str(ROOT)]
    for net in nets:
        totals: dict[str, list[float]] = {r: [] for r in roots}
        last = {}
        for _ in range(args.repeat if len(roots) > 1 else 1):
            for root in roots:  # each tree in its own process, alternating
                env = {**os.environ, "PYTHONPATH": root}
                cmd = [sys.executable, str(Path(__file__).resolve()), "--child", net,
                       "--steps", str(args.steps), "--warmup", str(args.warmup)]  # fmt: skip
                out = subprocess.run(cmd, env=env, cwd=root, capture_output=True, text=True)
                if out.returncode:
                    sys.exit(f"bench_steps: {net} in {root} failed:\n{out.stderr[-2000:]}")
                res = json.loads(out.stdout.strip().splitlines()[-1])
                totals[root].append(res["step_ms"])
                last[root] = res
        if len(roots) == 1:
            print(f"{net}: median ms per layer over {args.steps} steps")
            for i, kind, f, b in last[roots[0]]["layers"]:
                print(f"  {i:2d} {kind:14s} forward {f:8.3f}  backward {b:8.3f}")
        print(f"{net}: step total (ms), median of {len(totals[roots[0]])} processes")
        base = statistics.median(totals[roots[0]])
        for root in roots:
            med = statistics.median(totals[root])
            runs = ", ".join(f"{v:.1f}" for v in totals[root])
            print(f"  {root}: {med:.1f} ({runs})  ratio to first {med / base:.3f}")


if __name__ == "__main__":
    main()
