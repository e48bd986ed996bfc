"""Readers and writers by format (IDX folder, NPZ, image folder, CSV).

``read_any(path)`` picks the reader from what the path is. Only the IDX folder
is wired so far; the other formats come with the data-layer work (issue 2).
"""

from __future__ import annotations

from pathlib import Path

from cvtool.errors import CvtoolError


def read_any(path: Path):
    from cvtool.data.datasets import IDX_FILES, load_idx_dir

    if path.is_dir() and all((path / f).is_file() for f in IDX_FILES.values()):
        return load_idx_dir(path, path.name)
    raise CvtoolError(f"Cannot read a dataset from {path}: unsupported format.")
