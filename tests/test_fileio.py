"""fileio: atomic, symlink-safe writes, streams and '-', outputs checked before work."""

from __future__ import annotations

import os
import threading

import pytest

from cvtool import fileio
from cvtool.errors import CvtoolError


def test_write_through_a_symlink_updates_the_target_and_keeps_the_link(tmp_path):
    target = tmp_path / "target.csv"
    target.write_text("old\n")
    target.chmod(0o640)
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    fileio.atomic_write_text(link, "new\n")
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text() == "new\n"
    assert oct(target.stat().st_mode & 0o777) == "0o640"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.csv", "target.csv"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "m.npz"
    path.write_bytes(b"before")
    with pytest.raises(RuntimeError), fileio.atomic_path(path) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("interrupted")
    assert path.read_bytes() == b"before"
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


def test_dash_writes_to_stdout(capfdbinary):
    fileio.atomic_write_text("-", "a,b\n")
    assert capfdbinary.readouterr().out == b"a,b\n"


def test_a_fifo_is_written_directly_and_read_without_seeking(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = {}
    reader = threading.Thread(target=lambda: got.setdefault("data", fileio.read_bytes(fifo)))
    reader.start()
    assert fileio.check_output(fifo) == fifo  # a stream is never 'existing output'
    fileio.atomic_write_bytes(fifo, b"streamed")
    reader.join(5)
    assert got["data"] == b"streamed" and fifo.exists() and not fifo.is_file()


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: d / "missing" / "m.npz", "does not exist"),
        (lambda d: (d / "f").write_text("") or d / "f" / "m.npz", "is not a folder"),
        (lambda d: (d / "dir").mkdir() or d / "dir", "is a folder"),
        (lambda d: (d / "old.npz").write_text("") or d / "old.npz", "--force"),
    ],
)
def test_check_output_refuses_before_any_work(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(CvtoolError, match=message):
        fileio.check_output(path)


def test_check_output_overwrite_and_stdout(tmp_path):
    old = tmp_path / "old.csv"
    old.write_text("x")
    assert fileio.check_output(old, overwrite=True) == old
    assert fileio.check_output("-") == "-"
    with pytest.raises(CvtoolError, match="stdout"):
        fileio.check_outputs("-", None, "-")
    if os.path.exists("/dev/stdout"):
        with pytest.raises(CvtoolError, match="stdout"):
            fileio.check_outputs("-", "/dev/stdout")
    fileio.check_outputs("-", tmp_path / "a.csv", None)


def test_unwritable_folder_is_found_by_trying(tmp_path):
    if not os.path.isdir("/proc/self"):
        pytest.skip("needs /proc")
    with pytest.raises(CvtoolError, match="cannot be written"):
        fileio.check_output("/proc/self/cvtool-out.csv")
