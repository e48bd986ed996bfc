"""Box formats, IoU/GIoU, NMS, mask IoU, segmentation metrics and the pixel-count example."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cvtool import boxes
from cvtool.backend import to_numpy
from cvtool.boxes.masks import iou_from_counts, mask_iou, segmentation_metrics
from cvtool.errors import CvtoolError


def random_boxes(rng, n, fmt="xywh"):
    xy = rng.uniform(0, 100, (n, 2))
    wh = rng.uniform(0, 60, (n, 2))
    wh[rng.random(n) < 0.05] = 0.0  # some empty boxes
    return boxes.convert(np.hstack([xy, wh]), "xywh", fmt)


# ---------------------------------------------------------------- formats
@pytest.mark.parametrize("src", boxes.FORMATS)
@pytest.mark.parametrize("dst", boxes.FORMATS)
@pytest.mark.parametrize("offset", [0.0, 1.0])
def test_convert_round_trip(src, dst, offset, rng):
    b = random_boxes(rng, 50, src)
    back = boxes.convert(boxes.convert(b, src, dst, offset), dst, src, offset)
    np.testing.assert_allclose(back, b, atol=1e-9)


def test_convert_hand_values():
    b = np.array([[10.0, 20, 30, 40]])
    assert boxes.convert(b, "xywh", "xyxy").tolist() == [[10, 20, 40, 60]]
    assert boxes.convert(b, "xywh", "cxcywh").tolist() == [[25, 40, 30, 40]]
    # VOC +1: a box of 30 pixels starting at 10 ends at pixel 39
    assert boxes.convert(b, "xywh", "xyxy", offset=1).tolist() == [[10, 20, 39, 59]]
    assert boxes.area(np.array([[0.0, 0, 9, 9]]), "xyxy", offset=1).tolist() == [100.0]


def test_convert_works_on_backend(xp):
    b = xp.asarray([[10.0, 20, 30, 40]])
    out = boxes.convert(b, "xywh", "cxcywh")
    assert to_numpy(out).tolist() == [[25, 40, 30, 40]]


# ---------------------------------------------------------------- IoU by hand
def test_iou_hand_cases():
    assert boxes.iou([0, 0, 10, 10], [0, 0, 10, 10]) == 1.0
    assert boxes.iou([0, 0, 10, 10], [5, 0, 10, 10]) == pytest.approx(50 / 150)
    assert boxes.iou([0, 0, 10, 10], [10, 0, 10, 10]) == 0.0  # touching edges
    assert boxes.iou([0, 0, 2, 2], [1, 1, 2, 2]) == pytest.approx(1 / 7)
    assert boxes.iou([0, 0, 10, 10], [5, 5, 15, 15], fmt="xyxy") == pytest.approx(25 / 175)
    # the +1 convention: [0,0,9,9] and [5,5,14,14] are 10x10 pixel boxes sharing 5x5 pixels
    assert boxes.iou([0, 0, 9, 9], [5, 5, 14, 14], fmt="xyxy", offset=1) == pytest.approx(25 / 175)
    assert boxes.iou([0, 0, 0, 0], [0, 0, 0, 0]) == 0.0  # empty boxes: no overlap


def test_giou_hand_cases():
    # disjoint: IoU 0, enclosing box 0..30 x 0..10 = 300, union 200 -> GIoU = -1/3
    assert boxes.iou([0, 0, 10, 10], [20, 0, 10, 10], giou=True) == pytest.approx(-1 / 3)
    assert boxes.iou([0, 0, 10, 10], [0, 0, 10, 10], giou=True) == pytest.approx(1.0)


def _giou_reference(a, b):
    ax1, ay1, ax2, ay2 = a[0], a[1], a[0] + a[2], a[1] + a[3]
    bx1, by1, bx2, by2 = b[0], b[1], b[0] + b[2], b[1] + b[3]
    iw = max(0.0, min(ax2, bx2) - max(ax1, bx1))
    ih = max(0.0, min(ay2, by2) - max(ay1, by1))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    iou = inter / union if union > 0 else 0.0
    c = (max(ax2, bx2) - min(ax1, bx1)) * (max(ay2, by2) - min(ay1, by1))
    return iou - ((c - union) / c if c > 0 else 0.0)


def test_giou_matrix_vs_reference(rng):
    a, b = random_boxes(rng, 15), random_boxes(rng, 11)
    g = boxes.box_giou(a, b)
    ref = np.array([[_giou_reference(x, y) for y in b] for x in a])
    np.testing.assert_allclose(g, ref, atol=1e-12)


def test_iou_matrix_matches_pycocotools(rng, xp):
    mask = pytest.importorskip("pycocotools.mask")
    a, b = random_boxes(rng, 40), random_boxes(rng, 30)
    crowd = rng.random(30) < 0.3
    ref = mask.iou(a.tolist(), b.tolist(), crowd.astype(np.uint8).tolist())
    ours = to_numpy(boxes.box_iou(xp.asarray(a), xp.asarray(b), crowd=xp.asarray(crowd)))
    np.testing.assert_allclose(ours, ref, atol=1e-12)
    ref0 = mask.iou(a.tolist(), b.tolist(), [0] * 30)
    np.testing.assert_allclose(
        to_numpy(boxes.box_iou(xp.asarray(a), xp.asarray(b))), ref0, atol=1e-12
    )


@pytest.mark.parametrize("fmt", boxes.FORMATS)
def test_iou_independent_of_format(fmt, rng):
    a, b = random_boxes(rng, 20), random_boxes(rng, 20)
    ref = boxes.box_iou(a, b)
    got = boxes.box_iou(boxes.convert(a, "xywh", fmt), boxes.convert(b, "xywh", fmt), fmt)
    np.testing.assert_allclose(got, ref, atol=1e-9)


@pytest.mark.parametrize(
    "bad, fmt, match",
    [
        ([0, 0, -1, 5], "xywh", "width and height >= 0"),
        ([10, 0, 5, 5], "xyxy", "x2 >= x1"),
        ([0, np.nan, 5, 5], "xywh", "finite"),
        ([0, 0, 5, np.inf], "xywh", "finite"),
    ],
)
def test_validate_rejects(bad, fmt, match):
    with pytest.raises(CvtoolError, match=match):
        boxes.iou(bad, [0, 0, 1, 1], fmt=fmt)


def test_unknown_format_and_parse_box():
    with pytest.raises(CvtoolError, match="format"):
        boxes.convert(np.zeros((1, 4)), "xywh", "yolo")
    assert boxes.parse_box("1, 2 3,4") == [1, 2, 3, 4]
    with pytest.raises(CvtoolError, match="4 numbers"):
        boxes.parse_box("1,2,3")


# ---------------------------------------------------------------- properties
coord = st.floats(-1000, 1000, allow_nan=False)
size = st.floats(0, 500, allow_nan=False)
box = st.tuples(coord, coord, size, size)


@settings(max_examples=150, deadline=None)
@given(box, box)
@example(
    (2.2250738585e-313, 0.0, 2.2250738585e-313, 1.0),
    (2.2250738585e-313, 0.0, 2.2250738585e-313, 1.0),
)
def test_iou_properties(a, b):
    ab, ba = boxes.iou(a, b), boxes.iou(b, a)
    assert ab == pytest.approx(ba, abs=1e-12)
    assert 0.0 <= ab <= 1.0
    g = boxes.iou(a, b, giou=True)
    assert -1.0 - 1e-12 <= g <= ab + 1e-12
    if a[2] > 1e-3 and a[3] > 1e-3:
        assert boxes.iou(a, a) == pytest.approx(1.0)


@settings(max_examples=100, deadline=None)
@given(box, st.floats(0, 100), st.floats(0, 100))
def test_iou_zero_when_disjoint(a, gap, dy):
    b = (a[0] + a[2] + gap, a[1] + dy, 10.0, 10.0)  # starts right of a's right edge
    assert boxes.iou(a, b) == 0.0


# ---------------------------------------------------------------- NMS
def _nms_reference(b, s, thr):
    order = sorted(range(len(s)), key=lambda i: (-s[i], i))
    keep = []
    for i in order:
        if all(boxes.iou(b[i], b[j]) <= thr for j in keep):
            keep.append(i)
    return keep


def test_nms_matches_reference_and_breaks_ties_by_input_order(rng):
    b = random_boxes(rng, 60)
    s = np.round(rng.random(60), 1)  # many ties
    assert boxes.nms(b, s, 0.4).tolist() == _nms_reference(b, s, 0.4)
    tie = np.array([[0.0, 0, 10, 10], [0.5, 0, 10, 10]])
    assert boxes.nms(tie, np.array([0.9, 0.9]), 0.5).tolist() == [0]
    assert boxes.nms(tie[::-1].copy(), np.array([0.9, 0.9]), 0.5).tolist() == [0]


def test_nms_options():
    b = np.array([[0.0, 0, 10, 10], [1, 1, 10, 10], [50, 50, 5, 5], [0, 0, 10, 10]])
    s = np.array([0.9, 0.8, 0.7, 0.3])
    assert boxes.nms(b, s, 0.5).tolist() == [0, 2]
    assert boxes.nms(b, s, 0.5, classes=np.array([0, 1, 0, 1])).tolist() == [0, 1, 2]
    assert boxes.nms(b, s, 0.5, score_threshold=0.75).tolist() == [0]
    assert boxes.nms(b, s, 0.5, top_k=1).tolist() == [0]
    assert boxes.nms_per_image(np.array([0, 0, 1, 1]), b, s, 0.5).tolist() == [0, 2, 3]
    with pytest.raises(CvtoolError, match="iou_threshold"):
        boxes.nms(b, s, 1.5)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.05, 0.95))
def test_nms_never_keeps_overlapping_same_class(seed, thr):
    rng = np.random.default_rng(seed)
    b = random_boxes(rng, 40)
    s = np.round(rng.random(40), 2)
    c = rng.integers(0, 3, 40)
    keep = boxes.nms(b, s, thr, classes=c)
    m = boxes.box_iou(b[keep], b[keep])
    same = c[keep][:, None] == c[keep][None, :]
    np.fill_diagonal(same, False)
    assert not (m[same] > thr).any()
    assert (np.diff(s[keep]) <= 0).all()


# ---------------------------------------------------------------- masks
def test_mask_iou(xp):
    a = xp.zeros((10, 10), dtype=xp.uint8)
    b = xp.zeros((10, 10), dtype=xp.uint8)
    a[0:4, 0:4] = 255
    b[2:6, 2:6] = 1
    r = mask_iou(a, b)
    assert (r["intersection"], r["union"]) == (4, 28)
    assert r["iou"] == pytest.approx(4 / 28)
    assert np.isnan(mask_iou(a * 0, b * 0)["iou"])
    with pytest.raises(CvtoolError, match="same shape"):
        mask_iou(a, b[:5])


def test_segmentation_metrics_vs_sklearn(rng, xp):
    sk = pytest.importorskip("sklearn.metrics")
    t = rng.integers(0, 4, (40, 50))
    p = np.where(rng.random((40, 50)) < 0.7, t, rng.integers(0, 4, (40, 50)))
    t[:3, :3] = 255  # ignored pixels
    r = segmentation_metrics(xp.asarray(p), xp.asarray(t), num_classes=4)
    keep = t != 255
    ref = sk.jaccard_score(t[keep], p[keep], average=None, labels=range(4))
    np.testing.assert_allclose(r["per_class_iou"], ref, atol=1e-12)
    assert r["mean_iou"] == pytest.approx(ref.mean())
    assert r["pixel_accuracy"] == pytest.approx(sk.accuracy_score(t[keep], p[keep]))
    with pytest.raises(CvtoolError, match="labels must be in"):
        segmentation_metrics(xp.asarray(p) + 5, xp.asarray(t), num_classes=4)


def test_absent_class_is_left_out_of_mean():
    t = np.array([[0, 0], [2, 2]])
    r = segmentation_metrics(t.copy(), t, num_classes=3)
    assert np.isnan(r["per_class_iou"][1]) and r["mean_iou"] == 1.0


def test_course_counts_example():
    r = iou_from_counts([189, 31], [201, 50], [185, 23])
    assert [round(v, 3) for v in r["per_class_iou"]] == [0.902, 0.397]
    assert round(r["mean_iou"], 2) == 0.65
    assert r["per_class_iou"][0] == 185 / 205 and r["per_class_iou"][1] == 23 / 58
    with pytest.raises(CvtoolError, match="overlap"):
        iou_from_counts([10], [10], [11])
    with pytest.raises(CvtoolError, match="same number"):
        iou_from_counts([10, 2], [10], [1])


@pytest.mark.parametrize("module", ["boxes.core", "boxes.masks", "boxes.voc"])
def test_docstring_examples(module):
    import doctest
    import importlib

    mod = importlib.import_module(f"cvtool.{module}")
    result = doctest.testmod(mod, extraglobs={"np": np})
    assert result.attempted > 0 and result.failed == 0
