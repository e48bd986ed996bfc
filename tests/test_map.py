"""mAP: COCO mode against pycocotools' COCOeval, VOC modes against a plain reference."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest

from cvtool.boxes.coco import coco_evaluate
from cvtool.boxes.io import detections_from_coco, ground_truth_from_coco
from cvtool.boxes.report import segm_inputs, stat_labels
from cvtool.boxes.synth import synthetic_coco, synthetic_coco_segm
from cvtool.boxes.voc import voc_ap, voc_evaluate
from cvtool.errors import CvtoolError


def pycoco_eval(gt, dets, iou_type="bbox", max_dets=None):
    """COCOeval evaluate + accumulate + summarize on deep copies (it mutates its input)."""
    coco = pytest.importorskip("pycocotools.coco")
    cocoeval = pytest.importorskip("pycocotools.cocoeval")
    with contextlib.redirect_stdout(io.StringIO()):
        cg = coco.COCO()
        cg.dataset = copy.deepcopy(gt)
        cg.createIndex()
        cd = cg.loadRes(copy.deepcopy(dets)) if dets else coco.COCO()
        E = cocoeval.COCOeval(cg, cd, iou_type)
        if max_dets is not None:
            E.params.maxDets = list(max_dets)
        E.evaluate()
        E.accumulate()
        E.summarize()
    return E


def ours(gt, dets):
    G = ground_truth_from_coco(gt)
    return coco_evaluate(G, detections_from_coco(dets, G))


def assert_same(r, E):
    np.testing.assert_allclose(r["precision"], E.eval["precision"], atol=1e-6, rtol=0)
    np.testing.assert_allclose(r["recall"], E.eval["recall"], atol=1e-6, rtol=0)
    np.testing.assert_allclose(r["stats"], E.stats, atol=1e-6, rtol=0)


# ---------------------------------------------------------------- COCO vs pycocotools
def test_coco_equals_pycocotools_several_hundred_images():
    gt, dets = synthetic_coco(n_images=300, n_cats=8, seed=11)
    crowd = sum(a["iscrowd"] for a in gt["annotations"])
    scores = [d["score"] for d in dets]
    assert crowd > 20 and len(set(scores)) < len(scores) / 10  # crowds and many score ties
    areas = np.array([a["area"] for a in gt["annotations"]])
    assert (
        (areas < 32**2).any()
        and ((areas > 32**2) & (areas < 96**2)).any()
        and (areas > 96**2).any()
    )
    r, E = ours(gt, dets), pycoco_eval(gt, dets)
    assert_same(r, E)
    assert 0.05 < r["stats"][0] < 0.9  # a non-degenerate case


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_coco_equals_pycocotools_dense_and_tied(seed):
    # more detections than maxDets=100 in some (image, class) groups, crowd-heavy, coarse scores
    gt, dets = synthetic_coco(n_images=25, n_cats=3, gt_per_image=12, dets_per_image=260,
                              crowd_frac=0.2, score_decimals=1, seed=seed)  # fmt: skip
    assert_same(ours(gt, dets), pycoco_eval(gt, dets))


def test_coco_small_matching_chunks_change_nothing():
    gt, dets = synthetic_coco(n_images=25, n_cats=3, gt_per_image=12, dets_per_image=150,
                              crowd_frac=0.2, score_decimals=1, seed=9)  # fmt: skip
    G = ground_truth_from_coco(gt)
    D = detections_from_coco(dets, G)
    a, b = coco_evaluate(G, D), coco_evaluate(G, D, chunk_elements=1)
    np.testing.assert_array_equal(a["precision"], b["precision"])
    np.testing.assert_array_equal(a["recall"], b["recall"])


def test_coco_category_without_gt_and_image_without_anything():
    gt, dets = synthetic_coco(n_images=30, n_cats=4, seed=5)
    gt["categories"].append({"id": 99, "name": "never"})
    gt["images"].append({"id": 123457})
    dets.append({"image_id": 123457, "category_id": 99, "bbox": [1, 1, 5, 5], "score": 0.5})
    r, E = ours(gt, dets), pycoco_eval(gt, dets)
    assert_same(r, E)
    assert r["precision"][0, 0, -1, 0, -1] == -1  # no gt: -1, like COCOeval


def test_coco_annotation_id_zero_quirk_is_reproduced():
    gt, dets = synthetic_coco(n_images=20, n_cats=2, seed=7)
    for i, a in enumerate(gt["annotations"]):
        a["id"] = i  # the first annotation has id 0
    assert_same(ours(gt, dets), pycoco_eval(gt, dets))


def test_coco_empty_detections_give_zero():
    gt, _ = synthetic_coco(n_images=10, n_cats=2, seed=8)
    r = ours(gt, [])
    assert (r["stats"] == 0).all()


def test_coco_tiny_hand_case():
    gt = {
        "images": [{"id": 1}],
        "categories": [{"id": 1, "name": "a"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "area": 100, "iscrowd": 0},
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [50, 50, 10, 10], "area": 100, "iscrowd": 0},
        ],
    }  # fmt: skip
    # one perfect hit (score .9), one miss (.8), the second object never found
    dets = [
        {"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9},
        {"image_id": 1, "category_id": 1, "bbox": [30, 30, 5, 5], "score": 0.8},
    ]
    r = ours(gt, dets)
    # recall reaches 0.5 at precision 1 at every IoU threshold: 51 of 101 points are 1
    assert r["stats"][0] == pytest.approx(51 / 101)
    assert r["stats"][8] == pytest.approx(0.5)  # AR@100
    assert r["stats"][3] == r["stats"][0]  # both objects are small (area 100 < 32**2)
    assert r["stats"][4] == r["stats"][5] == -1  # no medium or large ones: -1 as in COCOeval
    assert_same(r, pycoco_eval(gt, dets))


def test_crowd_region_absorbs_detections():
    gt = {
        "images": [{"id": 1}],
        "categories": [{"id": 1, "name": "a"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 100, 100], "area": 1e4, "iscrowd": 1},
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [200, 200, 20, 20], "area": 400, "iscrowd": 0},
        ],
    }  # fmt: skip
    # two small detections inside the crowd (IoU = inter/area(det) = 1): ignored, not false positives
    dets = [
        {"image_id": 1, "category_id": 1, "bbox": [10, 10, 10, 10], "score": 0.95},
        {"image_id": 1, "category_id": 1, "bbox": [40, 40, 10, 10], "score": 0.9},
        {"image_id": 1, "category_id": 1, "bbox": [200, 200, 20, 20], "score": 0.5},
    ]
    r = ours(gt, dets)
    assert r["stats"][0] == pytest.approx(1.0)
    assert_same(r, pycoco_eval(gt, dets))


# ---------------------------------------------------------------- segm vs pycocotools
def ours_segm(gt, dets, **kw):
    g, d, gm, dm, da = segm_inputs(copy.deepcopy(gt), copy.deepcopy(dets))
    return coco_evaluate(g, d, iou_type="segm", gt_masks=gm, dt_masks=dm, dt_area=da, **kw)


@pytest.mark.parametrize("seed, det_bbox", [(1, False), (2, True), (3, False)])
def test_segm_equals_pycocotools(seed, det_bbox):
    # polygons (some of two parts, some past the border), compressed and uncompressed RLE,
    # crowds; with det_bbox the results carry boxes and pycocotools sizes them by box area
    gt, dets = synthetic_coco_segm(n_images=40, n_cats=3, crowd_frac=0.15, rle_frac=0.25,
                                   det_bbox=det_bbox, seed=seed)  # fmt: skip
    segs = [a["segmentation"] for a in gt["annotations"]]
    assert any(isinstance(s, list) for s in segs)
    assert any(isinstance(s, dict) and isinstance(s["counts"], str) for s in segs)
    assert any(isinstance(s, dict) and isinstance(s["counts"], list) for s in segs)
    assert sum(a["iscrowd"] for a in gt["annotations"]) > 5
    r, E = ours_segm(gt, dets), pycoco_eval(gt, dets, "segm")
    np.testing.assert_allclose(r["stats"], E.stats, atol=1e-12, rtol=0)
    np.testing.assert_allclose(r["precision"], E.eval["precision"], atol=1e-12, rtol=0)
    np.testing.assert_allclose(r["recall"], E.eval["recall"], atol=1e-12, rtol=0)
    assert 0.05 < r["stats"][0] < 0.9 and (r["stats"] > 0).all()


def test_segm_results_with_and_without_boxes_keep_their_own():
    """A result without a bbox is boxed by its mask; one with a bbox keeps it."""
    from cvtool.boxes import rle

    gt, dets = synthetic_coco_segm(n_images=4, n_cats=2, det_bbox=True, seed=9)
    for d in dets[1::2]:
        del d["bbox"]
    for i, d in enumerate(dets[0::2]):
        d["bbox"] = [1.0, 2.0, 3.0 + i, 4.0]  # not the mask's box
    g, d, gm, dm, da = segm_inputs(gt, dets)
    mask_box = rle.to_bbox(dm)
    given = np.array([x["bbox"] for x in dets[0::2]], float)
    np.testing.assert_array_equal(d.boxes[0::2], given)
    np.testing.assert_array_equal(d.boxes[1::2], mask_box[1::2])
    assert not np.array_equal(mask_box[0::2], given)  # the cached mask boxes were not overwritten
    np.testing.assert_array_equal(da, d.boxes[:, 2] * d.boxes[:, 3])  # sized by box (first has one)


def test_segm_dense_groups_past_max_dets():
    gt, dets = synthetic_coco_segm(n_images=6, n_cats=2, gt_per_image=10, dets_per_image=240,
                                   crowd_frac=0.2, score_decimals=1, seed=5)  # fmt: skip
    r, E = ours_segm(gt, dets), pycoco_eval(gt, dets, "segm")
    np.testing.assert_allclose(r["stats"], E.stats, atol=1e-12, rtol=0)


_FORK_CHECK = """
import json, sys
import numpy as np
from cvtool.boxes import rle, rle_numba
from cvtool.boxes.report import segm_inputs, segm_inputs_from_files
rle.USE_NUMBA = True  # the compiled kernels at any size, in this process and (unless unsafe) the child
rle_numba.area_box(np.array([1, 1]), np.array([0, 2]), np.array([1]))  # Numba's threads start
gt, dets = (json.load(open(p)) for p in sys.argv[1:3])
want = segm_inputs(gt, dets)
for _ in range(2):  # forks after the threads started: the child must not use them
    got = segm_inputs_from_files(*sys.argv[1:3])
    assert np.array_equal(got[1].boxes, want[1].boxes)
    assert np.array_equal(got[2].counts, want[2].counts) and np.array_equal(got[2].offsets, want[2].offsets)
