"""Detection end to end: make-canvas -> train-detector -> detect -> iou map (and pycocotools)."""

from __future__ import annotations

import json

import pytest

TINY_ARCH = (
    "conv:8x3:p=same, bn, relu, pool:4, conv:16x3:p=same, bn, relu, pool:{pool}, conv:{head}x1"
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from typer.testing import CliRunner

    from cvtool.cli import app

    root = tmp_path_factory.mktemp("det")
    run = CliRunner().invoke
    canvases = root / "digits"
    args = ["data", "make-canvas", str(canvases), "--train", "100", "--test", "20", "--size", "32",
            "--max-objects", "2", "--min-scale", "0.5", "--max-scale", "0.8", "--json"]  # fmt: skip
    result = run(app, args)
    assert result.exit_code == 0, result.stderr
    model = root / "det.npz"
    args = ["train-detector", "--dataset", str(canvases), "--grid", "4", "--epochs", "15", "--eta", "0.01",
            "--validation", "10", "--batch-size", "16", "--arch", TINY_ARCH, "--out", str(model),
            "--json"]  # fmt: skip
    result = run(app, args)
    assert result.exit_code == 0, result.stderr
    return root, canvases, model, json.loads(result.stdout)


def test_train_detector_reports_coco_figures(trained):
    _, _, model, doc = trained
    assert doc["command"] == "train-detector" and model.is_file()
    test = doc["test"]
    assert test["n"] == 20 and 0 <= test["map50"] <= 1 and 0 <= test["map"] <= test["map50"]
    assert "val_map50" in doc["history"][-1]


def test_detect_output_is_scored_by_iou_map_as_pycocotools_scores_it(cli, trained):
    pytest.importorskip("pycocotools")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    root, canvases, model, _ = trained
    dets = root / "dets.json"
    result = cli("detect", model, "--dataset", canvases, "--out", dets, "--score-threshold",
                 "0.001", "--force")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    results = json.loads(dets.read_text())
    assert results and {"image_id", "category_id", "bbox", "score"} <= set(results[0])
    gt_path = canvases / "annotations" / "test.json"
    ours = json.loads(cli("iou", "map", "--gt", gt_path, "--dets", dets, "--json").stdout)
    gt = COCO(str(gt_path))
    ev = COCOeval(gt, gt.loadRes(str(dets)), "bbox")
    ev.evaluate(), ev.accumulate(), ev.summarize()
    names = ["AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large", "AR1", "AR10", "AR100",
             "AR_small", "AR_medium", "AR_large"]  # fmt: skip
    mine = [-1.0 if ours["stats"][k] is None else ours["stats"][k] for k in names]
    assert mine == pytest.approx(list(ev.stats), abs=1e-12)
    assert max(ev.stats) > 0  # something was found: the comparison means something


def test_detect_writes_the_box_csv_and_previews(cli, trained, tmp_path):
    _, canvases, model, _ = trained
    out, previews = tmp_path / "dets.csv", tmp_path / "previews"
    result = cli("detect", model, "--dataset", canvases, "--out", out, "--preview", previews)
    assert result.exit_code == 0, result.stderr
    assert out.read_text().startswith("image,class,x,y,w,h,score\n")
    assert len(list(previews.glob("*.png"))) == 20
    result = cli("detect", model, "--dataset", canvases, "--out", out)
    assert result.exit_code == 2 and "--force" in result.stderr


@pytest.mark.parametrize(
    "extra, message",
    [
        ([], "Give at least one image"),
        (["--score-threshold", "2"], "score-threshold"),
        (["--top-k", "0"], "top-k"),
    ],
)
def test_detect_bad_input_is_one_line(cli, trained, extra, message):
    _, _, model, _ = trained
    result = cli("detect", model, *extra, *(["--dataset", trained[1]] if extra else []))
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and message in result.stderr


def test_a_classifier_given_to_detect_is_refused(cli, tmp_path):
    model = tmp_path / "mlp.npz"
    assert cli("train-mlp", "--epochs", "1", "--train-size", "100", "--out", model).exit_code == 0
    result = cli("detect", model, "--dataset", "x")
    assert result.exit_code == 2 and "not a detector" in result.stderr


def test_the_trainers_generated_test_set_is_make_canvas_test_set():
    """So `iou map --gt DIR/annotations/test.json` (make-canvas, same seed) scores a default run."""
    import numpy as np

    from cvtool.data.canvas import canvas_streams, make_canvas_splits

    _, _, _, from_trainer = canvas_streams(10, 5, 6, seed=3, size=32, max_objects=2,
                                           min_scale=0.5, max_scale=0.8)  # fmt: skip
    _, from_make_canvas = make_canvas_splits(10, 6, seed=3, size=32, max_objects=2,
                                             min_scale=0.5, max_scale=0.8)  # fmt: skip
    assert np.array_equal(from_trainer.images, from_make_canvas.images)
    for a, b in zip(from_trainer.boxes, from_make_canvas.boxes, strict=True):
        assert np.array_equal(a, b)
