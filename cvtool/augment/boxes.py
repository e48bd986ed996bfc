"""Boxes through augmentation: moved with their images' forward matrices; box files.

Boxes are ``(x1, y1, x2, y2)`` in pixel-EDGE coordinates (an image spans
``[0, W] x [0, H]``), as in COCO / albumentations, while the matrices act on
pixel centres, hence the half-pixel shifts. A moved box is the axis-aligned
hull of its four moved corners, clipped to the image, and dropped when too
little of it stays visible.

Box files follow the one contract of docs/files.md (the box CSV and COCO JSON
that ``cvtool iou`` reads, ``--box-format``); the older augment CSV
``image,x1,y1,x2,y2,label`` is still read. Boxes are written back in the form
they were read.

Left out: rotated boxes, masks and keypoints.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cvtool.errors import CvtoolError, check_path
from cvtool.fileio import atomic_write_text

BOX_COLUMNS = ("image", "x1", "y1", "x2", "y2", "label")  # the header of a boxes CSV


@dataclass
class Boxes:
    """Boxes of a set of images: image index, (x1, y1, x2, y2) pixel-edge corners, label."""

    image: np.ndarray  # (B,) int64
    xyxy: np.ndarray  # (B, 4) float64
    label: np.ndarray  # (B,) object (strings, kept as written)
    extra: np.ndarray | None = None  # (B,) object: a 7th CSV column / a COCO score, or None
    form: dict | None = None  # how the file was written (read_boxes), for write_boxes

    def __len__(self) -> int:
        return len(self.image)


def transform_boxes(
    xyxy: np.ndarray, forward: np.ndarray, image_shape: tuple[int, ...], min_visibility: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Move boxes through their images' forward matrices.

    The four corners of each box go through the matrix; the result is re-boxed
    (axis-aligned hull), clipped to the image and kept when its visibility
    (clipped area / unclipped area of the new box) is >= min_visibility and
    its clipped area is > 0.

    Parameters
    ----------
    xyxy : (B, 4) boxes in pixel-edge coordinates.
    forward : (B, 3, 3) the forward matrix of each box's image (pixel centres).
    image_shape : (H, W[, C]) of the output images.
    min_visibility : in [0, 1].

    Returns
    -------
    boxes (B, 4) clipped, keep (B,) bool, visibility (B,).
    """
    if not 0 <= min_visibility <= 1:
        raise CvtoolError(
            f"The 'min_visibility' parameter must lie in [0, 1]. Got {min_visibility}."
        )
    h, w = image_shape[:2]
    xyxy = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    x1, y1, x2, y2 = xyxy.T
    corners = (
        np.stack(
            [
                np.stack([x1, y1], -1),
                np.stack([x2, y1], -1),
                np.stack([x1, y2], -1),
                np.stack([x2, y2], -1),
            ],
            1,
        )
        - 0.5
    )  # (B, 4, 2) edge -> centre coordinates
    moved = corners @ np.swapaxes(forward[:, :2, :2], 1, 2) + forward[:, None, :2, 2] + 0.5
    lo, hi = moved.min(1), moved.max(1)  # (B, 2)
    area = np.prod(hi - lo, axis=1)
    clo = np.clip(lo, 0, [w, h])
    chi = np.clip(hi, 0, [w, h])
    clipped_area = np.prod(chi - clo, axis=1)
    vis = np.divide(clipped_area, area, out=np.zeros_like(area), where=area > 0)
    keep = (clipped_area > 0) & (vis >= min_visibility)
    return np.concatenate([clo, chi], 1), keep, vis


def boxes_for_outputs(
    boxes: Boxes, source: np.ndarray, forward: np.ndarray, image_shape, min_visibility: float = 0.0
) -> tuple[Boxes, int]:
    """Boxes of augmented outputs: output i receives the boxes of image source[i].

    Returns (the kept boxes indexed by output image, labels aligned; number dropped).
    """
    source = np.asarray(source)
    order = np.argsort(boxes.image, kind="stable")
    counts = np.bincount(boxes.image, minlength=int(source.max(initial=-1)) + 1)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    per_out = counts[source]  # boxes each output receives
    out_idx = np.repeat(np.arange(len(source)), per_out)
    # ragged arange: position of each pair within its output's box list
    within = np.arange(per_out.sum()) - np.repeat(np.cumsum(per_out) - per_out, per_out)
    box_idx = order[np.repeat(starts[source], per_out) + within]
    xyxy, keep, _ = transform_boxes(
        boxes.xyxy[box_idx], forward[out_idx], image_shape, min_visibility
    )
    extra = boxes.extra[box_idx][keep] if boxes.extra is not None else None
    kept = Boxes(out_idx[keep], xyxy[keep], boxes.label[box_idx][keep], extra, boxes.form)
    return kept, int((~keep).sum())


