"""Detection confusion matrix with a background row and column (supervision's definition).

At one IoU threshold and one score threshold, per image: detections scoring
below the score threshold are dropped; every (ground truth, detection) pair
of the image with IoU **strictly above** the IoU threshold is a candidate,
whatever the two classes; candidates are taken greedily, pairs of the same
class first, then by decreasing IoU (ties: ground truth, then detection, in
input order), each ground truth and each detection at most once. A matched
pair adds one to ``matrix[true class, predicted class]`` (the diagonal is
right, elsewhere a confusion); an unmatched ground truth adds one to
``matrix[true class, background]`` (missed), an unmatched detection to
``matrix[background, predicted class]`` (a false positive). Rows are the true
classes, columns the predicted ones, background last in both: the layout of
``supervision.metrics.detection.ConfusionMatrix`` (ultralytics prints the
transpose).

Crowd regions (``iscrowd``) and ``difficult`` objects are left out of the
ground truth, as ultralytics and supervision know neither. The greedy sweep
runs for all images at once: each round accepts every pair that comes first
among the undecided pairs of both its ground truth and its detection (such a
pair is what the sequential greedy would take), then drops the pairs that
share a ground truth or a detection with an accepted one.
"""

from __future__ import annotations

import numpy as np

from cvtool.boxes.detections import Detections, GroundTruth, pairs
from cvtool.errors import check_number


def _pair_iou_xyxy(d, g):
    """IoU of paired xywh rows computed on corners (supervision's arithmetic)."""
    dx2, dy2 = d[:, 0] + d[:, 2], d[:, 1] + d[:, 3]
    gx2, gy2 = g[:, 0] + g[:, 2], g[:, 1] + g[:, 3]
    w = np.clip(np.minimum(gx2, dx2) - np.maximum(g[:, 0], d[:, 0]), 0.0, None)
    h = np.clip(np.minimum(gy2, dy2) - np.maximum(g[:, 1], d[:, 1]), 0.0, None)
    inter = w * h
    union = (gx2 - g[:, 0]) * (gy2 - g[:, 1]) + (dx2 - d[:, 0]) * (dy2 - d[:, 1]) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def greedy_pairs(rank, pg, pd):
    """Sequential greedy matching of candidate pairs, computed in vectorised rounds.

    Parameters
    ----------
    rank : array of int, shape (P,)
        Each pair's position in the greedy order (distinct values).
    pg, pd : arrays of int, shape (P,)
        Ground-truth and detection index of each pair.

    Returns
    -------
    array of bool, shape (P,)
        The pairs the greedy sweep accepts (each gt and detection at most once).
    """
    P = rank.shape[0]
    accepted = np.zeros(P, bool)
    live = np.arange(P)
    n_g = int(pg.max()) + 1 if P else 0
    n_d = int(pd.max()) + 1 if P else 0
    big = np.iinfo(np.int64).max
    while live.size:
        r, g, d = rank[live], pg[live], pd[live]
        first_g = np.full(n_g, big)
        first_d = np.full(n_d, big)
        np.minimum.at(first_g, g, r)
        np.minimum.at(first_d, d, r)
        take = (first_g[g] == r) & (first_d[d] == r)
        accepted[live[take]] = True
        used_g = np.zeros(n_g, bool)
        used_d = np.zeros(n_d, bool)
        used_g[g[take]] = True
        used_d[d[take]] = True
        live = live[~(used_g[g] | used_d[d])]
    return accepted


def confusion_matrix(
    gt: GroundTruth,
    dt: Detections,
    *,
    iou_threshold: float = 0.5,
    score_threshold: float = 0.3,
    pair_iou=None,
) -> dict:
    """The (K + 1, K + 1) detection confusion matrix, background last.

    Parameters
    ----------
    gt, dt : GroundTruth, Detections
    iou_threshold : float
        A pair matches only with IoU > this (supervision's default 0.5).
    score_threshold : float
        Detections with score < this are dropped (supervision's default 0.3).
    pair_iou : callable (det_index (P,), gt_index (P,)) -> (P,), optional
        IoU of given pairs (e.g. mask IoU); default box IoU.

    Returns
    -------
    dict
        ``matrix`` (K + 1, K + 1) int64, rows true class, columns predicted;
        ``tp``, ``fp``, ``fn`` (K,) per class (fp: every detection of the class
        not on the diagonal; fn: every object of the class not on the
        diagonal); ``gt_match`` (N,) the detection matched to each annotation
        (-1 none or left out), ``dt_match`` (D,) the annotation matched to
        each detection (-1 none or dropped).
    """
    iou_threshold = check_number("iou", iou_threshold, low=0, high=1)
    score_threshold = check_number("score-threshold", score_threshold)
    K = len(gt.cat_ids)
    keep_g = np.nonzero(~(gt.iscrowd.astype(bool) | gt.difficult.astype(bool)))[0]
    go = keep_g[np.argsort(gt.img[keep_g], kind="stable")]
    keep_d = np.nonzero(dt.scores >= score_threshold)[0]
    pd, pg, _ = pairs(dt.img[keep_d].astype(np.int64), gt.img[go].astype(np.int64))
    pd, pg = keep_d[pd], go[pg]  # original indices
    if pair_iou is None:
        iou = _pair_iou_xyxy(dt.boxes[pd], gt.boxes[pg])
    else:
        iou = np.asarray(pair_iou(pd, pg), np.float64)
    cand = iou > iou_threshold
    pd, pg, iou = pd[cand], pg[cand], iou[cand]
    same = gt.cat[pg] == dt.cat[pd]
    # greedy order: image, same class first, IoU descending, then gt, then detection
    order = np.lexsort((pd, pg, -iou, ~same, gt.img[pg]))
    rank = np.empty(order.size, np.int64)
    rank[order] = np.arange(order.size)
    acc = greedy_pairs(rank, pg, pd)
    gt_match = np.full(len(gt.img), -1, np.int64)
    dt_match = np.full(len(dt.img), -1, np.int64)
    gt_match[pg[acc]], dt_match[pd[acc]] = pd[acc], pg[acc]
    m = np.zeros((K + 1, K + 1), np.int64)
    np.add.at(m, (gt.cat[pg[acc]], dt.cat[pd[acc]]), 1)
    missed = go[gt_match[go] < 0]
    np.add.at(m, (gt.cat[missed], K), 1)
    spurious = keep_d[dt_match[keep_d] < 0]
    np.add.at(m, (K, dt.cat[spurious]), 1)
    tp = np.diag(m)[:K].copy()
    return {
        "matrix": m,
        "tp": tp,
        "fp": m[:, :K].sum(axis=0) - tp,
        "fn": m[:K, :].sum(axis=1) - tp,
        "gt_match": gt_match,
        "dt_match": dt_match,
        "iou_threshold": iou_threshold,
        "score_threshold": score_threshold,
    }
