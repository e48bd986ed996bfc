"""Augmentation of labelled training sets: boxes and label maps follow their images.

A detector or segmenter trains on images whose targets are geometric, so the
targets must move with the pixels. Each image gets one random affine matrix
(:func:`~cvtool.augment.params.sample_params`, the same conventions as the rest
of :mod:`cvtool.augment`); then

- the image is resampled bilinearly, pixels moved in from outside are 0 (the
  canvases' black background);
- boxes go through the same forward matrix (:func:`~cvtool.augment.boxes.transform_boxes`):
  the hull of the moved corners, clipped to the image; a box keeps less than
  ``min_visibility`` of its area inside the image (albumentations' visibility:
  clipped area / area of the moved box) is dropped with its class;
- label maps are resampled with NEAREST interpolation through the same
  inverse matrix (no blended, meaningless classes), pixels moved in from
  outside get ``fill_label`` (0, background: the image there is background too).

The defaults suit cvtool's digit canvases: shifts up to a quarter of the
image each way (16 px = two grid cells on 64x64 canvases), zoom 0.9..1.1, no
rotation (a rotated box's hull is no longer tight) and NO flips (a mirrored 2
is not a 2).

Training sets are augmented a whole epoch at a time (``fit``'s ``transform``
sees only the images of a mini-batch, not their targets): :func:`augment_training_data`
replaces the first epoch's training set by an augmented copy and wraps the
per-epoch data (fresh canvases, or the same fixed set) so that every epoch is
freshly augmented. Validation and test sets are never augmented. The work runs
on the host, where the labels live, before the epoch's images go to the device.

Left out: rotation by default, colour changes, mosaics and mix-ups.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from cvtool.augment.boxes import transform_boxes
from cvtool.augment.params import (
    affine_matrices,
    as_probability,
    make_ranges,
    sample_params,
)
from cvtool.augment.warp import warp_affine
from cvtool.backend import host_rng
from cvtool.boxes.core import convert
from cvtool.errors import CvtoolError, check_choice, check_int, check_number

KINDS = ("boxes", "maps")
MIN_VISIBILITY = 0.25  # keep a box when at least a quarter of it stays in the image
DEFAULTS = {"shift": 0.25, "zoom": 0.1, "rotation": 0.0, "hflip": 0.0}


def augment_settings(
    *,
    shift: float = DEFAULTS["shift"],
    zoom: float = DEFAULTS["zoom"],
    rotation: float = DEFAULTS["rotation"],
    hflip: float = DEFAULTS["hflip"],
    min_visibility: float = MIN_VISIBILITY,
    fill_label: int = 0,
) -> dict:
    """The validated settings of a labelled augmentation (what a model's meta records).

    Parameters
    ----------
    shift : the largest shift each way, as a fraction of the width / height, in [0, 1].
    zoom : the zoom spread d (factors 1-d..1+d), 0 <= d < 1.
    rotation : the largest rotation each way, in degrees.
    hflip : the probability of a horizontal flip, in [0, 1].
    min_visibility : boxes keeping less of their area in the image are dropped, in [0, 1].
    fill_label : the label of pixels moved into a label map from outside, >= 0.

    >>> augment_settings()["zoom"]
    0.1
    """
    return {
        "shift": check_number("shift", shift, low=0, high=1, hint="A fraction of the image."),
        "zoom": check_number(
            "zoom", zoom, low=0, high=1, high_open=True, hint="A spread d gives factors 1-d..1+d."
        ),
        "rotation": check_number("rotation", rotation, low=0, high=180),
        "hflip": as_probability("flip", hflip),
        "min_visibility": check_number("min_visibility", min_visibility, low=0, high=1),
        "fill_label": check_int("fill_label", fill_label, low=0),
    }


def augment_option(augment: bool, flip: float = 0.0) -> dict | None:
    """The settings the trainers' ``--augment`` and ``--flip`` ask for (None: no augmentation).

    ``flip`` is checked even without ``augment``, and refused there.
    """
    hflip = as_probability("flip", flip)
    if not augment:
        if hflip:
            raise CvtoolError("The 'flip' option works with --augment; add --augment.")
        return None
    return augment_settings(hflip=hflip)


def _ranges(settings: dict, image_shape):
    return make_ranges(rotation=settings["rotation"], zoom=settings["zoom"],
                       translate=settings["shift"], translate_unit="fraction",
                       hflip=settings["hflip"], image_shape=image_shape)  # fmt: skip


def augment_boxes(images, labels, params, min_visibility: float = MIN_VISIBILITY):
    """Images with their boxes through each image's parameters.

    Parameters
    ----------
    images : (N, H, W[, C]) uint8 or float host images.
    labels : N pairs (boxes (K_i, 4) xywh in pixel-edge coordinates, classes (K_i,)).
    params : dict name -> (N,) of :data:`~cvtool.augment.params.PARAM_NAMES`.
    min_visibility : boxes keeping less of their area inside the image are dropped.

    Returns
    -------
    images : (N, H, W[, C]), bilinear, constant 0 fill.
    labels : N pairs (boxes (K'_i, 4) float64 xywh, clipped to the image; classes (K'_i,)).
    """
    images = np.asarray(images)
    if len(labels) != len(images):
        raise CvtoolError(f"{len(images)} images but {len(labels)} box lists.")
    forward, inverse = affine_matrices(params, images.shape[1:])
    out = warp_affine(images, inverse, interpolation="bilinear", fill="constant", cval=0)
    boxes = [np.asarray(b, np.float64).reshape(-1, 4) for b, _ in labels]
    counts = np.array([len(b) for b in boxes], np.int64)
    xywh = np.concatenate(boxes) if boxes else np.zeros((0, 4))  # (B, 4)
    xyxy = convert(xywh, "xywh", "xyxy")
    owner = np.repeat(np.arange(len(images)), counts)  # image of each box
    moved, keep, _ = transform_boxes(xyxy, forward[owner], images.shape[1:], min_visibility)
    moved = convert(moved, "xyxy", "xywh")
    ends = np.cumsum(counts)[:-1]
    new = []
    for b, k, (_, classes) in zip(np.split(moved, ends), np.split(keep, ends), labels,
                                  strict=True):  # fmt: skip
        new.append((b[k], np.asarray(classes)[k]))
    return out, new


def augment_maps(images, maps, params, fill_label: int = 0):
    """Images bilinear and their label maps NEAREST through the same matrices.

    Parameters
    ----------
    images : (N, H, W[, C]) uint8 or float host images.
    maps : (N, H, W) integer label maps.
    params : dict name -> (N,) of :data:`~cvtool.augment.params.PARAM_NAMES`.
    fill_label : the label of pixels moved in from outside the map.

    Returns
    -------
    images (N, H, W[, C]) with constant 0 fill, maps (N, H, W) of maps' dtype.
    """
    images, maps = np.asarray(images), np.asarray(maps)
    if maps.shape != images.shape[:3]:
        raise CvtoolError(f"Label maps {maps.shape} must match the images {images.shape[:3]}.")
    _, inverse = affine_matrices(params, images.shape[1:])
    out = warp_affine(images, inverse, interpolation="bilinear", fill="constant", cval=0)
    out_maps = warp_affine(maps, inverse, interpolation="nearest", fill="constant",
                           cval=fill_label)  # fmt: skip
    return out, out_maps


def labelled_augmentation(kind: str, seed: int | None, image_shape, **settings):
    """An ``augment(x, y) -> (x, y)`` for whole training sets of one kind of labels.

    Parameters
    ----------
    kind : 'boxes' (y: (boxes xywh, classes) pairs) or 'maps' (y: (N, H, W) label maps).
    seed : seeds one host generator; every call draws new parameters from it, so
        the same seed gives the same sequence of augmented epochs.
    image_shape : (H, W[, C]) of the images.
    settings : :func:`augment_settings`' keywords.

    Returns
    -------
    augment : callable (x, y) -> (x, y), host arrays in and out.
    settings : dict, the validated settings (for the model's metadata).
    """
    check_choice("kind", kind, KINDS)
    settings = augment_settings(**{k: v for k, v in settings.items() if k != "labels"})
    ranges = _ranges(settings, image_shape)
    rng = host_rng(None if seed is None else [seed, 7])

    def augment(x, y):
        params = sample_params(len(x), ranges, rng)
        if kind == "boxes":
            return augment_boxes(x, y, params, settings["min_visibility"])
        return augment_maps(x, y, params, settings["fill_label"])

    kept = ("min_visibility",) if kind == "boxes" else ("fill_label",)
    shown = {k: v for k, v in settings.items() if k in DEFAULTS or k in kept}
    return augment, {**shown, "labels": kind}


def augment_training_data(data, augment):
    """A trainer's data (``TrainingData``) with every training epoch augmented.

    The first epoch's training set is replaced by an augmented copy; later
    epochs augment what the data's ``epoch_data`` draws (fresh canvases), or
    the original fixed set again. Validation and test sets stay as they are.
    """
    ds = data.dataset
    x0, y0 = ds.x_train, ds.y_train
    x1, y1 = augment(x0, y0)
    fresh = data.epoch_data

    def epoch_data(epoch):
        x, y = fresh(epoch) if fresh is not None else (x0, y0)
        return augment(x, y)

    return dataclasses.replace(
        data, dataset=dataclasses.replace(ds, x_train=x1, y_train=y1), epoch_data=epoch_data
    )


def augmented_training_data(data, augment, kind: str, seed: int | None, meta: dict):
    """What the detector's and segmenter's trainers do with their ``augment`` argument.

    `augment`: True (the defaults), a dict of :func:`augment_settings` keywords,
    or False / None (`data` is returned as it is). The settings in use go into
    ``meta["augment"]`` (the model's metadata); `kind` is 'boxes' or 'maps'.
    """
    if not augment:
        return data
    settings = {} if augment is True else augment
    fn, meta["augment"] = labelled_augmentation(kind, seed, data.dataset.image_shape, **settings)
    return augment_training_data(data, fn)
