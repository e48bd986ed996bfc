"""cvtool augment: the command's happy paths and its bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from cvtool.data.datasets import load_dataset


def _json(result):
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def _one_line_error(result, *words):
    assert result.exit_code == 2, (result.stdout, result.stderr)
    err = result.stderr.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    for w in words:
        assert w in err, err
    return err


def test_no_arguments_augments_mnist_sample_and_writes_a_preview(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = cli("augment")
    assert result.exit_code == 0, result.stderr
    assert "augment" in result.stdout and "4,000" in result.stdout
    with Image.open(tmp_path / "augment-preview.png") as im:
        assert im.mode == "RGB" and im.size[0] > 2 * 28 and im.size[1] > 8 * 28


def test_out_params_and_replay_give_the_same_data(cli, tmp_path):
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    doc = _json(cli("augment", "--out", a, "--copies", 2, "--keep-original", "--rotation", "-5,20",
                    "--hflip", 0.5, "--fill", "reflect", "--params", tmp_path / "p.jsonl",
                    "--seed", 3, "--json"))  # fmt: skip
    assert doc["inputs"] == 4000 and doc["outputs"] == 12000
    assert doc["ranges"]["rotation"] == [-5.0, 20.0]
    lo, hi = doc["observed_ranges"]["rotation"]
    assert -5 <= lo < 0 < hi <= 20
    assert 0 < doc["hflipped"] < 8000
    assert (tmp_path / "p.jsonl").read_text().count("\n") == 12000
    replayed = _json(cli("augment", "--out", b, "--replay", tmp_path / "p.jsonl", "--json"))
    assert replayed["fill"] == "reflect"  # recorded in the parameters file
    da, db = load_dataset(a), load_dataset(b)
    np.testing.assert_array_equal(da.x_train, db.x_train)
    np.testing.assert_array_equal(da.y_train, db.y_train)
    src = load_dataset("mnist-sample")
    np.testing.assert_array_equal(da.x_train[::3], src.x_train)  # originals first
    np.testing.assert_array_equal(da.x_test, src.x_test)  # test split untouched
    again = _json(cli("augment", "--out", b, "--force", "--copies", 2, "--keep-original",
                      "--rotation", "-5,20", "--hflip", 0.5, "--fill", "reflect", "--seed", 3,
                      "--json"))  # fmt: skip
    assert again["outputs"] == 12000
    np.testing.assert_array_equal(load_dataset(b).x_train, da.x_train)  # same seed, same data


def test_nielsen_expand_preset(cli, tmp_path):
    doc = _json(cli("augment", "--preset", "nielsen-expand", "--out", tmp_path / "x.npz", "--json"))
    assert doc["outputs"] == 5 * 4000 and doc["recipe"] == "nielsen-expand"
    x = load_dataset(tmp_path / "x.npz").x_train
    src = load_dataset("mnist-sample").x_train
    np.testing.assert_array_equal(x[1::5, 1:], src[:, :-1])  # shifted one pixel down
    assert not x[1::5, 0].any()


def test_boxes_follow_and_are_written(cli, tmp_path):
    boxes = tmp_path / "boxes.csv"
    boxes.write_text("image,x1,y1,x2,y2,label\n0,4,4,24,24,digit\n1,0,0,3,3,corner\n")
    doc = _json(cli("augment", "--boxes", boxes, "--out", tmp_path / "o.npz", "--rotation", 0,
                    "--zoom", 0, "--translate", 0, "--hflip", 1, "--min-visibility", 0.5,
                    "--json"))  # fmt: skip
    assert doc["boxes_out"] == 2 and doc["boxes_dropped"] == 0
    lines = (tmp_path / "o-boxes.csv").read_text().splitlines()
    assert lines == ["image,x1,y1,x2,y2,label", "0,4,4,24,24,digit", "1,25,0,28,3,corner"]


@pytest.mark.parametrize(
    "args,words",
    [
        (["--rotation", "abc"], ["'rotation'"]),
        (["--zoom", "1.5"], ["'zoom'"]),
        (["--rotation", "10,5"], ["'rotation'", "low <= high"]),
        (["--preset", "bogus"], ["'preset'", "nielsen-expand"]),
        (["--fill", "mirror"], ["'fill'"]),
        (["--copies", "0"], ["'copies'"]),
        (["--replay", "/nonexistent/p.jsonl"], ["not found"]),
        (["--dataset", "/nonexistent/data.npz"], ["/nonexistent/data.npz"]),
        (["--boxes", "/nonexistent/b.csv"], ["not found"]),
        (["--min-visibility", "2"], ["'min-visibility'"]),
        (["--backend", "tpu"], ["'backend'"]),
    ],
)
def test_bad_inputs_exit_2_with_one_line(cli, tmp_path, args, words):
    extra = ["--boxes", tmp_path / "b.csv"] if args[0] == "--min-visibility" else []
    (tmp_path / "b.csv").write_text("image,x1,y1,x2,y2,label\n0,1,1,2,2,a\n")
    _one_line_error(cli("augment", "--out", tmp_path / "o.npz", *args, *extra), *words)


def test_bad_boxes_file_exits_2(cli, tmp_path):
    bad = tmp_path / "b.csv"
    bad.write_text("image,x1,y1,x2,y2,label\n0,5,5,1,1,a\n")
    _one_line_error(cli("augment", "--boxes", bad, "--preview", tmp_path / "p.png"), "b.csv:2")
    bad.write_text("image,x1,y1,x2,y2,label\n4000,1,1,2,2,a\n")
    _one_line_error(cli("augment", "--boxes", bad, "--preview", tmp_path / "p.png"), "outside")
