"""Synthetic COCO-format detection data for tests and benchmarks.

:func:`synthetic_coco` draws ground truth (boxes of every COCO area range,
a share of crowd regions, an ``area`` field that differs from the box area as
a segmentation's would) and detections around it (jittered hits, duplicates,
wrong classes, background false positives, scores rounded so that ties
happen). Everything comes from one seed. It exists to exercise the evaluator,
not to imitate any real detector.
"""

from __future__ import annotations

import numpy as np


def synthetic_coco(
    n_images: int = 300,
    n_cats: int = 8,
    gt_per_image: float = 6.0,
    dets_per_image: float = 30.0,
    crowd_frac: float = 0.04,
    score_decimals: int = 2,
    seed: int = 0,
) -> tuple[dict, list]:
    """A COCO ground-truth dict and a results list (plain JSON-able Python).

    Parameters
    ----------
    n_images, n_cats : int
    gt_per_image, dets_per_image : float
        Poisson means (about 1 image in 20 has no ground truth at all).
    crowd_frac : float
        Share of annotations with ``iscrowd = 1``.
    score_decimals : int
        Scores are rounded to this many decimals, producing ties.
    seed : int

    Returns
    -------
    (gt, dets)
        ``gt`` has ``images``, ``annotations``, ``categories``; ``dets`` is a
        list of ``{image_id, category_id, bbox, score}``.
    """
    rng = np.random.default_rng(seed)
    images = [{"id": int(i), "width": 640, "height": 480, "file_name": f"{i:06d}.jpg"}
              for i in rng.permutation(np.arange(1, n_images + 1) * 3)]  # fmt: skip
    cats = [{"id": int(c), "name": f"class{c}"} for c in range(1, n_cats + 1)]
    anns, dets = [], []
    for im in images:
        n_gt = 0 if rng.random() < 0.05 else rng.poisson(gt_per_image)
        boxes = []
        for _ in range(n_gt):
            side = np.exp(rng.uniform(np.log(6), np.log(300)))  # small, medium and large
            w, h = side * rng.uniform(0.6, 1.6), side * rng.uniform(0.6, 1.6)
            x, y = rng.uniform(0, 640 - min(w, 600)), rng.uniform(0, 480 - min(h, 450))
            c = int(rng.integers(1, n_cats + 1))
            crowd = int(rng.random() < crowd_frac)
            bbox = [round(float(v), 2) for v in (x, y, w, h)]
            area = float(bbox[2] * bbox[3] * rng.uniform(0.5, 1.0))
            anns.append({"id": len(anns) + 1, "image_id": im["id"], "category_id": c,
                         "bbox": bbox, "area": area, "iscrowd": crowd})  # fmt: skip
            boxes.append((bbox, c))
        n_det = rng.poisson(dets_per_image)
        for _ in range(n_det):
            if boxes and rng.random() < 0.7:
                (x, y, w, h), c = boxes[rng.integers(len(boxes))]
                j = rng.normal(0, 0.12, 4)
                bbox = [x + j[0] * w, y + j[1] * h, w * np.exp(j[2]), h * np.exp(j[3])]
                if rng.random() < 0.1:
                    c = int(rng.integers(1, n_cats + 1))
                score = rng.beta(4, 2)
            else:
                side = np.exp(rng.uniform(np.log(4), np.log(250)))
                bbox = [rng.uniform(0, 600), rng.uniform(0, 440), side, side * rng.uniform(0.5, 2)]
                c = int(rng.integers(1, n_cats + 1))
                score = rng.beta(2, 4)
            dets.append({"image_id": im["id"], "category_id": int(c),
                         "bbox": [round(float(v), 2) for v in bbox],
                         "score": round(float(score), score_decimals)})  # fmt: skip
    return {"images": images, "annotations": anns, "categories": cats}, dets
