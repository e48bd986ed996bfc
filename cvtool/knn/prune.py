"""Exact L2 search that skips most training rows: a projection bound, then exact distances.

For uint8 images on the CPU with Numba (``pip install cvtool[fast]``), ``kneighbors``
with the L2 metric goes through here. The result is the brute-force search's,
neighbour for neighbour (equal distances to the smaller training index): no
training row that could be among the k nearest is skipped.

Why a row can be skipped: for any matrix V with orthonormal columns,
``||V^T a - V^T b|| <= ||a - b||``, so the distance between projected images is
a lower bound of the true one. With V the top PROJ_DIMS principal directions of
the training images (64 of Fashion-MNIST's 784 dimensions), the bound is tight
enough that a test image's k-th nearest distance U rules out all but a few
hundred of the 60,000 training images. Per chunk of test rows:

1. bound keys for every training row: one float32 product (t, 64) @ (64, n),
   an eighth of the brute-force product's work;
2. U: the exact distances of the 2k (at least 16) rows with the smallest bounds,
   the k-th smallest of them (an upper bound of the true k-th distance);
3. every training row whose bound is at most U (plus a margin for rounding)
   is a candidate (``numba_pairs.candidates``); the candidates of many chunks
   get their exact distances together (``numba_pairs.exact_topk``: int32 sums,
   exact, in training-row order so each training row is read once), and the k
   smallest by (distance, index) are the answer.

The margin: float32 rounding of the projections, the product and the sum move
the computed bound by less than about 1e-5 (||a'||^2 + ||b'||^2) (a' = V^T (a - mean));
MARGIN = 1e-4 of that, plus 1e-6 U, is kept on the safe side. Where the bound
is weak (noise images, few features) the candidates are many: a test row with
more than GIVE_UP of the training rows as candidates is measured against every
training row (a few such rows) or goes to the brute-force search (many: once
half the rows so far are such rows, all the rest go), as do
problems too small to gain (fewer than MIN_TRAIN training images or
MIN_FEATURES features).
"""

from __future__ import annotations

import importlib.util
import threading

import numpy as np

from cvtool.knn import kernels as kk

PROJ_DIMS = 64
MIN_FEATURES = 256  # with fewer, the bound's product saves too little
MIN_TRAIN = 4096
MAX_K = 64  # each accepted candidate is inserted into a sorted list of k: O(k) a time
SAMPLE_ROWS = 8192  # training rows (evenly spaced) that estimate the principal directions
MARGIN = 1e-4
GIVE_UP = 1 / 4  # a test row with more candidates than this share of the training rows: brute force
FLUSH_ROWS = 1024  # test rows whose candidates are measured together (784 KB of MNIST rows)
PROJECT_ROWS = 4096  # rows projected at a time (float64 copies of at most this many)


def applies(B, metric: str, xp, k: int = 1) -> bool:
    """Whether the search of k neighbours among training rows B (n, D) goes through here."""
    if metric != "l2" or xp is not np or B.dtype != np.uint8 or k > MAX_K:
        return False
    n, D = B.shape
    if n < MIN_TRAIN or D < MIN_FEATURES or D > kk.MAX_EXACT_FEATURES:
        return False
    return importlib.util.find_spec("numba") is not None


