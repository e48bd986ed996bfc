"""What ``cvtool data list`` and ``cvtool data info`` report, as plain dicts.

``catalog()`` describes the named datasets without loading their images (the
sizes come from the IDX headers when the files are present, otherwise from
the published sizes). ``describe(name_or_path)`` loads one dataset and counts
its splits, image shape, dtype and classes. Nothing here prints.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from cvtool.data.datasets import (
    IDX_FILES,
    KNOWN,
    Dataset,
    dataset_dirs,
    find_dataset_dir,
    load_dataset,
)
from cvtool.data.formats import detect_format, read_any
from cvtool.data.idx import read_idx_header

# Published sizes of the named sets, used when the files are absent.
EXPECTED = {
    "mnist-sample": {"train": 4000, "test": 1000, "source": "shipped inside cvtool"},
    "fashion-mnist": {
        "train": 60000,
        "test": 10000,
        "source": "Debian package dataset-fashion-mnist, or 'cvtool data fetch fashion-mnist'",
    },
    "mnist": {"train": 60000, "test": 10000, "source": "'cvtool data fetch mnist'"},
}


def catalog() -> list[dict]:
    """One dict per named dataset: name, present, path, train, test, image_shape, classes, MiB."""
    rows = []
    for name in KNOWN:
        folder = find_dataset_dir(name)
        row = {
            "name": name,
            "present": folder is not None,
            "path": str(folder if folder is not None else dataset_dirs(name)[-1]),
            "train": EXPECTED[name]["train"],
            "test": EXPECTED[name]["test"],
            "image_shape": [28, 28],
            "classes": 10,
            "size_mib": None,
            "source": EXPECTED[name]["source"],
        }
        if folder is not None:
            _, train_dims = read_idx_header(folder / IDX_FILES["x_train"])
            _, test_dims = read_idx_header(folder / IDX_FILES["x_test"])
            row["train"], row["test"] = train_dims[0], test_dims[0]
            row["image_shape"] = list(train_dims[1:])
            row["size_mib"] = round(
                sum((folder / f).stat().st_size for f in IDX_FILES.values()) / 2**20, 1
            )
        rows.append(row)
    return rows


def locate(name_or_path: str | os.PathLike) -> tuple[str, str]:
    """(format, location) of a named dataset or a path, for the report."""
    text = str(name_or_path)
    if text in KNOWN:
        folder = find_dataset_dir(text)
        return "idx", str(folder) if folder is not None else ""
    from cvtool.data.formats import is_stream

    if is_stream(text):
        return "stream", text
    return detect_format(Path(text)), str(Path(text))


def class_counts(ds: Dataset) -> list[dict]:
    """Per class: label, name, number of train and test images."""
    k = ds.num_classes
    train = np.bincount(ds.y_train, minlength=k)
    test = np.bincount(ds.y_test, minlength=k)
    names = list(ds.class_names) + [str(i) for i in range(len(ds.class_names), k)]
    return [
        {"label": i, "name": names[i], "train": int(train[i]), "test": int(test[i])}
        for i in range(k)
    ]


def describe(name_or_path: str | os.PathLike, shape: tuple[int, ...] | None = None) -> dict:
    """Load a dataset and summarise it.

    Returns
    -------
    dict with dataset, format, path, train, test, image_shape, dtype,
    num_classes, classes (per-class counts), balanced (every class the same
    size within each split), pixel_min, pixel_max.
    """
    text = str(name_or_path)
    if text not in KNOWN and text != "-" and not Path(text).exists():
        load_dataset(text)  # raises the "unknown dataset" error with the known names
    fmt, where = locate(text)
    ds = (
        load_dataset(text)
        if text in KNOWN
        else read_any(text, shape=shape, fmt=None if fmt == "stream" else fmt)
    )
    counts = class_counts(ds)
    splits = ("train", "test") if len(ds.y_test) else ("train",)
    balanced = all(len({c[split] for c in counts}) == 1 for split in splits)
    return {
        "dataset": ds.name,
        "format": fmt,
        "path": where,
        "train": int(len(ds.x_train)),
        "test": int(len(ds.x_test)),
        "image_shape": list(ds.image_shape),
        "dtype": str(ds.x_train.dtype),
        "num_classes": ds.num_classes,
        "balanced": balanced,
        "pixel_min": int(ds.x_train.min()),
        "pixel_max": int(ds.x_train.max()),
        "classes": counts,
    }
