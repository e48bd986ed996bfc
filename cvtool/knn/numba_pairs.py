"""Compiled steps of the pruned exact L2 search (:mod:`cvtool.knn.prune`), Numba.

Exact squared distances of uint8 rows are summed in int32 (255**2 * D < 2**31
for D <= 33025). Each test row is independent: the kernels run in parallel
over rows.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

SCAN_BLOCK = 16  # keys tested together (vectorised) before any is looked at alone


@njit(cache=True, boundscheck=False, inline="always")
def _sq_l2(a, b):
    s = np.int32(0)
    for d in range(a.shape[0]):  # int32 throughout: LLVM vectorises it (vpmaddwd)
        x = np.int32(a[d]) - np.int32(b[d])
        s = np.int32(s + x * x)
    return s


@njit(cache=True, boundscheck=False, inline="always")
def _offer(d2, j, best_d, best_c, k):
    """Put (d2, j) into the sorted top-k lists if it beats the k-th (j is not there yet)."""
    if d2 > best_d[k - 1] or (d2 == best_d[k - 1] and j >= best_c[k - 1]):
        return
    i = k - 1
    while i > 0 and (best_d[i - 1] > d2 or (best_d[i - 1] == d2 and best_c[i - 1] > j)):
        best_d[i] = best_d[i - 1]
        best_c[i] = best_c[i - 1]
        i -= 1
    best_d[i] = d2
    best_c[i] = j


@njit(cache=True, boundscheck=False, parallel=True)
def candidates(keys, shift, A, B, seeds, k, slots, counts):
    """The training rows each test row must measure exactly: bound key <= U (1 + 1e-6) - shift.

    keys (t, n_pad) float32 bound keys of test rows A (t, D); U is the k-th
    smallest exact squared distance of the training rows ``seeds[r]`` (an upper
    bound of the true k-th). slots (t, L) get the first L candidates of each
    row, in index order; counts (t,) the number of candidates (a count above L
    means the row's slots are incomplete).
    """
    t = keys.shape[0]
    n = B.shape[0]
    cap = slots.shape[1]
    for r in prange(t):
        best_d = np.full(k, np.int32(2**31 - 1))
        best_c = np.full(k, n)
        for j in seeds[r]:
            _offer(_sq_l2(A[r], B[j]), j, best_d, best_c, k)
        th = best_d[k - 1] * (1 + 1e-6) - shift[r]
        th32 = np.float32(th)  # rounded up if anything: more candidates, never fewer
        if th32 < th:
            th32 = np.nextafter(th32, np.float32(np.inf))
        row = keys[r]
        out = slots[r]
        c = 0
        for j0 in range(0, n, SCAN_BLOCK):  # blocks without a candidate are skipped
            j1 = min(j0 + SCAN_BLOCK, n)
            hit = False
            for j in range(j0, j1):
                hit |= row[j] <= th32
            if not hit:
                continue
            for j in range(j0, j1):
                if row[j] <= th32:
                    if c < cap:
                        out[c] = j
                    c += 1
        counts[r] = c


@njit(cache=True, boundscheck=False, parallel=True)
def exact_topk(A, B, starts, cols, k, out_d2, out_cols):
    """The k nearest of each test row among its candidates, by exact distance, then index.

    Test row r's candidates are ``cols[starts[r]:starts[r + 1]]``. The exact
    distances are computed in training-row order (a counting sort of the
    pairs), so each training row is read from memory once for every test row
    that needs it rather than once per pair.
    """
    t = starts.shape[0] - 1
    n = B.shape[0]
    m = cols.shape[0]
    rows = np.empty(m, dtype=np.int32)
    for r in prange(t):
        for i in range(starts[r], starts[r + 1]):
            rows[i] = r
    col_start = np.zeros(n + 1, dtype=np.int64)
    for i in range(m):
        col_start[cols[i] + 1] += 1
    col_start = np.cumsum(col_start)
    order = np.empty(m, dtype=np.int64)
    for i in range(m):
        c = cols[i]
        order[col_start[c]] = i
        col_start[c] += 1
    d2 = np.empty(m, dtype=np.int32)
    for q in prange(m):
        i = order[q]
        d2[i] = _sq_l2(A[rows[i]], B[cols[i]])
    for r in prange(t):
        best_d = out_d2[r]
        best_c = out_cols[r]
        best_d[:] = np.int32(2**31 - 1)
        best_c[:] = n
        for i in range(starts[r], starts[r + 1]):
            _offer(d2[i], cols[i], best_d, best_c, k)


def warm_up() -> None:
    """Load both kernels (from Numba's cache) with the argument types the search passes."""
    A = np.zeros((2, 3), dtype=np.uint8)
    keys = np.zeros((2, 4), dtype=np.float32)
    seeds = np.zeros((2, 1), dtype=np.int64)
    d2 = np.empty((2, 1), dtype=np.int32)
    cols = np.zeros((2, 1), dtype=np.int64)
    candidates(keys, np.zeros(2), A, A, seeds, 1, np.empty((2, 2), np.int32), np.empty(2, np.int64))
    exact_topk(A, A, np.arange(3, dtype=np.int64), np.zeros(2, np.int32), 1, d2, cols)
