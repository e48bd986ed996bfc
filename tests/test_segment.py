"""Segmentation: the per-pixel task, the default FCN with skips, train-segmenter."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cvtool.boxes.masks import segmentation_metrics
from cvtool.errors import CvtoolError
from cvtool.segment import segmentation_data, train_segmenter
from cvtool.segment.task import Segmentation, class_weights, parse_weights, predict_maps

TINY = "conv:4x3:relu:p=same, tap:a, pool:2, conv:8x3:relu:p=same, upsample:2, concat:a, conv:{classes}x1"


@pytest.fixture(scope="module")
def tiny_run():
    data = segmentation_data(n_train=48, n_val=16, n_test=24, seed=1, size=32, max_objects=2,
                             min_scale=0.5, max_scale=0.8, fresh=False)  # fmt: skip
    return data, train_segmenter(data, arch=TINY, epochs=4, batch_size=16, eta=0.01, seed=1)


def test_test_figures_are_the_iou_seg_figures_of_the_predicted_maps(tiny_run):
    data, result = tiny_run
    ds = data.dataset
    maps = predict_maps(result.model, ds.x_test)
    assert maps.shape == ds.y_test.shape and maps.dtype == np.uint8
    ref = segmentation_metrics(maps, ds.y_test, num_classes=11, ignore_index=None)
    assert result.test["mean_iou"] == pytest.approx(ref["mean_iou"], abs=1e-12)
    assert result.test["pixel_accuracy"] == pytest.approx(ref["pixel_accuracy"], abs=1e-12)
    doc = result.to_dict()
    assert doc["history"][-1]["val_mean_iou"] is not None and doc["test"]["n"] == 24


def test_training_lowers_the_pixel_cost(tiny_run):
    _, result = tiny_run
    costs = [r["train_cost"] for r in result.history.records]
    assert costs[-1] < costs[0] and result.model.meta["training"]["task"] == "segmentation"


def test_segmentation_grad_is_per_example():
    """fit divides the task's gradient by the batch size: grad = N * d(mean cost)/da."""
    rng = np.random.default_rng(0)
    task = Segmentation(3)
    a = rng.standard_normal((4, 5, 5, 3))
    y = rng.integers(0, 3, (4, 5, 5))
    g = task.grad(a, y)
    eps, i = 1e-6, (1, 2, 3, 0)
    up, down = a.copy(), a.copy()
    up[i] += eps
    down[i] -= eps
    numeric = (task.fn(up, y) - task.fn(down, y)) / (2 * eps)
    assert g[i] / len(a) == pytest.approx(numeric, rel=1e-6)


def test_class_weights_balance_by_median_frequency():
    y = np.zeros((2, 4, 4), np.uint8)
    y[0, 0, :2] = 1  # class 1: 2 of the 16 pixels of the one image that holds it
    w = class_weights(y, 3)
    assert w[1] / w[0] == pytest.approx((30 / 32) / (2 / 16)) and w[2] == 1.0
    assert parse_weights("auto") == "auto" and parse_weights("1,2.5") == (1.0, 2.5)
    with pytest.raises(CvtoolError, match="class-weights"):
        parse_weights("1,x")


def test_a_network_that_is_no_segmenter_is_refused_before_training():
    data = segmentation_data(n_train=8, n_val=0, n_test=4, size=32, max_objects=1,
                             min_scale=0.5, max_scale=0.8)  # fmt: skip
    with pytest.raises(CvtoolError, match="must output"):
        train_segmenter(data, arch="conv:4x3, pool:2, conv:{classes}x1", epochs=1)


def test_train_segmenter_command(cli, tmp_path):
    args = ["train-segmenter", "--train-size", "32", "--validation", "8", "--test-size", "16",
            "--epochs", "1", "--batch-size", "16", "--arch", TINY, "--json"]  # fmt: skip
    result = cli(*args, "--out", tmp_path / "seg.npz")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["command"] == "train-segmenter" and 0 <= doc["test"]["mean_iou"] <= 1
    assert (tmp_path / "seg.npz").is_file()
    for bad, message in ((["--class-weights", "1,2"], "one weight per class"),
                         (["--class-weights", "x"], "class-weights"),
                         (["--epochs", "0"], "epochs")):  # fmt: skip
        result = cli(*args, *bad)
        assert result.exit_code == 2 and result.stdout == ""
        assert result.stderr.count("\n") == 1 and message in result.stderr


def test_segment_command_writes_maps_scored_by_iou_seg_and_instances_by_iou_map(cli, tmp_path):
    pytest.importorskip("pycocotools")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    canvases, model = tmp_path / "digits", tmp_path / "seg.npz"
    args = ["data", "make-canvas", canvases, "--train", "48", "--test", "12", "--size", "32",
            "--max-objects", "2", "--min-scale", "0.5", "--max-scale", "0.8"]  # fmt: skip
    assert cli(*args).exit_code == 0
    args = ["train-segmenter", "--dataset", canvases, "--epochs", "3", "--validation", "8",
            "--batch-size", "16", "--eta", "0.01", "--arch", TINY, "--out", model, "--json"]  # fmt: skip
    result = cli(*args)
    assert result.exit_code == 0, result.stderr
    trained = json.loads(result.stdout)["test"]
    maps, found = tmp_path / "maps", tmp_path / "instances.json"
    result = cli("segment", model, "--dataset", canvases, "--out", maps, "--instances", found)
    assert result.exit_code == 0, result.stderr
    assert len(list(maps.glob("*.png"))) == 12
    seg = json.loads(cli("iou", "seg", maps, canvases / "masks" / "test", "--num-classes", "11",
                         "--json").stdout)  # fmt: skip
    assert seg["mean_iou"] == pytest.approx(trained["mean_iou"], abs=1e-12)
    results = json.loads(found.read_text())
    assert all(r["segmentation"]["size"] == [32, 32] for r in results)
    gt_path = canvases / "annotations" / "test.json"
    if results:
        ours = json.loads(cli("iou", "map", "--gt", gt_path, "--dets", found, "--iou-type", "segm",
                              "--json").stdout)  # fmt: skip
        gt = COCO(str(gt_path))
        ev = COCOeval(gt, gt.loadRes(str(found)), "segm")
        ev.evaluate(), ev.accumulate(), ev.summarize()
        assert ours["stats"]["AP"] == pytest.approx(ev.stats[0], abs=1e-12)


def test_connected_components_split_classes_and_touching_objects_merge():
    from cvtool.segment.instances import components, instances

    m = np.zeros((6, 8), np.uint8)
    m[1:3, 1:3] = 4  # one "3"
    m[1:3, 5:7] = 4  # another "3", apart
    m[4, 0:8] = 2  # a "1" running along a row
    lab, n = components(m == 4)
    assert n == 2 and set(np.unique(lab)) == {0, 1, 2}
    found = instances(m, image_id=7)
    assert sorted((r["category_id"], r["area"]) for r in found) == [(2, 8), (4, 4), (4, 4)]
    m[1:3, 3:5] = 4  # now the two "3"s touch: one component, one instance (the limit)
    assert len([r for r in instances(m) if r["category_id"] == 4]) == 1
