"""Boxes through augmentation: moved with their images' forward matrices; box CSV files.

Boxes are ``(x1, y1, x2, y2)`` in pixel-EDGE coordinates (an image spans
``[0, W] x [0, H]``), as in COCO / albumentations, while the matrices act on
pixel centres, hence the half-pixel shifts. A moved box is the axis-aligned
hull of its four moved corners, clipped to the image, and dropped when too
little of it stays visible.

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
    kept = Boxes(out_idx[keep], xyxy[keep], boxes.label[box_idx][keep])
    return kept, int((~keep).sum())


def read_boxes(path: str | Path, n_images: int | None = None) -> Boxes:
    """Read a boxes CSV: header ``image,x1,y1,x2,y2,label``, pixel-edge coordinates.

    Raises
    ------
    CvtoolError
        Missing file, wrong header, a value that is not a number, x2 < x1 or
        y2 < y1, or an image index outside [0, n_images).
    """
    path = check_path(path, "Boxes file")
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    want = list(BOX_COLUMNS)
    if not rows or [c.strip() for c in rows[0]] != want:
        raise CvtoolError(f"{path}: the first line must be the header {','.join(want)}.")
    image, xyxy, label = [], [], []
    for lineno, row in enumerate(rows[1:], 2):
        if not row:
            continue
        if len(row) != 6:
            raise CvtoolError(f"{path}:{lineno}: expected 6 fields, got {len(row)}.")
        try:
            i, coords = int(row[0]), [float(v) for v in row[1:5]]
        except ValueError:
            raise CvtoolError(
                f"{path}:{lineno}: image must be an int and x1,y1,x2,y2 numbers."
            ) from None
        if (
            not all(math.isfinite(v) for v in coords)
            or coords[2] < coords[0]
            or coords[3] < coords[1]
        ):
            raise CvtoolError(f"{path}:{lineno}: a box needs x1 <= x2 and y1 <= y2; got {coords}.")
        if i < 0 or (n_images is not None and i >= n_images):
            raise CvtoolError(f"{path}:{lineno}: image index {i} is outside [0, {n_images}).")
        image.append(i)
        xyxy.append(coords)
        label.append(row[5])
    return Boxes(
        np.array(image, dtype=np.int64),
        np.array(xyxy, dtype=np.float64).reshape(-1, 4),
        np.array(label, dtype=object),
    )


def write_boxes(path: str | Path, boxes: Boxes) -> None:
    """Write boxes in the CSV layout :func:`read_boxes` reads, atomically."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(BOX_COLUMNS)
    for i, b, lab in zip(
        boxes.image.tolist(), boxes.xyxy.tolist(), boxes.label.tolist(), strict=True
    ):
        writer.writerow([i, *(f"{v:.4f}".rstrip("0").rstrip(".") for v in b), lab])
    atomic_write_text(path, buf.getvalue())
