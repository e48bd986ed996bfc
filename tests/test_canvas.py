"""Digit canvases: the generator, the writer, the reader and COCO RLE (pycocotools as judge)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from cvtool.boxes import rle as rle_api
from cvtool.data.canvas import CanvasGenerator, make_canvas_splits, make_canvases
from cvtool.data.canvas_io import (
    check_output_dir,
    read_canvas_set,
    write_canvas_set,
)
from cvtool.data.datasets import FASHION_CLASSES, Dataset, load_dataset
from cvtool.errors import CvtoolError


@pytest.fixture(scope="module")
def mnist():
    return load_dataset("mnist-sample")


@pytest.fixture(scope="module")
def splits(mnist):
    return make_canvas_splits(24, 12, source=mnist, seed=3)


def _fake_source(train_ink=255, test_ink=150, n=40, names=FASHION_CLASSES) -> Dataset:
    """Blobs (ellipses of random size) on 28x28 black: train at one ink level, test at another."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:28, :28]

    def blobs(ink):
        out = np.zeros((n, 28, 28), np.uint8)
        for i in range(n):
            cy, cx = rng.uniform(10, 18, 2)
            ry, rx = rng.uniform(3, 10, 2)
            out[i][((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1] = ink
        return out

    y = np.arange(n, dtype=np.int64) % len(names)
    return Dataset("fake", blobs(train_ink), y, blobs(test_ink), y.copy(), tuple(names))


def _files(root: Path) -> dict:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def _tight(mask):
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return [cols[0], rows[0], cols[-1] - cols[0] + 1, rows[-1] - rows[0] + 1]


# -- generator ----------------------------------------------------------------------------------
def test_shapes_and_counts(splits):
    train, test = splits
    assert train.images.shape == (24, 64, 64, 1) and train.images.dtype == np.uint8
    assert train.label_maps.shape == (24, 64, 64) and train.label_maps.dtype == np.uint8
    assert len(test) == 12 and train.class_names == tuple(str(d) for d in range(10))
    for cs in splits:
        for b, y, m in zip(cs.boxes, cs.labels, cs.masks, strict=True):
            assert 1 <= len(b) <= 4 and b.shape == (len(y), 4) and m.shape == (len(y), 64, 64)
            assert y.dtype == np.int64 and ((0 <= y) & (y < 10)).all()
    assert train.image_ids.tolist() == list(range(1, 25))


def test_boxes_tight_around_masks_and_inside_canvas(splits):
    for cs in splits:
        for boxes, masks in zip(cs.boxes, cs.masks, strict=True):
            for box, mask in zip(boxes, masks, strict=True):
                assert mask.any() and _tight(mask) == box.tolist()
                assert (
                    box[0] >= 0 and box[1] >= 0 and box[0] + box[2] <= 64 and box[1] + box[3] <= 64
                )


def test_label_map_is_masks_later_on_top(splits):
    for cs in splits:
        for lm, masks, labels in zip(cs.label_maps, cs.masks, cs.labels, strict=True):
            expect = np.zeros_like(lm)
            for m, y in zip(masks, labels, strict=True):
                expect[m] = y + 1
            np.testing.assert_array_equal(lm, expect)


def test_masks_are_bright_pixels_of_the_image(splits):
    cs = splits[0]
    thr = cs.info["threshold"]
    for image, masks in zip(cs.images, cs.masks, strict=True):
        assert (image[:, :, 0][masks.any(0)] >= thr).all()  # max compositing keeps every stroke


def test_objects_come_from_their_source_split(mnist, splits):
    train, test = splits
    for cs, n in ((train, len(mnist.x_train)), (test, len(mnist.x_test))):
        for idx in cs.source_index:
            assert ((0 <= idx) & (idx < n)).all()
    for idx, y in zip(test.source_index, test.labels, strict=True):
        np.testing.assert_array_equal(mnist.y_test[idx], y)


def test_split_separation_by_ink_level():
    src = _fake_source(train_ink=255, test_ink=150)
    train, test = make_canvas_splits(10, 10, source=src, seed=0, threshold=100)
    assert int(test.images.max()) <= 150 and int(train.images.max()) == 255
    assert train.class_names == FASHION_CLASSES


def test_same_seed_same_arrays_other_seed_differs(mnist):
    a = make_canvases(8, source=mnist, seed=5, clutter=2, noise=0.05, channels=3)
    b = make_canvases(8, source=mnist, seed=5, clutter=2, noise=0.05, channels=3)
    c = make_canvases(8, source=mnist, seed=6, clutter=2, noise=0.05, channels=3)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.label_maps, b.label_maps)
    for key in ("boxes", "labels", "masks"):
        for u, v in zip(getattr(a, key), getattr(b, key), strict=True):
            np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a.images, c.images)


