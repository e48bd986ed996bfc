"""From files to a mAP report: load, evaluate (COCO or VOC), tabulate, plot.

The command ``cvtool iou map`` is a thin wrapper around :func:`evaluate_files`,
which returns the JSON document, the summary pairs and the per-class table
rows, so the CLI does no arithmetic. :func:`plot` draws the precision-recall
curves of a result.
"""

from __future__ import annotations

import numpy as np

from cvtool.boxes import io as boxes_io
from cvtool.boxes.coco import STAT_NAMES, coco_evaluate
from cvtool.boxes.voc import voc_evaluate
from cvtool.errors import CvtoolError, check_choice, check_number

MODES = ("coco", "voc07", "voc12")
STAT_LABELS = (
    "AP @[IoU=.50:.95 | area=all | maxDets=100]",
    "AP @[IoU=.50 | area=all | maxDets=100]",
    "AP @[IoU=.75 | area=all | maxDets=100]",
    "AP @[IoU=.50:.95 | area=small | maxDets=100]",
    "AP @[IoU=.50:.95 | area=medium | maxDets=100]",
    "AP @[IoU=.50:.95 | area=large | maxDets=100]",
    "AR @[IoU=.50:.95 | area=all | maxDets=1]",
    "AR @[IoU=.50:.95 | area=all | maxDets=10]",
    "AR @[IoU=.50:.95 | area=all | maxDets=100]",
    "AR @[IoU=.50:.95 | area=small | maxDets=100]",
    "AR @[IoU=.50:.95 | area=medium | maxDets=100]",
    "AR @[IoU=.50:.95 | area=large | maxDets=100]",
)


def _none(v):
    return None if v is None or v == -1 or (isinstance(v, float) and np.isnan(v)) else float(v)


def evaluate_files(gt_path, dets_path, *, mode="coco", fmt="xywh", iou_threshold=0.5, offset=0.0):
    """Load ground truth and detections, evaluate, and build the report.

    Returns
    -------
    dict
        ``doc`` (the JSON document), ``summary``, ``title``, ``table_columns``,
        ``table_rows``, ``warnings`` (list of str), ``images``, ``detections``,
        ``per_class``, ``curves`` (label, recall, precision) for plotting.
    """
    check_choice("mode", mode, MODES)
    check_number("iou", iou_threshold, low=0, high=1, low_open=True)
    gt = boxes_io.load_ground_truth(gt_path, fmt)
    if len(gt.image_ids) == 0:
        raise CvtoolError(f"The ground truth '{gt_path}' has no images.")
    if len(gt.img) == 0:
        raise CvtoolError(f"The ground truth '{gt_path}' has no annotations.")
    dt = boxes_io.load_detections(dets_path, gt, fmt)
    warnings = []
    if len(dt.img) == 0:
        warnings.append(f"'{dets_path}' has no detections: every AP is 0")
    if gt.id_zero.any() and mode == "coco":
        warnings.append("an annotation has id 0; like COCOeval, a match to it counts as no match")
    n_gt = np.bincount(gt.cat, minlength=len(gt.cat_ids))
    n_dt = np.bincount(dt.cat, minlength=len(gt.cat_ids))
    names = [str(n) for n in gt.cat_names]
    per_class, curves = [], []
    if mode == "coco":
        r = coco_evaluate(gt, dt)
        stats = {k: _none(v) for k, v in zip(STAT_NAMES, r["stats"].tolist(), strict=True)}
        summary = {label: stats[k] for label, k in zip(STAT_LABELS, STAT_NAMES, strict=True)}
        for k, name in enumerate(names):
            per_class.append({"class": name, "id": gt.cat_ids[k], "gt": int(n_gt[k]), "dets": int(n_dt[k]),
                              "ap": _none(r["per_class_ap"][k]), "ap50": _none(r["per_class_ap50"][k])})  # fmt: skip
            p = r["precision"][0, :, k, 0, -1]  # IoU .50, area all, maxDets 100
            if (p > -1).all():
                curves.append((name, r["recall_thresholds"], p))
        doc = {"mode": mode, "stats": stats, "per_class": per_class}
        columns = ["class", "gt", "dets", "AP", "AP50"]
        rows = [[c["class"], c["gt"], c["dets"], c["ap"], c["ap50"]] for c in per_class]
        title = "COCO bbox evaluation (pycocotools-compatible)"
        plot_title = "Precision-recall at IoU 0.50 (COCO, 101-point interpolated)"
    else:
        r = voc_evaluate(gt, dt, iou_threshold=iou_threshold, use_07=mode == "voc07", offset=offset)
        for k, name in enumerate(names):
            per_class.append({"class": name, "id": gt.cat_ids[k], "gt": int(n_gt[k]),
                              "npos": int(r["npos"][k]), "dets": int(n_dt[k]), "ap": r["per_class_ap"][k]})  # fmt: skip
            if r["per_class_ap"][k] is not None and r["curves"][k][0].size:
                curves.append((name, *r["curves"][k]))
        label = "VOC2007 11-point" if mode == "voc07" else "VOC2010+ all-point"
        summary = {f"mAP @ IoU {iou_threshold:g} ({label})": r["map"]}
        doc = {
            "mode": mode,
            "map": r["map"],
            "iou_threshold": iou_threshold,
            "per_class": per_class,
        }
        columns = ["class", "gt (non-difficult)", "dets", "AP"]
        rows = [[c["class"], c["npos"], c["dets"], c["ap"]] for c in per_class]
        title = f"PASCAL VOC evaluation ({label})"
        plot_title = f"Precision-recall at IoU {iou_threshold:g} ({label})"
    doc.update(images=len(gt.image_ids), detections=int(len(dt.img)), warnings=warnings)
    return {"doc": doc, "summary": summary, "title": title, "table_columns": columns,
            "table_rows": rows, "warnings": warnings, "images": len(gt.image_ids),
            "detections": int(len(dt.img)), "per_class": per_class, "curves": curves,
            "plot_title": plot_title}  # fmt: skip


def plot(result: dict, path) -> None:
    """Draw the per-class precision-recall curves of an :func:`evaluate_files` result."""
    from cvtool.boxes.plot import plot_pr_curves

    mean = None
    if result["doc"]["mode"] == "coco" and result["curves"]:
        rec = result["curves"][0][1]
        mean = (rec, np.mean([c[2] for c in result["curves"]], axis=0))
    plot_pr_curves(result["curves"], path, title=result["plot_title"], mean_curve=mean)
