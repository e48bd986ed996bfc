"""Label files of every format the ``iou`` commands read: dispatch by path.

COCO JSON and the box CSV are read by :mod:`cvtool.boxes.io`; YOLO txt
folders and Pascal VOC XML by :mod:`cvtool.boxes.formats`.
"""

from __future__ import annotations

from cvtool.boxes import io as boxes_io


def load_pair(gt_path, dets_path, fmt: str = "xywh", image_sizes=None):
    """Ground truth and detections from two label paths (COCO JSON, CSV, YOLO, VOC).

    Returns
    -------
    (GroundTruth, Detections)
    """
    gt = boxes_io.load_ground_truth(gt_path, fmt)
    dt = boxes_io.load_detections(dets_path, gt, fmt)
    return gt, dt
