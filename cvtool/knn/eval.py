"""The k-NN experiment: model selection on the training set, one test pass, reports.

``evaluate`` scores every (k, metric) pair on a stratified validation split or
stratified k folds of the training set (never the test set), picks the best
(ties: smaller k, then the metric listed first), then classifies the test set
once with the whole training set, and returns accuracy, per-class accuracy,
the confusion matrix, time and peak memory. ``write_predictions`` writes the
per-image CSV atomically; ``parse_*`` and ``load_data`` read command-line
inputs. The neighbour search itself is :func:`cvtool.knn.search.kneighbors`.

Left out: grid search over weights, nested cross-validation, saving a model
(a k-NN model is its training set).
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

import numpy as np

from cvtool.backend import array_module, to_numpy
from cvtool.data.datasets import Dataset, load_dataset, stratified_split
from cvtool.errors import CvtoolError, check_choice, check_int
from cvtool.fileio import atomic_write_text
from cvtool.knn.search import (
    DEFAULT_MEMORY_MB,
    METRICS,
    WEIGHTS,
    check_k,
    flatten,
    kneighbors,
    vote,
)


def stratified_folds(y: np.ndarray, folds: int, seed: int | None = 0) -> list[tuple]:
    """Seeded stratified k-fold split: [(train_idx, val_idx)] * folds, sorted indices."""
    n = len(y)
    check_int("folds", folds, low=2, high=n)
    rng = np.random.default_rng(seed)
    fold = np.empty(n, np.int64)
    offset = 0
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        fold[idx] = (np.arange(len(idx)) + offset) % folds  # spread small classes round-robin
        offset += len(idx)
    return [(np.flatnonzero(fold != f), np.flatnonzero(fold == f)) for f in range(folds)]


def _validate_pairs(x, y_idx, n_classes, ks, metrics, weights, splits, opts, xp):
    acc = {(k, m): [] for m in metrics for k in ks}
    for metric in metrics:
        for tr, va in splits:
            check_k(max(ks), len(tr))
            d, i = kneighbors(x[tr], x[va], max(ks), metric, xp=xp, **opts)
            lab = xp.asarray(y_idx[tr])[i]  # (V, kmax)
            yv = xp.asarray(y_idx[va])
            for k in ks:
                pred = vote(lab[:, :k], d[:, :k], weights, n_classes, xp)
                acc[(k, metric)].append(float(xp.mean(pred == yv)))
    return [
        {"k": k, "metric": m, "accuracy": float(np.mean(acc[(k, m)])), "folds": acc[(k, m)]}
        for m in metrics
        for k in ks
    ]


def choose(rows: list[dict], metrics: list[str]) -> dict:
    """The best row: highest accuracy, then smaller k, then the metric listed first."""
    return min(rows, key=lambda r: (-r["accuracy"], r["k"], metrics.index(r["metric"])))


def peak_rss_mb() -> float:
    """The process's peak resident memory in MiB (getrusage; includes BLAS and Numba buffers)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def evaluate(
    x_train, y_train, x_test, y_test, *, ks=(1,), metrics=("l2",), weights="uniform",
    validation=None, folds=None, seed=0, memory_mb=DEFAULT_MEMORY_MB, xp=None, engine="auto",
    class_names=(),
) -> dict:  # fmt: skip
    """Choose (k, metric) on the training set, then classify the test set once.

    Validation runs when there is more than one (k, metric) pair or when
    `validation` or `folds` is given (default: a stratified 10% split). The
    chosen pair then uses the whole training set against the test set.

    Returns
    -------
    dict with 'k', 'metric', 'weights', 'selection' (rows with 'chosen', or
    None), 'accuracy', 'per_class', 'confusion' (true x predicted counts),
    'predictions' (T,), 'nearest' (T,) distance to the nearest neighbour,
    'seconds' and 'peak_rss_mb'.
    """
    xp = array_module(x_train) if xp is None else xp
    t0 = time.perf_counter()
    ks, metrics = [int(k) for k in ks], list(metrics)
    if not ks or not metrics:
        raise CvtoolError("Give at least one value of k and one metric.")
    for k in ks:
        check_k(k, len(y_train))
    for m in metrics:
        check_choice("metric", m, METRICS)
    check_choice("weights", weights, WEIGHTS)
    if validation is not None and folds is not None:
        raise CvtoolError("Give either 'validation' or 'folds', not both.")
    # Labels are host data (class bookkeeping, splits, the confusion matrix).
    y_train = np.asarray(to_numpy(y_train)).astype(np.int64)
    y_test = np.asarray(to_numpy(y_test)).astype(np.int64)
    classes = np.unique(np.concatenate([y_train, y_test]))
    y_idx, t_idx = np.searchsorted(classes, y_train), np.searchsorted(classes, y_test)
    x = flatten(x_train)
    opts = {"memory_mb": memory_mb, "engine": engine}
    selection, method = None, None
    if len(ks) * len(metrics) > 1 or validation is not None or folds is not None:
        if folds is not None:
            splits, method = (
                stratified_folds(y_train, folds, seed),
                f"{folds}-fold cross-validation",
            )
        else:
            splits = [stratified_split(y_train, 0.1 if validation is None else validation, seed)]
            method = f"validation split of {len(splits[0][1])} training images"
        selection = _validate_pairs(x, y_idx, len(classes), ks, metrics, weights, splits, opts, xp)
        best = choose(selection, metrics)
        for r in selection:
            r["chosen"] = r is best
        k, metric = best["k"], best["metric"]
    else:
        k, metric = ks[0], metrics[0]
    t1 = time.perf_counter()
    d, i = kneighbors(x, x_test, k, metric, xp=xp, **opts)  # the one use of the test set
    pred = vote(xp.asarray(y_idx)[i], d, weights, len(classes), xp)
    pred, nearest = np.asarray(to_numpy(pred)), np.asarray(to_numpy(d[:, 0]))
    t2 = time.perf_counter()
    conf = np.zeros((len(classes), len(classes)), np.int64)
    np.add.at(conf, (t_idx, pred), 1)
    names = list(class_names) if len(class_names) == len(classes) else [str(c) for c in classes]
    per_class = [
        {"label": int(c), "name": names[j], "count": int(conf[j].sum()),
         "correct": int(conf[j, j]),
         "accuracy": float(conf[j, j] / conf[j].sum()) if conf[j].sum() else None}
        for j, c in enumerate(classes)
    ]  # fmt: skip
    return {
        "k": k, "metric": metric, "weights": weights, "selection": selection,
        "selection_method": method, "train_size": len(y_train), "test_size": len(y_test),
        "accuracy": float(np.mean(pred == t_idx)), "per_class": per_class,
        "labels": [int(c) for c in classes], "confusion": conf,
        "predictions": classes[pred], "truth": y_test, "nearest": nearest,
        "seconds": {"validation": t1 - t0, "test": t2 - t1, "total": t2 - t0},
        "peak_rss_mb": peak_rss_mb(),
    }  # fmt: skip


