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


def _coco_pair_iou(d_box, pd, g_box, pg, crowd, block=1 << 16):
    """IoU of xywh boxes d_box[pd] and g_box[pg] with pycocotools' float operations (maskApi.c bbIou).

    In blocks of pairs, whose temporaries reuse the same memory.
    """
    out = np.empty(pd.shape[0])
    for lo in range(0, pd.shape[0], block):
        D, G = d_box[pd[lo : lo + block]].T, g_box[pg[lo : lo + block]].T
        w = np.minimum(D[2] + D[0], G[2] + G[0]) - np.maximum(D[0], G[0])
        h = np.minimum(D[3] + D[1], G[3] + G[1]) - np.maximum(D[1], G[1])
        inter = w * h
        da = D[2] * D[3]
        union = np.where(crowd[lo : lo + block], da, da + G[2] * G[3] - inter)
        ok = (w > 0) & (h > 0)
        out[lo : lo + block] = np.where(ok, inter / np.where(ok, union, 1.0), 0.0)
    return out


def _group_rank(keys):
    """Position of each element inside its run of equal (sorted) keys."""
    n = keys.shape[0]
    start = np.r_[True, keys[1:] != keys[:-1]] if n else np.zeros(0, bool)
    first = np.maximum.accumulate(np.where(start, np.arange(n), 0)) if n else np.zeros(0, int)
    return np.arange(n) - first


def _area_units(ig, pad):
    """Which (group, area range) pairs can share one matching.

    Area ranges change a matching only through the gts they ignore, and only
    when a group has both kinds: with every real gt ignored, or none, greedy
    matching is the plain one (the ignored flag then follows from the range
    alone). So each (group, area) gets a pattern (its ignore mask, or all False
    when uniform) and equal patterns of a group share a unit.

    Returns unit_of (Gn, A) into the units, the units' group and pattern (U,),
    (U, G), and all_ig (Gn, A): every real gt of the group ignored in that range.
    """
    Gn, A, _ = ig.shape
    real = ~pad[:, None, :]
    any_ig = (ig & real).any(-1)
    all_ig = (ig | ~real).all(-1)
    pattern = ig & (any_ig & ~all_ig)[..., None]  # (Gn, A, G)
    first = np.tile(np.arange(A), (Gn, 1))  # first area of each group with the same pattern
    for a in range(A - 1, 0, -1):
        for b in range(a - 1, -1, -1):
            same = (pattern[:, a] == pattern[:, b]).all(-1)
            first[same, a] = b
    own = first == np.arange(A)
    unit_id = np.cumsum(own.ravel()).reshape(Gn, A) - 1
    unit_of = np.take_along_axis(unit_id, first, 1)
    grp, area = np.nonzero(own)
    return unit_of, grp, pattern[grp, area], all_ig


