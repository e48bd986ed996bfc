"""Semantic segmentation from scratch: an FCN with skips, trained per pixel, scored by IoU.

- :func:`segmentation_data`: training, validation and test label maps, from
  cvtool's synthetic canvases (generated, offline, seeded; fresh canvases each
  epoch by default) or from a folder written by ``cvtool data make-canvas``
  or holding ``images/`` + ``masks/`` PNG pairs;
- :data:`SEGMENTER`: the default network, a small U-Net-like FCN: three
  3x3-conv stages that halve the size, then upsampling back with each stage's
  features joined by ``concat`` skips (the full-resolution skip keeps the thin
  strokes' edges), and a 1x1 convolution to one logit per class and pixel;
- :func:`train_segmenter`: the one training call (``cvtool train-segmenter``):
  data, network, task, then :func:`cvtool.nn.train.train`;
- :mod:`cvtool.segment.task`: the per-pixel task; :func:`predict_maps`.

Instances (one object per connected component of a class) are in
:mod:`cvtool.segment.instances`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cvtool.data.core import Dataset
from cvtool.errors import CvtoolError, check_choice
from cvtool.segment.task import Segmentation, class_weights, predict_maps

__all__ = ["SEGMENTER", "Segmentation", "class_weights", "predict_maps", "segmentation_data",
           "train_segmenter"]  # fmt: skip

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


@dataclass
class SegmentationData:
    """Training data for a segmenter: a Dataset of label maps, and how each epoch gets its own."""

    dataset: Dataset  # x: (N, H, W, C) uint8 images; y: (N, H, W) label maps
    validation: tuple | None  # (x_val, y_val)
    epoch_data: object = None  # callable(epoch) -> (x, y), or None for a fixed set
    source: str = ""


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
) -> SegmentationData:
    """Images and label maps to train a segmenter on.

    Parameters
    ----------
    folder : None for generated canvases (``cvtool.data.canvas``), or a folder
        written by ``cvtool data make-canvas`` (``annotations/``, ``images/``,
        ``masks/``), whose ``train`` split is carved into training and
        validation and whose ``test`` split is the test set.
    n_train, n_val, n_test : canvases per split (generated sets only).
    fresh : draw new training canvases every epoch (generated sets only).
    seed : seeds the canvases and the validation split.
    canvas_options : more ``CanvasGenerator`` options (size, max_objects, ...).
    """
    if folder is None:
        from cvtool.data.canvas import canvas_streams

        gen, train, val, test = canvas_streams(n_train, n_val, n_test, seed=seed,
                                               **canvas_options)  # fmt: skip
        names = _names(train.class_names)
        ds = Dataset("canvases", train.images, train.label_maps, test.images, test.label_maps,
                     names)  # fmt: skip

        def epoch_data(epoch):
            fresh_set = gen.sample(n_train)
            return fresh_set.images, fresh_set.label_maps

        return SegmentationData(
            ds, None if val is None else (val.images, val.label_maps),
            epoch_data if fresh else None, source="generated canvases",
        )  # fmt: skip
    from cvtool.data.canvas_io import read_canvas_set
    from cvtool.data.datasets import stratified_split

    folder = Path(folder)
    train, test = read_canvas_set(folder, "train"), read_canvas_set(folder, "test")
    x, y = train.images, train.label_maps
    val = None
    if n_val:
        strata = np.array([lab.min() if len(lab) else -1 for lab in train.labels])
        tr, va = stratified_split(strata, min(n_val, len(x) // 2) or 1, seed)
        x, y, val = x[tr], y[tr], (x[va], y[va])
    ds = Dataset(folder.name, x, y, test.images, test.label_maps, _names(train.class_names))
    return SegmentationData(ds, val, None, source=str(folder))


def train_segmenter(
    data: SegmentationData | None = None,
    *,
    arch: str | None = None,
    weights: str | tuple = "auto",
    epochs: int = 12,
    batch_size: int = 32,
    optimizer: str = "adam",
    eta: float | None = 3e-3,
    seed: int | None = 0,
    init: str | None = "he",
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
    if "validation" in train_options:
        raise CvtoolError("The segmenter's validation set comes with its data; drop 'validation'.")
    result = train(model, ds, task=Segmentation(k, weight=weights), epochs=epochs,
                   batch_size=batch_size, optimizer=optimizer, eta=eta, seed=seed,
                   validation=data.validation, epoch_data=data.epoch_data,
                   **train_options)  # fmt: skip
    result.extra["data"] = data.source
    return result
