"""Augmentation of detection and segmentation training sets: boxes and label maps follow."""

from __future__ import annotations

import json

import numpy as np
import pytest
from canvas_set import small_canvas_set

from cvtool.augment import (
    affine_matrices,
    augment_boxes,
    augment_maps,
    augment_option,
    augment_training_data,
    identity_params,
    labelled_augmentation,
    make_ranges,
    sample_params,
    warp_affine,
)
from cvtool.errors import CvtoolError

H = W = 64


def _params(n, seed, **ranges):
    return sample_params(n, make_ranges(**ranges), np.random.default_rng(seed))


def _rectangles(n, seed):
    """(n, H, W, 1) uint8 images, each one filled rectangle, and its (boxes xywh, classes)."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, H, W, 1), np.uint8)
    labels = []
    for i in range(n):
        x, y = rng.integers(12, 36, 2)
        w, h = rng.integers(6, 16, 2)
        images[i, y : y + h, x : x + w] = 255
        labels.append((np.array([[x, y, w, h]], float), np.array([int(rng.integers(10))])))
    return images, labels


@pytest.mark.parametrize("rotation", [0.0, 20.0])
def test_boxes_bound_their_warped_rectangles(rotation):
    images, labels = _rectangles(40, 1)
    params = _params(40, 2, translate=10, zoom=0.2, hflip=0.5, vflip=0.5, rotation=rotation)
    out, moved = augment_boxes(images, labels, params, min_visibility=0.0)
    assert out.shape == images.shape and out.dtype == images.dtype
    for img, (boxes, classes), (_, old) in zip(out, moved, labels, strict=True):
        ys, xs = np.nonzero(img[..., 0] >= 128)  # pixels at least half covered
        assert len(boxes) == 1 and classes.tolist() == old.tolist()
        x, y, w, h = boxes[0]
        # the rectangle's pixel-edge extent against the moved box, to one pixel
        got = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
        assert got == pytest.approx([x, y, x + w, y + h], abs=1.0)


def test_boxes_leaving_the_canvas_are_dropped_with_their_classes():
    images = np.zeros((4, H, W), np.uint8)
    box = (np.array([[0.0, 10, 20, 20], [40, 40, 10, 10]]), np.array([3, 7]))
    params = identity_params(4)
    # whole-pixel shifts left: the first box keeps 6/20, 4/20, 0 and 20/20 of its width
    params["translate_x"] = np.array([-14.0, -16.0, -30.0, 0.0])
    _, moved = augment_boxes(images, [box] * 4, params, min_visibility=0.25)
    kept = [(b.tolist(), c.tolist()) for b, c in moved]
    assert kept[0] == ([[0, 10, 6, 20], [26, 40, 10, 10]], [3, 7])  # 0.3 visible: clipped
    assert kept[1] == ([[24, 40, 10, 10]], [7])  # 0.2 visible: dropped
    assert kept[2] == ([[10, 40, 10, 10]], [7])
    assert kept[3] == (box[0].tolist(), box[1].tolist())
    params["translate_x"][:] = 60.0  # both boxes pushed off the right edge
    _, moved = augment_boxes(images, [box] * 4, params)
    assert all(b.shape == (0, 4) and c.shape == (0,) for b, c in moved)


def test_images_without_boxes_stay_empty():
    images = np.zeros((2, H, W, 1), np.uint8)
    labels = [(np.zeros((0, 4)), np.zeros(0, np.int64))] * 2
    _, moved = augment_boxes(images, labels, _params(2, 0, translate=8))
    assert [b.shape for b, _ in moved] == [(0, 4), (0, 4)]


def _maps(n, seed, k=11):
    rng = np.random.default_rng(seed)
    maps = np.zeros((n, H, W), np.uint8)
    for i in range(n):
        for _ in range(3):
            x, y = rng.integers(0, 48, 2)
            maps[i, y : y + 16, x : x + 12] = rng.integers(1, k)
    return maps


def test_maps_are_warped_nearest_with_the_images_matrix():
    maps = _maps(12, 3)
    images = (maps * 20)[..., None]
    params = _params(12, 4, translate=16, zoom=0.1, hflip=0.5, rotation=15)
    x, y = augment_maps(images, maps, params)
    _, inverse = affine_matrices(params, images.shape[1:])
    assert np.array_equal(y, warp_affine(maps, inverse, interpolation="nearest"))
    assert np.array_equal(x, warp_affine(images, inverse, interpolation="bilinear"))
    assert y.dtype == maps.dtype and set(np.unique(y)) <= set(np.unique(maps)) | {0}
    # where the image's four neighbours agreed, bilinear and nearest give the same class
    agree = x[..., 0] == y * 20
    assert agree.mean() > 0.9


def test_whole_pixel_shifts_and_flips_move_maps_exactly_with_background_fill():
    maps = _maps(3, 5)
    params = identity_params(3)
    params["translate_x"] = np.array([5.0, 0.0, -3.0])
    params["translate_y"] = np.array([0.0, -7.0, 2.0])
    params["hflip"] = np.array([False, True, False])
    _, y = augment_maps(maps[..., None], maps, params, fill_label=0)
    want = np.zeros_like(maps)
    want[0, :, 5:] = maps[0, :, :-5]
    want[1, :-7] = maps[1, 7:, ::-1]
    want[2, 2:, :-3] = maps[2, :-2, 3:]
    assert np.array_equal(y, want)
    _, y = augment_maps(maps[..., None], maps, params, fill_label=255)
    assert (y[0, :, :5] == 255).all() and (y[2, :2] == 255).all()


@pytest.mark.parametrize("kind", ["boxes", "maps"])
def test_same_seed_same_epochs(kind):
    images, labels = _rectangles(8, 6)
    y = labels if kind == "boxes" else _maps(8, 6)
    runs = []
    for seed in (3, 3, 4):
        augment, settings = labelled_augmentation(kind, seed, images.shape[1:])
        runs.append([augment(images, y) for _ in range(2)])  # two epochs
    assert settings["labels"] == kind and settings["hflip"] == 0.0

    def flat(run):
        parts = []
        for x, yy in run:
            parts.append(x.ravel())
            if kind == "boxes":
                parts += [np.concatenate([b.ravel(), c.astype(float)]) for b, c in yy]
            else:
                parts.append(yy.ravel())
        return np.concatenate([p.astype(float) for p in parts])

    a, b, c = (flat(r) for r in runs)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert not np.array_equal(runs[0][0][0], runs[0][1][0])  # each epoch draws anew


def test_no_flips_by_default_and_settings_are_checked():
    images = np.zeros((200, 8, 8), np.uint8)
    images[:, :, 0] = 255  # a left column: a flip would move it right
    augment, settings = labelled_augmentation("maps", 0, images.shape[1:], shift=0.0, zoom=0.0)
    x, _ = augment(images, np.zeros((200, 8, 8), np.uint8))
    assert np.array_equal(x, images)
    augment, _ = labelled_augmentation("maps", 0, images.shape[1:], shift=0, zoom=0, hflip=0.5)
    flipped = (augment(images, np.zeros((200, 8, 8), np.uint8))[0][:, :, 7] == 255).all(1)
    assert 60 < flipped.sum() < 140
    for bad in ({"shift": 1.5}, {"zoom": 1.0}, {"hflip": 2}, {"min_visibility": -0.1},
                {"fill_label": -1}, {"rotation": float("nan")}):  # fmt: skip
        with pytest.raises(CvtoolError):
            labelled_augmentation("boxes", 0, (8, 8), **bad)
    assert augment_option(False) is None and augment_option(True, 0.5)["hflip"] == 0.5
    with pytest.raises(CvtoolError, match="--augment"):
        augment_option(False, 0.5)


def test_training_data_is_augmented_every_epoch_but_validation_is_not():
    from cvtool.data.canvas import TrainingData
    from cvtool.data.core import Dataset

    maps = _maps(6, 8)
    x = (maps * 20)[..., None]
    ds = Dataset("m", x, maps, x[:2], maps[:2], tuple("abcdefghijk"))
    val = (x[:2], maps[:2])
    augment, _ = labelled_augmentation("maps", 1, x.shape[1:])
    fixed = augment_training_data(TrainingData(ds, val), augment)
    assert fixed.validation is val and fixed.dataset.x_test is ds.x_test
    x1, y1 = fixed.dataset.x_train, fixed.dataset.y_train
    x2, y2 = fixed.epoch_data(2)
    assert x1.shape == x2.shape == x.shape and y1.shape == y2.shape == maps.shape
    assert (x1[..., 0] == y1 * 20).mean() > 0.9  # the first epoch's maps moved with its images
    assert not np.array_equal(x1, x) and not np.array_equal(x1, x2)
    drawn = []
    fresh = TrainingData(ds, val, lambda epoch: drawn.append(epoch) or (x[::-1], maps[::-1]))
    augment_training_data(fresh, augment).epoch_data(3)
    assert drawn == [3]


# ---------------------------------------------------------------- the commands


@pytest.fixture(scope="module")
def canvases(tmp_path_factory):
    return small_canvas_set(tmp_path_factory.mktemp("canvas") / "digits")


DET_ARCH = "conv:8x3:p=same, bn, relu, pool:4, conv:16x3:p=same, bn, relu, pool:2, conv:{head}x1"
SEG_ARCH = (
    "conv:4x3:relu:p=same, tap:a, pool:2, conv:8x3:relu:p=same, upsample:2, concat:a, "
    "conv:{classes}x1"
)


@pytest.mark.parametrize(
    "command, extra",
    [
        ("train-detector", ["--grid", "4", "--arch", DET_ARCH]),
        ("train-segmenter", ["--arch", SEG_ARCH, "--flip", "0.5"]),
    ],
)
@pytest.mark.parametrize("backend", ["numpy", "strict"])
def test_trainers_with_augment_record_it_in_the_model(cli, canvases, tmp_path, command, extra,
                                                      backend):  # fmt: skip
    """Augmentation runs on the host before each epoch goes to the device: the strict
    backend (no implicit transfers) trains the same way."""
    from cvtool.nn.model import Sequential

    model = tmp_path / "m.npz"
    args = [command, "--dataset", canvases, "--epochs", "2", "--validation", "8",
            "--batch-size", "16", "--eta", "0.01", "--augment", *extra, "--out", model, "--json",
            "--backend", backend]  # fmt: skip
    result = cli(*args)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["command"] == command
    meta = Sequential.load(model).meta["augment"]
    assert meta["labels"] == ("boxes" if command == "train-detector" else "maps")
    assert meta["shift"] == 0.25 and meta["zoom"] == 0.1
    assert meta["hflip"] == (0.5 if "--flip" in extra else 0.0)


def test_train_size_cuts_every_epochs_augmented_set_too():
    from cvtool.detect.train import detection_data, train_detector

    data = detection_data(n_train=40, n_val=8, n_test=8, fresh=False, size=32, max_scale=0.8)
    result = train_detector(data, epochs=2, augment=True, train_size=20, grid=4, arch=DET_ARCH)
    assert result.n_train == 20 and result.history.stopped == "completed"