def check_output(path) -> None:
    """Fail early (before any distance is computed) when `path` cannot be a file."""
    if Path(path).is_dir() or not Path(path).name:
        raise CvtoolError(f"The 'predictions' parameter must be a file path. Got a folder: {path}.")


def write_predictions(path, truth, predicted, nearest) -> None:
    """CSV 'index,true,predicted,distance' (distance to the nearest neighbour), written atomically."""
    check_output(path)
    lines = ["index,true,predicted,distance"]
    lines += [
        f"{j},{int(t)},{int(p)},{float(d)!r}"
        for j, (t, p, d) in enumerate(zip(truth, predicted, nearest, strict=True))
    ]
    try:
        atomic_write_text(path, "\n".join(lines) + "\n")
    except OSError as exc:
        raise CvtoolError(f"Cannot write the predictions to {path}: {exc.strerror}.") from None


# ----------------------------------------------------------------------------- command-line inputs


def parse_ints(text: str, name: str) -> list[int]:
    """'1,3,5' -> [1, 3, 5]; each an int >= 1, duplicates dropped, order kept."""
    out = []
    for part in str(text).split(","):
        part = part.strip()
        try:
            value = int(part)
        except ValueError:
            raise CvtoolError(
                f"The '{name}' parameter must be an int >= 1 or a comma list of them. Got {part!r}."
            ) from None
        check_int(name, value, low=1)
        if value not in out:
            out.append(value)
    return out


def parse_names(text: str, name: str, allowed: tuple[str, ...]) -> list[str]:
    """'l1,l2' -> ['l1', 'l2'], each checked against `allowed`."""
    out = []
    for part in str(text).split(","):
        part = check_choice(name, part.strip().lower(), allowed)
        if part not in out:
            out.append(part)
    return out


def load_data(dataset: str, train: str | None = None, test: str | None = None):
    """(name, Dataset) from a named set or from --train/--test paths.

    --train uses the training split of its file; --test the test split of its
    file, or its only split when it has no test part; with --train alone the
    test split comes from the same file.
    """
    if train is None and test is None:
        return dataset, load_dataset(dataset)
    if train is None:
        raise CvtoolError("The 'test' parameter needs --train as well.")
    tr = load_dataset(train)
    te = tr if test is None else load_dataset(test)
    xt, yt = (te.x_test, te.y_test) if len(te.y_test) else (te.x_train, te.y_train)
    if len(tr.y_train) == 0 or len(yt) == 0:
        raise CvtoolError("Both the training and the test split must hold images.")
    ds = Dataset(tr.name, tr.x_train, tr.y_train, xt, yt, tr.class_names)
    return f"{train} / {test or train}", ds
