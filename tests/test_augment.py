"""cvtool.augment: exactness, agreement with scipy.ndimage, seeds, replay, boxes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cvtool import augment as aug
from cvtool.backend import to_numpy
from cvtool.errors import CvtoolError

FILLS = {
    "constant": "grid-constant",
    "nearest": "nearest",
    "reflect": "reflect",
    "wrap": "grid-wrap",
}


def _params(n, **values):
    p = aug.identity_params(n)
    for k, v in values.items():
        p[k] = np.broadcast_to(np.asarray(v, dtype=p[k].dtype), (n,)).copy()
    return p


def _images(rng, shape, dtype):
    if dtype == np.uint8:
        return rng.integers(0, 256, shape, dtype=np.uint8)
    return rng.random(shape).astype(dtype)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
@pytest.mark.parametrize("shape", [(5, 9, 9), (4, 7, 11, 3)])
@pytest.mark.parametrize("fill", list(FILLS))
@pytest.mark.parametrize("interpolation", aug.INTERPOLATIONS)
def test_identity_parameters_return_the_input_exactly(xp, rng, dtype, shape, fill, interpolation):
    x = xp.asarray(_images(rng, shape, dtype))
    out = aug.apply_params(
        x, aug.identity_params(shape[0]), interpolation=interpolation, fill=fill, xp=xp
    )
    assert out.dtype == x.dtype and out.shape == x.shape
    np.testing.assert_array_equal(to_numpy(out), to_numpy(x))


@settings(max_examples=25, deadline=None)
@given(
    h=st.integers(1, 12),
    w=st.integers(1, 12),
    channels=st.sampled_from([0, 1, 3]),
    which=st.sampled_from(["hflip", "vflip"]),
    seed=st.integers(0, 2**16),
)
def test_flip_twice_is_identity_and_once_is_the_mirror(h, w, channels, which, seed):
    rng = np.random.default_rng(seed)
    shape = (3, h, w) if channels == 0 else (3, h, w, channels)
    x = rng.integers(0, 256, shape, dtype=np.uint8)
    p = _params(3, **{which: True})
    once = aug.apply_params(x, p)
    np.testing.assert_array_equal(once, np.flip(x, axis=2 if which == "hflip" else 1))
    np.testing.assert_array_equal(aug.apply_params(once, p), x)


@pytest.mark.parametrize("angle,k", [(90, 1), (-90, -1), (180, 2), (270, 3)])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_quarter_turns_equal_rot90_counter_clockwise(xp, rng, angle, k, dtype):
    x = _images(rng, (4, 10, 10, 2), dtype)
    out = aug.apply_params(xp.asarray(x), _params(4, rotation=angle), xp=xp)
    np.testing.assert_array_equal(to_numpy(out), np.rot90(x, k, axes=(1, 2)))


def _scipy_warp(img, inverse, order, mode, cval):
    """Reference: scipy.ndimage.affine_transform per image (and per channel), (row, col) order."""
    ndimage = pytest.importorskip("scipy.ndimage")
    a = inverse
    matrix = np.array([[a[1, 1], a[1, 0]], [a[0, 1], a[0, 0]]])
    offset = np.array([a[1, 2], a[0, 2]])
    if img.ndim == 3:
        return np.stack(
            [_scipy_warp(img[..., c], inverse, order, mode, cval) for c in range(img.shape[2])], -1
        )
    return ndimage.affine_transform(img, matrix, offset=offset, order=order, mode=mode, cval=cval)


@pytest.mark.parametrize("fill", list(FILLS))
@pytest.mark.parametrize("interpolation,order", [("bilinear", 1), ("nearest", 0)])
@pytest.mark.parametrize("shape", [(6, 11, 13), (3, 8, 6, 3), (2, 9, 70)])  # w >= 64 broadcasts
def test_agrees_with_scipy_affine_transform(xp, rng, fill, interpolation, order, shape):
    x = rng.random(shape)
    ranges = aug.make_ranges(
        rotation=50, zoom=0.3, stretch_x=0.2, stretch_y=0.2, shear=20, translate=4,
        hflip=0.5, vflip=0.5,
    )  # fmt: skip
    forward, inverse = aug.affine_matrices(aug.sample_params(shape[0], ranges, rng), shape[1:])
    np.testing.assert_allclose(
        forward @ inverse, np.broadcast_to(np.eye(3), forward.shape), atol=1e-12
    )
    out = to_numpy(
        aug.warp_affine(
            xp.asarray(x), inverse, interpolation=interpolation, fill=fill, cval=0.25, xp=xp
        )
    )
    for i in range(shape[0]):
        ref = _scipy_warp(x[i], inverse[i], order, FILLS[fill], 0.25)
        np.testing.assert_allclose(out[i], ref, rtol=0, atol=1e-12)
    # float32 and uint8 follow the same path to their own precision
    out32 = to_numpy(
        aug.warp_affine(xp.asarray(x.astype(np.float32)), inverse, fill=fill, cval=0.25, xp=xp)
    )
    ref64 = to_numpy(aug.warp_affine(xp.asarray(x), inverse, fill=fill, cval=0.25, xp=xp))
    np.testing.assert_allclose(out32, ref64, atol=2e-5)
    xu = (x * 255).round().astype(np.uint8)
    outu = to_numpy(aug.warp_affine(xp.asarray(xu), inverse, fill=fill, cval=64, xp=xp)).astype(int)
    refu = np.stack(
        [_scipy_warp(xu[i].astype(float), inverse[i], 1, FILLS[fill], 64) for i in range(shape[0])]
    )
    # single-channel uint8 uses 8-bit fixed-point weights: the error before rounding is
    # below 255/512 per interpolation step, so at most one grey level from correct rounding
    assert np.abs(outu - np.floor(refu + 0.5)).max() <= 1
    assert np.abs(outu - refu).max() < 1.5
    assert np.mean(outu != np.floor(refu + 0.5)) < 0.25  # noise images: the worst case


def test_chunking_does_not_change_the_result(rng):
    x = rng.integers(0, 256, (10, 12, 12), dtype=np.uint8)
    p = aug.sample_params(10, aug.make_ranges(rotation=30, zoom=0.2, translate=3), rng)
    _, inverse = aug.affine_matrices(p, (12, 12))
    whole = aug.warp_affine(x, inverse, chunk=10)
    np.testing.assert_array_equal(aug.warp_affine(x, inverse, chunk=3), whole)


def _nielsen_direct(x):
    """Nielsen's expand_mnist.py, verbatim in spirit: np.roll, then zero the vacated line."""
    out = []
    last_row, last_col = x.shape[1] - 1, x.shape[2] - 1
    for img in x:
        out.append(img)
        for d, axis, index in [(1, 0, 0), (-1, 0, last_row), (1, 1, 0), (-1, 1, last_col)]:
            shifted = np.roll(img, d, axis)
            if axis == 0:
                shifted[index, :] = 0
            else:
                shifted[:, index] = 0
            out.append(shifted)
    return np.stack(out)


