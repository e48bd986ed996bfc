"""Image folders: one sub-folder of PNG/JPEG files per class (read and written with Pillow).

Layout, as Keras' ``image_dataset_from_directory`` and torchvision's
``ImageFolder`` expect::

    root/train/<class>/*.png     root/test/<class>/*.png     (two splits)
    root/<class>/*.png                                       (everything is train)

When ``root/train`` exists the folder has splits (``test/`` optional);
otherwise every class folder under ``root`` is training data and the test
split is empty. Classes are the sub-folder names in sorted order (label 0 is
the first), the union over both splits; folders named ``N-name`` with N
exactly 0..K-1 (what the writer makes) give label N and class ``name``. Files ending in .png, .jpg or .jpeg
(any case) are images; other files and hidden entries are ignored.

Images are grey (H, W) when every file is grey (Pillow modes 1, L, LA, I, I;16),
otherwise RGB (H, W, 3) with grey files repeated over three channels; alpha is
dropped. All images must have the same size: nothing is resized.

The writer stores PNG (lossless), ``NNNNN.png`` in the order of the arrays,
into a temporary folder renamed onto the target at the end. Class folders are
the class names made file-safe; when those do not sort in label order they
get a zero-padded label prefix (``0-T-shirt_top``; ``00-`` from 11 classes on), which
the reader strips again, so labels and names survive a round trip.
What is left out: resizing, nested class hierarchies, 16-bit depth.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from cvtool.data.core import Dataset, check_dataset, label_count
from cvtool.errors import CvtoolError
from cvtool.fileio import atomic_folder

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_GREY_MODES = {"1", "L", "LA", "I", "I;16"}


def _visible_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _image_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
    )


def _read_image(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            im = im.convert("L") if im.mode in _GREY_MODES else im.convert("RGB")
            return np.asarray(im, dtype=np.uint8)
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise CvtoolError(f"Cannot read image {path}: {reason}") from exc


def _stack(images: list[np.ndarray], files: list[Path], colour: bool) -> np.ndarray:
    out = []
    first = None
    for im, f in zip(images, files, strict=True):
        if colour and im.ndim == 2:
            im = np.repeat(im[:, :, None], 3, axis=2)  # (H, W) -> (H, W, 3)
        if first is None:
            first = (im.shape, f)
        elif im.shape[:2] != first[0][:2]:
            raise CvtoolError(
                f"Images differ in size: {f} is {im.shape[1]}x{im.shape[0]} but "
                f"{first[1]} is {first[0][1]}x{first[0][0]} (cvtool does not resize)."
            )
        out.append(im)
    return np.stack(out)


def read_folder(root: str | os.PathLike) -> Dataset:
    """Read an image folder (see the module docstring for the layout).

    Returns
    -------
    Dataset with x (N, H, W) or (N, H, W, 3) uint8, y (N,) int64, class names
    from the folder names.

    Raises
    ------
    CvtoolError
        Missing or empty folder, no class sub-folders, no images, an image
        Pillow cannot read, or images of different sizes.
    """
    root = Path(root)
    if not root.is_dir():
        raise CvtoolError(f"Folder not found: {root}")
    split_roots = {"train": root / "train", "test": root / "test"}
    if not split_roots["train"].is_dir():
        split_roots = {"train": root, "test": None}
    class_dirs = {
        s: (_visible_dirs(d) if d is not None and d.is_dir() else [])
        for s, d in split_roots.items()
    }
    classes = sorted({d.name for dirs in class_dirs.values() for d in dirs})
    if not classes:
        raise CvtoolError(
            f"{root}: empty folder; expected one sub-folder of PNG/JPEG images per class."
        )
    classes, names = _label_order(classes)
    index = {name: i for i, name in enumerate(classes)}
    files = {s: [] for s in split_roots}
    labels = {s: [] for s in split_roots}
    for split, dirs in class_dirs.items():
        for d in dirs:
            found = _image_files(d)
            files[split] += found
            labels[split] += [index[d.name]] * len(found)
    if not files["train"]:
        raise CvtoolError(
            f"{split_roots['train']}: no .png/.jpg/.jpeg images in its class sub-folders."
        )
    images = {s: [_read_image(f) for f in fs] for s, fs in files.items()}
    colour = any(im.ndim == 3 for ims in images.values() for im in ims)
    x = {s: _stack(images[s], files[s], colour) if files[s] else None for s in split_roots}
    if x["test"] is None:
        x["test"] = np.empty((0, *x["train"].shape[1:]), np.uint8)
    if x["test"].shape[1:] != x["train"].shape[1:]:
        raise CvtoolError(
            f"{root}: test images are {x['test'].shape[1:]} but train images {x['train'].shape[1:]}."
        )
    ds = Dataset(
        root.name,
        x["train"],
        np.asarray(labels["train"], np.int64),
        x["test"],
        np.asarray(labels["test"], np.int64),
        names,
    )
    return check_dataset(ds, root)


def _label_order(folders: list[str]) -> tuple[list[str], tuple[str, ...]]:
    """Folders in label order and the class names.

    Sorted names, unless every folder carries a label prefix ``N-`` with N
    exactly 0..K-1 (what the writer makes of unsortable names): then label N
    is the folder prefixed N and its class name is the rest.

    >>> _label_order(["1-Trouser", "0-T-shirt_top"])
    (['0-T-shirt_top', '1-Trouser'], ('T-shirt_top', 'Trouser'))
    >>> _label_order(["dog", "cat"])
    (['cat', 'dog'], ('cat', 'dog'))
    """
    found = [re.match(r"^(\d+)-(.+)$", f) for f in folders]
    if all(found) and sorted(int(m.group(1)) for m in found) == list(range(len(folders))):
        ordered = sorted(found, key=lambda m: int(m.group(1)))
        return [m.group(0) for m in ordered], tuple(m.group(2) for m in ordered)
    ordered = sorted(folders)
    return ordered, tuple(ordered)


def class_folder_names(class_names: tuple[str, ...] | list[str]) -> list[str]:
    """File-safe folder names that sort in label order.

    >>> class_folder_names(["0", "1", "2"])
    ['0', '1', '2']
    >>> class_folder_names(["T-shirt/top", "Trouser", "Bag"])
    ['0-T-shirt_top', '1-Trouser', '2-Bag']
    """
    safe = [re.sub(r"[^A-Za-z0-9._ -]", "_", str(n)).strip(" .") or "class" for n in class_names]
    if len(set(safe)) == len(safe) and sorted(safe) == safe:
        return safe
    width = len(str(len(safe) - 1))
    return [f"{i:0{width}d}-{s}" for i, s in enumerate(safe)]


def write_folder(dataset: Dataset, root: str | os.PathLike) -> list[Path]:
    """Write a Dataset as ``root/train/<class>/NNNNN.png`` and ``root/test/...``.

    Every class gets a folder in both splits (possibly empty) so the label
    order survives. The whole tree is built under a temporary name beside
    `root` and swapped in at the end (``fileio.atomic_folder``); an existing
    `root` is replaced (the caller checks ``--force`` first).

    Returns
    -------
    ``[root]``.
    """
    from PIL import Image

    root = Path(root)
    n_classes = max(dataset.num_classes, label_count(dataset.y_train, dataset.y_test))
    names = list(dataset.class_names) or [str(i) for i in range(n_classes)]
    if len(names) < n_classes:
        names += [str(i) for i in range(len(names), n_classes)]
    folders = class_folder_names(names)
    with atomic_folder(root) as tmp:  # the user's folder is swapped only when complete
        for split in ("train", "test"):
            x = np.asarray(getattr(dataset, f"x_{split}"))
            y = np.asarray(getattr(dataset, f"y_{split}"))
            for f in folders:
                (tmp / split / f).mkdir(parents=True, exist_ok=True)
            width = max(5, len(str(len(x))))
            for i, (image, label) in enumerate(zip(x, y, strict=True)):
                if image.ndim == 3 and image.shape[2] == 1:
                    image = image[:, :, 0]  # (H, W, 1) -> (H, W): PNG grey
                target = tmp / split / folders[int(label)] / f"{i:0{width}d}.png"
                Image.fromarray(image).save(target, format="PNG")
    return [root]
