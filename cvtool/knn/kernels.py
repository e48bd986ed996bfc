"""Distance blocks and exact top-k selection behind :mod:`cvtool.knn`.

A *plan* turns a training matrix into whatever one metric needs (shifted
float32 pixels and norms for L2, float64 rows and norms for cosine, raw bytes
for L1) and computes a block of *keys* for a chunk of test rows against a
range of training columns. Keys rank training points exactly as the distance
does; ``finish`` turns the k selected keys into distances.

Exactness on uint8 images (the common case) is by construction, not by luck:

- L2 shifts pixels to ``p - 128`` in [-128, 127]. Every partial sum of a dot
  product of two such rows with at most 1024 features is an integer of
  magnitude <= 128 * 128 * 1024 = 2**24, so float32 matrix products are exact
  in any summation order (and scaling by -2 keeps them exact: even integers
  up to 2**25 are float32 numbers). The key ``||b||^2 - 2 a.b`` is one
  correctly rounded float32 addition of two exact numbers; rounding is
  monotonic, and every key below 2**24 is exact, so when the k-th selected
  key is below 2**24 the selection equals the exact one. Rows where it is
  not are recomputed in float64 (exact for integers below 2**53).
- L1 sums ``|a - b|`` of bytes into int32 (numba kernel) or uint8 max-min
  then int32 sums (NumPy/CuPy), both exact.
- Cosine on uint8 rows with at most 1459 features ranks by the key
  ``-(a.b)^2 / (|a|^2 |b|^2)`` = -cos^2 (pixels are >= 0, so a.b >= 0 and
  cos^2 orders like cos). Numerator and denominator are integers below 2**53
  (255**2 * 1459 squared), exact in float64, and the key is one correctly
  rounded division of them: mathematically equal cosines give bit-equal keys
  (and so bit-equal distances ``1 - sqrt(-key)``), whatever the vectors, so
  equal distances go to the smaller training index like L1 and L2. Float
  inputs and longer rows use ``1 - a.b / (|a| |b|)`` in float64 (three
  roundings): there mathematically equal distances may differ in the last bit
  and then rank by that rounding, not by index.

Top-k never sorts a whole row: the row is cut into blocks, the k-th smallest
block minimum bounds the k-th smallest key from above, only blocks whose
minimum is under that bound are gathered, and the few candidates are sorted
by (key, training index) -- equal keys go to the smaller training index.

Left out: float16/bfloat16 arithmetic, sparse inputs, approximate search.
"""

from __future__ import annotations

import numpy as np

F32_EXACT = float(2**24)  # keys below this are exact in the float32 L2 path
MAX_EXACT_FEATURES = 1024  # 128 * 128 * 1024 == 2**24
MAX_COSINE_FEATURES = 1459  # (255**2 * 1459)**2 < 2**53 <= (255**2 * 1460)**2


