"""Label files of every format the ``iou`` commands read: dispatch by path, convert.

COCO JSON and the box CSV go through :mod:`cvtool.boxes.io` (validated,
vectorised); YOLO folders and Pascal VOC XML through
:mod:`cvtool.boxes.formats`, then the same COCO checks. The format is told by
the path: ``.json`` COCO, ``.xml`` or a folder of ``.xml`` VOC, a folder of
``.txt`` YOLO, anything else CSV.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cvtool.boxes import formats
from cvtool.boxes import io as boxes_io
from cvtool.errors import CvtoolError, check_choice


def kind_of(path) -> str:
    """``coco``, ``voc``, ``yolo`` or ``csv``, from the path alone."""
    p = Path(path)
    if p.is_dir():
        if any(p.glob("*.xml")):
            return "voc"
        if any(p.glob("*.txt")):
            return "yolo"
        raise CvtoolError(f"'{path}' holds no YOLO .txt or VOC .xml labels.")
    s = p.suffix.lower()
    return {".json": "coco", ".xml": "voc"}.get(s, "csv")


def read_labels(path, fmt: str = "xywh", image_sizes=None, names=None) -> formats.LabelSet:
    """Any supported label file or folder as a :class:`~cvtool.boxes.formats.LabelSet`."""
    kind = kind_of(path)
    if kind == "coco":
        return formats.read_coco(path)
    if kind == "voc":
        return formats.read_voc(path)
    if kind == "yolo":
        return formats.read_yolo(path, image_sizes, names)
    return formats.read_csv(path, fmt)


def _with_sizes(ls: formats.LabelSet, image_sizes) -> formats.LabelSet:
    """Fill unknown sizes; a COCO ground truth also names results' images by file stem."""
    if image_sizes is None:
        return ls
    sizes = formats.read_sizes(image_sizes)
    stems = {}
    if str(image_sizes).lower().endswith(".json"):
        doc = boxes_io.read_json(image_sizes)
        doc = doc if isinstance(doc, dict) else {}
        stems = {str(im["id"]): Path(im["file_name"]).stem
                 for im in doc.get("images", []) if im.get("file_name")}  # fmt: skip
        cat_names = {str(c["id"]): str(c.get("name", c["id"])) for c in doc.get("categories", [])}
        if ls.image_ids is not None and ls.cat_names == [str(c) for c in ls.cat_ids]:
            ls.cat_names = [cat_names.get(str(c), str(c)) for c in ls.cat_ids]
    for i, name in enumerate(ls.images):
        if ls.image_ids is not None and name in stems:
            ls.images[i] = stems[name]
        if name in sizes and ls.sizes[i, 0] < 0:
            ls.sizes[i] = sizes[name]
    return ls


def convert_labels(src, dst, to: str, *, fmt: str = "xywh", image_sizes=None, names=None) -> dict:
    """Read any label format and write it as ``to`` (coco, csv: a file; yolo, voc: a folder).

    Returns
    -------
    dict: ``from``, ``to``, ``images``, ``boxes``, ``classes``, ``detections`` (bool), ``out``.
    """
    from cvtool.fileio import atomic_write_text

    check_choice("to", to, formats.FORMATS)
    if Path(str(src)).is_file() and Path(str(src)).stat().st_size == 0:
        raise CvtoolError(f"'{src}' is empty: no labels to convert.")
    names = [s.strip() for s in names.split(",")] if isinstance(names, str) else names
    ls = _with_sizes(read_labels(src, fmt, image_sizes, names), image_sizes)
    if names is not None and kind_of(src) != "yolo":
        ls = formats.reorder_classes(ls, names)
    if to == "coco":
        import json

        atomic_write_text(dst, json.dumps(formats.to_coco(ls)) + "\n")
    elif to == "csv":
        atomic_write_text(dst, formats.write_csv_text(ls, fmt))
    else:  # a folder: written whole beside, then swapped in (fileio.atomic_folder)
        from cvtool.fileio import atomic_folder

        with atomic_folder(dst) as tmp:
            (formats.write_yolo if to == "yolo" else formats.write_voc)(ls, tmp)
    return {"from": kind_of(src), "to": to, "images": len(ls.images), "boxes": int(len(ls.img)),
            "classes": len(ls.cat_ids), "detections": ls.is_detections, "out": str(dst)}  # fmt: skip


def _gt_from_labels(ls):
    if ls.is_detections:
        raise CvtoolError("The ground truth has scores: pass detections with --dets.")
    doc = formats.to_coco(ls)
    gt = boxes_io.ground_truth_from_coco(doc, "gt")
    name2id = {}
    for im, name in zip(doc["images"], ls.images, strict=True):
        name2id[name] = im["id"]
    return gt, doc, name2id


def load_pair(gt_path, dets_path, fmt: str = "xywh", image_sizes=None, with_order=False):
    """Ground truth and detections from two label paths (COCO JSON, CSV, YOLO, VOC).

    Detections in YOLO or VOC form are matched to the ground truth by image
    name (COCO: ``file_name`` without suffix, or the id) and class (name, or
    id / YOLO index).

    Returns
    -------
    (GroundTruth, Detections), and with ``with_order`` the images' order in
    the ground-truth file (indices into ``gt.image_ids``, array (I,)).
    """
    gk, dk = kind_of(gt_path), kind_of(dets_path)
    doc = None
    if gk == "coco":
        doc = boxes_io.read_json(gt_path)
        gt = boxes_io.ground_truth_from_coco(doc, str(gt_path))
        name2id = {}
        for im in doc["images"]:
            name2id[str(im["id"])] = im["id"]
            if im.get("file_name"):
                name2id.setdefault(Path(im["file_name"]).stem, im["id"])
    elif gk == "csv":
        gt = boxes_io.load_ground_truth(gt_path, fmt)
        name2id = {str(i): i for i in gt.image_ids}
    else:
        gt, doc, name2id = _gt_from_labels(read_labels(gt_path, fmt, image_sizes))
    if dk in ("coco", "csv"):
        dt = boxes_io.load_detections(dets_path, gt, fmt)
    else:
        ls = read_labels(dets_path, fmt, image_sizes)
        if not ls.is_detections:
            raise CvtoolError(f"'{dets_path}': detections need scores (YOLO: a 6th value, "
                              "VOC: <score>).")  # fmt: skip
        unknown = [n for n in ls.images if n not in name2id]
        if unknown and len(ls.img) and np.isin(ls.img, [ls.images.index(n) for n in unknown]).any():
            raise CvtoolError(
                f"{dets_path}: image '{unknown[0]}' is not an image of the ground truth."
            )
        named = kind_of(dets_path) == "voc" or ls.cat_names != [str(c) for c in ls.cat_ids]
        keys = ls.cat_names if named else ls.cat_ids
        results = [{"image_id": name2id.get(ls.images[i]), "category_id": keys[c],
                    "bbox": b.tolist(), "score": float(s)}
                   for i, c, b, s in zip(ls.img.tolist(), ls.cat.tolist(), ls.boxes,
                                         ls.scores.tolist(), strict=True)]  # fmt: skip
        dt = boxes_io.detections_from_coco(results, gt, str(dets_path))
    if not with_order:
        return gt, dt
    order = np.arange(len(gt.image_ids))
    if doc is not None:
        pos = {v: i for i, v in enumerate(gt.image_ids)}
        order = np.array(list(dict.fromkeys(pos[im["id"]] for im in doc["images"])), np.int64)
    return gt, dt, order
