"""Object detection on the ``nn`` engine: a YOLO-v1-style grid detector.

:mod:`cvtool.detect.yolo` holds the target encoding (ground-truth boxes to
per-cell targets), the loss with its gradient (YOLO v1's, and the BCE
improvement used by default) and the decoding of a head output to boxes,
scores and classes through :func:`cvtool.boxes.nms_per_image`. The head
itself is an ordinary layer whose output is (N, S, S, 5B + C)
(``shapes.yolo_head_output``), e.g. a 1x1 conv with 5B + C filters.
"""

from cvtool.detect.yolo import VARIANTS, YoloLoss, decode, encode_targets

__all__ = ["VARIANTS", "YoloLoss", "decode", "encode_targets"]