print("ok")
"""


def test_segm_files_read_in_a_second_process_after_numba_started(segm_files, tmp_path):
    """The ground truth is read in a forked process; forked after Numba's OpenMP threads
    started, that process uses the NumPy code (OpenMP is not fork-safe: it would abort)."""
    pytest.importorskip("numba")
    import subprocess
    import sys

    (tmp_path / "check.py").write_text(_FORK_CHECK)
    _, _, g, d = segm_files
    root = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, str(tmp_path / "check.py"), str(g), str(d)], cwd=root,
                       env={**os.environ, "PYTHONPATH": str(root)}, capture_output=True,
                       text=True, timeout=300)  # fmt: skip
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]


# ---------------------------------------------------------------- custom maxDets
@pytest.mark.parametrize("max_dets", [(5, 20, 50), (1, 3, 7), (10, 100, 300)])
def test_custom_max_dets_equal_pycocotools_arrays(max_dets):
    gt, dets = synthetic_coco(n_images=25, n_cats=3, gt_per_image=12, dets_per_image=150,
                              crowd_frac=0.1, seed=4)  # fmt: skip
    G = ground_truth_from_coco(gt)
    r = coco_evaluate(G, detections_from_coco(dets, G), max_dets=max_dets)
    E = pycoco_eval(gt, dets, max_dets=max_dets)
    np.testing.assert_allclose(r["precision"], E.eval["precision"], atol=1e-12, rtol=0)
    np.testing.assert_allclose(r["recall"], E.eval["recall"], atol=1e-12, rtol=0)
    # every line but the first agrees; COCOeval's first looks for maxDets=100 (-1 if absent)
    np.testing.assert_allclose(r["stats"][1:], E.stats[1:], atol=1e-12, rtol=0)
    p = E.eval["precision"][:, :, :, 0, -1]
    assert r["stats"][0] == pytest.approx(p[p > -1].mean(), abs=1e-12)
    if 100 not in max_dets:
        assert E.stats[0] == -1 and r["stats"][0] > 0
    assert r["stat_names"][6:9] == [f"AR{m}" for m in max_dets]
    labels = stat_labels(max_dets)
    assert f"maxDets={max_dets[0]}]" in labels[6] and f"maxDets={max_dets[1]}]" in labels[7]
    assert all(f"maxDets={max_dets[2]}]" in labels[i] for i in (0, 1, 2, 3, 4, 5, 8, 9, 10, 11))


# ---------------------------------------------------------------- the command
@pytest.fixture
def segm_files(tmp_path):
    gt, dets = synthetic_coco_segm(n_images=12, n_cats=2, seed=6)
    g, d = tmp_path / "gt.json", tmp_path / "dets.json"
    g.write_text(json.dumps(gt))
    d.write_text(json.dumps(dets))
    return gt, dets, g, d


def test_cli_segm_json_equals_pycocotools(cli, segm_files):
    gt, dets, g, d = segm_files
    r = cli("iou", "map", "--gt", g, "--dets", d, "--iou-type", "segm", "--json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["iou_type"] == "segm" and doc["max_dets"] == [1, 10, 100]
    E = pycoco_eval(gt, dets, "segm")
    got = [-1 if v is None else v for v in doc["stats"].values()]
    np.testing.assert_allclose(got, E.stats, atol=1e-12, rtol=0)


def test_cli_max_dets_labels_the_summary(cli, segm_files):
    _, _, g, d = segm_files
    r = cli(
        "iou", "map", "--gt", g, "--dets", d, "--iou-type", "segm", "--max-dets", "3,7,40", "--json"
    )
    doc = json.loads(r.stdout)
    assert list(doc["stats"])[6:9] == ["AR3", "AR7", "AR40"]
    r = cli("iou", "map", "--gt", g, "--dets", d, "--iou-type", "segm", "--max-dets", "3,7,40")
    assert r.exit_code == 0 and "maxDets=40" in r.stdout and "maxDets=100" not in r.stdout


def _bad(r, *words):
    assert r.exit_code == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), r.stderr
    assert all(w in lines[0] for w in words), lines[0]


@pytest.mark.parametrize(
    "where, segm, words",
    [
        ("gt", {"size": [240, 320], "counts": [5, 10]}, ("annotation 0", "sum to height")),
        ("gt", [[1.0, 2.0, 30.0, 2.0]], ("annotation 0", "at least 3 x, y pairs")),
        ("gt", {"size": [10, 10], "counts": [100]}, ("annotation 0", "differs from its image")),
        ("dets", {"size": [240, 320], "counts": "0"}, ("detection 0", "sum to height")),
        ("dets", [[1.0, 2.0, 30.0, 2.0, 9.0, 9.0]], ("detection 0", "needs an RLE")),
    ],
)
def test_cli_segm_bad_input_is_one_line(cli, segm_files, where, segm, words):
    gt, dets, g, d = segm_files
    (gt["annotations"] if where == "gt" else dets)[0]["segmentation"] = segm
    g.write_text(json.dumps(gt))
    d.write_text(json.dumps(dets))
    _bad(cli("iou", "map", "--gt", g, "--dets", d, "--iou-type", "segm"), *words)


@pytest.mark.parametrize(
    "args, words",
    [
        (("--iou-type", "mask"), ("iou-type", "bbox, segm", "'mask'")),
        (("--max-dets", "1,10"), ("max-dets", "'1,10'")),
        (("--max-dets", "10,1,100"), ("max-dets",)),
        (("--mode", "voc07", "--iou-type", "segm"), ("--mode coco",)),
    ],
)
def test_cli_bad_options_are_one_line(cli, segm_files, args, words):
    _, _, g, d = segm_files
    _bad(cli("iou", "map", "--gt", g, "--dets", d, *args), *words)


# ---------------------------------------------------------------- VOC vs a plain reference
def voc_reference(gt, dets, use_07, thr=0.5, offset=0.0):
    """The devkit's algorithm, one detection at a time (py-faster-rcnn voc_eval, >= thr)."""
    cats = sorted(c["id"] for c in gt["categories"])
    aps = {}
    for c in cats:
        R = {}
        for a in gt["annotations"]:
            if a["category_id"] == c:
                R.setdefault(a["image_id"], []).append(a)
        npos = sum(1 for v in R.values() for a in v if not (a.get("difficult") or a["iscrowd"]))
        ds = [d for d in dets if d["category_id"] == c]
        ds = sorted(ds, key=lambda d: -d["score"])  # stable
        used = {k: [False] * len(v) for k, v in R.items()}
        tp, fp = np.zeros(len(ds)), np.zeros(len(ds))
        for i, d in enumerate(ds):
            x, y, w, h = d["bbox"]
            bb = [x, y, x + w - offset, y + h - offset]
            ovmax, jmax = -np.inf, -1
            for j, a in enumerate(R.get(d["image_id"], [])):
                gx, gy, gw, gh = a["bbox"]
                g = [gx, gy, gx + gw - offset, gy + gh - offset]
                iw = max(min(bb[2], g[2]) - max(bb[0], g[0]) + offset, 0.0)
                ih = max(min(bb[3], g[3]) - max(bb[1], g[1]) + offset, 0.0)
                inter = iw * ih
                uni = w * h + gw * gh - inter
                ov = inter / uni if uni > 0 else 0.0
                if ov > ovmax:
                    ovmax, jmax = ov, j
            if ovmax >= thr:
                a = R[d["image_id"]][jmax]
                if not (a.get("difficult") or a["iscrowd"]):
                    if not used[d["image_id"]][jmax]:
                        tp[i], used[d["image_id"]][jmax] = 1, True
                    else:
                        fp[i] = 1
            else:
                fp[i] = 1
        if npos == 0:
            aps[c] = None
            continue
        tpc, fpc = np.cumsum(tp), np.cumsum(fp)
        rec = tpc / npos
        prec = tpc / np.maximum(tpc + fpc, np.finfo(np.float64).eps)
        if use_07:
            ap = (
                sum(
                    (prec[rec >= t].max() if (rec >= t).any() else 0)
                    for t in np.arange(0, 1.1, 0.1)
                )
                / 11
            )
        else:
            mrec = np.concatenate(([0.0], rec, [1.0]))
            mpre = np.concatenate(([0.0], prec, [0.0]))
            for i in range(mpre.size - 1, 0, -1):
                mpre[i - 1] = max(mpre[i - 1], mpre[i])
            i = np.where(mrec[1:] != mrec[:-1])[0]
            ap = np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1])
        aps[c] = ap
    return aps


