"""cvtool.knn against scikit-learn's KNeighborsClassifier(algorithm='brute'): identical predictions.

scikit-learn gets the same pixel values as float64 (its brute force then
uses its exact pairwise reduction for L1/L2); cvtool gets the uint8 images.
"""

from __future__ import annotations

import numpy as np
import pytest

from cvtool import knn
from cvtool.data.datasets import load_dataset

neighbors = pytest.importorskip("sklearn.neighbors")

SK_METRIC = {"l1": "manhattan", "l2": "euclidean", "cosine": "cosine"}
KS = (1, 2, 3, 5, 8, 9)


def sklearn_predict(train, y, test, k, metric, weights):
    clf = neighbors.KNeighborsClassifier(
        n_neighbors=k, algorithm="brute", metric=SK_METRIC[metric], weights=weights
    )
    clf.fit(train.reshape(len(train), -1).astype(np.float64), y)
    return clf.predict(test.reshape(len(test), -1).astype(np.float64))


def cvtool_predict(train, y, test, metric, weights, ks=KS):
    """Predictions for every k from one neighbour search with max(ks)."""
    d, i = knn.kneighbors(train, test, max(ks), metric, memory_mb=2)
    classes = np.unique(y)
    lab = np.searchsorted(classes, y)[i]
    return {k: classes[knn.vote(lab[:, :k], d[:, :k], weights, len(classes))] for k in ks}


@pytest.fixture(scope="module")
def mnist_part():
    ds = load_dataset("mnist-sample")
    return ds.x_train[:1000], ds.y_train[:1000], ds.x_test[:150]


@pytest.mark.parametrize("weights", ["uniform", "distance"])
@pytest.mark.parametrize("metric", ["l1", "l2", "cosine"])
def test_mnist_predictions_identical(mnist_part, metric, weights):
    train, y, test = mnist_part
    ours = cvtool_predict(train, y, test, metric, weights)
    for k in KS:
        assert np.array_equal(ours[k], sklearn_predict(train, y, test, k, metric, weights)), k


def tie_heavy(seed=0):
    """Tiny integer images: many equal distances, duplicated training rows with
    different labels, test rows equal to training rows (distance 0)."""
    rng = np.random.default_rng(seed)
    train = rng.integers(0, 4, (300, 8)).astype(np.uint8)
    train[100:140] = train[:40]  # exact duplicates...
    y = rng.integers(0, 4, 300)  # ...whose labels mostly differ
    test = rng.integers(0, 4, (120, 8)).astype(np.uint8)
    test[:30] = train[:30]  # zero distances: the duplicates take all the weight
    return train, y, test


def ambiguous_rows(train, test, k, metric):
    """Rows where equally distant training images compete for the k-th place."""
    d = np.sort(brute_distances(train, test, metric), axis=1)
    return d[:, k - 1] == d[:, k] if k < d.shape[1] else np.zeros(len(test), bool)


def tied_weight_sums(train, y, test, k, metric):
    """Rows whose two best classes have equal 1/d sums in exact arithmetic.

    numpy sums 8 or more terms pairwise, so then the rounded sums depend on the
    order of equally distant neighbours, which scikit-learn leaves unspecified.
    """
    d, i = knn.kneighbors(train, test, k, metric)
    w = np.where((d == 0).any(1, keepdims=True), (d == 0) * 1.0, 1 / np.where(d == 0, 1, d))
    scores = np.stack([((y[i] == c) * w).sum(1) for c in np.unique(y)], axis=1)
    top = np.sort(scores, axis=1)[:, -2:]
    return np.isclose(top[:, 0], top[:, 1], rtol=1e-12, atol=0)


def brute_distances(train, test, metric):
    diff = test.astype(np.int64)[:, None] - train.astype(np.int64)[None]
    return np.abs(diff).sum(-1) if metric == "l1" else (diff**2).sum(-1)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("weights", ["uniform", "distance"])
