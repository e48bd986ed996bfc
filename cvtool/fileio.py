"""Files in and out: atomic, symlink-safe writes; '-' and streams; output checks.

The rules every command follows (docs/files.md says them for users):

- **Atomic**: a regular file is written to a temporary name in the folder of
  its final place and renamed over it only once complete (``os.replace``), so
  a failed or interrupted write leaves what was there before.
- **Symlinks are kept**: writing to a symlink updates its target (atomically,
  in the target's folder); the link itself is never replaced.
- **Streams are written directly**: ``-`` is stdout, and an existing path that
  is not a regular file (a FIFO, ``/dev/stdout``, a character device, a
  process substitution) is opened and written once, never renamed over.
- **Inputs**: ``-`` is stdin; FIFOs and ``/dev/fd/N`` are read once, without
  seeking (:func:`read_bytes` reads them whole).
- **Checked first**: :func:`check_output` refuses, before any work, an output
  whose folder is missing, is not a folder or cannot be written, a path that
  is a folder, and an existing regular file unless ``overwrite`` (``--force``)
  is given. :func:`check_outputs` also refuses two outputs on stdout.

(The "input file must exist" check is ``cvtool.errors.check_path``.)
"""

from __future__ import annotations

import io
import os
import secrets
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cvtool.errors import CvtoolError

STDIO = "-"


def is_stdio(path) -> bool:
    """True for '-' (stdin or stdout)."""
    return str(path) == STDIO


def _is_stream(path: Path) -> bool:
    """An existing path that is not a regular file or a folder (FIFO, device, /dev/stdout)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def _final(path: Path) -> Path:
    """Where a write to `path` lands: a symlink's target (followed to the end), else path."""
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def _is_stdout(path) -> bool:
    if is_stdio(path):
        return True
    try:
        return os.path.samefile(path, "/dev/stdout")
    except OSError:
        return False


def check_output(
    path, *, overwrite: bool = False, what: str = "output", folder: bool = False
) -> Path | str:
    """`path` if a result can be written there; a one-line CvtoolError if not.

    Run it before any work starts. '-' and existing streams always pass; a
    regular file that exists passes only with `overwrite`; its folder must
    exist (it is not created) and take a new file. With ``folder=True`` the
    output is a folder to be made (:func:`check_output_folder`'s rule), and
    '-' or a stream is refused.
    """
    if is_stdio(path):
        if folder:
            raise CvtoolError(f"The {what} is a folder; '-' (stdout) cannot take it.")
        return STDIO
    path = Path(path)
    if str(path) == "" or str(path) == ".":
        raise CvtoolError(f"The {what} must be a file name. Got {str(path)!r}.")
    if _is_stream(path):
        if folder:
            raise CvtoolError(f"The {what} {str(path)!r} is a stream; this output is a folder.")
        return path
    if folder:
        return check_output_folder(path, overwrite=overwrite, what=what)
    final = _final(path)
    if final.is_dir():
        raise CvtoolError(f"The {what} {str(path)!r} is a folder; give a file name.")
    if final.exists() and not overwrite:
        raise CvtoolError(
            f"The {what} {str(path)!r} exists; add --force to replace it, or choose another name."
        )
    parent = final.parent
    if not parent.exists():
        raise CvtoolError(f"The {what}'s folder {str(parent)!r} does not exist; create it first.")
    if not parent.is_dir():
        raise CvtoolError(f"The {what}'s folder {str(parent)!r} is not a folder.")
    try:  # the honest test (as root, permission bits say nothing): can a file be made here?
        tempfile.TemporaryFile(dir=parent).close()
    except OSError as exc:
        raise CvtoolError(
            f"The {what}'s folder {str(parent)!r} cannot be written ({exc.strerror})."
        ) from None
    return path


def check_output_folder(path, *, overwrite: bool = False, what: str = "output folder") -> Path:
    """`path` if a new folder of results can be made there (before any work).

    An existing folder is replaced only with `overwrite` (``--force``), and then
    only once the new one is complete (:func:`atomic_folder`); a symlink or a
    file is never replaced. The parent must exist and take a new folder.
    """
    root = Path(path)
    if root.is_symlink() or root.exists() and not root.is_dir():
        raise CvtoolError(f"The {what} {str(root)!r} is not a folder; cvtool will not replace it.")
    if root.exists() and not overwrite:
        raise CvtoolError(
            f"The {what} {str(root)!r} exists; add --force to replace it, or choose another name."
        )
    parent = root.parent
    if not parent.is_dir():
        raise CvtoolError(f"The {what}'s parent {str(parent)!r} does not exist or is no folder.")
    try:
        tempfile.TemporaryDirectory(dir=parent).cleanup()
    except OSError as exc:
        raise CvtoolError(
            f"The {what}'s parent {str(parent)!r} cannot be written ({exc.strerror})."
        ) from None
    return root