@pytest.mark.parametrize("use_07", [True, False])
@pytest.mark.parametrize("offset", [0.0, 1.0])
def test_voc_equals_reference(use_07, offset):
    gt, dets = synthetic_coco(n_images=80, n_cats=5, seed=21)
    rng = np.random.default_rng(0)
    for a in gt["annotations"]:
        a["difficult"] = int(rng.random() < 0.1)
    G = ground_truth_from_coco(gt)
    r = voc_evaluate(G, detections_from_coco(dets, G), use_07=use_07, offset=offset)
    ref = voc_reference(gt, dets, use_07, offset=offset)
    ours_ap = dict(zip(G.cat_ids, r["per_class_ap"], strict=True))
    for c in G.cat_ids:
        assert ours_ap[c] == pytest.approx(ref[c], abs=1e-12)
    assert r["map"] == pytest.approx(np.mean(list(ref.values())), abs=1e-12)


def test_voc_ap_hand_cases():
    rec, prec = np.array([0.5, 0.5, 1.0]), np.array([1.0, 0.5, 2 / 3])
    assert voc_ap(rec, prec, use_07=False) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert voc_ap(rec, prec, use_07=True) == pytest.approx((6 * 1 + 5 * 2 / 3) / 11)


def test_voc_difficult_is_neither_tp_nor_fp():
    gt = {
        "images": [{"id": 1}],
        "categories": [{"id": 1, "name": "a"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "iscrowd": 0, "difficult": 1},
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [50, 0, 10, 10], "iscrowd": 0},
        ],
    }  # fmt: skip
    dets = [
        {"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9},  # difficult hit
        {"image_id": 1, "category_id": 1, "bbox": [50, 0, 10, 10], "score": 0.8},  # tp
        {"image_id": 1, "category_id": 1, "bbox": [50, 0, 10, 10], "score": 0.7},  # duplicate: fp
    ]
    G = ground_truth_from_coco(gt)
    r = voc_evaluate(G, detections_from_coco(dets, G))
    assert r["npos"].tolist() == [1]
    assert r["per_class_ap"] == [1.0]


def test_ground_truth_bulk_read_equals_the_per_annotation_loop(monkeypatch):
    """The bulk path of ground_truth_from_coco gives the loop's arrays (area, crowd, id 0...)."""
    import dataclasses
    import gc

    from cvtool.boxes import io as boxes_io

    gt, _ = synthetic_coco(n_images=40, n_cats=3, seed=3)
    anns = gt["annotations"]
    del anns[0]["area"]  # area defaults to w * h
    anns[1]["id"], anns[2]["difficult"], anns[3]["iscrowd"] = 0, 1, 1
    anns[4]["bbox"] = tuple(anns[4]["bbox"])
    assert boxes_io._ground_truth_fast(anns, *_maps(gt)) is not None
    fast = ground_truth_from_coco(gt)
    monkeypatch.setattr(boxes_io, "_ground_truth_fast", lambda *a: None)
    slow = ground_truth_from_coco(gt)
    for f in dataclasses.fields(fast):
        a, b = getattr(fast, f.name), getattr(slow, f.name)
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    with boxes_io.no_gc():
        assert not gc.isenabled()
    assert gc.isenabled()


def _maps(gt):
    imap = {v: i for i, v in enumerate(sorted(im["id"] for im in gt["images"]))}
    cmap = {v: i for i, v in enumerate(sorted(c["id"] for c in gt["categories"]))}
    return imap, cmap


@pytest.mark.parametrize(
    "change", [{"bbox": [1, 2, 3]}, {"bbox": [1, 2, -3, 4]}, {"area": None}, {"image_id": -5},
               {"bbox": [[1, 2, 3, 4]]}, {"bbox": [1, 2, float("nan"), 4]}],
)  # fmt: skip
def test_ground_truth_bulk_read_refuses_what_the_loop_names(change):
    from cvtool.boxes import io as boxes_io

    gt, _ = synthetic_coco(n_images=5, n_cats=2, seed=4)
    gt["annotations"][2].update(change)
    assert boxes_io._ground_truth_fast(gt["annotations"], *_maps(gt)) is None
    with pytest.raises(CvtoolError, match="annotation 2"):
        ground_truth_from_coco(gt)


# ---------------------------------------------------------------- property: tiny adversarial sets
def _grid_case(data):
    """Boxes on a coarse grid (exact IoU ties), areas on the range borders, crowds, id 0."""
    from hypothesis import strategies as st

    n_img, n_cat = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 2))
    border = [0.0, 1023.0, 1024.0, 1025.0, 9216.0, 9217.0, 20000.0]
    anns, dets = [], []
    box = st.tuples(*[st.integers(0, 2)] * 2, *[st.integers(1, 3)] * 2)
    for img in range(1, n_img + 1):
        for _ in range(data.draw(st.integers(1, 6))):
            x, y, w, h = (10 * v for v in data.draw(box))
            anns.append({"id": len(anns), "image_id": img, "category_id": data.draw(st.integers(1, n_cat)),
                         "bbox": [x, y, w, h], "area": data.draw(st.sampled_from(border)),
                         "iscrowd": int(data.draw(st.integers(0, 5)) == 0)})  # fmt: skip
        for _ in range(data.draw(st.integers(1, 10))):
            x, y, w, h = (10 * v for v in data.draw(box))
            dets.append({"image_id": img, "category_id": data.draw(st.integers(1, n_cat)),
                         "bbox": [x, y, w, h], "score": data.draw(st.sampled_from([0.3, 0.5, 0.9]))})  # fmt: skip
    gt = {"images": [{"id": i} for i in range(1, n_img + 1)], "annotations": anns,
          "categories": [{"id": c, "name": str(c)} for c in range(1, n_cat + 1)]}  # fmt: skip
    return gt, dets


