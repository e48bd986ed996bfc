"""k-nearest-neighbour classification of images: L1, L2 and cosine distances.

``kneighbors`` finds, for every test image, the k nearest training images in
bounded memory: test rows go in chunks and training columns in blocks sized
from a memory budget (``memory_mb``), so peak memory does not grow with the
test set. ``vote`` turns neighbour labels into predictions and
``evaluate`` runs the whole experiment: choose (k, metric) on a validation
split or k-fold cross-validation of the training set, then touch the test set
once. The arithmetic lives in :mod:`cvtool.knn_kernels` (and the optional
compiled L1 kernel in :mod:`cvtool.knn_numba`).

Rules (all equal to scikit-learn's ``KNeighborsClassifier(algorithm='brute')``
wherever scikit-learn's answer is defined):

- Distances are in the units of the input (0-255 pixels for uint8 images).
  uint8 images are compared with exact integer arithmetic, so equal
  distances are exactly equal.
- Neighbours are ordered by (distance, training index): of equally distant
  training images the one with the smaller index is nearer, also at the k-th
  place. (scikit-learn's brute force keeps the smaller index for L1 and L2;
  for cosine it uses ``argpartition``, whose choice among ties is unspecified.)
- Uniform vote: the class with the most neighbours; a tie between classes
  goes to the smallest label (scikit-learn's mode does the same).
- Distance vote: each neighbour weighs 1/d. If any neighbour is at distance
  0 (an exact duplicate), those neighbours get weight 1 and the others 0.
  Class weights are summed in neighbour order as scikit-learn does, and a
  tie goes to the smallest label.
- Model selection: the highest validation accuracy; a tie goes to the smaller
  k, then to the metric listed first.

Left out: approximate search, kd-trees, radius neighbours, regression.
"""

from __future__ import annotations

import resource
import sys
import time

import numpy as np

from cvtool import knn_kernels as kk
from cvtool.errors import CvtoolError

METRICS = ("l1", "l2", "cosine")
WEIGHTS = ("uniform", "distance")
ENGINES = ("auto", "numpy", "numba")
DEFAULT_MEMORY_MB = 256
MIN_ROWS = 64  # keep at least this many test rows per block (efficient matrix products)


def flatten(x) -> np.ndarray:
    """(N, ...) images to (N, D) rows; uint8 stays uint8, everything else float64."""
    x = np.asarray(x)
    if x.ndim < 2:
        raise CvtoolError(f"Images must have shape (N, ...) with N rows. Got shape {x.shape}.")
    x = x.reshape(len(x), -1)
    if x.dtype != np.uint8:
        x = x.astype(np.float64)
        if not np.isfinite(x).all():
            raise CvtoolError("The images contain NaN or infinite values.")
    return x


def check_k(k: int, n_train: int) -> int:
    """k as an int in [1, n_train]."""
    if isinstance(k, bool) or int(k) != k or k < 1:
        raise CvtoolError(f"The 'k' parameter must be an int >= 1. Got {k!r} instead.")
    if k > n_train:
        raise CvtoolError(
            f"The 'k' parameter must be <= the number of training images ({n_train}). Got {k}."
        )
    return int(k)


def check_choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise CvtoolError(
            f"The '{name}' parameter must be one of {', '.join(allowed)}. Got {value!r} instead."
        )
    return value


def resolve_engine(engine: str, metric: str, xp) -> str:
    """'numba' for L1 on NumPy when Numba imports (or is asked for), else 'numpy'."""
    check_choice("engine", engine, ENGINES)
    if metric != "l1" or xp is not np or engine == "numpy":
        if engine == "numba" and xp is not np:
            raise CvtoolError("The 'engine' numba runs on the numpy backend only.")
        return "numpy"
    try:
        import numba  # noqa: F401
    except ImportError:
        if engine == "numba":
            raise CvtoolError("The 'engine' numba needs Numba: pip install numba.") from None
        return "numpy"
    return "numba"


