"""Semantic segmentation from scratch: an FCN with skips, trained per pixel, scored by IoU.

- :func:`segmentation_data`: training, validation and test label maps, from
  cvtool's synthetic canvases (generated, offline, seeded; fresh canvases each
  epoch by default) or from a folder written by ``cvtool data make-canvas``
  or holding ``images/`` + ``masks/`` PNG pairs;
- :data:`SEGMENTER`: the default network, a small U-Net-like FCN: three
  3x3-conv stages that halve the size, then upsampling back with each stage's
  features joined by ``concat`` skips (the full-resolution skip keeps the thin
  strokes' edges), and a 1x1 convolution to one logit per class and pixel;
- :func:`augmentation`: random shifts and zooms (flips on request) of the
  training images with their label maps (nearest interpolation for the maps);
- :func:`train_segmenter`: the one training call (``cvtool train-segmenter``):
  data, network, task, then :func:`cvtool.nn.train.train`;
- :mod:`cvtool.segment.task`: the per-pixel task; :func:`predict_maps`.

Instances (one object per connected component of a class) are in
:mod:`cvtool.segment.instances`.
"""

from __future__ import annotations

from pathlib import Path

from cvtool.augment.labelled import augmented_training_data, labelled_augmentation
from cvtool.data.canvas import TrainingData, canvas_training_data, hold_out
from cvtool.data.core import Dataset
from cvtool.errors import CvtoolError, check_choice
from cvtool.segment.task import Segmentation, class_weights, predict_maps

__all__ = ["SEGMENTER", "Segmentation", "augmentation", "class_weights", "predict_maps",
           "segmentation_data", "train_segmenter"]  # fmt: skip

SEGMENTER = (
    "conv:16x3:relu:p=same, tap:full, pool:2, "
    "conv:32x3:relu:p=same, tap:half, pool:2, "
    "conv:32x3:relu:p=same, tap:quarter, pool:2, "
    "conv:64x3:relu:p=same, "
    "upsample:2, concat:quarter, conv:32x3:relu:p=same, "
    "upsample:2, concat:half, conv:32x3:relu:p=same, "
    "upsample:2, concat:full, conv:16x3:relu:p=same, "
    "conv:{classes}x1"
)


def _names(class_names) -> tuple[str, ...]:
    return ("background", *class_names)


def segmentation_data(
    folder=None,
    *,
    n_train: int = 2000,
    n_val: int = 200,
    n_test: int = 500,
    fresh: bool = True,
    seed: int | None = 0,
    **canvas_options,
) -> TrainingData:
    """Images and label maps to train a segmenter on.

    Parameters
    ----------
    folder : None for generated canvases (``cvtool.data.canvas``), a folder
        written by ``cvtool data make-canvas`` (``annotations/``, ``images/``,
        ``masks/``), or a folder of ``images/`` + ``masks/`` PNG pairs
        (:mod:`cvtool.data.pairs`; classes 0..max label, 0 = background). The
        ``train`` split is carved (seeded) into training and validation; the
        ``test`` split, if any, is the test set.
    n_train, n_val, n_test : canvases per split (generated sets only).
    fresh : draw new training canvases every epoch (generated sets only).
    seed : seeds the canvases and the validation split.
    canvas_options : more ``CanvasGenerator`` options (size, max_objects, ...).
    """
    if folder is None:
        return canvas_training_data(lambda cs: cs.label_maps, _names, n_train, n_val, n_test,
                                    fresh=fresh, seed=seed, **canvas_options)  # fmt: skip
    folder = Path(folder)
    if (folder / "annotations").is_dir():  # a canvas folder from `cvtool data make-canvas`
        from cvtool.data.canvas_io import read_canvas_set

        train, test = read_canvas_set(folder, "train"), read_canvas_set(folder, "test")
        x, y, names = train.images, train.label_maps, _names(train.class_names)
        x_test, y_test = test.images, test.label_maps
    else:  # images/ + masks/ pairs, split into train/ and test/ or flat (no test split)
        from cvtool.data.pairs import has_splits, read_pairs

        split = has_splits(folder)
        x, y, _ = read_pairs(folder, "train" if split else None)
        if split:
            x_test, y_test, _ = read_pairs(folder, "test")
        else:
            x_test, y_test = x[:0], y[:0]
        k = int(max(y.max(), y_test.max(initial=0))) + 1
        names = ("background", *(str(c) for c in range(1, k)))
    x, y, val = hold_out(x, y, n_val, seed)
    ds = Dataset(folder.name, x, y, x_test, y_test, names)
    return TrainingData(ds, val, None, source=str(folder))


