"""Canvas sets on disk: the writer, the reader, and COCO run-length masks.

Layout (the ``images/`` + ``masks/`` pairs of common segmentation datasets,
plus COCO ground truth)::

    root/images/{train,test}/NNNNN.png       canvases (grey L or RGB)
    root/masks/{train,test}/NNNNN.png        label maps, same names (0 background, class + 1)
    root/annotations/{train,test}.json       COCO ground truth

The JSON has ``images`` (id, file_name, width, height), ``annotations`` (id,
image_id, category_id, bbox ``[x, y, w, h]``, area = mask pixel count,
iscrowd 0, segmentation as compressed COCO RLE ``{"size": [h, w], "counts":
"..."}`` from :mod:`cvtool.boxes.rle`, the strings pycocotools writes; the
reader also takes uncompressed counts), ``categories`` (id, name) and
``info`` (the generator's options). Category ids are ``class + 1``, the same
number the label maps hold. ``NNNNN`` is the image id, zero-padded to 5 digits.

Same set, same bytes: PNGs through Pillow at fixed settings, JSON with sorted
keys and fixed separators. The tree is built under a temporary name beside
the target and renamed onto it at the end.

The reader takes any folder of this layout. An image may have no
annotations (a canvas with zero objects is valid); every image needs a mask
of its own size, every label must be a category id or 0, every annotation
an image listed in ``images``. Category ids must be 1..K. Each problem is a
one-line CvtoolError naming the file.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np

from cvtool.boxes import rle
from cvtool.data.canvas import SPLITS, CanvasSet
from cvtool.errors import CvtoolError, check_choice, check_path
from cvtool.fileio import atomic_folder, check_output_folder

_PNG = {"format": "PNG", "compress_level": 6, "optimize": False}


def _png_bytes(array: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, **_PNG)
    return buf.getvalue()


def coco_document(canvases: CanvasSet, width: int = 5) -> dict:
    """The COCO ground truth of a CanvasSet (plain JSON-able Python); needs its masks."""
    if canvases.masks is None:
        raise CvtoolError("The canvas set has no instance masks; COCO areas need them.")
    H, W = canvases.images.shape[1:3]
    images, anns = [], []
    for i, image_id in enumerate(canvases.image_ids.tolist()):
        images.append(
            {
                "id": image_id,
                "file_name": f"{image_id:0{width}d}.png",
                "width": int(W),
                "height": int(H),
            }
        )
        for box, label, mask in zip(
            canvases.boxes[i], canvases.labels[i], canvases.masks[i], strict=True
        ):
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": image_id,
                    "category_id": int(label) + 1,
                    "bbox": [float(v) for v in box],
                    "area": int(np.count_nonzero(mask)),
                    "iscrowd": 0,
                    "segmentation": rle.encode(mask),
                }
            )
    cats = [{"id": c + 1, "name": n} for c, n in enumerate(canvases.class_names)]
    return {
        "info": {"description": "cvtool canvases", "generator": canvases.info},
        "images": images,
        "annotations": anns,
        "categories": cats,
    }


def write_canvas_set(
    out_dir: str | os.PathLike,
    *,
    train: CanvasSet | None = None,
    test: CanvasSet | None = None,
    overwrite: bool = False,
) -> list[Path]:
    """Write canvas sets as images, label-map PNGs and COCO JSON (layout: module docstring).

    Parameters
    ----------
    out_dir : path of the folder to create
    train, test : CanvasSet, at least one
    overwrite : replace an existing `out_dir` (else a CvtoolError before any work)

    Returns
    -------
    list of Path
        The annotation files written.
    """
    splits = {name: s for name, s in (("train", train), ("test", test)) if s is not None}
    if not splits:
        raise CvtoolError("Nothing to write: give a 'train' or a 'test' canvas set.")
    root = check_output_dir(out_dir, overwrite)
    written = []
    with atomic_folder(root) as tmp:
        for name, cs in splits.items():
            width = max(5, len(str(int(cs.image_ids.max(initial=0)))))
            doc = coco_document(cs, width)
            for sub in ("images", "masks"):
                (tmp / sub / name).mkdir(parents=True)
            for entry, image, label_map in zip(
                doc["images"], cs.images, cs.label_maps, strict=True
            ):
                grey = image[:, :, 0] if image.shape[2] == 1 else image  # (H, W, 1) -> (H, W)
                (tmp / "images" / name / entry["file_name"]).write_bytes(_png_bytes(grey))
                (tmp / "masks" / name / entry["file_name"]).write_bytes(_png_bytes(label_map))
            (tmp / "annotations").mkdir(exist_ok=True)
            text = json.dumps(doc, sort_keys=True, separators=(",", ":")) + "\n"
            (tmp / "annotations" / f"{name}.json").write_text(text, encoding="utf-8")
            written.append(root / "annotations" / f"{name}.json")
    return written


def _read_png(path: Path, what: str, label: bool = False) -> np.ndarray:
    """An image as (H, W) grey or (H, W, 3) RGB uint8; a label map as (H, W) raw values."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise CvtoolError(f"{what} not found: {path}")
    try:
        with Image.open(path) as im:
            im.load()
            if label:
                if im.mode not in ("L", "P", "1"):
                    raise CvtoolError(
                        f"{path}: a label map must be one 8-bit channel (L or P), not {im.mode}."
                    )
                return np.asarray(im if im.mode != "1" else im.convert("L"), dtype=np.uint8)
            grey = im.mode in ("1", "L", "LA", "I", "I;16")
            return np.asarray(im.convert("L" if grey else "RGB"), dtype=np.uint8)
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as exc:
        if isinstance(exc, CvtoolError):
            raise
        raise CvtoolError(f"Cannot read image {path}: {' '.join(str(exc).split())}") from None


