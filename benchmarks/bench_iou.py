"""Benchmark: COCO bbox evaluation and box IoU matrices, cvtool vs pycocotools.

1. COCO evaluation of synthetic data (default 500 images, about 25,000
   detections, 8 classes, crowd regions, tied scores): pycocotools' COCOeval
   evaluate + accumulate against cvtool's ``coco_evaluate``, both starting
   from loaded data (pycocotools' COCO objects / cvtool's arrays); a second
   pair of rows includes loading from the parsed JSON (pycocotools: COCO index
   + loadRes; cvtool: ground_truth_from_coco + detections_from_coco). The
   precision/recall arrays of both are compared (max abs difference).
2. Box IoU matrices: ``pycocotools.mask.iou`` against ``cvtool.boxes.box_iou``
   (NumPy), N x N for a few N, with the max abs difference.

Each row is the median of ``--repeat`` runs, each in a forked child
(benchmarks/_common.py). The machine may be shared: quote ratios from one run.

    python benchmarks/bench_iou.py [--images 500] [--dets-per-image 50] [--repeat 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import measure, report  # noqa: E402
from cvtool.boxes import box_iou  # noqa: E402
from cvtool.boxes.coco import coco_evaluate  # noqa: E402
from cvtool.boxes.io import detections_from_coco, ground_truth_from_coco  # noqa: E402
from cvtool.boxes.synth import synthetic_coco  # noqa: E402


def _quiet():
    return contextlib.redirect_stdout(io.StringIO())


def pyco_objects(gt, dets):
    from pycocotools.coco import COCO

    with _quiet():
        cg = COCO()
        cg.dataset = copy.deepcopy(gt)
        cg.createIndex()
        cd = cg.loadRes(copy.deepcopy(dets))
    return cg, cd


def pyco_eval(cg, cd):
    from pycocotools.cocoeval import COCOeval

    with _quiet():
        E = COCOeval(cg, cd, "bbox")
        E.evaluate()
        E.accumulate()
    return E.eval["precision"], E.eval["recall"]


def pyco_from_json(gt, dets):
    return pyco_eval(*pyco_objects(gt, dets))


def cvtool_eval(G, D):
    r = coco_evaluate(G, D)
    return r["precision"], r["recall"]


def cvtool_from_json(gt, dets):
    G = ground_truth_from_coco(gt)
    return cvtool_eval(G, detections_from_coco(dets, G))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=500)
    ap.add_argument("--dets-per-image", type=float, default=50.0)
    ap.add_argument("--classes", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--iou-sizes", default="500,2000")
    ap.add_argument("--json", dest="json_path", default=None)
    args = ap.parse_args()

    gt, dets = synthetic_coco(n_images=args.images, n_cats=args.classes,
                              dets_per_image=args.dets_per_image, seed=0)  # fmt: skip
    cg, cd = pyco_objects(gt, dets)
    G = ground_truth_from_coco(gt)
    D = detections_from_coco(dets, G)
    rows = []
    runs = [
        ("pycocotools evaluate+accumulate", pyco_eval, (cg, cd)),
        ("cvtool coco_evaluate", cvtool_eval, (G, D)),
        ("pycocotools incl. COCO index+loadRes", pyco_from_json, (gt, dets)),
        ("cvtool incl. parsing the JSON dicts", cvtool_from_json, (gt, dets)),
    ]
    ref = None
    for name, fn, fargs in runs:
        m = measure(fn, *fargs, repeat=args.repeat)
        prec, rec = m.pop("result")
        if ref is None:
            ref = (prec, rec)
        diff = max(float(np.abs(prec - ref[0]).max()), float(np.abs(rec - ref[1]).max()))
        rows.append({"name": name, **m, "max_abs_diff": diff})
    title = (f"COCO bbox evaluation: {args.images} images, {len(dets)} detections, "
             f"{len(gt['annotations'])} ground-truth boxes, {args.classes} classes")  # fmt: skip
    report(title, rows, baseline="pycocotools evaluate+accumulate", json_path=None)
    eval_rows = rows

    from pycocotools import mask as mask_utils

    rng = np.random.default_rng(1)
    iou_rows = []
    for n in (int(s) for s in args.iou_sizes.split(",")):
        a = np.hstack([rng.uniform(0, 600, (n, 2)), rng.uniform(1, 200, (n, 2))])
        b = np.hstack([rng.uniform(0, 600, (n, 2)), rng.uniform(1, 200, (n, 2))])
        crowd = [0] * n
        mp = measure(mask_utils.iou, a, b, crowd, repeat=args.repeat)
        mc = measure(box_iou, a, b, repeat=args.repeat)
        diff = float(np.abs(mp.pop("result") - mc.pop("result")).max())
        iou_rows.append({"name": f"pycocotools.mask.iou {n}x{n}", **mp})
        iou_rows.append({"name": f"cvtool box_iou {n}x{n}", **mc, "max_abs_diff": diff})
        report(f"Box IoU matrix {n} x {n}", iou_rows[-2:], baseline=f"pycocotools.mask.iou {n}x{n}")
    if args.json_path:
        import json

        for r in eval_rows + iou_rows:
            r.pop("result", None)
        Path(args.json_path).write_text(
            json.dumps(
                {"python": sys.version.split()[0], "evaluation": eval_rows, "iou": iou_rows},
                indent=2,
                default=str,
            )  # fmt: skip
        )
        print(f"(written to {args.json_path})")


if __name__ == "__main__":
    main()