def _plan(metric, B, n_pad, xp, engine, budget):
    exact = B.dtype == np.uint8
    if metric == "l2":
        if exact and B.shape[1] <= kk.MAX_EXACT_FEATURES:
            return kk.L2Exact(B, n_pad, xp)
        return kk.L2Float(B, n_pad, xp)
    if metric == "cosine":
        return kk.Cosine(B, n_pad, xp)
    return kk.L1(B, n_pad, xp, engine, budget)


def kneighbors(
    x_train, x_test, k: int, metric: str = "l2", *, memory_mb: float = DEFAULT_MEMORY_MB,
    xp=None, engine: str = "auto",
):  # fmt: skip
    """The k nearest training images of every test image.

    Parameters
    ----------
    x_train : (N, ...) training images (uint8 for exact integer arithmetic).
    x_test : (T, ...) test images with the same number of values per image.
    k : number of neighbours, 1 <= k <= N.
    metric : 'l1', 'l2' or 'cosine'.
    memory_mb : budget for the working buffers (the prepared training matrix
        is extra: N * D * 4 bytes for L2, 8 for cosine, 1 for uint8 L1).
    xp : array module (numpy or cupy); default numpy.
    engine : 'auto' | 'numpy' | 'numba' (the compiled L1 kernel).

    Returns
    -------
    dist : (T, k) float64 distances, ascending.
    idx : (T, k) int64 training indices; equal distances in increasing index order.

    Raises
    ------
    CvtoolError
        Bad k, metric, budget or mismatched image sizes.

    Examples
    --------
    >>> a = np.array([[0, 0], [3, 4], [6, 8]], np.uint8)
    >>> d, i = kneighbors(a, np.array([[3, 4]], np.uint8), 2, "l2")
    >>> d.tolist(), i.tolist()
    ([[0.0, 5.0]], [[1, 0]])
    """
    xp = np if xp is None else xp
    check_choice("metric", metric, METRICS)
    if not memory_mb > 0:
        raise CvtoolError(f"The 'memory' parameter must be > 0 (MB). Got {memory_mb!r} instead.")
    B, A = flatten(x_train), flatten(x_test)
    if A.shape[1] != B.shape[1]:
        raise CvtoolError(
            f"Test images have {A.shape[1]} values each but training images {B.shape[1]}."
        )
    if B.dtype != A.dtype:  # mixed: compare as floats
        A, B = A.astype(np.float64), B.astype(np.float64)
    n = B.shape[0]
    k = check_k(k, n)
    engine = resolve_engine(engine, metric, xp)
    budget = int(memory_mb * 2**20)
    bs = kk.block_size(n)
    n_pad = kk.padded(n, bs)
    plan = _plan(metric, B, n_pad, xp, engine, budget)
    return _search(plan, A, n, n_pad, k, bs, budget, xp)