def test_nielsen_expand_equals_roll_and_zero(xp, rng):
    x = rng.integers(1, 256, (6, 28, 28), dtype=np.uint8)  # no zeros: a wrong fill shows
    out, source = aug.nielsen_expand(xp.asarray(x), xp=xp)
    np.testing.assert_array_equal(to_numpy(out), _nielsen_direct(x))
    np.testing.assert_array_equal(source, np.repeat(np.arange(6), 5))


@settings(max_examples=30, deadline=None)
@given(tx=st.integers(-6, 6), ty=st.integers(-6, 6), seed=st.integers(0, 1000))
def test_whole_pixel_shift_is_an_exact_shift_with_zero_fill(tx, ty, seed):
    x = np.random.default_rng(seed).integers(1, 256, (2, 8, 9), dtype=np.uint8)
    out = aug.apply_params(x, _params(2, translate_x=tx, translate_y=ty))
    ref = np.zeros_like(x)
    dst = (slice(None), slice(max(ty, 0), 8 + min(ty, 0)), slice(max(tx, 0), 9 + min(tx, 0)))
    src = (slice(None), slice(max(-ty, 0), 8 + min(-ty, 0)), slice(max(-tx, 0), 9 + min(-tx, 0)))
    ref[dst] = x[src]
    np.testing.assert_array_equal(out, ref)


