"""Mask overlap: binary-mask IoU, semantic-segmentation metrics, IoU from pixel counts.

* :func:`mask_iou` — IoU of two binary masks (nonzero = foreground).
* :func:`segmentation_metrics` — for label maps (one class index per pixel):
  the confusion matrix, per-class IoU, mean IoU over classes present in
  prediction or truth, pixel accuracy, with an ``ignore_index`` (VOC's 255).
  Accumulate over a data set by summing confusion matrices.
* :func:`iou_from_counts` — the per-class IoU from pixel counts,
  ``overlap / (predicted + true - overlap)``, and their mean.

Mean IoU is the average over classes of one overlap ratio per class. It is
*not* detection mAP, which averages over classes the area under a
precision-recall curve built from ranked, scored detections matched at an
IoU threshold (see :mod:`cvtool.boxes.coco`). Arrays may be NumPy or CuPy.
"""

from __future__ import annotations

import numpy as np

from cvtool.backend import array_module, to_numpy
from cvtool.errors import CvtoolError, check_int

MEAN_IOU_NOTE = (
    "Mean IoU averages one overlap ratio per class. Detection mAP ('cvtool iou map') is "
    "different: per class, the area under the precision-recall curve of ranked detections "
    "matched to objects at an IoU threshold, then averaged over classes."
)


def _same_shape(a, b):
    if a.shape != b.shape:
        raise CvtoolError(
            f"The masks must have the same shape. Got {tuple(a.shape)} and {tuple(b.shape)}."
        )


def _nanmean(v) -> float:
    """Mean of the finite entries of ``v``; NaN when there are none (no warning)."""
    return float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")


def _class_iou(overlap, pred_n, true_n):
    """Per-class IoU ``overlap / (pred + true - overlap)`` (NaN where the union is 0), and the union."""
    union = pred_n + true_n - overlap
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, overlap / union, np.nan), union


def _num_classes(pairs, num_classes, ignore_index) -> int:
    """``num_classes``, or 1 + the largest label in the (pred, true) pairs; checked >= 1."""
    if num_classes is None:
        hi = 0
        for p, t in pairs:
            t = array_module(p).asarray(t)
            t = t[t != ignore_index] if ignore_index is not None else t
            hi = max(hi, int(p.max()) if p.size else 0, int(t.max()) if t.size else 0)
        num_classes = hi + 1
    check_int("num_classes", num_classes, low=1)
    return num_classes


def mask_iou(a, b) -> dict:
    """IoU of two binary masks (any nonzero value is foreground).

    Parameters
    ----------
    a, b : array, shape (H, W)

    Returns
    -------
    dict
        ``iou`` (NaN when both masks are empty: undefined), ``intersection``,
        ``union``, ``area_a``, ``area_b`` (pixel counts).

    Examples
    --------
    >>> mask_iou(np.array([[1, 1, 0]]), np.array([[0, 1, 1]]))["iou"]
    0.3333333333333333
    """
    _same_shape(a, b)
    xp = array_module(a)
    fa, fb = a != 0, xp.asarray(b) != 0
    inter = int(xp.count_nonzero(fa & fb))
    union = int(xp.count_nonzero(fa | fb))
    return {
        "iou": inter / union if union else float("nan"),
        "intersection": inter,
        "union": union,
        "area_a": int(xp.count_nonzero(fa)),
        "area_b": int(xp.count_nonzero(fb)),
    }


def confusion_matrix(pred, true, num_classes: int, ignore_index: int | None = 255):
    """(C, C) pixel counts, rows = true class, columns = predicted class.

    Pixels whose true label is ``ignore_index`` are skipped; any other label
    outside ``[0, num_classes)`` is an error.
    """
    _same_shape(pred, true)
    xp = array_module(pred)
    p = pred.reshape(-1).astype(xp.int64)
    t = xp.asarray(true).reshape(-1).astype(xp.int64)
    if ignore_index is not None:
        keep = t != ignore_index
        p, t = p[keep], t[keep]
    for name, lab in (("prediction", p), ("ground truth", t)):
        if lab.size and (int(lab.min()) < 0 or int(lab.max()) >= num_classes):
            bad = int(lab.max()) if int(lab.max()) >= num_classes else int(lab.min())
            raise CvtoolError(
                f"The {name} labels must be in [0, {num_classes}) (--num-classes). Got {bad}."
            )
    return xp.bincount(t * num_classes + p, minlength=num_classes**2).reshape(
        num_classes, num_classes
    )


