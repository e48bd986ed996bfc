"""Precision, recall and F1 against the score threshold; per-class PR curves.

At one IoU threshold (0.5 by default): in each image and class, detections by
decreasing score (ties in input order) each take the still-free object they
overlap most, if that IoU >= the threshold (COCO's and VOC's greedy rule);
crowd regions and ``difficult`` objects are left out, as in the confusion
matrix. Then, for a class and a score threshold ``t``, counting the
detections with score >= ``t``:

    precision = TP / detections,  recall = TP / objects,  F1 = 2PR / (P + R)

(precision of no detection is 1 and F1 then 0, ultralytics' convention at
the curve's end). The curves are exact step functions sampled at every
confidence of a grid (1,001 points over [0, 1], or over the scores' range
when they leave it). "Overall" numbers are the mean over the classes that
have objects (ultralytics' mean P, R and F1); the best-F1 threshold is the
grid point of the highest mean F1 (the lowest such threshold on ties), and
each class has its own. ``ap`` is the all-point (VOC2010+) area under each
class's precision-recall curve.
"""

from __future__ import annotations

import numpy as np

from cvtool.boxes.confusion import greedy_pairs
from cvtool.boxes.detections import Detections, GroundTruth, pairs
from cvtool.boxes.voc import voc_ap
from cvtool.errors import check_number


def match_detections(gt: GroundTruth, dt: Detections, iou_threshold: float = 0.5):
    """True-positive flag of every detection (greedy by score, per image and class).

    Returns
    -------
    tp : array of bool, shape (D,)
    n_pos : array of int, shape (K,)
        Objects per class (crowd and difficult left out).
    """
    keep = np.nonzero(~(gt.iscrowd.astype(bool) | gt.difficult.astype(bool)))[0]
    I = len(gt.image_ids)
    g_key = gt.cat[keep].astype(np.int64) * I + gt.img[keep]
    go = keep[np.argsort(g_key, kind="stable")]
    g_key = np.sort(g_key, kind="stable")
    d_key = dt.cat.astype(np.int64) * I + dt.img
    pd, pg, _ = pairs(d_key, g_key)
    pg = go[pg]
    iou = _pair_iou(dt.boxes[pd], gt.boxes[pg])
    ok = iou >= iou_threshold
    pd, pg, iou = pd[ok], pg[ok], iou[ok]
    d_rank = np.empty(len(dt.img), np.int64)
    d_rank[np.lexsort((np.arange(len(dt.img)), -dt.scores))] = np.arange(len(dt.img))
    order = np.lexsort((pg, -iou, d_rank[pd]))
    rank = np.empty(order.size, np.int64)
    rank[order] = np.arange(order.size)
    acc = greedy_pairs(rank, pg, pd)
    tp = np.zeros(len(dt.img), bool)
    tp[pd[acc]] = True
    return tp, np.bincount(gt.cat[keep], minlength=len(gt.cat_ids))


def _pair_iou(d, g):
    """IoU of paired xywh rows (continuous coordinates)."""
    w = np.minimum(d[:, 0] + d[:, 2], g[:, 0] + g[:, 2]) - np.maximum(d[:, 0], g[:, 0])
    h = np.minimum(d[:, 1] + d[:, 3], g[:, 1] + g[:, 3]) - np.maximum(d[:, 1], g[:, 1])
    inter = np.clip(w, 0, None) * np.clip(h, 0, None)
    union = d[:, 2] * d[:, 3] + g[:, 2] * g[:, 3] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def _prf(tp_count, det_count, n_pos):
    p = np.where(det_count > 0, tp_count / np.maximum(det_count, 1), 1.0)
    r = tp_count / n_pos if n_pos else np.zeros_like(p, dtype=float)
    f1 = np.where(p + r > 0, 2 * p * r / np.where(p + r > 0, p + r, 1.0), 0.0)
    return p, r, f1


