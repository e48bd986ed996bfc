"""CLI tests for train-mlp: happy paths, outputs, and bad inputs (exit 2, one line)."""

from __future__ import annotations

import csv
import json

import pytest

FAST = ("--train-size", 300, "--epochs", 2)


def one_error_line(result):
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("error: ")
    return lines[-1]


def test_no_arguments_trains_on_mnist_sample(cli):
    result = cli("train-mlp", "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["dataset"] == "mnist-sample" and doc["epochs_run"] == 30
    assert doc["spec"] == "input:784, dense:30:sigmoid, dense:10:sigmoid"
    assert doc["config"]["cost"] == "cross-entropy" and doc["config"]["eta"] == 0.5
    assert doc["n_test"] == 1000 and doc["test_accuracy"] > 0.85


def test_outputs_model_metrics_plot(cli, tmp_path):
    out, met, plot = tmp_path / "m.npz", tmp_path / "m.csv", tmp_path / "p.png"
    result = cli("train-mlp", *FAST, "--out", out, "--metrics", met, "--plot", plot,
                 "--validation", 50, "--monitor", "all", "--json")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert out.is_file() and plot.stat().st_size > 1000
    rows = list(csv.DictReader(met.open()))
    assert len(rows) == 2
    for key in ("train_cost", "train_accuracy", "val_cost", "val_accuracy",
                "grad_norm:dense", "grad_norm:dense_1"):  # fmt: skip
        assert key in rows[0]
    assert doc["history"][0]["grad_norm:dense"] > 0
    # the epoch rows went to stderr, the result alone to stdout
    assert "val acc" in result.stderr


def test_metrics_json_and_human_output(cli, tmp_path):
    met = tmp_path / "m.json"
    result = cli("train-mlp", *FAST, "--metrics", met)
    assert result.exit_code == 0, result.stderr
    assert len(json.loads(met.read_text())["epochs"]) == 2
    assert "test_accuracy" in result.stdout and "Dense" in result.stdout


def test_spec_layers_softmax_adam_early_stop(cli):
    result = cli("train-mlp", "--layers", "input:784, dense:20:relu, dense:10:softmax",
                 "--cost", "log-likelihood", "--optimizer", "adam", "--eta", 0.01,
                 "--init", "he", "--train-size", 400, "--validation", 100, "--epochs", 4,
                 "--early-stop", 1, "--json")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["config"]["optimizer"] == "adam" and doc["config"]["n_train"] == 300
    assert doc["best_epoch"] is not None and doc["stopped"] in ("completed", "early-stop")
    assert doc["test_accuracy"] > 0.6


def test_sizes_with_log_likelihood_get_a_softmax_output(cli):
    result = cli("train-mlp", *FAST, "--cost", "log-likelihood", "--activation", "relu",
                 "--layers", "784,16,10", "--dtype", "float64", "--json")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["spec"].endswith("dense:10:softmax") and doc["dtype"] == "float64"


def test_nan_stop_suggests_smaller_eta(cli, tmp_path):
    result = cli("train-mlp", "--layers", "784,10", "--activation", "identity", "--cost",
                 "quadratic", "--eta", 1000, "--train-size", 200, "--epochs", 5,
                 "--metrics", tmp_path / "m.csv")  # fmt: skip
    line = one_error_line(result)
    assert "NaN or infinite" in line and "--eta 100" in line
    assert "nan" in (tmp_path / "m.csv").read_text().lower()


@pytest.mark.parametrize(
    "args, word",
    [
        (("--eta", 0), "eta"),
        (("--layers", "100,10"), "input size 784"),
        (("--layers", "784,x,10"), "layer size"),
        (("--layers", "input:784, dense:5:softmax"), "one unit per class"),
        (("--cost", "hinge"), "cost"),
        (("--optimizer", "rmsprop"), "optimizer"),
        (("--init", "zeros"), "init"),
        (("--activation", "swish"), "activation"),
        (("--train-size", 0), "train-size"),
        (("--validation", "abc"), "validation"),
        (("--early-stop", 2), "--validation"),
        (("--out", "model.txt"), ".npz"),
        (("--metrics", "m.xml"), ".csv or .json"),
        (("--plot", "p.jpg"), ".png"),
        (("--dataset", "nope"), "nope"),
        (("--dtype", "float16"), "dtype"),
        (("--monitor", "speed"), "monitor"),
        (("--mini-batch", 0), "batch_size"),
        (("--epochs", "many"), "epochs"),
    ],
)
def test_bad_inputs_exit_2_with_one_line(cli, tmp_path, args, word):
    result = cli("train-mlp", "--train-size", 100, "--epochs", 1, *args)
    line = one_error_line(result)
    assert len([x for x in result.stderr.splitlines() if x.strip()]) == 1
    assert word in line
    assert result.stdout == "" or "cvtool train-mlp" in result.stdout


def test_ctrl_c_keeps_best_model_and_exits_130(cli, tmp_path, monkeypatch):
    from cvtool.cli import _train

    real = _train.Reporter.on_epoch_end

    def interrupt_at_3(self, record, model, improved):
        real(self, record, model, improved)
        if record["epoch"] == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(_train.Reporter, "on_epoch_end", interrupt_at_3)
    out = tmp_path / "m.npz"
    result = cli("train-mlp", "--train-size", 300, "--epochs", 10, "--out", out, "--json")
    assert result.exit_code == 130, result.stderr
    doc = json.loads(result.stdout)
    assert doc["stopped"] == "interrupted" and doc["epochs_run"] == 3 and doc["restored_best"]
    from cvtool.nn.model import Sequential

    model = Sequential.load(out)
    assert model.meta["history"]["stopped"] == "interrupted"
    assert not list(tmp_path.glob(".*tmp*"))


def test_ctrl_c_in_the_test_pass_keeps_model_and_history_and_exits_130(cli, tmp_path, monkeypatch):
    from cvtool.nn import tasks

    def interrupt(self, model, x, y):
        raise KeyboardInterrupt

    monkeypatch.setattr(tasks.Classification, "evaluate", interrupt)
    out, metrics = tmp_path / "m.npz", tmp_path / "h.csv"
    result = cli("train-mlp", "--train-size", 200, "--epochs", 2, "--out", out,
                 "--metrics", metrics, "--json")  # fmt: skip
    assert result.exit_code == 130, result.stderr
    doc = json.loads(result.stdout)
    assert doc["stopped"] == "interrupted" and doc["epochs_run"] == 2 and doc["test"] is None
    from cvtool.nn.model import Sequential

    saved = Sequential.load(out).meta  # training itself completed; no test figures
    assert saved["history"]["stopped"] == "completed" and "metrics" not in saved
    assert len(metrics.read_text().splitlines()) == 3