def test_stream_is_fresh_and_batch_independent(mnist):
    g = CanvasGenerator(mnist, seed=1)
    first, second = g.sample(3), g.sample(2)
    whole = CanvasGenerator(mnist, seed=1).sample(5)
    np.testing.assert_array_equal(np.concatenate([first.images, second.images]), whole.images)
    assert not np.array_equal(first.images[:2], second.images)
    test = CanvasGenerator(mnist, split="test", seed=1).sample(3)
    assert not np.array_equal(test.images, first.images)


@pytest.mark.parametrize(("max_iou", "max_cover"), [(0.0, 0.0), (0.3, 0.4), (0.5, 1.0)])
def test_overlap_rule(mnist, max_iou, max_cover):
    cs = make_canvases(
        30,
        source=mnist,
        seed=2,
        max_iou=max_iou,
        max_cover=max_cover,
        min_objects=3,
        max_objects=3,
        size=56,
    )
    for boxes in cs.boxes:
        for i in range(len(boxes)):
            for j in range(i):
                (x1, y1, w1, h1), (x2, y2, w2, h2) = boxes[i], boxes[j]
                iw = max(0.0, min(x1 + w1, x2 + w2) - max(x1, x2))
                ih = max(0.0, min(y1 + h1, y2 + h2) - max(y1, y2))
                inter = iw * ih
                assert inter / (w1 * h1 + w2 * h2 - inter) <= max_iou + 1e-9
                assert inter / min(w1 * h1, w2 * h2) <= max_cover + 1e-9


def test_options_shape_the_output(mnist):
    cs = make_canvases(
        12,
        source=mnist,
        seed=0,
        size=(40, 56),
        channels=3,
        min_objects=0,
        max_objects=2,
        clutter=3,
        max_scale=1.2,
    )
    assert cs.images.shape == (12, 40, 56, 3) and cs.label_maps.shape == (12, 40, 56)
    counts = [len(b) for b in cs.boxes]
    assert min(counts) == 0 and max(counts) <= 2
    thr = cs.info["threshold"]
    stray = 0
    for image, masks, boxes, lm in zip(cs.images, cs.masks, cs.boxes, cs.label_maps, strict=True):
        labelled = masks.any(0) if len(masks) else np.zeros((40, 56), bool)
        assert (lm[~labelled] == 0).all()
        bright = (image.max(axis=2) >= thr) & ~labelled  # clutter: bright but no object's
        for x, y, w, h in boxes.astype(int):
            assert not bright[y : y + h, x : x + w].any()  # clutter stays clear of the boxes
        stray += int(bright.sum())
    assert stray > 0


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"size": 10}, "'size'"),
        ({"size": (64, 0)}, "'size'"),
        ({"max_scale": 3.0}, "'max_scale'"),
        ({"min_scale": 1.2, "max_scale": 1.0}, "'max_scale'"),
        ({"min_scale": 0}, "'min_scale'"),
        ({"max_objects": 30, "max_iou": 0.0}, "'max_objects'"),
        ({"max_objects": 0}, "'max_objects'"),
        ({"min_objects": 3, "max_objects": 2}, "'max_objects'"),
        ({"channels": 2}, "'channels'"),
        ({"threshold": 0}, "'threshold'"),
        ({"noise": -0.1}, "'noise'"),
        ({"max_iou": 1.5}, "'max_iou'"),
        ({"split": "val"}, "'split'"),
        ({"seed": -1}, "'seed'"),
        ({"source": "no-such-set"}, "no-such-set"),
    ],
)
def test_bad_options_one_line(mnist, options, name):
    options = {"source": mnist, **options}
    with pytest.raises(CvtoolError) as err:
        CanvasGenerator(**options)
    assert name in str(err.value) and "\n" not in str(err.value)