def test_seed_reproduces_and_another_seed_differs(rng):
    x = rng.integers(0, 256, (20, 16, 16), dtype=np.uint8)
    kw = dict(rotation=15, shift=2, zoom=0.1, hflip=True)
    a = aug.random_affine_batch(x, np.random.default_rng(7), **kw)
    b = aug.random_affine_batch(x, np.random.default_rng(7), **kw)
    c = aug.random_affine_batch(x, np.random.default_rng(8), **kw)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_replay_from_a_parameters_file_reproduces(tmp_path, rng):
    x = rng.integers(0, 256, (7, 12, 12), dtype=np.uint8)
    out, params = aug.random_affine_batch(
        x, rng, rotation=20, shift=3, zoom=0.2, shear=10, hflip=0.5, vflip=0.5, return_params=True
    )
    aug.write_params(tmp_path / "p.jsonl", np.arange(7), params)
    source, again, settings = aug.read_params(tmp_path / "p.jsonl", n_source=7)
    np.testing.assert_array_equal(source, np.arange(7))
    assert settings == {}
    np.testing.assert_array_equal(aug.apply_params(x[source], again), out)


def test_replay_uses_the_recorded_fill_and_interpolation(tmp_path, rng):
    from cvtool.data.datasets import Dataset

    ds = Dataset("t", rng.integers(0, 256, (4, 9, 9), dtype=np.uint8), np.arange(4),
                 np.zeros((1, 9, 9), np.uint8), np.zeros(1, np.int64))  # fmt: skip
    kw = dict(ranges=aug.make_ranges(rotation=40, translate=3), copies=2, seed=5)
    first = aug.augment_dataset(ds, fill="reflect", interpolation="nearest", **kw)
    aug.write_params(tmp_path / "p.jsonl", first.source, first.params, first.settings)
    replay = aug.read_params(tmp_path / "p.jsonl", n_source=4)
    assert replay[2] == {"interpolation": "nearest", "fill": "reflect", "cval": 0.0}
    again = aug.augment_dataset(ds, replay=replay)  # default bilinear / constant are overridden
    np.testing.assert_array_equal(again.dataset.x_train, first.dataset.x_train)
    assert not np.array_equal(aug.augment_dataset(ds, **kw).dataset.x_train, first.dataset.x_train)


def test_sampled_parameters_stay_in_their_ranges(rng):
    ranges = aug.make_ranges(rotation=(-5, 20), zoom=(0.8, 0.9), translate=0.25,
                             translate_unit="fraction", image_shape=(40, 20), hflip=1.0)  # fmt: skip
    p = aug.sample_params(500, ranges, rng)
    assert p["rotation"].min() >= -5 and p["rotation"].max() <= 20
    assert p["zoom"].min() >= 0.8 and p["zoom"].max() <= 0.9
    assert np.abs(p["translate_x"]).max() <= 5 and np.abs(p["translate_y"]).max() <= 10
    assert np.abs(p["translate_y"]).max() > 5  # y uses the height
    assert p["hflip"].all() and not p["vflip"].any()


def test_expand_params_keeps_originals_first(rng):
    source, p = aug.expand_params(3, aug.make_ranges(rotation=30), 2, True, rng)
    np.testing.assert_array_equal(source, [0, 0, 0, 1, 1, 1, 2, 2, 2])
    assert np.all(p["rotation"][::3] == 0) and np.all(p["rotation"][1::3] != 0)


