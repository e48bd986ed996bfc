"""Image + mask folders, the layout of common segmentation datasets.

A folder holds ``images/`` and ``masks/`` with the same file names (PNG or
JPEG images; PNG label maps, palette or grey, pixel value = class), either
directly or split into ``train/`` and ``test/`` sub-folders::

    data/images/train/0001.png   data/masks/train/0001.png
    data/images/test/0107.png    data/masks/test/0107.png

:func:`read_pairs` reads one split into arrays and checks what a trainer
relies on: every image has a mask of its size and every mask an image, one
image size throughout. Labels are checked against the class count by the
segmentation task.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cvtool.errors import CvtoolError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def split_folders(root, split: str | None) -> tuple[Path, Path]:
    """(images folder, masks folder) of `split` ('train'/'test') or of the flat layout (None)."""
    root = Path(root)
    images, masks = root / "images", root / "masks"
    if not images.is_dir() or not masks.is_dir():
        raise CvtoolError(f"{root} needs images/ and masks/ folders (same file names in each).")
    if split is not None:
        images, masks = images / split, masks / split
    return images, masks


def has_splits(root) -> bool:
    """True when the folder uses images/train, images/test (else one flat set)."""
    return (Path(root) / "images" / "train").is_dir()


def read_pairs(root, split: str | None = None, channels: int = 1):
    """(images (N, H, W, C) uint8, label maps (N, H, W) uint8, names) of one split."""
    from PIL import Image, UnidentifiedImageError

    images_dir, masks_dir = split_folders(root, split)
    if not images_dir.is_dir():
        raise CvtoolError(f"No {images_dir} folder.")
    imgs = {p.stem: p for p in sorted(images_dir.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}
    masks = {p.stem: p for p in sorted(masks_dir.iterdir()) if p.suffix.lower() == ".png"} if (
        masks_dir.is_dir()) else {}  # fmt: skip
    if not imgs:
        raise CvtoolError(f"No images (.png/.jpg) in {images_dir}.")
    for name in imgs:
        if name not in masks:
            raise CvtoolError(f"The image {imgs[name]} has no mask {masks_dir / (name + '.png')}.")
    extra = sorted(set(masks) - set(imgs))
    if extra:
        raise CvtoolError(f"The mask {masks[extra[0]]} has no image in {images_dir}.")
    xs, ys = [], []
    for name in imgs:
        try:
            with Image.open(imgs[name]) as im:
                x = np.asarray(im.convert("L" if channels == 1 else "RGB"), np.uint8)
            with Image.open(masks[name]) as im:
                y = np.asarray(im if im.mode in ("P", "L") else im.convert("L"), np.uint8)
        except (OSError, UnidentifiedImageError) as exc:
            raise CvtoolError(f"Cannot read {name}: {' '.join(str(exc).split())}") from None
        if y.shape != x.shape[:2]:
            raise CvtoolError(
                f"The mask of {imgs[name].name} is {y.shape[1]}x{y.shape[0]}, its image "
                f"{x.shape[1]}x{x.shape[0]}; a mask must be the size of its image."
            )
        if xs and x.shape != xs[0].shape:
            raise CvtoolError(
                f"{imgs[name].name} is {x.shape[1]}x{x.shape[0]}, the first image "
                f"{xs[0].shape[1]}x{xs[0].shape[0]}; every image must have one size."
            )
        xs.append(x)
        ys.append(y)
    x = np.stack(xs)
    return (x[..., None] if x.ndim == 3 else x), np.stack(ys), list(imgs)