def pr_f1(gt: GroundTruth, dt: Detections, *, iou_threshold: float = 0.5,
          score_threshold: float = 0.25, grid_points: int = 1001) -> dict:  # fmt: skip
    """P, R, F1 at a score threshold, the F1-confidence curves and the best-F1 thresholds.

    Returns
    -------
    dict
        ``grid`` (G,) confidences; ``precision``, ``recall``, ``f1`` (K, G)
        per class on the grid; ``mean_f1`` (G,) over classes with objects;
        ``per_class`` list of dicts (``n_pos``, ``dets``, ``ap``,
        ``at_threshold`` {precision, recall, f1, tp, fp, fn}, ``best``
        {threshold, precision, recall, f1}); ``overall`` the same two dicts
        (means over classes with objects); ``pr_curves`` per class (recall,
        precision) arrays in score order.
    """
    iou_threshold = check_number("iou", iou_threshold, low=0, high=1, low_open=True)
    score_threshold = check_number("score-threshold", score_threshold)
    K = len(gt.cat_ids)
    tp, n_pos = match_detections(gt, dt, iou_threshold)
    lo, hi = 0.0, 1.0
    if dt.scores.size and (dt.scores.min() < 0 or dt.scores.max() > 1):
        lo, hi = float(dt.scores.min()), float(dt.scores.max())
    grid = np.linspace(lo, hi, grid_points)
    P, R, F = (np.zeros((K, grid_points)) for _ in range(3))
    per_class, curves = [], []
    for k in range(K):
        sel = np.nonzero(dt.cat == k)[0]
        o = sel[np.lexsort((sel, -dt.scores[sel]))]
        s, t = dt.scores[o], tp[o]
        ctp = np.r_[0, np.cumsum(t)]
        # detections with score >= c: count = number of sorted scores >= c
        n_at = np.searchsorted(-s, -grid, side="right")
        P[k], R[k], F[k] = _prf(ctp[n_at], n_at, n_pos[k])
        n_t = int(np.searchsorted(-s, -score_threshold, side="right"))
        p, r, f = (float(v) for v in _prf(ctp[n_t], np.array(n_t), n_pos[k]))
        rec = ctp[1:] / n_pos[k] if n_pos[k] else np.zeros(t.size)
        prec = ctp[1:] / np.arange(1, t.size + 1)
        curves.append((rec, prec))
        b = int(np.argmax(F[k]))
        per_class.append({
            "n_pos": int(n_pos[k]), "dets": int(sel.size),
            "ap": voc_ap(rec, prec, use_07=False) if n_pos[k] else None,
            "at_threshold": {"precision": p, "recall": r, "f1": f, "tp": int(ctp[n_t]),
                             "fp": int(n_t - ctp[n_t]), "fn": int(n_pos[k] - ctp[n_t])},
            "best": {"threshold": float(grid[b]), "precision": float(P[k, b]),
                     "recall": float(R[k, b]), "f1": float(F[k, b])},
        })  # fmt: skip
    has = n_pos > 0
    mean = {n: (a[has].mean(axis=0) if has.any() else np.zeros(grid_points))
            for n, a in (("precision", P), ("recall", R), ("f1", F))}  # fmt: skip
    b = int(np.argmax(mean["f1"]))
    at = [c["at_threshold"] for c, h in zip(per_class, has, strict=True) if h]
    overall = {
        "at_threshold": {m: float(np.mean([a[m] for a in at])) if at else None
                         for m in ("precision", "recall", "f1")},
        "best": {"threshold": float(grid[b]), **{m: float(mean[m][b]) for m in mean}},
        "map": float(np.mean([c["ap"] for c in per_class if c["ap"] is not None]))
        if has.any() else None,
    }  # fmt: skip
    return {"grid": grid, "precision": P, "recall": R, "f1": F, "mean_f1": mean["f1"],
            "mean_precision": mean["precision"], "mean_recall": mean["recall"],
            "per_class": per_class, "overall": overall, "pr_curves": curves, "has_objects": has,
            "iou_threshold": iou_threshold, "score_threshold": score_threshold}  # fmt: skip
