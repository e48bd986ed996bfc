"""cvtool.knn: exact hand-checked cases, tie rules, chunking, fallbacks, validation."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cvtool import knn
from cvtool.backend import to_numpy
from cvtool.data.datasets import parse_validation
from cvtool.errors import CvtoolError
from cvtool.knn import eval as knn_eval
from cvtool.knn import kernels as kk

# cs231n "Image classification" notes: a 4x4 test image, a 4x4 training image,
# pixel-wise absolute differences adding up to 456.
CS231N_TEST = np.array(
    [[56, 32, 10, 18], [90, 23, 128, 133], [24, 26, 178, 200], [2, 0, 255, 220]], np.uint8
)
CS231N_TRAIN = np.array(
    [[10, 20, 24, 17], [8, 10, 89, 100], [12, 16, 178, 170], [4, 32, 233, 112]], np.uint8
)

ENGINES = ["numpy"] + (["numba"] if knn.resolve_engine("auto", "l1", np) == "numba" else [])


def brute(train, test, metric):
    """Reference distances with int64 / float64 and no tricks: (T, N)."""
    a = test.reshape(len(test), -1).astype(np.int64)
    b = train.reshape(len(train), -1).astype(np.int64)
    if metric == "l1":
        return np.abs(a[:, None] - b[None]).sum(-1).astype(np.float64)
    if metric == "l2":
        return np.sqrt(((a[:, None] - b[None]) ** 2).sum(-1).astype(np.float64))
    dot = (a[:, None] * b[None]).sum(-1).astype(np.float64)
    na, nb = np.sqrt((a * a).sum(1)), np.sqrt((b * b).sum(1))
    na[na == 0], nb[nb == 0] = 1, 1
    return np.clip(1 - dot / (na[:, None] * nb[None]), 0, 2)


def reference_topk(train, test, k, metric):
    """Sort by (distance, index) with a stable sort: the documented rule."""
    d = brute(train, test, metric)
    idx = np.argsort(d, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(d, idx, 1), idx


@pytest.mark.parametrize("engine", ENGINES)
def test_cs231n_l1_is_456(engine):
    d, i = knn.kneighbors(CS231N_TRAIN[None], CS231N_TEST[None], 1, "l1", engine=engine)
    assert d.tolist() == [[456.0]] and i.tolist() == [[0]]
    assert int(np.abs(CS231N_TEST.astype(int) - CS231N_TRAIN).sum()) == 456


def test_cs231n_on_backend(xp):
    d, _ = knn.kneighbors(CS231N_TRAIN[None], CS231N_TEST[None], 1, "l1", xp=xp)
    assert to_numpy(d).tolist() == [[456.0]]


def test_hand_checked_l2_and_cosine():
    train = np.array([[0, 0], [3, 4], [6, 8], [4, 0]], np.uint8)
    d, i = knn.kneighbors(train, np.array([[0, 0]], np.uint8), 4, "l2")
    assert d.tolist() == [[0.0, 4.0, 5.0, 10.0]] and i.tolist() == [[0, 3, 1, 2]]
    # cosine: (3,4) and (6,8) point the same way (distance exactly 0, index order);
    # (4,0) is at 1 - 12/(5*4) = 0.4; the zero image has similarity 0 -> distance 1.
    d, i = knn.kneighbors(train, np.array([[3, 4]], np.uint8), 4, "cosine")
    assert i.tolist() == [[1, 2, 3, 0]]
    assert d[0, :2].tolist() == [0.0, 0.0] and d[0, 3] == 1.0
    assert d[0, 2] == pytest.approx(0.4, abs=1e-15)


@pytest.mark.parametrize("metric", ["l1", "l2", "cosine"])
def test_equal_distances_go_to_the_smaller_index(metric):
    # Every training row is at the same distance from the test row.
    train = np.array([[2, 1], [1, 2], [2, 1], [1, 2], [2, 1]], np.uint8)
    test = np.array([[1, 1]], np.uint8) if metric != "cosine" else np.array([[3, 3]], np.uint8)
    for k in range(1, 6):
        d, i = knn.kneighbors(train, test, k, metric)
        assert i.tolist() == [list(range(k))]
        assert len(set(d[0].tolist())) == 1


def test_equal_cosine_distances_go_to_the_smaller_index():
    """Issue example: both cosines are exactly 1/sqrt(2) (1/sqrt(2) and 3/sqrt(18)).

    1 - a.b / (|a| |b|) rounds them differently (index 1 came first); the exact key
    ties them, so the smaller index wins and the two distances are bit-equal.
    """
    train = np.array([[0, 1, 1], [3, 0, 3]], np.uint8)
    d, i = knn.kneighbors(train, np.array([[0, 0, 1]], np.uint8), 2, "cosine")
    assert i.tolist() == [[0, 1]]
    assert d[0, 0] == d[0, 1] == 1 - np.sqrt(0.5)
    assert 1 / np.sqrt(2) != 3 / np.sqrt(18)  # the old formula's rounding really differs
    for k in (1, 2):  # the k-th place too, and on every backend and chunking
        _, i = knn.kneighbors(train[::-1], np.array([[0, 0, 1]], np.uint8), k, "cosine")
        assert i.tolist() == [[0, 1][:k]]


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(2, 60),
    D=st.integers(1, 8),
    hi=st.sampled_from([1, 2, 3, 15]),
    memory=st.sampled_from([0.0005, 1.0]),
    seed=st.integers(0, 2**16),
)
def test_cosine_order_is_the_exact_order_then_the_index(n, D, hi, memory, seed):
    """Against exact rational cos^2 (Fractions): sorted by (exact distance, index).

    With values <= 15 and D <= 8 distinct squared cosines differ by far more than
    one float64 ulp, so the float keys can only tie where the exact ones do.
    """
    from fractions import Fraction

    rng = np.random.default_rng(seed)
    train = rng.integers(0, hi + 1, (n, D)).astype(np.uint8)
    src, dst = rng.integers(0, n, (2, n // 2))  # some rows: copies, scaled copies, zeros
    factor = rng.integers(0, 3 if hi <= 3 else 2, (n // 2, 1))  # values stay <= 15
    train[dst] = train[src] * factor.astype(np.uint8)
    test = rng.integers(0, hi + 1, (5, D)).astype(np.uint8)
    d, i = knn.kneighbors(train, test, n, "cosine", memory_mb=memory)

    def exact(a, b):
        a, b = a.astype(int), b.astype(int)
        ab, q = int(a @ b), int(a @ a) * int(b @ b)
        return -Fraction(ab * ab, q) if q else Fraction(0)  # zero row: similarity 0

    for t in range(len(test)):
        want = sorted(range(n), key=lambda j: (exact(test[t], train[j]), j))  # noqa: B023
        assert i[t].tolist() == want
        keys = [exact(test[t], train[j]) for j in want]
        for j in range(n - 1):  # equal exact distances are bit-equal floats
            assert (keys[j] == keys[j + 1]) == (d[t, j] == d[t, j + 1])


def test_vote_rules():
    lab = np.array([[2, 1, 1, 2], [0, 1, 2, 3]])
    dist = np.array([[1.0, 2, 3, 4], [1.0, 1, 1, 1]])
    # uniform: 2-2 tie and 1-1-1-1 tie -> the smallest label
    assert knn.vote(lab, dist, "uniform", 4).tolist() == [1, 0]
    # distance: 1 + 1/4 for class 2 beats 1/2 + 1/3 for class 1
    assert knn.vote(lab, dist, "distance", 4).tolist() == [2, 0]
    # exact duplicates: the zero-distance neighbours take all the weight
    dup = np.array([[3, 0, 0, 3, 3]])
    dd = np.array([[0.0, 0.0, 0.0, 1.0, 1.0]])
    assert knn.vote(dup, dd, "distance", 4).tolist() == [0]  # two zeros of class 0 vs one of 3
    assert knn.vote(dup, dd, "uniform", 4).tolist() == [3]


def test_l2_is_exact_where_plain_float32_is_not():
    # Bright 1024-feature images: raw float32 products exceed 2**24 and round,
    # the shifted products of the float32 path do not.
    rng = np.random.default_rng(1)
    train = rng.integers(200, 256, (300, 1024)).astype(np.uint8)
    test = rng.integers(200, 256, (20, 1024)).astype(np.uint8)
    train[150] = train[3]  # a duplicate: an exact tie
    test[0] = train[3]
    d, i = knn.kneighbors(train, test, 7, "l2")
    rd, ri = reference_topk(train, test, 7, "l2")
    assert np.array_equal(i, ri) and np.array_equal(d, rd)
    assert i[0, :2].tolist() == [3, 150] and d[0, 0] == 0
    # the naive float32 formula on raw pixels is wrong on this data
    a, b = test.astype(np.float32), train.astype(np.float32)
    naive = (a * a).sum(1)[:, None] + (b * b).sum(1)[None] - 2 * (a @ b.T)
    exact = ((test.astype(np.int64)[:, None] - train.astype(np.int64)[None]) ** 2).sum(-1)
    assert not np.array_equal(naive.astype(np.float64), exact.astype(np.float64))


@pytest.mark.parametrize("D", [1025, 7])
def test_l2_float64_path_exact_for_many_features(D):
    rng = np.random.default_rng(2)
    train = rng.integers(0, 256, (200, D)).astype(np.uint8)
    test = rng.integers(0, 256, (10, D)).astype(np.uint8)
    d, i = knn.kneighbors(train, test, 5, "l2")
    rd, ri = reference_topk(train, test, 5, "l2")
    assert np.array_equal(i, ri) and np.array_equal(d, rd)


def test_inexact_rows_are_recomputed(monkeypatch):
    # Pretend float32 is exact only below 1000: every row takes the float64 fallback.
    rng = np.random.default_rng(3)
    train = rng.integers(0, 4, (500, 30)).astype(np.uint8)
    test = rng.integers(0, 4, (40, 30)).astype(np.uint8)
    expect = knn.kneighbors(train, test, 6, "l2")
    monkeypatch.setattr(kk, "F32_EXACT", -1e9)
    calls = []
    real = kk.L2Float.from_exact.__func__
    monkeypatch.setattr(
        kk.L2Float, "from_exact", classmethod(lambda cls, *a: calls.append(1) or real(cls, *a))
    )
    got = knn.kneighbors(train, test, 6, "l2", memory_mb=0.05)
    assert calls  # the float64 fallback did run
    assert np.array_equal(expect[0], got[0]) and np.array_equal(expect[1], got[1])
    assert np.array_equal(got[1], reference_topk(train, test, 6, "l2")[1])


@pytest.mark.parametrize("engine", ENGINES)
def test_l1_engines_agree_with_brute_force(engine):
    rng = np.random.default_rng(4)
    train = rng.integers(0, 3, (700, 20)).astype(np.uint8)  # very many ties
    test = rng.integers(0, 3, (33, 20)).astype(np.uint8)
    d, i = knn.kneighbors(train, test, 9, "l1", engine=engine, memory_mb=0.2)
    rd, ri = reference_topk(train, test, 9, "l1")
    assert np.array_equal(i, ri) and np.array_equal(d, rd)
    f = knn.kneighbors(train / 2.0, test / 2.0, 9, "l1", engine=engine)  # float path
    assert np.array_equal(f[1], ri) and np.array_equal(f[0], rd / 2)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 120),
    t=st.integers(1, 25),
    D=st.integers(1, 12),
    hi=st.sampled_from([1, 3, 255]),
    metric=st.sampled_from(["l1", "l2", "cosine"]),
    memory=st.sampled_from([0.0005, 0.01, 1.0]),
    seed=st.integers(0, 2**16),
)
def test_chunked_equals_unchunked(n, t, D, hi, metric, memory, seed):
    rng = np.random.default_rng(seed)
    train = rng.integers(0, hi + 1, (n, D)).astype(np.uint8)
    test = rng.integers(0, hi + 1, (t, D)).astype(np.uint8)
    k = int(rng.integers(1, n + 1))
    whole = knn.kneighbors(train, test, k, metric, memory_mb=1000)
    parts = knn.kneighbors(train, test, k, metric, memory_mb=memory)
    assert np.array_equal(whole[1], parts[1]) and np.array_equal(whole[0], parts[0])
    if metric != "cosine":
        rd, ri = reference_topk(train, test, k, metric)
        assert np.array_equal(whole[1], ri) and np.array_equal(whole[0], rd)


@pytest.mark.parametrize("metric", ["l1", "l2", "cosine"])
def test_backends_agree(xp, metric):
    rng = np.random.default_rng(5)
    train = rng.integers(0, 256, (300, 49)).astype(np.uint8)
    test = rng.integers(0, 256, (17, 49)).astype(np.uint8)
    d, i = knn.kneighbors(train, test, 5, metric, xp=xp, memory_mb=0.1)
    rd, ri = knn.kneighbors(train, test, 5, metric)
    assert np.array_equal(to_numpy(i), ri)
    np.testing.assert_allclose(to_numpy(d), rd, rtol=1e-12)


def test_stratified_folds_partition():
    y = np.repeat(np.arange(3), [10, 7, 2])
    splits = knn_eval.stratified_folds(y, 4, seed=0)
    vals = np.sort(np.concatenate([v for _, v in splits]))
    assert np.array_equal(vals, np.arange(len(y)))
    for tr, va in splits:
        assert not set(tr) & set(va) and len(tr) + len(va) == len(y)
        assert abs(np.sum(y[va] == 0) - 2.5) <= 1  # each fold gets its share of class 0
    assert [v.tolist() for _, v in splits] == [
        v.tolist() for _, v in knn_eval.stratified_folds(y, 4)
    ]


def test_evaluate_chooses_and_uses_test_once():
    rng = np.random.default_rng(6)
    centers = rng.integers(0, 256, (3, 16))
    y = np.repeat(np.arange(3), 40)
    x = np.clip(centers[y] + rng.integers(-30, 31, (120, 16)), 0, 255).astype(np.uint8)
    yt = np.repeat(np.arange(3), 5)
    xt = np.clip(centers[yt] + rng.integers(-30, 31, (15, 16)), 0, 255).astype(np.uint8)
    res = knn_eval.evaluate(x, y, xt, yt, ks=[1, 3], metrics=["l2", "l1"], folds=3)
    assert sum(r["chosen"] for r in res["selection"]) == 1
    # every pair is perfect on this easy data: the tie goes to the smaller k, first metric
    assert (res["k"], res["metric"]) == (1, "l2") and res["accuracy"] == 1.0
    assert res["confusion"].trace() == 15 and res["confusion"].sum() == 15
    single = knn_eval.evaluate(x, y, xt, yt, ks=[3], metrics=["l1"])
    assert single["selection"] is None and single["k"] == 3


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"k": 0}, "'k' parameter must be an int >= 1"),
        ({"k": 11}, "'k' parameter must be an int in 1..10. Got 11 instead. There are 10 training"),
        ({"metric": "l3"}, "'metric' parameter must be one of"),
        ({"memory_mb": 0}, "'memory' parameter must be a number > 0"),
        ({"engine": "fast"}, "'engine' parameter must be one of"),
    ],
)
def test_bad_parameters(kwargs, message):
    args = {"k": 1, "metric": "l2", **kwargs}
    x = np.zeros((10, 4), np.uint8)
    with pytest.raises(CvtoolError, match=re.escape(message)):
        knn.kneighbors(x, x[:2], args.pop("k"), args.pop("metric"), **args)


def test_bad_shapes_and_lists():
    with pytest.raises(CvtoolError, match="values each"):
        knn.kneighbors(np.zeros((5, 4), np.uint8), np.zeros((2, 3), np.uint8), 1)
    with pytest.raises(CvtoolError, match="NaN"):
        knn.kneighbors(np.full((5, 2), np.nan), np.zeros((2, 2)), 1)
    assert knn_eval.parse_ints("1, 3,3,5", "k") == [1, 3, 5]
    assert parse_validation("0.2") == 0.2 and parse_validation("500") == 500
    for bad in ("1.5", "0", "x"):
        with pytest.raises(CvtoolError, match="'validation'"):
            parse_validation(bad, allow_zero=False)
    with pytest.raises(CvtoolError, match="'k'"):
        knn_eval.parse_ints("1,a", "k")


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 6), st.sampled_from([1, 2, 4, 8]), st.integers(1, 12), st.integers(0, 7),
       st.integers(1, 5), st.integers(0, 2**32 - 1))  # fmt: skip
def test_block_top_k_equals_a_stable_row_sort(t, bs, nb, pad, k, seed):
    """The block-minimum top-k (blocks of interleaved columns) equals a stable sort of each
    row: the k smallest keys, ties to the smaller column, padded columns never chosen."""
    rng = np.random.default_rng(seed)
    m = nb * bs
    real = max(m - pad, 1)
    k = min(k, real)
    keys = rng.integers(0, 4, (t, m)).astype(np.float32)  # many ties
    keys[:, real:] = kk.sentinel(np.float32)
    vals, cols = kk.topk_block(keys, k, bs, np)
    order = np.argsort(keys, axis=1, kind="stable")[:, :k]
    np.testing.assert_array_equal(cols, order)
    np.testing.assert_array_equal(vals, np.take_along_axis(keys, order, axis=1))
