"""Label formats on disk and conversion between them: COCO JSON, box CSV, YOLO txt, VOC XML.

One neutral container, :class:`LabelSet` (images with names and sizes,
categories, one row per box in ``xywh``, optional scores), is read from and
written to each format:

* **COCO JSON**: a ground-truth document (``images``, ``annotations``,
  ``categories``) or a results list (``image_id``, ``category_id``, ``bbox``,
  ``score``). An image's name is its ``file_name`` without the suffix (else
  its id).
* **CSV**: ``image,class,x,y,w,h[,score|difficult]`` with a header row, the
  coordinates in ``--box-format``; it knows only the images that have a box.
* **YOLO**: a folder with one ``NAME.txt`` per image, one line ``class cx cy w
  h`` (plus ``conf`` for detections), centre and size divided by the image's
  width and height; class indices count from 0, names from ``classes.txt`` in
  the folder when present. Image sizes come from a folder of the images or a
  list (CSV ``image,width,height``).
* **VOC**: a folder of Pascal VOC XML files (or one file): ``filename``,
  ``size/width,height``, ``object/name,difficult,bndbox/xmin,ymin,xmax,ymax``
  (an optional ``score`` under ``object`` for detections). Corners are read
  as continuous coordinates (width = xmax - xmin, no +1).

Classes named in the file (CSV, VOC) are ordered by value when all are ints,
else alphabetically; ``--names`` (:func:`reorder_classes`) imposes an order,
which a YOLO file's class indices follow.

Numbers are written with ``repr`` (COCO, CSV, VOC: exact) and YOLO's with 6
decimals, as ultralytics writes them, so a YOLO folder converted to any
format and back is the same text, and COCO/CSV/VOC round trips are exact.
Every problem is a one-line CvtoolError naming the file (and line).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cvtool.errors import CvtoolError

FORMATS = ("coco", "csv", "yolo", "voc")


@dataclass
class LabelSet:
    """Boxes of a data set in one neutral form.

    ``images`` names (str), ``sizes`` (I, 2) width, height (-1 unknown),
    ``image_ids`` (original COCO ids or None); ``cat_ids``, ``cat_names``;
    per box (N,): ``img``, ``cat`` (indices), ``boxes`` (N, 4) xywh,
    ``scores`` (None for ground truth), ``difficult``, ``iscrowd``.
    """

    images: list
    sizes: np.ndarray
    image_ids: list | None
    cat_ids: list
    cat_names: list
    img: np.ndarray
    cat: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray | None
    difficult: np.ndarray
    iscrowd: np.ndarray

    @property
    def is_detections(self) -> bool:
        return self.scores is not None


def _num(text, where) -> float:
    try:
        v = float(text)
    except (TypeError, ValueError):
        raise CvtoolError(f"{where}: {text!r} is not a number.") from None
    if not math.isfinite(v):
        raise CvtoolError(f"{where}: {text!r} is not a finite number.")
    return v


def _g(v: float) -> str:
    """Shortest exact text of a float (an int without '.0')."""
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e15 else repr(float(v))


def _natural(names):
    """Class names in order: by value when all are ints, else alphabetically."""
    names = list(names)
    if all(str(n).lstrip("-").isdigit() for n in names):
        return sorted(names, key=lambda n: int(n))
    return sorted(names, key=str)


def reorder_classes(ls: LabelSet, names) -> LabelSet:
    """The same boxes with the classes in the order of ``names`` (every class must be there)."""
    names = [str(n) for n in names]
    have = [str(n) for n in ls.cat_names]
    missing = [n for n in have if n not in names]
    if missing:
        raise CvtoolError(f"The '--names' list has no class {missing[0]!r}.")
    new = np.array([names.index(n) for n in have], np.int64)
    ls.cat = new[ls.cat] if len(ls.cat) else ls.cat
    ls.cat_ids, ls.cat_names = list(range(len(names))), names
    return ls


def _build(names, sizes, ids, cat_ids, cat_names, rows, with_scores) -> LabelSet:
    """rows: (image index, category index, x, y, w, h, score, difficult, iscrowd)."""
    a = np.array(rows, np.float64).reshape(-1, 9)
    return LabelSet(list(names), np.asarray(sizes, np.int64).reshape(-1, 2), ids, list(cat_ids),
                    list(cat_names), a[:, 0].astype(np.int64), a[:, 1].astype(np.int64),
                    a[:, 2:6].copy(), a[:, 6].copy() if with_scores else None,
                    a[:, 7].astype(bool), a[:, 8].astype(bool))  # fmt: skip


# ---------------------------------------------------------------- COCO
def read_coco(path) -> LabelSet:
    """A COCO ground-truth document or results list."""
    from cvtool.boxes.io import _bbox, read_json

    doc = read_json(path)
    if isinstance(doc, list):
        img_keys = list(dict.fromkeys(d.get("image_id") for d in doc if isinstance(d, dict)))
        cat_keys = sorted({d.get("category_id") for d in doc if isinstance(d, dict)}, key=str)
        names = [str(i) for i in img_keys]
        imap = {k: i for i, k in enumerate(img_keys)}
        cmap = {k: i for i, k in enumerate(cat_keys)}
        rows = []
        for i, d in enumerate(doc):
            where = f"{path}: detection {i}"
            if not isinstance(d, dict) or "score" not in d:
                raise CvtoolError(f"{where} must have image_id, category_id, bbox and score.")
            b = _bbox(d.get("bbox"), where)
            rows.append((imap[d["image_id"]], cmap[d["category_id"]], *b,
                         _num(d["score"], f"{where}: score"), 0, 0))  # fmt: skip
        return _build(names, np.full((len(names), 2), -1), img_keys, cat_keys,
                      [str(c) for c in cat_keys], rows, True)  # fmt: skip
    from cvtool.boxes.io import ground_truth_from_coco

    gt = ground_truth_from_coco(doc, str(path))  # validates
    by_id = {im["id"]: im for im in doc["images"]}
    names, sizes = [], []
    for i in gt.image_ids:
        im = by_id[i]
        names.append(Path(im["file_name"]).stem if im.get("file_name") else str(i))
        sizes.append((int(im.get("width", -1)), int(im.get("height", -1))))
    rows = np.c_[gt.img, gt.cat, gt.boxes, np.zeros(len(gt.img)), gt.difficult, gt.iscrowd]
    return _build(names, sizes, list(gt.image_ids), gt.cat_ids, gt.cat_names, rows, False)


def to_coco(ls: LabelSet):
    """A COCO ground-truth dict, or a results list for detections (plain JSON-able)."""
    ids = ls.image_ids
    if ids is None:
        ids = [int(n) for n in ls.images] if all(n.isdigit() for n in ls.images) else None
        ids = ids if ids is not None and len(set(ids)) == len(ids) else list(
            range(1, len(ls.images) + 1))  # fmt: skip
    cids = list(ls.cat_ids)
    if not all(isinstance(c, int) for c in cids):
        digits = all(str(c).isdigit() for c in cids) and len({int(c) for c in cids}) == len(cids)
        cids = [int(c) for c in cids] if digits else list(range(1, len(cids) + 1))
    if ls.is_detections:
        return [{"image_id": ids[i], "category_id": cids[c], "bbox": [float(v) for v in b],
                 "score": float(s)} for i, c, b, s in zip(ls.img.tolist(), ls.cat.tolist(),
                                                          ls.boxes, ls.scores.tolist(), strict=True)]  # fmt: skip
    images = []
    for k, (name, (w, h)) in enumerate(zip(ls.images, ls.sizes.tolist(), strict=True)):
        im = {"id": ids[k], "file_name": name}
        if w >= 0:
            im.update(width=int(w), height=int(h))
        images.append(im)
    anns = []
    for n, (i, c, b) in enumerate(zip(ls.img.tolist(), ls.cat.tolist(), ls.boxes, strict=True)):
        a = {"id": n + 1, "image_id": ids[i], "category_id": cids[c],
             "bbox": [float(v) for v in b], "area": float(b[2] * b[3]),
             "iscrowd": int(ls.iscrowd[n])}  # fmt: skip
        if ls.difficult[n]:
            a["difficult"] = 1
        anns.append(a)
    cats = [{"id": c, "name": str(n)} for c, n in zip(cids, ls.cat_names, strict=True)]
    return {"images": images, "annotations": anns, "categories": cats}


# ---------------------------------------------------------------- CSV
def read_csv(path, fmt: str = "xywh") -> LabelSet:
    """The box CSV; a 7th column named ``difficult`` makes ground truth, else scores."""
    from cvtool.boxes.io import _csv_rows, _read_csv

    header, raw = _read_csv(path)
    is_gt = (header is not None and "difficult" in header) or (raw and len(raw[0]) == 6)
    parsed = _csv_rows(path, fmt, "difficult" if is_gt else "score")
    names = list(dict.fromkeys(r[0] for r in parsed))
    classes = _natural(dict.fromkeys(r[1] for r in parsed))
    imap = {k: i for i, k in enumerate(names)}
    cmap = {k: i for i, k in enumerate(classes)}
    rows = []
    for image, cls, b, val, where in parsed:
        if not is_gt and val is None:
            raise CvtoolError(f"{where}: a detection needs a score in column 7.")
        v = _num(val, where) if val is not None else 0.0
        rows.append((imap[image], cmap[cls], *b, 0.0 if is_gt else v, v if is_gt else 0, 0))
    return _build(names, np.full((len(names), 2), -1), None, classes, classes, rows, not is_gt)


def write_csv_text(ls: LabelSet, fmt: str = "xywh") -> str:
    from cvtool.boxes.core import convert

    last = "score" if ls.is_detections else "difficult"
    lines = [f"image,class,x,y,w,h,{last}"]
    b = convert(ls.boxes, "xywh", fmt) if len(ls.boxes) else ls.boxes
    for n in range(len(ls.img)):
        v = _g(ls.scores[n]) if ls.is_detections else str(int(ls.difficult[n]))
        lines.append(",".join([ls.images[ls.img[n]], str(ls.cat_names[ls.cat[n]]),
                               *(_g(x) for x in b[n]), v]))  # fmt: skip
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- YOLO
def read_sizes(source) -> dict:
    """Image sizes ``{name: (width, height)}`` from a folder of images, a CSV list or COCO JSON.

    A COCO ground truth gives each image under its file-name stem and its id.
    """
    p = Path(source)
    if p.suffix.lower() == ".json":
        from cvtool.boxes.io import read_json

        doc = read_json(source)
        out = {}
        for im in doc.get("images", []) if isinstance(doc, dict) else []:
            if "width" in im and "height" in im:
                wh = (int(im["width"]), int(im["height"]))
                out[str(im["id"])] = wh
                if im.get("file_name"):
                    out[Path(im["file_name"]).stem] = wh
        return out
    if p.is_dir():
        from PIL import Image

        out = {}
        for f in sorted(p.iterdir()):
            if f.suffix.lower() in {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}:
                try:
                    with Image.open(f) as im:
                        out[f.stem] = im.size
                except OSError as exc:
                    raise CvtoolError(f"'{f}' is not a readable image ({exc}).") from None
        return out
    if not p.is_file():
        raise CvtoolError(f"File not found: '{source}'.")
    out = {}
    for n, line in enumerate(p.read_text().splitlines(), 1):
        parts = [s.strip() for s in line.replace(";", ",").split(",")]
        if not line.strip() or (n == 1 and not parts[-1].isdigit()):
            continue
        if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
            raise CvtoolError(f"{source}: line {n} must be image,width,height. Got {line!r}.")
        out[Path(parts[0]).stem] = (int(parts[1]), int(parts[2]))
    return out


def read_yolo(folder, image_sizes, names=None) -> LabelSet:
    """A YOLO label folder (``NAME.txt`` per image); sizes from :func:`read_sizes`."""
    p = Path(folder)
    if not p.is_dir():
        raise CvtoolError(f"A YOLO label folder is needed. Got '{folder}'.")
    if image_sizes is None:
        raise CvtoolError("YOLO labels need --image-sizes (a folder of the images or a list).")
    sizes = read_sizes(image_sizes)
    files = sorted(f for f in p.glob("*.txt") if f.name != "classes.txt")
    if not files:
        raise CvtoolError(f"No YOLO .txt labels in '{folder}'.")
    if names is None and (p / "classes.txt").is_file():
        names = [s.strip() for s in (p / "classes.txt").read_text().splitlines() if s.strip()]
    rows, kinds, max_cls = [], set(), -1
    for i, f in enumerate(files):
        if f.stem not in sizes:
            raise CvtoolError(f"{f}: no size for image '{f.stem}' in '{image_sizes}'.")
        W, H = sizes[f.stem]
        for n, line in enumerate(f.read_text().splitlines(), 1):
            parts = line.split()
            if not parts:
                continue
            where = f"{f}: line {n}"
            if len(parts) not in (5, 6):
                raise CvtoolError(
                    f"{where} must be 'class cx cy w h' (+ conf). Got {len(parts)} values."
                )
            if not parts[0].isdigit():
                raise CvtoolError(f"{where}: the class must be an int >= 0. Got {parts[0]!r}.")
            c = int(parts[0])
            cx, cy, w, h = (_num(v, where) for v in parts[1:5])
            if w < 0 or h < 0:
                raise CvtoolError(f"{where}: width and height must be >= 0.")
            s = _num(parts[5], where) if len(parts) == 6 else 0.0
            kinds.add(len(parts))
            max_cls = max(max_cls, c)
            rows.append((i, c, (cx - w / 2) * W, (cy - h / 2) * H, w * W, h * H, s, 0, 0))
    if len(kinds) > 1:
        raise CvtoolError(f"'{folder}' mixes lines with and without a confidence.")
    n_cls = max(max_cls + 1, len(names or []))
    if names is not None and len(names) < n_cls:
        raise CvtoolError(f"'{folder}': class {max_cls} has no name ({len(names)} names).")
    cat_names = list(names) if names is not None else [str(c) for c in range(n_cls)]
    return _build([f.stem for f in files], [sizes[f.stem] for f in files], None,
                  list(range(n_cls)), cat_names, rows, kinds == {6})  # fmt: skip


def write_yolo(ls: LabelSet, folder) -> None:
    """One ``NAME.txt`` per image (empty when it has no box) and ``classes.txt``."""
    from cvtool.fileio import atomic_write_text

    if (ls.sizes < 0).any():
        raise CvtoolError("YOLO labels need every image's size (COCO width/height, VOC size, "
                          "or --image-sizes).")  # fmt: skip
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    lines = [[] for _ in ls.images]
    for n in range(len(ls.img)):
        i = int(ls.img[n])
        W, H = ls.sizes[i]
        x, y, w, h = ls.boxes[n]
        vals = [(x + w / 2) / W, (y + h / 2) / H, w / W, h / H]
        text = f"{int(ls.cat[n])} " + " ".join(f"{v:.6f}" for v in vals)
        if ls.is_detections:
            text += f" {ls.scores[n]:.6f}"
        lines[i].append(text)
    for name, ls_ in zip(ls.images, lines, strict=True):
        atomic_write_text(out / f"{name}.txt", "".join(s + "\n" for s in ls_))
    atomic_write_text(out / "classes.txt", "".join(f"{n}\n" for n in ls.cat_names))


# ---------------------------------------------------------------- VOC
def _voc_files(source):
    p = Path(source)
    if p.is_file() and p.suffix.lower() == ".xml":
        return [p]
    if p.is_dir():
        files = sorted(p.glob("*.xml"))
        if files:
            return files
        raise CvtoolError(f"No VOC .xml files in '{source}'.")
    raise CvtoolError(f"A VOC .xml file or folder of them is needed. Got '{source}'.")


def read_voc(source) -> LabelSet:
    """Pascal VOC XML annotations (one file per image); ``score`` makes detections."""
    import xml.etree.ElementTree as ET

    names, sizes, rows, classes, scored = [], [], [], {}, set()
    for i, f in enumerate(_voc_files(source)):
        try:
            root = ET.parse(f).getroot()
        except ET.ParseError as exc:
            raise CvtoolError(f"{f}: not valid XML ({exc}).") from None
        size = root.find("size")
        if size is None or size.findtext("width") is None or size.findtext("height") is None:
            raise CvtoolError(f"{f}: no <size> with <width> and <height>.")
        W, H = (_num(size.findtext(k), f"{f}: size/{k}") for k in ("width", "height"))
        fn = root.findtext("filename")
        names.append(Path(fn).stem if fn else f.stem)
        sizes.append((int(W), int(H)))
        for j, obj in enumerate(root.findall("object")):
            where = f"{f}: object {j}"
            name, bb = obj.findtext("name"), obj.find("bndbox")
            if not name or bb is None:
                raise CvtoolError(f"{where} needs <name> and <bndbox>.")
            x1, y1, x2, y2 = (_num(bb.findtext(k), f"{where}: {k}")
                              for k in ("xmin", "ymin", "xmax", "ymax"))  # fmt: skip
            if x2 < x1 or y2 < y1:
                raise CvtoolError(f"{where}: xmax < xmin or ymax < ymin.")
            s = obj.findtext("score")
            scored.add(s is not None)
            c = name.strip()
            classes.setdefault(c, len(classes))
            diff = int(_num(obj.findtext("difficult") or 0, f"{where}: difficult"))
            rows.append((i, c, x1, y1, x2 - x1, y2 - y1,
                         _num(s, f"{where}: score") if s is not None else 0.0, diff, 0))  # fmt: skip
    if len(scored) > 1:
        raise CvtoolError(f"'{source}': some objects have a <score> and some do not.")
    cls = _natural(classes)
    pos = {c: i for i, c in enumerate(cls)}
    rows = [(r[0], pos[r[1]], *r[2:]) for r in rows]
    return _build(names, sizes, None, cls, cls, rows, scored == {True})


def write_voc(ls: LabelSet, folder) -> None:
    """One VOC XML per image (``NAME.xml``)."""
    from xml.sax.saxutils import escape

    from cvtool.fileio import atomic_write_text

    if (ls.sizes < 0).any():
        raise CvtoolError("VOC XML needs every image's size (COCO width/height or --image-sizes).")
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    objs = [[] for _ in ls.images]
    for n in range(len(ls.img)):
        x, y, w, h = ls.boxes[n]
        score = f"\t\t<score>{_g(ls.scores[n])}</score>\n" if ls.is_detections else ""
        objs[int(ls.img[n])].append(
            f"\t<object>\n\t\t<name>{escape(str(ls.cat_names[ls.cat[n]]))}</name>\n"
            f"\t\t<difficult>{int(ls.difficult[n])}</difficult>\n{score}"
            f"\t\t<bndbox><xmin>{_g(x)}</xmin><ymin>{_g(y)}</ymin>"
            f"<xmax>{_g(x + w)}</xmax><ymax>{_g(y + h)}</ymax></bndbox>\n\t</object>\n"
        )
    for i, name in enumerate(ls.images):
        W, H = ls.sizes[i]
        atomic_write_text(out / f"{name}.xml",
                          f"<annotation>\n\t<filename>{escape(name)}</filename>\n"
                          f"\t<size><width>{int(W)}</width><height>{int(H)}</height>"
                          f"<depth>3</depth></size>\n{''.join(objs[i])}</annotation>\n")  # fmt: skip
