"""PASCAL VOC detection mAP (VOC2007 11-point, VOC2010+ all-point), vectorised.

Follows the devkit: one IoU threshold (0.5 by default; a match needs IoU >=
threshold), each detection is compared with the ground truth it overlaps most
in its image and class (difficult or already taken ones included; the first
on ties); a hit on a ``difficult`` box is neither true nor false positive, a
second hit on a taken box is a false positive. Detections are ranked by score,
ties in input order. AP is the 11-point average (VOC2007) or the area under
the interpolated curve at every recall change (VOC2010+). Crowd annotations
count as difficult. Classes without non-difficult ground truth have no AP and
are left out of the mean. Coordinates are continuous unless ``offset=1`` (the
devkit's +1 pixel convention).
"""

from __future__ import annotations

import numpy as np

from cvtool.boxes.core import convert
from cvtool.boxes.detections import Detections, GroundTruth, group_gt, pairs


def voc_ap(rec, prec, use_07: bool) -> float:
    """AP from a recall/precision curve: 11-point (VOC2007) or all-point (VOC2010+).

    >>> voc_ap(np.array([0.5, 1.0]), np.array([1.0, 0.5]), use_07=False)
    0.75
    """
    if use_07:
        ap = 0.0
        for t in np.linspace(0.0, 1.0, 11):
            p = prec[rec >= t]
            ap += (p.max() if p.size else 0.0) / 11.0
        return float(ap)
    mrec = np.concatenate([[0.0], rec, [1.0]])
    mpre = np.concatenate([[0.0], prec, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    i = np.nonzero(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def voc_evaluate(
    gt: GroundTruth,
    dt: Detections,
    *,
    iou_threshold: float = 0.5,
    use_07: bool = False,
    offset: float = 0.0,
) -> dict:
    """PASCAL VOC mAP at one IoU threshold, vectorised (no per-detection Python).

    Returns
    -------
    dict
        ``map`` (mean over classes with ground truth), ``per_class_ap`` (None
        for classes without non-difficult ground truth), ``curves`` (per class
        (recall, precision) arrays), ``npos``.
    """
    I, K = len(gt.image_ids), len(gt.cat_ids)
    difficult = gt.difficult.astype(bool) | gt.iscrowd.astype(bool)
    go, g_key = group_gt(gt)
    g_box, g_diff = gt.boxes[go], difficult[go]
    # per class: detections by decreasing score, ties in input order
    do = np.lexsort((-dt.scores, dt.cat))
    d_key = dt.cat[do].astype(np.int64) * I + dt.img[do]
    d_box = dt.boxes[do]
    pd, pg, _ = pairs(d_key, g_key)
    a = convert(d_box[pd], "xywh", "xyxy", offset)
    b = convert(g_box[pg], "xywh", "xyxy", offset)
    w = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]) + offset, 0, None)
    h = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]) + offset, 0, None)
    inter = w * h
    union = d_box[pd, 2] * d_box[pd, 3] + g_box[pg, 2] * g_box[pg, 3] - inter
    piou = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
    n = d_key.shape[0]
    ovmax = np.full(n, -np.inf)
    np.maximum.at(ovmax, pd, piou)
    # first gt with the maximal overlap (np.argmax in the devkit's port)
    first = np.full(n, np.iinfo(np.int64).max)
    at_max = piou == ovmax[pd]
    np.minimum.at(first, pd[at_max], pg[at_max])
    hit = ovmax >= iou_threshold
    jmax = np.where(hit, first, 0)
    hit_diff = hit & g_diff[jmax]
    cand = np.nonzero(hit & ~hit_diff)[0]
    tp = np.zeros(n, bool)
    _, first_use = np.unique(jmax[cand], return_index=True)  # the first claim of a gt wins
    tp[cand[first_use]] = True
    fp = ~tp & ~hit_diff
    cats = dt.cat[do]
    npos = np.bincount(gt.cat[~difficult], minlength=K)
    aps, curves = [], []
    for k in range(K):
        s = slice(*np.searchsorted(cats, [k, k + 1]))
        tpc, fpc = np.cumsum(tp[s]).astype(float), np.cumsum(fp[s]).astype(float)
        if npos[k] == 0:
            aps.append(None)
            curves.append((np.zeros(0), np.zeros(0)))
            continue
        rec = tpc / npos[k]
        prec = tpc / np.maximum(tpc + fpc, np.finfo(np.float64).eps)
        aps.append(voc_ap(rec, prec, use_07))
        curves.append((rec, prec))
    valid = [x for x in aps if x is not None]
    return {
        "map": float(np.mean(valid)) if valid else None,
        "per_class_ap": aps,
        "curves": curves,
        "npos": npos,
        "iou_threshold": iou_threshold,
        "use_07": use_07,
    }
