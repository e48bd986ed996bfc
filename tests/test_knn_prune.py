"""The pruned exact L2 search (cvtool.knn.prune) finds the brute-force search's neighbours.

Same indices and bit-equal distances, ties to the smaller index, on real digits,
on data built to tie, and where the projection bound is weak (noise), whose rows
go to the brute-force search.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cvtool import knn
from cvtool.knn import prune

pytest.importorskip("numba")


def _both(train, test, k, memory_mb=128):
    """(pruned, brute force) results of kneighbors; the pruned one must have been pruned."""
    pruned = knn.kneighbors(train, test, k, "l2", engine="auto", memory_mb=memory_mb)
    brute = knn.kneighbors(train, test, k, "l2", engine="numpy", memory_mb=memory_mb)
    return pruned, brute


def _same(a, b):
    np.testing.assert_array_equal(a[1], b[1])  # indices
    np.testing.assert_array_equal(a[0], b[0])  # distances, bit for bit


@pytest.fixture
def small_problems(monkeypatch):
    """Let the pruned search take problems smaller than it would by default."""
    monkeypatch.setattr(prune, "MIN_TRAIN", 1)
    monkeypatch.setattr(prune, "MIN_FEATURES", 1)


def _digits():
    from cvtool.data.datasets import load_dataset

    ds = load_dataset("mnist-sample")
    return ds.x_train, ds.x_test


@pytest.mark.parametrize("k", [1, 5, 40, 64])
def test_mnist_sample_neighbours_equal_brute_force(small_problems, k, monkeypatch):
    train, test = _digits()
    calls = []
    real = prune.search

    def spy(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(prune, "search", spy)
    # 2 MB: several chunks of test rows and several flushes of candidate pairs
    _same(*_both(train, test, k, memory_mb=2))
    assert calls  # the pruned search ran


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(20, 300),
    t=st.integers(1, 40),
    D=st.integers(2, 70),
    levels=st.sampled_from([2, 3, 256]),
    rank=st.integers(1, 6),
    k=st.integers(1, 12),
    dims=st.sampled_from([1, 4, 64]),
    seed=st.integers(0, 2**16),
)
def test_pruned_equals_brute_force(n, t, D, levels, rank, k, dims, seed):
    """Low-rank rows (the bound prunes) with few grey levels (ties everywhere), duplicates."""
    rng = np.random.default_rng(seed)
    basis = rng.integers(0, levels, (rank, D))

    def mix(m):
        return np.clip(basis[rng.integers(0, rank, m)] + rng.integers(-1, 2, (m, D)), 0, 255)

    train = mix(n).astype(np.uint8)
    test = np.concatenate([mix(t), train[: min(t, n) // 2]]).astype(np.uint8)  # exact copies
    k = min(k, n)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(prune, "MIN_TRAIN", 1)
        mp.setattr(prune, "MIN_FEATURES", 1)
        mp.setattr(prune, "PROJ_DIMS", dims)
        _same(*_both(train, test, k, memory_mb=0.05))


@pytest.mark.parametrize("n_weak", ["few", "many"])
def test_rows_the_bound_cannot_prune(small_problems, n_weak, monkeypatch):
    """Noise images: every training row is a candidate. A few such rows are measured
    exactly against all; many go to the brute-force search. Same neighbours."""
    rng = np.random.default_rng(5)
    train = rng.integers(0, 256, (600, 300), dtype=np.uint8)
    test = rng.integers(0, 256, (50 if n_weak == "many" else 3, 300), dtype=np.uint8)
    brute_rows = []
    real = prune.search

    def spy(A, B, k, budget, brute, min_rows=64):
        def counting(rows):
            brute_rows.extend(rows)
            return brute(rows)

        return real(A, B, k, budget, counting, min_rows=8)

    monkeypatch.setattr(prune, "search", spy)
    monkeypatch.setattr(prune, "GIVE_UP", 0.01)  # noise leaves every row weak
    _same(*_both(train, test, 5, memory_mb=1))
    assert (len(brute_rows) == 0) == (n_weak == "few")


def test_kernels_are_loaded_with_the_types_the_search_passes(small_problems):
    """warm_up loads the kernels in a thread with the search's argument types: a search
    after it must not compile a second version (several seconds)."""
    from cvtool.knn import numba_pairs

    train, test = _digits()
    knn.kneighbors(train[:500], test[:20], 3, "l2")
    assert len(numba_pairs.candidates.signatures) == 1
    assert len(numba_pairs.exact_topk.signatures) == 1


def test_small_or_float_problems_are_not_pruned():
    x = np.zeros((5000, 300), np.uint8)
    assert prune.applies(x, "l2", np)
    assert not prune.applies(x[:100], "l2", np)
    assert not prune.applies(x[:, :10], "l2", np)
    assert not prune.applies(x.astype(np.float64), "l2", np)
    assert not prune.applies(x, "l1", np)
    assert prune.applies(x, "l2", np, prune.MAX_K)
    assert not prune.applies(x, "l2", np, prune.MAX_K + 1)


def test_read_only_inputs_compile_no_second_kernel(small_problems):
    from cvtool.knn import numba_pairs

    train, test = _digits()
    train, test = train[:600].copy(), test[:40].copy()
    train.flags.writeable = test.flags.writeable = False
    _same(*_both(train, test, 3))
    assert len(numba_pairs.candidates.signatures) == 1
    assert len(numba_pairs.exact_topk.signatures) == 1


def test_a_numba_that_does_not_load_leaves_the_brute_force_search(small_problems, monkeypatch):
    from cvtool.knn import numba_pairs

    def broken():
        raise ImportError("numba built for another NumPy")

    monkeypatch.setattr(numba_pairs, "warm_up", broken)
    train, test = _digits()
    _same(*_both(train[:800], test[:30], 3))
