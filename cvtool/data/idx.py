"""IDX files, the MNIST / Fashion-MNIST format, gzipped or raw.

Layout: two zero bytes, a type code (0x08 = unsigned byte), the number of
dimensions, then one big-endian uint32 per dimension and the data in C order.
The reader checks the magic number, the dimensions and the data length, so a
truncated or foreign file is a CvtoolError, not garbage.
"""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np

from cvtool.data.core import IDX_FILES, Dataset, check_dataset, default_class_names
from cvtool.errors import CvtoolError, check_path
from cvtool.fileio import atomic_write_bytes

# IDX type code -> big-endian NumPy dtype
_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dt.newbyteorder("="): code for code, dt in _TYPES.items()}


def _open(path: Path):
    """Open an IDX file for binary reading, through gzip when it starts with the gzip magic."""
    check_path(path)
    with open(path, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    return (gzip.open if gz else open)(path, "rb")


def _read_bytes(path: Path) -> bytes:
    try:
        with _open(path) as fh:
            return fh.read()
    except (OSError, EOFError) as exc:
        raise CvtoolError(f"Cannot read IDX file {path}: {exc}") from exc


def read_idx_header(path: str | os.PathLike) -> tuple[np.dtype, tuple[int, ...]]:
    """Read only the header of an IDX file: (dtype, dimensions), without the data.

    Used by ``cvtool data list`` to report sizes without decompressing 50 MB.
    """
    path = Path(path)
    try:
        with _open(path) as fh:
            head = fh.read(4)
            if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in _TYPES:
                raise CvtoolError(f"{path} is not an IDX file: bad magic number.")
            raw_dims = fh.read(4 * head[3])
    except (OSError, EOFError) as exc:
        raise CvtoolError(f"Cannot read IDX file {path}: {exc}") from exc
    if head[3] < 1 or len(raw_dims) != 4 * head[3]:
        raise CvtoolError(f"{path}: IDX header is truncated.")
    dims = struct.unpack(f">{head[3]}I", raw_dims)
    return _TYPES[head[2]].newbyteorder("="), tuple(dims)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (.gz or raw) into a native-endian array.

    Parameters
    ----------
    path : path of the file.

    Returns
    -------
    ndarray with the file's dimensions, e.g. (N, 28, 28) uint8 images or (N,) labels.

    Raises
    ------
    CvtoolError
        Missing file, bad magic number, unknown type code, or a length that
        does not match the header (truncated or padded file).
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise CvtoolError(
            f"{path} is not an IDX file: the magic number must start with two zero bytes."
        )
    code, ndim = raw[2], raw[3]
    if code not in _TYPES:
        raise CvtoolError(f"{path}: unknown IDX type code 0x{code:02x}.")
    if ndim < 1 or len(raw) < 4 + 4 * ndim:
        raise CvtoolError(f"{path}: IDX header is truncated ({ndim} dimensions declared).")
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    dtype = _TYPES[code]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    body = len(raw) - 4 - 4 * ndim
    if body != expected:
        raise CvtoolError(
            f"{path}: IDX header declares shape {tuple(dims)} ({expected} bytes) "
            f"but the file holds {body} bytes of data (truncated or corrupt)."
        )
    data = np.frombuffer(raw, dtype=dtype, offset=4 + 4 * ndim).reshape(dims)
    return data.astype(dtype.newbyteorder("="))


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write an array as IDX, gzipped when the name ends in .gz; atomic (temp file, rename)."""
    path = Path(path)
    array = np.ascontiguousarray(array)
    native = array.dtype.newbyteorder("=")
    if native not in _CODES:
        raise CvtoolError(f"Cannot write dtype {array.dtype} as IDX.")
    code = _CODES[native]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(_TYPES[code]).tobytes()
    if path.suffix == ".gz":
        payload = gzip.compress(payload, compresslevel=6, mtime=0)
    atomic_write_bytes(path, payload)


def find_idx_file(folder: str | os.PathLike, name: str) -> Path | None:
    """The IDX file `name` in `folder`, gzipped (``name``) or raw (``name`` less ``.gz``)."""
    folder = Path(folder)
    for candidate in (folder / name, folder / name.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    return None


def write_idx_folder(dataset, folder: str | os.PathLike) -> list[Path]:
    """Write a Dataset as the four MNIST-named, gzipped IDX files in `folder`.

    Labels are stored as uint8 when they fit (as in MNIST), else int32. Class
    names are not part of the IDX format and are not written.

    Returns
    -------
    The paths written, in the order train images, train labels, test images, test labels.
    """
    folder = Path(folder)
    folder.mkdir(exist_ok=True)  # the output is this folder; its parent must exist
    written = []
    for key, fname in IDX_FILES.items():
        array = np.asarray(getattr(dataset, key))
        if key.startswith("y"):
            array = array.astype(np.uint8 if array.max(initial=0) < 256 else np.int32)
        write_idx(folder / fname, array)
        written.append(folder / fname)
    return written


def load_idx_dir(folder: Path, name: str) -> Dataset:
    """Read a folder of MNIST-named IDX files (each ``.gz`` or raw), checking images match labels.

    The training pair is required; the test pair is optional (an empty test
    split when both test files are absent).
    """
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
