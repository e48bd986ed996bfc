"""The ground every command stands on: CLI tree, errors, backend, render, spec, shapes."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from cvtool import backend, shapes
from cvtool.errors import CvtoolError
from cvtool.nn.spec import PRESETS, layers_from_sizes, parse_spec

COMMANDS = ["knn", "train-mlp", "train-cnn", "iou", "layer-calc", "augment", "data"]


def test_help_lists_every_command(cli):
    result = cli("--help")
    assert result.exit_code == 0
    for name in COMMANDS + ["evaluate", "predict", "show"]:
        assert name in result.stdout


def test_version(cli):
    result = cli("--version")
    assert result.exit_code == 0 and result.stdout.startswith("cvtool ")


def test_usage_error_is_one_line_exit_2(cli):
    result = cli("no-such-command")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:")


def test_python_dash_m_runs():
    out = subprocess.run(
        [sys.executable, "-m", "cvtool", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.startswith("cvtool ")


def test_unknown_backend_is_user_error():
    with pytest.raises(CvtoolError, match="backend"):
        backend.resolve_backend("tpu")


def test_cupy_without_gpu_is_user_error(monkeypatch):
    if backend.gpu_available():
        pytest.skip("a GPU is present")
    with pytest.raises(CvtoolError, match="cupy is unavailable"):
        backend.resolve_backend("cupy")


def test_backend_from_environment(monkeypatch):
    monkeypatch.setenv("CVTOOL_BACKEND", "numpy")
    assert backend.resolve_backend(None) == "numpy"
    monkeypatch.setenv("CVTOOL_BACKEND", "bogus")
    with pytest.raises(CvtoolError):
        backend.resolve_backend(None)


def test_same_seed_same_stream(xp):
    a = backend.device_rng(3, xp).random(5)
    b = backend.device_rng(3, xp).random(5)
    assert np.array_equal(backend.to_numpy(a), backend.to_numpy(b))
    assert np.array_equal(backend.host_rng(1).random(4), backend.host_rng(1).random(4))


def test_render_json_handles_numpy_values(capsys):
    from cvtool import render

    render.render({"a": np.float32(0.5), "b": np.arange(3), "c": float("nan")}, json_out=True)
    doc = json.loads(capsys.readouterr().out)
    assert doc == {"a": 0.5, "b": [0, 1, 2], "c": None}


def test_shapes_course_examples():
    assert shapes.conv2d_output((227, 227, 3), 96, 11, stride=4) == (55, 55, 96)
    assert shapes.conv2d_params(3, 96, 11) == (34848, 96)
    assert shapes.conv2d_output((28, 28, 1), 20, 5) == (24, 24, 20)
    assert sum(shapes.conv2d_params(1, 20, 5)) == 520


def test_shapes_inexact_stride_names_a_fix():
    with pytest.raises(CvtoolError, match="padding 2 would make it exact"):
        shapes.output_size(10, 2, stride=3)
    with pytest.raises(CvtoolError, match="stride 1 would make it exact"):
        shapes.output_size(28, 3, stride=2)
    assert shapes.output_size(28, 3, stride=2, floor=True) == 13


def test_spec_presets_parse():
    for text in PRESETS.values():
        layers = parse_spec(text)
        assert layers[0].kind == "input" and layers[0]["shape"] == (28, 28, 1)


@pytest.mark.parametrize(
    "bad", ["conv:64", "pool", "dense:0", "dropout:1.5", "frobnicate:3", "conv:8x3:s=0", ""]
)
def test_spec_bad_items(bad):
    with pytest.raises(CvtoolError):
        parse_spec(bad)


def test_layers_from_sizes():
    layers = layers_from_sizes("784,30,10", "sigmoid")
    assert [ly.args.get("units") for ly in layers[1:]] == [30, 10]