def _greedy_match(P, row_grp, ig, pad, crowd, thr, want_col=True):
    """COCO greedy matching, all groups and area ranges at once, one step per detection rank.

    P : (Dm, G) IoU of each matchable detection with its group's padded gts (-1 = no gt);
    Dm >= 1 (every group of a chunk has rows).
    row_grp : (Dm,) group of each row; rows of a group in rank order.
    ig : (Gn, A, G) gt ignored per area range; pad, crowd : (Gn, G); thr : (T,).
    Returns has and via_ignored, (Dm, A, ceil(T / 8)) with the thresholds as bits
    (:func:`_bits`), and the gt column (Dm, A, T) (None unless ``want_col``).
    """
    G, T = P.shape[1], thr.shape[0]
    unit_of, u_grp, u_ig, all_ig = _area_units(ig, pad)
    k = _group_rank(row_grp)
    counts = np.bincount(row_grp, minlength=ig.shape[0])
    u_count = counts[u_grp]
    # each unit's results sit at offset + rank; busiest units first: active ones are a prefix
    offset = np.cumsum(u_count) - u_count
    order = np.argsort(-u_count, kind="stable")
    table = np.full((u_grp.size, int(counts.max())), -1, np.int64)  # (U, steps): rows
    g_first = np.cumsum(counts) - counts  # rows of a group are contiguous (mi is by group)
    steps = np.arange(table.shape[1])
    live = steps[None, :] < u_count[order][:, None]
    table[live] = (g_first[u_grp[order]][:, None] + steps[None, :])[live]
    # gts on the first axis: every step works on (G, units, T) slabs, element by element
    u_ig, u_crowd = u_ig[order].T[:, :, None], crowd[u_grp[order]].T[:, :, None]
    slot = offset[order]
    PT = np.ascontiguousarray(P.T)
    # per unit and rank: 2 * gt column + (matched a non-ignored gt), -1 for no match
    found = np.full((int(u_count.sum()), T), -1, np.int32)
    taken = np.zeros((G, u_grp.size, T), bool)
    n_active = np.searchsorted(-u_count[order], -np.arange(1, table.shape[1] + 1), "right")
    for step in range(table.shape[1]):
        na = int(n_active[step])
        v = PT[:, table[:na, step], None]  # (G, na, 1)
        cand = (v >= thr) & ~(taken[:, :na] & ~u_crowd[:, :na])  # (G, na, T)
        c1 = cand & ~u_ig[:, :na]
        h1 = c1.any(0)  # a non-ignored gt is preferred; else an ignored one
        w = np.where(np.where(h1, c1, cand), v, -1.0)
        best = w.max(0)
        hit = best > -1.0  # candidates' IoUs are >= 0
        m = np.zeros((na, T), np.int32)
        for g in range(1, G):  # COCOeval keeps the LAST gt with the best IoU (replaces on >=)
            m[w[g] == best] = g
        for g in range(G):
            taken[g, :na] |= hit & (m == g)
        found[slot[:na] + step] = np.where(hit, 2 * m + h1, -1)
    at = offset[unit_of[row_grp]] + k[:, None]  # (Dm, A): each row's unit result
    has = _bits(found >= 0)[at]
    via = has & (~_bits((found & 1) == 1)[at] | _byte_mask(all_ig[row_grp]))
    return has, via, (found >> 1)[at] if want_col else None


def _bits(flags):
    """Boolean (..., T) packed along the last axis into (..., ceil(T / 8)) bytes."""
    return np.packbits(flags, axis=-1, bitorder="little")


def _byte_mask(flags):
    """Boolean (...) as (..., 1) bytes of all ones or zeros: a flag for every threshold bit."""
    return np.where(flags, np.uint8(255), np.uint8(0))[..., None]


