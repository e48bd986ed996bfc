"""Readers and writers (IDX folder, NPZ, CSV, image folder): round trips and bad input."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cvtool.data.csvfile import parse_shape, partner_path, read_csv
from cvtool.data.datasets import Dataset, load_dataset
from cvtool.data.folder import class_folder_names, read_folder
from cvtool.data.formats import detect_format, output_format, read_any, write_any
from cvtool.data.idx import read_idx, read_idx_header, write_idx
from cvtool.errors import CvtoolError

SPLITS = ("x_train", "y_train", "x_test", "y_test")


def make_dataset(rng, n_train=12, n_test=5, shape=(6, 5), classes=3, names=()):
    x_train = rng.integers(0, 256, (n_train, *shape), dtype=np.uint8)
    x_test = rng.integers(0, 256, (n_test, *shape), dtype=np.uint8)
    y_train = np.arange(n_train, dtype=np.int64) % classes
    y_test = np.arange(n_test, dtype=np.int64) % classes
    return Dataset("tiny", x_train, y_train, x_test, y_test, tuple(names))


def assert_same(a: Dataset, b: Dataset) -> None:
    for key in SPLITS:
        got, want = getattr(b, key), getattr(a, key)
        assert got.shape == want.shape, key
        assert np.array_equal(got, want), key
    assert b.x_train.dtype == np.uint8 and b.y_train.dtype == np.int64


def by_label(ds: Dataset) -> Dataset:
    """The image-folder reader groups images by class; reorder the original the same way."""
    tr, te = np.argsort(ds.y_train, kind="stable"), np.argsort(ds.y_test, kind="stable")
    return Dataset(
        ds.name, ds.x_train[tr], ds.y_train[tr], ds.x_test[te], ds.y_test[te], ds.class_names
    )


@pytest.mark.parametrize("out", ["d.npz", "d.csv", "idxdir"])
def test_round_trip_grey(tmp_path, rng, out):
    ds = make_dataset(rng)
    write_any(ds, tmp_path / out)
    assert_same(ds, read_any(tmp_path / out))


@pytest.mark.parametrize("out", ["d.npz", "d.csv", "idxdir"])
def test_round_trip_colour(tmp_path, rng, out):
    ds = make_dataset(rng, shape=(4, 3, 3))
    write_any(ds, tmp_path / out)
    back = read_any(tmp_path / out)
    assert back.image_shape == (4, 3, 3)
    assert_same(ds, back)


def test_round_trip_image_folder_grey_and_colour(tmp_path, rng):
    for shape in [(6, 5), (4, 3, 3)]:
        ds = make_dataset(rng, shape=shape, names=("cat", "dog", "eel"))
        out = tmp_path / f"imgs{len(shape)}"
        write_any(ds, out, "folder")
        back = read_any(out)
        assert detect_format(out) == "folder"
        assert back.class_names == ("cat", "dog", "eel")
        assert_same(by_label(ds), back)


def test_image_folder_keeps_label_order_of_unsortable_names(tmp_path, rng):
    names = ("T-shirt/top", "Trouser", "Bag")
    assert class_folder_names(names) == ["0-T-shirt_top", "1-Trouser", "2-Bag"]
    ds = make_dataset(rng, names=names)
    write_any(ds, tmp_path / "f", "folder")
    back = read_folder(tmp_path / "f")
    assert_same(by_label(ds), back)
    assert back.class_names == ("T-shirt_top", "Trouser", "Bag")


def test_image_folder_without_splits_is_all_train_and_reads_jpeg(tmp_path, rng):
    from PIL import Image

    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for i in range(3):
            img = rng.integers(0, 256, (8, 8), dtype=np.uint8)
            Image.fromarray(img).save(tmp_path / cls / f"{i}.jpg", quality=95)
    (tmp_path / "a" / "notes.txt").write_text("ignored")
    ds = read_folder(tmp_path)
    assert (len(ds.x_train), len(ds.x_test)) == (6, 0)
    assert ds.class_names == ("a", "b") and ds.y_train.tolist() == [0, 0, 0, 1, 1, 1]


def test_mixed_grey_and_rgb_folder_reads_as_rgb(tmp_path, rng):
    from PIL import Image

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    grey = rng.integers(0, 256, (4, 4), dtype=np.uint8)
    Image.fromarray(grey).save(tmp_path / "a" / "0.png")
    Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)).save(tmp_path / "b" / "0.png")
    ds = read_folder(tmp_path)
    assert ds.image_shape == (4, 4, 3)
    assert np.array_equal(ds.x_train[0], np.repeat(grey[:, :, None], 3, axis=2))


def test_mnist_sample_to_npz_keeps_keras_layout(tmp_path):
    ds = load_dataset("mnist-sample")
    write_any(ds, tmp_path / "mnist.npz")
    with np.load(tmp_path / "mnist.npz") as z:
        assert {"x_train", "y_train", "x_test", "y_test"} <= set(z.files)
        assert z["x_train"].shape == (4000, 28, 28) and z["x_train"].dtype == np.uint8
    assert_same(ds, read_any(tmp_path / "mnist.npz"))


def test_csv_partner_rule_and_kaggle_header(tmp_path):
    assert partner_path(tmp_path / "mnist_train.csv").name == "mnist_test.csv"
    assert partner_path(tmp_path / "digits.csv").name == "digits_test.csv"
    # Kaggle layout: header label,1x1..2x3 (rows x cols), train + test pair
    header = "label," + ",".join(f"{r}x{c}" for r in (1, 2) for c in (1, 2, 3))
    (tmp_path / "mnist_train.csv").write_text(f"{header}\n1,0,1,2,3,4,5\n0,9,9,9,9,9,9\n")
    (tmp_path / "mnist_test.csv").write_text(f"{header}\n2,5,5,5,5,5,5\n")
    ds = read_csv(tmp_path / "mnist_train.csv")
    assert ds.image_shape == (2, 3) and (len(ds.x_train), len(ds.x_test)) == (2, 1)
    assert ds.x_train[0].tolist() == [[0, 1, 2], [3, 4, 5]] and ds.y_test.tolist() == [2]


def test_csv_shape_square_default_and_explicit(tmp_path):
    (tmp_path / "sq.csv").write_text("3,1,2,3,4\n1,5,6,7,8\n")
    assert read_csv(tmp_path / "sq.csv").image_shape == (2, 2)
    (tmp_path / "rect.csv").write_text("3,1,2,3,4,5,6\n")
    with pytest.raises(CvtoolError, match="not a square image.*--shape"):
        read_csv(tmp_path / "rect.csv")
    assert read_csv(tmp_path / "rect.csv", shape=(2, 3)).image_shape == (2, 3)
    with pytest.raises(CvtoolError, match="needs 4 pixels"):
        read_csv(tmp_path / "rect.csv", shape=(2, 2))
    assert parse_shape("32x32x3") == (32, 32, 3)
    with pytest.raises(CvtoolError, match="'shape' parameter"):
        parse_shape("28*28")


def test_csv_bad_values(tmp_path):
    (tmp_path / "big.csv").write_text("1,0,0,0,300\n")
    with pytest.raises(CvtoolError, match="0..255; data row 1"):
        read_csv(tmp_path / "big.csv")
    (tmp_path / "ragged.csv").write_text("1,0,0,0,0\n2,0,0\n")
    with pytest.raises(CvtoolError, match="integer label then integer pixels"):
        read_csv(tmp_path / "ragged.csv")
    (tmp_path / "empty.csv").write_text("label,1x1\n")
    with pytest.raises(CvtoolError, match="no data rows"):
        read_csv(tmp_path / "empty.csv")


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    n_train=st.integers(1, 6),
    n_test=st.integers(0, 4),
    shape=st.sampled_from([(1, 1), (3, 2), (2, 2, 3), (5, 4, 1)]),
    classes=st.integers(1, 300),
    fmt=st.sampled_from(["npz", "csv", "idx"]),
    seed=st.integers(0, 2**16),
)
def test_round_trip_property(tmp_path_factory, n_train, n_test, shape, classes, fmt, seed):
    rng = np.random.default_rng(seed)
    ds = make_dataset(rng, n_train, n_test, shape, classes)
    ds.y_train = rng.integers(0, classes, n_train)
    ds.y_test = rng.integers(0, classes, n_test)
    out = tmp_path_factory.mktemp("rt") / {"npz": "d.npz", "csv": "d.csv", "idx": "d"}[fmt]
    write_any(ds, out)
    back = read_any(out, shape=shape if fmt == "csv" else None)
    assert_same(ds, back)


# ---------------------------------------------------------------- bad input


@pytest.fixture
def idx_dir(tmp_path, rng):
    folder = tmp_path / "idx"
    write_any(make_dataset(rng), folder)
    return folder


def test_missing_file_and_unknown_name(tmp_path):
    with pytest.raises(CvtoolError, match="File not found"):
        read_any(tmp_path / "nope.npz")
    with pytest.raises(CvtoolError, match="Unknown dataset 'cifar-11'"):
        load_dataset("cifar-11")
    with pytest.raises(CvtoolError, match="File not found"):
        read_idx(tmp_path / "nope-idx3-ubyte")


def test_truncated_idx_raw_and_gz(idx_dir, tmp_path):
    raw = gzip.decompress((idx_dir / "train-images-idx3-ubyte.gz").read_bytes())
    (idx_dir / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(raw[:-7]))
    with pytest.raises(CvtoolError, match=r"declares shape \(12, 6, 5\).*truncated"):
        read_any(idx_dir)
    cut = gzip.compress(raw)[:-20]  # a gzip stream cut short
    (idx_dir / "train-images-idx3-ubyte.gz").write_bytes(cut)
    with pytest.raises(CvtoolError, match="Cannot read IDX file"):
        read_any(idx_dir)
    (tmp_path / "head").write_bytes(b"\x00\x00\x08\x03\x00\x00")
    with pytest.raises(CvtoolError, match="header is truncated"):
        read_idx(tmp_path / "head")


def test_wrong_magic(idx_dir):
    (idx_dir / "train-labels-idx1-ubyte.gz").write_bytes(b"\x12\x34\x08\x01\x00\x00\x00\x01\x05")
    with pytest.raises(CvtoolError, match="not an IDX file: the magic number"):
        read_any(idx_dir)
    with pytest.raises(CvtoolError, match="bad magic"):
        read_idx_header(idx_dir / "train-labels-idx1-ubyte.gz")
    (idx_dir / "train-labels-idx1-ubyte.gz").write_bytes(b"\x00\x00\x07\x01\x00\x00\x00\x01\x05")
    with pytest.raises(CvtoolError, match="unknown IDX type code 0x07"):
        read_any(idx_dir)


def test_label_count_differs_from_image_count(idx_dir, tmp_path, rng):
    write_idx(idx_dir / "t10k-labels-idx1-ubyte.gz", np.zeros(4, np.uint8))
    with pytest.raises(CvtoolError, match="test split has 5 images but 4 labels"):
        read_any(idx_dir)
    np.savez(tmp_path / "bad.npz", x_train=np.zeros((3, 2, 2), np.uint8), y_train=np.zeros(2))
    with pytest.raises(CvtoolError, match="labels must be integer"):
        read_any(tmp_path / "bad.npz")
    np.savez(tmp_path / "bad2.npz", x_train=np.zeros((3, 2, 2), np.uint8), y_train=np.zeros(2, int))
    with pytest.raises(CvtoolError, match="train split has 3 images but 2 labels"):
        read_any(tmp_path / "bad2.npz")


def test_idx_folder_missing_files(idx_dir):
    (idx_dir / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(CvtoolError, match="missing IDX file t10k-labels"):
        read_any(idx_dir)
    (idx_dir / "t10k-images-idx3-ubyte.gz").unlink()
    assert len(read_any(idx_dir).x_test) == 0  # no test pair at all: an empty test split
    with pytest.raises(CvtoolError, match="single IDX file"):
        read_any(idx_dir / "train-images-idx3-ubyte.gz")


def test_unreadable_image_in_folder(tmp_path, rng):
    write_any(make_dataset(rng), tmp_path / "f", "folder")
    (tmp_path / "f" / "train" / "1" / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(CvtoolError, match=r"Cannot read image .*broken\.png"):
        read_any(tmp_path / "f")


def test_images_of_different_sizes(tmp_path):
    from PIL import Image

    (tmp_path / "a").mkdir()
    Image.new("L", (4, 4)).save(tmp_path / "a" / "0.png")
    Image.new("L", (5, 4)).save(tmp_path / "a" / "1.png")
    with pytest.raises(CvtoolError, match="Images differ in size.*does not resize"):
        read_folder(tmp_path)


def test_empty_folder_and_folder_without_images(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CvtoolError, match="empty folder"):
        read_any(tmp_path / "empty")
    (tmp_path / "noimg" / "cls").mkdir(parents=True)
    (tmp_path / "noimg" / "cls" / "a.txt").write_text("x")
    with pytest.raises(CvtoolError, match="no .png/.jpg/.jpeg images"):
        read_any(tmp_path / "noimg")


def test_npz_problems(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(CvtoolError, match="Cannot read NPZ"):
        read_any(tmp_path / "junk.npz")
    np.savez(tmp_path / "nokey.npz", images=np.zeros((2, 2, 2), np.uint8))
    with pytest.raises(CvtoolError, match="missing 'x_train'"):
        read_any(tmp_path / "nokey.npz")
    np.savez(tmp_path / "float.npz", x_train=np.full((2, 2, 2), 0.5), y_train=np.zeros(2, int))
    with pytest.raises(CvtoolError, match="images must be integers in 0..255"):
        read_any(tmp_path / "float.npz")


def test_write_refuses_existing_and_bad_formats(tmp_path, rng):
    ds = make_dataset(rng)
    write_any(ds, tmp_path / "a.npz")
    with pytest.raises(CvtoolError, match="exists.*--force"):
        write_any(ds, tmp_path / "a.npz")
    write_any(ds, tmp_path / "a.npz", overwrite=True)
    assert output_format(tmp_path / "x") == "idx"
    with pytest.raises(CvtoolError, match="Cannot tell the output format"):
        output_format(tmp_path / "x.h5")
    with pytest.raises(CvtoolError, match="'format' parameter must be one of"):
        output_format(tmp_path / "x", "hdf5")
    with pytest.raises(CvtoolError, match="must end in .npz"):
        output_format(tmp_path / "x.csv", "npz")
    with pytest.raises(CvtoolError, match="unsupported format"):
        read_any(tmp_path / "README.md") if (tmp_path / "README.md").write_text("x") else None


def test_failed_folder_write_keeps_the_old_folder(tmp_path, rng, monkeypatch):
    ds = make_dataset(rng)
    write_any(ds, tmp_path / "f", "folder")
    before = sorted(p.name for p in (tmp_path / "f" / "train").iterdir())
    from PIL import Image

    calls = []
    real_save = Image.Image.save

    def failing_save(self, *args, **kwargs):
        calls.append(1)
        if len(calls) > 3:
            raise OSError("disk full")
        return real_save(self, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        write_any(ds, tmp_path / "f", "folder", overwrite=True)
    assert sorted(p.name for p in (tmp_path / "f" / "train").iterdir()) == before
    assert [p.name for p in tmp_path.iterdir()] == ["f"]  # no temporary folders left
