"""The entry points: augment a training batch or a data set's training split, and preview it.

:func:`random_affine_batch` samples and applies one matrix per image (train-cnn
uses it per mini-batch); :func:`augment_dataset` runs one recipe (a replayed
parameters file, a preset or sampled ranges) over a Dataset's training split
and moves its boxes; :func:`preview_grid` pictures originals beside their
augmentations. The pieces live in ``params.py``, ``warp.py`` and ``boxes.py``.

Left out: the test split, which is never augmented (it measures the model).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cvtool.augment.boxes import Boxes, boxes_for_outputs
from cvtool.augment.params import (
    FLIPS,
    PARAM_NAMES,
    Ranges,
    affine_matrices,
    expand_params,
    make_ranges,
    nielsen_params,
    sample_params,
)
from cvtool.augment.warp import FILL_MODES, INTERPOLATIONS, warp_affine
from cvtool.backend import array_module, free_memory, synchronize, to_numpy
from cvtool.data.core import Dataset
from cvtool.errors import CvtoolError, check_choice
from cvtool.fileio import atomic_path

PRESETS = ("nielsen-expand",)


# ---------------------------------------------------------------- batches


def apply_params(x, params, *, interpolation="bilinear", fill="constant", cval=0.0, xp=None):
    """Augment x (N, H, W[, C]) with one parameter set per image (dict of (N,) arrays)."""
    xp = array_module(x) if xp is None else xp
    _, inverse = affine_matrices(params, tuple(x.shape[1:]))
    return warp_affine(x, inverse, interpolation=interpolation, fill=fill, cval=cval, xp=xp)


def random_affine_batch(
    x,
    rng: np.random.Generator,
    *,
    rotation=0.0,
    shift=0.0,
    zoom=0.0,
    stretch_x=0.0,
    stretch_y=0.0,
    shear=0.0,
    hflip=False,
    vflip=False,
    interpolation: str = "bilinear",
    fill: str = "constant",
    cval: float = 0.0,
    xp=None,
    return_params: bool = False,
):
    """Random affine augmentation of a batch, one matrix per image (for training loops).

    Parameters
    ----------
    x : (N, H, W) or (N, H, W, C) uint8 or float images, NumPy or CuPy.
    rng : NumPy Generator; the parameters are drawn from it on the host.
    rotation : degrees, v -> uniform(-v, v) or (low, high); positive = counter-clockwise.
    shift : pixels, v -> uniform(-v, v) for x and y independently, or (low, high).
    zoom : d -> uniform(1 - d, 1 + d) or (low, high); > 1 magnifies.
    stretch_x, stretch_y, shear : as zoom (per axis) and as rotation (x-shear angle).
    hflip, vflip : flip probability (True = 0.5).
    interpolation, fill, cval : see :func:`warp_affine`.
    return_params : also return the sampled parameters (dict of (N,) arrays).

    Returns
    -------
    x_aug with x's shape, dtype and module (and the parameters if asked).
    """
    t = RandomAffine(
        rng, rotation=rotation, shift=shift, zoom=zoom, stretch_x=stretch_x, stretch_y=stretch_y,
        shear=shear, hflip=hflip, vflip=vflip, interpolation=interpolation, fill=fill, cval=cval,
        xp=xp,
    )  # fmt: skip
    return t(x, return_params=return_params)


class RandomAffine:
    """:func:`random_affine_batch` as a transform for training loops (``fit(transform=...)``).

    The ranges and options are checked once, here; each call samples one
    matrix per image on the host from ``rng``, uploads them (one (N, 2, 3)
    array) and resamples on the images' device: no device-to-host transfer per
    batch. Parameters as :func:`random_affine_batch`.
    """

    def __init__(self, rng: np.random.Generator, *, rotation=0.0, shift=0.0, zoom=0.0,
                 stretch_x=0.0, stretch_y=0.0, shear=0.0, hflip=False, vflip=False,
                 interpolation: str = "bilinear", fill: str = "constant", cval: float = 0.0,
                 xp=None):  # fmt: skip
        self.rng, self.xp = rng, xp
        self.ranges = make_ranges(
            rotation=rotation, zoom=zoom, stretch_x=stretch_x, stretch_y=stretch_y, shear=shear,
            translate=shift, hflip=hflip, vflip=vflip,
        )  # fmt: skip
        self.options = {
            "interpolation": check_choice("interpolation", interpolation, INTERPOLATIONS),
            "fill": check_choice("fill", fill, FILL_MODES),
            "cval": cval,
        }

    def __call__(self, x, return_params: bool = False):
        params = sample_params(len(x), self.ranges, self.rng)
        out = apply_params(x, params, xp=self.xp, **self.options)
        return (out, params) if return_params else out


def nielsen_expand(x, xp=None):
    """Nielsen's five-fold expansion: (N, H, W[, C]) -> (5N, ...), grouped per image.

    Each image, then copies shifted by one pixel down, up, right and left, the
    vacated row or column zero. Returns (x_out, source (5N,)).
    """
    source, params = nielsen_params(len(x))
    xp = array_module(x) if xp is None else xp
    x_rep = xp.asarray(x)[xp.asarray(source)]
    return apply_params(
        x_rep, params, interpolation="nearest", fill="constant", cval=0, xp=xp
    ), source


# ---------------------------------------------------------------- data sets and previews


@dataclass
class AugmentResult:
    """An augmented data set and how it was made (see :func:`augment_dataset`)."""

    dataset: object  # cvtool.data.datasets.Dataset: train augmented, test unchanged
    source: np.ndarray  # (M,) training image each output came from
    params: dict[str, np.ndarray]  # (M,) per parameter
    boxes: Boxes | None
    dropped_boxes: int
    seconds: float  # wall time of the resampling (device synchronised)
    settings: dict  # the interpolation, fill and cval used

    def summary(self) -> dict:
        """Counts, the observed parameter ranges and the time, for reports."""
        p = self.params
        observed = {
            k: [float(np.min(p[k])), float(np.max(p[k]))] if len(p[k]) else None
            for k in PARAM_NAMES
            if k not in FLIPS
        }
        doc = {
            "inputs": int(len(np.unique(self.source))),
            "outputs": int(len(self.source)),
            "hflipped": int(np.sum(p["hflip"])),
            "vflipped": int(np.sum(p["vflip"])),
            "observed_ranges": observed,
            "seconds": self.seconds,
            "images_per_second": len(self.source) / self.seconds if self.seconds > 0 else None,
            **self.settings,
        }
        if self.boxes is not None:
            doc["boxes_out"] = len(self.boxes)
            doc["boxes_dropped"] = self.dropped_boxes
        return doc


def augment_dataset(
    ds,
    *,
    ranges: Ranges | None = None,
    preset: str | None = None,
    replay: tuple[np.ndarray, dict[str, np.ndarray], dict] | None = None,
    copies: int = 1,
    keep_original: bool = False,
    seed: int | None = 0,
    interpolation: str = "bilinear",
    fill: str = "constant",
    cval: float = 0.0,
    xp=np,
    boxes: Boxes | None = None,
    min_visibility: float = 0.0,
) -> AugmentResult:
    """Augment the training split of a Dataset; the test split is left untouched.

    Exactly one recipe applies: `replay` (source, params, settings) read from a
    file (its settings, when present, replace interpolation / fill / cval), else
    `preset` ('nielsen-expand'), else `ranges` sampled `copies` times per image
    with the generator ``np.random.default_rng(seed)``. Boxes (indices into the
    training images) follow their images.
    """
    n = len(ds.x_train)
    if replay is not None:
        source, params, recorded = replay
        interpolation = recorded.get("interpolation", interpolation)
        fill = recorded.get("fill", fill)
        cval = float(recorded.get("cval", cval))
        if len(source) and source.max() >= n:
            raise CvtoolError(
                f"The replayed parameters refer to image {source.max()}; the data has {n}."
            )
    elif preset is not None:
        check_choice("preset", preset, PRESETS)
        source, params = nielsen_params(n)
        interpolation, fill, cval = "nearest", "constant", 0.0
    else:
        source, params = expand_params(
            n, ranges or Ranges(), copies, keep_original, np.random.default_rng(seed)
        )
    forward, inverse = affine_matrices(params, ds.image_shape)
    t0 = time.perf_counter()
    x_dev = xp.asarray(ds.x_train)[xp.asarray(source)]
    x_aug = warp_affine(x_dev, inverse, interpolation=interpolation, fill=fill, cval=cval, xp=xp)
    synchronize(xp)
    seconds = time.perf_counter() - t0
    out = Dataset(
        ds.name + "-augmented",
        to_numpy(x_aug),
        ds.y_train[source],
        ds.x_test,
        ds.y_test,
        ds.class_names,
    )
    kept, dropped = (None, 0)
    if boxes is not None:
        kept, dropped = boxes_for_outputs(boxes, source, forward, ds.image_shape, min_visibility)
    settings = {"interpolation": interpolation, "fill": fill, "cval": cval}
    return AugmentResult(out, source, params, kept, dropped, seconds, settings)


def preview_grid(
    originals: np.ndarray,
    augmented: np.ndarray,
    source: np.ndarray,
    rows: int = 8,
    scale: int = 3,
    boxes: Boxes | None = None,
    original_boxes: Boxes | None = None,
) -> np.ndarray:
    """An RGB uint8 picture: each row an original image, then its augmentations.

    Parameters
    ----------
    originals : (N, H, W[, C]) uint8 training images.
    augmented : (M, H, W[, C]) uint8 outputs; source (M,) their originals.
    rows : how many originals to show (the first ones that have outputs).
    scale : integer up-scaling (nearest) so 28x28 digits are visible.
    boxes, original_boxes : boxes of the outputs / of the originals to draw (red), optional.
    """

    def rgb(img):
        img = img if img.ndim == 3 else img[..., None]
        return np.repeat(img, 3, axis=2) if img.shape[2] == 1 else img[..., :3]

    h, w = originals.shape[1:3]
    shown = np.unique(source)[:rows]
    per_row = max(int((source == s).sum()) for s in shown) if len(shown) else 0
    gap = 2
    cell_h, cell_w = h * scale + gap, w * scale + gap
    canvas = np.full((len(shown) * cell_h + gap, (per_row + 1) * cell_w + 3 * gap, 3), 96, np.uint8)
    for r, s in enumerate(shown):
        outs = np.flatnonzero(source == s)
        tiles = [(originals[s], original_boxes, s)] + [(augmented[o], boxes, o) for o in outs]
        for c, (img, drawn, i) in enumerate(tiles):
            tile = rgb(img).repeat(scale, 0).repeat(scale, 1).copy()
            if drawn is not None:
                for b in drawn.xyxy[drawn.image == i]:
                    x1, y1, x2, y2 = (np.round(b * scale).astype(int) - [0, 0, 1, 1]).clip(
                        0, [w * scale - 1, h * scale - 1] * 2
                    )
                    tile[y1, x1 : x2 + 1] = tile[y2, x1 : x2 + 1] = (255, 0, 0)
                    tile[y1 : y2 + 1, x1] = tile[y1 : y2 + 1, x2] = (255, 0, 0)
            y0 = gap + r * cell_h
            x0 = gap + c * cell_w + (3 * gap if c else 0)  # a wider gap after the original
            canvas[y0 : y0 + h * scale, x0 : x0 + w * scale] = tile
    return canvas


def write_preview(path: str | Path, picture: np.ndarray) -> None:
    """Save an RGB uint8 picture with Pillow (format from the extension), atomically."""
    from PIL import Image  # Pillow is slow to import and only needed here

    try:
        with atomic_path(path, suffix=".png") as tmp:
            Image.fromarray(picture).save(tmp)
    except (ValueError, KeyError) as exc:  # Pillow: unknown extension
        raise CvtoolError(f"Cannot write the preview {path}: {exc}") from None


def check_memory(n: int, copies: int, keep_original: bool, image_shape) -> None:
    """Refuse, before any work, an augmented set larger than the free memory (names --copies).

    The estimate is 5 bytes a pixel: the uint8 output and a float32 working copy.
    """
    images = n * (copies + int(keep_original))
    need = images * int(np.prod(image_shape)) * 5
    have = free_memory(np)
    if have is not None and need > have:
        raise CvtoolError(
            f"Not enough memory: {images:,} augmented images need about {need / 2**30:.1f} GiB "
            f"and {have / 2**30:.1f} GiB is free; lower --copies."
        )