@pytest.mark.parametrize("metric", ["l1", "l2"])
def test_ties_and_duplicates_identical(metric, weights, seed):
    """Identical wherever scikit-learn's answer is defined.

    Where equally distant images compete for the k-th place, scikit-learn keeps
    whichever its heap happens to hold (it depends on its chunking and thread
    count, not on the index): there the neighbour distances must still agree and
    the sets differ only in images at the k-th distance.
    """
    train, y, test = tie_heavy(seed)
    X, T = train.astype(np.float64), test.astype(np.float64)
    d_all = brute_distances(train, test, metric)
    ours = cvtool_predict(train, y, test, metric, weights)
    n_checked = 0
    for k in KS:
        theirs = sklearn_predict(train, y, test, k, metric, weights)
        amb = ambiguous_rows(train, test, k, metric)
        if weights == "distance" and k >= 8:
            amb |= tied_weight_sums(train, y, test, k, metric)
        assert np.array_equal(ours[k][~amb], theirs[~amb]), k
        n_checked += int((~amb).sum())
        # ambiguous rows: same distances, sets differ only at the k-th distance
        nn = neighbors.NearestNeighbors(n_neighbors=k, algorithm="brute", metric=SK_METRIC[metric])
        sd, si = nn.fit(X).kneighbors(T)
        d, i = knn.kneighbors(train, test, k, metric)
        np.testing.assert_array_equal(np.sort(sd, axis=1), d)
        for r in np.flatnonzero(amb):
            kth = d_all[r, i[r, -1]]
            assert {j for j in i[r] if d_all[r, j] < kth} == {j for j in si[r] if d_all[r, j] < kth}
    assert n_checked > 0.2 * len(KS) * len(test)  # many rows are decided, many are not


@pytest.mark.parametrize("weights", ["uniform", "distance"])
@pytest.mark.parametrize("metric", ["l1", "l2"])
def test_duplicate_images_with_other_labels_identical(metric, weights):
    # Distinct images (distances rarely tie), each training image present twice or
    # three times with different labels; test images include exact copies.
    rng = np.random.default_rng(11)
    base = rng.integers(0, 256, (80, 12)).astype(np.uint8)
    train = np.concatenate([base, base, base[:30]])
    y = rng.integers(0, 5, len(train))
    test = np.concatenate([base[:25], rng.integers(0, 256, (50, 12)).astype(np.uint8)])
    ours = cvtool_predict(train, y, test, metric, weights)
    for k in KS:
        amb = ambiguous_rows(train, test, k, metric)
        theirs = sklearn_predict(train, y, test, k, metric, weights)
        assert np.array_equal(ours[k][~amb], theirs[~amb]), k
        if weights == "distance" and k >= 3:  # all zero-distance copies are in: decided
            assert np.array_equal(ours[k][:25], theirs[:25]), k


@pytest.mark.parametrize("weights", ["uniform", "distance"])
def test_cosine_duplicates_identical(weights):
    # scikit-learn's cosine brute force picks among equal distances with argpartition
    # (order unspecified), so ties here share labels; duplicates and scaled copies
    # (exactly equal cosine distances) still decide the weights.
    rng = np.random.default_rng(7)
    base = rng.integers(0, 120, (60, 8)).astype(np.uint8)
    y0 = rng.integers(0, 3, 60)
    train = np.concatenate([base, base, base * 2])
    y = np.concatenate([y0, y0, y0])
    test = np.concatenate([base[:20], rng.integers(0, 256, (40, 8)).astype(np.uint8)])
    ours = cvtool_predict(train, y, test, "cosine", weights, ks=(1, 3, 6, 9))
    for k in (1, 3, 6, 9):
        assert np.array_equal(ours[k], sklearn_predict(train, y, test, k, "cosine", weights)), k


def test_neighbour_sets_and_distances_match(mnist_part):
    train, _, test = mnist_part
    nn = neighbors.NearestNeighbors(n_neighbors=5, algorithm="brute", metric="euclidean")
    sd, si = nn.fit(train.reshape(len(train), -1).astype(np.float64)).kneighbors(
        test.reshape(len(test), -1).astype(np.float64)
    )
    d, i = knn.kneighbors(train, test, 5, "l2")
    assert np.array_equal(d, sd)  # exact integers under the root: bit-identical
    assert all(set(a) == set(b) for a, b in zip(i.tolist(), si.tolist(), strict=True))
