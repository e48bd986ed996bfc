"""CLI tests for train-cnn and show filters: happy paths, fine-tuning, bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

TINY = "conv:4x5:relu, pool:2, flatten, dense:10:softmax"
FAST = ("--arch", TINY, "--train-size", 300, "--epochs", 1)


def one_error_line(result):
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny CNN trained for 2 epochs on 600 images (batch 32), saved: (path, --json document)."""
    from typer.testing import CliRunner

    from cvtool.cli import app

    path = tmp_path_factory.mktemp("cnn") / "tiny.npz"
    args = ["train-cnn", "--arch", TINY, "--train-size", "600", "--epochs", "2", "--batch", "32",
            "--out", str(path), "--json"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.stderr
    return path, json.loads(result.stdout)


def test_tiny_cnn_trains_saves_and_reports(trained):
    path, doc = trained
    assert path.is_file()
    assert doc["command"] == "train-cnn" and doc["epochs_run"] == 2
    assert doc["spec"].startswith("input:28x28x1, conv:4x5:relu")
    assert doc["config"]["optimizer"] == "adam" and doc["config"]["eta"] == 0.001
    assert doc["params"] == 4 * 25 + 4 + 12 * 12 * 4 * 10 + 10
    # one layer table: the summary walker's rows, as layer-calc net prints them
    assert [r["type"] for r in doc["layers"]][:3] == ["Input", "Conv2D", "MaxPool2D"]
    assert doc["layers"][1]["activation"] == "relu"
    # 600 images, 2 epochs: well above chance (0.1) on the 1000 test digits.
    assert doc["n_test"] == 1000 and doc["test_accuracy"] > 0.5


def test_human_output_has_one_layer_table_after_the_header(cli, tmp_path):
    met, plot = tmp_path / "m.csv", tmp_path / "p.png"
    result = cli("train-cnn", *FAST, "--metrics", met, "--plot", plot)
    assert result.exit_code == 0, result.stderr
    assert met.read_text().startswith("epoch,") and plot.stat().st_size > 1000
    assert result.stdout.startswith("cvtool train-cnn")
    assert result.stdout.count("Network (layer-calc)") == 1 and "Model" not in result.stdout
    assert "(12, 12, 4)" in result.stdout or "12x12x4" in result.stdout


def test_saved_model_evaluates_and_shows_filters(cli, trained, tmp_path):
    path, doc = trained
    result = cli("evaluate", path, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["accuracy"] == pytest.approx(doc["test_accuracy"])
    png = tmp_path / "filters.png"
    result = cli("show", "filters", path, "--out", png, "--json")
    assert result.exit_code == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["filters"] == 4 and info["kernel"] == [5, 5] and png.stat().st_size > 1000


def test_finetune_freezes_layers_and_replaces_the_head(cli, trained, tmp_path):
    from cvtool.nn.model import Sequential

    path, _ = trained
    out = tmp_path / "ft.npz"
    result = cli("train-cnn", "--init-from", path, "--freeze", 1, "--replace-head", 10,
                 "--train-size", 300, "--epochs", 1, "--out", out, "--json")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["config"]["eta"] == pytest.approx(1e-4)  # a tenth of Adam's default
    base, tuned = (Sequential.load(p, backend_name="numpy") for p in (path, out))
    # The frozen convolution is unchanged; the new head was trained from scratch.
    np.testing.assert_array_equal(base.layers[0].params["W"], tuned.layers[0].params["W"])
    assert not np.allclose(base.layers[-2].params["W"], tuned.layers[-2].params["W"])
    assert [r["trainable"] > 0 for r in doc["layers"] if r["params"]] == [False, True]


def test_finetune_model_comes_built_and_unpatched(trained):
    from cvtool.nn import cnn

    path, _ = trained
    model = cnn.finetune_model(path, freeze=1, replace_head=7, dtype="float64", seed=2)
    assert model.xp is np and model.dtype == np.float64 and model.output_shape == (7,)
    assert "build" not in vars(model) and "forward" not in vars(model)  # no instance patching
    base = cnn.finetune_model(path)
    np.testing.assert_array_equal(base.layers[0].params["W"], model.layers[0].params["W"])
    assert [layer.trainable for layer in model.param_layers] == [False, True]


def test_gradient_monitor_works_through_conv_layers(cli):
    # gradient_norms runs a training-mode forward: conv and pool layers keep their caches.
    result = cli("train-cnn", *FAST, "--monitor", "gradients", "--json")
    assert result.exit_code == 0, result.stderr
    row = json.loads(result.stdout)["history"][0]
    assert row["grad_norm:conv"] > 0 and row["grad_norm:dense"] > 0


def test_augmentation_is_a_seeded_shape_preserving_transform():
    from cvtool.nn import cnn

    x = np.random.default_rng(0).random((8, 12, 12, 1)).astype(np.float32)
    (t1, settings), (t2, _) = cnn.augmentation(5), cnn.augmentation(5)
    a, b = t1(x.copy()), t2(x.copy())
    assert a.shape == x.shape and settings == {"rotation": 10.0, "shift": 2.0, "hflip": 0.5}
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, x) and not np.array_equal(t1(x.copy()), a)  # fresh draws per batch


def test_augment_changes_training_but_not_evaluation_inputs(cli):
    docs = []
    for extra in ((), ("--augment", "--no-flip")):
        result = cli("train-cnn", *FAST, "--batch", 16, *extra, "--json")
        assert result.exit_code == 0, result.stderr
        docs.append(json.loads(result.stdout))
    plain, augmented = docs
    assert augmented["history"][0]["train_cost"] != plain["history"][0]["train_cost"]
    assert augmented["test_accuracy"] > 0.3  # it still learns from 19 augmented batches


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--preset", "vgg16"), "preset"),
        (("--arch", "conv:4x5:bogus, flatten, dense:10:softmax"), "bogus"),
        (("--arch", "flatten, dense:10, conv:4x3"), "image input"),
        (("--arch", "conv:4x29, flatten, dense:10:softmax"), "larger than"),
        (("--arch", "conv:4x3, flatten, dense:7:softmax"), "one unit per class"),
        (("--arch", TINY, "--preset", "nielsen-ch6"), "not both"),
        (("--replace-head", 10), "--init-from"),
        (("--optimizer", "rmsprop"), "optimizer"),
        (("--init-from", "missing.npz"), "not found"),
    ],
)
def test_bad_inputs_exit_2_with_one_line(cli, args, needle):
    line = one_error_line(cli("train-cnn", "--train-size", 50, "--epochs", 1, *args))
    assert needle in line


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--freeze", 2), "freeze"),
        (("--replace-head", 0), "replace-head"),
        (("--replace-head", 5), "one unit per class"),
        (("--arch", TINY), "drop --arch"),
    ],
)
def test_bad_finetune_inputs(cli, trained, args, needle):
    path, _ = trained
    line = one_error_line(
        cli("train-cnn", "--init-from", path, "--train-size", 50, "--epochs", 1, *args)
    )
    assert needle in line


def test_show_filters_needs_a_convolution(cli, tmp_path):
    mlp = tmp_path / "mlp.npz"
    assert cli("train-mlp", "--train-size", 50, "--epochs", 1, "--out", mlp).exit_code == 0
    line = one_error_line(cli("show", "filters", mlp, "--out", tmp_path / "f.png"))
    assert "no convolution" in line


def test_a_network_too_big_for_memory_is_refused_before_any_output(cli):
    result = cli("train-cnn", "--arch", "conv:10000000x3, flatten, dense:10:softmax")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Lower --batch-size" in result.stderr
