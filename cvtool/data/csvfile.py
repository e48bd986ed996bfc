"""CSV datasets: one image per row, the label first, then the pixels in C order.

A row is ``label, p1, p2, ...`` with integer pixels 0..255, row-major
(for colour, the channels of a pixel are adjacent: (H, W, C) order). A header
row is optional and recognised by a non-numeric first cell.

Image shape, first rule that applies:

1. ``shape=(H, W)`` or ``(H, W, C)`` given by the caller (``--shape 28x28``);
2. a header whose last pixel column is named ``HxW`` or ``HxWxC``, as in the
   Kaggle "MNIST in CSV" files (``label,1x1,1x2,...,28x28``) and as cvtool
   writes it;
3. a square grey image: P pixels give sqrt(P) x sqrt(P) when P is a square.

Splits: a CSV file holds one split. Reading ``NAME.csv`` also reads its test
partner when it exists, ``NAME_test.csv``, or for ``..._train.csv`` / ``...train.csv``
the same name with ``train`` replaced by ``test`` (the Kaggle pair
``mnist_train.csv`` + ``mnist_test.csv``). Without a partner the test split
is empty. The writer follows the same rule, so what it writes reads back.
Class names are not stored.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from pathlib import Path

import numpy as np

from cvtool.data.core import Dataset, check_dataset, default_class_names
from cvtool.errors import CvtoolError, check_path
from cvtool.fileio import atomic_write_text

_SHAPE_NAME = re.compile(r"^\s*(\d+)x(\d+)(?:x(\d+))?\s*$")


def parse_shape(text: str) -> tuple[int, ...]:
    """``"28x28"`` -> (28, 28); ``"32x32x3"`` -> (32, 32, 3).

    >>> parse_shape("28x28")
    (28, 28)
    """
    m = _SHAPE_NAME.match(text or "")
    if not m or any(int(g) < 1 for g in m.groups() if g is not None):
        raise CvtoolError(
            f"The 'shape' parameter must look like HxW or HxWxC (e.g. 28x28). Got {text!r}."
        )
    return tuple(int(g) for g in m.groups() if g is not None)


def partner_path(path: Path) -> Path:
    """The file that holds the test split of the CSV dataset whose train file is `path`.

    >>> partner_path(Path("mnist_train.csv")).name
    'mnist_test.csv'
    >>> partner_path(Path("digits.csv")).name
    'digits_test.csv'
    """
    stem = path.stem
    if stem.lower().endswith("train"):
        return path.with_name(stem[: -len("train")] + "test" + path.suffix)
    return path.with_name(f"{stem}_test{path.suffix}")


def _read_rows(path: Path) -> tuple[list[str] | None, np.ndarray]:
    check_path(path)
    try:
        with open(path, encoding="utf-8") as fh:
            first = fh.readline()
            cells = [c.strip() for c in first.split(",")]
            header = cells if cells and not _is_number(cells[0]) else None
            if header is None:
                fh.seek(0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "input contained no data"
                data = np.loadtxt(fh, delimiter=",", dtype=np.int64, ndmin=2)
    except (OSError, UnicodeDecodeError) as exc:
        raise CvtoolError(f"Cannot read CSV file {path}: {exc}") from exc
    except ValueError as exc:
        reason = " ".join(str(exc).split())
        raise CvtoolError(
            f"{path}: every row must be an integer label then integer pixels ({reason})."
        ) from exc
    return header, data


def _is_number(cell: str) -> bool:
    try:
        float(cell)
        return True
    except ValueError:
        return False


def _image_shape(path: Path, n_pixels: int, header, shape) -> tuple[int, ...]:
    if shape is None and header is not None:
        m = _SHAPE_NAME.match(header[-1])
        if m:
            shape = tuple(int(g) for g in m.groups() if g is not None)
    if shape is None:
        side = math.isqrt(n_pixels)
        if side * side != n_pixels:
            raise CvtoolError(
                f"{path}: {n_pixels} pixels per row is not a square image; give the shape "
                "(e.g. --shape 32x32x3)."
            )
        shape = (side, side)
    if math.prod(shape) != n_pixels:
        raise CvtoolError(
            f"{path}: shape {'x'.join(map(str, shape))} needs {math.prod(shape)} pixels "
            f"per row but rows have {n_pixels}."
        )
    return tuple(shape)


def _split(path: Path, shape) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    header, data = _read_rows(path)
    if data.size == 0 or data.shape[1] < 2:
        raise CvtoolError(f"{path}: no data rows (label then pixels).")
    labels, pixels = data[:, 0], data[:, 1:]
    shape = _image_shape(path, pixels.shape[1], header, shape)
    if pixels.min() < 0 or pixels.max() > 255:
        row = int(np.flatnonzero((pixels < 0).any(1) | (pixels > 255).any(1))[0])
        raise CvtoolError(f"{path}: pixels must be in 0..255; data row {row + 1} is not.")
    return pixels.astype(np.uint8).reshape(len(pixels), *shape), labels, shape


def read_csv(path: str | os.PathLike, shape: tuple[int, ...] | None = None) -> Dataset:
    """Read a CSV dataset (and its ``_test`` partner when present).

    Parameters
    ----------
    path : the train (or only) CSV file.
    shape : (H, W) or (H, W, C) of one image; None to infer (module docstring).

    Returns
    -------
    Dataset with x (N, *shape) uint8 and y (N,) int64.
    """
    path = Path(path)
    x_train, y_train, shape = _split(path, shape)
    partner = partner_path(path)
    if partner.is_file():
        x_test, y_test, _ = _split(partner, shape)
    else:
        x_test, y_test = np.empty((0, *shape), np.uint8), np.empty(0, np.int64)
    ds = Dataset(
        path.stem,
        x_train,
        y_train,
        x_test,
        y_test,
        default_class_names(path.stem, y_train, y_test),
    )
    return check_dataset(ds, path)


def _csv_text(x: np.ndarray, y: np.ndarray, shape: tuple[int, ...]) -> str:
    names = ["x".join(str(i + 1) for i in idx) for idx in np.ndindex(*shape)]
    lines = [",".join(["label", *names])]
    flat = np.asarray(x).reshape(len(x), -1)  # (N, H*W*C)
    lines += [
        f"{int(label)}," + ",".join(map(str, row.tolist()))
        for label, row in zip(y, flat, strict=True)
    ]
    return "\n".join(lines) + "\n"


def write_csv(dataset: Dataset, path: str | os.PathLike) -> list[Path]:
    """Write train to `path` and, when non-empty, test to its partner (atomic each).

    Returns
    -------
    The files written.
    """
    path = Path(path)
    shape = dataset.image_shape
    atomic_write_text(path, _csv_text(dataset.x_train, dataset.y_train, shape))
    written = [path]
    if len(dataset.x_test):
        partner = partner_path(path)
        atomic_write_text(partner, _csv_text(dataset.x_test, dataset.y_test, shape))
        written.append(partner)
    return written
