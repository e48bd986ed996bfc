"""From files to the reports of ``iou confusion``, ``iou errors`` and ``iou curves``.

Each ``*_files`` function loads ground truth and detections (any format
:func:`cvtool.boxes.labels.load_pair` reads), runs the library function and
returns the JSON document, the summary pairs and the table rows, so the CLI
does no arithmetic. ``plot_*`` draw a result.
"""

from __future__ import annotations

from cvtool.boxes.confusion import confusion_matrix
from cvtool.errors import check_number


def _ratio(a, b):
    return float(a) / float(b) if b else None


def confusion_files(gt_path, dets_path, *, fmt="xywh", iou_threshold=0.5, score_threshold=0.3,
                    image_sizes=None) -> dict:  # fmt: skip
    """Load, build the detection confusion matrix, and tabulate it.

    Returns
    -------
    dict
        ``doc`` (JSON: ``classes``, ``matrix`` rows true / columns predicted,
        background last, ``per_class`` tp/fp/fn/precision/recall, totals),
        ``summary``, ``table_columns``, ``table_rows``, ``names``, ``matrix``.
    """
    from cvtool.boxes.labels import load_pair

    check_number("iou", iou_threshold, low=0, high=1)
    check_number("score-threshold", score_threshold)
    gt, dt = load_pair(gt_path, dets_path, fmt, image_sizes)
    r = confusion_matrix(gt, dt, iou_threshold=iou_threshold, score_threshold=score_threshold)
    names = [str(n) for n in gt.cat_names]
    m = r["matrix"]
    per_class = [{"class": n, "tp": int(r["tp"][k]), "fp": int(r["fp"][k]), "fn": int(r["fn"][k]),
                  "precision": _ratio(r["tp"][k], r["tp"][k] + r["fp"][k]),
                  "recall": _ratio(r["tp"][k], r["tp"][k] + r["fn"][k])}
                 for k, n in enumerate(names)]  # fmt: skip
    tp, fp, fn = int(r["tp"].sum()), int(r["fp"].sum()), int(r["fn"].sum())
    doc = {
        "iou_threshold": iou_threshold,
        "score_threshold": score_threshold,
        "layout": "rows: true class, columns: predicted class; background last in both",
        "classes": [*names, "background"],
        "matrix": m.tolist(),
        "per_class": per_class,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "images": len(gt.image_ids),
        "detections": int(len(dt.img)),
    }
    labels = [*names, "background"]
    rows = [[f"{labels[i]} (true)", *m[i].tolist()] for i in range(m.shape[0])]
    summary = {k: doc[k] for k in ("iou_threshold", "score_threshold", "tp", "fp", "fn",
                                   "precision", "recall")}  # fmt: skip
    return {"doc": doc, "summary": summary, "table_columns": ["", *labels], "table_rows": rows,
            "names": names, "matrix": m, "images": len(gt.image_ids),
            "detections": int(len(dt.img))}  # fmt: skip


def plot_confusion(result: dict, path) -> None:
    """Heatmap of a :func:`confusion_files` result."""
    from cvtool.boxes.plot import plot_confusion as _plot

    d = result["doc"]
    _plot(result["matrix"], result["names"], path,
          title=f"Detection confusion matrix (IoU > {d['iou_threshold']:g}, "
                f"score >= {d['score_threshold']:g})")  # fmt: skip


