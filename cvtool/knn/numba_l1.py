"""Compiled L1 distance blocks (Numba), the fast CPU path of ``cvtool knn --metric l1``.

Imported only when Numba is installed (``pip install cvtool[fast]``) and the
backend is NumPy; :mod:`cvtool.knn.kernels` has the pure NumPy/CuPy path that
gives the same numbers. For uint8 rows the absolute differences are summed in
int32 (exact: 255 * D < 2**31); for float rows in float64, one feature after
another as scikit-learn's Manhattan distance does. Test rows are processed in
tiles of four, so each training row is read from memory once per tile.

Left out: other metrics (L2 and cosine are matrix products, where BLAS wins).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange, types
from numba.extending import overload

TILE = 4


def _sad(a, b):
    """sum_d |a[d] - b[d]| of two rows; compiled per dtype by the overload below."""
    raise NotImplementedError("compiled only: called from the Numba kernel")


@overload(_sad, jit_options={"boundscheck": False, "nogil": True})
def _sad_typed(a, b):
    if a.dtype == types.uint8:

        def sad_u8(a, b):
            # int32 accumulation lets LLVM vectorise as byte max/min/sub + int32 adds.
            s = np.int32(0)
            for d in range(a.shape[0]):
                x = np.int32(a[d]) - np.int32(b[d])
                s = np.int32(s + (x if x >= 0 else -x))
            return s

        return sad_u8

    def sad_f64(a, b):
        s = 0.0
        for d in range(a.shape[0]):
            s += abs(a[d] - b[d])
        return s

    return sad_f64


@njit(cache=True, boundscheck=False, parallel=True)
def _l1(A, B, c0, c1, n, out, big):
    # One kernel for both dtypes: Numba compiles (and caches) one version per signature.
    t = A.shape[0]
    ntiles = (t + TILE - 1) // TILE
    for tile in prange(ntiles):
        i0 = tile * TILE
        i1 = min(i0 + TILE, t)
        for j in range(c0, c1):
            if j >= n:
                for i in range(i0, i1):
                    out[i, j - c0] = big
                continue
            b = B[j]
            for i in range(i0, i1):
                out[i, j - c0] = _sad(A[i], b)


def l1_block(A, B, c0: int, c1: int, n: int, out) -> None:
    """out[i, j - c0] = sum_d |A[i, d] - B[j, d]| for j in [c0, c1); padded j >= n get the max.

    Parameters
    ----------
    A : (t, D) uint8 or float64 test rows (C-contiguous).
    B : (n_pad, D) training rows of the same dtype.
    out : (t, c1 - c0) int32 (uint8 input) or float64.
    """
    A = np.ascontiguousarray(A)
    if A.dtype == np.uint8:
        _l1(A, B, c0, c1, n, out, np.int32(np.iinfo(np.int32).max))
    else:
        _l1(A, B, c0, c1, n, out, np.inf)
