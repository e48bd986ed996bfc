"""Named datasets and the one loader every command uses.

``load_dataset(name_or_path)`` returns a :class:`Dataset` of uint8 images
(N, H, W) or (N, H, W, C) and int64 labels. Named sets:

- ``mnist-sample``: real MNIST, 4000 train + 1000 test, shipped in the package;
- ``fashion-mnist``: 60000 + 10000, read from the Debian package's folder
  (/usr/share/datasets/fashion-mnist) or from the cache after ``cvtool data fetch``;
- ``mnist``: 60000 + 10000, from the cache after ``cvtool data fetch``.

A path is read by the format readers in ``cvtool.data.formats``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cvtool.errors import CvtoolError

PACKAGE_DIR = Path(__file__).resolve().parent
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


def cache_dir() -> Path:
    """Where downloads go: $CVTOOL_CACHE, else $XDG_CACHE_HOME/cvtool, else ~/.cache/cvtool."""
    if os.environ.get("CVTOOL_CACHE"):
        return Path(os.environ["CVTOOL_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "cvtool"


def _system_fashion_dir() -> Path:
    return Path(os.environ.get("CVTOOL_FASHION_DIR", "/usr/share/datasets/fashion-mnist"))


def dataset_dirs(name: str) -> list[Path]:
    """Folders where a named dataset may live, in the order they are tried."""
    if name == "mnist-sample":
        # The repository's top-level data/ ships inside the installed package as
        # cvtool/_data/ (pyproject.toml maps it); a source tree has it beside cvtool/.
        root = PACKAGE_DIR.parent
        return [root / "_data" / "mnist-sample", root.parent / "data" / "mnist-sample"]
    if name == "fashion-mnist":
        return [_system_fashion_dir(), cache_dir() / "fashion-mnist"]
    if name == "mnist":
        return [cache_dir() / "mnist"]
    raise CvtoolError(
        f"Unknown dataset {name!r}. Known: {', '.join(KNOWN)}, or give a path to a file or folder."
    )


KNOWN = ("mnist-sample", "fashion-mnist", "mnist")


def find_dataset_dir(name: str) -> Path | None:
    """The first folder holding all four IDX files of a named dataset, or None."""
    for d in dataset_dirs(name):
        if all((d / f).is_file() for f in IDX_FILES.values()):
            return d
    return None


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


def load_idx_dir(folder: Path, name: str) -> Dataset:
    """Read a folder of MNIST-named IDX files (each ``.gz`` or raw), checking images match labels.

    The training pair is required; the test pair is optional (an empty test
    split when both test files are absent).
    """
    from cvtool.data.idx import find_idx_file, read_idx

    folder = Path(folder)
    paths = {k: find_idx_file(folder, f) for k, f in IDX_FILES.items()}
    for key in ("x_train", "y_train"):
        if paths[key] is None:
            raise CvtoolError(f"{folder}: missing IDX file {IDX_FILES[key]} (or without .gz).")
    if (paths["x_test"] is None) != (paths["y_test"] is None):
        missing = "x_test" if paths["x_test"] is None else "y_test"
        raise CvtoolError(f"{folder}: missing IDX file {IDX_FILES[missing]} (or without .gz).")
    arrays = {k: read_idx(p) for k, p in paths.items() if p is not None}
    if paths["x_test"] is None:
        x = arrays["x_train"]
        arrays["x_test"] = np.empty((0, *x.shape[1:]), x.dtype)
        arrays["y_test"] = np.empty(0, np.int64)
    y_train = arrays["y_train"].astype(np.int64)
    y_test = arrays["y_test"].astype(np.int64)
    ds = Dataset(
        name,
        arrays["x_train"],
        y_train,
        arrays["x_test"],
        y_test,
        default_class_names(name, y_train, y_test),
    )
    return check_dataset(ds, folder)


def load_dataset(name_or_path: str | os.PathLike) -> Dataset:
    """Load a named dataset or a dataset file/folder.

    Raises
    ------
    CvtoolError
        Unknown name, a named set not present (with the command that fetches
        it), or a file that does not read.
    """
    text = str(name_or_path)
    if text in KNOWN:
        folder = find_dataset_dir(text)
        if folder is None:
            hint = (
                "install the Debian package dataset-fashion-mnist or run "
                if text == "fashion-mnist"
                else "run "
            )
            raise CvtoolError(
                f"Dataset {text!r} is not present here: {hint}'cvtool data fetch {text}'."
            )
        return load_idx_dir(folder, text)
    path = Path(text)
    if not path.exists():
        raise CvtoolError(
            f"Unknown dataset {text!r}: not a known name ({', '.join(KNOWN)}) nor an existing path."
        )
    from cvtool.data.formats import read_any

    return read_any(path)


def to_float(x, dtype=np.float32, xp=np):
    """uint8 images to floats in [0, 1] on xp's device."""
    return (
        xp.asarray(x, dtype=dtype) / dtype(255)
        if x.dtype == np.uint8
        else xp.asarray(x, dtype=dtype)
    )


def parse_validation(text: str | None, allow_zero: bool = True) -> int | float | None:
    """A validation size from the command line: '1000' -> 1000 images, '0.1' -> a fraction.

    None, and '0' where ``allow_zero``, mean no validation split (returned as None).

    >>> parse_validation("0.1"), parse_validation("500"), parse_validation("0")
    (0.1, 500, None)
    """
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value < (0 if allow_zero else 1e-12) or (value >= 1 and not value.is_integer()):
        zero = " or 0" if allow_zero else ""
        raise CvtoolError(
            f"The 'validation' parameter must be a count (e.g. 1000), a fraction in (0, 1) "
            f"(e.g. 0.1){zero}. Got {text!r} instead."
        )
    if value == 0:
        return None
    return int(value) if value.is_integer() else value


def stratified_split(
    y: np.ndarray, validation: int | float, seed: int | None = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded, stratified split of training indices into (train, validation).

    Parameters
    ----------
    y : (N,) integer labels of the training set (never the test set).
    validation : a count (int >= 1) or a fraction in (0, 1).
    seed : same seed, same split.

    Returns
    -------
    (train_idx, val_idx) : sorted int64 index arrays that partition range(N);
    each class contributes to validation in proportion to its size.
    """
    n = len(y)
    if isinstance(validation, float) and not validation.is_integer():
        if not 0 < validation < 1:
            raise CvtoolError(
                f"The 'validation' parameter must be a fraction in (0, 1) or a count. Got {validation}."
            )
        n_val = int(round(validation * n))
    else:
        n_val = int(validation)
    if not 0 < n_val < n:
        raise CvtoolError(
            f"The 'validation' parameter must leave both splits non-empty (1..{n - 1}). Got {n_val}."
        )
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y, return_counts=True)
    # Largest-remainder allocation so the per-class counts add up to n_val exactly.
    exact = counts * (n_val / n)
    take = np.floor(exact).astype(int)
    short = n_val - take.sum()
    take[np.argsort(-(exact - take), kind="stable")[:short]] += 1
    val = []
    for c, t in zip(classes, take, strict=True):
        idx = np.flatnonzero(y == c)
        val.append(rng.permutation(idx)[:t])
    val_idx = np.sort(np.concatenate(val)) if val else np.empty(0, np.int64)
    mask = np.ones(n, bool)
    mask[val_idx] = False
    return np.flatnonzero(mask), val_idx