def test_bad_sources():
    src = _fake_source()
    empty = Dataset(
        "e", src.x_train, src.y_train, src.x_train[:0], src.y_train[:0], src.class_names
    )
    with pytest.raises(CvtoolError, match="no test images"):
        CanvasGenerator(empty, split="test")
    colour = Dataset(
        "c",
        np.zeros((4, 28, 28, 3), np.uint8),
        np.zeros(4, np.int64),
        np.zeros((4, 28, 28, 3), np.uint8),
        np.zeros(4, np.int64),
        ("a",),
    )
    with pytest.raises(CvtoolError, match="grey"):
        CanvasGenerator(colour)
    with pytest.raises(CvtoolError, match="'threshold'"):
        CanvasGenerator(_fake_source(train_ink=90), threshold=100)
    with pytest.raises(CvtoolError, match="'n'"):
        CanvasGenerator(src).sample(-1)


# -- RLE -------------------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(arrays(np.bool_, st.tuples(st.integers(1, 9), st.integers(1, 9))))
def test_rle_matches_pycocotools(mask):
    """The canvases' masks are written with cvtool.boxes.rle: pycocotools' strings, both ways."""
    mask_util = pytest.importorskip("pycocotools.mask")
    ours = rle_api.encode(mask.astype(np.uint8))
    assert ours["size"] == list(mask.shape)
    np.testing.assert_array_equal(rle_api.decode(ours) != 0, mask)
    encoded = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    assert ours["counts"].encode() == encoded["counts"]
    np.testing.assert_array_equal(mask_util.decode(encoded).astype(bool), mask)
    np.testing.assert_array_equal(
        rle_api.decode(encoded) != 0, mask
    )  # their compressed string, our decoder


def test_rle_counts_must_cover_the_mask():
    with pytest.raises(CvtoolError, match="must sum to"):
        rle_api.decode({"size": [2, 2], "counts": [1, 2]})


# -- writer and reader ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def written(tmp_path_factory, splits):
    root = tmp_path_factory.mktemp("canvas") / "set"
    write_canvas_set(root, train=splits[0], test=splits[1])
    return root


def test_layout_and_same_bytes(tmp_path, written, mnist):
    names = _files(written)
    assert {
        "annotations/train.json",
        "annotations/test.json",
        "images/train/00001.png",
        "masks/test/00012.png",
    } <= set(names)
    again = make_canvas_splits(24, 12, source=mnist, seed=3)
    write_canvas_set(tmp_path / "b", train=again[0], test=again[1])
    assert _files(tmp_path / "b") == names
    other = make_canvas_splits(24, 12, source=mnist, seed=4)
    write_canvas_set(tmp_path / "c", train=other[0], test=other[1])
    assert _files(tmp_path / "c")["annotations/train.json"] != names["annotations/train.json"]


def test_pycocotools_reads_the_json(written, splits):
    coco_mod = pytest.importorskip("pycocotools.coco")
    mask_util = pytest.importorskip("pycocotools.mask")
    for split, cs in zip(("train", "test"), splits, strict=True):
        coco = coco_mod.COCO(str(written / "annotations" / f"{split}.json"))
        assert sorted(coco.getImgIds()) == cs.image_ids.tolist()
        assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == list(cs.class_names)
        for i, image_id in enumerate(cs.image_ids.tolist()):
            anns = coco.loadAnns(coco.getAnnIds(imgIds=image_id))
            assert len(anns) == len(cs.boxes[i])
            for a, box, label, mask in zip(
                anns, cs.boxes[i], cs.labels[i], cs.masks[i], strict=True
            ):
                got = coco.annToMask(a).astype(bool)
                np.testing.assert_array_equal(got, mask)
                assert a["area"] == got.sum() and a["iscrowd"] == 0
                assert a["category_id"] == label + 1 and a["bbox"] == box.tolist()
                assert mask_util.toBbox(coco.annToRLE(a)).tolist() == box.tolist()