class Projection:
    """The top principal directions of training rows B and B projected on them."""

    def __init__(self, B):
        n, D = B.shape
        sample = B[:: max(1, n // SAMPLE_ROWS)].astype(np.float64)
        self.mean = sample.mean(axis=0)
        sample -= self.mean
        _, vecs = np.linalg.eigh(sample.T @ sample)  # ascending eigenvalues
        self.V = np.ascontiguousarray(vecs[:, ::-1][:, : min(PROJ_DIMS, D)])  # (D, d)
        self.pb = self.project(B)  # (n, d) float32
        self.nb = _sq_norms(self.pb)  # (n,) float64

    def project(self, X):
        """(m, D) uint8 rows -> (m, d) float32 projections of X - mean (float64 products)."""
        out = np.empty((len(X), self.V.shape[1]), dtype=np.float32)
        for s in range(0, len(X), PROJECT_ROWS):
            out[s : s + PROJECT_ROWS] = (X[s : s + PROJECT_ROWS] - self.mean) @ self.V
        return out


def _load_kernels(failed: list) -> None:
    try:
        from cvtool.knn import numba_pairs

        numba_pairs.warm_up()
    except Exception as exc:  # noqa: BLE001  (any failure: the brute-force search instead)
        failed.append(exc)


def rows_for(t: int, budget: int, n_pad: int, min_rows: int) -> int:
    """Test rows per chunk: their float32 keys (and candidate slots) in half the budget."""
    per_row = 4 * n_pad * (1 + GIVE_UP)
    return int(max(1, min(t, max(min_rows, budget // 2 // per_row))))


def _sq_norms(p):
    p = p.astype(np.float64)
    return np.einsum("ij,ij->i", p, p)


def search(A, B, k: int, budget: int, brute, min_rows: int = 64):
    """(dist (T, k) float64, idx (T, k) int64) of test rows A among training rows B (uint8).

    ``brute(rows)`` is the brute-force search of test rows ``rows`` (an index
    array), used for the rows where the bound leaves too many candidates. The
    bound keys take half the memory budget; the candidate pairs gathered for
    exact distances the other half (they are measured when that fills up).
    """
    # Numba and the kernels load in a thread while NumPy (which releases the GIL in its
    # products) finds the principal directions and projects the training rows.
    failed = []
    loader = threading.Thread(target=_load_kernels, args=(failed,), daemon=True)
    loader.start()
    # The kernels are compiled for C-contiguous writeable rows (a read-only array, say a
    # memory map, would compile another version of each: seconds).
    B = np.require(B, requirements="CW")
    n = len(B)
    bs = kk.block_size(n)
    n_pad = kk.padded(n, bs)
    proj = Projection(B)
    d = proj.pb.shape[1]
    # keys = [a', 1] @ [-2 b'; nb (1 - MARGIN)] = nb (1 - MARGIN) - 2 a'.b' (float32, one
    # product); padded columns (key inf) never qualify
    pbT = np.zeros((d + 1, n_pad), dtype=np.float32)
    pbT[:d, :n] = proj.pb.T * -2
    pbT[d] = np.inf
    pbT[d, :n] = proj.nb * (1 - MARGIN)
    pa1 = np.ones((rows_for(len(A), budget, n_pad, min_rows), d + 1), dtype=np.float32)
    loader.join()
    if failed:  # Numba is there but does not load (say, built for another NumPy)
        return brute(np.arange(len(A)))
    from cvtool.knn.numba_pairs import candidates

    m0 = min(n, max(2 * k, 16))
    cap = max(m0, int(GIVE_UP * n))
    rows = len(pa1)
    buf = np.empty(rows * n_pad, dtype=np.float32)
    slots = np.empty((rows, cap), dtype=np.int32)
    counts = np.empty(rows, dtype=np.int64)
    dist = np.empty((len(A), k), dtype=np.float64)
    idx = np.empty((len(A), k), dtype=np.int64)
    pending = _Pending(A, B, k, dist, idx, budget // 2)
    weak = []
    for r0 in range(0, len(A), rows):
        if r0 and len(weak) > r0 // 2:  # the bound does not work on these data
            weak.extend(range(r0, len(A)))
            break
        Ar = np.require(A[r0 : r0 + rows], requirements="CW")
        t = len(Ar)
        pa = pa1[:t]
        pa[:, :d] = proj.project(Ar)
        keys = np.matmul(pa, pbT, out=buf[: t * n_pad].reshape(t, n_pad))
        _, seeds = kk.topk_block(keys, m0, bs, np)  # the m0 smallest bounds per row
        shift = _sq_norms(pa[:, :d]) * (1 - MARGIN)
        candidates(keys, shift, Ar, B, seeds, k, slots[:t], counts[:t])
        # more than cap candidates: the bound is weak there; fewer than k would mean a
        # rounding beyond the margin (the k nearest are always candidates): not a guess
        ok = (counts[:t] <= cap) & (counts[:t] >= k)
        weak.extend(np.nonzero(~ok)[0] + r0)
        c = np.where(ok, counts[:t], 0)
        pending.add(np.nonzero(ok)[0] + r0, slots[:t][np.arange(cap) < c[:, None]], c[ok])
    if weak and len(weak) * n * 24 <= budget // 2:  # a few rows: every training row exactly
        pending.add(np.asarray(weak), np.tile(np.arange(n, dtype=np.int32), len(weak)),
                    np.full(len(weak), n))  # fmt: skip
        weak = []
    pending.flush()
    if weak:  # many: the brute-force search
        sel = np.asarray(weak)
        dist[sel], idx[sel] = brute(sel)
    return dist, idx


class _Pending:
    """Candidate pairs waiting for their exact distances, measured together."""

    def __init__(self, A, B, k, dist, idx, budget):
        self.A, self.B, self.k, self.dist, self.idx = A, B, k, dist, idx
        self.budget = budget
        self.parts = []  # (test rows, candidate columns, per-row counts)
        self.size = self.rows = 0

    def add(self, rows, cols, counts):
        self.parts.append((rows, cols, counts))
        self.size += len(cols)
        self.rows += len(rows)
        # cols, order, distances, rows: about 24 bytes a pair; FLUSH_ROWS test rows stay
        # in the cache while the training rows stream past them once
        if self.size * 24 > self.budget or self.rows >= FLUSH_ROWS:
            self.flush()

    def flush(self):
        from cvtool.knn.numba_pairs import exact_topk

        if not self.parts:
            return
        rows = np.concatenate([p[0] for p in self.parts])
        cols = np.concatenate([p[1] for p in self.parts])
        starts = np.concatenate([[0], np.cumsum(np.concatenate([p[2] for p in self.parts]))])
        self.parts, self.size, self.rows = [], 0, 0
        d2 = np.empty((len(rows), self.k), dtype=np.int32)
        found = np.empty((len(rows), self.k), dtype=np.int64)
        exact_topk(np.ascontiguousarray(self.A[rows]), self.B, starts, cols, self.k, d2, found)
        self.dist[rows] = np.sqrt(d2.astype(np.float64))
        self.idx[rows] = found
