"""Box formats, validation, conversion, areas, IoU and GIoU matrices.

The conventions (formats, continuous coordinates, the VOC ``offset=1``) are
stated once, in the package docstring (:mod:`cvtool.boxes`). Every function
takes ``(N, 4)`` NumPy or CuPy arrays and works on the array's own module.
"""

from __future__ import annotations

import numpy as np

from cvtool.backend import array_module, to_numpy
from cvtool.errors import CvtoolError, check_choice

FORMATS = ("xywh", "xyxy", "cxcywh")


def check_format(fmt: str) -> str:
    """Return ``fmt`` if it is a known box format, else raise CvtoolError."""
    return check_choice("format", fmt, FORMATS)


def validate(boxes, fmt: str = "xywh", name: str = "boxes", offset: float = 0.0):
    """Check an ``(N, 4)`` box array: finite, non-negative sizes (``x2 >= x1`` in xyxy).

    Parameters
    ----------
    boxes : array, shape (N, 4)
    fmt : {'xywh', 'xyxy', 'cxcywh'}
    name : str
        Named in the error message (a file name or parameter).
    offset : float
        Pixel offset (0 continuous, 1 legacy VOC); an xyxy box of one pixel has x2 == x1.

    Returns
    -------
    array, shape (N, 4)
        The same array.

    Raises
    ------
    CvtoolError
        On a wrong shape, NaN/inf, a negative width or height, or x2 < x1.
    """
    check_format(fmt)
    xp = array_module(boxes)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise CvtoolError(f"The '{name}' must have shape (N, 4). Got {tuple(boxes.shape)} instead.")
    if boxes.shape[0] == 0:
        return boxes
    bad = ~xp.isfinite(boxes).all(axis=1)
    if bool(bad.any()):
        i = int(to_numpy(xp.nonzero(bad)[0][0]))
        raise CvtoolError(
            f"The '{name}' must be finite numbers. Box {i} is {to_numpy(boxes[i]).tolist()}."
        )
    if fmt == "xyxy":
        size = boxes[:, 2:] - boxes[:, :2] + offset
        rule = "x2 >= x1 and y2 >= y1" if offset == 0 else "x2 >= x1 - 1 and y2 >= y1 - 1"
    else:
        size = boxes[:, 2:]
        rule = "width and height >= 0"
    neg = (size < 0).any(axis=1)
    if bool(neg.any()):
        i = int(to_numpy(xp.nonzero(neg)[0][0]))
        raise CvtoolError(
            f"The '{name}' must have {rule} ({fmt}). Box {i} is {to_numpy(boxes[i]).tolist()}."
        )
    return boxes


def convert(boxes, src: str, dst: str, offset: float = 0.0):
    """Convert ``(N, 4)`` boxes between ``xywh``, ``xyxy`` and ``cxcywh``.

    Parameters
    ----------
    boxes : array, shape (N, 4) or (4,)
    src, dst : {'xywh', 'xyxy', 'cxcywh'}
    offset : float
        0 for continuous coordinates (default), 1 for the legacy VOC convention
        where an xyxy box spans ``x2 - x1 + 1`` pixels.

    Returns
    -------
    array, same shape, floating point

    Examples
    --------
    >>> convert(np.array([10.0, 20, 30, 40]), "xywh", "xyxy").tolist()
    [10.0, 20.0, 40.0, 60.0]
    >>> convert(np.array([10.0, 20, 30, 40]), "xywh", "cxcywh").tolist()
    [25.0, 40.0, 30.0, 40.0]
    """
    check_format(src)
    check_format(dst)
    if not hasattr(boxes, "dtype"):
        boxes = np.asarray(boxes, dtype=np.float64)
    xp = array_module(boxes)
    b = boxes.astype(xp.float64) if boxes.dtype.kind != "f" else boxes
    if src == dst:
        return b.copy()
    x, y, u, v = (b[..., i] for i in range(4))
    # to corner + size first, then out
    if src == "xyxy":
        x0, y0, w, h = x, y, u - x + offset, v - y + offset
    elif src == "cxcywh":
        x0, y0, w, h = x - (u - offset) / 2, y - (v - offset) / 2, u, v
    else:
        x0, y0, w, h = x, y, u, v
    if dst == "xyxy":
        out = (x0, y0, x0 + w - offset, y0 + h - offset)
    elif dst == "cxcywh":
        out = (x0 + (w - offset) / 2, y0 + (h - offset) / 2, w, h)
    else:
        out = (x0, y0, w, h)
    return xp.stack(out, axis=-1)


def area(boxes, fmt: str = "xywh", offset: float = 0.0):
    """Areas of ``(N, 4)`` boxes, shape (N,)."""
    b = convert(boxes, fmt, "xywh", offset)
    return b[..., 2] * b[..., 3]


def _corners(boxes, fmt, offset):
    """x1, y1, x2, y2 and area (N,) each; xywh areas are w*h exactly, as pycocotools has them."""
    if fmt == "xywh":
        b = boxes if boxes.dtype.kind == "f" else boxes.astype(array_module(boxes).float64)
        x, y, w, h = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
        return x, y, x + w - offset, y + h - offset, w * h
    b = convert(boxes, fmt, "xyxy", offset)
    x1, y1, x2, y2 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    return x1, y1, x2, y2, (x2 - x1 + offset) * (y2 - y1 + offset)


