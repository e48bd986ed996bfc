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
3. COCO segm evaluation (``--segm-images``, 480 x 640 images, polygon, RLE
   and crowd ground truth, RLE results): pycocotools and faster-coco-eval
   (COCO index + loadRes + evaluate + accumulate) against cvtool
   (``segm_inputs`` + ``coco_evaluate``), all from the parsed JSON dicts;
   precision/recall compared with pycocotools'. ``--only segm`` runs this part alone.

Each row is the median of ``--repeat`` runs, each in a forked child
(benchmarks/_common.py). The machine may be shared: quote ratios from one run.

    python benchmarks/bench_iou.py [--images 500] [--dets-per-image 50] [--repeat 5]
        [--segm-images 300] [--only all|bbox|segm] [--json out.json]
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
from cvtool.boxes.report import segm_inputs  # noqa: E402
from cvtool.boxes.synth import synthetic_coco, synthetic_coco_segm  # noqa: E402


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


def pyco_segm(gt, dets):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with _quiet():
        cg = COCO()
        cg.dataset = copy.deepcopy(gt)
        cg.createIndex()
        E = COCOeval(cg, cg.loadRes(copy.deepcopy(dets)), "segm")
        E.evaluate()
        E.accumulate()
    return E.eval["precision"], E.eval["recall"]


def faster_segm(gt, dets):
    from faster_coco_eval import COCO, COCOeval_faster

    with _quiet():
        cg = COCO(copy.deepcopy(gt))
        E = COCOeval_faster(cg, cg.loadRes(copy.deepcopy(dets)), "segm")
        E.evaluate()
        E.accumulate()
    return E.eval["precision"], E.eval["recall"]


def cvtool_segm(gt, dets):
    g, d, gm, dm, da = segm_inputs(gt, dets)
    r = coco_evaluate(g, d, iou_type="segm", gt_masks=gm, dt_masks=dm, dt_area=da)
    return r["precision"], r["recall"]


def bench_segm(args) -> list:
    gt, dets = synthetic_coco_segm(n_images=args.segm_images, n_cats=args.classes,
                                   gt_per_image=7, dets_per_image=args.dets_per_image,
                                   height=480, width=640, seed=0)  # fmt: skip
    rows, ref = [], None
    for name, fn in (("pycocotools segm", pyco_segm), ("faster-coco-eval segm", faster_segm),
                     ("cvtool segm", cvtool_segm)):  # fmt: skip
        try:
            m = measure(fn, gt, dets, repeat=args.repeat)
        except ImportError as exc:
            print(f"({name} skipped: {exc})")
            continue
        prec, rec = m.pop("result")
        ref = ref or (prec, rec)
        diff = max(float(np.abs(prec - ref[0]).max()), float(np.abs(rec - ref[1]).max()))
        rows.append({"name": name, **m, "max_abs_diff": diff})
    title = (f"COCO segm evaluation from parsed JSON: {args.segm_images} images 480x640, "
             f"{len(dets)} mask results, {len(gt['annotations'])} objects")  # fmt: skip
    report(title, rows, baseline="pycocotools segm", json_path=None)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=500)
    ap.add_argument("--dets-per-image", type=float, default=50.0)
    ap.add_argument("--classes", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--iou-sizes", default="500,2000")
    ap.add_argument("--segm-images", type=int, default=300)
    ap.add_argument("--only", choices=("all", "bbox", "segm"), default="all")
    ap.add_argument("--json", dest="json_path", default=None)
    args = ap.parse_args()
    segm_rows = bench_segm(args) if args.only in ("all", "segm") else []
    if args.only == "segm":
        return _write(args, [], [], segm_rows)

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
    _write(args, eval_rows, iou_rows, segm_rows)


def _write(args, eval_rows, iou_rows, segm_rows) -> None:
    if args.json_path:
        import json

        for r in eval_rows + iou_rows + segm_rows:
            r.pop("result", None)
        doc = {"python": sys.version.split()[0], "evaluation": eval_rows, "iou": iou_rows,
               "segm": segm_rows}  # fmt: skip
        Path(args.json_path).write_text(json.dumps(doc, indent=2, default=str))
        print(f"(written to {args.json_path})")


if __name__ == "__main__":
    main()
