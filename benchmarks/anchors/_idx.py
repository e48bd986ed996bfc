"""Read a gzipped IDX dataset folder (the anchors' shared loader; NumPy and gzip only)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (.gz or not) as a uint8 array: (n, 28, 28) images or (n,) labels."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as fh:
        data = fh.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(folder: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test) as uint8 arrays from an IDX folder."""
    root = Path(folder)

    def find(stem: str) -> Path:
        for name in (stem + ".gz", stem):
            if (root / name).exists():
                return root / name
        raise FileNotFoundError(root / stem)

    return (
        read_idx(find("train-images-idx3-ubyte")),
        read_idx(find("train-labels-idx1-ubyte")),
        read_idx(find("t10k-images-idx3-ubyte")),
        read_idx(find("t10k-labels-idx1-ubyte")),
    )
