"""Reading boxes, ground truth, detections and masks from files, with validation.

* COCO JSON ground truth: ``images``, ``annotations`` (``image_id``,
  ``category_id``, ``bbox`` xywh, ``area`` (default w*h), ``iscrowd`` (default
  0), ``difficult`` (default 0, used by VOC mode)), ``categories``.
* COCO detections: the results list ``[{image_id, category_id, bbox, score}]``.
* CSV, one box a row: ``image, class, x, y, w, h[, score]`` (detections) or
  ``image, class, x, y, w, h[, difficult]`` (ground truth); the four
  coordinates in the chosen ``--box-format``; an optional header row, whose names
  ``score``, ``difficult`` and ``iscrowd`` locate those columns. A CSV ground
  truth knows only the images that have a box.
Box lists, masks, NMS tables and small parsers are in :mod:`cvtool.boxes.files`.
Every problem is a CvtoolError naming the file, the entry and the value.
"""

from __future__ import annotations

import contextlib
import csv
import gc
import json
import math
from itertools import chain
from operator import itemgetter
from pathlib import Path

import numpy as np

from cvtool.boxes.core import convert, validate
from cvtool.boxes.detections import Detections, GroundTruth
from cvtool.errors import CvtoolError


def _existing(path) -> Path:
    """``path`` as a Path, or a CvtoolError when no such file exists (streams count)."""
    p = Path(path)
    if not p.exists() or p.is_dir():
        if p.is_dir():
            raise CvtoolError(f"'{path}' is a folder, not a file.")
        raise CvtoolError(f"File not found: '{path}'.")
    return p


def read_source(path, binary: bool = False) -> str | bytes:
    """The text of a box file: a path, '-' (stdin), a FIFO or /dev/fd/N, read once;
    its bytes, undecoded, with ``binary``.

    Readers take the text so that a stream is never read twice.
    """
    from cvtool.fileio import is_stdio, read_bytes, read_text

    if not is_stdio(path):
        _existing(path)
    return read_bytes(path) if binary else read_text(path)


def is_json_source(path, text: str) -> bool:
    """COCO JSON or CSV: by the name's extension, else ('-', streams) by the first character."""
    suffix = Path(str(path)).suffix.lower()
    if suffix in (".json", ".csv"):
        return suffix == ".json"
    from cvtool.fileio import looks_like_json

    return looks_like_json(text)


