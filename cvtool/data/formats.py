"""Readers and writers by format: IDX folder, NPZ, image folder, CSV.

``read_any(path)`` picks the reader from what the path is; ``write_any(ds,
path)`` picks the writer from ``fmt`` or the path's extension:

=======  =====================================  ==============================
format   read when the path is                  written when
=======  =====================================  ==============================
idx      a folder holding train-images-idx3-    ``fmt="idx"``, or a path with
         ubyte[.gz] (+ labels, optional t10k)   no extension (the default)
npz      a file ending in .npz                  the path ends in .npz
csv      a file ending in .csv                  the path ends in .csv
folder   any other folder (class sub-folders)   ``fmt="folder"``
=======  =====================================  ==============================

The per-format modules (``idx``, ``npz``, ``folder``, ``csvfile``) document
their layouts. What is left out: HDF5, TFRecord, COCO-style annotations.

Streams: ``-`` (stdin), a FIFO or a process substitution holds one NPZ (told
by its zip signature) or one CSV, read once. ``-`` as an output (stdout) takes
NPZ (the default there) or, for a data set without a test split, CSV.
"""

from __future__ import annotations

import os
from pathlib import Path

from cvtool.data.core import IDX_FILES
from cvtool.data.csvfile import read_csv, write_csv
from cvtool.data.folder import read_folder, write_folder
from cvtool.data.idx import find_idx_file, load_idx_dir, write_idx_folder
from cvtool.data.npz import read_npz, write_npz
from cvtool.errors import CvtoolError, check_choice

FORMATS = ("idx", "npz", "folder", "csv")


def detect_format(path: str | os.PathLike) -> str:
    """The format of an existing dataset path (see the module table).

    Raises
    ------
    CvtoolError
        Missing path, or a file whose extension is not a dataset format.
    """
    path = Path(path)
    if path.is_dir():
        return "idx" if find_idx_file(path, IDX_FILES["x_train"]) else "folder"
    if not path.exists():
        raise CvtoolError(f"File not found: {path}")
    suffix = path.suffix.lower()
    if suffix in (".npz", ".csv"):
        return suffix[1:]
    if "idx" in path.name or "ubyte" in path.name:
        raise CvtoolError(
            f"{path} is a single IDX file; give the folder that holds the train/t10k IDX files."
        )
    raise CvtoolError(
        f"Cannot read a dataset from {path}: unsupported format (use an IDX folder, .npz, .csv "
        "or a folder of class sub-folders)."
    )


def read_any(path: str | os.PathLike, shape: tuple[int, ...] | None = None, fmt: str | None = None):
    """Read a dataset from a path in any supported format.

    Parameters
    ----------
    path : file or folder.
    shape : image shape (H, W[, C]) for CSV files whose shape cannot be inferred.
    fmt : force a format instead of detecting it.

    Returns
    -------
    Dataset
    """
    if is_stream(path):
        return _read_stream(path, shape, fmt)
    path = Path(path)
    fmt = detect_format(path) if fmt is None else _check_format(fmt)
    if fmt == "idx":
        if not path.is_dir():
            raise CvtoolError(f"Folder not found: {path}")
        return load_idx_dir(path, path.name)
    if fmt == "npz":
        return read_npz(path)
    if fmt == "csv":
        return read_csv(path, shape=shape)
    return read_folder(path)


def is_stream(path) -> bool:
    """'-' or an existing path that is neither a regular file nor a folder (FIFO, /dev/fd/N)."""
    from cvtool.fileio import is_stdio

    if is_stdio(path):
        return True
    p = Path(path)
    return p.exists() and not p.is_file() and not p.is_dir()


def _read_stream(path, shape, fmt):
    """A data set from stdin or a stream: NPZ (zip signature) or CSV, staged in a temporary file."""
    import tempfile

    from cvtool.fileio import read_bytes

    payload = read_bytes(path)
    if not payload:
        raise CvtoolError(f"{path}: the input is empty; it must hold an NPZ or a CSV data set.")
    kind = fmt or ("npz" if payload.startswith(b"PK") else "csv")
    if kind not in ("npz", "csv"):
        raise CvtoolError(f"A stream ({path}) holds an NPZ or a CSV data set. Got --format {kind}.")
    with tempfile.TemporaryDirectory(prefix="cvtool-") as folder:
        staged = Path(folder) / f"stdin.{kind}"
        staged.write_bytes(payload)
        return read_npz(staged) if kind == "npz" else read_csv(staged, shape=shape)


def output_format(path: str | os.PathLike, fmt: str | None = None) -> str:
    """The format ``write_any`` uses for `path`: `fmt` if given, else by extension.

    >>> output_format("out.npz"), output_format("out"), output_format("out", "folder")
    ('npz', 'idx', 'folder')
    """
    if is_stream(path):
        fmt = "npz" if fmt is None else _check_format(fmt)
        if fmt not in ("npz", "csv"):
            raise CvtoolError(f"{path} is a stream: it takes format npz or csv. Got {fmt}.")
        return fmt
    if fmt is not None:
        fmt = _check_format(fmt)
        suffix = Path(path).suffix.lower()
        if fmt in ("npz", "csv") and suffix != f".{fmt}":
            raise CvtoolError(f"The output of format {fmt} must end in .{fmt}. Got {str(path)!r}.")
        return fmt
    suffix = Path(path).suffix.lower()
    if suffix in (".npz", ".csv"):
        return suffix[1:]
    if suffix:
        raise CvtoolError(
            f"Cannot tell the output format from {str(path)!r}: use .npz, .csv, or a folder "
            "name with --format idx|folder."
        )
    return "idx"


def write_any(
    dataset, path: str | os.PathLike, fmt: str | None = None, overwrite: bool = False
) -> list[Path]:
    """Write a Dataset in a format chosen by `fmt` or the path (see ``output_format``).

    Returns
    -------
    The paths written (files, or the folder).

    Raises
    ------
    CvtoolError
        Unknown format, or `path` exists and `overwrite` is False.
    """
    fmt = output_format(path, fmt)
    if is_stream(path):
        if fmt == "csv" and len(dataset.x_test):
            raise CvtoolError(
                f"CSV to a stream ({path}) holds one split, and this data set has a test split "
                "too: write NPZ (--format npz) or to a .csv file."
            )
        return (write_npz if fmt == "npz" else write_csv)(dataset, path)
    path = Path(path)
    if path.exists() and not overwrite:
        raise CvtoolError(f"{path} exists; choose another output or overwrite it (--force).")
    if fmt in ("idx", "folder") and path.exists() and not path.is_dir():
        raise CvtoolError(f"{path} exists and is not a folder; format {fmt} writes a folder.")
    if fmt == "idx":
        return write_idx_folder(dataset, path)
    if fmt == "npz":
        return write_npz(dataset, path)
    if fmt == "csv":
        return write_csv(dataset, path)
    return write_folder(dataset, path)


def _check_format(fmt: str) -> str:
    return check_choice("format", fmt, FORMATS)
