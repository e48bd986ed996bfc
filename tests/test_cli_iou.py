"""`cvtool iou ...`: happy paths (parsed --json) and every bad input (exit 2, one stderr line)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cvtool.boxes.synth import synthetic_coco


@pytest.fixture
def coco_files(tmp_path):
    gt, dets = synthetic_coco(n_images=30, n_cats=3, seed=4)
    g, d = tmp_path / "gt.json", tmp_path / "dets.json"
    g.write_text(json.dumps(gt))
    d.write_text(json.dumps(dets))
    return gt, dets, g, d


def ok_json(result):
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def bad(result, *words):
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    for w in words:
        assert w in lines[0], lines[0]
    assert "Traceback" not in result.stderr


def test_help_documents_defaults(cli):
    r = cli("iou", "--help")
    assert r.exit_code == 0 and "xywh" in r.stdout
    r = cli("iou", "map", "--help")
    assert "coco" in r.stdout and "voc07" in r.stdout


def test_box(cli):
    doc = ok_json(cli("iou", "box", "0,0,10,10", "5,0,10,10", "--json"))
    assert doc["iou"] == pytest.approx(1 / 3)
    doc = ok_json(
        cli("iou", "box", "0,0,9,9", "5,5,14,14", "--box-format", "xyxy", "--voc-pixels", "--json")
    )
    assert doc["iou"] == pytest.approx(25 / 175)
    r = cli("iou", "box", "0,0,10,10", "5,0,10,10")
    assert r.exit_code == 0 and "0.3333" in r.stdout


@pytest.mark.parametrize(
    "a, fmt, words",
    [
        ("0,0,-1,5", "xywh", ["width and height >= 0"]),
        ("10,0,5,5", "xyxy", ["x2 >= x1"]),
        ("0,nan,5,5", "xywh", ["finite"]),
        ("1,2,3", "xywh", ["4 numbers"]),
        ("0,0,5,5", "yolo", ["format"]),
    ],
)
def test_box_bad(cli, a, fmt, words):
    bad(cli("iou", "box", a, "0,0,1,1", "--box-format", fmt), *words)


def test_matrix(cli, tmp_path, rng):
    a = tmp_path / "a.csv"
    a.write_text("x,y,w,h\n0,0,10,10\n5,5,10,10\n")
    b = tmp_path / "b.npy"
    np.save(b, np.array([[0.0, 0, 10, 10], [20, 20, 5, 5], [1, 1, 9, 9]]))
    out = tmp_path / "m.csv"
    doc = ok_json(cli("iou", "matrix", a, b, "--out", out, "--json"))
    m = np.array(doc["matrix"])
    assert m.shape == (2, 3) and m[0, 0] == 1.0 and m[0, 1] == 0.0
    np.testing.assert_allclose(np.loadtxt(out, delimiter=","), m)
    g = ok_json(cli("iou", "matrix", a, b, "--giou", "--json"))
    assert np.array(g["matrix"])[0, 1] < 0
    j = tmp_path / "c.json"
    j.write_text(json.dumps([{"bbox": [0, 0, 10, 10]}]))
    assert ok_json(cli("iou", "matrix", j, b, "--json"))["shape"] == [1, 3]


def test_matrix_bad(cli, tmp_path):
    a = tmp_path / "a.csv"
    a.write_text("0,0,10,10\n5,5,-1,10\n")
    b = tmp_path / "b.csv"
    b.write_text("0,0,10,10\n")
    bad(cli("iou", "matrix", a, b), "Box 1", ">= 0")
    bad(cli("iou", "matrix", tmp_path / "none.csv", b), "not found")
    e = tmp_path / "e.csv"
    e.write_text("")
    bad(cli("iou", "matrix", e, b), "no boxes")


def test_mask_and_seg(cli, tmp_path):
    from PIL import Image

    a = np.zeros((10, 10), np.uint8)
    a[:4, :4] = 255
    b = np.zeros((10, 10), np.uint8)
    b[2:6, 2:6] = 1
    Image.fromarray(a).save(tmp_path / "a.png")
    np.save(tmp_path / "b.npy", b)
    doc = ok_json(cli("iou", "mask", tmp_path / "a.png", tmp_path / "b.npy", "--json"))
    assert doc["iou"] == pytest.approx(4 / 28)
    np.save(tmp_path / "small.npy", b[:5])
    bad(cli("iou", "mask", tmp_path / "a.png", tmp_path / "small.npy"), "same shape")

    (tmp_path / "pred").mkdir()
    (tmp_path / "gt").mkdir()
    t = np.array([[0, 1], [2, 2]], np.uint8)
    p = np.array([[0, 1], [2, 1]], np.uint8)
    for name in ("x", "y"):
        Image.fromarray(p).save(tmp_path / "pred" / f"{name}.png")
        Image.fromarray(t).save(tmp_path / "gt" / f"{name}.png")
    doc = ok_json(cli("iou", "seg", tmp_path / "pred", tmp_path / "gt", "--json"))
    assert doc["per_class_iou"] == pytest.approx([1.0, 0.5, 0.5])
    assert doc["pixel_accuracy"] == pytest.approx(0.75)
    assert np.array(doc["confusion_matrix"]).sum() == 8
    bad(
        cli("iou", "seg", tmp_path / "pred", tmp_path / "gt", "--num-classes", "2"),
        "labels must be in",
    )


def test_counts_course_example(cli):
    r = cli("iou", "counts", "--pred", "189,31", "--true", "201,50", "--overlap", "185,23")
    assert r.exit_code == 0
    for text in ("0.902", "0.397", "0.65", "not detection mAP"):
        assert text in r.stdout
    doc = ok_json(
        cli(
            "iou", "counts", "--pred", "189,31", "--true", "201,50", "--overlap", "185,23", "--json"
        )
    )
    assert round(doc["mean_iou"], 2) == 0.65 and "mAP" in doc["note"]
    bad(
        cli("iou", "counts", "--pred", "189,x", "--true", "201,50", "--overlap", "185,23"), "--pred"
    )
    bad(cli("iou", "counts", "--pred", "10", "--true", "5", "--overlap", "6"), "overlap")


def test_nms(cli, tmp_path):
    f = tmp_path / "d.csv"
    f.write_text(
        "image,class,x,y,w,h,score\nim1,cat,0,0,10,10,0.9\nim1,cat,1,1,10,10,0.8\n"
        "im1,dog,1,1,10,10,0.7\nim2,cat,1,1,10,10,0.7\n"
    )
    out = tmp_path / "kept.csv"
    doc = ok_json(cli("iou", "nms", f, "--out", out, "--json"))
    assert doc["kept_indices"] == [0, 2, 3] and doc["removed"] == 1
    assert out.read_text().splitlines()[1:] == ["im1,cat,0,0,10,10,0.9", "im1,dog,1,1,10,10,0.7",
                                                "im2,cat,1,1,10,10,0.7"]  # fmt: skip
    assert ok_json(cli("iou", "nms", f, "--class-agnostic", "--json"))["kept_indices"] == [0, 3]
    assert ok_json(cli("iou", "nms", f, "--top-k", "1", "--json"))["kept"] == 2
    bad(cli("iou", "nms", f, "--iou", "2"), "iou_threshold")
    f.write_text("im1,cat,0,0,10,10,nan\n")
    bad(cli("iou", "nms", f), "score")


@pytest.mark.parametrize("mode", ["coco", "voc07", "voc12"])
def test_map_happy(cli, coco_files, tmp_path, mode):
    _, _, g, d = coco_files
    png = tmp_path / "pr.png"
    doc = ok_json(
        cli("iou", "map", "--gt", g, "--dets", d, "--mode", mode, "--plot", png, "--json")
    )
    assert png.stat().st_size > 1000
    assert len(doc["per_class"]) == 3
    if mode == "coco":
        assert set(doc["stats"]) >= {"AP", "AP50", "AP75", "AR100", "AP_small"}
        assert 0 < doc["stats"]["AP"] < 1
    else:
        assert 0 < doc["map"] < 1


def test_map_matches_pycocotools_via_cli(cli, coco_files):
    import contextlib
    import io

    coco = pytest.importorskip("pycocotools.coco")
    cocoeval = pytest.importorskip("pycocotools.cocoeval")
    gt, dets, g, d = coco_files
    with contextlib.redirect_stdout(io.StringIO()):
        cg = coco.COCO()
        cg.dataset = json.loads(json.dumps(gt))
        cg.createIndex()
        E = cocoeval.COCOeval(cg, cg.loadRes(json.loads(json.dumps(dets))), "bbox")
        E.evaluate()
        E.accumulate()
        E.summarize()
    doc = ok_json(cli("iou", "map", "--gt", g, "--dets", d, "--json"))
    got = [v if v is not None else -1 for v in doc["stats"].values()]
    np.testing.assert_allclose(got, E.stats, atol=1e-6)
    r = cli("iou", "map", "--gt", g, "--dets", d)
    assert r.exit_code == 0 and "Per-class AP" in r.stdout and "AP @[IoU=.50:.95" in r.stdout


def test_map_csv(cli, tmp_path):
    g = tmp_path / "gt.csv"
    g.write_text("image,class,x1,y1,x2,y2\na,cat,0,0,10,10\na,dog,20,20,30,30\nb,cat,0,0,5,5\n")
    d = tmp_path / "d.csv"
    d.write_text("a,cat,0,0,10,10,0.9\na,dog,20,20,30,31,0.8\nb,cat,50,50,60,60,0.7\n")
    doc = ok_json(
        cli(
            "iou",
            "map",
            "--gt",
            g,
            "--dets",
            d,
            "--box-format",
            "xyxy",
            "--mode",
            "voc12",
            "--json",
        )
    )
    aps = {c["class"]: c["ap"] for c in doc["per_class"]}
    assert aps == {"cat": 0.5, "dog": 1.0} and doc["map"] == 0.75


def test_map_empty_detections_warn(cli, coco_files, tmp_path):
    _, _, g, _ = coco_files
    e = tmp_path / "empty.json"
    e.write_text("[]")
    r = cli("iou", "map", "--gt", g, "--dets", e, "--json")
    assert r.exit_code == 0 and "warning" in r.stderr and "no detections" in r.stderr
    assert json.loads(r.stdout)["stats"]["AP"] == 0.0


@pytest.mark.parametrize(
    "change, words",
    [
        (lambda d: d[0].update(image_id=-5), ["image_id -5", "not an image"]),
        (lambda d: d[0].update(category_id=77), ["category_id 77", "not a category"]),
        (lambda d: d[0].update(bbox=[0, 0, -3, 4]), ["detection 0", ">= 0"]),
        (lambda d: d[0].update(bbox=[0, 0, 3, float("nan")]), ["detection 0", "finite"]),
        (lambda d: d[0].update(score="high"), ["score", "number"]),
        (lambda d: d[0].pop("bbox"), ["bbox"]),
    ],
)
def test_map_bad_detections(cli, coco_files, tmp_path, change, words):
    _, dets, g, _ = coco_files
    dets = json.loads(json.dumps(dets))
    change(dets)
    d = tmp_path / "bad.json"
    d.write_text(json.dumps(dets))
    bad(cli("iou", "map", "--gt", g, "--dets", d), *words)


def test_map_bad_ground_truth_and_options(cli, coco_files, tmp_path):
    gt, _, g, d = coco_files
    broken = json.loads(json.dumps(gt))
    broken["annotations"][0]["bbox"] = [0, 0, -1, 1]
    b = tmp_path / "b.json"
    b.write_text(json.dumps(broken))
    bad(cli("iou", "map", "--gt", b, "--dets", d), "annotation 0", ">= 0")
    empty = dict(gt, annotations=[])
    b.write_text(json.dumps(empty))
    bad(cli("iou", "map", "--gt", b, "--dets", d), "no annotations")
    b.write_text("{not json")
    bad(cli("iou", "map", "--gt", b, "--dets", d), "not valid JSON")
    bad(cli("iou", "map", "--gt", g, "--dets", d, "--mode", "voc"), "mode")
    bad(cli("iou", "map", "--gt", tmp_path / "missing.json", "--dets", d), "not found")
    c = tmp_path / "gt.csv"
    c.write_text("a,cat,10,0,5,5\n")
    bad(cli("iou", "map", "--gt", c, "--dets", d, "--box-format", "xyxy"), "x2 >= x1")