def _match_buckets(mi, d_key, g_key, gc, pstart, piou, g_ig, g_crowd, g_zero, thr, limit=4_000_000):
    """Run :func:`_greedy_match` over groups bucketed by gt count (padding stays < 2x).

    Buckets are split into chunks of groups so that one step's (groups, A, T, G)
    temporaries hold at most ``limit`` elements. Yields (rows into ``mi``, has,
    via_ignored, matched-to-id-0 or None when no gt has id 0), the last three
    (rows, A, ceil(T / 8)) threshold bits.
    """
    A, T = g_ig.shape[1], thr.shape[0]
    any_zero = bool(g_zero.any())
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
            grp = local[row_grp[rows]]
            h, v, m = _greedy_match(P, grp, ig, pad, g_crowd[gidx] & ~pad, thr, any_zero)
            zero = None
            if any_zero:
                gz = (g_zero[gidx] & ~pad)[grp][:, None, None, :]
                zero = h & _bits(np.take_along_axis(gz, m[..., None], -1)[..., 0])
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
        piou = _coco_pair_iou(d_box, pd, g_box, pg, g_crowd[pg])
    best = np.full(Dn, -1.0)
    np.maximum.at(best, pd, piou)
    matchable = best >= thr.min()

    # per detection and area range, the thresholds as bits (bytes of 8)
    all_t = _bits(np.ones((1, T), bool))[0]
    has = np.zeros((Dn, A, all_t.size), np.uint8)
    via_ig = np.zeros_like(has)
    zero = np.zeros_like(has) if g_zero.any() else None
    mi = np.nonzero(matchable)[0]
    if mi.size:
        pstart = np.cumsum(gc) - gc  # each detection's pairs are contiguous
        for rows, h, v, zr in _match_buckets(mi, d_key, g_key, gc, pstart, piou, g_ig, g_crowd,
                                             g_zero, thr, chunk_elements):  # fmt: skip
            has[mi[rows]], via_ig[mi[rows]] = h, v
            if zero is not None:
                zero[mi[rows]] = zr
    # COCOeval: dtIg = gtIg[match], or (no match and detection outside the area range)
    if dt_area is not None:
        d_area = np.asarray(dt_area, np.float64)[do]
    elif segm:
        d_area = rle.area(dt_masks).astype(np.float64)[do]
    else:
        d_area = d_box[:, 2] * d_box[:, 3]
    out = (d_area[:, None] < areas[:, 0]) | (d_area[:, None] > areas[:, 1])  # (Dn, A)
    eff = has if zero is None else has & ~zero
    ignored = via_ig | (~eff & _byte_mask(out))  # (via_ig is within has)
    tp = eff & ~via_ig  # = eff & ~ignored; a false positive is neither matched nor ignored
    ni = ~ignored & all_t

    # non-ignored gt per (category, area)
    npig = np.zeros((K, A), np.int64)
    np.add.at(npig, gt.cat[go], (~g_ig).astype(np.int64))

    # accumulate: per category, detections by score; ties by image, then rank (COCOeval)
    # (detections are by category, image, score, input order: stable sorts keep the ties)
    d_cat = d_key // I
    by_score = np.argsort(-d_score, kind="stable")
    acc = by_score[np.argsort(d_cat[by_score].astype(np.min_scalar_type(K)), kind="stable")]
    live = ni.any(-1)[acc]  # (Dn, A): ignored at every threshold adds to no sum
    precision = -np.ones((T, R, K, A, M))
    recall = -np.ones((T, K, A, M))
    for a in range(A):
        rows = acc[live[:, a]]
        # (T, n) bool: one threshold's row contiguous
        tp_a = np.unpackbits(tp[rows, a].T, axis=0, count=T, bitorder="little").view(bool)
        ni_a = np.unpackbits(ni[rows, a].T, axis=0, count=T, bitorder="little").view(bool)
        rank_a = rank[rows]
        bounds = np.searchsorted(d_cat[rows], np.arange(K + 1))
        for k in np.nonzero(npig[:, a])[0]:
            lo, hi = bounds[k], bounds[k + 1]
            for mj, md in enumerate(max_dets):
                tps, nis = tp_a[:, lo:hi], ni_a[:, lo:hi]
                if md < max_dets[-1]:
                    keep = np.nonzero(rank_a[lo:hi] < md)[0]
                    tps, nis = tps[:, keep], nis[:, keep]
                precision[:, :, k, a, mj], recall[:, k, a, mj] = _precision_at_recall(
                    tps, nis, npig[k, a], rec_thr
                )
    return _coco_summary(precision, recall, thr, list(area_ranges), max_dets)


def _precision_at_recall(tp, ni, n_gt, rec_thr):
    """COCOeval.accumulate for one (category, area, maxDets): (T, R) precision, (T,) recall.

    tp, ni : (T, n) bool, detections in score order: true positive / not ignored.
    COCOeval takes cumulative sums over all n detections; the interpolated
    precision at a recall point is the maximum precision at or after it, and
    precision only rises at a true positive (a false positive lowers it, an
    ignored detection keeps it). So only the true positives are visited, with
    the same float operations as COCOeval: tp / (fp + tp + eps), tp / n_gt.
    """
    T, n = tp.shape
    R = rec_thr.shape[0]
    q = np.zeros((T, R))
    if n == 0:
        return q, np.zeros(T)
    seen = np.cumsum(ni, axis=1, dtype=np.int32)  # fp + tp so far, per threshold
    t_of, j = np.nonzero(tp)  # true positives, by threshold, then score order
    n_tp = np.bincount(t_of, minlength=T)
    start = np.cumsum(n_tp) - n_tp
    tp_sum = (np.arange(t_of.size) - np.repeat(start, n_tp) + 1).astype(np.float64)
    pr = tp_sum / (seen[t_of, j] + np.spacing(1))
    for t in range(T):
        seg = slice(start[t], start[t] + n_tp[t])
        idx = np.searchsorted(tp_sum[seg] / n_gt, rec_thr, side="left")
        ok = idx < n_tp[t]
        q[t, ok] = np.maximum.accumulate(pr[seg][::-1])[::-1][idx[ok]]
    return q, n_tp / n_gt


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
