"""The file rules in the library: output checks, stream sniffing, the box-file contract,
model-file diagnosis, spec streams and predict's normalisation (docs/files.md)."""

from __future__ import annotations

import io
import json
import os
import threading

import numpy as np
import pytest

from cvtool import fileio
from cvtool.augment.boxes import Boxes, read_boxes, write_boxes
from cvtool.errors import CvtoolError

# ----------------------------------------------------------------------------- fileio


def test_check_output_folder_mode(tmp_path):
    out = tmp_path / "idx"
    assert fileio.check_output(out, folder=True) == out
    out.mkdir()
    with pytest.raises(CvtoolError, match="--force"):
        fileio.check_output(out, folder=True)
    assert fileio.check_output(out, folder=True, overwrite=True) == out
    (tmp_path / "f").write_text("x")
    with pytest.raises(CvtoolError, match="not a folder"):
        fileio.check_output(tmp_path / "f", folder=True, overwrite=True)
    with pytest.raises(CvtoolError, match="stdout"):
        fileio.check_output("-", folder=True)


def test_check_output_refuses_what_cannot_take_a_file(tmp_path):
    (tmp_path / "file").write_text("x")
    for path, needle in [
        (tmp_path / "missing" / "o.csv", "does not exist"),
        (tmp_path / "file" / "o.csv", "not a folder"),
        (tmp_path, "is a folder"),
        (tmp_path / "file", "--force"),
        ("/proc/self/o.csv", "cannot be written"),
    ]:
        with pytest.raises(CvtoolError, match=needle):
            fileio.check_output(path)


def test_writes_stdout_and_json_sniffing():
    assert fileio.writes_stdout(None, "-") and fileio.writes_stdout("/dev/stdout")
    assert not fileio.writes_stdout(None, "out.csv")
    assert fileio.looks_like_json(' \n [{"a": 1}]') and fileio.looks_like_json("{}")
    assert not fileio.looks_like_json("image,class,x,y,w,h")


def test_atomic_path_suffix_names_the_format_of_a_stream(capfdbinary):
    with fileio.atomic_path("-", suffix=".npz") as tmp:
        assert tmp.suffix == ".npz"
        np.savez(tmp, a=np.arange(3))
    data = capfdbinary.readouterr().out
    assert np.load(io.BytesIO(data))["a"].tolist() == [0, 1, 2]


# ----------------------------------------------------------------------------- box contract

CSV = "image,class,x,y,w,h,score\n0,cat,1,2,3,4,0.9\n1,dog,0,0,2,2,0.5\n"


@pytest.mark.parametrize("fmt", ["xywh", "xyxy", "cxcywh"])
def test_augment_box_csv_round_trips_in_its_own_form(tmp_path, fmt):
    from cvtool.boxes.core import convert

    xywh = np.array([[1, 2, 3, 4], [0, 0, 2, 2]], float)
    coords = convert(xywh, "xywh", fmt)
    rows = [f"{i},{c},{','.join(f'{v:g}' for v in b)},{s}"
            for i, c, b, s in zip([0, 1], ["cat", "dog"], coords, [0.9, 0.5], strict=True)]  # fmt: skip
    src = tmp_path / "b.csv"
    src.write_text("image,class,x,y,w,h,score\n" + "\n".join(rows) + "\n")
    boxes = read_boxes(src, 2, fmt)
    assert np.allclose(boxes.xyxy, convert(xywh, "xywh", "xyxy"))
    assert boxes.extra.tolist() == ["0.9", "0.5"] and boxes.label.tolist() == ["cat", "dog"]
    write_boxes(tmp_path / "out.csv", boxes)
    assert (tmp_path / "out.csv").read_text() == src.read_text()


def test_augment_reads_coco_and_writes_coco_back(tmp_path):
    doc = {
        "images": [{"id": 0}, {"id": 1}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 7, "bbox": [1, 2, 3, 4]}],
        "categories": [{"id": 7, "name": "seven"}],
    }
    (tmp_path / "gt.json").write_text(json.dumps(doc))
    boxes = read_boxes(tmp_path / "gt.json", 2)
    assert boxes.form["kind"] == "coco" and boxes.xyxy.tolist() == [[1, 2, 4, 6]]
    write_boxes(tmp_path / "out.json", boxes, (28, 28))
    back = json.loads((tmp_path / "out.json").read_text())
    assert back["categories"] == doc["categories"]
    assert back["annotations"][0]["bbox"] == [1, 2, 3, 4]
    assert back["annotations"][0]["image_id"] == 1