def test_read_round_trip(written, splits):
    for split, cs in zip(("train", "test"), splits, strict=True):
        back = read_canvas_set(written, split, with_masks=True)
        np.testing.assert_array_equal(back.images, cs.images)
        np.testing.assert_array_equal(back.label_maps, cs.label_maps)
        np.testing.assert_array_equal(back.image_ids, cs.image_ids)
        assert back.class_names == cs.class_names and back.info == cs.info
        for key in ("boxes", "labels", "masks"):
            for u, v in zip(getattr(back, key), getattr(cs, key), strict=True):
                np.testing.assert_array_equal(u, v)
    assert read_canvas_set(written, "test").masks is None


def test_colour_and_empty_canvases_round_trip(tmp_path):
    cs = make_canvases(
        6, source=_fake_source(), seed=0, channels=3, min_objects=0, max_objects=1, threshold=100
    )
    write_canvas_set(tmp_path / "s", test=cs)
    back = read_canvas_set(tmp_path / "s", "test")
    np.testing.assert_array_equal(back.images, cs.images)
    assert [len(b) for b in back.boxes] == [len(b) for b in cs.boxes]
    assert any(len(b) == 0 for b in back.boxes)  # zero objects is a valid canvas
    names = json.loads((tmp_path / "s/annotations/test.json").read_text())["categories"]
    assert [c["name"] for c in names] == list(FASHION_CLASSES)


def test_writer_refuses_existing_output(written, splits):
    with pytest.raises(CvtoolError, match="exists"):
        write_canvas_set(written, train=splits[0])
    with pytest.raises(CvtoolError, match="exists"):
        check_output_dir(written)
    with pytest.raises(CvtoolError, match="Nothing to write"):
        write_canvas_set(written / "x")


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def _edit_json(root: Path, change) -> None:
    path = root / "annotations" / "train.json"
    doc = json.loads(path.read_text())
    path.write_text(json.dumps(change(doc)))


def _save_png(path: Path, array) -> None:
    from PIL import Image

    Image.fromarray(np.asarray(array, np.uint8)).save(path)


def _unlisted_image(doc):
    doc["annotations"][0]["image_id"] = 999
    return doc


def _duplicate_id(doc):
    doc["images"][1]["id"] = doc["images"][0]["id"]
    return doc


def _not_an_object(doc):
    doc["annotations"].append(5)
    return doc


def _bad_category(doc):
    doc["categories"][0]["id"] = 0
    return doc


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda r: (r / "annotations/train.json").write_text("[1, 2]"), "not a COCO annotation"),
        (lambda r: (r / "annotations/train.json").write_text("{oops"), "not valid JSON"),
        (lambda r: _edit_json(r, _unlisted_image), "not in 'images'"),
        (lambda r: _edit_json(r, _duplicate_id), "more than once"),
        (lambda r: _edit_json(r, _not_an_object), "must be an object"),
        (lambda r: _edit_json(r, _bad_category), "category ids must be 1..10"),
        (lambda r: (r / "masks/train/00002.png").unlink(), "Mask of image 00002.png not found"),
        (lambda r: (r / "images/train/00002.png").unlink(), "Image not found"),
        (
            lambda r: _save_png(r / "masks/train/00003.png", np.zeros((32, 32))),
            "but its image is 64x64",
        ),
        (
            lambda r: _save_png(r / "masks/train/00003.png", np.full((64, 64), 11)),
            "label 11, outside 0..10",
        ),
        (
            lambda r: _save_png(r / "masks/train/00003.png", np.zeros((64, 64, 3))),
            "one 8-bit channel",
        ),
    ],
)
def test_reader_errors_are_one_line(tmp_path, written, breakage, message):
    root = _copy(written, tmp_path / "broken")
    breakage(root)
    with pytest.raises(CvtoolError, match=message) as err:
        read_canvas_set(root, "train")
    assert "\n" not in str(err.value)


def test_reader_missing_folder_and_split(tmp_path, written):
    with pytest.raises(CvtoolError, match="Canvas folder not found"):
        read_canvas_set(tmp_path / "nope")
    with pytest.raises(CvtoolError, match="'split'"):
        read_canvas_set(written, "val")