def augmentation(seed: int | None, image_shape, **settings):
    """An ``augment(x, y) -> (x, y)`` moving images and their label maps together.

    Each call draws, per image, a shift (up to a quarter of the image each way),
    a zoom (0.9..1.1) and, only when asked (``hflip``), a horizontal flip, from
    one generator seeded with `seed`. The image is resampled bilinearly, its
    label map with NEAREST interpolation through the same matrix; pixels moved
    in from outside are black in the image and background (``fill_label`` 0)
    in the map, which is what they are on the canvases (so no ignore label is
    needed). ``settings`` are :func:`cvtool.augment.augment_settings`' keywords.

    Returns
    -------
    augment : callable (images (N, H, W, C), maps (N, H, W)) -> the same.
    settings : dict, for the model's metadata.
    """
    return labelled_augmentation("maps", seed, image_shape, **settings)


def train_segmenter(
    data: TrainingData | None = None,
    *,
    arch: str | None = None,
    weights: str | tuple = "auto",
    epochs: int = 12,
    batch_size: int = 32,
    optimizer: str = "adam",
    eta: float | None = 3e-3,
    seed: int | None = 0,
    init: str | None = "he",
    augment: bool | dict | None = False,
    **train_options,
):
    """Build a segmenter for `data` and train it (``cvtool train-segmenter``).

    Parameters
    ----------
    data : from :func:`segmentation_data` (default: generated canvases).
    arch : the network spec without its input (default :data:`SEGMENTER`;
        ``{classes}`` is replaced by the number of classes).
    weights : 'auto' (median frequency balancing on the training maps), 'none',
        or one weight per class.
    epochs, batch_size, optimizer, eta, seed : as for ``cvtool.nn.train.train``;
        the default learning rate is Adam's 1e-3 times 3 (measured on the canvases:
        mean IoU 0.61 after 10 epochs at 3e-3; None takes the optimiser's default).
    init : the conv initialiser.
    augment : True to train on augmented images and label maps (:func:`augmentation`'s
        defaults), a dict of its settings (e.g. ``{"hflip": 0.5}``), or False / None;
        recorded in ``model.meta["augment"]``. Every epoch, the first included, is augmented.
    train_options : anything else ``train`` takes (validation is the data's;
        out, metrics, plot, callbacks, xp, dtype, early_stop, ...).

    Returns
    -------
    cvtool.nn.train.TrainResult; ``extra`` holds the data's source.
    """
    from cvtool.nn.cnn import cnn_model
    from cvtool.nn.train import train

    data = data if data is not None else segmentation_data(seed=seed)
    ds = data.dataset
    k = len(ds.class_names)
    if isinstance(weights, str):
        check_choice("class-weights", weights, ("auto", "none"))
        weights = class_weights(ds.y_train, k) if weights == "auto" else None
    text = (arch or SEGMENTER).replace("{classes}", str(k))
    model = cnn_model(text, ds.image_shape, init=init)
    model.meta["task"] = "segmentation"
    data = augmented_training_data(data, augment, "maps", seed, model.meta)
    ds = data.dataset
    if "validation" in train_options:
        raise CvtoolError("The segmenter's validation set comes with its data; drop 'validation'.")
    result = train(model, ds, task=Segmentation(k, weight=weights), epochs=epochs,
                   batch_size=batch_size, optimizer=optimizer, eta=eta, seed=seed,
                   validation=data.validation, epoch_data=data.epoch_data,
                   **train_options)  # fmt: skip
    result.extra["data"] = data.source
    return result
