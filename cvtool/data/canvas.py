"""Seeded detection/segmentation canvases: digits pasted on a blank image.

:class:`CanvasGenerator` draws canvases from a seeded stream, one call of
``sample(n)`` after another (fresh canvases every epoch); :func:`make_canvases`
is one such call. Each canvas (default 64x64 grey) holds ``min_objects`` to
``max_objects`` objects, each a source image (default the embedded
``mnist-sample``; any grey :class:`~cvtool.data.datasets.Dataset` with bright
objects on black, e.g. ``fashion-mnist``) resized by a random scale and pasted
at a random position. Ground truth per object:

- the instance mask: the pasted object's pixels >= ``threshold`` (bool, H x W);
- the box: the tight box of that mask, COCO ``[x, y, w, h]`` in pixels;
- the class: the source label (0-based).

Objects are composited with a per-pixel maximum, so crossing strokes stay
visible in the image and instance masks may overlap. The per-pixel label map
(uint8) is 0 for background and ``class + 1`` for an object's mask; where masks
overlap, the later object wins ("later on top"). Optional clutter: unlabelled
square fragments of other source images (4 px up to half the smallest scaled
source image, so smaller than any digit), kept clear of the objects' boxes and
background in the label map. Optional Gaussian noise comes last.

Overlap rule: a new object's box must have IoU <= ``max_iou`` with every
earlier box, and cover at most ``max_cover`` of the smaller box of each pair
(IoU alone lets a small digit hide inside a big one). ``max_iou=0`` rejects
any overlap. Each object gets ``max_tries`` random positions; one that fits
nowhere is redrawn (another image and scale) up to 10 times, and the canvas
restarted up to 10 times, so crowded settings lean towards smaller objects.
Options that cannot work are refused before any canvas is drawn, including
``max_objects`` that do not fit: eight trial canvases of ``max_objects``
objects (on a fixed seed) must all be laid out.

Splits: ``split='train'`` pastes only the source's training images and
``split='test'`` only its test images, from independent streams
(``default_rng([seed, 0])`` and ``[seed, 1]``), so no source image is shared
across splits and the test canvases do not depend on how many training
canvases were drawn. Same options and seed, same arrays; the stream is drawn
canvas by canvas, so ``sample(3)`` then ``sample(2)`` equals ``sample(5)``.
A validation stream carved from the training split takes ``source_indices``
(e.g. from ``stratified_split``) so that it shares no digit image with training.

Writing to disk and reading back live in :mod:`cvtool.data.canvas_io`.
Left out: rotation, aspect-ratio jitter, textured backgrounds, colour sources.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cvtool.data.datasets import Dataset, load_dataset, stratified_split
from cvtool.errors import CvtoolError, check_choice, check_int, check_number

SPLITS = ("train", "test")
_REDRAWS = 10  # redraws of an object that fits nowhere, then a restart of the canvas
_RESTARTS = 10
_TRIAL_CANVASES = 8  # canvases of max_objects laid out up front to accept the options
_CLUTTER_MIN_SIDE = 4  # fragment side in pixels; the largest is half the smallest object's tile
_OPTION_KEYS = (
    "split channels min_objects max_objects min_scale max_scale max_iou max_cover threshold "
    "clutter noise max_tries seed"
).split()


@dataclass
class CanvasSet:
    """Canvases and their ground truth, one entry per image.

    Attributes
    ----------
    images : ndarray, shape (N, H, W, C), uint8
    label_maps : ndarray, shape (N, H, W), uint8
        0 = background, ``class + 1`` on an object's mask (later object on top).
    boxes : list of N ndarrays, shape (K_i, 4), float64
        Tight boxes of the masks, COCO ``[x, y, w, h]`` in pixels.
    labels : list of N ndarrays, shape (K_i,), int64
        0-based class of each object.
    masks : list of N ndarrays, shape (K_i, H, W), bool; or None
        Instance masks (None when read back without them).
    class_names : tuple of str
    image_ids : ndarray, shape (N,), int64
        COCO image ids (1..N for generated sets).
    source_index : list of N ndarrays, shape (K_i,), int64; or None
        Index of each object's image in the source split (generated sets only).
    info : dict
        How the set was made (options, seed, split), JSON-able.
    """

    images: np.ndarray
    label_maps: np.ndarray
    boxes: list
    labels: list
    masks: list | None
    class_names: tuple[str, ...]
    image_ids: np.ndarray
    source_index: list | None = None
    info: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.images)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def num_objects(self) -> int:
        """Objects over all canvases."""
        return int(sum(len(b) for b in self.boxes))


def _box_overlap(cand: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """IoU and intersection-over-smaller of (T, 4) candidates against (M, 4) boxes, xywh."""
    x1 = np.maximum(cand[:, None, 0], boxes[None, :, 0])
    y1 = np.maximum(cand[:, None, 1], boxes[None, :, 1])
    x2 = np.minimum(cand[:, None, 0] + cand[:, None, 2], boxes[None, :, 0] + boxes[None, :, 2])
    y2 = np.minimum(cand[:, None, 1] + cand[:, None, 3], boxes[None, :, 1] + boxes[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)  # (T, M)
    a = cand[:, None, 2] * cand[:, None, 3]
    b = boxes[None, :, 2] * boxes[None, :, 3]
    return inter / (a + b - inter), inter / np.minimum(a, b)


def _tight_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(x, y, w, h) of the True pixels of a non-empty (h, w) mask."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)


class CanvasGenerator:
    """A seeded stream of canvases with digits (see the module docstring).

    Parameters
    ----------
    source : Dataset or str, default 'mnist-sample'
        Grey images (N, h, w) or (N, h, w, 1), bright objects on black, and labels.
    split : {'train', 'test'}
        Which split of `source` the objects come from.
    size : int or (int, int), default 64
        Canvas height and width (an int means square).
    channels : {1, 3}
        3 gives each object a random colour on black.
    min_objects, max_objects : int, default 1 and 4
        Objects per canvas, uniform in min..max (0 allows empty canvases).
    min_scale, max_scale : float, default 0.6 and 1.4
        Scale of the source image (28 px for MNIST), uniform in [min, max].
    max_iou : float in [0, 1], default 0.2
        Largest IoU between the boxes of two objects (0: no overlap at all).
    max_cover : float in [0, 1], default 0.5
        Largest share of the smaller box that another box may cover.
    threshold : int in 1..255, default 128
        A pasted pixel at or above it belongs to the object's mask.
    clutter : int, default 0
        Up to this many unlabelled fragments of source images per canvas.
    noise : float in [0, 1], default 0.0
        Standard deviation of Gaussian noise, as a fraction of 255.
    max_tries : int, default 100
        Random positions tried per object draw.
    source_indices : array of int, optional
        Use only these images of the source split, e.g. the two halves of
        ``stratified_split`` for a training and a validation stream that share
        no digit image. ``source_index`` in the output still counts in the whole split.
    seed : int or None, default 0

    Raises
    ------
    CvtoolError
        On any option that cannot work, before a canvas is drawn.
    """

    def __init__(
        self,
        source: Dataset | str = "mnist-sample",
        *,
        split: str = "train",
        size: int | tuple[int, int] = 64,
        channels: int = 1,
        min_objects: int = 1,
        max_objects: int = 4,
        min_scale: float = 0.6,
        max_scale: float = 1.4,
        max_iou: float = 0.2,
        max_cover: float = 0.5,
        threshold: int = 128,
        clutter: int = 0,
        noise: float = 0.0,
        max_tries: int = 100,
        source_indices=None,
        seed: int | None = 0,
    ):
        self.split = check_choice("split", split, SPLITS)
        hw = (size, size) if isinstance(size, int) and not isinstance(size, bool) else size
        if not isinstance(hw, tuple | list) or len(hw) != 2:
            raise CvtoolError(
                f"The 'size' parameter must be an int or (height, width). Got {size!r} instead."
            )
        self.height, self.width = (check_int("size", v, low=1, high=4096) for v in hw)
        self.channels = check_choice("channels", channels, (1, 3))
        self.min_objects = check_int("min_objects", min_objects, low=0, high=1000)
        self.max_objects = check_int(
            "max_objects", max_objects, low=max(1, self.min_objects), high=1000
        )
        self.min_scale = check_number("min_scale", min_scale, low=0, low_open=True)
        self.max_scale = check_number("max_scale", max_scale, low=self.min_scale)
        self.max_iou = check_number("max_iou", max_iou, low=0, high=1)
        self.max_cover = check_number("max_cover", max_cover, low=0, high=1)
        self.threshold = check_int("threshold", threshold, low=1, high=255)
        self.clutter = check_int("clutter", clutter, low=0, high=1000)
        self.noise = check_number("noise", noise, low=0, high=1)
        self.max_tries = check_int("max_tries", max_tries, low=1, high=100_000)
        if seed is not None:
            seed = check_int("seed", seed, low=0)
        self.seed = seed
        ds = load_dataset(source) if isinstance(source, str) else source
        self.source_name = ds.name
        self.class_names = tuple(ds.class_names) or tuple(str(i) for i in range(ds.num_classes))
        x, y = getattr(ds, f"x_{self.split}"), getattr(ds, f"y_{self.split}")
        self._check_source(ds.name, x, y)
        self._index = self._check_indices(source_indices, len(x))
        self._x = x[..., 0] if x.ndim == 4 else x  # (N, h, w)
        self._y = np.asarray(y, dtype=np.int64)
        if source_indices is not None:
            self._x, self._y = self._x[self._index], self._y[self._index]
        self._check_sizes()
        self._rng = np.random.default_rng(
            None if seed is None else [seed, SPLITS.index(self.split)]
        )
        self._check_fit()

    def _check_source(self, name, x, y) -> None:
        if x.ndim == 4 and x.shape[3] != 1 or x.ndim not in (3, 4):
            raise CvtoolError(f"The 'source' images must be grey (N, H, W). {name} has {x.shape}.")
        if len(x) == 0:
            raise CvtoolError(f"The 'source' dataset {name} has no {self.split} images.")
        if int(y.max()) >= len(self.class_names) or len(self.class_names) > 254:
            raise CvtoolError(
                f"The 'source' dataset {name} must have at most 254 classes, all named "
                f"(label maps store class + 1 in uint8). Got labels up to {int(y.max())}."
            )
        if (x < self.threshold).all():
            raise CvtoolError(
                f"The 'threshold' parameter must be <= the brightest source pixel "
                f"({int(x.max())}). Got {self.threshold} instead."
            )

    def _check_indices(self, indices, n) -> np.ndarray:
        if indices is None:
            return np.arange(n)
        idx = np.asarray(indices)
        if (
            idx.ndim != 1
            or idx.size == 0
            or idx.dtype.kind not in "iu"
            or idx.min() < 0
            or idx.max() >= n
        ):
            raise CvtoolError(
                f"The 'source_indices' parameter must be a non-empty 1-D array of ints in "
                f"0..{n - 1} (the {self.split} split). Got {idx.size} values of {idx.dtype}."
            )
        return idx.astype(np.int64)

    def _check_sizes(self) -> None:
        h, w = self._x.shape[1:]
        small = min(self.height, self.width)
        if round(max(h, w) * self.min_scale) > small:
            need = round(max(h, w) * self.min_scale)
            raise CvtoolError(
                f"The 'size' parameter must be >= {need} ({max(h, w)} px source x min_scale "
                f"{self.min_scale:g}). Got {self.height}x{self.width} instead."
            )
        if round(max(h, w) * self.max_scale) > small:
            top = int(small / max(h, w) * 100) / 100
            raise CvtoolError(
                f"The 'max_scale' parameter must be <= {top:g} so that a {h}x{w} source image "
                f"fits the {self.height}x{self.width} canvas. Got {self.max_scale:g} instead."
            )

    def _check_fit(self) -> None:
        rng = np.random.default_rng(0)  # the same verdict whatever the seed
        for _ in range(_TRIAL_CANVASES):
            if self._layout(self.max_objects, rng) is None:
                raise CvtoolError(
                    f"The 'max_objects' parameter must be small enough to fit: {self.max_objects} "
                    f"objects at scale {self.min_scale:g}-{self.max_scale:g} did not fit a "
                    f"{self.height}x{self.width} canvas with max_iou {self.max_iou:g} and "
                    f"max_cover {self.max_cover:g} after {self.max_tries} tries; lower "
                    "max_objects or max_scale, raise max_iou, or enlarge the canvas."
                )

    @property
    def params(self) -> dict:
        """The options, JSON-able (what the writer stores as the COCO ``info``)."""
        out = {k: getattr(self, k) for k in _OPTION_KEYS}
        out.update(
            source=self.source_name, size=[self.height, self.width], source_images=len(self._index)
        )
        return out

    # -- drawing ----------------------------------------------------------------------------
    def _draw_object(self, rng):
        """A resized source image cropped to its ink: (tile, mask, box in tile, label, index)."""
        from PIL import Image

        for _ in range(_REDRAWS):
            i = int(rng.integers(len(self._x)))
            s = rng.uniform(self.min_scale, self.max_scale)
            src = self._x[i]
            h, w = max(1, round(src.shape[0] * s)), max(1, round(src.shape[1] * s))
            tile = np.asarray(Image.fromarray(src).resize((w, h), Image.BILINEAR))  # (h, w)
            mask = tile >= self.threshold
            if mask.any():
                x0, y0, bw, bh = _tight_box(tile > 0)
                tile = tile[y0 : y0 + bh, x0 : x0 + bw]
                mask = mask[y0 : y0 + bh, x0 : x0 + bw]
                return tile, mask, _tight_box(mask), int(self._y[i]), int(self._index[i])
        raise CvtoolError(
            f"The 'threshold' parameter must leave some pixels of most source images; "
            f"{_REDRAWS} drawn images had none >= {self.threshold}."
        )

    def _place(self, tile_hw, box, placed, rng):
        """Position (x, y) of a tile whose box obeys the overlap rule against `placed`, or None."""
        th, tw = tile_hw
        xs = rng.integers(0, self.width - tw + 1, size=self.max_tries)
        ys = rng.integers(0, self.height - th + 1, size=self.max_tries)
        if not placed:
            return int(xs[0]), int(ys[0])
        cand = np.stack(
            [xs + box[0], ys + box[1], np.full_like(xs, box[2]), np.full_like(xs, box[3])], axis=1
        ).astype(np.float64)
        iou, cover = _box_overlap(cand, np.asarray(placed, dtype=np.float64))
        ok = ((iou <= self.max_iou + 1e-12) & (cover <= self.max_cover + 1e-12)).all(axis=1)
        if not ok.any():
            return None
        j = int(np.argmax(ok))
        return int(xs[j]), int(ys[j])

    def _layout(self, k, rng):
        """k objects with positions obeying the overlap rule, or None when they do not fit."""
        for _ in range(_RESTARTS):
            objects, placed = [], []
            for _ in range(k):
                for _ in range(_REDRAWS):
                    obj = self._draw_object(rng)
                    pos = self._place(obj[0].shape, obj[2], placed, rng)
                    if pos is not None:
                        break
                else:
                    break
                bx, by, bw, bh = obj[2]
                placed.append((pos[0] + bx, pos[1] + by, bw, bh))
                objects.append((obj, pos))
            if len(objects) == k:
                return objects
        return None

    def _colour(self, rng) -> np.ndarray:
        """(C,) ink colour: 1 for grey; for RGB a random hue with its brightest channel at 1."""
        if self.channels == 1:
            return np.ones(1)
        c = rng.uniform(0.35, 1.0, size=3)
        return c / c.max()

    def _clutter(self, placed, rng):
        """Up to `clutter` (fragment (h, w, C), (x, y)) pairs clear of every box in `placed`."""
        out = []
        for _ in range(int(rng.integers(0, self.clutter + 1))):
            src = self._x[int(rng.integers(len(self._x)))]
            top = max(_CLUTTER_MIN_SIDE, round(0.5 * min(src.shape) * self.min_scale))
            f = int(rng.integers(_CLUTTER_MIN_SIDE, top + 1))
            fh, fw = min(f, src.shape[0], self.height), min(f, src.shape[1], self.width)
            ink = np.flatnonzero(src >= self.threshold)
            cy, cx = divmod(int(ink[rng.integers(len(ink))]), src.shape[1]) if ink.size else (0, 0)
            y0 = int(np.clip(cy - fh // 2, 0, src.shape[0] - fh))
            x0 = int(np.clip(cx - fw // 2, 0, src.shape[1] - fw))
            frag = np.rint(src[y0 : y0 + fh, x0 : x0 + fw, None] * self._colour(rng))
            xs = rng.integers(0, self.width - fw + 1, size=self.max_tries)
            ys = rng.integers(0, self.height - fh + 1, size=self.max_tries)
            if placed:
                cand = np.stack([xs, ys, np.full_like(xs, fw), np.full_like(xs, fh)], axis=1)
                iou, _ = _box_overlap(cand.astype(np.float64), np.asarray(placed, np.float64))
                ok = (iou == 0).all(axis=1)
                if not ok.any():
                    continue
                j = int(np.argmax(ok))
            else:
                j = 0
            out.append((frag, (int(xs[j]), int(ys[j]))))
        return out

    def _canvas(self, rng):
        """One canvas: image (H, W, C), label map (H, W), boxes, labels, masks, source indices."""
        H, W, C = self.height, self.width, self.channels
        k = int(rng.integers(self.min_objects, self.max_objects + 1))
        objects = self._layout(k, rng)
        if objects is None:
            raise CvtoolError(
                f"Could not lay out {k} objects on a canvas after {_RESTARTS} restarts; lower "
                "max_objects or max_scale, or raise max_iou."
            )
        colours = [self._colour(rng) for _ in range(k)]
        boxes = [(x + b[0], y + b[1], b[2], b[3]) for (_, _, b, _, _), (x, y) in objects]
        image = np.zeros((H, W, C), np.float64)
        for frag, (x, y) in self._clutter(boxes, rng):
            region = image[y : y + frag.shape[0], x : x + frag.shape[1]]
            np.maximum(region, frag, out=region)
        label_map = np.zeros((H, W), np.uint8)
        masks = np.zeros((k, H, W), bool)
        for j, ((tile, mask, _, label, _), (x, y)) in enumerate(objects):
            th, tw = tile.shape
            region = image[y : y + th, x : x + tw]
            np.maximum(region, np.rint(tile[:, :, None] * colours[j]), out=region)
            masks[j, y : y + th, x : x + tw] = mask
            label_map[masks[j]] = label + 1  # later object on top
        if self.noise > 0:
            image += rng.normal(0.0, 255.0 * self.noise, size=image.shape)
        image = np.clip(np.rint(image), 0, 255).astype(np.uint8)
        return (
            image,
            label_map,
            np.asarray(boxes, np.float64).reshape(k, 4),
            np.asarray([o[0][3] for o in objects], np.int64),
            masks,
            np.asarray([o[0][4] for o in objects], np.int64),
        )

    def sample(self, n: int) -> CanvasSet:
        """The next `n` canvases of the stream.

        Parameters
        ----------
        n : int >= 0

        Returns
        -------
        CanvasSet
            images (n, H, W, C) uint8, label_maps (n, H, W) uint8, and per image
            boxes (K_i, 4), labels (K_i,), masks (K_i, H, W), source_index (K_i,).
        """
        n = check_int("n", n, low=0)
        parts = [self._canvas(self._rng) for _ in range(n)]
        H, W, C = self.height, self.width, self.channels
        images = np.stack([p[0] for p in parts]) if parts else np.zeros((0, H, W, C), np.uint8)
        maps = np.stack([p[1] for p in parts]) if parts else np.zeros((0, H, W), np.uint8)
        return CanvasSet(
            images=images,
            label_maps=maps,
            boxes=[p[2] for p in parts],
            labels=[p[3] for p in parts],
            masks=[p[4] for p in parts],
            class_names=self.class_names,
            image_ids=np.arange(1, n + 1, dtype=np.int64),
            source_index=[p[5] for p in parts],
            info=self.params,
        )


def make_canvases(
    n: int = 1000,
    *,
    source: Dataset | str = "mnist-sample",
    split: str = "train",
    seed: int | None = 0,
    **options,
) -> CanvasSet:
    """`n` canvases with digits, like scikit-learn's ``make_blobs``.

    The first ``sample(n)`` of ``CanvasGenerator(source, split=split, seed=seed,
    **options)``; see :class:`CanvasGenerator` for the options and the module
    docstring for the conventions.

    Returns
    -------
    CanvasSet
        images (n, H, W, C) uint8; label_maps (n, H, W) uint8 (0 background,
        class + 1); per image boxes (K_i, 4) xywh, labels (K_i,), masks (K_i, H, W).
    """
    gen = CanvasGenerator(source, split=split, seed=seed, **options)
    return gen.sample(n)


def make_canvas_splits(
    n_train: int = 2000,
    n_test: int = 500,
    *,
    source: Dataset | str = "mnist-sample",
    seed: int | None = 0,
    **options,
) -> tuple[CanvasSet, CanvasSet]:
    """A training and a test set drawn from the source's train and test splits.

    Both are checked before either is drawn. Returns ``(train, test)``.
    """
    ds = load_dataset(source) if isinstance(source, str) else source
    gens = [CanvasGenerator(ds, split=s, seed=seed, **options) for s in SPLITS]
    return gens[0].sample(n_train), gens[1].sample(n_test)


def canvas_streams(
    n_train: int = 2000,
    n_val: int = 200,
    n_test: int = 500,
    *,
    source: Dataset | str = "mnist-sample",
    seed: int | None = 0,
    **options,
) -> tuple[CanvasGenerator, CanvasSet, CanvasSet | None, CanvasSet]:
    """What a trainer on canvases needs: a training stream, and fixed validation and test sets.

    The source's training digits are split (seeded, stratified, 10% or at
    least one per class) between the training stream and the validation set,
    so validation canvases share no digit image with training ones; test
    canvases come from the source's test split. The stream's first
    ``sample(n_train)`` is returned too; later epochs may draw fresh ones.

    Returns
    -------
    (generator, first training set, validation set or None, test set)
    """
    check_int("train canvases", n_train, low=1)
    check_int("validation canvases", n_val, low=0)
    check_int("test canvases", n_test, low=0)
    ds = load_dataset(source) if isinstance(source, str) else source
    train_idx = val_idx = None
    if n_val:
        train_idx, val_idx = stratified_split(ds.y_train, 0.1, seed)
    train = CanvasGenerator(ds, split="train", source_indices=train_idx, seed=seed, **options)
    val = None
    if n_val:
        val_seed = None if seed is None else seed + 1_000_003  # other positions and scales
        val_gen = CanvasGenerator(
            ds, split="train", source_indices=val_idx, seed=val_seed, **options
        )
        val = val_gen.sample(n_val)
    test = CanvasGenerator(ds, split="test", seed=seed, **options).sample(n_test)
    return train, train.sample(n_train), val, test


@dataclass
class TrainingData:
    """What a detector or segmenter trainer takes: a Dataset, its validation set, fresh epochs.

    ``dataset`` holds images and labels in the form the task's ``targets`` takes
    (label maps, or (boxes, classes) pairs); ``validation`` is (x, y) or None;
    ``epoch_data`` is None or a callable epoch -> (x, y) drawing each epoch's
    training set; ``source`` says where the data came from.
    """

    dataset: Dataset
    validation: tuple | None
    epoch_data: object = None
    source: str = ""


def hold_out(x, y, n_val: int, seed: int | None = 0):
    """(x, y, (x_val, y_val) or None): `n_val` examples (at most half) drawn at random
    (seeded) from a training set as its validation set. `y` may be a list."""
    if not n_val:
        return x, y, None
    n_val = min(n_val, len(x) // 2) or 1
    order = np.random.default_rng(seed).permutation(len(x))
    pick = (lambda a, idx: [a[i] for i in idx]) if isinstance(y, list) else (lambda a, idx: a[idx])
    keep, val = order[n_val:], order[:n_val]
    return x[keep], pick(y, keep), (x[val], pick(y, val))


def canvas_training_data(labels, names, n_train: int = 2000, n_val: int = 200, n_test: int = 500, *,
                         fresh: bool = True, seed: int | None = 0, **options) -> TrainingData:  # fmt: skip
    """Generated canvases for a trainer (:func:`canvas_streams`), labelled by ``labels(CanvasSet)``.

    `names` maps the source's class names to the task's (e.g. adds
    'background'); with `fresh` every epoch after the first draws new
    training canvases from the same seeded stream.
    """
    gen, train, val, test = canvas_streams(n_train, n_val, n_test, seed=seed, **options)
    ds = Dataset("canvases", train.images, labels(train), test.images, labels(test),
                 tuple(names(train.class_names)))  # fmt: skip

    def epoch_data(epoch):
        drawn = gen.sample(n_train)
        return drawn.images, labels(drawn)

    val_xy = None if val is None else (val.images, labels(val))
    return TrainingData(ds, val_xy, epoch_data if fresh else None, "generated canvases")
