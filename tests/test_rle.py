"""COCO RLE: byte equality with pycocotools.mask, round trips, polygons, merge, IoU, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cvtool.boxes import rle
from cvtool.errors import CvtoolError

M = pytest.importorskip("pycocotools.mask")


def ref_encode(masks):
    """pycocotools on (N, H, W): it wants (H, W, N) in Fortran order."""
    return M.encode(np.asfortranarray(np.asarray(masks, np.uint8).transpose(1, 2, 0)))


def runs(mask):
    """Column-major run lengths, background first, computed plainly."""
    flat = np.asarray(mask).T.ravel()
    edges = np.flatnonzero(np.diff(np.r_[0, flat]) != 0)
    return np.diff(np.r_[0, edges, flat.size]).tolist()


@st.composite
def mask_batches(draw):
    """(N, H, W) masks: random density, rectangles, empty and full, odd sizes."""
    n, h, w = draw(st.integers(1, 3)), draw(st.integers(1, 23)), draw(st.integers(1, 23))
    seed = draw(st.integers(0, 2**32 - 1))
    kind = draw(st.sampled_from(["random", "empty", "full", "rect"]))
    rng = np.random.default_rng(seed)
    if kind == "empty":
        return np.zeros((n, h, w), np.uint8)
    if kind == "full":
        return np.ones((n, h, w), np.uint8)
    if kind == "random":
        return (rng.random((n, h, w)) < rng.random()).astype(np.uint8)
    m = np.zeros((n, h, w), np.uint8)
    for i in range(n):
        y, x = rng.integers(0, h), rng.integers(0, w)
        m[i, y : y + rng.integers(1, h + 1), x : x + rng.integers(1, w + 1)] = 1
    return m


@settings(max_examples=150, deadline=None)
@given(mask_batches())
def test_encode_equals_pycocotools_and_round_trips(masks):
    ours, ref = rle.encode(masks), ref_encode(masks)
    assert [o["counts"].encode() for o in ours] == [r["counts"] for r in ref]
    assert [o["size"] for o in ours] == [list(r["size"]) for r in ref]
    np.testing.assert_array_equal(rle.decode(ours), masks)
    np.testing.assert_array_equal(rle.area(ours), M.area(ref))
    np.testing.assert_array_equal(rle.to_bbox(ours), M.toBbox(ref))
    # a single (H, W) mask gives a dict; uncompressed counts decode the same
    one = rle.encode(masks[0])
    assert one == ours[0]
    counts = runs(masks[0])
    np.testing.assert_array_equal(rle.decode({"size": one["size"], "counts": counts}), masks[0])
    assert rle.to_set(one).counts.tolist() == counts


@settings(max_examples=60, deadline=None)
@given(mask_batches(), st.data())
def test_iou_equals_pycocotools_with_crowds(masks, data):
    other = masks[::-1].copy()
    other[:, : masks.shape[1] // 2] ^= 1  # some overlap, some not
    crowd = data.draw(st.lists(st.booleans(), min_size=len(masks), max_size=len(masks)))
    ours = rle.iou(rle.encode(masks), rle.encode(other), crowd)
    ref = M.iou(ref_encode(masks), ref_encode(other), np.array(crowd, np.uint8))
    np.testing.assert_array_equal(ours, ref)  # same float operations: exactly equal


@settings(max_examples=60, deadline=None)
@given(mask_batches())
def test_merge_equals_pycocotools(masks):
    for intersect in (False, True):
        ours = rle.merge(rle.encode(masks), intersect=intersect)
        assert ours["counts"].encode() == M.merge(ref_encode(masks), intersect)["counts"]


@st.composite
def polygon_sets(draw):
    """Polygons with 3-10 points, some outside the image, some on the 0.1 / 0.5 grid (ties)."""
    h, w = draw(st.integers(1, 60)), draw(st.integers(1, 60))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    grid = draw(st.sampled_from([0.0, 0.1, 0.5, 1.0]))
    polys = []
    for _ in range(draw(st.integers(1, 3))):
        k = int(rng.integers(3, 11))
        xy = rng.uniform(-8, max(h, w) + 8, 2 * k)
        if grid:
            xy = np.round(xy / grid) * grid
        if rng.random() < 0.2:  # a repeated vertex
            xy[2:4] = xy[0:2]
        polys.append(xy.tolist())
    return polys, h, w


@settings(max_examples=200, deadline=None)
@given(polygon_sets())
def test_polygons_equal_pycocotools_frpyobjects(case):
    polys, h, w = case
    ours = rle.from_polygons(polys, h, w)
    ref = M.frPyObjects(polys, h, w)
    assert [o["counts"].encode() for o in ours] == [r["counts"] for r in ref]
    assert rle.merge(ours)["counts"].encode() == M.merge(ref)["counts"]


def test_from_segmentations_equals_cocos_ann_to_rle():
    coco = pytest.importorskip("pycocotools.coco")
    from cvtool.boxes.synth import synthetic_coco_segm

    gt, _ = synthetic_coco_segm(n_images=15, n_cats=2, crowd_frac=0.3, rle_frac=0.3, seed=2)
    kinds = {type(a["segmentation"]).__name__ for a in gt["annotations"]}
    lists = [a for a in gt["annotations"] if isinstance(a["segmentation"], dict)]
    assert kinds == {"list", "dict"} and any(isinstance(a["segmentation"]["counts"], list)
                                              for a in lists)  # fmt: skip
    C = coco.COCO()
    C.dataset = gt
    C.createIndex()
    anns = gt["annotations"]
    ours = rle.from_segmentations([a["segmentation"] for a in anns], [240] * len(anns),
                                  [320] * len(anns))  # fmt: skip
    ref = [C.annToRLE(a)["counts"] for a in anns]  # compressed gt RLE comes back as given (str)
    ref = [r.encode() if isinstance(r, str) else r for r in ref]
    assert [s.encode() for s in rle.counts_to_strings(ours)] == ref


def test_pair_iou_chunks_change_nothing():
    rng = np.random.default_rng(0)
    masks = (rng.random((6, 17, 13)) < 0.4).astype(np.uint8)
    s = rle.to_set(rle.encode(masks))
    di, gi = np.divmod(np.arange(36), 6)
    crowd = gi % 2 == 0
    a = rle.pair_iou(s, di, s, gi, crowd)
    b = rle.pair_iou(s, di, s, gi, crowd, limit=3)
    np.testing.assert_array_equal(a, b)
    assert np.allclose(np.diag(a.reshape(6, 6)), 1.0)


def test_iou_of_different_sizes_is_minus_one_like_pycocotools():
    a, b = np.ones((1, 4, 4), np.uint8), np.ones((1, 4, 5), np.uint8)
    ours = rle.iou(rle.encode(a), rle.encode(b), [0])
    np.testing.assert_array_equal(ours, M.iou(ref_encode(a), ref_encode(b), [0]))
    assert ours[0, 0] == -1


@settings(max_examples=100, deadline=None)
@given(polygon_sets())
def test_compiled_polygon_kernel_equals_pycocotools_and_the_numpy_code(case):
    pytest.importorskip("numba")
    polys, h, w = case
    got = {}
    for use in (True, False):
        rle.USE_NUMBA = use
        try:
            got[use] = [o["counts"].encode() for o in rle.from_polygons(polys, h, w)]
        finally:
            rle.USE_NUMBA = "auto"
    assert got[True] == got[False] == [r["counts"] for r in M.frPyObjects(polys, h, w)]


@settings(max_examples=60, deadline=None)
@given(mask_batches(), st.data())
def test_compiled_kernels_equal_the_numpy_code(masks, data):
    """The Numba kernels (strings, area, bbox, pair IoU) give the NumPy code's numbers."""
    pytest.importorskip("numba")
    other = masks[::-1].copy()
    other[:, :, : masks.shape[2] // 2] ^= 1
    crowd = np.array(data.draw(st.lists(st.booleans(), min_size=len(masks), max_size=len(masks))))
    strings = [d["counts"] for d in rle.encode(masks)] + [d["counts"] for d in rle.encode(other)]
    n, h, w = masks.shape
    got = {}
    for use in (True, False):
        rle.USE_NUMBA = use
        try:
            s = rle.strings_to_counts(strings, [h] * 2 * n, [w] * 2 * n)
            assert s.cache.get("area") is not None if use else True
            d, g = s.take(np.arange(n)), s.take(np.arange(n, 2 * n))
            di, gi = np.divmod(np.arange(n * n), n)
            got[use] = (s.counts, s.offsets, rle._area(s), rle._bbox(s),
                        rle.pair_iou(d, di, g, gi, crowd[gi]))  # fmt: skip
            # the compiled decoder stores uint32 runs: the NumPy code reads them back the same
            assert rle.counts_to_strings(s) == strings
            np.testing.assert_array_equal(rle.decode(rle._as_dicts(d)), masks)
        finally:
            rle.USE_NUMBA = "auto"
    for a, b in zip(got[True], got[False], strict=True):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("use_numba", [True, False])
@pytest.mark.parametrize(
    "segm, words",
    [
        ({"size": [4, 4], "counts": [3, 2, 10]}, "sum to height * width = 4 * 4 = 16. Got 15"),
        ({"size": [4, 4], "counts": "52"}, "sum to height"),
        ({"size": [4, 4], "counts": [3, -2, 15]}, ">= 0"),
        ({"size": [4, 4], "counts": "5~"}, "character"),
        ({"size": [4, 4], "counts": "5P"}, "ends inside a value"),
        ({"size": [4], "counts": "5"}, "'size'"),
        ([[1, 1, 3, 3]], "at least 3 x, y pairs"),
        ([[1, 1, 3, 3, 4]], "at least 3 x, y pairs"),
        ([], "empty list"),
        ("abc", "must be a list of polygons or an RLE"),
    ],
)
def test_bad_segmentations_name_the_entry(segm, words, use_numba, monkeypatch):
    monkeypatch.setattr(rle, "USE_NUMBA", use_numba)  # the compiled path falls back to name it
    segms = [[[0, 0, 3, 0, 3, 3]], segm]
    with pytest.raises(CvtoolError, match="annotation 1") as exc:
        rle.from_segmentations(segms, [4, 4], [4, 4])
    assert words in str(exc.value) and "\n" not in str(exc.value)


@pytest.mark.parametrize("module", ["boxes.rle", "boxes.coco", "boxes.report"])
def test_docstring_examples(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(f"cvtool.{module}"), extraglobs={"np": np})
    assert result.attempted > 0 and result.failed == 0