def errors_files(gt_path, dets_path, *, fmt="xywh", pos=0.5, bg=0.1, max_dets=100,
                 image_sizes=None) -> dict:  # fmt: skip
    """Load and run :func:`cvtool.boxes.tide.tide_errors`; the report of ``iou errors``."""
    from cvtool.boxes.labels import load_pair
    from cvtool.boxes.tide import ERROR_TYPES, tide_errors

    gt, dt, order = load_pair(gt_path, dets_path, fmt, image_sizes, with_order=True)
    r = tide_errors(gt, dt, pos=pos, bg=bg, max_dets=max_dets, image_order=order)
    doc = {
        "ap": r["ap"],
        "pos_threshold": r["pos"],
        "bg_threshold": r["bg"],
        "max_dets": r["max_dets"],
        "errors": {t: {"count": r["counts"][t], "dap": r["dap"][t]} for t in ERROR_TYPES},
        "special": r["special"],
        "images": len(gt.image_ids),
        "detections": int(len(dt.img)),
    }
    rows = [[t, r["counts"][t], r["dap"][t]] for t in ERROR_TYPES]
    rows += [[f"({k.replace('_', ' ')})", None, v] for k, v in r["special"].items()]
    summary = {f"AP{round(r['pos'] * 100)} (TIDE)": r["ap"],
               "largest loss": max(ERROR_TYPES, key=lambda t: r["dap"][t])
               if max(r["dap"].values()) > 0 else None}  # fmt: skip
    return {"doc": doc, "summary": summary, "table_columns": ["error", "count", "dAP"],
            "table_rows": rows, "images": len(gt.image_ids), "detections": int(len(dt.img)),
            "classes": len(gt.cat_ids)}  # fmt: skip


def plot_errors(result: dict, path) -> None:
    """Bars of the dAP of each error type of an :func:`errors_files` result."""
    from cvtool.boxes.plot import plot_bars

    d = result["doc"]
    plot_bars({t: e["dap"] for t, e in d["errors"].items()}, path,
              title=f"TIDE errors: AP gained by fixing each (AP{round(d['pos_threshold'] * 100)} "
                    f"= {d['ap']:.2f})", xlabel="dAP (AP points)")  # fmt: skip


def curves_files(gt_path, dets_path, *, fmt="xywh", iou_threshold=0.5, score_threshold=0.25,
                 image_sizes=None) -> dict:  # fmt: skip
    """Load and run :func:`cvtool.boxes.curves.pr_f1`; the report of ``iou curves``."""
    from cvtool.boxes.curves import pr_f1
    from cvtool.boxes.labels import load_pair

    gt, dt = load_pair(gt_path, dets_path, fmt, image_sizes)
    r = pr_f1(gt, dt, iou_threshold=iou_threshold, score_threshold=score_threshold)
    names = [str(n) for n in gt.cat_names]
    per_class = [{"class": n, **c} for n, c in zip(names, r["per_class"], strict=True)]
    o = r["overall"]
    doc = {"iou_threshold": r["iou_threshold"], "score_threshold": r["score_threshold"],
           "overall": o, "per_class": per_class, "images": len(gt.image_ids),
           "detections": int(len(dt.img))}  # fmt: skip
    rows = [[c["class"], c["n_pos"], c["dets"], c["at_threshold"]["precision"],
             c["at_threshold"]["recall"], c["at_threshold"]["f1"], c["best"]["threshold"],
             c["best"]["f1"], c["ap"]] for c in per_class]  # fmt: skip
    t = r["score_threshold"]
    summary = {
        f"precision @ score {t:g}": o["at_threshold"]["precision"],
        f"recall @ score {t:g}": o["at_threshold"]["recall"],
        f"F1 @ score {t:g}": o["at_threshold"]["f1"],
        "best-F1 threshold": o["best"]["threshold"],
        "best mean F1": o["best"]["f1"],
        f"mAP @ IoU {r['iou_threshold']:g} (all-point)": o["map"],
    }
    columns = ["class", "objects", "dets", "P", "R", "F1", "best thr", "best F1", "AP"]
    return {"doc": doc, "summary": summary, "table_columns": columns, "table_rows": rows,
            "raw": r, "names": names, "images": len(gt.image_ids),
            "detections": int(len(dt.img))}  # fmt: skip


def plot_curves(result: dict, path) -> None:
    """P/R/F1-confidence and precision-recall panels of a :func:`curves_files` result."""
    from cvtool.boxes.plot import plot_score_curves

    r = result["raw"]
    plot_score_curves(r["grid"], {k: r[k] for k in ("precision", "recall", "f1")},
                      {"precision": r["mean_precision"], "recall": r["mean_recall"],
                       "f1": r["mean_f1"]}, r["pr_curves"], result["names"], path,
                      best=r["overall"]["best"]["threshold"],
                      title=f"Detections matched at IoU {r['iou_threshold']:g}")  # fmt: skip
