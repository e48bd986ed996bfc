"""Neighbour search and voting: ``kneighbors``, ``vote`` and their input checks.

``kneighbors`` checks its inputs, picks a plan from :mod:`cvtool.knn.kernels`
(exact float32 L2, float64 L2, cosine, or L1 through NumPy/CuPy or the
compiled kernel) and runs the chunked search in bounded memory; ``vote`` turns
neighbour labels into predictions. The tie rules are stated in
:mod:`cvtool.knn`.

Left out: the experiment around the search (:mod:`cvtool.knn.eval`).
"""

from __future__ import annotations

import os

import numpy as np

from cvtool.backend import array_module, to_numpy
from cvtool.errors import CvtoolError, check_choice, check_int, check_number
from cvtool.knn import kernels as kk
from cvtool.knn import prune

METRICS = ("l1", "l2", "cosine")
WEIGHTS = ("uniform", "distance")
ENGINES = ("auto", "numpy", "numba")
DEFAULT_MEMORY_MB = 128  # 256 gave the same neighbours 4 % slower (a 262 MB tile, page faults)
MIN_ROWS = 64  # keep at least this many test rows per block (efficient matrix products)


def flatten(x):
    """(N, ...) images to (N, D) rows on x's own device; uint8 stays uint8, the rest float64.

    A host array stays on the host and a device array on its device (each plan
    moves what it needs to its ``xp``); the finiteness check of a device array
    is its one transfer (a bool).
    """
    xp = array_module(x)
    if xp is np:
        x = np.asarray(x)
    if x.ndim < 2:
        raise CvtoolError(f"Images must have shape (N, ...) with N rows. Got shape {x.shape}.")
    x = x.reshape(len(x), -1)
    if x.dtype != np.uint8:
        x = x.astype(np.float64)
        if not bool(xp.isfinite(x).all()):
            raise CvtoolError("The images contain NaN or infinite values.")
    return x


def check_k(k: int, n_train: int) -> int:
    """k as an int in [1, n_train]."""
    k = check_int("k", k, low=1)
    if k > n_train:
        check_int("k", k, low=1, high=n_train, hint=f"There are {n_train} training images.")
    return k


def resolve_engine(engine: str, metric: str, xp) -> str:
    """'numba' for L1 and L2 on NumPy when Numba imports (or is asked for), else 'numpy'.

    L1 then runs the compiled distance kernel; L2 on uint8 images the pruned exact
    search of :mod:`cvtool.knn.prune` where it applies.
    """
    check_choice("engine", engine, ENGINES)
    if metric == "cosine" or xp is not np or engine == "numpy":
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
        # CuPy with CUPY_TF32=1 rounds float32 products to 10-bit mantissas: not exact.
        tf32 = xp is not np and os.environ.get("CUPY_TF32", "0") != "0"
        if exact and B.shape[1] <= kk.MAX_EXACT_FEATURES and not tf32:
            return kk.L2Exact(B, n_pad, xp)
        return kk.L2Float(B, n_pad, xp)
    if metric == "cosine":
        if B.dtype == np.uint8 and B.shape[1] <= kk.MAX_COSINE_FEATURES:
            return kk.CosineExact(B, n_pad, xp)
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
    xp : array module (numpy or cupy) to compute with; default that of x_train.
    engine : 'auto' | 'numpy' | 'numba': Numba's compiled L1 kernel and pruned exact
        L2 search (:mod:`cvtool.knn.prune`), or NumPy only; the same neighbours.

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
    xp = array_module(x_train) if xp is None else xp
    check_choice("metric", metric, METRICS)
    check_number("memory", memory_mb, low=0, low_open=True, hint="In MB.")
    if xp is np:  # device inputs computed on the host
        x_train, x_test = to_numpy(x_train), to_numpy(x_test)
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
    if engine == "numba" and A.dtype == np.uint8 and prune.applies(B, metric, xp, k):

        def brute(rows):  # the chunks where the projection bound prunes too little
            return _search(
                _plan(metric, B, n_pad, xp, engine, budget), A[rows], n, n_pad, k, bs, budget, xp
            )

        return prune.search(A, B, k, budget, brute, MIN_ROWS)
    plan = _plan(metric, B, n_pad, xp, engine, budget)
    return _search(plan, A, n, n_pad, k, bs, budget, xp)


def _search(plan, A, n, n_pad, k, bs, budget, xp):
    """Chunked search with one plan; rows the plan cannot rank exactly go to its fallback.

    A chunk makes no device-to-host transfer: the rows a plan may have ranked
    inexactly are gathered on the device and checked once, after the last chunk.
    """
    t_total, D = A.shape
    entry, col_bytes = plan.entry_bytes, plan.col_bytes
    if xp is not np:
        entry += 16  # the device top-k's row sort: int64 indices and a sorted copy
    if entry * n_pad * MIN_ROWS + col_bytes * n_pad <= budget:
        m = n_pad
    else:
        m = max(bs, budget // (entry * MIN_ROWS + col_bytes) // bs * bs)
    rows = int(max(1, min(t_total, (budget - col_bytes * m) // (entry * m + 8 * D))))
    buf = xp.empty(rows * m, dtype=plan.key_dtype)
    dist = xp.empty((t_total, k), dtype=xp.float64)
    idx = xp.empty((t_total, k), dtype=xp.int64)
    bad = None  # (t_total,) rows to redo with the fallback, on the device
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
        dist[r0 : r0 + t] = plan.finish(state, vals)
        idx[r0 : r0 + t] = cols
        inexact = plan.inexact_rows(state, vals[:, k - 1])
        if inexact is not None:
            if bad is None:
                bad = xp.zeros(t_total, dtype=bool)
            bad[r0 : r0 + t] = inexact
    if bad is not None and bool(bad.any()):  # one transfer per search, not per chunk
        sel = to_numpy(xp.nonzero(bad)[0])
        fallback = kk.L2Float.from_exact(plan, n)
        fallback.col_bytes = D * 8
        sel_x = xp.asarray(sel)
        dist[sel_x], idx[sel_x] = _search(fallback, A[sel], n, n_pad, k, bs, budget, xp)
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
    xp = array_module(dist) if xp is None else xp
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
