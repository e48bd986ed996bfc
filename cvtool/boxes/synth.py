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


def _blob(rng, cx, cy, radius, n_vertices):
    """A star-shaped polygon ``[x1, y1, ...]`` around (cx, cy) with jagged radii."""
    ang = np.sort(rng.uniform(0, 2 * np.pi, n_vertices))
    r = radius * rng.uniform(0.5, 1.2, n_vertices)
    return np.stack([cx + r * np.cos(ang), cy + r * np.sin(ang)], 1).round(2).reshape(-1)


def synthetic_coco_segm(
    n_images: int = 60,
    n_cats: int = 4,
    gt_per_image: float = 5.0,
    dets_per_image: float = 20.0,
    crowd_frac: float = 0.1,
    rle_frac: float = 0.2,
    score_decimals: int = 2,
    det_bbox: bool = False,
    height: int = 240,
    width: int = 320,
    seed: int = 0,
) -> tuple[dict, list]:
    """A COCO instance-segmentation ground truth and mask results (plain JSON-able Python).

    Ground truth: star-shaped polygons (some of two parts, some reaching past
    the image border), a share ``rle_frac`` given as compressed RLE instead,
    crowds as uncompressed RLE (COCO's convention) or polygons; ``area`` is
    the mask area times a factor in [0.8, 1.1] (as a polygon's area differs
    from its pixel count) and ``bbox`` the mask's box. Results: compressed RLE
    of jittered and shifted copies of the objects (some with a wrong class),
    plus background blobs; with ``det_bbox`` each result also carries its box.

    Returns
    -------
    (gt, dets)
        ``gt`` has ``images`` (with ``height``, ``width``), ``annotations``,
        ``categories``; ``dets`` a list of ``{image_id, category_id,
        segmentation, score[, bbox]}``.
    """
    from cvtool.boxes import rle

    rng = np.random.default_rng(seed)
    images = [{"id": int(i), "width": width, "height": height, "file_name": f"{i:06d}.jpg"}
              for i in rng.permutation(np.arange(1, n_images + 1) * 2)]  # fmt: skip
    cats = [{"id": int(c), "name": f"class{c}"} for c in range(1, n_cats + 1)]
    big = min(height, width) / 2
    anns, dets, polys, owners = [], [], [], []  # owners: ('gt', i) or ('dt', i)
    for im in images:
        n_gt = 0 if rng.random() < 0.05 else rng.poisson(gt_per_image)
        objs = []
        for _ in range(n_gt):
            rad = np.exp(rng.uniform(np.log(3), np.log(big)))
            cx, cy = rng.uniform(-0.1, 1.1) * width, rng.uniform(-0.1, 1.1) * height
            parts = [_blob(rng, cx, cy, rad, int(rng.integers(3, 14)))]
            if rng.random() < 0.15:
                parts.append(
                    _blob(rng, cx + rad, cy + rad * 0.5, rad * 0.5, int(rng.integers(3, 8)))
                )
            c = int(rng.integers(1, n_cats + 1))
            anns.append({"id": len(anns) + 1, "image_id": im["id"], "category_id": c,
                         "iscrowd": int(rng.random() < crowd_frac)})  # fmt: skip
            for p in parts:
                polys.append(p)
                owners.append(("gt", len(anns) - 1))
            objs.append((parts, c, rad))
        for _ in range(rng.poisson(dets_per_image)):
            if objs and rng.random() < 0.7:
                parts, c, rad = objs[rng.integers(len(objs))]
                shift = rng.normal(0, 0.15 * rad, 2)
                parts = [p + np.tile(shift, p.size // 2) + rng.normal(0, 0.1 * rad, p.size)
                         for p in parts]  # fmt: skip
                if rng.random() < 0.1:
                    c = int(rng.integers(1, n_cats + 1))
                score = rng.beta(4, 2)
            else:
                rad = np.exp(rng.uniform(np.log(3), np.log(big)))
                parts = [_blob(rng, rng.uniform(0, width), rng.uniform(0, height), rad,
                               int(rng.integers(3, 10)))]  # fmt: skip
                c = int(rng.integers(1, n_cats + 1))
                score = rng.beta(2, 4)
            dets.append({"image_id": im["id"], "category_id": c,
                         "score": round(float(score), score_decimals)})  # fmt: skip
            for p in parts:
                polys.append(p)
                owners.append(("dt", len(dets) - 1))
    # rasterise every polygon at once, then one mask per object
    kind = np.array([o[0] == "gt" for o in owners], bool)
    idx = np.array([o[1] for o in owners], np.int64)
    for is_gt, items in ((True, anns), (False, dets)):
        sel = np.nonzero(kind == is_gt)[0]
        segms = [[] for _ in items]
        for i in sel:
            segms[idx[i]].append(polys[i].tolist())
        if not items:
            continue
        n = len(items)
        masks = rle.from_segmentations(segms, np.full(n, height), np.full(n, width))
        strings = rle.counts_to_strings(masks)
        areas = rle.area(masks)
        boxes = rle.to_bbox(masks)
        counts = np.split(masks.counts, masks.offsets[1:-1])
        for i, item in enumerate(items):
            rle_dict = {"size": [height, width], "counts": strings[i]}
            if is_gt:
                if item["iscrowd"] and rng.random() < 0.7:
                    item["segmentation"] = {"size": [height, width], "counts": counts[i].tolist()}
                elif rng.random() < rle_frac:
                    item["segmentation"] = rle_dict
                else:
                    item["segmentation"] = segms[i]
                item["area"] = float(areas[i]) * float(rng.uniform(0.8, 1.1))
                item["bbox"] = boxes[i].tolist()
            else:
                item["segmentation"] = rle_dict
                if det_bbox:
                    item["bbox"] = boxes[i].tolist()
    return {"images": images, "annotations": anns, "categories": cats}, dets