def read_boxes(path: str | Path, n_images: int | None = None, fmt: str = "xywh") -> Boxes:
    """Read the boxes of a data set's training images, in any form of the box-file contract.

    The forms (docs/files.md), told apart by extension, else by content:

    * the box CSV that ``cvtool iou`` reads: ``image,class,x,y,w,h[,score]`` with
      an optional header, the four coordinates in `fmt` (``--box-format``);
      a 7th column (score, difficult, ...) is carried through;
    * COCO JSON: a dict with ``images``, ``annotations``, ``categories`` or a
      results list ``[{image_id, category_id, bbox, score}]`` (bbox xywh);
    * the older augment CSV with the header ``image,x1,y1,x2,y2,label``.

    ``image`` (``image_id``) is the index of a training image, in [0, n_images).
    The form read is kept in ``Boxes.form`` so :func:`write_boxes` writes the
    same form back. '-' is stdin; FIFOs and process substitutions are read once.

    Raises
    ------
    CvtoolError
        Missing or unreadable file, a value that is not a number, an impossible
        box, or an image index outside [0, n_images).
    """
    from cvtool.boxes.core import FORMATS
    from cvtool.boxes.io import is_json_source, read_source
    from cvtool.errors import check_choice

    check_choice("box-format", fmt, FORMATS)
    if str(path) != "-":
        check_path(path, "Boxes file")
    text = read_source(path)
    if is_json_source(path, text):
        return _read_coco(path, text, n_images)
    rows = [r for r in csv.reader(text.splitlines()) if r and any(c.strip() for c in r)]
    if rows and [c.strip() for c in rows[0]] == list(BOX_COLUMNS):
        return _read_legacy(path, rows, n_images)
    header = None
    if rows and not _number(rows[0][min(2, len(rows[0]) - 1)].strip()):
        header, rows = [c.strip() for c in rows[0]], rows[1:]
        if len(header) not in (6, 7):
            raise CvtoolError(
                f"{path}: the header must be image,class,x,y,w,h[,score] "
                f"(or {','.join(BOX_COLUMNS)}). Got {','.join(header)}."
            )
    image, xyxy, label, extra = [], [], [], []
    for lineno, row in enumerate(rows, 2 if header else 1):
        row = [c.strip() for c in row]
        if len(row) not in (6, 7):
            raise CvtoolError(
                f"{path}:{lineno}: expected image,class,x,y,w,h[,score] (6 or 7 fields), "
                f"got {len(row)}."
            )
        i = _index(row[0], path, lineno, n_images)
        coords = _coords(row[2:6], path, lineno)
        box = _to_xyxy(coords, fmt, path, lineno)
        image.append(i)
        xyxy.append(box)
        label.append(row[1])
        extra.append(row[6] if len(row) == 7 else None)
    form = {"kind": "csv", "box_format": fmt, "header": header}
    return _boxes(image, xyxy, label, extra, form)


def _number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _index(value, path, where, n_images) -> int:
    try:
        i = int(str(value).strip())
    except ValueError:
        raise CvtoolError(
            f"{path}:{where}: image must be the index of a training image (an int). Got {value!r}."
        ) from None
    if i < 0 or (n_images is not None and i >= n_images):
        raise CvtoolError(f"{path}:{where}: image index {i} is outside [0, {n_images}).")
    return i


def _coords(values, path, where) -> list[float]:
    try:
        coords = [float(v) for v in values]
    except (TypeError, ValueError):
        raise CvtoolError(
            f"{path}:{where}: the 4 coordinates must be numbers. Got {values!r}."
        ) from None
    if not all(math.isfinite(v) for v in coords):
        raise CvtoolError(f"{path}:{where}: the 4 coordinates must be finite. Got {coords}.")
    return coords


def _to_xyxy(coords, fmt, path, where) -> list[float]:
    from cvtool.boxes.core import convert

    if fmt != "xyxy" and (coords[2] < 0 or coords[3] < 0):
        raise CvtoolError(f"{path}:{where}: a box's width and height must be >= 0; got {coords}.")
    box = convert(np.array([coords]), fmt, "xyxy")[0].tolist()
    if box[2] < box[0] or box[3] < box[1]:
        raise CvtoolError(f"{path}:{where}: a box needs x1 <= x2 and y1 <= y2; got {coords}.")
    return box


def _boxes(image, xyxy, label, extra, form) -> Boxes:
    return Boxes(
        np.array(image, dtype=np.int64),
        np.array(xyxy, dtype=np.float64).reshape(-1, 4),
        np.array(label, dtype=object),
        np.array(extra, dtype=object),
        form,
    )


def _read_legacy(path, rows, n_images) -> Boxes:
    image, xyxy, label = [], [], []
    for lineno, row in enumerate(rows[1:], 2):
        if len(row) != 6:
            raise CvtoolError(f"{path}:{lineno}: expected 6 fields, got {len(row)}.")
        i = _index(row[0], path, lineno, n_images)
        coords = _coords(row[1:5], path, lineno)
        image.append(i)
        xyxy.append(_to_xyxy(coords, "xyxy", path, lineno))
        label.append(row[5])
    return _boxes(image, xyxy, label, [None] * len(image), {"kind": "legacy"})


