"""Detection mAP, COCO style: pycocotools-exact and vectorised; the data containers.

COCO mode reproduces ``COCOeval(iouType='bbox')`` evaluate + accumulate +
summarize number for number: IoU thresholds .50:.05:.95, 101 recall points,
area ranges all/small/medium/large (on the annotation's ``area``), at most
1/10/100 detections per image and category, crowd regions (IoU =
intersection / area(detection), a crowd may absorb many detections, and a
detection matched to it is ignored), score ties ordered like COCOeval's stable
mergesort (by image id, then by input order). Matching is still greedy per
(image, category, area range, IoU threshold), but all of those run together:
one NumPy step per detection *rank*, over every group at once, and only for
detections whose best IoU reaches the lowest threshold (the rest can match
nothing). COCOeval's one quirk kept for parity: a match to an annotation with
``id == 0`` counts as no match.

Segmentation mode (``iou_type="segm"``, as ``COCOeval(iouType='segm')``) is the
same evaluation with mask IoU from :func:`cvtool.boxes.rle.pair_iou` (computed on
runs, crowds as the detection's area) and the detection's area for the area
ranges passed in (pycocotools' ``loadRes`` takes the box area when results
carry a ``bbox``, the mask area otherwise).

PASCAL VOC mAP lives in :mod:`cvtool.boxes.voc`. Left out: keypoint mAP, ``useCats=0``.
"""

from __future__ import annotations

import numpy as np

from cvtool.boxes import rle
from cvtool.boxes.detections import Detections, GroundTruth, group_gt, pairs
from cvtool.errors import check_choice

COCO_IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)  # exactly pycocotools' Params
COCO_RECALL_THRESHOLDS = np.linspace(0.0, 1.0, 101)
COCO_AREA_RANGES = {
    "all": (0.0, 1e10),
    "small": (0.0, 1024.0),
    "medium": (1024.0, 9216.0),
    "large": (9216.0, 1e10),
}
COCO_MAX_DETS = (1, 10, 100)
IOU_TYPES = ("bbox", "segm")
STAT_NAMES = (
    "AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large",
    "AR1", "AR10", "AR100", "AR_small", "AR_medium", "AR_large",
)  # fmt: skip


def stat_names(max_dets=COCO_MAX_DETS) -> list[str]:
    """Names of the summary numbers: the recall ones carry the maxDets values in use.

    >>> stat_names((5, 20, 50))[6:9]
    ['AR5', 'AR20', 'AR50']
    """
    return list(STAT_NAMES[:6]) + [f"AR{m}" for m in max_dets] + list(STAT_NAMES[9:])


def _coco_pair_iou(D, G, crowd):
    """IoU of paired xywh rows with pycocotools' exact float operations (maskApi.c bbIou)."""
    w = np.minimum(D[:, 2] + D[:, 0], G[:, 2] + G[:, 0]) - np.maximum(D[:, 0], G[:, 0])
    h = np.minimum(D[:, 3] + D[:, 1], G[:, 3] + G[:, 1]) - np.maximum(D[:, 1], G[:, 1])
    inter = w * h
    da = D[:, 2] * D[:, 3]
    ga = G[:, 2] * G[:, 3]
    union = np.where(crowd, da, da + ga - inter)
    ok = (w > 0) & (h > 0)
    return np.where(ok, inter / np.where(ok, union, 1.0), 0.0)


def _group_rank(keys):
    """Position of each element inside its run of equal (sorted) keys."""
    n = keys.shape[0]
    start = np.r_[True, keys[1:] != keys[:-1]] if n else np.zeros(0, bool)
    first = np.maximum.accumulate(np.where(start, np.arange(n), 0)) if n else np.zeros(0, int)
    return np.arange(n) - first


