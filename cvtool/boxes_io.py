"""Reading boxes, ground truth, detections and masks from files, with validation.

* COCO JSON ground truth: ``images``, ``annotations`` (``image_id``,
  ``category_id``, ``bbox`` xywh, ``area`` (default w*h), ``iscrowd`` (default
  0), ``difficult`` (default 0, used by VOC mode)), ``categories``.
* COCO detections: the results list ``[{image_id, category_id, bbox, score}]``.
* CSV, one box a row: ``image, class, x, y, w, h[, score]`` (detections) or
  ``image, class, x, y, w, h[, difficult]`` (ground truth); the four
  coordinates in the chosen ``--format``; an optional header row, whose names
  ``score``, ``difficult`` and ``iscrowd`` locate those columns. A CSV ground
  truth knows only the images that have a box.
* Box lists for IoU matrices: CSV of 4 numbers a row (or the form above), JSON
  list of 4-lists or of objects with ``bbox``, or ``.npy`` (N, 4).
* Masks and label maps: ``.npy`` or an image (PNG; palette PNGs give indices).

Every problem is a CvtoolError naming the file, the entry and the value.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

from cvtool.boxes import convert, validate
from cvtool.detection_eval import Detections, GroundTruth
from cvtool.errors import CvtoolError


def _read_json(path):
    p = Path(path)
    if not p.is_file():
        raise CvtoolError(f"File not found: '{path}'.")
    try:
        return json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CvtoolError(f"'{path}' is not valid JSON ({exc}).") from None


def _read_csv(path):
    p = Path(path)
    if not p.is_file():
        raise CvtoolError(f"File not found: '{path}'.")
    rows = [r for r in csv.reader(p.read_text().splitlines()) if r and any(c.strip() for c in r)]
    header = None
    if rows and not _is_number(rows[0][-1 if len(rows[0]) == 4 else min(2, len(rows[0]) - 1)]):
        header = [c.strip().lower() for c in rows[0]]
        rows = rows[1:]
    return header, [[c.strip() for c in r] for r in rows]


def _known(value, mapping) -> bool:
    try:
        return value in mapping
    except TypeError:  # unhashable (a list where an id belongs)
        return False


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _float(value, where):
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise CvtoolError(f"{where} must be a number. Got {value!r}.") from None
    if not math.isfinite(v):
        raise CvtoolError(f"{where} must be a finite number. Got {value!r}.")
    return v


def _bbox(value, where, fmt="xywh"):
    if not isinstance(value, list | tuple) or len(value) != 4:
        raise CvtoolError(f"{where}: 'bbox' must be a list of 4 numbers. Got {value!r}.")
    b = np.array([[_float(v, f"{where}: bbox") for v in value]])
    validate(b, fmt, where)
    return b[0]


def ground_truth_from_coco(doc: dict, name: str = "gt") -> GroundTruth:
    """GroundTruth from a parsed COCO dict (validated)."""
    if not isinstance(doc, dict) or not {"images", "annotations", "categories"} <= set(doc):
        raise CvtoolError(
            f"'{name}' must be COCO JSON with 'images', 'annotations' and 'categories'."
        )
    try:
        image_ids = sorted({im["id"] for im in doc["images"]})
        cats = sorted((c["id"], str(c.get("name", c["id"]))) for c in doc["categories"])
    except (KeyError, TypeError) as exc:
        raise CvtoolError(f"'{name}': every image and category needs an 'id' ({exc}).") from None
    imap = {v: i for i, v in enumerate(image_ids)}
    cmap = {c: i for i, (c, _) in enumerate(cats)}
    anns = doc["annotations"]
    n = len(anns)
    img, cat = np.empty(n, np.int64), np.empty(n, np.int64)
    boxes, area = np.empty((n, 4)), np.empty(n)
    crowd, diff, zero = np.zeros(n, bool), np.zeros(n, bool), np.zeros(n, bool)
    for i, a in enumerate(anns):
        where = f"{name}: annotation {i}"
        if not _known(a.get("image_id"), imap):
            raise CvtoolError(f"{where}: image_id {a.get('image_id')!r} is not in 'images'.")
        if not _known(a.get("category_id"), cmap):
            raise CvtoolError(
                f"{where}: category_id {a.get('category_id')!r} is not in 'categories'."
            )
        img[i], cat[i] = imap[a["image_id"]], cmap[a["category_id"]]
        boxes[i] = _bbox(a.get("bbox"), where)
        area[i] = _float(a["area"], f"{where}: area") if "area" in a else boxes[i, 2] * boxes[i, 3]
        crowd[i] = bool(a.get("iscrowd", 0))
        diff[i] = bool(a.get("difficult", 0))
        zero[i] = a.get("id", 1) == 0
    return GroundTruth(image_ids, [c for c, _ in cats], [s for _, s in cats], img, cat, boxes,
                       area, crowd, diff, zero)  # fmt: skip


def _lookup(gt: GroundTruth):
    imap = {v: i for i, v in enumerate(gt.image_ids)}
    imap.update({str(v): i for i, v in enumerate(gt.image_ids)})
    cmap = {v: i for i, v in enumerate(gt.cat_ids)}
    cmap.update({str(v): i for i, v in enumerate(gt.cat_ids)})
    cmap.update({v: i for i, v in enumerate(gt.cat_names)})
    return imap, cmap


def detections_from_coco(results, gt: GroundTruth, name: str = "dets") -> Detections:
    """Detections from a parsed COCO results list, checked against the ground truth.

    A vectorised path handles well-formed input; on any problem the slow
    per-detection path runs to name the first bad entry.
    """
    if isinstance(results, dict) and "annotations" in results:
        results = results["annotations"]
    if not isinstance(results, list):
        raise CvtoolError(f"'{name}' must be a JSON list of detections (the COCO results format).")
    imap, cmap = _lookup(gt)
    try:
        img = np.array([imap.get(d["image_id"], -1) for d in results], np.int64)
        cat = np.array([cmap.get(d["category_id"], -1) for d in results], np.int64)
        boxes = np.array([d["bbox"] for d in results], np.float64).reshape(-1, 4)
        scores = np.array([d["score"] for d in results], np.float64)
        ok = (
            (img >= 0).all() and (cat >= 0).all() and np.isfinite(boxes).all()
            and np.isfinite(scores).all() and (boxes[:, 2:] >= 0).all()
            and boxes.shape[0] == len(results)
        )  # fmt: skip
    except (KeyError, TypeError, ValueError):
        ok = False
    if ok:
        return Detections(img, cat, boxes, scores)
    return _detections_slow(results, imap, cmap, name)


def _detections_slow(results, imap, cmap, name) -> Detections:
    n = len(results)
    img, cat = np.empty(n, np.int64), np.empty(n, np.int64)
    boxes, scores = np.empty((n, 4)), np.empty(n)
    for i, d in enumerate(results):
        where = f"{name}: detection {i}"
        if not isinstance(d, dict):
            raise CvtoolError(f"{where} must be an object with image_id, category_id, bbox, score.")
        if not _known(d.get("image_id"), imap):
            raise CvtoolError(
                f"{where}: image_id {d.get('image_id')!r} is not an image of the ground truth."
            )
        if not _known(d.get("category_id"), cmap):
            raise CvtoolError(
                f"{where}: category_id {d.get('category_id')!r} is not a category of the ground truth."
            )
        img[i], cat[i] = imap[d["image_id"]], cmap[d["category_id"]]
        boxes[i] = _bbox(d.get("bbox"), where)
        scores[i] = _float(d.get("score"), f"{where}: score")
    return Detections(img, cat, boxes, scores)


def _csv_rows(path, fmt, extra):
    header, rows = _read_csv(path)
    col = 6
    if header is not None and extra in header:
        col = header.index(extra)
    out = []
    for i, r in enumerate(rows):
        where = f"{path}: row {i + 1}"
        if len(r) < 6:
            raise CvtoolError(f"{where} must have image, class, 4 coordinates. Got {r!r}.")
        b = np.array([[_float(v, f"{where}: coordinate") for v in r[2:6]]])
        validate(b, fmt, where)
        val = r[col] if len(r) > col and r[col] != "" else None
        out.append((r[0], r[1], convert(b, fmt, "xywh")[0], val, where))
    return out


def ground_truth_from_csv(path, fmt: str = "xywh") -> GroundTruth:
    """GroundTruth from a CSV (image, class, 4 coordinates[, difficult])."""
    rows = _csv_rows(path, fmt, "difficult")
    if not rows:
        raise CvtoolError(f"The ground truth '{path}' has no boxes.")
    image_ids = sorted({r[0] for r in rows})
    cat_ids = sorted({r[1] for r in rows})
    imap = {v: i for i, v in enumerate(image_ids)}
    cmap = {v: i for i, v in enumerate(cat_ids)}
    boxes = np.array([r[2] for r in rows])
    diff = np.array([bool(_float(r[3], f"{r[4]}: difficult")) if r[3] else False for r in rows])
    return GroundTruth(image_ids, cat_ids, list(cat_ids), np.array([imap[r[0]] for r in rows]),
                       np.array([cmap[r[1]] for r in rows]), boxes, boxes[:, 2] * boxes[:, 3],
                       np.zeros(len(rows), bool), diff)  # fmt: skip


def detections_from_csv(path, gt: GroundTruth, fmt: str = "xywh") -> Detections:
    """Detections from a CSV (image, class, 4 coordinates, score)."""
    rows = _csv_rows(path, fmt, "score")
    imap, cmap = _lookup(gt)
    img, cat, scores = [], [], []
    for image, cls, _, score, where in rows:
        if image not in imap:
            raise CvtoolError(f"{where}: image {image!r} is not an image of the ground truth.")
        if cls not in cmap:
            raise CvtoolError(f"{where}: class {cls!r} is not a class of the ground truth.")
        if score is None:
            raise CvtoolError(f"{where}: a detection needs a score (7th column).")
        img.append(imap[image])
        cat.append(cmap[cls])
        scores.append(_float(score, f"{where}: score"))
    boxes = np.array([r[2] for r in rows]).reshape(-1, 4)
    return Detections(np.array(img, np.int64), np.array(cat, np.int64), boxes, np.array(scores))


def load_ground_truth(path, fmt: str = "xywh") -> GroundTruth:
    """Ground truth from COCO JSON (``.json``) or CSV (anything else)."""
    if str(path).lower().endswith(".json"):
        return ground_truth_from_coco(_read_json(path), str(path))
    return ground_truth_from_csv(path, fmt)


def load_detections(path, gt: GroundTruth, fmt: str = "xywh") -> Detections:
    """Detections from a COCO results JSON (``.json``) or CSV, checked against ``gt``."""
    if str(path).lower().endswith(".json"):
        return detections_from_coco(_read_json(path), gt, str(path))
    return detections_from_csv(path, gt, fmt)


def load_boxes(path, fmt: str = "xywh", offset: float = 0.0) -> np.ndarray:
    """An (N, 4) float64 box array from CSV, JSON or NPY, validated in ``fmt``."""
    p = str(path)
    if p.lower().endswith(".npy"):
        if not Path(p).is_file():
            raise CvtoolError(f"File not found: '{path}'.")
        arr = np.load(p, allow_pickle=False).astype(np.float64)
    elif p.lower().endswith(".json"):
        doc = _read_json(p)
        if not isinstance(doc, list):
            raise CvtoolError(f"'{path}' must be a JSON list of boxes.")
        items = [d.get("bbox") if isinstance(d, dict) else d for d in doc]
        for i, b in enumerate(items):
            if not isinstance(b, list | tuple) or len(b) != 4:
                raise CvtoolError(f"{path}: box {i} must be 4 numbers. Got {b!r}.")
        arr = np.array([[_float(v, f"{path}: box {i}") for v in b] for i, b in enumerate(items)])
    else:
        _, rows = _read_csv(p)
        cols = slice(0, 4) if rows and len(rows[0]) == 4 else slice(2, 6)
        arr = np.array([[_float(v, f"{path}: row {i + 1}") for v in r[cols]]
                        for i, r in enumerate(rows)])  # fmt: skip
    arr = arr.reshape(-1, 4) if arr.size == 0 else arr
    if arr.shape[0] == 0:
        raise CvtoolError(f"'{path}' has no boxes.")
    return validate(arr, fmt, p, offset)


def load_image_array(path) -> np.ndarray:
    """A 2-D array from ``.npy`` or an image file (single channel; palette PNG gives indices)."""
    p = Path(path)
    if not p.is_file():
        raise CvtoolError(f"File not found: '{path}'.")
    if p.suffix.lower() == ".npy":
        arr = np.load(p, allow_pickle=False)
    else:
        from PIL import Image

        try:
            with Image.open(p) as im:
                arr = np.asarray(im)
        except OSError as exc:
            raise CvtoolError(f"'{path}' is not a readable image ({exc}).") from None
    if arr.ndim == 3 and arr.shape[2] in (1, 2, 3, 4):
        # greyscale saved as RGB(A): accept when the colour channels agree
        if arr.shape[2] >= 3 and not (np.array_equal(arr[..., 0], arr[..., 1])
                                      and np.array_equal(arr[..., 0], arr[..., 2])):  # fmt: skip
            raise CvtoolError(f"'{path}' must be a single-channel mask or label map. Got colour.")
        arr = arr[..., 0]
    if arr.ndim != 2:
        raise CvtoolError(f"'{path}' must be a 2-D mask. Got shape {arr.shape}.")
    return arr


def read_detection_table(path, fmt: str = "xywh") -> dict:
    """Detections without ground truth (for NMS): COCO results JSON or CSV with scores.

    Returns
    -------
    dict
        ``kind`` ('json' or 'csv'), ``records`` (the input entries), ``header``
        (CSV header or None), ``image`` and ``cls`` (int codes, shape (N,)),
        ``boxes`` (N, 4) xywh float64, ``scores`` (N,).
    """
    header = None
    if str(path).lower().endswith(".json"):
        records = _read_json(path)
        if isinstance(records, dict) and "annotations" in records:
            records = records["annotations"]
        if not isinstance(records, list):
            raise CvtoolError(f"'{path}' must be a JSON list of detections.")
        keys, boxes, scores = [], [], []
        for i, d in enumerate(records):
            where = f"{path}: detection {i}"
            if not isinstance(d, dict) or not {"image_id", "category_id"} <= set(d):
                raise CvtoolError(f"{where} must have image_id, category_id, bbox and score.")
            keys.append((str(d["image_id"]), str(d["category_id"])))
            boxes.append(_bbox(d.get("bbox"), where))
            scores.append(_float(d.get("score"), f"{where}: score"))
        kind = "json"
    else:
        header, rows = _read_csv(path)
        parsed = _csv_rows(path, fmt, "score")
        records = rows
        keys = [(r[0], r[1]) for r in parsed]
        boxes = [r[2] for r in parsed]
        scores = []
        for r in parsed:
            if r[3] is None:
                raise CvtoolError(f"{r[4]}: a detection needs a score (7th column).")
            scores.append(_float(r[3], f"{r[4]}: score"))
        kind = "csv"
    if not records:
        raise CvtoolError(f"'{path}' has no detections.")
    img_codes = {k: i for i, k in enumerate(dict.fromkeys(k[0] for k in keys))}
    cls_codes = {k: i for i, k in enumerate(dict.fromkeys(k[1] for k in keys))}
    return {
        "kind": kind,
        "records": records,
        "header": header,
        "image": np.array([img_codes[k[0]] for k in keys], np.int64),
        "cls": np.array([cls_codes[k[1]] for k in keys], np.int64),
        "boxes": np.array(boxes, np.float64).reshape(-1, 4),
        "scores": np.array(scores, np.float64),
    }


def write_detection_table(table: dict, keep, path) -> None:
    """Write the kept entries of a table from :func:`read_detection_table`, in input order."""
    import io

    from cvtool.fileio import atomic_write_text

    recs = [table["records"][i] for i in sorted(int(k) for k in keep)]
    if str(path).lower().endswith(".json"):
        if table["kind"] != "json":
            raise CvtoolError("--out: a CSV input writes a CSV output (use a .csv name).")
        atomic_write_text(path, json.dumps(recs) + "\n")
        return
    if table["kind"] != "csv":
        raise CvtoolError("--out: a JSON input writes a JSON output (use a .json name).")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if table["header"]:
        w.writerow(table["header"])
    w.writerows(recs)
    atomic_write_text(path, buf.getvalue())


def write_matrix(m: np.ndarray, path) -> None:
    """Write a matrix to ``.npy`` or ``.csv`` (atomically)."""
    from cvtool.fileio import atomic_path, atomic_write_text

    if str(path).lower().endswith(".npy"):
        with atomic_path(path) as tmp:
            np.save(tmp, m)
        return
    if not str(path).lower().endswith(".csv"):
        raise CvtoolError(f"The '--out' file must end in .csv or .npy. Got '{path}'.")
    atomic_write_text(path, "\n".join(",".join(repr(float(v)) for v in row) for row in m) + "\n")


def label_map_pairs(pred, truth) -> list[tuple[np.ndarray, np.ndarray]]:
    """(prediction, truth) label maps from two files, or two folders matched by file stem."""
    p, t = Path(pred), Path(truth)
    if p.is_dir() != t.is_dir():
        raise CvtoolError(
            f"PRED and GT must both be files or both folders. Got '{pred}', '{truth}'."
        )
    if not p.is_dir():
        return [(load_image_array(p), load_image_array(t))]
    exts = {".png", ".npy", ".bmp", ".tif", ".tiff"}
    pf = {f.stem: f for f in sorted(p.iterdir()) if f.suffix.lower() in exts}
    tf = {f.stem: f for f in sorted(t.iterdir()) if f.suffix.lower() in exts}
    missing = sorted(set(pf) ^ set(tf))
    if missing:
        raise CvtoolError(
            f"'{missing[0]}' is in one folder but not the other (PRED '{pred}', GT '{truth}')."
        )
    if not pf:
        raise CvtoolError(f"No label maps (.png/.npy) in '{pred}'.")
    return [(load_image_array(pf[k]), load_image_array(tf[k])) for k in sorted(pf)]


def parse_counts(text: str, name: str) -> list[float]:
    """Comma-separated counts such as ``"189,31"``."""
    try:
        vals = [float(v) for v in text.replace(" ", "").split(",") if v != ""]
    except ValueError:
        raise CvtoolError(
            f"The '--{name}' option must be comma-separated numbers. Got {text!r}."
        ) from None
    if not vals:
        raise CvtoolError(f"The '--{name}' option must list at least one count. Got {text!r}.")
    return [int(v) if v.is_integer() else v for v in vals]


def class_names(names: str | None, n: int, start: int = 0) -> list[str]:
    """``n`` class names from a comma-separated list, or start, start + 1, ... when none."""
    if names is None:
        return [str(i + start) for i in range(n)]
    out = [s.strip() for s in names.split(",")]
    if len(out) != n:
        raise CvtoolError(f"The '--names' option must give {n} names. Got {len(out)}.")
    return out