def _read_coco(path, text, n_images) -> Boxes:
    import json

    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise CvtoolError(f"'{path}' is not valid JSON ({' '.join(str(exc).split())}).") from None
    if isinstance(doc, dict) and "annotations" in doc:
        anns, form = doc["annotations"], {"kind": "coco", "categories": doc.get("categories", [])}
    elif isinstance(doc, list):
        anns, form = doc, {"kind": "results"}
    else:
        raise CvtoolError(
            f"'{path}' must be COCO JSON (images, annotations, categories) or a results list."
        )
    if not isinstance(anns, list):
        raise CvtoolError(f"'{path}': 'annotations' must be a list.")
    image, xyxy, label, extra = [], [], [], []
    for n, a in enumerate(anns):
        where = f"annotation {n}"
        if not isinstance(a, dict) or "image_id" not in a or "category_id" not in a:
            raise CvtoolError(f"{path}:{where} must be an object with image_id, category_id, bbox.")
        b = a.get("bbox")
        if not isinstance(b, list) or len(b) != 4:
            raise CvtoolError(f"{path}:{where}: 'bbox' must be 4 numbers. Got {b!r}.")
        image.append(_index(a["image_id"], path, where, n_images))
        xyxy.append(_to_xyxy(_coords(b, path, where), "xywh", path, where))
        label.append(a["category_id"])
        extra.append(a.get("score"))
    return _boxes(image, xyxy, label, extra, form)


def write_boxes(path: str | Path, boxes: Boxes, image_shape: tuple[int, ...] | None = None) -> None:
    """Write boxes in the form they were read (:func:`read_boxes`), atomically; '-' is stdout.

    Boxes made in Python (no form) are written as the box CSV, xywh with a header.
    `image_shape` (H, W[, C]) gives COCO's image sizes.
    """
    form = boxes.form or {"kind": "csv", "box_format": "xywh", "header": None}
    kind = form["kind"]
    xyxy = boxes.xyxy
    extra = boxes.extra if boxes.extra is not None else np.full(len(boxes), None, dtype=object)
    if kind in ("coco", "results"):
        import json

        from cvtool.boxes.core import convert

        xywh = convert(xyxy, "xyxy", "xywh") if len(xyxy) else xyxy
        items = []
        for n, (i, b, lab, ex) in enumerate(
            zip(
                boxes.image.tolist(),
                xywh.tolist(),
                boxes.label.tolist(),
                extra.tolist(),
                strict=True,
            )
        ):
            item = {"image_id": i, "category_id": lab, "bbox": [_jnum(v) for v in b]}
            if kind == "coco":
                item = {"id": n + 1, **item, "area": _jnum(b[2] * b[3]), "iscrowd": 0}
            if ex is not None:
                item["score"] = ex
            items.append(item)
        if kind == "results":
            atomic_write_text(path, json.dumps(items) + "\n")
            return
        h, w = (image_shape or (None, None))[:2]
        n_images = int(boxes.image.max()) + 1 if len(boxes) else 0
        doc = {
            "images": [{"id": i, "width": w, "height": h} for i in range(n_images)],
            "annotations": items,
            "categories": form.get("categories")
            or [{"id": c, "name": str(c)} for c in sorted(set(boxes.label.tolist()), key=str)],
        }
        atomic_write_text(path, json.dumps(doc) + "\n")
        return
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if kind == "legacy":
        writer.writerow(BOX_COLUMNS)
        for i, b, lab in zip(
            boxes.image.tolist(), xyxy.tolist(), boxes.label.tolist(), strict=True
        ):
            writer.writerow([i, *(_num(v) for v in b), lab])
        atomic_write_text(path, buf.getvalue())
        return
    from cvtool.boxes.core import convert

    fmt = form.get("box_format", "xywh")
    coords = convert(xyxy, "xyxy", fmt) if len(xyxy) else xyxy
    if form.get("header"):
        writer.writerow(form["header"])
    for i, b, lab, ex in zip(
        boxes.image.tolist(), coords.tolist(), boxes.label.tolist(), extra.tolist(), strict=True
    ):
        writer.writerow([i, lab, *(_num(v) for v in b), *([] if ex is None else [ex])])
    atomic_write_text(path, buf.getvalue())


def _jnum(v: float) -> float | int:
    """A coordinate for JSON: 4 decimals, an int when whole."""
    r = round(float(v), 4)
    return int(r) if r.is_integer() else r


def _num(v: float):
    """A coordinate as written: 4 decimals, trailing zeros dropped (ints stay ints)."""
    text = f"{v:.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text
