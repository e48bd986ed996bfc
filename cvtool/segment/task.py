"""Semantic segmentation as a training task: per-pixel log-likelihood, scored by mean IoU.

The network maps images (N, H, W, C) to logits (N, H, W, K) (an FCN: no dense
layer, so every output pixel is a classification of its receptive field); the
targets are label maps (N, H, W) of integers in 0..K-1, 0 being background on
cvtool's synthetic canvases. :class:`Segmentation` plugs into ``fit`` and
``train`` (:mod:`cvtool.nn.tasks`): the cost is
:class:`cvtool.nn.pixelwise.PixelLogLikelihood` (optional class weights and an
ignore label), and validation watches the mean IoU over classes, background
included, from the same confusion matrix ``cvtool iou seg`` uses
(:mod:`cvtool.boxes.masks`), so a trainer's test figures are the ``iou seg``
figures of its predictions.

:func:`class_weights` gives the balancing weights many segmentation codes use
(median frequency balancing, Eigen and Fergus 2015): background is most pixels,
and without weights a network first learns to predict background everywhere.
"""

from __future__ import annotations

import numpy as np

from cvtool.backend import to_numpy
from cvtool.boxes.masks import confusion_matrix, metrics_from_confusion
from cvtool.errors import CvtoolError, check_int
from cvtool.nn.activations import Softmax
from cvtool.nn.losses import l2_penalty
from cvtool.nn.pixelwise import PixelLogLikelihood

EVAL_BATCH = 128  # images per chunk when scoring: (128, 64, 64, 11) logits are 23 MB


def class_weights(label_maps, num_classes: int) -> tuple[float, ...]:
    """Median-frequency balancing: w_c = median(f) / f_c, f_c = the share of pixels of class c
    among the images where c appears (1 for classes that never appear).

    >>> [round(w, 3) for w in class_weights(np.array([[[0, 0, 0, 1]]]), 2)]
    [0.667, 2.0]
    """
    y = np.asarray(label_maps)
    n = y.reshape(len(y), -1)
    counts = np.stack([(n == c).sum(axis=1) for c in range(num_classes)])  # (K, N)
    present = counts > 0
    pixels = np.where(present, n.shape[1], 0).sum(axis=1)  # pixels of images holding c
    freq = np.where(pixels > 0, counts.sum(axis=1) / np.maximum(pixels, 1), np.nan)
    med = np.nanmedian(freq)
    return tuple(float(med / f) if f == f and f > 0 else 1.0 for f in freq)


def parse_weights(text: str) -> str | tuple[float, ...]:
    """'auto' | 'none' | 'w0,w1,...' (the --class-weights option) -> 'auto', 'none' or floats."""
    text = text.strip().lower()
    if text in ("auto", "none"):
        return text
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if not values or any(not (v >= 0 and v < float("inf")) for v in values):
        raise CvtoolError(
            "The 'class-weights' parameter must be auto, none or numbers >= 0 separated by "
            f"commas (w0,w1,...). Got {text!r} instead."
        )
    return values