def _greedy_match(P, row_grp, ig, crowd, thr):
    """COCO greedy matching, all groups at once, one step per detection rank.

    P : (Dm, G) IoU of each matchable detection with its group's padded gts (-1 = no gt).
    row_grp : (Dm,) group of each row; rows of a group in rank order.
    ig : (Gn, A, G) gt ignored per area range; crowd : (Gn, G); thr : (T,).
    Returns has, via_ignored, gt column: each (Dm, A, T).
    """
    Dm, G = P.shape
    Gn, A = ig.shape[:2]
    T = thr.shape[0]
    has = np.zeros((Dm, A, T), bool)
    via_ig = np.zeros((Dm, A, T), bool)
    col = np.zeros((Dm, A, T), np.int64)
    if Dm == 0:
        return has, via_ig, col
    k = _group_rank(row_grp)
    counts = np.bincount(row_grp, minlength=Gn)
    order = np.argsort(-counts, kind="stable")  # busiest groups first: active ones are a prefix
    pos = np.empty(Gn, np.int64)
    pos[order] = np.arange(Gn)
    table = np.full((Gn, int(counts.max())), -1, np.int64)
    table[pos[row_grp], k] = np.arange(Dm)
    ig, crowd = ig[order], crowd[order][:, None, None, :]
    taken = np.zeros((Gn, A, T, G), bool)
    t4 = thr[None, None, :, None]
    n_active = np.searchsorted(-counts[order], -np.arange(1, table.shape[1] + 1), "right")
    for step in range(table.shape[1]):
        na = int(n_active[step])
        rows = table[:na, step]
        v = P[rows][:, None, None, :]  # (na, 1, 1, G)
        cand = (v >= t4) & ~(taken[:na] & ~crowd[:na])  # (na, A, T, G)
        igs = ig[:na, :, None, :]
        c1 = cand & ~igs
        c2 = cand & igs
        # COCOeval keeps the LAST gt with the best IoU (it replaces on >=): argmax on reversed.
        b1 = G - 1 - np.argmax(np.where(c1, v, -1.0)[..., ::-1], axis=-1)
        b2 = G - 1 - np.argmax(np.where(c2, v, -1.0)[..., ::-1], axis=-1)
        h1 = np.take_along_axis(c1, b1[..., None], -1)[..., 0]
        h2 = np.take_along_axis(c2, b2[..., None], -1)[..., 0]
        m = np.where(h1, b1, b2)
        hit = h1 | h2
        sub = taken[:na]
        now = np.take_along_axis(sub, m[..., None], -1)[..., 0] | hit
        np.put_along_axis(sub, m[..., None], now[..., None], -1)
        has[rows], via_ig[rows], col[rows] = hit, hit & ~h1, m
    return has, via_ig, col