# ---------------------------------------------------------------- boxes


def _boxes(image, xyxy, labels):
    return aug.Boxes(np.array(image), np.array(xyxy, float), np.array(labels, dtype=object))


def test_boxes_of_a_flipped_image_are_the_flipped_boxes():
    h, w = 20, 30
    b = _boxes([0, 0, 1], [[1, 2, 5, 9], [0, 0, 30, 20], [10.5, 3, 12, 4.5]], ["a", "b", "c"])
    for which, expect in [
        ("hflip", lambda x1, y1, x2, y2: [w - x2, y1, w - x1, y2]),
        ("vflip", lambda x1, y1, x2, y2: [x1, h - y2, x2, h - y1]),
    ]:
        forward, _ = aug.affine_matrices(_params(2, **{which: True}), (h, w))
        moved, dropped = aug.boxes_for_outputs(b, np.array([0, 1]), forward, (h, w))
        assert dropped == 0
        np.testing.assert_allclose(moved.xyxy, [expect(*r) for r in b.xyxy])
        assert moved.label.tolist() == ["a", "b", "c"]


@pytest.mark.parametrize("rotation,tx,ty", [(90, 0, 0), (0, 3, -2), (180, 1, 1), (-90, -4, 0)])
def test_boxes_follow_the_pixels(rotation, tx, ty):
    h = w = 16
    x = np.zeros((1, h, w), np.uint8)
    x[0, 3:7, 4:11] = 255  # pixels rows 3..6, cols 4..10 -> box (4, 3, 11, 7)
    p = _params(1, rotation=rotation, translate_x=tx, translate_y=ty)
    out = aug.apply_params(x, p, interpolation="nearest")
    rows, cols = np.nonzero(out[0])
    forward, _ = aug.affine_matrices(p, (h, w))
    moved, keep, vis = aug.transform_boxes(np.array([[4, 3, 11, 7.0]]), forward, (h, w))
    np.testing.assert_allclose(moved[0], [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1])
    assert keep[0] and vis[0] == 1


@settings(max_examples=40, deadline=None)
@given(
    box=st.lists(st.floats(0, 20), min_size=4, max_size=4),
    turns=st.integers(0, 3),
    hflip=st.booleans(),
    vflip=st.booleans(),
)
def test_box_through_forward_then_inverse_is_unchanged(box, turns, hflip, vflip):
    x1, x2 = sorted(box[::2])
    y1, y2 = sorted(box[1::2])
    p = _params(1, rotation=90 * turns, hflip=hflip, vflip=vflip)
    forward, inverse = aug.affine_matrices(p, (20, 20))
    moved, keep, _ = aug.transform_boxes(np.array([[x1, y1, x2, y2]]), forward, (20, 20))
    back, _, _ = aug.transform_boxes(moved, inverse, (20, 20))
    np.testing.assert_allclose(back[0], [x1, y1, x2, y2], atol=1e-9)
    if (x2 - x1) * (y2 - y1) > 1e-9:  # boxes of (numerically) no area are dropped
        assert keep[0]


def test_boxes_drop_below_min_visibility_and_labels_stay_aligned():
    b = _boxes([0, 0, 0], [[0, 0, 4, 4], [10, 10, 14, 14], [6, 6, 8, 8]], ["left", "right", "mid"])
    forward, _ = aug.affine_matrices(_params(1, translate_x=-2), (16, 16))
    moved, dropped = aug.boxes_for_outputs(b, np.array([0]), forward, (16, 16), min_visibility=0.6)
    assert dropped == 1  # 'left' keeps half of its area
    assert moved.label.tolist() == ["right", "mid"]
    np.testing.assert_allclose(moved.xyxy, [[8, 10, 12, 14], [4, 6, 6, 8]])
    moved, dropped = aug.boxes_for_outputs(b, np.array([0]), forward, (16, 16), min_visibility=0.5)
    assert dropped == 0 and moved.label.tolist() == ["left", "right", "mid"]
    np.testing.assert_allclose(moved.xyxy[0], [0, 0, 2, 4])


