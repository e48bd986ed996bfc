"""Greedy non-maximum suppression, per class and per image.

Boxes are visited by decreasing score (ties in input order) and each kept box
removes the remaining ones it overlaps by more than the threshold, as in
torchvision's ``nms`` and ``batched_nms``.

On NumPy the IoU matrix of each class is built and swept on the host. On a
device (CuPy) nothing crosses to the host until the end: the scores are
sorted on the device, one "suppresses" matrix per image (IoU above the
threshold, same class, later in score order; built in row blocks) is swept
there, one branch-free step per box, and the kept mask and order come to the
host once per call (once for all images in :func:`nms_per_image`), where the
CPU path copies an IoU matrix per image x class group. Left out: soft-NMS and
rotated boxes.
"""

from __future__ import annotations

import numpy as np

from cvtool.backend import array_module, to_numpy
from cvtool.boxes.core import box_iou
from cvtool.errors import CvtoolError, check_int, check_number


def nms_per_image(
    images, boxes, scores, iou_threshold: float = 0.5, *, classes=None, score_threshold=None,
    top_k=None, fmt: str = "xywh", offset: float = 0.0,
):  # fmt: skip
    """:func:`nms` run image by image (``top_k`` per image); kept indices in input order.

    ``images`` is an int array (N,) naming each box's image.
    """
    images = to_numpy(images).reshape(-1)
    xp = array_module(boxes)
    if xp is not np:
        return _nms_per_image_device(xp, images, boxes, scores, iou_threshold, classes,
                                     score_threshold, top_k, fmt, offset)  # fmt: skip
    kept = [np.zeros(0, dtype=np.int64)]
    for u in np.unique(images):
        i = np.nonzero(images == u)[0]
        c = None if classes is None else to_numpy(classes).reshape(-1)[i]
        k = nms(boxes[i], to_numpy(scores).reshape(-1)[i], iou_threshold, classes=c,
                score_threshold=score_threshold, top_k=top_k, fmt=fmt, offset=offset)  # fmt: skip
        kept.append(i[k])
    return np.sort(np.concatenate(kept))


def nms(
    boxes,
    scores,
    iou_threshold: float = 0.5,
    *,
    classes=None,
    score_threshold=None,
    top_k=None,
    fmt: str = "xywh",
    offset: float = 0.0,
):
    """Greedy non-maximum suppression, optionally per class (batched).

    Boxes are visited by decreasing score; each kept box removes every
    remaining box (of the same class when ``classes`` is given) whose IoU with
    it is strictly greater than ``iou_threshold``, as in torchvision's ``nms``
    and ``batched_nms``. Ties in score are broken by input order: the box that
    comes first in the input wins (a stable sort), so the result is
    deterministic on every backend.

    Parameters
    ----------
    boxes : array, shape (N, 4)
    scores : array, shape (N,)
    iou_threshold : float
        Suppress when IoU > this value, in [0, 1].
    classes : array of int, shape (N,), optional
        Class labels; boxes of different classes never suppress each other.
    score_threshold : float, optional
        Drop boxes with score < this before suppression.
    top_k : int, optional
        Keep at most this many boxes (the highest scoring) after suppression.
    fmt, offset
        Box format and pixel offset (see module docstring).

    Returns
    -------
    numpy.ndarray of int64, shape (K,)
        Indices of the kept boxes, by decreasing score.
    """
    check_number("iou_threshold", iou_threshold, low=0, high=1)
    if top_k is not None:
        check_int("top_k", top_k, low=1)
    xp = array_module(boxes)
    if xp is not np:
        order, alive = _device_sweep(xp, boxes, scores, iou_threshold, classes,
                                     score_threshold, top_k, fmt, offset)  # fmt: skip
        order, alive = to_numpy(order), _checked(to_numpy(alive))  # the call's copies
        return order[alive]
    s = to_numpy(scores).astype(np.float64).reshape(-1)
    if s.shape[0] != boxes.shape[0]:
        raise CvtoolError(
            f"'scores' must have one value per box ({boxes.shape[0]}). Got {s.shape[0]}."
        )
    if not np.isfinite(s).all():
        raise CvtoolError("The 'scores' must be finite numbers. Got NaN or inf.")
    order = np.argsort(-s, kind="stable")
    if score_threshold is not None:
        order = order[s[order] >= score_threshold]
    if classes is None:
        keep = _greedy(boxes, order, iou_threshold, fmt, offset)
    else:
        # one class at a time: memory stays at the largest class's K x K matrix
        c = to_numpy(classes).reshape(-1)[order]
        mark = np.zeros(s.shape[0], dtype=bool)
        for u in np.unique(c):
            mark[_greedy(boxes, order[c == u], iou_threshold, fmt, offset)] = True
        keep = order[mark[order]]  # all classes, by decreasing score
    return keep[:top_k] if top_k is not None else keep


