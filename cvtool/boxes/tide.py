"""Where the AP goes: TIDE's error types and the AP gained by fixing each (dAP).

Bolya et al., "TIDE: A General Toolbox for Identifying Object Detection
Errors" (ECCV 2020), as the ``tidecv`` package computes it, at one
foreground IoU ``pos`` (0.5) and background IoU ``bg`` (0.1):

* per image, detections by decreasing score (ties in input order), at most
  ``max_dets`` (100) of them; each takes the unused same-class object it
  overlaps most if that IoU >= ``pos`` (a true positive). An unmatched
  detection overlapping a same-class crowd region by more than ``pos``
  (intersection / its own area) is ignored.
* every other detection gets the first error type that fits, in this order:
  **localisation** (its best same-class IoU is in [bg, pos]), **classification**
  (IoU >= pos with an object of another class), **duplicate** (IoU >= pos with
  a same-class object already taken), **background** (IoU <= bg with every
  object, or an image without objects), **both** (anything else: wrong class
  and badly placed);
* **missed**: an object left unmatched that no localisation or
  classification error could have claimed.

AP is TIDE's: per class, 101-point interpolated precision at one IoU, the
mean over classes that have objects or detections. Fixing a type (one at a
time, from the original): a classification or localisation error becomes a
true positive of the object's (classification) or its own (localisation)
class when it is the highest-scored such error on an object still free, and
is dropped otherwise; duplicate, background and both errors are dropped;
a missed object is taken out of the ground truth. dAP = max(AP fixed - AP, 0),
in AP points (0-100). Also TIDE's two special numbers: ``false_positives``
(every false positive scored 0) and ``false_negatives`` (every unmatched
object removed).

Score ties between images are broken by the order images are visited in
(``image_order``; ``iou errors`` passes the COCO file's order, as tidecv).
"""

from __future__ import annotations

import numpy as np

from cvtool.boxes.core import box_iou
from cvtool.boxes.detections import Detections, GroundTruth
from cvtool.errors import check_int, check_number

ERROR_TYPES = ("classification", "localisation", "both", "duplicate", "background", "missed")
_CLS, _LOC, _BOTH, _DUPE, _BKG = range(5)


def tide_ap(cls, scores, tp, n_pos, classes) -> float:
    """TIDE's mAP (0-100) of scored points.

    Parameters
    ----------
    cls, scores, tp : arrays, shape (P,)
        Class, score and true-positive flag of each point (ties: input order).
    n_pos : array of int, shape (K,)
        Objects per class.
    classes : array of bool, shape (K,)
        Classes that exist in the run (TIDE's non-empty ones need points or objects too).
    """
    aps = []
    x = np.arange(101) / 100  # as tidecv: x / 100 (np.linspace differs in the last bit)
    for k in range(n_pos.shape[0]):
        sel = cls == k
        if not classes[k] or (not sel.any() and n_pos[k] == 0):
            continue
        if n_pos[k] == 0:
            aps.append(0.0)
            continue
        if not sel.any():
            aps.append(0.0)
            continue
        o = np.argsort(-scores[sel], kind="stable")
        t = tp[sel][o]
        nt = np.cumsum(t)
        prec = nt / np.arange(1, t.size + 1)
        rec = nt / n_pos[k]
        prec = np.maximum.accumulate(prec[::-1])[::-1]
        idx = np.searchsorted(rec, x, side="left")
        y = np.where(idx < prec.size, prec[np.minimum(idx, prec.size - 1)], 0.0)
        aps.append(float(y.mean() * 100))
    return float(np.mean(aps)) if aps else 0.0


