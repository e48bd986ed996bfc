"""Label files of every format the ``iou`` commands read: dispatch by path.

COCO JSON and the box CSV are read by :mod:`cvtool.boxes.io`; YOLO txt
folders and Pascal VOC XML by :mod:`cvtool.boxes.formats`.
"""

from __future__ import annotations

import numpy as np

from cvtool.boxes import io as boxes_io


def load_pair(gt_path, dets_path, fmt: str = "xywh", image_sizes=None, with_order=False):
    """Ground truth and detections from two label paths (COCO JSON, CSV, YOLO, VOC).

    Returns
    -------
    (GroundTruth, Detections), and with ``with_order`` the images' order in
    the ground-truth file (indices into ``gt.image_ids``, array (I,)).
    """
    order = None
    if str(gt_path).lower().endswith(".json"):
        doc = boxes_io.read_json(gt_path)
        gt = boxes_io.ground_truth_from_coco(doc, str(gt_path))
        pos = {v: i for i, v in enumerate(gt.image_ids)}
        order = np.array(list(dict.fromkeys(pos[im["id"]] for im in doc["images"])), np.int64)
    else:
        gt = boxes_io.load_ground_truth(gt_path, fmt)
    dt = boxes_io.load_detections(dets_path, gt, fmt)
    if not with_order:
        return gt, dt
    return gt, dt, np.arange(len(gt.image_ids)) if order is None else order
