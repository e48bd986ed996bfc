"""Inputs for ``predict`` and the numbers ``evaluate`` and ``predict`` report.

``read_inputs(paths, input_shape)`` reads PNG/JPEG images (converted to grey
or RGB to suit the model), ``.npy`` arrays of images, or any dataset path that
``cvtool.data.formats.read_any`` understands (its test split, else its
training split), and returns uint8/float images with one label per input.
``predictions`` turns network outputs into classes and probabilities. Nothing
is resized: an image of the wrong size is an error that says which size the
model wants. Left out: resizing, colour inversion (MNIST digits are white on black).

Scaling follows the rule training applies (:func:`normalise`): integer images
(uint8 0..255) are divided by 255; float images whose values lie in [0, 1] are
taken as already scaled; float images with values above 1 are taken as 0..255
pixels and divided by 255 too, so a uint8 image and the same image as floats
predict the same. NaN, infinite, negative or > 255 values are refused.
'-' (stdin) and streams hold one ``.npy`` array or one PNG/JPEG image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cvtool import backend
from cvtool.data.formats import read_any
from cvtool.errors import CvtoolError, check_int, check_path
from cvtool.nn.layers import Dense

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


def _read_image(path: Path, channels: int) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im = im.convert("L" if channels == 1 else "RGB")
            return np.asarray(im, dtype=np.uint8)  # (H, W) or (H, W, 3)
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as exc:
        raise CvtoolError(f"Cannot read image {path}: {' '.join(str(exc).split())}") from None


def read_inputs(paths: list, input_shape: tuple[int, ...]) -> tuple[np.ndarray, list[str]]:
    """Images for a model with `input_shape` and a name per image.

    Returns
    -------
    x : (N, ...) uint8 or float array; the model's ``prepare`` reshapes it.
    names : N strings: the file name, or 'file[i]' for the i-th image of a data file.
    """
    channels = input_shape[-1] if len(input_shape) == 3 else 1
    per = int(np.prod(input_shape))
    arrays, names = [], []
    for p in map(Path, paths):
        stream = _is_stream(p)
        if not stream:
            check_path(p, "Input", kind="any")
        if stream:
            from cvtool.fileio import seekable

            source = seekable(str(p))
            head = source.getvalue()[:8]
            is_image = head.startswith((b"\x89PNG", b"\xff\xd8\xff"))  # PNG or JPEG signature
        else:
            source, is_image = p, p.suffix.lower() in IMAGE_SUFFIXES
        if is_image:
            im = _read_image(source, channels)
            if im.size != per:
                hw = "x".join(str(d) for d in input_shape[:2]) if len(input_shape) == 3 else None
                want = f"{hw} pixels" if hw else f"{per} values"
                raise CvtoolError(
                    f"Image {p} is {im.shape[1]}x{im.shape[0]}; the model wants {want} "
                    "(cvtool does not resize)."
                )
            arrays.append(im.reshape(1, -1))
            names.append(p.name)
            continue
        if stream or p.suffix.lower() == ".npy":
            try:
                x = np.load(source, allow_pickle=False)
            except (OSError, ValueError, EOFError) as exc:
                raise CvtoolError(
                    f"Cannot read {p} as a .npy array: {' '.join(str(exc).split())}"
                ) from None
            if not isinstance(x, np.ndarray) or not (
                np.issubdtype(x.dtype, np.number) or x.dtype == bool
            ):
                raise CvtoolError(f"{p} must hold a numeric array of images.")
            if x.size == per:
                x = x.reshape(1, -1)
        else:
            ds = read_any(p)
            x = ds.x_test if len(ds.x_test) else ds.x_train
        if x.ndim < 2 or int(np.prod(x.shape[1:])) != per:
            raise CvtoolError(
                f"{p} holds arrays of shape {tuple(x.shape[1:])}; the model wants {input_shape}."
            )
        arrays.append(x.reshape(len(x), -1))
        names += [f"{p.name}[{i}]" for i in range(len(x))]
    if not arrays:
        raise CvtoolError("Give at least one input: image files, a .npy array or a data file.")
    arrays = [normalise(a, str(p)) for a, p in zip(arrays, paths, strict=True)]
    kinds = {a.dtype == np.uint8 for a in arrays}
    if len(kinds) > 1:  # mixing raw uint8 pixels and floats would scale them differently
        arrays = [a.astype(np.float32) / 255 if a.dtype == np.uint8 else a for a in arrays]
    return np.concatenate(arrays), names


def _is_stream(p: Path) -> bool:
    from cvtool.fileio import is_stdio

    return is_stdio(p) or (p.exists() and not p.is_file() and not p.is_dir())


def normalise(x: np.ndarray, name: str = "input") -> np.ndarray:
    """Images as the model saw them in training: uint8 kept (the model divides by 255),
    other integers and floats above 1 taken as 0..255 and divided by 255, floats in [0, 1]
    kept; NaN, infinite, negative or > 255 values refused (one-line CvtoolError).

    Returns uint8 or float32 of the same shape.
    """
    if x.dtype == np.uint8:
        return x
    if x.dtype == bool:
        return x.astype(np.float32)
    xf = np.asarray(x, dtype=np.float64)
    if not np.isfinite(xf).all():
        raise CvtoolError(f"{name} holds NaN or infinite values; pixels must be finite numbers.")
    lo, hi = (float(xf.min()), float(xf.max())) if xf.size else (0.0, 0.0)
    if lo < 0 or hi > 255:
        raise CvtoolError(
            f"{name} holds values in [{lo:g}, {hi:g}]; pixels must lie in 0..255 "
            "(or 0..1 when already scaled)."
        )
    if np.issubdtype(x.dtype, np.integer) or hi > 1:
        return (xf / 255).astype(np.float32)
    return xf.astype(np.float32)


def class_labels(class_names, k: int) -> list[str]:
    """K display names: the given class names, padded with indices or cut to K."""
    names = list(class_names)
    return (names + [str(i) for i in range(len(names), k)])[:k]


def predictions(outputs, class_names, top: int = 3) -> list[dict]:
    """Classes and probabilities from network outputs (N, K).

    Softmax outputs are probabilities already; other outputs (sigmoid) are
    divided by their row sum, so they add up to 1 as well.
    """
    a = np.asarray(backend.to_numpy(outputs), dtype=np.float64)
    total = a.sum(axis=1, keepdims=True)
    probs = a / np.where(total > 0, total, 1.0)
    names = class_labels(class_names, a.shape[1])
    rows = []
    for i in range(len(a)):
        order = np.argsort(-probs[i], kind="stable")[:top]
        rows.append({
            "class": int(order[0]),
            "name": names[int(order[0])],
            "probability": float(probs[i, order[0]]),
            "top": [{"class": int(c), "probability": float(probs[i, c])} for c in order],
            "probabilities": probs[i].tolist(),
        })  # fmt: skip
    return rows


def dense_templates(model, max_units: int = 100) -> tuple[np.ndarray, list[str], dict]:
    """The first dense layer's incoming weights, one image per unit.

    For the linear classifier ``784,10`` these are the ten class templates.
    A flat input of D values is drawn as a sqrt(D) x sqrt(D) grey image (or
    RGB when D / 3 is a square); an image input keeps its (H, W, C) shape.

    Returns
    -------
    images : (K, H, W) or (K, H, W, 3) float64, K = min(units, max_units).
    titles : K labels (class names when the layer is the output layer).
    info : layer name, units, image shape.
    """
    check_int("max-units", max_units, low=1)
    names = model.layer_names()
    idx = next((i for i, layer in enumerate(model.layers) if isinstance(layer, Dense)), None)
    if idx is None:
        raise CvtoolError("The model has no dense layer; 'show weights' draws dense weights.")
    if any(layer.params for layer in model.layers[:idx]):
        raise CvtoolError(
            f"The first dense layer ({names[idx]}) does not see the input image (layers with "
            "weights come before it); its weights are not image templates. For a CNN use "
            "'cvtool show filters'."
        )
    W = np.asarray(backend.to_numpy(model.layers[idx].params["W"]), dtype=np.float64)  # (D, K)
    d, units = W.shape
    shape = model.input_shape
    if len(shape) != 3:
        side = int(round(d**0.5))
        side3 = int(round((d / 3) ** 0.5))
        if side * side == d:
            shape = (side, side)
        elif d % 3 == 0 and side3 * side3 * 3 == d:
            shape = (side3, side3, 3)
        else:
            raise CvtoolError(f"Cannot draw {d} input weights as an image (not a square).")
    elif shape[-1] == 1:
        shape = shape[:2]
    k = min(units, max_units)
    images = W[:, :k].T.reshape((k, *shape))
    is_output = not any(layer.params for layer in model.layers[idx + 1 :])
    class_names = list(model.class_names)
    titles = [
        (class_names[j] if is_output and j < len(class_names) else f"unit {j}") for j in range(k)
    ]
    return images, titles, {"layer": names[idx], "units": units, "shown": k,
                            "image_shape": list(shape)}  # fmt: skip


def read_images(paths, input_shape, *, dataset=None, split: str = "test"):
    """Images for a detector or segmenter, with names and COCO image ids.

    From `paths` (image files or data files, as :func:`read_inputs`; ids 1..N
    in order), or from a canvas folder written by ``cvtool data make-canvas``
    (`dataset`, its `split`; ids and file names from its COCO file, so the
    output scores against ``annotations/<split>.json``). Not both.

    Returns
    -------
    (images (N, ...), names (N,), image_ids (N,) int64)
    """
    if dataset is not None and paths:
        raise CvtoolError("Give images or --dataset FOLDER, not both.")
    if dataset is None:
        if not paths:
            raise CvtoolError("Give at least one image, or --dataset FOLDER.")
        x, names = read_inputs(paths, input_shape)
        return x, names, np.arange(1, len(x) + 1)
    from cvtool.data.canvas_io import read_canvas_set

    canvases = read_canvas_set(dataset, split)
    names = [f"{split}/{int(i):05d}" for i in canvases.image_ids]
    return canvases.images, names, np.asarray(canvases.image_ids, np.int64)
