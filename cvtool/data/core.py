"""The dataset container and the rules every reader keeps; imports no other data module.

:class:`Dataset` holds uint8 images (N, H, W) or (N, H, W, C) and int64
labels (N,), split into train and test. ``check_dataset`` checks the
invariants every reader promises, ``default_class_names`` names the classes
when a format stores no names, ``to_float`` scales images to [0, 1] on a
device. The readers (``idx``, ``npz``, ``csvfile``, ``folder``) build on this
module; ``formats`` picks among them and ``datasets`` adds the named sets.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cvtool.errors import CvtoolError

IDX_FILES = {
    "x_train": "train-images-idx3-ubyte.gz",
    "y_train": "train-labels-idx1-ubyte.gz",
    "x_test": "t10k-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
}
FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
DIGITS = tuple(str(d) for d in range(10))


def cache_dir() -> Path:
    """cvtool's cache: $CVTOOL_CACHE, else $XDG_CACHE_HOME/cvtool, else ~/.cache/cvtool.

    Downloads go into ``cache_dir()/NAME``, decoded IDX copies into ``cache_dir()/decoded``.
    """
    if os.environ.get("CVTOOL_CACHE"):
        return Path(os.environ["CVTOOL_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "cvtool"


@dataclass
class Dataset:
    """Images (uint8) and integer labels, split into train and test."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...] = field(default=())

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        if self.class_names:
            return len(self.class_names)
        return label_count(self.y_train, self.y_test)


def label_count(*labels: np.ndarray) -> int:
    """1 + the largest label in any of the (N,) arrays (0 when all are empty)."""
    return max(int(y.max(initial=-1)) for y in labels) + 1


def check_dataset(ds: Dataset, where: str | os.PathLike) -> Dataset:
    """Check the invariants every reader promises; return `ds` unchanged.

    Images uint8 (N, H, W) or (N, H, W, C) with the same image shape in both
    splits, labels (N,) non-negative integers, as many labels as images, and a
    non-empty training split.

    Raises
    ------
    CvtoolError
        Naming `where` and the broken rule.
    """
    for split in ("train", "test"):
        x, y = getattr(ds, f"x_{split}"), getattr(ds, f"y_{split}")
        if x.ndim not in (3, 4) or y.ndim != 1:
            raise CvtoolError(
                f"{where}: {split} images must be (N, H, W[, C]) and labels (N,); "
                f"got {x.shape} and {y.shape}."
            )
        if len(x) != len(y):
            raise CvtoolError(f"{where}: {split} split has {len(x)} images but {len(y)} labels.")
        if x.dtype != np.uint8:
            raise CvtoolError(f"{where}: {split} images must be uint8 (0..255), got {x.dtype}.")
        if y.size and y.min() < 0:
            raise CvtoolError(f"{where}: {split} labels must be >= 0, got {int(y.min())}.")
    if len(ds.x_train) == 0:
        raise CvtoolError(f"{where}: the training split is empty.")
    if len(ds.x_test) and ds.x_test.shape[1:] != ds.x_train.shape[1:]:
        raise CvtoolError(
            f"{where}: test images are {ds.x_test.shape[1:]} but train images "
            f"{ds.x_train.shape[1:]}."
        )
    return ds


def default_class_names(name: str, y_train: np.ndarray, y_test: np.ndarray) -> tuple[str, ...]:
    """Fashion-MNIST names for a set named '*fashion*' with 10 classes, else '0', '1', ..."""
    top = label_count(y_train, y_test)
    if "fashion" in name.lower() and top <= 10:
        return FASHION_CLASSES
    return DIGITS if top <= 10 else tuple(str(d) for d in range(top))


def to_float(x, dtype=np.float32, xp=np):
    """uint8 images to floats in [0, 1] on xp's device."""
    return (
        xp.asarray(x, dtype=dtype) / dtype(255)
        if x.dtype == np.uint8
        else xp.asarray(x, dtype=dtype)
    )
