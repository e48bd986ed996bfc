"""The embedded sample lives in the top-level data/ and ships inside the package."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest

from cvtool.data import datasets
from cvtool.data.datasets import IDX_FILES, find_dataset_dir, load_dataset

ROOT = Path(__file__).resolve().parent.parent


def test_located_sample_folder_holds_the_four_idx_files():
    folder = find_dataset_dir("mnist-sample")
    assert folder is not None
    assert sorted(p.name for p in folder.iterdir()) == sorted(IDX_FILES.values())
    for name in IDX_FILES.values():
        with gzip.open(folder / name) as fh:  # real gzip, not a Git LFS pointer
            magic = fh.read(4)
        assert magic[:2] == b"\0\0" and magic[2] == 8  # IDX of unsigned bytes
    ds = load_dataset("mnist-sample")
    assert (len(ds.x_train), len(ds.x_test)) == (4000, 1000)


def test_source_tree_finds_the_top_level_data_folder():
    assert find_dataset_dir("mnist-sample") == ROOT / "data" / "mnist-sample"


def test_installed_layout_is_tried_first(tmp_path, monkeypatch):
    """After a plain `pip install .` the sample is cvtool/_data/mnist-sample."""
    site = tmp_path / "site-packages" / "cvtool"
    shutil.copytree(ROOT / "data" / "mnist-sample", site / "_data" / "mnist-sample")
    monkeypatch.setattr(datasets, "PACKAGE_DIR", site / "data")
    assert find_dataset_dir("mnist-sample") == site / "_data" / "mnist-sample"
    (site / "_data" / "mnist-sample" / IDX_FILES["y_test"]).unlink()
    assert find_dataset_dir("mnist-sample") is None  # no data/ beside site-packages


def test_pyproject_ships_data_as_a_package_and_lists_every_package():
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    on_disk = {
        ".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "cvtool").rglob("__init__.py")
    }
    assert set(config["packages"]) == on_disk | {"cvtool._data"}
    assert config["package-dir"] == {"cvtool._data": "data"}
    shipped = {
        p.relative_to(ROOT / "data").as_posix()
        for pattern in config["package-data"]["cvtool._data"]
        for p in (ROOT / "data").glob(pattern)
        if p.is_file()
    }
    assert {f"mnist-sample/{name}" for name in IDX_FILES.values()} <= shipped
