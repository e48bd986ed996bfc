"""Object detection on the ``nn`` engine: a YOLO-v1-style grid detector.

:mod:`cvtool.detect.yolo` holds the target encoding (ground-truth boxes to
per-cell targets), the loss with its gradient (YOLO v1's, and the BCE
improvement used by default) and the decoding of a head output to boxes,
scores and classes through :func:`cvtool.boxes.nms_per_image`. The head
itself is an ordinary layer whose output is (N, S, S, 5B + C)
(``shapes.yolo_head_output``), e.g. a 1x1 conv with 5B + C filters.
:mod:`cvtool.detect.task` makes it a training task scored by COCO mAP, and
:mod:`cvtool.detect.train` holds the data, the default network and
:func:`train_detector`.
"""

from cvtool.detect.task import Detection, coco_ground_truth, coco_results
from cvtool.detect.train import DETECTOR, augmentation, detection_data, train_detector
from cvtool.detect.yolo import VARIANTS, YoloLoss, decode, encode_targets

__all__ = ["DETECTOR", "VARIANTS", "Detection", "YoloLoss", "augmentation", "coco_ground_truth",
           "coco_results", "decode", "detection_data", "encode_targets", "train_detector"]  # fmt: skip
