"""Named datasets and the one loader every command uses.

``load_dataset(name_or_path)`` returns a :class:`Dataset` of uint8 images
(N, H, W) or (N, H, W, C) and int64 labels. Named sets:

- ``mnist-sample``: real MNIST, 4000 train + 1000 test, shipped in the package;
- ``fashion-mnist``: 60000 + 10000, read from the Debian package's folder
  (/usr/share/datasets/fashion-mnist) or from the cache after ``cvtool data fetch``;
- ``mnist``: 60000 + 10000, from the cache after ``cvtool data fetch``.

A path is read by the format readers in ``cvtool.data.formats``. The container
:class:`Dataset` and its checks live in ``cvtool.data.core`` (importable from here too).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from cvtool.data.core import (  # noqa: F401  (re-exported: the names lived here before)
    DIGITS,
    FASHION_CLASSES,
    IDX_FILES,
    Dataset,
    cache_dir,
    check_dataset,
    default_class_names,
    label_count,
    to_float,
)
from cvtool.data.formats import read_any
from cvtool.data.idx import load_idx_dir
from cvtool.errors import CvtoolError, check_number

PACKAGE_DIR = Path(__file__).resolve().parent


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
    if text == "-":  # stdin: an NPZ or CSV data set, read once
        return read_any(text)
    if not path.exists():
        raise CvtoolError(
            f"Unknown dataset {text!r}: not a known name ({', '.join(KNOWN)}) nor an existing path."
        )
    return read_any(path)


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
        check_number("validation", validation, low=0, high=1, low_open=True, high_open=True,
                     hint="Or give a count of images.")  # fmt: skip
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
