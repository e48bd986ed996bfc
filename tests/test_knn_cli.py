"""`cvtool knn` command: happy paths, --json, --predictions, bad inputs (exit 2, one line)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest


def one_error_line(result):
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_no_arguments_runs_on_mnist_sample(cli):
    r = cli("knn")
    assert r.exit_code == 0, r.stderr
    assert "backend=" in r.stdout and "mnist-sample" in r.stdout  # numpy, or cupy on a GPU
    assert "used once" in r.stdout and "<- chosen" in r.stdout
    assert "Confusion matrix" in r.stdout and "peak memory" in r.stdout


def test_json_and_predictions(cli, tmp_path):
    out = tmp_path / "pred.csv"
    r = cli("knn", "-k", "1,3", "--metric", "l1,l2", "--validation", "300", "--json",
            "--predictions", out)  # fmt: skip
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert len(doc["selection"]) == 4 and sum(row["chosen"] for row in doc["selection"]) == 1
    best = max(doc["selection"], key=lambda row: row["accuracy"])
    assert doc["k"] == [row for row in doc["selection"] if row["chosen"]][0]["k"]
    assert best["accuracy"] == [row for row in doc["selection"] if row["chosen"]][0]["accuracy"]
    assert "300" in doc["selection_method"] and doc["test_set"].startswith("used once")
    conf = np.array(doc["confusion"])
    assert conf.sum() == doc["test_size"] == 1000
    assert doc["accuracy"] == pytest.approx(np.trace(conf) / 1000)
    rows = list(csv.reader(out.open()))
    assert rows[0] == ["index", "true", "predicted", "distance"] and len(rows) == 1001
    correct = sum(row[1] == row[2] for row in rows[1:])
    assert correct == np.trace(conf)
    assert [p.name for p in tmp_path.iterdir()] == ["pred.csv"]  # no temporary left behind


def test_train_test_files_and_folds(cli, tmp_path):
    rng = np.random.default_rng(0)
    centers = rng.integers(0, 256, (3, 4, 4))
    y, yt = np.repeat(np.arange(3), 20), np.arange(3).repeat(4)
    noise = lambda n: rng.integers(-20, 21, (n, 4, 4))  # noqa: E731
    x = np.clip(centers[y] + noise(60), 0, 255).astype(np.uint8)
    xt = np.clip(centers[yt] + noise(12), 0, 255).astype(np.uint8)
    path = tmp_path / "tiny.npz"
    np.savez(path, x_train=x, y_train=y, x_test=xt, y_test=yt)
    r = cli("knn", "--train", path, "-k", "1,5", "--metric", "l1,cosine", "--folds", "3",
            "--weights", "distance", "--json")  # fmt: skip
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["selection_method"] == "3-fold cross-validation"
    assert doc["accuracy"] == 1.0 and doc["test_size"] == 12 and doc["weights"] == "distance"
    r = cli("knn", "--train", path, "--test", path, "-k", "3", "--metric", "l2")
    assert r.exit_code == 0 and "used once: k=3, metric=l2" in r.stdout


@pytest.mark.parametrize(
    "args, needle",
    [
        (["-k", "0"], "'k' parameter must be an int >= 1"),
        (["-k", "3,x"], "'k' parameter"),
        (["--metric", "l3"], "'metric' parameter must be one of"),
        (
            ["-k", "5000", "--metric", "l2"],
            "must be an int in 1..4000. Got 5000 instead. There are 4000",
        ),
        (["--train", "/no/such/file.npz"], "/no/such/file.npz"),
        (["--weights", "cubic"], "'weights' parameter"),
        (["--validation", "1.5"], "'validation' parameter"),
        (["--folds", "1"], "'folds' parameter"),
        (["--validation", "0.1", "--folds", "3"], "--validation or --folds"),
        (["--memory", "0"], "'memory' parameter"),
        (["--backend", "tpu"], "'backend' parameter"),
        (["--test", "x.npz"], "needs --train"),
        (["-k", "1", "--predictions", "/tmp"], "is a folder"),
    ],
)
def test_bad_inputs_exit_2_with_one_line(cli, args, needle):
    line = one_error_line(cli("knn", *args))
    assert needle in line


def test_the_memory_default_is_the_librarys():
    import inspect

    from cvtool.cli.knn import knn_cmd as knn_command
    from cvtool.knn.search import DEFAULT_MEMORY_MB

    assert inspect.signature(knn_command).parameters["memory"].default == DEFAULT_MEMORY_MB