def _greedy(boxes, order, iou_threshold, fmt, offset):
    """Greedy sweep over ``order`` (indices by decreasing score); returns the kept indices."""
    if order.size == 0:
        return np.zeros(0, dtype=np.int64)
    xp = array_module(boxes)
    sel = xp.asarray(order)
    over = to_numpy(box_iou(boxes[sel], boxes[sel], fmt, offset) > iou_threshold)  # (K, K)
    alive = np.ones(order.size, dtype=bool)
    keep = []
    for i in range(order.size):  # sequential by nature; each step is one row of a bool matrix
        if alive[i]:
            keep.append(i)
            alive &= ~over[i]
    return order[np.asarray(keep, dtype=np.int64)]


# ----------------------------------------------------------------------------- device path

BLOCK_ROWS = 1024  # rows of the IoU matrix computed at a time (K x BLOCK_ROWS floats)


def _device_sweep(xp, boxes, scores, iou_threshold, classes, score_threshold, top_k, fmt, offset):
    """Greedy NMS of one image on the device: (order, kept) device arrays.

    ``order`` (K,) holds the box indices by decreasing score (stable); ``kept``
    (K + 1,) bool says which survive (after ``score_threshold`` and ``top_k``),
    and its last entry whether every score was finite (see ``_checked``). No
    host transfer.
    """
    s = xp.asarray(scores).astype(xp.float64).reshape(-1)
    if s.shape[0] != boxes.shape[0]:
        raise CvtoolError(
            f"'scores' must have one value per box ({boxes.shape[0]}). Got {s.shape[0]}."
        )
    k = s.shape[0]
    order = xp.argsort(-s, kind="stable")  # (K,) by decreasing score, ties in input order
    alive = xp.isfinite(s)[order]  # NaN/inf scores are refused below, once, on the host
    if score_threshold is not None:
        alive &= s[order] >= score_threshold
    b = boxes[order]
    c = None if classes is None else xp.asarray(classes).reshape(-1)[order]
    over = xp.empty((k, k), dtype=bool)  # over[i, j]: box i (kept) removes the later box j
    cols = xp.arange(k)
    for r0 in range(0, k, BLOCK_ROWS):
        r1 = min(k, r0 + BLOCK_ROWS)
        blk = box_iou(b[r0:r1], b, fmt, offset) > iou_threshold  # (R, K)
        blk &= cols[None, :] > cols[r0:r1, None]  # later boxes only
        if c is not None:
            blk &= c[r0:r1, None] == c[None, :]
        over[r0:r1] = blk
    for i in range(k):  # sequential by nature: one branch-free step per box, on the device
        alive &= ~(over[i] & alive[i])
    if top_k is not None:
        alive &= xp.cumsum(alive) <= top_k
    return order, xp.concatenate([alive, xp.isfinite(s).all()[None]])


def _checked(kept: np.ndarray) -> np.ndarray:
    """The kept mask without its last entry, the finite-scores flag (CvtoolError if False)."""
    if kept.size and not kept[-1]:
        raise CvtoolError("The 'scores' must be finite numbers. Got NaN or inf.")
    return kept[:-1]


def _nms_per_image_device(xp, images, boxes, scores, iou_threshold, classes, score_threshold,
                          top_k, fmt, offset):  # fmt: skip
    """:func:`nms_per_image` on the device: one sweep per image, one copy to the host."""
    orders, alives = [], []
    scores = xp.asarray(scores).reshape(-1)
    classes = None if classes is None else xp.asarray(classes).reshape(-1)
    for u in np.unique(images):
        i = np.nonzero(images == u)[0]
        i_dev = xp.asarray(i)
        order, alive = _device_sweep(
            xp, boxes[i_dev], scores[i_dev], iou_threshold,
            None if classes is None else classes[i_dev], score_threshold, top_k, fmt, offset,
        )  # fmt: skip
        orders.append(i_dev[order])
        alives.append(alive)
    if not orders:
        return np.zeros(0, dtype=np.int64)
    order = to_numpy(xp.concatenate(orders))
    flags = to_numpy(xp.concatenate(alives))  # per image: K kept flags, then a finite flag
    ends = np.cumsum([len(a) for a in alives])
    if not flags[ends - 1].all():
        raise CvtoolError("The 'scores' must be finite numbers. Got NaN or inf.")
    alive = np.delete(flags, ends - 1)
    return np.sort(order[alive])