def test_boxes_are_copied_to_every_output_of_their_image():
    b = _boxes([2, 0, 2], [[0, 0, 1, 1], [1, 1, 2, 2], [2, 2, 3, 3]], ["x", "y", "z"])
    source = np.array([0, 0, 1, 2])
    forward, _ = aug.affine_matrices(aug.identity_params(4), (8, 8))
    moved, _ = aug.boxes_for_outputs(b, source, forward, (8, 8))
    assert moved.image.tolist() == [0, 1, 3, 3]
    assert moved.label.tolist() == ["y", "y", "x", "z"]


def test_boxes_file_round_trip(tmp_path):
    b = _boxes([0, 3], [[1, 2, 3.5, 4], [0, 0, 28, 28]], ["cat", "dog, big"])
    aug.write_boxes(tmp_path / "b.csv", b)
    back = aug.read_boxes(tmp_path / "b.csv", n_images=4)
    np.testing.assert_array_equal(back.image, b.image)
    np.testing.assert_allclose(back.xyxy, b.xyxy)
    assert back.label.tolist() == b.label.tolist()


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "kwargs",
    [
        {"rotation": -3},
        {"rotation": "abc"},
        {"rotation": (5, 1)},
        {"zoom": 1.5},
        {"zoom": (0, 2)},
        {"hflip": 1.5},
        {"translate": 2, "translate_unit": "inch"},
        {"translate": 2, "translate_unit": "fraction", "image_shape": (8, 8)},
    ],
)
def test_bad_ranges_are_user_errors(kwargs):
    with pytest.raises(CvtoolError, match="'(rotation|zoom|hflip|translate|translate_unit)'"):
        aug.make_ranges(**kwargs)


def test_bad_options_and_files_are_user_errors(tmp_path, rng):
    x = rng.integers(0, 256, (2, 5, 5), dtype=np.uint8)
    inverse = np.broadcast_to(np.eye(3), (2, 3, 3))
    with pytest.raises(CvtoolError, match="'fill'"):
        aug.warp_affine(x, inverse, fill="mirror")
    with pytest.raises(CvtoolError, match="'interpolation'"):
        aug.warp_affine(x, inverse, interpolation="cubic")
    with pytest.raises(CvtoolError, match="'cval'"):
        aug.warp_affine(x, inverse, cval=300)
    with pytest.raises(CvtoolError, match="one matrix each"):
        aug.warp_affine(x, inverse[:1])
    with pytest.raises(CvtoolError, match="not found"):
        aug.read_boxes(tmp_path / "none.csv")
    bad = tmp_path / "bad.csv"
    for text, match in [
        ("a,b\n", "header"),
        ("image,x1,y1,x2,y2,label\n0,1,2,x,4,a\n", "numbers"),
        ("image,x1,y1,x2,y2,label\n0,5,2,1,4,a\n", "x1 <= x2"),
        ("image,x1,y1,x2,y2,label\n9,1,2,3,4,a\n", "outside"),
        ("image,x1,y1,x2,y2,label\n0,1,2,3\n", "6 fields"),
    ]:
        bad.write_text(text)
        with pytest.raises(CvtoolError, match=match):
            aug.read_boxes(bad, n_images=2)
    with pytest.raises(CvtoolError, match="not found"):
        aug.read_params(tmp_path / "none.jsonl")
    bad.write_text('{"source": 0}\n')
    with pytest.raises(CvtoolError, match="not a parameters line"):
        aug.read_params(bad)
    with pytest.raises(CvtoolError, match="min_visibility"):
        aug.transform_boxes(np.zeros((1, 4)), np.eye(3)[None], (4, 4), min_visibility=2)