def test_docstring_examples():
    import doctest

    from cvtool.data import canvas, canvas_io

    for mod in (canvas, canvas_io):
        result = doctest.testmod(mod, extraglobs={"np": np})
        assert result.failed == 0


def test_info_is_json_and_names_the_options(splits):
    info = json.loads(json.dumps(splits[0].info))
    assert info["source"] == "mnist-sample" and info["split"] == "train" and info["seed"] == 3
    assert info["size"] == [64, 64] and info["max_objects"] == 4


def test_ground_truth_scores_itself_perfectly(tmp_path, written):
    """The JSON feeds `cvtool iou map` and COCOeval (bbox and segm): truth as detections -> AP 1."""
    from cvtool.boxes.report import evaluate_files

    gt_path = written / "annotations" / "test.json"
    doc = json.loads(gt_path.read_text())
    dets = [
        {k: a[k] for k in ("image_id", "category_id", "bbox", "segmentation")} | {"score": 1.0}
        for a in doc["annotations"]
    ]
    (tmp_path / "dets.json").write_text(json.dumps(dets))
    summary = evaluate_files(gt_path, tmp_path / "dets.json")["summary"]
    assert summary["AP @[IoU=.50:.95 | area=all | maxDets=100]"] == 1.0
    coco_mod = pytest.importorskip("pycocotools.coco")
    cocoeval = pytest.importorskip("pycocotools.cocoeval")
    gt = coco_mod.COCO(str(gt_path))
    ev = cocoeval.COCOeval(gt, gt.loadRes(str(tmp_path / "dets.json")), "segm")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    assert ev.stats[0] == 1.0


def test_source_indices_keep_streams_apart(mnist):
    from cvtool.data.datasets import stratified_split

    fit_idx, val_idx = stratified_split(mnist.y_train, 0.2, seed=0)
    fit = CanvasGenerator(mnist, source_indices=fit_idx, seed=0).sample(20)
    val = CanvasGenerator(mnist, source_indices=val_idx, seed=1).sample(10)
    used_fit, used_val = np.concatenate(fit.source_index), np.concatenate(val.source_index)
    assert np.isin(used_fit, fit_idx).all() and np.isin(used_val, val_idx).all()
    np.testing.assert_array_equal(mnist.y_train[used_val], np.concatenate(val.labels))
    assert fit.info["source_images"] == len(fit_idx)
    for bad in ([], [4000], [[1, 2]], [0.5]):
        with pytest.raises(CvtoolError, match="'source_indices'"):
            CanvasGenerator(mnist, source_indices=bad)


@settings(max_examples=25, deadline=None)
@given(
    size=st.tuples(st.integers(24, 72), st.integers(24, 72)),
    objects=st.tuples(st.integers(0, 3), st.integers(1, 5)),
    scales=st.tuples(st.floats(0.4, 1.2), st.floats(0.0, 0.6)),
    max_iou=st.sampled_from([0.0, 0.2, 1.0]),
    channels=st.sampled_from([1, 3]),
    seed=st.integers(0, 2**31),
)
def test_invariants_hold_or_options_are_refused(
    mnist, size, objects, scales, max_iou, channels, seed
):
    """Any options either give canvases that keep every promise, or a one-line CvtoolError."""
    lo, hi = min(objects), max(objects)
    try:
        gen = CanvasGenerator(mnist, size=size, min_objects=lo, max_objects=max(hi, 1),
                              min_scale=scales[0], max_scale=scales[0] + scales[1],
                              max_iou=max_iou, channels=channels, seed=seed)  # fmt: skip
    except CvtoolError as exc:
        assert "\n" not in str(exc)
        return
    cs = gen.sample(3)
    assert cs.images.shape == (3, *size, channels)
    for image, lm, boxes, labels, masks in zip(
        cs.images, cs.label_maps, cs.boxes, cs.labels, cs.masks, strict=True
    ):
        assert lo <= len(boxes) <= max(hi, 1)
        expect = np.zeros_like(lm)
        for box, y, m in zip(boxes, labels, masks, strict=True):
            assert _tight(m) == box.tolist()
            assert (image.max(axis=2)[m] >= 128).all()
            expect[m] = y + 1
        np.testing.assert_array_equal(lm, expect)
