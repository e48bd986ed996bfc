"""Box lists, masks and label maps, NMS tables, matrices and small option parsers.

* Box lists for IoU matrices: CSV of 4 numbers a row (or ``image, class, 4
  coordinates, ...``), JSON list of 4-lists or of objects with ``bbox``, or
  ``.npy`` (N, 4).
* Masks and label maps: ``.npy`` or an image (PNG; palette PNGs give indices).
* Detection tables for NMS (COCO results JSON or CSV with scores), written
  back in the same form. Every file is written atomically.

Problems are CvtoolErrors naming the file, the entry and the value.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from cvtool.boxes.core import validate
from cvtool.boxes.io import (
    _bbox,
    _csv_rows,
    _csv_score,
    _existing,
    _float,
    _read_csv,
    is_json_source,
    read_json,
    read_source,
)
from cvtool.errors import CvtoolError


def load_boxes(path, fmt: str = "xywh", offset: float = 0.0) -> np.ndarray:
    """An (N, 4) float64 box array from CSV, JSON or NPY, validated in ``fmt``.

    '-' (stdin) and streams hold CSV or JSON (told apart by the first character).
    """
    p = str(path)
    if p.lower().endswith(".npy"):
        arr = _load_npy(path).astype(np.float64)
        if arr.ndim != 2 or arr.shape[1] != 4:
            raise CvtoolError(f"'{path}' must hold an (N, 4) array of boxes. Got {arr.shape}.")
        if not np.isfinite(arr).all():
            raise CvtoolError(f"'{path}': every box coordinate must be a finite number.")
        return validate(arr, fmt, p, offset) if len(arr) else _no_boxes(path)
    text = read_source(path)
    if is_json_source(path, text):
        doc = read_json(p, text)
        if not isinstance(doc, list):
            raise CvtoolError(f"'{path}' must be a JSON list of boxes.")
        items = [d.get("bbox") if isinstance(d, dict) else d for d in doc]
        for i, b in enumerate(items):
            if not isinstance(b, list | tuple) or len(b) != 4:
                raise CvtoolError(f"{path}: box {i} must be 4 numbers. Got {b!r}.")
        arr = np.array([[_float(v, f"{path}: box {i}") for v in b] for i, b in enumerate(items)])
    else:
        _, rows = _read_csv(p, text)
        cols = slice(0, 4) if rows and len(rows[0]) == 4 else slice(2, 6)
        for i, r in enumerate(rows):
            if len(r[cols]) != 4:
                raise CvtoolError(
                    f"{path}: row {i + 1} must be 4 numbers or image,class,4 numbers. Got {r!r}."
                )
        arr = np.array([[_float(v, f"{path}: row {i + 1}") for v in r[cols]]
                        for i, r in enumerate(rows)])  # fmt: skip
    arr = arr.reshape(-1, 4) if arr.size == 0 else arr
    if arr.shape[0] == 0:
        _no_boxes(path)
    return validate(arr, fmt, p, offset)


def _no_boxes(path):
    raise CvtoolError(f"'{path}' has no boxes.")


def _load_npy(path) -> np.ndarray:
    """An array from a .npy file or stream, with one-line errors for damaged files."""
    from cvtool.fileio import is_stdio, seekable

    if not is_stdio(path):
        _existing(path)
    try:
        arr = np.load(seekable(path), allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise CvtoolError(
            f"'{path}' is not a readable .npy array ({' '.join(str(exc).split())[:120]})."
        ) from None
    if not isinstance(arr, np.ndarray) or not (
        np.issubdtype(arr.dtype, np.number) or arr.dtype == bool
    ):
        raise CvtoolError(f"'{path}' must hold a numeric array.")
    return arr


def load_image_array(path) -> np.ndarray:
    """A 2-D array from ``.npy`` or an image file (single channel; palette PNG gives indices)."""
    from cvtool.fileio import is_stdio, seekable

    if not is_stdio(path):
        _existing(path)
    if str(path).lower().endswith(".npy"):
        arr = _load_npy(path)
    else:
        from PIL import Image

        try:
            with Image.open(seekable(path)) as im:
                arr = np.asarray(im)
        except (OSError, ValueError, SyntaxError) as exc:
            text = " ".join(str(exc).split())[:120]
            raise CvtoolError(f"'{path}' is not a readable image ({text}).") from None
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
    text = read_source(path)
    if is_json_source(path, text):
        records = read_json(path, text)
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
        header, rows = _read_csv(path, text)
        parsed = _csv_rows(path, fmt, "score", text)
        records = rows
        keys = [(r[0], r[1]) for r in parsed]
        boxes = [r[2] for r in parsed]
        scores = [_csv_score(r[3], r[4]) for r in parsed]
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


def check_table_output(kind: str, path) -> None:
    """Refuse an output name whose extension says another form than the input's ('json'/'csv').

    '-', streams and names without .json/.csv take the input's form.
    """
    suffix = Path(str(path)).suffix.lower()
    if suffix == ".json" and kind != "json":
        raise CvtoolError("--out: a CSV input writes a CSV output (use a .csv name).")
    if suffix == ".csv" and kind != "csv":
        raise CvtoolError("--out: a JSON input writes a JSON output (use a .json name).")


def write_detection_table(table: dict, keep, path) -> None:
    """Write the kept entries of a table from :func:`read_detection_table`, in input order."""
    import io

    from cvtool.fileio import atomic_write_text

    recs = [table["records"][i] for i in sorted(int(k) for k in keep)]
    check_table_output(table["kind"], path)
    if table["kind"] == "json":
        atomic_write_text(path, json.dumps(recs) + "\n")
        return
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if table["header"]:
        w.writerow(table["header"])
    w.writerows(recs)
    atomic_write_text(path, buf.getvalue())


def iou_matrix_files(file_a, file_b, fmt: str = "xywh", offset: float = 0.0, giou=False, xp=None):
    """The IoU (or GIoU) matrix of two box files and each A box's best match.

    Returns
    -------
    dict with 'metric', 'matrix' (N, M) NumPy float64, 'best_match_of_a' (N,)
    column index of the largest value per row and 'best_value_of_a' (N,).
    """
    from cvtool.backend import to_numpy
    from cvtool.boxes.core import box_giou, box_iou

    xp = np if xp is None else xp
    a = xp.asarray(load_boxes(file_a, fmt, offset))
    b = xp.asarray(load_boxes(file_b, fmt, offset))
    m = to_numpy((box_giou if giou else box_iou)(a, b, fmt, offset))
    best = m.argmax(axis=1) if m.shape[1] else np.zeros(len(m), np.int64)
    value = m.max(axis=1) if m.shape[1] else np.full(len(m), np.nan)
    return {"metric": "giou" if giou else "iou", "matrix": m,
            "best_match_of_a": best, "best_value_of_a": value}  # fmt: skip


def matrix_format(path) -> str | None:
    """'npy' or 'csv' for a matrix output path (None for no path); '-' and streams are CSV."""
    from cvtool.fileio import is_stdio, writes_stdout

    if path is None:
        return None
    p = str(path).lower()
    if p.endswith(".npy"):
        return "npy"
    if p.endswith(".csv") or is_stdio(path) or writes_stdout(path):
        return "csv"
    if Path(path).exists() and not Path(path).is_file() and not Path(path).is_dir():
        return "csv"  # a FIFO or a process substitution
    raise CvtoolError(f"The '--out' file must end in .csv or .npy. Got '{path}'.")


def write_matrix(m: np.ndarray, path) -> None:
    """Write a matrix to ``.npy`` or ``.csv`` (atomically; '-' and streams take CSV)."""
    from cvtool.fileio import atomic_path, atomic_write_text

    if matrix_format(path) == "npy":
        with atomic_path(path) as tmp:
            np.save(tmp, m)
        return
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