def _intersection(ca, cb, offset, xp):
    """(N, M) intersection areas from two _corners tuples, with few temporaries."""
    w = xp.minimum(ca[2][:, None], cb[2][None, :])
    w -= xp.maximum(ca[0][:, None], cb[0][None, :])
    h = xp.minimum(ca[3][:, None], cb[3][None, :])
    h -= xp.maximum(ca[1][:, None], cb[1][None, :])
    if offset:
        w += offset
        h += offset
    xp.maximum(w, 0.0, out=w)
    xp.maximum(h, 0.0, out=h)
    w *= h
    return w


def box_iou(a, b, fmt: str = "xywh", offset: float = 0.0, crowd=None):
    """The ``(N, M)`` IoU matrix of two box arrays, without Python loops.

    Parameters
    ----------
    a : array, shape (N, 4)
    b : array, shape (M, 4)
    fmt : str
        Format of both arrays (default ``xywh``).
    offset : float
        0 continuous (default) or 1 legacy VOC pixels.
    crowd : array of bool, shape (M,), optional
        COCO crowd regions among ``b``: for those columns the value is
        intersection / area(a), as in pycocotools' ``iou(dt, gt, iscrowd)``.

    Returns
    -------
    array, shape (N, M), float64
        0 where boxes do not overlap (or both are empty).

    Examples
    --------
    >>> box_iou(np.array([[0.0, 0, 10, 10]]), np.array([[5.0, 0, 10, 10]])).round(4).tolist()
    [[0.3333]]
    """
    xp = array_module(a)
    ca, cb = _corners(a, fmt, offset), _corners(b, fmt, offset)
    return _iou_union(ca, cb, offset, xp, crowd)[0]


def _iou_union(ca, cb, offset, xp, crowd=None):
    """(N, M) IoU and union from two _corners tuples: the one IoU formula."""
    inter = _intersection(ca, cb, offset, xp)  # (N, M)
    area_a = ca[4][:, None]  # (N, 1)
    union = area_a + cb[4][None, :]
    union -= inter
    if crowd is not None:
        crowd = xp.asarray(crowd, dtype=bool)[None, :]
        union = xp.where(crowd, area_a, union)
    # union is 0 only when both boxes are empty, and then inter is 0 too: IoU 0.
    # (Dividing by 1 there, not by a clamped tiny union, keeps subnormal boxes exact.)
    inter /= xp.where(union > 0, union, 1.0)
    # (x + w) - x is not exactly w in floating point: keep the ratio in [0, 1]
    return xp.minimum(inter, 1.0, out=inter), union


def box_giou(a, b, fmt: str = "xywh", offset: float = 0.0):
    """The ``(N, M)`` generalised IoU matrix: IoU - (|C| - |A u B|) / |C|, in [-1, 1].

    ``C`` is the smallest box enclosing both (Rezatofighi et al., 2019), as in
    ``torchvision.ops.generalized_box_iou``.
    """
    xp = array_module(a)
    ca, cb = _corners(a, fmt, offset), _corners(b, fmt, offset)
    iou, union = _iou_union(ca, cb, offset, xp)  # corners and intersection computed once
    cw = xp.maximum(ca[2][:, None], cb[2][None, :]) - xp.minimum(ca[0][:, None], cb[0][None, :])
    ch = xp.maximum(ca[3][:, None], cb[3][None, :]) - xp.minimum(ca[1][:, None], cb[1][None, :])
    enclose = (cw + offset) * (ch + offset)
    penalty = xp.where(enclose > 0, (enclose - union) / xp.where(enclose > 0, enclose, 1.0), 0.0)
    return iou - xp.maximum(penalty, 0.0)  # so GIoU <= IoU exactly


def iou(box_a, box_b, fmt: str = "xywh", offset: float = 0.0, giou: bool = False) -> float:
    """IoU (or GIoU) of two single boxes given as 4 numbers.

    >>> iou([0, 0, 2, 2], [1, 1, 2, 2])
    0.14285714285714285
    """
    a = validate(np.asarray(box_a, dtype=np.float64).reshape(1, 4), fmt, "box A", offset)
    b = validate(np.asarray(box_b, dtype=np.float64).reshape(1, 4), fmt, "box B", offset)
    f = box_giou if giou else box_iou
    return float(f(a, b, fmt, offset)[0, 0])


def parse_box(text: str, name: str = "box") -> list[float]:
    """Four numbers from text such as ``"10,20,30,40"`` (commas and/or spaces).

    >>> parse_box("10, 20 30,40")
    [10.0, 20.0, 30.0, 40.0]
    """
    parts = [p for p in text.replace(",", " ").split() if p]
    try:
        vals = [float(p) for p in parts]
    except ValueError:
        vals = []
    if len(vals) != 4:
        raise CvtoolError(f"The '{name}' must be 4 numbers like 10,20,30,40. Got {text!r}.")
    return vals
