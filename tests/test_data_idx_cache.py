"""The decoded IDX cache of cvtool.data.idx: hits, invalidation, silent fallbacks.

Every test points CVTOOL_CACHE at a temporary folder (never the real home) and
lowers CACHE_MIN_BYTES so small files get entries.
"""

from __future__ import annotations

import gzip
import os

import numpy as np
import pytest

from cvtool.data import idx
from cvtool.data.idx import decoded_cache_path, read_idx, write_idx


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A fresh cache folder in tmp_path, the cache on, every gzipped file cached."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("CVTOOL_CACHE", str(folder))
    monkeypatch.delenv("CVTOOL_IDX_CACHE", raising=False)
    monkeypatch.setattr(idx, "CACHE_MIN_BYTES", 0)
    return folder


@pytest.fixture
def images(tmp_path):
    """A gzipped IDX file of random uint8 images in its own data folder, and its array."""
    rng = np.random.default_rng(0)
    array = rng.integers(0, 256, size=(50, 7, 5), dtype=np.uint8)
    data = tmp_path / "data"
    data.mkdir()
    path = data / "train-images-idx3-ubyte.gz"
    write_idx(path, array)
    return path, array


def entries(cache) -> list:
    folder = cache / "decoded"
    return sorted(folder.iterdir()) if folder.is_dir() else []


def snapshot(folder) -> dict:
    """Names, bytes and modification times of every file in a folder."""
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


def test_miss_writes_an_entry_and_a_hit_returns_equal_arrays(cache, images):
    path, array = images
    first = read_idx(path)
    assert [p.name for p in entries(cache)] == [decoded_cache_path(path).name]
    second = read_idx(path)
    for got in (first, second):
        np.testing.assert_array_equal(got, array)
        assert got.dtype == array.dtype and got.shape == array.shape


def test_a_hit_reads_the_entry_not_the_file(cache, images):
    path, array = images
    read_idx(path)
    (entry,) = entries(cache)
    planted = array[::-1].copy()  # same dtype and shape as the file's header
    np.save(entry, planted)
    np.testing.assert_array_equal(read_idx(path), planted)
    np.testing.assert_array_equal(read_idx(path, cache=False), array)


def test_a_changed_file_misses_and_its_stale_entry_goes(cache, images):
    path, array = images
    read_idx(path)
    (old_entry,) = entries(cache)
    changed = 255 - array
    write_idx(path, changed)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # even on a coarse clock
    np.testing.assert_array_equal(read_idx(path), changed)
    (new_entry,) = entries(cache)
    assert new_entry != old_entry
    np.testing.assert_array_equal(np.load(new_entry), changed)


def test_same_size_and_time_but_other_header_is_decoded(cache, images):
    path, array = images
    read_idx(path)
    (entry,) = entries(cache)
    np.save(entry, array.reshape(50, 35))  # wrong shape for this file's header
    np.testing.assert_array_equal(read_idx(path), array)


def test_a_corrupt_entry_is_decoded_and_rewritten(cache, images):
    path, array = images
    read_idx(path)
    (entry,) = entries(cache)
    entry.write_bytes(entry.read_bytes()[:40])  # truncated .npy
    np.testing.assert_array_equal(read_idx(path), array)
    np.testing.assert_array_equal(np.load(entry), array)


def test_the_users_files_are_never_touched(cache, images):
    path, _ = images
    before = snapshot(path.parent)
    read_idx(path)
    read_idx(path)
    assert snapshot(path.parent) == before
    assert len(entries(cache)) == 1


def test_cache_dir_that_cannot_be_made_falls_back_silently(tmp_path, monkeypatch, images):
    path, array = images
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("CVTOOL_CACHE", str(blocker / "cache"))  # mkdir fails, even for root
    monkeypatch.setattr(idx, "CACHE_MIN_BYTES", 0)
    np.testing.assert_array_equal(read_idx(path), array)
    np.testing.assert_array_equal(read_idx(path), array)
    assert blocker.read_text() == "not a folder"


def test_a_missing_cache_dir_is_created(cache, images):
    path, array = images
    assert not cache.exists()
    np.testing.assert_array_equal(read_idx(path), array)
    assert len(entries(cache)) == 1


def test_read_only_cache_dir_falls_back_silently(cache, images, monkeypatch):
    path, array = images

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(np, "save", refuse)  # root ignores chmod: refuse the write itself
    np.testing.assert_array_equal(read_idx(path), array)
    assert entries(cache) == []  # no partial temporary file left


@pytest.mark.parametrize("value", ["0", "off", "false", "No"])
def test_the_environment_variable_turns_it_off(cache, images, monkeypatch, value):
    path, array = images
    monkeypatch.setenv("CVTOOL_IDX_CACHE", value)
    np.testing.assert_array_equal(read_idx(path), array)
    assert not cache.exists()


def test_raw_and_small_files_get_no_entry(cache, images, monkeypatch, tmp_path):
    path, array = images
    raw = tmp_path / "data" / "raw-idx3-ubyte"
    raw.write_bytes(gzip.decompress(path.read_bytes()))
    assert decoded_cache_path(raw) is None
    np.testing.assert_array_equal(read_idx(raw), array)
    monkeypatch.setattr(idx, "CACHE_MIN_BYTES", path.stat().st_size + 1)
    assert decoded_cache_path(path) is None
    np.testing.assert_array_equal(read_idx(path), array)
    assert not cache.exists()


def test_the_key_follows_path_size_and_time(cache, images, tmp_path):
    path, _ = images
    key = decoded_cache_path(path)
    assert key.parent == cache / "decoded" and key.suffix == ".npy"
    copy = tmp_path / "data" / "copy.gz"
    copy.write_bytes(path.read_bytes())
    os.utime(copy, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns))
    assert decoded_cache_path(copy) != key  # other path, same size and time
    assert decoded_cache_path(path) == key  # stable


def test_a_same_size_rewrite_with_its_mtime_put_back_misses(cache, tmp_path):
    # cp -p, tar and rsync -t keep the mtime; the ctime (which no call can set) still moves
    rng = np.random.default_rng(1)
    first, second = (rng.integers(0, 256, (40, 6, 6), dtype=np.uint8) for _ in range(2))
    path = tmp_path / "same.gz"

    def write(array):  # stored (level 0): the same size for the same shape
        raw = tmp_path / "raw.idx"
        write_idx(raw, array)
        path.write_bytes(gzip.compress(raw.read_bytes(), compresslevel=0, mtime=0))

    write(first)
    np.testing.assert_array_equal(read_idx(path), first)
    st = path.stat()
    write(second)
    assert path.stat().st_size == st.st_size
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    np.testing.assert_array_equal(read_idx(path), second)


def test_no_home_directory_reads_without_the_cache(images, monkeypatch):
    from pathlib import Path

    def no_home():
        raise RuntimeError("Could not determine home directory.")

    for name in ("CVTOOL_CACHE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(Path, "home", staticmethod(no_home))
    monkeypatch.setattr(idx, "CACHE_MIN_BYTES", 0)
    path, array = images
    assert decoded_cache_path(path) is None
    np.testing.assert_array_equal(read_idx(path), array)
