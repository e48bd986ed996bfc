"""Bounding boxes: formats, IoU, GIoU and non-maximum suppression.

Three formats, converted by one function (:func:`convert`):

* ``xywh`` (the default, COCO's): top-left corner ``x, y`` plus width and height;
* ``xyxy``: top-left and bottom-right corners ``x1, y1, x2, y2``;
* ``cxcywh``: centre plus width and height (YOLO's, in absolute units).

Coordinates are continuous by default: a box ``[0, 0, 10, 10]`` in ``xyxy``
has width 10 and area 100, as in COCO, torchvision and pycocotools. The old
PASCAL VOC convention counted pixels inclusively (width ``x2 - x1 + 1``); pass
``offset=1`` to any function here to use it. The offset changes only how
``xyxy`` corners relate to widths; ``xywh`` widths are widths in both.

Every array function takes ``(N, 4)`` arrays of NumPy or CuPy and works on the
array's own module (``xp``), without Python loops over boxes. Greedy NMS runs
its short sequential sweep on the host. Masks, label maps and mAP live in
:mod:`cvtool.boxes.masks`, :mod:`cvtool.boxes.coco` and :mod:`cvtool.boxes.voc`.

The package: ``core`` (formats, IoU, GIoU), ``suppression`` (NMS), ``masks`` (mask IoU,
segmentation metrics), ``detections`` (ground-truth and detection containers),
``coco`` and ``voc`` (mAP), ``io`` and ``files`` (readers and writers),
``report`` (what ``cvtool iou map`` prints), ``plot`` (precision-recall
figure), ``synth`` (synthetic COCO data). This module re-exports the box API.
"""

from cvtool.boxes.core import (
    FORMATS,
    area,
    box_giou,
    box_iou,
    check_format,
    convert,
    iou,
    parse_box,
    validate,
)
from cvtool.boxes.suppression import nms, nms_per_image

__all__ = [
    "FORMATS",
    "area",
    "box_giou",
    "box_iou",
    "check_format",
    "convert",
    "iou",
    "nms",
    "nms_per_image",
    "parse_box",
    "validate",
]
