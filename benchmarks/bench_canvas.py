"""Digit-canvas generation and writing: how long a detection/segmentation set takes to make.

The workload (issues 14 and 15): --n (default 2,000) 64x64 grey canvases with
1-4 mnist-sample digits at 0.6-1.4x scale (the generator's defaults), then the
same canvases written as images/ + masks/ PNGs and COCO JSON with RLE masks.
Rows:

- generate        ``CanvasGenerator().sample(n)``: the fresh canvases a trainer draws per epoch
- generate+write  ``make_canvas_splits(n, 0)``, then ``write_canvas_set``: a make-canvas command
- read            ``read_canvas_set(root, 'train')`` of that folder (boxes, classes, label maps)

No anchor library makes such canvases; the numbers are absolute. Each row is
the median of --repeat runs, each in a forked child (benchmarks/_common.py).
Usage::

    python benchmarks/bench_canvas.py [--n 2000] [--repeat 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import measure, report  # noqa: E402
from cvtool.data.canvas import CanvasGenerator, make_canvas_splits  # noqa: E402
from cvtool.data.canvas_io import read_canvas_set, write_canvas_set  # noqa: E402


def _generate(n):
    return len(CanvasGenerator(seed=0).sample(n))


def _generate_write(n, root):
    train, _ = make_canvas_splits(n, 0, seed=0)
    write_canvas_set(root, train=train, overwrite=True)
    return len(train)


def _read(root):
    return len(read_canvas_set(root, "train"))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "canvases"
        rows = [
            {"name": "generate", **measure(_generate, args.n, repeat=args.repeat)},
            {
                "name": "generate+write",
                **measure(_generate_write, args.n, root, repeat=args.repeat),
            },
            {"name": "read", **measure(_read, root, repeat=args.repeat)},
        ]
    for r in rows:
        r["per_canvas_ms"] = 1000 * r["seconds"] / args.n
    report(f"{args.n} canvases 64x64, 1-4 digits", rows, baseline="generate", json_path=args.json)


if __name__ == "__main__":
    main()