@contextmanager
def atomic_folder(path) -> Iterator[Path]:
    """Yield a temporary folder beside `path`; on success it replaces `path` whole.

    The user's old folder (if any, and allowed by :func:`check_output_folder`)
    is swapped out only after the new one is complete, and put back if the
    swap fails half-way.
    """
    root = Path(path)
    tmp = root.with_name(f".{root.name}.tmp-{os.getpid()}")
    old = root.with_name(f".{root.name}.old-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)  # left by a crashed run with the same pid
    tmp.mkdir()
    try:
        yield tmp
        if root.exists():
            os.replace(root, old)
        os.replace(tmp, root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not root.exists():
            os.replace(old, root)
        shutil.rmtree(old, ignore_errors=True)


def check_outputs(*paths) -> None:
    """Refuse two outputs that both go to stdout ('-' or /dev/stdout); None entries are skipped."""
    to_stdout = [str(p) for p in paths if p is not None and _is_stdout(p)]
    if len(to_stdout) > 1:
        raise CvtoolError(
            f"Only one output can go to stdout; {' and '.join(map(repr, to_stdout))} both do."
        )


def writes_stdout(*paths) -> bool:
    """True when one of `paths` (None entries skipped) is stdout: '-' or /dev/stdout."""
    return any(p is not None and _is_stdout(p) for p in paths)


def looks_like_json(text: str) -> bool:
    """True when `text` starts (after blanks) like a JSON document: '[' or '{'."""
    return text.lstrip()[:1] in ("[", "{")


def read_bytes(path) -> bytes:
    """The whole content of a file, '-' (stdin) or a stream, read once without seeking."""
    if is_stdio(path):
        return sys.stdin.buffer.read()
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        raise CvtoolError(f"File not found: {path}") from None
    except IsADirectoryError:
        raise CvtoolError(f"{path} is a folder, not a file.") from None
    except OSError as exc:
        raise CvtoolError(f"Cannot read {path}: {exc.strerror}.") from None
    except MemoryError:
        raise CvtoolError(f"{path} is too large to read into memory.") from None


def read_text(path) -> str:
    """Like :func:`read_bytes`, decoded as UTF-8 (a clear error for binary data)."""
    try:
        return read_bytes(path).decode("utf-8")
    except UnicodeDecodeError:
        raise CvtoolError(f"{path} is not a UTF-8 text file.") from None


def seekable(path) -> io.BytesIO | Path:
    """A path for readers that seek (np.load, zip): regular files as they are,
    '-' and streams read once into memory."""
    if is_stdio(path) or _is_stream(Path(path)):
        return io.BytesIO(read_bytes(path))
    return Path(path)


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path to write; on success it becomes `path` (see the module rules).

    The temporary name keeps the suffix, so writers that choose a format by
    extension (Pillow, np.savez, matplotlib) still see the right one. For '-'
    and streams the finished bytes are copied to stdout or the stream; for a
    symlink the target is replaced and the link kept. Nothing is created when
    the block fails. `suffix` names the format for '-' and streams, whose names
    have none (e.g. ".npz", ".png").
    """
    if is_stdio(path) or _is_stream(Path(path)):
        with tempfile.TemporaryDirectory(prefix="cvtool-") as folder:
            ext = "".join(Path(str(path)).suffixes) if not is_stdio(path) else ""
            tmp = Path(folder) / f"out{ext or suffix or ''}"
            yield tmp
            with open(tmp, "rb") as src:
                if is_stdio(path):
                    sys.stdout.flush()
                    shutil.copyfileobj(src, sys.stdout.buffer)
                    sys.stdout.buffer.flush()
                else:
                    with open(path, "wb") as dst:
                        shutil.copyfileobj(src, dst)
        return
    final = _final(Path(path))
    # pid and a random token: two threads, or two containers with one pid sharing a
    # folder (a cache volume), never write the same temporary file
    token = f"{os.getpid()}-{secrets.token_hex(4)}"
    tmp = final.with_name(f".{final.stem}.tmp-{token}{''.join(final.suffixes)}")
    try:
        yield tmp
        if final.exists():  # keep the permissions the user gave the file
            shutil.copymode(final, tmp)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_bytes(path: str | os.PathLike, payload: bytes) -> None:
    """Write bytes to `path` by the module's rules ('-' is stdout)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(payload)
        fh.flush()
        os.fsync(fh.fileno())


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write text (UTF-8) to `path` by the module's rules ('-' is stdout)."""
    atomic_write_bytes(path, text.encode("utf-8"))
