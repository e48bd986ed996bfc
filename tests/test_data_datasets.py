"""Named datasets, the stratified validation split and to_float."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cvtool import backend
from cvtool.data.datasets import find_dataset_dir, load_dataset, stratified_split, to_float
from cvtool.data.summary import catalog, describe
from cvtool.errors import CvtoolError

# SHA-256 of the shipped sample, from ../shared/data/README.md
SAMPLE_SHA256 = {
    "t10k-images-idx3-ubyte.gz": "fe3628d38c2fd2a936bc2d07d1e12046c3daf99f63fd25f98242862ddec330ec",
    "t10k-labels-idx1-ubyte.gz": "39f028cf69a21c048c3cfe5a73768f04ab15133cb90f9da656851c19b813cb4c",
    "train-images-idx3-ubyte.gz": "32e8a0c2beac9e4676b0c9fc0e04f341a7d45ebec5449d992bf162d84ccbcb93",
    "train-labels-idx1-ubyte.gz": "61bea1a69c6e24a91c04b8ce0ac28cf473a4bf52128659f47eea0984178ec47f",
}


def test_shipped_sample_is_the_shared_one():
    for name, digest in SAMPLE_SHA256.items():
        got = hashlib.sha256((find_dataset_dir("mnist-sample") / name).read_bytes()).hexdigest()
        assert got == digest, name


def test_mnist_sample_contents():
    ds = load_dataset("mnist-sample")
    assert ds.x_train.shape == (4000, 28, 28) and ds.x_test.shape == (1000, 28, 28)
    assert ds.x_train.dtype == np.uint8 and ds.y_train.dtype == np.int64
    assert np.bincount(ds.y_train).tolist() == [400] * 10
    assert np.bincount(ds.y_test).tolist() == [100] * 10
    doc = describe("mnist-sample")
    assert doc["balanced"] and doc["num_classes"] == 10 and doc["pixel_max"] == 255


def test_absent_named_set_says_how_to_fetch(tmp_path, monkeypatch):
    monkeypatch.setenv("CVTOOL_CACHE", str(tmp_path))
    monkeypatch.setenv("CVTOOL_FASHION_DIR", str(tmp_path / "none"))
    with pytest.raises(CvtoolError, match="'cvtool data fetch mnist'"):
        load_dataset("mnist")
    with pytest.raises(CvtoolError, match="dataset-fashion-mnist or run 'cvtool data fetch"):
        load_dataset("fashion-mnist")
    rows = {r["name"]: r for r in catalog()}
    assert rows["mnist"]["path"] == str(tmp_path / "mnist") and not rows["mnist"]["present"]


def test_fashion_names_from_any_fashion_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("CVTOOL_FASHION_DIR", str(find_dataset_dir("mnist-sample")))
    ds = load_dataset("fashion-mnist")
    assert ds.class_names[0] == "T-shirt/top" and len(ds.x_train) == 4000


@settings(max_examples=40, deadline=None)
@given(
    counts=st.lists(st.integers(1, 30), min_size=1, max_size=6),
    frac=st.floats(0.05, 0.95),
    seed=st.integers(0, 2**16),
)
def test_stratified_split_partitions_and_keeps_proportions(counts, frac, seed):
    y = np.repeat(np.arange(len(counts)), counts)
    np.random.default_rng(seed).shuffle(y)
    n = len(y)
    n_val = int(round(frac * n))
    if not 0 < n_val < n:
        with pytest.raises(CvtoolError, match="'validation' parameter"):
            stratified_split(y, frac, seed)
        return
    tr, va = stratified_split(y, frac, seed)
    assert len(va) == n_val
    assert np.array_equal(np.sort(np.concatenate([tr, va])), np.arange(n))  # a partition
    for c, count in enumerate(counts):
        # each class gives its share, rounded (largest remainder: within one)
        assert abs(np.sum(y[va] == c) - count * n_val / n) < 1 + 1e-9
    tr2, va2 = stratified_split(y, frac, seed)
    assert np.array_equal(va, va2) and np.array_equal(tr, tr2)


def test_stratified_split_count_seed_and_errors():
    y = np.repeat(np.arange(10), 400)
    _, va = stratified_split(y, 1000, seed=0)
    assert np.bincount(y[va]).tolist() == [100] * 10
    _, vb = stratified_split(y, 1000, seed=1)
    assert not np.array_equal(va, vb)
    for bad in (0, 4000, 1.5, -0.2):
        with pytest.raises(CvtoolError, match="'validation' parameter"):
            stratified_split(y, bad)


def test_to_float_scales_uint8(xp):
    x = np.array([[0, 128, 255]], np.uint8)
    out = to_float(x, np.float32, xp)
    assert out.dtype == np.float32
    np.testing.assert_allclose(backend.to_numpy(out), [[0.0, 128 / 255, 1.0]], rtol=1e-7)
    same = to_float(np.array([0.25]), np.float64, xp)
    assert float(backend.to_numpy(same)[0]) == 0.25
