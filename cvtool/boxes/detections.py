"""Ground truth and detections of a data set, and their grouping by (category, image).

The containers hold one row per annotation or detection in input order, with
image and category as indices into sorted id lists. COCO and VOC evaluation
(:mod:`cvtool.boxes.coco`, :mod:`cvtool.boxes.voc`) both match detections to
ground truth inside groups keyed ``category * n_images + image``; the grouping
lives here once. Reading them from files is :mod:`cvtool.boxes.io`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class GroundTruth:
    """Ground-truth boxes of a data set (one row per annotation, input order).

    ``img`` and ``cat`` index ``image_ids`` and ``cat_ids`` (both sorted, as
    COCOeval sorts them); ``boxes`` are xywh, float64, shape (N, 4).
    """

    image_ids: list
    cat_ids: list
    cat_names: list
    img: np.ndarray
    cat: np.ndarray
    boxes: np.ndarray
    area: np.ndarray
    iscrowd: np.ndarray
    difficult: np.ndarray
    id_zero: np.ndarray = field(default=None)

    def __post_init__(self):
        if self.id_zero is None:
            self.id_zero = np.zeros(len(self.img), dtype=bool)


@dataclass
class Detections:
    """Detections (input order): ``img``/``cat`` index the GroundTruth's lists; xywh boxes."""

    img: np.ndarray
    cat: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray


def group_gt(gt: GroundTruth):
    """Ground truth sorted by group key, input order inside a group.

    Returns
    -------
    order : array of int, shape (N,)
        Annotation indices in group order.
    key : array of int, shape (N,)
        Sorted group keys ``category * n_images + image``.
    """
    key = gt.cat.astype(np.int64) * len(gt.image_ids) + gt.img
    order = np.argsort(key, kind="stable")
    return order, key[order]


def pairs(d_key, g_key):
    """All (detection, ground truth) pairs sharing a group key.

    Parameters
    ----------
    d_key : array of int, shape (D,)
    g_key : array of int, shape (N,), sorted

    Returns
    -------
    pd, pg : arrays of int, shape (P,)
        Detection and ground-truth index of each pair; a detection's pairs are contiguous.
    gc : array of int, shape (D,)
        Number of pairs (ground truths in its group) of each detection.
    """
    gs = np.searchsorted(g_key, d_key, "left")
    gc = np.searchsorted(g_key, d_key, "right") - gs
    total = int(gc.sum())
    pd = np.repeat(np.arange(d_key.shape[0]), gc)
    local = np.arange(total) - np.repeat(np.cumsum(gc) - gc, gc)
    return pd, gs[pd] + local, gc