def _image(gb, gc, crowd_b, crowd_c, db, dc, pos, bg):
    """One image: matches, error type per detection, and the object each error points at."""
    nd, ng = db.shape[0], gb.shape[0]
    iou = box_iou(db, gb) if ng else np.zeros((nd, 0))
    same = dc[:, None] == gc[None, :]
    cls_iou = iou * same
    buf = cls_iou.copy()
    match = np.full(nd, -1, np.int64)
    for i in range(nd):
        if ng:
            j = int(np.argmax(buf[i]))
            if buf[i, j] >= pos:
                match[i] = j
                buf[:, j] = 0
    ignored = np.zeros(nd, bool)
    if crowd_b.shape[0]:
        ciou = box_iou(db, crowd_b, crowd=np.ones(crowd_b.shape[0], bool))
        ignored = (match < 0) & ((ciou > pos) & (dc[:, None] == crowd_c[None, :])).any(axis=1)
    err = np.full(nd, -1, np.int64)
    target = np.full(nd, -1, np.int64)
    used = np.zeros(ng, bool)
    used[match[match >= 0]] = True
    for i in np.nonzero(match < 0)[0]:
        if ng == 0:
            err[i] = _BKG
            continue
        j = int(np.argmax(cls_iou[i]))
        if bg <= cls_iou[i, j] <= pos:
            err[i], target[i] = _LOC, j
            continue
        non = iou[i] * ~same[i]
        j = int(np.argmax(non))
        if non[j] >= pos:
            err[i], target[i] = _CLS, j
            continue
        if (cls_iou[i] * used).max() >= pos:
            err[i] = _DUPE
        elif iou[i].max() <= bg:
            err[i] = _BKG
        else:
            err[i] = _BOTH
    return match, ignored, err, target