def test_augment_box_output_reads_in_iou(tmp_path):
    """Every reader accepts what every writer writes: augment's CSV is iou's ground truth."""
    from cvtool.boxes.io import load_detections, load_ground_truth

    (tmp_path / "b.csv").write_text(CSV)
    write_boxes(tmp_path / "out.csv", read_boxes(tmp_path / "b.csv", 2))
    gt = load_ground_truth(tmp_path / "out.csv")
    dets = load_detections(tmp_path / "out.csv", gt)
    assert len(gt.boxes) == 2 and not gt.difficult.any()  # 'score' is not 'difficult'
    assert dets.scores.tolist() == [0.9, 0.5]


def test_legacy_augment_csv_is_still_read_and_written_back(tmp_path):
    text = "image,x1,y1,x2,y2,label\n0,1,2,4,6,a\n"
    (tmp_path / "old.csv").write_text(text)
    boxes = read_boxes(tmp_path / "old.csv", 1)
    write_boxes(tmp_path / "new.csv", boxes)
    assert (tmp_path / "new.csv").read_text() == text


def test_boxes_made_in_python_write_the_box_csv(tmp_path):
    b = Boxes(np.array([0]), np.array([[1.0, 2.0, 4.0, 6.0]]), np.array(["a"], dtype=object))
    write_boxes(tmp_path / "o.csv", b)
    assert (tmp_path / "o.csv").read_text() == "0,a,1,2,3,4\n"


def test_box_readers_take_a_fifo(tmp_path):
    from cvtool.boxes.files import read_detection_table

    fifo = tmp_path / "p"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_text(CSV))
    writer.start()
    table = read_detection_table(str(fifo))
    writer.join(5)
    assert table["kind"] == "csv" and table["scores"].tolist() == [0.9, 0.5]


# ----------------------------------------------------------------------------- model files


def _model(tmp_path):
    from cvtool.nn.model import Sequential
    from cvtool.nn.spec import parse_spec

    spec = "input:4, dense:2:softmax"
    path = tmp_path / "m.npz"
    Sequential.from_spec(parse_spec(spec), spec_text=spec).build(seed=0).save(path)
    return path


def test_model_files_are_named_by_what_is_wrong(tmp_path):
    from cvtool.nn.model import Sequential

    good = _model(tmp_path)
    payload = good.read_bytes()
    meta = json.loads(str(np.load(good)["meta"]))
    arrays = dict(np.load(good))
    arrays["meta"] = np.array(json.dumps({**meta, "version": 2}))
    np.savez(tmp_path / "v2.npz", **arrays)
    np.savez(tmp_path / "foreign.npz", a=np.zeros(2))
    (tmp_path / "empty.npz").write_bytes(b"")
    (tmp_path / "trunc.npz").write_bytes(payload[: len(payload) // 2])
    (tmp_path / "text.npz").write_text("hello")
    for name, needle in [
        ("empty.npz", "is empty"),
        ("trunc.npz", "truncated or damaged"),
        ("text.npz", "not a cvtool model file"),
        ("foreign.npz", "without 'meta'"),
        ("v2.npz", "format version 2"),
        ("missing.npz", "not found"),
    ]:
        with pytest.raises(CvtoolError, match=needle):
            Sequential.load(tmp_path / name)
    assert Sequential.load(good).count_params() == 10


# ----------------------------------------------------------------------------- specs


def test_spec_text_from_stdin_and_at_file(tmp_path, monkeypatch):
    from cvtool.nn.spec import parse_network, read_spec_text

    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"784,30,10\n")))
    assert [s.kind for s in parse_network("-")] == ["input", "dense", "dense"]
    (tmp_path / "s.txt").write_text("input:4, dense:2")
    assert read_spec_text(f"@{tmp_path / 's.txt'}") == "input:4, dense:2"
    with pytest.raises(CvtoolError, match="not found"):
        read_spec_text(f"@{tmp_path / 'none.txt'}")


# ----------------------------------------------------------------------------- predict


def test_normalise_applies_the_training_rule():
    from cvtool.nn.inference import normalise

    u8 = np.array([[0, 128, 255]], np.uint8)
    assert normalise(u8) is u8  # the model scales uint8 itself
    f255 = normalise(u8.astype(np.float32))
    assert np.allclose(f255, u8 / 255)
    assert np.allclose(normalise(np.array([[0.0, 0.5, 1.0]])), [[0, 0.5, 1]])
    assert np.allclose(normalise(np.array([[0, 255]], np.int64)), [[0, 1]])
    for bad, needle in [(np.nan, "NaN"), (np.inf, "infinite"), (-1.0, "0..255"), (300.0, "0..255")]:
        with pytest.raises(CvtoolError, match=needle):
            normalise(np.array([[0.0, bad]]))
