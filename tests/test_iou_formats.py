"""YOLO txt and Pascal VOC XML labels: reading, `iou convert` round trips, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cvtool.boxes import formats
from cvtool.boxes.labels import convert_labels, load_pair, read_labels
from cvtool.boxes.synth import synthetic_coco


@pytest.fixture
def coco(tmp_path):
    gt, dets = synthetic_coco(n_images=12, n_cats=3, crowd_frac=0.0, seed=3)
    for i, a in enumerate(gt["annotations"]):
        a["difficult"] = int(i % 7 == 0)
    g, d = tmp_path / "gt.json", tmp_path / "dets.json"
    g.write_text(json.dumps(gt))
    d.write_text(json.dumps(dets))
    sizes = tmp_path / "sizes.csv"
    sizes.write_text("image,width,height\n" + "".join(
        f"{im['file_name'].split('.')[0]},{im['width']},{im['height']}\n" for im in gt["images"]))  # fmt: skip
    return gt, dets, g, d, sizes


def rows(ls, digits=None):
    """Every box as (image, class, x, y, w, h, difficult), sorted: exact unless ``digits``."""
    boxes = ls.boxes if digits is None else np.round(ls.boxes, digits)
    return sorted((ls.images[i], ls.cat_names[c], *b.tolist(), bool(d))
                  for i, c, b, d in zip(ls.img, ls.cat, boxes, ls.difficult, strict=True))  # fmt: skip


def texts(folder):
    return {f.name: f.read_text() for f in sorted(folder.iterdir())}


def test_yolo_round_trips_are_the_same_text(coco, tmp_path):
    gt, dets, g, d, sizes = coco
    convert_labels(g, tmp_path / "y", "yolo")
    names = "class1,class2,class3"  # a YOLO class index is a position in this list
    assert (tmp_path / "y" / "classes.txt").read_text().split() == names.split(",")
    for to, out in (("coco", "y.json"), ("csv", "y.csv"), ("voc", "yv")):
        convert_labels(tmp_path / "y", tmp_path / out, to, image_sizes=sizes)
        convert_labels(tmp_path / out, tmp_path / f"y_{to}", "yolo", image_sizes=sizes,
                       names=names)  # fmt: skip
        want = texts(tmp_path / "y")
        if to == "csv":  # a CSV knows only the images that have a box
            want = {k: v for k, v in want.items() if v}
        assert texts(tmp_path / f"y_{to}") == want, to
    # detections keep their confidence as a 6th value
    convert_labels(d, tmp_path / "yd", "yolo", image_sizes=g)
    convert_labels(tmp_path / "yd", tmp_path / "yd.json", "coco", image_sizes=sizes)
    convert_labels(tmp_path / "yd.json", tmp_path / "yd2", "yolo", image_sizes=g)
    yd, yd2 = texts(tmp_path / "yd"), texts(tmp_path / "yd2")
    yd.pop("classes.txt"), yd2.pop("classes.txt")
    assert yd == yd2 and all(len(s.split()) == 6 for t in yd.values() for s in t.splitlines())


def test_coco_csv_voc_round_trips_are_exact(coco, tmp_path):
    gt, dets, g, d, sizes = coco
    ref = read_labels(g)
    for to, out in (("csv", "g.csv"), ("voc", "gv"), ("coco", "g2.json")):
        convert_labels(g, tmp_path / out, to)
        convert_labels(tmp_path / out, tmp_path / f"back_{to}.json", "coco", image_sizes=g)
        back = json.loads((tmp_path / f"back_{to}.json").read_text())
        ls = read_labels(tmp_path / f"back_{to}.json")
        assert ls.cat_names == ref.cat_names, to
        if to != "csv":  # a CSV knows only the images that have a box
            assert ls.images == ref.images, to
        # VOC stores corners: sizes come back through x2 - x1, exact to 1e-9
        digits = 9 if to == "voc" else None
        assert rows(ls, digits) == rows(ref, digits), to
        assert {im["id"] for im in back["images"]} <= {im["id"] for im in gt["images"]}
    # VOC -> COCO -> VOC and CSV -> COCO -> CSV: the same files
    convert_labels(tmp_path / "back_voc.json", tmp_path / "gv2", "voc")
    assert texts(tmp_path / "gv2") == texts(tmp_path / "gv")
    convert_labels(tmp_path / "back_csv.json", tmp_path / "g2.csv", "csv")
    assert (tmp_path / "g2.csv").read_text() == (tmp_path / "g.csv").read_text()
    # difficult survives VOC
    assert "<difficult>1</difficult>" in "".join(texts(tmp_path / "gv").values())


def test_yolo_and_voc_evaluate_like_coco(coco, tmp_path):
    gt, dets, g, d, sizes = coco
    convert_labels(g, tmp_path / "y", "yolo")
    convert_labels(d, tmp_path / "yd", "yolo", image_sizes=g)
    (tmp_path / "yd" / "classes.txt").unlink()  # detections by class index
    convert_labels(g, tmp_path / "v", "voc")
    convert_labels(d, tmp_path / "vd", "voc", image_sizes=g)
    G0, D0 = load_pair(g, d)
    for gp, dp in ((tmp_path / "y", tmp_path / "yd"), (tmp_path / "v", tmp_path / "vd")):
        G, D = load_pair(gp, dp, image_sizes=sizes)
        assert [str(n) for n in G.cat_names] == [str(n) for n in G0.cat_names]
        np.testing.assert_allclose(np.sort(G.boxes, axis=0), np.sort(G0.boxes, axis=0), atol=1e-3)
        assert len(D.img) == len(D0.img)
        np.testing.assert_array_equal(np.bincount(D.cat), np.bincount(D0.cat))
        np.testing.assert_allclose(np.sort(D.scores), np.sort(D0.scores))


def test_yolo_sizes_from_an_image_folder(tmp_path):
    from PIL import Image

    (tmp_path / "img").mkdir()
    (tmp_path / "lab").mkdir()
    Image.new("RGB", (200, 100)).save(tmp_path / "img" / "a.png")
    (tmp_path / "lab" / "a.txt").write_text("0 0.5 0.5 0.2 0.4\n")
    ls = read_labels(tmp_path / "lab", image_sizes=tmp_path / "img")
    np.testing.assert_allclose(ls.boxes, [[80.0, 30.0, 40.0, 40.0]])
    assert ls.sizes.tolist() == [[200, 100]]


def bad(result, *words):
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    for w in words:
        assert w in lines[0], lines[0]


def test_bad_inputs_one_line_exit_2(cli, tmp_path):
    lab = tmp_path / "lab"
    lab.mkdir()
    (lab / "a.txt").write_text("0 0.5 0.5 0.2 0.4\n1 0.5 0.5 0.2\n")
    sizes = tmp_path / "s.csv"
    sizes.write_text("a,100,100\n")
    bad(cli("iou", "convert", str(lab), "--to", "coco", "--out", str(tmp_path / "o.json"),
            "--image-sizes", str(sizes)), "line 2", "4 values")  # fmt: skip
    bad(cli("iou", "convert", str(lab), "--to", "coco", "--out", str(tmp_path / "o.json")),
        "--image-sizes")  # fmt: skip
    (lab / "a.txt").write_text("x 0.5 0.5 0.2 0.4\n")
    bad(cli("iou", "convert", str(lab), "--to", "coco", "--out", str(tmp_path / "o.json"),
            "--image-sizes", str(sizes)), "class")  # fmt: skip
    (lab / "a.txt").write_text("0 0.5 0.5 0.2 0.4\n")
    (lab / "b.txt").write_text("")
    bad(cli("iou", "convert", str(lab), "--to", "coco", "--out", str(tmp_path / "o.json"),
            "--image-sizes", str(sizes)), "no size", "'b'")  # fmt: skip
    voc = tmp_path / "v.xml"
    voc.write_text("<annotation><filename>a.jpg</filename><object><name>cat</name>"
                   "<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax></bndbox>"
                   "</object></annotation>")  # fmt: skip
    bad(cli("iou", "convert", str(voc), "--to", "coco", "--out", str(tmp_path / "o.json")),
        "size")  # fmt: skip
    voc.write_text("<annotation><size>")
    bad(cli("iou", "convert", str(voc), "--to", "coco", "--out", str(tmp_path / "o.json")),
        "XML")  # fmt: skip
    gt, _ = synthetic_coco(n_images=3, n_cats=2, seed=1)
    for im in gt["images"]:
        del im["width"]
    g = tmp_path / "g.json"
    g.write_text(json.dumps(gt))
    bad(cli("iou", "convert", str(g), "--to", "yolo", "--out", str(tmp_path / "y")), "size")
    bad(cli("iou", "convert", str(g), "--to", "png", "--out", str(tmp_path / "y")), "to")


def test_cli_convert_and_confusion_on_yolo(cli, coco, tmp_path):
    gt, dets, g, d, sizes = coco
    r = cli("iou", "convert", str(g), "--to", "yolo", "--out", str(tmp_path / "y"), "--json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["boxes"] == len(gt["annotations"]) and doc["images"] == len(gt["images"])
    r = cli("iou", "convert", str(d), "--to", "yolo", "--out", str(tmp_path / "yd"),
            "--image-sizes", str(g))  # fmt: skip
    assert r.exit_code == 0, r.stderr
    r = cli("iou", "confusion", "--gt", str(tmp_path / "y"), "--dets", str(tmp_path / "yd"),
            "--image-sizes", str(sizes), "--json")  # fmt: skip
    assert r.exit_code == 0, r.stderr
    m = np.array(json.loads(r.stdout)["matrix"])
    for a in gt["annotations"]:  # YOLO has no 'difficult'
        a.pop("difficult")
    g2 = tmp_path / "plain.json"
    g2.write_text(json.dumps(gt))
    want = np.array(json.loads(cli("iou", "confusion", "--gt", str(g2), "--dets", str(d),
                                   "--json").stdout)["matrix"])  # fmt: skip
    np.testing.assert_array_equal(m, want)
    assert formats.FORMATS == ("coco", "csv", "yolo", "voc")
