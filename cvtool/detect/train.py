"""Training a grid detector: the data, the default network and the one call.

- :func:`detection_data`: images with their boxes from cvtool's synthetic
  canvases (seeded, offline; fresh canvases each epoch by default, which
  removes the overfitting a fixed 2,000-canvas set shows) or from a folder
  written by ``cvtool data make-canvas``;
- :data:`DETECTOR`: four 3x3 conv + batch-norm + ReLU stages with max-pooling
  down to the S x S grid (8 x 8 cells of 8 pixels on 64 x 64 canvases), one
  more conv stage at the grid (receptive field 54 pixels, enough for the
  largest digits), and a 1x1 conv head with 5B + C outputs per cell;
- :func:`augmentation`: random shifts and zooms (flips on request) of the
  training images with their boxes (:mod:`cvtool.augment.labelled`);
- :func:`train_detector`: data, network, task, then :func:`cvtool.nn.train.train`
  (``cvtool train-detector``).
"""

from __future__ import annotations

from pathlib import Path

from cvtool.augment.labelled import augmented_training_data, labelled_augmentation
from cvtool.data.canvas import TrainingData, canvas_training_data, hold_out
from cvtool.data.core import Dataset
from cvtool.detect.task import Detection, labels_of
from cvtool.detect.yolo import YoloLoss
from cvtool.errors import CvtoolError, check_int

DETECTOR = (
    "conv:16x3:p=same, bn, relu, pool:2, "
    "conv:32x3:p=same, bn, relu, pool:2, "
    "conv:64x3:p=same, bn, relu, pool:{pool}, "
    "conv:64x3:p=same, bn, relu, "
    "conv:{head}x1"
)


def detection_data(
    folder=None,
    *,
    n_train: int = 2000,
    n_val: int = 200,
    n_test: int = 500,
    fresh: bool = True,
    seed: int | None = 0,
    **canvas_options,
) -> TrainingData:
    """Canvases with boxes: generated (``cvtool.data.canvas``) or read from `folder`.

    See :func:`cvtool.segment.segmentation_data`: the same splits and options.
    """
    if folder is None:
        return canvas_training_data(labels_of, tuple, n_train, n_val, n_test, fresh=fresh,
                                    seed=seed, **canvas_options)  # fmt: skip
    from cvtool.data.canvas_io import read_canvas_set

    folder = Path(folder)
    train, test = read_canvas_set(folder, "train"), read_canvas_set(folder, "test")
    x, y = train.images, labels_of(train)
    x, y, val = hold_out(x, y, n_val, seed)
    ds = Dataset(folder.name, x, y, test.images, labels_of(test), train.class_names)
    return TrainingData(ds, val, None, str(folder))


def augmentation(seed: int | None, image_shape, **settings):
    """An ``augment(x, y) -> (x, y)`` moving images and their (boxes, classes) together.

    Each call draws, per image, a shift (up to a quarter of the image each way:
    two grid cells of an 8x8 grid), a zoom (0.9..1.1) and, only when asked
    (``hflip``), a horizontal flip, from one generator seeded with `seed`. Images
    are resampled bilinearly; boxes go through the same matrix, are clipped to
    the image and dropped (with their classes) when less than a quarter of
    their area stays inside (``min_visibility``). ``settings`` are
    :func:`cvtool.augment.augment_settings`' keywords.

    Returns
    -------
    augment : callable (images (N, H, W, C), N pairs (boxes xywh, classes)) -> the same.
    settings : dict, for the model's metadata.
    """
    return labelled_augmentation("boxes", seed, image_shape, **settings)


def train_detector(
    data: TrainingData | None = None,
    *,
    arch: str | None = None,
    grid: int = 8,
    boxes_per_cell: int = 2,
    variant: str = "bce",
    lambda_coord: float = 5.0,
    lambda_noobj: float = 0.5,
    epochs: int = 30,
    batch_size: int = 32,
    optimizer: str = "adam",
    eta: float | None = None,
    seed: int | None = 0,
    init: str | None = "pytorch",
    augment: bool | dict | None = False,
    **train_options,
):
    """Build a grid detector for `data` and train it (``cvtool train-detector``).

    Parameters
    ----------
    data : from :func:`detection_data` (default: generated canvases).
    arch : network spec without its input; ``{head}`` is 5B + C and ``{pool}``
        the last pooling that brings the map to the grid (default :data:`DETECTOR`).
    grid, boxes_per_cell, variant, lambda_coord, lambda_noobj : the YoloLoss.
    init : initialiser of every conv ('pytorch' trains this detector 2-3x
        faster than 'glorot', measured on the canvases).
    augment : True to train on augmented images and boxes (:func:`augmentation`'s
        defaults), a dict of its settings (e.g. ``{"hflip": 0.5}``), or False / None;
        recorded in ``model.meta["augment"]``. Every epoch, the first included, is augmented.
    train_options : anything else ``cvtool.nn.train.train`` takes.

    Returns
    -------
    cvtool.nn.train.TrainResult
    """
    from cvtool.nn.cnn import cnn_model
    from cvtool.nn.train import train

    data = data if data is not None else detection_data(seed=seed)
    ds = data.dataset
    h, w = ds.image_shape[:2]
    check_int("grid", grid, low=1)
    if h != w or h % (4 * grid):
        raise CvtoolError(
            f"The default detector needs square images whose size is a multiple of 4 x grid "
            f"({4 * grid}); got {h}x{w}. Give --arch, or another --grid."
        )
    loss = YoloLoss(grid, boxes_per_cell, len(ds.class_names), variant=variant,
                    lambda_coord=lambda_coord, lambda_noobj=lambda_noobj)  # fmt: skip
    text = (arch or DETECTOR).replace("{head}", str(loss.head_shape[2]))
    text = text.replace("{pool}", str(h // (4 * grid)))
    model = cnn_model(text, ds.image_shape, init=init)
    model.meta["task"] = "detection"
    data = augmented_training_data(data, augment, "boxes", seed, model.meta)
    ds = data.dataset
    task = Detection(loss, (h, w), ds.class_names)
    if "validation" in train_options:
        raise CvtoolError("The detector's validation set comes with its data; drop 'validation'.")
    result = train(model, ds, task=task, epochs=epochs, batch_size=batch_size,
                   optimizer=optimizer, eta=eta, seed=seed, validation=data.validation,
                   epoch_data=data.epoch_data, **train_options)  # fmt: skip
    result.extra["data"] = data.source
    return result
