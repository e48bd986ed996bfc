"""Detection confusion matrix: against supervision's ConfusionMatrix, and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cvtool.boxes.confusion import confusion_matrix, greedy_pairs
from cvtool.boxes.io import detections_from_coco, ground_truth_from_coco
from cvtool.boxes.synth import synthetic_coco


def sv_matrix(G, D, iou, conf):
    sv = pytest.importorskip("supervision")
    preds, tgts = [], []
    keep = ~(G.iscrowd | G.difficult)
    for i in range(len(G.image_ids)):
        gi, di = (G.img == i) & keep, D.img == i
        gb, db = G.boxes[gi], D.boxes[di]
        tgts.append(np.c_[gb[:, :2], gb[:, :2] + gb[:, 2:], G.cat[gi]].reshape(-1, 5))
        preds.append(
            np.c_[db[:, :2], db[:, :2] + db[:, 2:], D.cat[di], D.scores[di]].reshape(-1, 6)
        )
    names = [str(c) for c in G.cat_ids]
    return sv.ConfusionMatrix.from_tensors(preds, tgts, classes=names, conf_threshold=conf,
                                           iou_threshold=iou).matrix  # fmt: skip


@pytest.mark.parametrize(("seed", "iou", "conf"), [(1, 0.5, 0.3), (2, 0.3, 0.0), (3, 0.75, 0.6)])
def test_equals_supervision(seed, iou, conf):
    gt, dets = synthetic_coco(n_images=120, n_cats=5, dets_per_image=25, seed=seed)
    G = ground_truth_from_coco(gt)
    D = detections_from_coco(dets, G)
    r = confusion_matrix(G, D, iou_threshold=iou, score_threshold=conf)
    m = r["matrix"]
    np.testing.assert_array_equal(m, sv_matrix(G, D, iou, conf))
    assert m[:-1, :-1].sum() > 50 and (m[:-1, :-1] - np.diag(np.diag(m[:-1, :-1]))).sum() > 0
    # every kept object and every kept detection is counted exactly once
    kept_gt = int((~(G.iscrowd | G.difficult)).sum())
    assert m[:-1, :].sum() == kept_gt
    assert m[:, :-1].sum() == int((D.scores >= conf).sum())


def greedy_loop(rank, pg, pd):
    out = np.zeros(rank.size, bool)
    used_g, used_d = set(), set()
    for i in np.argsort(rank):
        if pg[i] not in used_g and pd[i] not in used_d:
            out[i] = True
            used_g.add(pg[i])
            used_d.add(pd[i])
    return out


@pytest.mark.parametrize("seed", range(5))
def test_vectorised_greedy_equals_the_sequential_sweep(seed):
    rng = np.random.default_rng(seed)
    n = 300
    pg, pd = rng.integers(0, 20, n), rng.integers(0, 25, n)
    rank = rng.permutation(n)
    np.testing.assert_array_equal(greedy_pairs(rank, pg, pd), greedy_loop(rank, pg, pd))


def test_hand_case_same_class_first_then_iou():
    gt = {"images": [{"id": 1}], "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10]}]}  # fmt: skip
    dets = [  # the wrong class overlaps more, but a same-class pair wins
        {"image_id": 1, "category_id": 2, "bbox": [0, 0, 10, 10], "score": 0.9},
        {"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 8], "score": 0.8},
        {"image_id": 1, "category_id": 1, "bbox": [50, 50, 5, 5], "score": 0.1},  # below 0.3
    ]
    G = ground_truth_from_coco(gt)
    m = confusion_matrix(G, detections_from_coco(dets, G))["matrix"]
    assert m.tolist() == [[1, 0, 0], [0, 0, 0], [0, 1, 0]]


def test_cli_confusion_json_and_plot(cli, tmp_path):
    gt, dets = synthetic_coco(n_images=20, n_cats=3, seed=4)
    g, d = tmp_path / "gt.json", tmp_path / "dets.json"
    g.write_text(json.dumps(gt))
    d.write_text(json.dumps(dets))
    png = tmp_path / "cm.png"
    r = cli("iou", "confusion", "--gt", str(g), "--dets", str(d), "--iou", "0.4", "--plot",
            str(png), "--json")  # fmt: skip
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    G = ground_truth_from_coco(gt)
    want = confusion_matrix(G, detections_from_coco(dets, G), iou_threshold=0.4)
    assert doc["matrix"] == want["matrix"].tolist()
    assert doc["classes"][-1] == "background" and png.stat().st_size > 1000
    r = cli("iou", "confusion", "--gt", str(g), "--dets", str(d), "--iou", "1.5")
    assert r.exit_code == 2 and "iou" in r.stderr and len(r.stderr.strip().splitlines()) == 1
