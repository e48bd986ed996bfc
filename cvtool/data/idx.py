"""IDX files, the MNIST / Fashion-MNIST format, gzipped or raw.

Layout: two zero bytes, a type code (0x08 = unsigned byte), the number of
dimensions, then one big-endian uint32 per dimension and the data in C order.
The reader checks the magic number, the dimensions and the data length, so a
truncated or foreign file is a CvtoolError, not garbage.

Decoded cache: gunzipping Fashion-MNIST's 26 MB training images takes longer
than reading the 47 MB they hold from a ``.npy`` file, so ``read_idx`` keeps a
decoded copy of every gzipped IDX file of at least ``CACHE_MIN_BYTES`` in
``cache_dir()/decoded`` (``$CVTOOL_CACHE``, else ``$XDG_CACHE_HOME/cvtool``,
else ``~/.cache/cvtool``), never beside the user's files. An entry is named by
a hash of the file's resolved path, its size, modification and change times and
inode, so a changed file (even one whose mtime was put back) misses and its
stale entry is replaced; a hit is also checked against the gzipped file's
header (dtype and dimensions). Entries are written
atomically; a cache folder that cannot be created, read or written is passed
over silently (the file is decoded as without a cache). ``CVTOOL_IDX_CACHE=0``
turns the cache off; deleting the folder clears it.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from cvtool.data.core import IDX_FILES, Dataset, cache_dir, check_dataset, default_class_names
from cvtool.errors import CvtoolError, check_path
from cvtool.fileio import atomic_path, atomic_write_bytes

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

CACHE_ENV = "CVTOOL_IDX_CACHE"  # "0", "off", "no" or "false": no decoded cache
CACHE_MIN_BYTES = 1 << 20  # gzipped files smaller than this decode faster than a cache lookup


def _open(path: Path):
    """Open an IDX file for binary reading, through gzip when it starts with the gzip magic."""
    check_path(path)
    with open(path, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    return (gzip.open if gz else open)(path, "rb")


def _read_bytes(path: Path) -> bytearray:
    """The file's bytes, gunzipped in one call when gzipped (a mutable buffer)."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise CvtoolError(f"Cannot read IDX file {path}: {exc}") from exc
    return bytearray(raw)


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


def idx_cache_enabled() -> bool:
    """False when the environment variable CVTOOL_IDX_CACHE turns the decoded cache off."""
    return os.environ.get(CACHE_ENV, "1").strip().lower() not in ("0", "off", "no", "false")


def decoded_cache_path(path: str | os.PathLike) -> Path | None:
    """The cache entry of a gzipped IDX file, or None when the file gets none.

    None for raw files, gzipped files under ``CACHE_MIN_BYTES`` and paths that
    cannot be examined, or when no cache folder can be named (no home directory).
    The name is ``<hash of the resolved path>-<hash of size, mtime, ctime and
    inode>.npy`` in ``cache_dir()/decoded``; the file itself is never
    opened for writing.
    """
    try:
        path = Path(path).resolve()
        st = path.stat()
        if st.st_size < CACHE_MIN_BYTES:
            return None
        with open(path, "rb") as fh:
            if fh.read(2) != b"\x1f\x8b":
                return None
        folder = cache_dir() / "decoded"
    except (OSError, RuntimeError, KeyError):  # RuntimeError/KeyError: no home directory
        return None
    where = hashlib.sha256(os.fsencode(path)).hexdigest()[:24]
    # ctime and inode too: a same-size rewrite whose mtime was put back (cp -p, tar,
    # rsync -t, os.utime) still changes the ctime, which no call can set
    stamp = f"{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{st.st_ino}"
    when = hashlib.sha256(stamp.encode()).hexdigest()[:12]
    return folder / f"{where}-{when}.npy"


def _cache_load(entry: Path, path: Path) -> np.ndarray | None:
    """The cached array if the entry exists, reads, and matches the file's header."""
    try:
        array = np.load(entry, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    try:
        dtype, dims = read_idx_header(path)
    except CvtoolError:
        return None
    if array.dtype != dtype or array.shape != dims:
        return None
    return array


def _cache_store(entry: Path, array: np.ndarray) -> None:
    """Write the entry atomically and remove the file's stale entries; silent on failure."""
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(entry) as tmp:
            np.save(tmp, array, allow_pickle=False)
        where = entry.name.split("-", 1)[0]
        for old in entry.parent.glob(f"{where}-*.npy"):
            if old != entry:
                old.unlink(missing_ok=True)
    except OSError:
        pass


def read_idx(path: str | os.PathLike, cache: bool | None = None) -> np.ndarray:
    """Read an IDX file (.gz or raw) into a native-endian array.

    Parameters
    ----------
    path : path of the file.
    cache : use the decoded cache (module docstring) for large gzipped files;
        default: on unless CVTOOL_IDX_CACHE turns it off.

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
    check_path(path)
    entry = decoded_cache_path(path) if (idx_cache_enabled() if cache is None else cache) else None
    if entry is not None:
        cached = _cache_load(entry, path)
        if cached is not None:
            return cached
    array = _decode(path)
    if entry is not None:
        _cache_store(entry, array)
    return array


def _decode(path: Path) -> np.ndarray:
    """Read and check an IDX file (gunzipping it when gzipped), without the cache."""
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
    if dtype.itemsize == 1:  # no byte order: a writable view of the bytearray, no copy
        return data
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
