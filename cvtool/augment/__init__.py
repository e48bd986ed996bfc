"""Seeded, batched geometric augmentation of images and of their boxes.

Every image gets ONE affine matrix, composed from parameters sampled per image
from ranges: horizontal / vertical flip, rotation, zoom, stretch (x and y
scale), shear and translation. The whole batch is then resampled at once by a
gather at computed coordinates (no Python loop per image), with bilinear or
nearest interpolation and a fill mode, on NumPy or CuPy (``xp``).

Conventions (the same as ``scipy.ndimage.affine_transform``):

- Pixel centres sit at integer coordinates: column ``j`` is ``x = j``, row ``i``
  is ``y = i``; ``y`` points down. Matrices act on ``(x, y, 1)``.
- Rotation, zoom, stretch, shear and flips act about the image centre
  ``((W - 1) / 2, (H - 1) / 2)``. Positive rotation is COUNTER-CLOCKWISE as the
  image is displayed, so rotating by 90 degrees equals ``np.rot90(image)``.
- Zoom > 1 magnifies. Shear is an x-shear by an angle: ``x' = x + tan(shear) y``.
  Translation is in pixels, positive moves the content right / down.
- Forward matrix (input -> output) ``T(c + t) R Sh S F T(-c)``; resampling uses
  its inverse (output -> input), built in closed form so that identity
  parameters, flips and whole-pixel shifts are exact.
- Fill modes, in scipy's names: ``constant`` = ``grid-constant`` (outside pixels
  are ``cval`` and take part in the interpolation), ``nearest`` = ``nearest``,
  ``reflect`` = ``reflect`` (d c b a | a b c d | d c b a), ``wrap`` =
  ``grid-wrap`` (periodic).
- Boxes are ``(x1, y1, x2, y2)`` in pixel-EDGE coordinates (the image spans
  ``[0, W] x [0, H]``, pixel ``j`` covers ``[j, j + 1]``), as in COCO / albumentations.

For a training loop (train-cnn uses this)::

    rng = np.random.default_rng(seed)
    x_aug = random_affine_batch(x, rng, rotation=10, shift=2, zoom=0.1, hflip=0.5, xp=xp)

``x`` is (N, H, W) or (N, H, W, C), uint8 or float, NumPy or CuPy; the result
has the same shape, dtype and array module. Parameters are sampled on the host
from ``rng`` (a NumPy Generator), so a seed gives the same result everywhere.

Detection and segmentation training sets, whose boxes or label maps must
follow their images, are augmented by ``labelled`` (whole epochs, boxes
through the forward matrices, label maps with nearest interpolation).

Left out: perspective and elastic transforms, colour / intensity changes,
bicubic interpolation, instance masks and keypoints.

Modules: ``params`` (ranges, sampling, matrices, parameters files), ``warp``
(the batched resampling kernels), ``boxes`` (boxes through the matrices, box
files), ``api`` (batches, data sets, previews), ``labelled`` (training sets with
boxes or label maps). Everything public is
re-exported here, so ``from cvtool.augment import random_affine_batch`` works.
"""

from __future__ import annotations

from cvtool.augment.api import (
    PRESETS,
    AugmentResult,
    RandomAffine,
    apply_params,
    augment_dataset,
    check_memory,
    nielsen_expand,
    preview_grid,
    random_affine_batch,
    write_preview,
)
from cvtool.augment.boxes import (
    Boxes,
    boxes_for_outputs,
    read_boxes,
    transform_boxes,
    write_boxes,
)
from cvtool.augment.labelled import (
    augment_boxes,
    augment_maps,
    augment_option,
    augment_settings,
    augment_training_data,
    augmented_training_data,
    labelled_augmentation,
)
from cvtool.augment.params import (
    PARAM_NAMES,
    SETTINGS,
    Ranges,
    affine_matrices,
    as_probability,
    as_range,
    expand_params,
    identity_params,
    make_ranges,
    nielsen_params,
    params_to_lines,
    read_params,
    sample_params,
    write_params,
)
from cvtool.augment.warp import (
    FILL_MODES,
    INTERPOLATIONS,
    warp_affine,
)

__all__ = [
    "check_memory",
    "AugmentResult",
    "Boxes",
    "FILL_MODES",
    "INTERPOLATIONS",
    "PARAM_NAMES",
    "PRESETS",
    "RandomAffine",
    "Ranges",
    "SETTINGS",
    "affine_matrices",
    "apply_params",
    "augment_boxes",
    "augment_maps",
    "augment_option",
    "augment_settings",
    "augment_training_data",
    "as_probability",
    "as_range",
    "augment_dataset",
    "boxes_for_outputs",
    "expand_params",
    "identity_params",
    "augmented_training_data",
    "labelled_augmentation",
    "make_ranges",
    "nielsen_expand",
    "nielsen_params",
    "params_to_lines",
    "preview_grid",
    "random_affine_batch",
    "read_boxes",
    "read_params",
    "sample_params",
    "transform_boxes",
    "warp_affine",
    "write_boxes",
    "write_params",
    "write_preview",
]