def check_output_dir(out_dir: str | os.PathLike, overwrite: bool = False) -> Path:
    """`out_dir` as a Path if the writer may create it (call before generating): the one
    rule of ``cvtool.fileio.check_output_folder``."""
    return check_output_folder(out_dir, overwrite=overwrite, what="canvas folder")


def _coco_parts(doc, path) -> tuple[list, list, list]:
    if not isinstance(doc, dict) or not all(
        isinstance(doc.get(k), list) for k in ("images", "annotations", "categories")
    ):
        raise CvtoolError(
            f"{path} is not a COCO annotation file: it needs lists 'images', 'annotations' "
            "and 'categories'."
        )
    return doc["images"], doc["annotations"], doc["categories"]


def _int_field(entry, key, where):
    value = entry.get(key) if isinstance(entry, dict) else None
    if not isinstance(value, int) or isinstance(value, bool):
        raise CvtoolError(f"{where}: '{key}' must be an integer. Got {value!r}.")
    return value


def read_canvas_set(
    root: str | os.PathLike, split: str = "train", *, with_masks: bool = False
) -> CanvasSet:
    """Read one split of a canvas folder (layout: module docstring) into arrays.

    Parameters
    ----------
    root : folder with ``images/``, ``masks/`` and ``annotations/``
    split : {'train', 'test'}
    with_masks : decode each annotation's RLE ``segmentation`` into an instance mask

    Returns
    -------
    CanvasSet
        images (N, H, W, C) uint8 in the order of the JSON's ``images``; label_maps
        (N, H, W) uint8; per image boxes (K_i, 4) float64 xywh and labels (K_i,)
        int64 (category id - 1), K_i = 0 for an image without annotations; masks
        (K_i, H, W) bool when `with_masks`, else None; class_names from the categories.

    Raises
    ------
    CvtoolError
        A JSON that is not COCO, category ids other than 1..K, annotations whose
        image id is not listed, duplicate image ids, a missing image or mask, a mask
        whose size differs from its image, images of different sizes, labels
        outside 0..K.
    """
    split = check_choice("split", split, SPLITS)
    root = check_path(root, "Canvas folder", kind="dir")
    path = check_path(root / "annotations" / f"{split}.json", "Annotation file")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CvtoolError(f"{path} is not valid JSON ({exc}).") from None
    images, anns, cats = _coco_parts(doc, path)
    cat_ids = sorted(_int_field(c, "id", f"{path}: category") for c in cats)
    if cat_ids != list(range(1, len(cats) + 1)):
        raise CvtoolError(
            f"{path}: category ids must be 1..{len(cats)} (class + 1). Got {cat_ids}."
        )
    names = {c["id"]: str(c.get("name", c["id"])) for c in cats}
    class_names = tuple(names[i] for i in cat_ids)
    ids = [_int_field(im, "id", f"{path}: image") for im in images]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise CvtoolError(f"{path}: image id {dup} is listed more than once.")
    per_image = {i: [] for i in ids}
    for a in anns:
        if not isinstance(a, dict):
            raise CvtoolError(f"{path}: every annotation must be an object. Got {a!r}.")
        image_id = _int_field(a, "image_id", f"{path}: annotation {a.get('id')!r}")
        if image_id not in per_image:
            raise CvtoolError(
                f"{path}: annotation {a.get('id')!r} refers to image id {image_id}, "
                "which is not in 'images'."
            )
        cat = _int_field(a, "category_id", f"{path}: annotation {a.get('id')!r}")
        if cat not in names:
            raise CvtoolError(
                f"{path}: annotation {a.get('id')!r} has category_id {cat}, "
                f"not one of 1..{len(cats)}."
            )
        box = a.get("bbox")
        if not (
            isinstance(box, list)
            and len(box) == 4
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in box)
            and box[2] >= 0
            and box[3] >= 0
        ):
            raise CvtoolError(
                f"{path}: annotation {a.get('id')!r} has bbox {box!r}; "
                "expected [x, y, w, h] with w, h >= 0."
            )
        per_image[image_id].append(a)
    pics, maps, boxes, labels, masks = [], [], [], [], []
    for im in images:
        name = im.get("file_name")
        if not isinstance(name, str) or not name:
            raise CvtoolError(f"{path}: image {im['id']} has no 'file_name'.")
        pic = _read_png(root / "images" / split / name, "Image")
        label_map = _read_png(root / "masks" / split / name, f"Mask of image {name}", label=True)
        if label_map.shape != pic.shape[:2]:
            raise CvtoolError(
                f"{root / 'masks' / split / name} is {label_map.shape[1]}x{label_map.shape[0]} "
                f"but its image is {pic.shape[1]}x{pic.shape[0]}."
            )
        if (im.get("width"), im.get("height")) != (pic.shape[1], pic.shape[0]):
            raise CvtoolError(
                f"{path}: image {im['id']} is listed as {im.get('width')}x"
                f"{im.get('height')} but {name} is {pic.shape[1]}x{pic.shape[0]}."
            )
        if int(label_map.max(initial=0)) > len(cats):
            raise CvtoolError(
                f"{root / 'masks' / split / name} has label {int(label_map.max())}, outside "
                f"0..{len(cats)} (background + {len(cats)} categories)."
            )
        if pics and pic.shape != pics[0].shape:
            raise CvtoolError(
                f"Images differ in size or channels: {name} is {pic.shape}, "
                f"the first is {pics[0].shape} (cvtool does not resize)."
            )
        own = per_image[im["id"]]
        pics.append(pic)
        maps.append(label_map)
        boxes.append(np.asarray([a["bbox"] for a in own], np.float64).reshape(len(own), 4))
        labels.append(np.asarray([a["category_id"] - 1 for a in own], np.int64))
        if with_masks:
            masks.append(_instance_masks(own, pic.shape[:2], path))
    H, W = pics[0].shape[:2] if pics else (0, 0)
    stack = (
        np.stack([p if p.ndim == 3 else p[:, :, None] for p in pics])
        if pics
        else np.zeros((0, 0, 0, 1), np.uint8)
    )
    return CanvasSet(
        images=stack,
        label_maps=np.stack(maps) if maps else np.zeros((0, H, W), np.uint8),
        boxes=boxes,
        labels=labels,
        masks=masks if with_masks else None,
        class_names=class_names,
        image_ids=np.asarray(ids, np.int64),
        info=doc.get("info", {}).get("generator", {}) if isinstance(doc.get("info"), dict) else {},
    )


def _instance_masks(anns, hw, path) -> np.ndarray:
    """(K, H, W) bool masks from the annotations' RLE segmentations."""
    out = np.zeros((len(anns), *hw), bool)
    for j, a in enumerate(anns):
        seg = a.get("segmentation")
        if not isinstance(seg, dict) or "counts" not in seg or "size" not in seg:
            raise CvtoolError(
                f"{path}: annotation {a.get('id')!r} has no RLE 'segmentation' "
                "(polygons are not read)."
            )
        if [int(v) for v in seg["size"]] != list(hw):
            raise CvtoolError(
                f"{path}: annotation {a.get('id')!r} has a {seg['size']} mask "
                f"for a {list(hw)} image."
            )
        try:
            out[j] = rle.decode(seg) != 0
        except CvtoolError as exc:
            raise CvtoolError(f"{path}: annotation {a.get('id')!r}: {exc}") from None
    return out
