"""CLI tests for evaluate, predict and show weights (any saved model)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from cvtool.data.datasets import load_dataset


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A [784, 10] linear classifier trained briefly, and its train-mlp JSON result."""
    from cvtool.cli import app

    path = tmp_path_factory.mktemp("models") / "linear.npz"
    result = CliRunner().invoke(
        app, ["train-mlp", "--layers", "784,10", "--train-size", "500", "--epochs", "3",
              "--out", str(path), "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    return path, json.loads(result.stdout)


def one_error_line(result):
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ")
    return lines[0]


def test_evaluate_matches_training_result(cli, trained):
    path, train_doc = trained
    result = cli("evaluate", path, "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["dataset"] == "mnist-sample" and doc["n"] == 1000
    assert doc["accuracy"] == pytest.approx(train_doc["test_accuracy"])
    assert doc["cost"] == pytest.approx(train_doc["test_cost"])
    confusion = np.array(doc["confusion"])
    assert confusion.shape == (10, 10) and confusion.sum() == 1000
    assert np.trace(confusion) / 1000 == pytest.approx(doc["accuracy"])
    support = confusion.sum(axis=1)
    assert np.allclose(doc["per_class_accuracy"], np.diag(confusion) / support)


def test_evaluate_human_output_and_train_split(cli, trained):
    result = cli("evaluate", trained[0], "--split", "train")
    assert result.exit_code == 0, result.stderr
    assert "Confusion matrix" in result.stdout and "4,000" in result.stdout


def test_predict_images_arrays_and_data_files(cli, trained, tmp_path):
    from PIL import Image

    ds = load_dataset("mnist-sample")
    Image.fromarray(ds.x_test[0]).save(tmp_path / "a.png")
    Image.fromarray(ds.x_test[1]).convert("RGB").save(tmp_path / "b.jpg", quality=100)
    np.save(tmp_path / "x.npy", ds.x_test[:3])
    result = cli("predict", trained[0], tmp_path / "a.png", tmp_path / "b.jpg",
                 tmp_path / "x.npy", "--json")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)["predictions"]
    assert [r["input"] for r in rows] == ["a.png", "b.jpg", "x.npy[0]", "x.npy[1]", "x.npy[2]"]
    assert rows[0]["class"] == rows[2]["class"]  # same image as PNG and as array
    for r in rows:
        assert sum(r["probabilities"]) == pytest.approx(1.0)
        assert r["probability"] == max(r["probabilities"]) and len(r["top"]) == 3
    # a data folder: its test split
    from cvtool.data.datasets import find_dataset_dir

    result = cli("predict", trained[0], find_dataset_dir("mnist-sample"), "--top", 1)
    assert result.exit_code == 0, result.stderr
    assert "mnist-sample[999]" in result.stdout


def test_show_weights_draws_class_templates(cli, trained, tmp_path):
    out = tmp_path / "t.png"
    result = cli("show", "weights", trained[0], "--out", out, "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["units"] == 10 and doc["image_shape"] == [28, 28]
    assert out.stat().st_size > 1000


@pytest.mark.parametrize(
    "args, word",
    [
        (("evaluate", "{tmp}/none.npz"), "not found"),
        (("evaluate", "{tmp}/junk.npz"), "not a cvtool model"),
        (("evaluate", "{model}", "--split", "val"), "split"),
        (("evaluate", "{model}", "--dataset", "nope"), "nope"),
        (("evaluate", "{model}", "--backend", "tpu"), "backend"),
        (("predict", "{model}", "{tmp}/small.png"), "does not resize"),
        (("predict", "{model}", "{tmp}/none.png"), "not found"),
        (("predict", "{model}", "{tmp}/junk.png"), "Cannot read image"),
        (("predict", "{model}", "{tmp}/bad.npy"), "model wants"),
        (("predict", "{model}", "{tmp}/a.png", "--top", 0), "top"),
        (("predict", "{model}"), "inputs"),
        (("show", "weights", "{model}", "--out", "{tmp}/t.jpg"), ".png"),
        (("show", "weights", "{tmp}/none.npz"), "not found"),
    ],
)
def test_bad_inputs_exit_2_with_one_line(cli, trained, tmp_path, args, word):
    from PIL import Image

    Image.fromarray(np.zeros((10, 10), np.uint8)).save(tmp_path / "small.png")
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    (tmp_path / "junk.png").write_bytes(b"junk")
    np.save(tmp_path / "bad.npy", np.zeros((2, 5, 5)))
    args = [str(a).format(tmp=tmp_path, model=trained[0]) for a in args]
    line = one_error_line(cli(*args))
    assert word in line