def _match_buckets(mi, d_key, g_key, gc, pstart, piou, g_ig, g_crowd, g_zero, thr, limit=4_000_000):
    """Run :func:`_greedy_match` over groups bucketed by gt count (padding stays < 2x).

    Buckets are split into chunks of groups so that one step's (groups, A, T, G)
    temporaries hold at most ``limit`` elements. Yields (rows into ``mi``, has,
    via_ignored, matched-to-id-0), the last three (rows, A, T).
    """
    A, T = g_ig.shape[1], thr.shape[0]
    grp_key, row_grp = np.unique(d_key[mi], return_inverse=True)
    gstart = np.searchsorted(g_key, grp_key, "left")
    gcount = np.searchsorted(g_key, grp_key, "right") - gstart
    bucket = np.ceil(np.log2(gcount)).astype(np.int64)
    for b in np.unique(bucket):
        groups = np.nonzero(bucket == b)[0]
        G = int(gcount[groups].max())
        per = max(1, limit // (A * T * G))
        for lo in range(0, groups.size, per):
            chunk = groups[lo : lo + per]
            local = np.full(grp_key.size, -1, np.int64)
            local[chunk] = np.arange(chunk.size)
            rows = np.nonzero(local[row_grp] >= 0)[0]  # rank order kept (mi is sorted)
            d = mi[rows]
            n_pairs = gc[d]
            r_of_pair = np.repeat(np.arange(rows.size), n_pairs)
            col = np.arange(n_pairs.sum()) - np.repeat(np.cumsum(n_pairs) - n_pairs, n_pairs)
            P = np.full((rows.size, G), -1.0)  # (rows, G), -1 = padding
            P[r_of_pair, col] = piou[np.repeat(pstart[d], n_pairs) + col]
            gidx = gstart[chunk][:, None] + np.arange(G)[None, :]
            pad = np.arange(G)[None, :] >= gcount[chunk][:, None]
            gidx = np.where(pad, 0, gidx)
            ig = np.where(pad[:, None, :], True, g_ig[gidx].transpose(0, 2, 1))  # (Gn, A, G)
            h, v, m = _greedy_match(P, local[row_grp[rows]], ig, g_crowd[gidx] & ~pad, thr)
            zero = np.zeros_like(h)
            if g_zero.any():
                gz = (g_zero[gidx] & ~pad)[local[row_grp[rows]]][:, None, None, :]
                zero = h & np.take_along_axis(gz, m[..., None], -1)[..., 0]
            yield rows, h, v, zero


def coco_evaluate(
    gt: GroundTruth,
    dt: Detections,
    *,
    iou_thresholds=COCO_IOU_THRESHOLDS,
    area_ranges=COCO_AREA_RANGES,
    max_dets=COCO_MAX_DETS,
    chunk_elements: int = 4_000_000,
    iou_type: str = "bbox",
    gt_masks: rle.RleSet | None = None,
    dt_masks: rle.RleSet | None = None,
    dt_area=None,
) -> dict:
    """COCO evaluation, equal to pycocotools' COCOeval evaluate + accumulate + summarize.

    Parameters
    ----------
    gt, dt : GroundTruth, Detections
    iou_thresholds : array (T,)
        Default .50:.05:.95 (pycocotools' linspace values, compared exactly).
    area_ranges : dict name -> (lo, hi)
        Must keep the names all, small, medium, large for the 12 summary numbers.
    max_dets : sequence of int
        Default 1, 10, 100; matching uses the largest.
    chunk_elements : int
        Bound on one matching step's temporaries (groups x areas x thresholds x gts).
    iou_type : {"bbox", "segm"}
    gt_masks, dt_masks : RleSet, one mask per annotation / detection (input order)
        Needed for ``segm``.
    dt_area : array (D,), optional
        Detection areas for the area ranges; default the box area (bbox) or the
        mask area (segm).

    Returns
    -------
    dict
        ``precision`` (T, R, K, A, M) and ``recall`` (T, K, A, M) with -1 where
        a category has no (non-ignored) ground truth, as in ``COCOeval.eval``;
        ``stats`` (12,) as ``COCOeval.stats``; ``stat_names``;
        ``iou_thresholds``, ``recall_thresholds``, ``area_names``, ``max_dets``.
    """
    check_choice("iou_type", iou_type, IOU_TYPES)
    segm = iou_type == "segm"
    if segm and (gt_masks is None or dt_masks is None):
        raise ValueError("iou_type='segm' needs gt_masks and dt_masks")
    thr = np.asarray(iou_thresholds, np.float64)
    rec_thr = COCO_RECALL_THRESHOLDS
    areas = np.asarray(list(area_ranges.values()), np.float64)  # (A, 2)
    max_dets = sorted(int(m) for m in max_dets)
    I, K, T, R, A, M = (len(gt.image_ids), len(gt.cat_ids), len(thr), len(rec_thr),
                        len(areas), len(max_dets))  # fmt: skip

    # ground truth grouped by (category, image), input order inside a group
    go, g_key = group_gt(gt)
    g_box, g_area = gt.boxes[go], gt.area[go]
    g_crowd, g_zero = gt.iscrowd[go].astype(bool), gt.id_zero[go]
    g_ig = g_crowd[:, None] | (g_area[:, None] < areas[:, 0]) | (g_area[:, None] > areas[:, 1])

    # detections by group, then score (stable: input order breaks ties), top max_dets[-1]
    dkey_all = dt.cat.astype(np.int64) * I + dt.img
    do = np.lexsort((-dt.scores, dkey_all))
    rank = _group_rank(dkey_all[do])
    do, rank = do[rank < max_dets[-1]], rank[rank < max_dets[-1]]
    d_key, d_box, d_score = dkey_all[do], dt.boxes[do], dt.scores[do]
    Dn = d_key.shape[0]

    # every (detection, gt) pair of a group, and which detections can match anything
    pd, pg, gc = pairs(d_key, g_key)
    if segm:
        piou = rle.pair_iou(dt_masks, do[pd], gt_masks, go[pg], g_crowd[pg])
    else:
        piou = _coco_pair_iou(d_box[pd], g_box[pg], g_crowd[pg])
    best = np.full(Dn, -1.0)
    np.maximum.at(best, pd, piou)
    matchable = best >= thr.min()

    has = np.zeros((Dn, A, T), bool)
    zero = np.zeros((Dn, A, T), bool)
    via_ig = np.zeros((Dn, A, T), bool)
    mi = np.nonzero(matchable)[0]
    if mi.size:
        pstart = np.cumsum(gc) - gc  # each detection's pairs are contiguous
        for rows, h, v, zr in _match_buckets(mi, d_key, g_key, gc, pstart, piou, g_ig, g_crowd,
                                             g_zero, thr, chunk_elements):  # fmt: skip
            has[mi[rows]], via_ig[mi[rows]], zero[mi[rows]] = h, v, zr
    # COCOeval: dtIg = gtIg[match], or (no match and detection outside the area range)
    if dt_area is not None:
        d_area = np.asarray(dt_area, np.float64)[do]
    elif segm:
        d_area = rle.area(dt_masks).astype(np.float64)[do]
    else:
        d_area = d_box[:, 2] * d_box[:, 3]
    out = (d_area[:, None] < areas[:, 0]) | (d_area[:, None] > areas[:, 1])  # (Dn, A)
    eff = has & ~zero
    ignored = (has & via_ig) | (~eff & out[:, :, None])
    tp = eff & ~ignored
    fp = ~eff & ~ignored

    # non-ignored gt per (category, area)
    npig = np.zeros((K, A), np.int64)
    np.add.at(npig, gt.cat[go], (~g_ig).astype(np.int64))

    # accumulate: per category, detections by score; ties by image, then rank (COCOeval)
    d_cat, d_img = d_key // I, d_key % I
    acc = np.lexsort((rank, d_img, -d_score, d_cat))
    d_cat, rank_s, tp, fp = d_cat[acc], rank[acc], tp[acc], fp[acc]
    bounds = np.searchsorted(d_cat, np.arange(K + 1))
    precision = -np.ones((T, R, K, A, M))
    recall = -np.ones((T, K, A, M))
    eps = np.spacing(1)
    for k in range(K):
        lo, hi = bounds[k], bounds[k + 1]
        for a in range(A):
            if npig[k, a] == 0:
                continue
            for mj, md in enumerate(max_dets):
                keep = rank_s[lo:hi] < md
                tps = tp[lo:hi, a][keep].T  # (T, n)
                fps = fp[lo:hi, a][keep].T
                n = tps.shape[1]
                if n == 0:
                    precision[:, :, k, a, mj] = 0.0
                    recall[:, k, a, mj] = 0.0
                    continue
                tp_sum = np.cumsum(tps, axis=1).astype(float)
                fp_sum = np.cumsum(fps, axis=1).astype(float)
                rc = tp_sum / npig[k, a]
                pr = tp_sum / (fp_sum + tp_sum + eps)
                recall[:, k, a, mj] = rc[:, -1]
                env = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
                for t in range(T):
                    idx = np.searchsorted(rc[t], rec_thr, side="left")
                    q = np.zeros(R)
                    ok = idx < n
                    q[ok] = env[t, idx[ok]]
                    precision[t, :, k, a, mj] = q
    return _coco_summary(precision, recall, thr, list(area_ranges), max_dets)


def _mean_valid(s) -> float:
    v = s[s > -1]
    return float(np.mean(v)) if v.size else -1.0


def _coco_summary(precision, recall, thr, area_names, max_dets) -> dict:
    """The 12 COCOeval.summarize numbers (AP/AR over valid entries; -1 when none).

    With maxDets other than (1, 10, 100) every AP and the area ARs use the
    largest value and the three ARs one value each. (COCOeval.summarize computes
    its first line at maxDets=100 whatever the values, so it prints -1 there
    when 100 is not among them: cocoapi#584.)
    """
    a_all = area_names.index("all")
    m_last = len(max_dets) - 1
    t50 = np.nonzero(thr == 0.5)[0]
    t75 = np.nonzero(thr == 0.75)[0]
    stats = [_mean_valid(precision[:, :, :, a_all, m_last]),
             _mean_valid(precision[t50][:, :, :, a_all, m_last]),
             _mean_valid(precision[t75][:, :, :, a_all, m_last])]  # fmt: skip
    for name in ("small", "medium", "large"):
        stats.append(_mean_valid(precision[:, :, :, area_names.index(name), m_last]))
    for mj in range(len(max_dets)):
        stats.append(_mean_valid(recall[:, :, a_all, mj]))
    for name in ("small", "medium", "large"):
        stats.append(_mean_valid(recall[:, :, area_names.index(name), m_last]))
    per_class_ap = [
        _mean_valid(precision[:, :, k, a_all, m_last]) for k in range(precision.shape[2])
    ]
    per_class_ap50 = [
        _mean_valid(precision[t50][:, :, k, a_all, m_last]) for k in range(precision.shape[2])
    ]
    return {
        "stats": np.asarray(stats),
        "stat_names": stat_names(max_dets),
        "precision": precision,
        "recall": recall,
        "per_class_ap": per_class_ap,
        "per_class_ap50": per_class_ap50,
        "iou_thresholds": thr,
        "recall_thresholds": COCO_RECALL_THRESHOLDS,
        "area_names": area_names,
        "max_dets": max_dets,
    }
