"""From a semantic label map to instances: one object per connected component of a class.

Semantic segmentation says which class each pixel is; instance segmentation
also says which object. The simplest step from one to the other: every
4-connected component of pixels of one class becomes an instance, scored by
the mean probability the network gave that class over the component's pixels,
and written as a COCO result with an RLE ``segmentation``, which
``cvtool iou map --iou-type segm`` scores.

What this cannot do: two touching (or overlapping) objects of the same class
form one component, so they come out as one instance, and one object broken
by a misclassified pixel line comes out as two. Mask R-CNN avoids both by
predicting a mask per detected box (a Faster R-CNN detector with a small FCN
mask head on each RoI), so instances come from the detector, not from pixel
connectivity.
"""

from __future__ import annotations

import numpy as np

from cvtool.boxes.rle import encode
from cvtool.errors import check_int


def components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """4-connected components of a boolean mask (H, W): (labels (H, W) int32, count).

    Background is 0; components are numbered 1..count in row-major order of
    their first pixel. Label propagation: every pixel takes the smallest label
    among itself and its neighbours until nothing changes (vectorised; the
    number of rounds is the longest path inside a component).
    """
    mask = np.asarray(mask, bool)
    h, w = mask.shape
    big = np.int64(h * w + 1)
    lab = np.where(mask, np.arange(1, h * w + 1).reshape(h, w), big)
    while True:
        new = lab.copy()
        new[1:] = np.minimum(new[1:], lab[:-1])
        new[:-1] = np.minimum(new[:-1], lab[1:])
        new[:, 1:] = np.minimum(new[:, 1:], lab[:, :-1])
        new[:, :-1] = np.minimum(new[:, :-1], lab[:, 1:])
        new = np.where(mask, new, big)
        if np.array_equal(new, lab):
            break
        lab = new
    roots = np.unique(lab[mask])
    out = np.zeros((h, w), np.int32)
    out[mask] = np.searchsorted(roots, lab[mask]) + 1
    return out, len(roots)


def instances(label_map, probs=None, *, image_id: int = 1, min_area: int = 1,
              background: int = 0) -> list[dict]:  # fmt: skip
    """COCO results (one per connected component of each non-background class).

    Parameters
    ----------
    label_map : (H, W) integer classes (0 = background on cvtool's canvases).
    probs : (H, W, K) class probabilities, for the scores (None: score 1).
    image_id : the COCO image id of the map.
    min_area : drop components smaller than this many pixels (speckle).
    background : the class that is not an object.

    Returns
    -------
    list of dict: image_id, category_id (= class, the canvases' category ids),
    segmentation (compressed RLE), area, bbox (xywh), score.
    """
    check_int("min-area", min_area, low=1)
    label_map = np.asarray(label_map)
    out = []
    for c in np.unique(label_map):
        if c == background:
            continue
        comp, n = components(label_map == c)
        for i in range(1, n + 1):
            m = comp == i
            area = int(m.sum())
            if area < min_area:
                continue
            ys, xs = np.nonzero(m)
            score = 1.0 if probs is None else float(np.asarray(probs)[..., int(c)][m].mean())
            out.append({
                "image_id": int(image_id), "category_id": int(c),
                "segmentation": encode(m.astype(np.uint8)), "area": area,
                "bbox": [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1),
                         float(ys.max() - ys.min() + 1)],
                "score": score,
            })  # fmt: skip
    return out