@contextlib.contextmanager
def no_gc():
    """Pause the cyclic garbage collector (restored after).

    Parsing a results file makes hundreds of thousands of acyclic dicts and
    lists; each allocation burst triggers collections that rescan them all,
    which cost 3-4x the parse itself.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def read_json(path, text: str | None = None):
    """A parsed JSON file ('-' is stdin); `text` when the caller has read it already.

    orjson (the ``fast`` extra) parses when it is installed, in about 60 % of
    the standard library's time, straight from the file's bytes (it reads
    integers past 64 bits as floats); what it refuses (NaN, Infinity, lone
    surrogates, bad JSON) goes to the standard parser, which reads the first
    three and names the problem.
    """
    if text is None:
        text = read_source(path, binary=True)
    try:
        with no_gc():
            return _fast_loads(text, path)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise CvtoolError(f"'{path}' is not valid JSON ({' '.join(str(exc).split())}).") from None


def _fast_loads(text: str | bytes, path):
    try:
        import orjson

        return orjson.loads(text)
    except (ImportError, ValueError):  # (orjson.JSONDecodeError is a ValueError)
        pass
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise CvtoolError(f"{path} is not a UTF-8 text file.") from None
    return json.loads(text)


def _read_csv(path, text: str | None = None):
    text = read_source(path) if text is None else text
    if "\0" in text:
        raise CvtoolError(f"'{path}' is not a text CSV file (it holds NUL bytes).")
    rows = [r for r in csv.reader(text.splitlines()) if r and any(c.strip() for c in r)]
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


def _csv_score(score, where):
    """The score column of a CSV detection row (None when the row has none)."""
    if score is None:
        raise CvtoolError(f"{where}: a detection needs a score (7th column).")
    return _float(score, f"{where}: score")


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
        raise CvtoolError(
            f"'{name}': every image and category needs an 'id', all of one type ({exc})."
        ) from None
    imap = {v: i for i, v in enumerate(image_ids)}
    cmap = {c: i for i, (c, _) in enumerate(cats)}
    anns = doc["annotations"]
    fast = _ground_truth_fast(anns, imap, cmap)
    if fast is not None:
        return GroundTruth(image_ids, [c for c, _ in cats], [s for _, s in cats], *fast)
    n = len(anns)
    img, cat = np.empty(n, np.int64), np.empty(n, np.int64)
    boxes, area = np.empty((n, 4)), np.empty(n)
    crowd, diff, zero = np.zeros(n, bool), np.zeros(n, bool), np.zeros(n, bool)
    for i, a in enumerate(anns):
        where = f"{name}: annotation {i}"
        if not isinstance(a, dict):
            raise CvtoolError(f"{where} must be an object with image_id, category_id and bbox.")
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


def _ground_truth_fast(anns, imap, cmap):
    """The annotation arrays of well-formed input, in bulk; None on any irregularity.

    None sends the caller to the per-annotation loop, which names the first bad entry.
    """
    try:
        if not isinstance(anns, list) or not all(type(a) is dict for a in anns):
            return None
        n = len(anns)
        img = np.array([imap.get(a["image_id"], -1) for a in anns], np.int64).reshape(n)
        cat = np.array([cmap.get(a["category_id"], -1) for a in anns], np.int64).reshape(n)
        boxes = np.array([a["bbox"] for a in anns], np.float64)
        if n == 0 or boxes.shape != (n, 4) or (img < 0).any() or (cat < 0).any():
            return None
        if not all(type(a["bbox"]) in (list, tuple) for a in anns):
            return None
        wh = boxes[:, 2] * boxes[:, 3]
        area = np.array([a.get("area", np.nan) for a in anns], np.float64).reshape(n)
        missing = np.array(["area" not in a for a in anns], bool)
        area = np.where(missing, wh, area)
        if not (np.isfinite(boxes).all() and np.isfinite(area).all() and (boxes[:, 2:] >= 0).all()):
            return None
        crowd = np.array([bool(a.get("iscrowd", 0)) for a in anns], bool)
        diff = np.array([bool(a.get("difficult", 0)) for a in anns], bool)
        zero = np.array([a.get("id", 1) == 0 for a in anns], bool)
    except (KeyError, TypeError, ValueError):
        return None
    return img, cat, boxes, area, crowd, diff, zero


def _lookup(gt: GroundTruth):
    imap = {v: i for i, v in enumerate(gt.image_ids)}
    imap.update({str(v): i for i, v in enumerate(gt.image_ids)})
    cmap = {v: i for i, v in enumerate(gt.cat_ids)}
    cmap.update({str(v): i for i, v in enumerate(gt.cat_ids)})
    cmap.update({v: i for i, v in enumerate(gt.cat_names)})
    return imap, cmap


def detections_from_coco(results, gt: GroundTruth, name: str = "dets", boxes=None) -> Detections:
    """Detections from a parsed COCO results list, checked against the ground truth.

    A vectorised path handles well-formed input; on any problem the slow
    per-detection path runs to name the first bad entry. ``boxes`` (D, 4)
    xywh, when given, stand for the results' ``bbox`` fields (segm results
    boxed by their masks).
    """
    if isinstance(results, dict) and "annotations" in results:
        results = results["annotations"]
    if not isinstance(results, list):
        raise CvtoolError(f"'{name}' must be a JSON list of detections (the COCO results format).")
    imap, cmap = _lookup(gt)
    n = len(results)
    try:  # in bulk (a KeyError, TypeError or ValueError means a bad entry somewhere)
        if boxes is None:
            bb = list(map(itemgetter("bbox"), results))
            if set(map(type, bb)) - {list, tuple} or set(map(len, bb)) - {4}:
                raise ValueError
            boxes = np.fromiter(chain.from_iterable(bb), np.float64, 4 * n).reshape(n, 4)
        img = np.fromiter(map(imap.__getitem__, map(itemgetter("image_id"), results)), np.int64, n)
        cat = np.fromiter(
            map(cmap.__getitem__, map(itemgetter("category_id"), results)), np.int64, n
        )
        scores = np.fromiter(map(itemgetter("score"), results), np.float64, n)
        ok = np.isfinite(boxes).all() and np.isfinite(scores).all() and (boxes[:, 2:] >= 0).all()
    except (KeyError, TypeError, ValueError):
        ok = False
    if ok:
        return Detections(img, cat, boxes, scores)
    return _detections_slow(results, imap, cmap, name, boxes)


def _detections_slow(results, imap, cmap, name, given=None) -> Detections:
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
        boxes[i] = _bbox(d.get("bbox") if given is None else list(given[i]), where)
        scores[i] = _float(d.get("score"), f"{where}: score")
    return Detections(img, cat, boxes, scores)


def _csv_rows(path, fmt, extra, text: str | None = None):
    header, rows = _read_csv(path, text)
    col = 6
    if header is not None:  # a header names its columns: a 'score' column is no 'difficult' one
        col = header.index(extra) if extra in header else None
    out = []
    for i, r in enumerate(rows):
        where = f"{path}: row {i + 1}"
        if len(r) < 6:
            raise CvtoolError(f"{where} must have image, class, 4 coordinates. Got {r!r}.")
        b = np.array([[_float(v, f"{where}: coordinate") for v in r[2:6]]])
        validate(b, fmt, where)
        val = r[col] if col is not None and len(r) > col and r[col] != "" else None
        out.append((r[0], r[1], convert(b, fmt, "xywh")[0], val, where))
    return out


def ground_truth_from_csv(path, fmt: str = "xywh", text: str | None = None) -> GroundTruth:
    """GroundTruth from a CSV (image, class, 4 coordinates[, difficult])."""
    rows = _csv_rows(path, fmt, "difficult", text)
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


def detections_from_csv(
    path, gt: GroundTruth, fmt: str = "xywh", text: str | None = None
) -> Detections:
    """Detections from a CSV (image, class, 4 coordinates, score)."""
    rows = _csv_rows(path, fmt, "score", text)
    imap, cmap = _lookup(gt)
    img, cat, scores = [], [], []
    for image, cls, _, score, where in rows:
        if image not in imap:
            raise CvtoolError(f"{where}: image {image!r} is not an image of the ground truth.")
        if cls not in cmap:
            raise CvtoolError(f"{where}: class {cls!r} is not a class of the ground truth.")
        img.append(imap[image])
        cat.append(cmap[cls])
        scores.append(_csv_score(score, where))
    boxes = np.array([r[2] for r in rows]).reshape(-1, 4)
    return Detections(np.array(img, np.int64), np.array(cat, np.int64), boxes, np.array(scores))


def _is_json_name(path) -> bool:
    return Path(str(path)).suffix.lower() == ".json"


def load_ground_truth(path, fmt: str = "xywh") -> GroundTruth:
    """Ground truth from COCO JSON or CSV: by extension, else by content ('-' is stdin)."""
    if _is_json_name(path):  # parsed from the bytes, never decoded to text
        return ground_truth_from_coco(read_json(path), str(path))
    text = read_source(path)
    if is_json_source(path, text):
        return ground_truth_from_coco(read_json(path, text), str(path))
    return ground_truth_from_csv(path, fmt, text)


def load_detections(path, gt: GroundTruth, fmt: str = "xywh") -> Detections:
    """Detections from a COCO results JSON or CSV (as for the ground truth), checked against ``gt``."""
    if _is_json_name(path):
        return detections_from_coco(read_json(path), gt, str(path))
    text = read_source(path)
    if is_json_source(path, text):
        return detections_from_coco(read_json(path, text), gt, str(path))
    return detections_from_csv(path, gt, fmt, text)


_read_json = read_json  # the older private name