def test_coco_equals_pycocotools_on_tiny_adversarial_sets():
    """Ties in IoU and score, crowds, id 0, areas on the range borders, maxDets 1/2/3: exact."""
    pytest.importorskip("pycocotools")
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=300, deadline=None, derandomize=True)
    @given(st.data())
    def check(data):
        gt, dets = _grid_case(data)
        if not dets or not gt["annotations"]:
            return
        E = pycoco_eval(gt, dets, max_dets=(1, 2, 3))
        G = ground_truth_from_coco(gt)
        r = coco_evaluate(G, detections_from_coco(dets, G), max_dets=(1, 2, 3))
        np.testing.assert_array_equal(r["precision"], E.eval["precision"])
        np.testing.assert_array_equal(r["recall"], E.eval["recall"])
        want = E.stats.copy()  # its first line looks for maxDets 100 (cocoapi#584): ours uses 3
        p = E.eval["precision"][..., 0, -1]
        want[0] = p[p > -1].mean() if (p > -1).any() else -1.0
        np.testing.assert_allclose(r["stats"], want, atol=1e-12, rtol=0)

    check()


def test_equal_iou_with_two_gts_goes_to_the_last_as_cocoeval():
    """A detection half over two gts takes the later one, so a second detection can take the first."""
    gt = {"images": [{"id": 1}], "categories": [{"id": 1, "name": "a"}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 10, 20, 10], "area": 200, "iscrowd": 0},
                          {"id": 2, "image_id": 1, "category_id": 1, "bbox": [10, 0, 10, 20], "area": 200, "iscrowd": 0}]}  # fmt: skip
    dets = [{"image_id": 1, "category_id": 1, "bbox": [10, 10, 10, 10], "score": 0.9},
            {"image_id": 1, "category_id": 1, "bbox": [0, 10, 20, 10], "score": 0.8}]  # fmt: skip
    r, E = ours(gt, dets), pycoco_eval(gt, dets)
    np.testing.assert_array_equal(r["precision"], E.eval["precision"])
    assert r["recall"][0, 0, 0, -1] == 1.0  # both gts found at IoU 0.5


