"""TIDE error breakdown against the tidecv package, and `iou errors`."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest

from cvtool.boxes.io import detections_from_coco, ground_truth_from_coco
from cvtool.boxes.synth import synthetic_coco
from cvtool.boxes.tide import ERROR_TYPES, tide_errors

SHORT = {"classification": "Cls", "localisation": "Loc", "both": "Both", "duplicate": "Dupe",
         "background": "Bkg", "missed": "Miss"}  # fmt: skip


def run_tidecv(gt, dets, tmp_path):
    """tidecv on files; its COCO reader needs a 'segmentation' on every annotation."""
    tidecv = pytest.importorskip("tidecv")
    from tidecv import datasets

    gt = json.loads(json.dumps(gt))
    for a in gt["annotations"]:
        x, y, w, h = a["bbox"]
        a["segmentation"] = [[x, y, x + w, y, x + w, y + h, x, y + h]]
    g, d = tmp_path / "tide_gt.json", tmp_path / "tide_dets.json"
    g.write_text(json.dumps(gt))
    d.write_text(json.dumps(dets))
    T = tidecv.TIDE()
    with contextlib.redirect_stdout(io.StringIO()):
        T.evaluate(datasets.COCO(str(g)), datasets.COCOResult(str(d)), mode=tidecv.TIDE.BOX)
        run = next(iter(T.runs.values()))
        main = next(iter(T.get_main_errors().values()))
        special = next(iter(T.get_special_errors().values()))
    counts = {type_.short_name: n for type_, n in run.count_errors().items()}
    return run.ap, main, special, counts


def ours(gt, dets):
    G = ground_truth_from_coco(gt)
    pos = {v: i for i, v in enumerate(G.image_ids)}
    order = [pos[im["id"]] for im in gt["images"]]  # tidecv visits the file's order
    return tide_errors(G, detections_from_coco(dets, G), image_order=order)


@pytest.mark.parametrize(
    ("seed", "decimals", "tol"), [(1, 8, 1e-9), (2, 8, 1e-9), (3, 2, 1e-9), (4, 1, 1e-9)]
)
def test_equals_tidecv(tmp_path, seed, decimals, tol):
    # crowds (ignore regions), duplicates, wrong classes, background; with decimals=2 score ties
    gt, dets = synthetic_coco(n_images=120, n_cats=5, score_decimals=decimals, seed=seed)
    ap, main, special, counts = run_tidecv(gt, dets, tmp_path)
    r = ours(gt, dets)
    assert abs(r["ap"] - ap) < tol
    for t in ERROR_TYPES:
        assert r["counts"][t] == counts[SHORT[t]], t
        assert abs(r["dap"][t] - main[SHORT[t]]) < tol, (t, r["dap"][t], main[SHORT[t]])
        assert r["counts"][t] > 0
    assert abs(r["special"]["false_positives"] - special["FalsePos"]) < 1e-6
    assert abs(r["special"]["false_negatives"] - special["FalseNeg"]) < 1e-6
    assert 20 < r["ap"] < 90


def test_tidecv_with_few_detections_per_image(tmp_path):
    # images without detections (all missed), max_dets cuts none; classes with no objects
    gt, dets = synthetic_coco(n_images=60, n_cats=6, dets_per_image=4, gt_per_image=3,
                              score_decimals=8, seed=7)  # fmt: skip
    ap, main, _, counts = run_tidecv(gt, dets, tmp_path)
    r = ours(gt, dets)
    assert abs(r["ap"] - ap) < 1e-9
    for t in ERROR_TYPES:
        assert r["counts"][t] == counts[SHORT[t]]
        assert abs(r["dap"][t] - main[SHORT[t]]) < 1e-9


def test_perfect_detections_have_no_errors():
    gt, _ = synthetic_coco(n_images=20, n_cats=3, crowd_frac=0.0, seed=5)
    dets = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"],
             "score": 0.9} for a in gt["annotations"]]  # fmt: skip
    r = ours(gt, dets)
    assert r["ap"] == pytest.approx(100.0)
    assert all(v == 0 for v in r["counts"].values())
    assert all(v == 0 for v in r["dap"].values())


def test_cli_errors(cli, tmp_path):
    gt, dets = synthetic_coco(n_images=20, n_cats=3, seed=4)
    g, d = tmp_path / "gt.json", tmp_path / "dets.json"
    g.write_text(json.dumps(gt))
    d.write_text(json.dumps(dets))
    png = tmp_path / "e.png"
    r = cli("iou", "errors", "--gt", str(g), "--dets", str(d), "--json", "--plot", str(png))
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    want = ours(gt, dets)
    assert doc["ap"] == pytest.approx(want["ap"])
    assert {k: v["count"] for k, v in doc["errors"].items()} == want["counts"]
    assert png.stat().st_size > 1000
    r = cli("iou", "errors", "--gt", str(g), "--dets", str(d), "--bg", "0.7")
    assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1
    assert np.isfinite(doc["special"]["false_positives"])