def block_size(n: int) -> int:
    """Selection block length for n training points: a power of two near sqrt(n) / 2."""
    return 1 << max(0, min(8, (int(n).bit_length() - 1) // 2))


def padded(n: int, bs: int) -> int:
    """n rounded up to a multiple of bs."""
    return -(-n // bs) * bs


def sentinel(dtype) -> float | int:
    """A key larger than every real key of this dtype (for padded columns)."""
    dtype = np.dtype(dtype)
    return np.iinfo(dtype).max if dtype.kind in "iu" else np.inf


# ----------------------------------------------------------------------------- top-k


def first_k(rows, cols, vals, t: int, k: int, xp):
    """Per row, the k candidates with the smallest (value, column), sorted.

    Parameters
    ----------
    rows, cols, vals : (M,) candidate row, column and key; every row in range(t)
        has at least k candidates.

    Returns
    -------
    (vals, cols) : (t, k) arrays sorted by value, then column.
    """
    keys = xp.stack([cols.astype(xp.float64), vals.astype(xp.float64), rows.astype(xp.float64)])
    order = xp.lexsort(keys)  # last key (row) is the primary one
    rows, cols, vals = rows[order], cols[order], vals[order]
    counts = xp.bincount(rows, minlength=t)
    starts = xp.cumsum(counts) - counts
    rank = xp.arange(rows.shape[0]) - starts[rows]
    keep = rank < k
    return vals[keep].reshape(t, k), cols[keep].reshape(t, k)


def topk_block(keys, k: int, bs: int, xp):
    """Exact k smallest keys per row of a (t, m) block, ties to the smaller column.

    Parameters
    ----------
    keys : (t, m) keys, m a multiple of bs; padded columns hold ``sentinel``.
    k : 1 <= k <= number of real columns.
    bs : block length for the block-minimum bound.

    Returns
    -------
    (vals, cols) : (t, k) keys and column indices, sorted by (key, column).
    """
    t, m = keys.shape
    if xp is not np:
        return _topk_sorted(keys, k, xp)
    nb = m // bs
    # Block b holds the columns b, b + nb, b + 2 nb, ... (any partition of the columns
    # works): its minimum is an element-wise minimum of bs contiguous slices, which
    # vectorises, where a minimum over short contiguous runs does not.
    strips = keys.reshape(t, bs, nb)  # strips[:, j, b] = column j * nb + b
    bmin = np.minimum.reduce(strips, axis=1)  # (t, nb)
    # The k-th smallest block minimum is >= the k-th smallest key: the k
    # smallest block minima are k distinct keys.
    if nb > k:
        thr = xp.partition(bmin, k - 1, axis=1)[:, k - 1]
    else:  # fewer blocks than k: no useful bound, keep the whole row
        thr = bmin.max(axis=1) if nb == k else keys.max(axis=1)
    r, b = xp.nonzero(bmin <= thr[:, None])
    cand = strips[r, :, b]  # (nc, bs): block b of row r
    ci, cj = xp.nonzero(cand <= thr[r][:, None])
    rows = r[ci]
    cols = cj * nb + b[ci]
    return first_k(rows, cols, cand[ci, cj], t, k, xp)


def _topk_sorted(keys, k: int, xp):
    """The device top-k: a stable sort of each row (ties keep the smaller column first).

    The host path prunes candidates by block minima, which sizes arrays by the
    data (``nonzero``, ``bincount``, masks): on a device each such size is a
    transfer to the host. A row sort has fixed shapes and no transfer; CuPy's
    sorts are stable.
    """
    order = xp.argsort(keys, axis=1, kind="stable")[:, :k]  # (t, k)
    return xp.take_along_axis(keys, order, axis=1), order


def merge(vals_a, cols_a, vals_b, cols_b, k: int, xp):
    """Merge two per-row candidate lists (t, ka) and (t, kb) into the best k.

    Every column in ``cols_a`` is smaller than every one in ``cols_b`` (blocks
    are searched left to right) and each list is sorted by (key, column).
    """
    t = vals_a.shape[0]
    vals = xp.concatenate([vals_a.astype(xp.float64), vals_b.astype(xp.float64)], axis=1)
    cols = xp.concatenate([cols_a, cols_b], axis=1)
    if xp is not np:  # stable: equal keys keep a's (smaller) columns first, in order
        order = xp.argsort(vals, axis=1, kind="stable")[:, : min(k, vals.shape[1])]
        return xp.take_along_axis(vals, order, axis=1), xp.take_along_axis(cols, order, axis=1)
    rows = xp.repeat(xp.arange(t), vals.shape[1])
    return first_k(rows, cols.ravel(), vals.ravel(), t, min(k, vals.shape[1]), xp)


# ----------------------------------------------------------------------------- plans


class L2Exact:
    """L2 on uint8 rows with <= 1024 features: exact float32 matrix products."""

    entry_bytes = 4
    key_dtype = np.float32
    col_bytes = 0

    def __init__(self, B, n_pad: int, xp):
        n, D = B.shape
        # Row-major like B (one contiguous pass converts it; no transposed copy): the
        # matrix products take the transposed view, which BLAS reads as it is.
        Bs = xp.empty((n_pad, D), dtype=xp.float32)
        Bs[:n] = xp.asarray(B)
        Bs[:n] -= 128  # (n_pad, D) in [-128, 127]
        Bs[n:] = 0  # padded rows
        self.Bs = Bs
        # Partial sums of squares are integers <= 2**24: exact in float32, any order.
        nb = xp.einsum("jd,jd->j", Bs, Bs)
        nb[n:] = np.inf
        self.nb = nb  # (n_pad,)
        self.xp = xp

    @property
    def BT(self):
        """(D, n_pad) the shifted training matrix, transposed (a view)."""
        return self.Bs.T

    def rows(self, A):
        """Per-chunk state of test rows A (t, D) uint8."""
        xp = self.xp
        As = xp.asarray(A, dtype=xp.float32) - 128
        na = xp.einsum("id,id->i", As, As).astype(xp.float64)  # (t,) exact
        return As * -2, na

    def block(self, state, c0: int, c1: int, out):
        A2, _ = state
        self.xp.matmul(A2, self.Bs[c0:c1].T, out=out)  # -2 a.b, exact
        out += self.nb[c0:c1]  # one rounding of an exact sum: monotonic
        return out

    def inexact_rows(self, state, kth_vals):
        """Rows whose k-th key is not below 2**24 (their float32 keys may be rounded)."""
        return kth_vals >= F32_EXACT

    def finish(self, state, vals):
        xp = self.xp
        return xp.sqrt(xp.maximum(state[1][:, None] + vals.astype(xp.float64), 0.0))


class L2Float:
    """L2 through ||a||^2 + ||b||^2 - 2 a.b in float64 (float data, or > 1024 features).

    Also the exact fallback of :class:`L2Exact` (``from_exact``): uint8 data
    shifted by -128 gives integer products below 2**53, exact in float64.
    """

    entry_bytes = 8
    key_dtype = np.float64
    col_bytes = 0

    def __init__(self, B, n_pad: int, xp, shift: float = 0.0):
        n, D = B.shape
        self.xp, self.shift = xp, shift
        BT = xp.zeros((D, n_pad), dtype=xp.float64)
        BT[:, :n] = xp.asarray(B, dtype=xp.float64).T - shift
        self._set(BT, n)

    def _set(self, BT, n):
        xp = self.xp
        self.BT = BT
        # float32 storage holds shifted uint8 pixels: float32 sums are exact integers there.
        nb = xp.einsum("dj,dj->j", BT, BT).astype(xp.float64)
        nb[n:] = np.inf
        self.nb = nb

    @classmethod
    def from_exact(cls, plan: L2Exact, n: int):
        self = cls.__new__(cls)
        self.xp, self.shift = plan.xp, 128.0
        self._set(plan.BT, n)  # float32 storage, upcast per block
        return self

    def rows(self, A):
        xp = self.xp
        As = xp.asarray(A, dtype=xp.float64) - self.shift
        return As * -2, xp.sum(xp.square(As), axis=1)

    def block(self, state, c0, c1, out):
        xp = self.xp
        xp.matmul(state[0], self.BT[:, c0:c1].astype(xp.float64, copy=False), out=out)
        out += self.nb[c0:c1]
        return out

    def inexact_rows(self, state, kth_vals):
        return None

    def finish(self, state, vals):
        xp = self.xp
        return xp.sqrt(xp.maximum(state[1][:, None] + vals, 0.0))


class CosineExact:
    """Cosine on uint8 rows (<= MAX_COSINE_FEATURES): key -(a.b)^2 / (|a|^2 |b|^2), exact ties.

    A zero row has similarity 0 (distance 1), as with :class:`Cosine`.
    """

    key_dtype = np.float64
    entry_bytes = 16  # the block makes one temporary of its size
    col_bytes = 0

    def __init__(self, B, n_pad: int, xp):
        n, D = B.shape
        self.xp, self.n = xp, n
        BT = xp.zeros((D, n_pad), dtype=xp.float64)
        BT[:, :n] = xp.asarray(B, dtype=xp.float64).T
        self.BT = BT
        nb = xp.einsum("dj,dj->j", BT, BT)  # (n_pad,) |b|^2, exact integers
        nb[nb == 0] = 1.0  # a zero row: a.b = 0, so the key is 0 (distance 1)
        self.nb = nb

    def rows(self, A):
        xp = self.xp
        A = xp.asarray(A, dtype=xp.float64)
        na = xp.einsum("id,id->i", A, A)  # (t,) |a|^2, exact
        na[na == 0] = 1.0
        return A, na

    def block(self, state, c0, c1, out):
        xp = self.xp
        A, na = state
        xp.matmul(A, self.BT[:, c0:c1], out=out)  # a.b, exact integers
        out *= out  # (a.b)^2 < 2**53: exact
        out /= na[:, None] * self.nb[c0:c1]  # exact product; the one rounding is here
        xp.negative(out, out=out)  # -cos^2 in [-1, 0]: smaller is nearer
        if c1 > self.n:
            out[:, max(0, self.n - c0) :] = np.inf
        return out

    def inexact_rows(self, state, kth_vals):
        return None

    def finish(self, state, vals):
        return 1.0 - self.xp.sqrt(-vals)


class Cosine:
    """Cosine distance 1 - a.b / (|a| |b|) in float64; zero rows have similarity 0.

    For float rows, or uint8 rows longer than MAX_COSINE_FEATURES.
    """

    key_dtype = np.float64
    entry_bytes = 16  # the block makes one temporary of its size
    col_bytes = 0

    def __init__(self, B, n_pad: int, xp):
        n, D = B.shape
        self.xp = xp
        BT = xp.zeros((D, n_pad), dtype=xp.float64)
        BT[:, :n] = xp.asarray(B, dtype=xp.float64).T
        self.BT = BT
        sb = xp.sqrt(xp.sum(xp.square(BT), axis=0))
        sb[sb == 0] = 1.0  # as sklearn's normalize: a zero row stays zero
        self.sb, self.n = sb, n

    def rows(self, A):
        xp = self.xp
        A = xp.asarray(A, dtype=xp.float64)
        sa = xp.sqrt(xp.sum(xp.square(A), axis=1))
        sa[sa == 0] = 1.0
        return A, sa

    def block(self, state, c0, c1, out):
        xp = self.xp
        A, sa = state
        xp.matmul(A, self.BT[:, c0:c1], out=out)  # a.b
        out /= sa[:, None] * self.sb[c0:c1]
        xp.subtract(1.0, out, out=out)
        xp.clip(out, 0.0, 2.0, out=out)
        if c1 > self.n:
            out[:, max(0, self.n - c0) :] = np.inf
        return out

    def inexact_rows(self, state, kth_vals):
        return None

    def finish(self, state, vals):
        return vals


class L1:
    """L1 distance: numba kernel when available (CPU), else chunked xp max-min sums."""

    def __init__(self, B, n_pad: int, xp, engine: str, budget: int):
        n, D = B.shape
        self.xp, self.n, self.engine, self.budget = xp, n, engine, budget
        self.exact = B.dtype == np.uint8
        dtype = np.uint8 if self.exact else np.float64
        self.key_dtype = np.int32 if self.exact else np.float64
        # The NumPy path leaves half the budget to its (rows, columns, D) tiles.
        self.entry_bytes = np.dtype(self.key_dtype).itemsize * (1 if engine == "numba" else 2)
        self.col_bytes = 0
        self.B = xp.zeros((n_pad, D), dtype=dtype)
        self.B[:n] = xp.asarray(B, dtype=dtype)
        if engine == "numba":
            from cvtool.knn import numba_l1

            self._kernel = numba_l1.l1_block

    def rows(self, A):
        dtype = np.uint8 if self.exact else np.float64
        return self.xp.asarray(A, dtype=dtype)

    def block(self, A, c0, c1, out):
        xp = self.xp
        if self.engine == "numba":
            self._kernel(A, self.B, c0, c1, self.n, out)
            return out
        # (tt, mm, D) intermediates bounded by the budget; no loop over single images.
        D = A.shape[1]
        per_pair = (2 * D if self.exact else 16 * D) + 8
        mm = min(c1 - c0, max(1, self.budget // (2 * per_pair)))
        tt = max(1, self.budget // (2 * per_pair * mm))
        for j0 in range(c0, c1, mm):
            j1 = min(j0 + mm, c1)
            Bj = self.B[j0:j1][None]  # (1, mm, D)
            for i0 in range(0, A.shape[0], tt):
                Ai = A[i0 : i0 + tt][:, None]  # (tt, 1, D)
                if self.exact:
                    d = xp.maximum(Ai, Bj)
                    d -= xp.minimum(Ai, Bj)  # |a - b| without leaving uint8
                    out[i0 : i0 + tt, j0 - c0 : j1 - c0] = d.sum(axis=2, dtype=xp.int32)
                else:
                    out[i0 : i0 + tt, j0 - c0 : j1 - c0] = xp.abs(Ai - Bj).sum(axis=2)
        if c1 > self.n:
            out[:, max(0, self.n - c0) :] = sentinel(self.key_dtype)
        return out

    def inexact_rows(self, state, kth_vals):
        return None

    def finish(self, state, vals):
        return vals.astype(self.xp.float64)