def test_read_json_equals_the_standard_parser_and_reads_what_orjson_refuses(tmp_path):
    from cvtool.boxes.io import read_json

    p = tmp_path / "d.json"
    text = '[{"image_id": 1, "bbox": [1, 2.5, -0.0, 1e5], "score": 0.1, "name": "\\u00e9"}]'
    p.write_text(text)
    assert read_json(p) == json.loads(text)
    p.write_text(
        '[NaN, Infinity, {"a": 1}]'
    )  # orjson refuses these; the standard parser reads them
    got = read_json(p)
    assert np.isnan(got[0]) and got[1] == float("inf") and got[2] == {"a": 1}
    p.write_text('[{"a": 1},')
    with pytest.raises(CvtoolError, match="not valid JSON"):
        read_json(p)


def test_evaluate_files_restores_numpys_huge_pages(segm_files):
    from cvtool.boxes.report import evaluate_files

    switch = getattr(np._core.multiarray, "_set_madvise_hugepage", None)
    if switch is None:
        pytest.skip("this NumPy has no huge-page switch")
    before = switch(True)
    switch(before)  # (read without changing)
    _, _, g, d = segm_files
    evaluate_files(g, d, iou_type="segm")
    assert switch(before) == before


@pytest.mark.parametrize("n_thr", [1, 9, 17])  # one byte of threshold bits, two, three
def test_other_iou_thresholds_equal_pycocotools(n_thr):
    pytest.importorskip("pycocotools")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    thr = np.linspace(0.3, 0.95, n_thr) if n_thr > 1 else np.array([0.5])
    gt, dets = synthetic_coco(n_images=40, n_cats=3, gt_per_image=8, dets_per_image=60,
                              crowd_frac=0.1, seed=3)  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):
        cg = COCO()
        cg.dataset = copy.deepcopy(gt)
        cg.createIndex()
        E = COCOeval(cg, cg.loadRes(copy.deepcopy(dets)), "bbox")
        E.params.iouThrs = thr
        E.evaluate()
        E.accumulate()
    G = ground_truth_from_coco(gt)
    r = coco_evaluate(G, detections_from_coco(dets, G), iou_thresholds=thr)
    np.testing.assert_array_equal(r["precision"], E.eval["precision"])
    np.testing.assert_array_equal(r["recall"], E.eval["recall"])