class Segmentation:
    """Label maps against per-pixel logits; validation watches the mean IoU.

    Parameters
    ----------
    num_classes : K, background included.
    weight : one weight per class, or None.
    ignore_index : a label that counts nowhere (e.g. 255 for unlabelled pixels).
    """

    score = "mean_iou"
    running = False  # (N, H, W, K) outputs are too big to keep: step costs are added up
    fused = None  # the loss reads logits; the network ends without a softmax layer
    name = PixelLogLikelihood.name

    def __init__(self, num_classes: int, *, weight=None, ignore_index: int | None = None):
        self.num_classes = check_int("num_classes", num_classes, low=2)
        if weight is not None and len(weight) != num_classes:
            raise CvtoolError(
                f"The 'class-weights' parameter needs one weight per class ({num_classes}). "
                f"Got {len(weight)} instead."
            )
        self.loss = PixelLogLikelihood(weight, ignore_index, check=False)
        self.ignore_index = ignore_index

    def config(self) -> dict:
        return {"cost": self.name, "task": "segmentation", "num_classes": self.num_classes,
                "class_weights": self.loss.weight, "ignore_index": self.ignore_index}  # fmt: skip

    def targets(self, model, y):
        """Label maps (N, H, W) as int32 on the model's device, checked once on the host."""
        y = np.asarray(to_numpy(y))
        if y.dtype.kind not in "iu":
            raise CvtoolError(f"Label maps must hold integers; got dtype {y.dtype}.")
        valid = y if self.ignore_index is None else y[y != self.ignore_index]
        if valid.size and (int(valid.min()) < 0 or int(valid.max()) >= self.num_classes):
            bad = int(valid.max()) if int(valid.max()) >= self.num_classes else int(valid.min())
            raise CvtoolError(
                f"Label maps must hold classes 0..{self.num_classes - 1}"
                + ("" if self.ignore_index is None else f" or {self.ignore_index}")
                + f". Got {bad}."
            )
        return model.xp.asarray(y.astype(np.int32))

    def fn(self, a, Y) -> float:
        return self.loss.fn(a, Y)

    def grad(self, a, Y):
        # The pixel loss's delta is the gradient of the batch mean; fit divides by
        # the batch size itself, so it gets the per-example form.
        return self.loss.delta(a, Y, scale=len(a))

    def loss_and_grad(self, a, Y):
        """(fn(a, Y), grad(a, Y)) sharing one softmax (the training loop's step cost); the
        cost is a 0-d array on a's device, so a step makes no host transfer."""
        return self.loss.value_and_delta(a, Y, scale=len(a), on_device=True)

    def check(self, model, dataset) -> None:
        h, w = model.input_shape[:2]
        want = (h, w, self.num_classes)
        if tuple(model.output_shape) != want:
            raise CvtoolError(
                f"A segmenter must output {want} per image (one logit per class at every "
                f"input pixel). The network outputs {tuple(model.output_shape)}; end it with "
                f"conv:{self.num_classes}x1 at the input's size."
            )

    def scores(self, model, x, Y, batch: int = EVAL_BATCH):
        """(summed cost, confusion matrix) over prepared inputs x and targets Y, in chunks."""
        xp, k = model.xp, self.num_classes
        cm = xp.zeros((k, k), dtype=xp.int64)
        cost = 0.0
        for i in range(0, len(x), batch):
            a = model.forward(x[i : i + batch])
            yb = Y[i : i + batch]
            cost += self.loss.fn(a, yb) * len(a)
            cm += confusion_matrix(a.argmax(axis=-1), yb, k, self.ignore_index)
        return cost, cm

    def measure(self, model, x, y, Y, lmbda: float, n_train: int) -> dict:
        cost, cm = self.scores(model, x, Y)
        m = metrics_from_confusion(cm)
        return {"cost": cost / max(len(x), 1) + l2_penalty(model._weights(), lmbda, n_train),
                "mean_iou": m["mean_iou"], "pixel_accuracy": m["pixel_accuracy"]}  # fmt: skip

    def evaluate(self, model, x, y) -> dict:
        """The ``iou seg`` figures of the network's label maps on (x, y), and the cost."""
        x = model.prepare(x)
        cost, cm = self.scores(model, x, self.targets(model, y))
        m = metrics_from_confusion(cm)
        per_class = [None if v != v else float(v) for v in m["per_class_iou"]]
        digits = [v for v in per_class[1:] if v is not None]
        return {
            "cost": cost / max(len(x), 1),
            "mean_iou": m["mean_iou"],
            "mean_iou_objects": float(np.mean(digits)) if digits else None,
            "pixel_accuracy": m["pixel_accuracy"],
            "mean_class_accuracy": m["mean_class_accuracy"],
            "per_class_iou": per_class,
            "n": len(x),
        }


def _maps(model, images, probabilities: bool, batch: int = EVAL_BATCH):
    """Label maps (N, H, W) uint8, and class probabilities (N, H, W, K) float32 or None."""
    x = model.prepare(images)
    softmax = Softmax()
    maps, probs = [], []
    for i in range(0, len(x), batch):
        z = model.forward(x[i : i + batch])  # (m, H, W, K) logits
        maps.append(to_numpy(z.argmax(axis=-1)).astype(np.uint8))
        if probabilities:
            probs.append(to_numpy(softmax.forward(z)).astype(np.float32))
    empty = np.zeros((0, *model.input_shape[:2]), np.uint8)
    return (np.concatenate(maps) if maps else empty,
            np.concatenate(probs) if probs else None)  # fmt: skip


def predict_maps(model, x, batch: int = EVAL_BATCH) -> np.ndarray:
    """Label maps (N, H, W) uint8 (argmax over classes) of images x, on the host."""
    return _maps(model, x, False, batch)[0]


def segmenter_of(model) -> Segmentation:
    """The Segmentation task a saved segmenter was trained with (its file's metadata)."""
    cfg = model.meta.get("training", {})
    if model.meta.get("task") != "segmentation":
        kind = model.meta.get("task", "classification")
        raise CvtoolError(
            f"This model is a {kind} model, not a segmenter; 'cvtool segment' runs models from "
            "'cvtool train-segmenter'."
        )
    return Segmentation(cfg["num_classes"], weight=cfg.get("class_weights"),
                        ignore_index=cfg.get("ignore_index"))  # fmt: skip


def segment(model, images, batch: int = EVAL_BATCH):
    """(label maps (N, H, W) uint8, class probabilities (N, H, W, K) float32) on the host,
    of a saved segmenter (refused for other models)."""
    segmenter_of(model)
    return _maps(model, images, True, batch)