def metrics_from_confusion(cm) -> dict:
    """Per-class IoU, mean IoU, pixel accuracy and mean class accuracy from a confusion matrix.

    Classes absent from both prediction and truth get IoU NaN (None in JSON)
    and are left out of the mean, as mmseg and torchmetrics do.
    """
    cm = to_numpy(cm).astype(np.float64)
    tp = np.diag(cm)
    true_n, pred_n = cm.sum(axis=1), cm.sum(axis=0)
    iou, _ = _class_iou(tp, pred_n, true_n)
    with np.errstate(divide="ignore", invalid="ignore"):
        acc = np.where(true_n > 0, tp / true_n, np.nan)
    total = cm.sum()
    return {
        "per_class_iou": iou,
        "mean_iou": _nanmean(iou),
        "pixel_accuracy": float(tp.sum() / total) if total else float("nan"),
        "mean_class_accuracy": _nanmean(acc),
        "true_pixels": true_n.astype(np.int64),
        "pred_pixels": pred_n.astype(np.int64),
        "intersection": tp.astype(np.int64),
    }


def segmentation_metrics(pred, true, num_classes: int | None = None, ignore_index=255) -> dict:
    """Semantic-segmentation metrics of one label map pair (see :func:`metrics_from_confusion`).

    ``num_classes`` defaults to 1 + the largest label seen (other than ``ignore_index``).
    """
    num_classes = _num_classes([(pred, true)], num_classes, ignore_index)
    out = metrics_from_confusion(confusion_matrix(pred, true, num_classes, ignore_index))
    out["num_classes"] = num_classes
    return out


def iou_from_counts(pred, true, overlap) -> dict:
    """Per-class IoU from pixel counts: overlap / (predicted + true - overlap), and the mean.

    Parameters
    ----------
    pred, true, overlap : sequences of numbers, one per class
        Predicted pixels, true pixels, and pixels both predicted and true.

    Returns
    -------
    dict
        ``per_class_iou`` (list), ``union`` (list), ``mean_iou``.

    Examples
    --------
    >>> r = iou_from_counts([189, 31], [201, 50], [185, 23])
    >>> [round(v, 3) for v in r["per_class_iou"]], round(r["mean_iou"], 2)
    ([0.902, 0.397], 0.65)
    """
    p, t, o = (np.asarray(v, dtype=np.float64).reshape(-1) for v in (pred, true, overlap))
    if not (p.size == t.size == o.size) or p.size == 0:
        raise CvtoolError(
            "--pred, --true and --overlap must list the same number (>= 1) of classes. "
            f"Got {p.size}, {t.size} and {o.size}."
        )
    for name, v in (("pred", p), ("true", t), ("overlap", o)):
        if not np.isfinite(v).all() or (v < 0).any():
            raise CvtoolError(f"The '{name}' counts must be finite and >= 0. Got {v.tolist()}.")
    if (o > np.minimum(p, t)).any():
        i = int(np.nonzero(o > np.minimum(p, t))[0][0])
        raise CvtoolError(
            f"The overlap of class {i + 1} must be <= both its counts. "
            f"Got overlap {o[i]:g} with pred {p[i]:g} and true {t[i]:g}."
        )
    iou, union = _class_iou(o, p, t)
    return {
        "per_class_iou": iou.tolist(),
        "union": [int(u) if u.is_integer() else u for u in union.tolist()],
        "mean_iou": _nanmean(iou),
    }


def segmentation_metrics_many(pairs, num_classes: int | None = None, ignore_index=255) -> dict:
    """:func:`segmentation_metrics` over several (pred, true) pairs: confusion matrices summed."""
    num_classes = _num_classes(pairs, num_classes, ignore_index)
    cm = sum(to_numpy(confusion_matrix(p, t, num_classes, ignore_index)) for p, t in pairs)
    out = metrics_from_confusion(cm)
    out["num_classes"] = num_classes
    out["confusion_matrix"] = cm
    return out
