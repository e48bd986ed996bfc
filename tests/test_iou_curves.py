"""Precision / recall / F1 against the score threshold: against a plain-loop reference."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cvtool.boxes.core import box_iou
from cvtool.boxes.curves import match_detections, pr_f1
from cvtool.boxes.io import detections_from_coco, ground_truth_from_coco
from cvtool.boxes.synth import synthetic_coco
from cvtool.boxes.voc import voc_ap


def reference_tp(G, D, thr):
    """Per image and class, detections by score take the best free object with IoU >= thr."""
    tp = np.zeros(len(D.img), bool)
    keep = ~(G.iscrowd | G.difficult)
    for i in range(len(G.image_ids)):
        for k in range(len(G.cat_ids)):
            gi = np.nonzero((G.img == i) & (G.cat == k) & keep)[0]
            di = np.nonzero((D.img == i) & (D.cat == k))[0]
            di = di[np.argsort(-D.scores[di], kind="stable")]
            free = np.ones(gi.size, bool)
            for d in di:
                if not gi.size:
                    break
                v = box_iou(D.boxes[d : d + 1], G.boxes[gi])[0]
                v = np.where(free, v, -1.0)
                j = int(np.argmax(v))
                if v[j] >= thr:
                    free[j] = False
                    tp[d] = True
    return tp


@pytest.mark.parametrize(("seed", "thr"), [(1, 0.5), (2, 0.75), (3, 0.3)])
def test_matching_equals_the_loop(seed, thr):
    gt, dets = synthetic_coco(n_images=60, n_cats=4, score_decimals=1, seed=seed)
    G = ground_truth_from_coco(gt)
    D = detections_from_coco(dets, G)
    tp, n_pos = match_detections(G, D, thr)
    np.testing.assert_array_equal(tp, reference_tp(G, D, thr))
    assert tp.sum() > 50
    assert n_pos.sum() == int((~(G.iscrowd | G.difficult)).sum())


def test_pr_f1_at_threshold_and_best():
    gt, dets = synthetic_coco(n_images=80, n_cats=3, score_decimals=3, seed=5)
    G = ground_truth_from_coco(gt)
    D = detections_from_coco(dets, G)
    r = pr_f1(G, D, iou_threshold=0.5, score_threshold=0.4)
    tp = reference_tp(G, D, 0.5)
    f1s = []
    for k, c in enumerate(r["per_class"]):
        n_pos = int(((G.cat == k) & ~(G.iscrowd | G.difficult)).sum())
        sel = (D.cat == k) & (D.scores >= 0.4)
        p, rec = tp[sel].sum() / sel.sum(), tp[sel].sum() / n_pos
        assert c["at_threshold"]["precision"] == pytest.approx(p)
        assert c["at_threshold"]["recall"] == pytest.approx(rec)
        assert c["at_threshold"]["f1"] == pytest.approx(2 * p * rec / (p + rec))
        assert c["at_threshold"]["fn"] == n_pos - tp[sel].sum()
        # the best threshold is the best grid point of the exact F1 step function
        best = max(
            (2 * tp[m].sum() / (m.sum() + n_pos), t)
            for t in r["grid"]
            for m in [(D.cat == k) & (D.scores >= t)]
        )
        assert c["best"]["f1"] == pytest.approx(best[0])
        o = np.argsort(-D.scores[D.cat == k], kind="stable")
        t = tp[D.cat == k][o]
        ap = voc_ap(np.cumsum(t) / n_pos, np.cumsum(t) / np.arange(1, t.size + 1), False)
        assert c["ap"] == pytest.approx(ap)
        f1s.append(r["f1"][k])
    mean = np.mean(f1s, axis=0)
    assert r["overall"]["best"]["f1"] == pytest.approx(mean.max())
    assert r["overall"]["best"]["threshold"] == r["grid"][int(np.argmax(mean))]
    assert 0 < r["overall"]["best"]["threshold"] < 1


def test_cli_curves(cli, tmp_path):
    gt, dets = synthetic_coco(n_images=20, n_cats=3, seed=4)
    g, d = tmp_path / "gt.json", tmp_path / "dets.json"
    g.write_text(json.dumps(gt))
    d.write_text(json.dumps(dets))
    png = tmp_path / "c.png"
    r = cli("iou", "curves", "--gt", str(g), "--dets", str(d), "--score-threshold", "0.5",
            "--json", "--plot", str(png))  # fmt: skip
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["score_threshold"] == 0.5 and len(doc["per_class"]) == 3
    assert set(doc["overall"]["best"]) == {"threshold", "precision", "recall", "f1"}
    assert png.stat().st_size > 1000
    r = cli("iou", "curves", "--gt", str(g), "--dets", str(d), "--iou", "0")
    assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1
