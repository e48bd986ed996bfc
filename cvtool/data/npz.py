"""NPZ datasets in the Keras ``mnist.npz`` layout.

Four arrays: ``x_train`` (N, H, W[, C]) uint8, ``y_train`` (N,) integers,
``x_test``, ``y_test``; cvtool also writes and reads an optional
``class_names`` (K,) string array, which Keras ignores. A file with only the
training pair reads with an empty test split. Pickled object arrays are never
loaded (``allow_pickle=False``). One-hot labels are not accepted: give integer
class indices.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from cvtool.data.core import Dataset, check_dataset, default_class_names
from cvtool.errors import CvtoolError, check_path
from cvtool.fileio import atomic_path

KEYS = ("x_train", "y_train", "x_test", "y_test")


def _images(array: np.ndarray, where: str) -> np.ndarray:
    if array.dtype == np.uint8:
        return array
    if array.dtype.kind in "iu" and (array.size == 0 or (array.min() >= 0 and array.max() <= 255)):
        return array.astype(np.uint8)
    raise CvtoolError(f"{where}: images must be integers in 0..255 (uint8), got {array.dtype}.")


def _labels(array: np.ndarray, where: str) -> np.ndarray:
    if array.dtype.kind not in "iu":
        raise CvtoolError(f"{where}: labels must be integer class indices, got {array.dtype}.")
    return array.astype(np.int64)


def read_npz(path: str | os.PathLike) -> Dataset:
    """Read an ``.npz`` with ``x_train, y_train[, x_test, y_test][, class_names]``.

    Returns
    -------
    Dataset named after the file's stem.

    Raises
    ------
    CvtoolError
        Missing file, not an NPZ archive, a missing key, non-integer data,
        or label and image counts that differ.
    """
    path = check_path(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise CvtoolError(f"Cannot read NPZ file {path}: {exc}") from exc
    for key in ("x_train", "y_train"):
        if key not in arrays:
            raise CvtoolError(
                f"{path}: NPZ must hold {', '.join(KEYS)} (Keras mnist.npz layout); "
                f"missing {key!r}, found {sorted(arrays)}."
            )
    if ("x_test" in arrays) != ("y_test" in arrays):
        raise CvtoolError(f"{path}: NPZ has only one of 'x_test' and 'y_test'.")
    x_train = _images(arrays["x_train"], f"{path} x_train")
    if "x_test" not in arrays:
        arrays["x_test"] = np.empty((0, *x_train.shape[1:]), np.uint8)
        arrays["y_test"] = np.empty(0, np.int64)
    x_test = _images(arrays["x_test"], f"{path} x_test")
    y_train = _labels(arrays["y_train"], f"{path} y_train")
    y_test = _labels(arrays["y_test"], f"{path} y_test")
    if "class_names" in arrays:
        names = tuple(str(n) for n in arrays["class_names"].tolist())
    else:
        names = default_class_names(path.stem, y_train, y_test)
    ds = Dataset(path.stem, x_train, y_train, x_test, y_test, names)
    return check_dataset(ds, path)


def write_npz(dataset: Dataset, path: str | os.PathLike) -> list[Path]:
    """Write a Dataset as a compressed ``.npz`` (atomic); returns ``[path]``."""
    path = Path(path)
    arrays = {k: np.asarray(getattr(dataset, k)) for k in KEYS}
    arrays["y_train"] = arrays["y_train"].astype(np.uint8 if _fits_u8(arrays) else np.int64)
    arrays["y_test"] = arrays["y_test"].astype(arrays["y_train"].dtype)
    if dataset.class_names:
        arrays["class_names"] = np.array(dataset.class_names, dtype=str)
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez_compressed(tmp, **arrays)
    return [path]


def _fits_u8(arrays: dict[str, np.ndarray]) -> bool:
    # Keras' mnist.npz stores labels as uint8; keep that when the labels fit.
    return max(arrays["y_train"].max(initial=0), arrays["y_test"].max(initial=0)) < 256