def tide_errors(gt: GroundTruth, dt: Detections, *, pos: float = 0.5, bg: float = 0.1,
                max_dets: int = 100, image_order=None) -> dict:  # fmt: skip
    """TIDE's error counts and dAP per type, and the AP they start from.

    Parameters
    ----------
    gt, dt : GroundTruth, Detections
    pos, bg : float
        Foreground and background IoU thresholds (TIDE's 0.5 and 0.1).
    max_dets : int
        Detections per image (the highest scored).
    image_order : array of int, shape (I,), optional
        The order images are visited in (indices into ``gt.image_ids``): it
        breaks score ties between images. tidecv follows the ground-truth
        file's ``images``; default: by image id.

    Returns
    -------
    dict
        ``ap`` (0-100, at IoU ``pos``), ``counts`` and ``dap`` (dicts over
        :data:`ERROR_TYPES`), ``special`` (``false_positives``,
        ``false_negatives`` dAP), ``per_detection`` (D,) "tp", an error
        name, or "" (beyond max_dets).
    """
    pos = check_number("pos", pos, low=0, high=1)
    bg = check_number("bg", bg, low=0, high=pos)
    max_dets = check_int("max-dets", max_dets, low=1)
    K = len(gt.cat_ids)
    crowd = gt.iscrowd.astype(bool)
    g_order = np.argsort(gt.img, kind="stable")
    g_bounds = np.searchsorted(gt.img[g_order], np.arange(len(gt.image_ids) + 1))
    d_order = np.lexsort((-dt.scores, dt.img))
    d_bounds = np.searchsorted(dt.img[d_order], np.arange(len(gt.image_ids) + 1))
    # per detection (input order): -3 dropped by max_dets, -1 true positive, else an error code
    state = np.full(len(dt.img), -3, np.int64)
    target = np.full(len(dt.img), -1, np.int64)  # the annotation a cls/loc error points at
    ignored = np.zeros(len(dt.img), bool)  # on a same-class crowd: no AP point
    matched_gt = np.zeros(len(gt.img), bool)
    seq = [np.zeros(0, np.int64)]  # detections in TIDE's visiting order
    visit = np.arange(len(gt.image_ids)) if image_order is None else np.asarray(image_order)
    for i in visit:
        ga = g_order[g_bounds[i] : g_bounds[i + 1]]
        da = d_order[d_bounds[i] : d_bounds[i + 1]][:max_dets]
        if da.size == 0:
            continue
        gn, gcr = ga[~crowd[ga]], ga[crowd[ga]]
        m, ign, err, tgt = _image(gt.boxes[gn], gt.cat[gn], gt.boxes[gcr], gt.cat[gcr],
                                  dt.boxes[da], dt.cat[da], pos, bg)  # fmt: skip
        state[da] = np.where(m >= 0, -1, err)
        target[da[tgt >= 0]] = gn[tgt[tgt >= 0]]
        ignored[da] = ign
        matched_gt[gn[m[m >= 0]]] = True
        seq.append(da)
    seq = np.concatenate(seq)
    st, tg, ign = state[seq], target[seq], ignored[seq]
    dcls, dsc = dt.cat[seq], dt.scores[seq]
    # BestGTMatch: of the cls/loc errors on an object still free, the first visited
    # (highest score; ties: the earlier) becomes the true positive, the others are dropped
    free = (tg >= 0) & ~matched_gt[np.maximum(tg, 0)]
    best = np.zeros(seq.size, bool)
    fi = np.nonzero(free)[0]
    best[fi[np.unique(tg[fi], return_index=True)[1]]] = True
    usable = np.zeros(len(gt.img), bool)
    usable[tg[free]] = True
    keep_gt = ~crowd
    n_pos = np.bincount(gt.cat[keep_gt], minlength=K)
    missed = keep_gt & ~matched_gt & ~usable
    unmatched = keep_gt & ~matched_gt
    is_tp = st == -1
    is_err = st >= 0
    pts = ~ign  # an ignored detection has no AP point
    present = (n_pos > 0) | (np.bincount(dcls[pts], minlength=K) > 0)
    fix_cls = np.where(st == _CLS, gt.cat[np.maximum(tg, 0)], dcls)

    def ap(sel, tp, npos=n_pos, scores=dsc, cls=dcls):
        return tide_ap(cls[sel], scores[sel], tp[sel], npos, present)

    base = ap(pts, is_tp)
    # TIDE rebuilds a fixed run as its errors (visiting order), then the true positives
    rebuilt = np.r_[np.nonzero(is_err)[0], np.nonzero(is_tp)[0]]
    r_st, r_pts, r_best = st[rebuilt], pts[rebuilt], best[rebuilt]
    r_cls, r_sc, r_tp = dcls[rebuilt], dsc[rebuilt], is_tp[rebuilt]
    counts, dap = {}, {}
    for code, name in ((_CLS, "classification"), (_LOC, "localisation"), (_BOTH, "both"),
                       (_DUPE, "duplicate"), (_BKG, "background")):  # fmt: skip
        e = r_st == code
        counts[name] = int(e.sum())
        fixed = e & r_best  # only cls/loc errors have a best
        sel = (r_pts & ~e) | fixed
        cls = np.where(fixed, fix_cls[rebuilt], r_cls)
        dap[name] = max(ap(sel, r_tp | fixed, cls=cls, scores=r_sc) - base, 0.0)
    counts["missed"] = int(missed.sum())
    npos_fixed = n_pos - np.bincount(gt.cat[missed], minlength=K)
    dap["missed"] = max(ap(r_pts, r_tp, npos_fixed, r_sc, r_cls) - base, 0.0)
    special = {
        "false_positives": ap(r_pts, r_tp, n_pos, np.where(r_tp, 1.0, 0.0), r_cls) - base,
        "false_negatives": ap(r_pts, r_tp, n_pos - np.bincount(gt.cat[unmatched], minlength=K),
                              r_sc, r_cls) - base,
    }  # fmt: skip
    names = np.array(["", "", "tp", "classification", "localisation", "both", "duplicate",
                      "background"], dtype=object)  # fmt: skip
    per_det = names[state + 3]
    return {"ap": base, "counts": counts, "dap": dap, "special": special,
            "per_detection": per_det.tolist(), "pos": pos, "bg": bg, "max_dets": max_dets}  # fmt: skip