def _search(plan, A, n, n_pad, k, bs, budget, xp):
    """Chunked search with one plan; rows the plan cannot rank exactly go to its fallback."""
    t_total, D = A.shape
    entry, col_bytes = plan.entry_bytes, plan.col_bytes
    if entry * n_pad * MIN_ROWS + col_bytes * n_pad <= budget:
        m = n_pad
    else:
        m = max(bs, budget // (entry * MIN_ROWS + col_bytes) // bs * bs)
    rows = int(max(1, min(t_total, (budget - col_bytes * m) // (entry * m + 8 * D))))
    buf = xp.empty(rows * m, dtype=plan.key_dtype)
    dist = xp.empty((t_total, k), dtype=xp.float64)
    idx = xp.empty((t_total, k), dtype=xp.int64)
    for r0 in range(0, t_total, rows):
        Ar = xp.asarray(A[r0 : r0 + rows])
        t = Ar.shape[0]
        state = plan.rows(Ar)
        best = None
        for c0 in range(0, n_pad, m):
            c1 = min(c0 + m, n_pad)
            keys = plan.block(state, c0, c1, buf[: t * (c1 - c0)].reshape(t, c1 - c0))
            vals, cols = kk.topk_block(keys, min(k, min(c1, n) - c0), bs, xp)
            cols = cols + c0
            best = (vals, cols) if best is None else kk.merge(*best, vals, cols, k, xp)
        vals, cols = best
        d = plan.finish(state, vals)
        bad = plan.inexact_rows(state, vals[:, k - 1])
        if bad is not None and bool(bad.any()):
            sel = xp.nonzero(bad)[0]
            fallback = kk.L2Float.from_exact(plan, n)
            fallback.col_bytes = D * 8
            d[sel], cols[sel] = _search(fallback, Ar[sel], n, n_pad, k, bs, budget, xp)
        dist[r0 : r0 + t] = d
        idx[r0 : r0 + t] = cols
    return dist, idx


def vote(labels, dist, weights: str, n_classes: int, xp=None):
    """Majority (or 1/d-weighted) vote of neighbour labels; ties to the smallest label.

    Parameters
    ----------
    labels : (T, k) class indices in [0, n_classes) of the neighbours, nearest first.
    dist : (T, k) their distances.
    weights : 'uniform' or 'distance'.

    Returns
    -------
    (T,) predicted class indices.

    Examples
    --------
    >>> vote(np.array([[2, 1, 1, 2]]), np.array([[1.0, 2, 3, 4]]), "uniform", 3).tolist()
    [1]
    >>> vote(np.array([[2, 1, 1, 2]]), np.array([[1.0, 2, 3, 4]]), "distance", 3).tolist()
    [2]
    """
    xp = np if xp is None else xp
    check_choice("weights", weights, WEIGHTS)
    if weights == "uniform":
        scores = [xp.sum(labels == c, axis=1) for c in range(n_classes)]
    else:
        zero = dist == 0
        w = 1.0 / xp.where(zero, 1.0, dist)
        zero_row = xp.any(zero, axis=1)
        w = xp.where(zero_row[:, None], zero.astype(xp.float64), w)
        # (labels == c) * w summed along the row: the very sum scikit-learn's weighted_mode takes.
        scores = [xp.sum((labels == c) * w, axis=1) for c in range(n_classes)]
    return xp.argmax(xp.stack(scores, axis=1), axis=1)  # first maximum: smallest label


def stratified_folds(y: np.ndarray, folds: int, seed: int | None = 0) -> list[tuple]:
    """Seeded stratified k-fold split: [(train_idx, val_idx)] * folds, sorted indices."""
    n = len(y)
    if isinstance(folds, bool) or int(folds) != folds or not 2 <= folds <= n:
        raise CvtoolError(f"The 'folds' parameter must be an int in [2, {n}]. Got {folds!r}.")
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
    from cvtool.data.datasets import stratified_split

    xp = np if xp is None else xp
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
    y_train, y_test = np.asarray(y_train).astype(np.int64), np.asarray(y_test).astype(np.int64)
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
    pred, nearest = np.asarray(_host(pred)), np.asarray(_host(d[:, 0]))
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


def _host(a):
    from cvtool.backend import to_numpy

    return to_numpy(a)


def write_predictions(path, truth, predicted, nearest) -> None:
    """CSV 'index,true,predicted,distance' (distance to the nearest neighbour), written atomically."""
    from cvtool.fileio import atomic_write_text

    lines = ["index,true,predicted,distance"]
    lines += [
        f"{j},{int(t)},{int(p)},{float(d)!r}"
        for j, (t, p, d) in enumerate(zip(truth, predicted, nearest, strict=True))
    ]
    atomic_write_text(path, "\n".join(lines) + "\n")


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
        if value < 1:
            raise CvtoolError(f"The '{name}' parameter must be an int >= 1. Got {value} instead.")
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


def parse_validation(text: str | None) -> int | float | None:
    """'500' -> 500 images, '0.2' -> a fraction; None stays None."""
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise CvtoolError(
            f"The 'validation' parameter must be a count or a fraction in (0, 1). Got {text!r}."
        ) from None
    if not value > 0 or (value >= 1 and not value.is_integer()):
        raise CvtoolError(
            f"The 'validation' parameter must be a count or a fraction in (0, 1). Got {text!r}."
        )
    return int(value) if value >= 1 else value


def load_data(dataset: str, train: str | None = None, test: str | None = None):
    """(name, Dataset) from a named set or from --train/--test paths.

    --train uses the training split of its file; --test the test split of its
    file, or its only split when it has no test part; with --train alone the
    test split comes from the same file.
    """
    from cvtool.data.datasets import Dataset, load_dataset

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
