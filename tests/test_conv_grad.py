"""Finite-difference gradient checks (float64, central differences) of the conv layers.

The loss is sum(forward(x) * R) for a fixed random R, so its gradient with
respect to the output is R; the layer's backward(R) must match the numerical
derivatives of every input and parameter. Max-pooling is checked on inputs
whose window values are well apart (no ties, no kinks within the step).
"""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import numeric_grad, rel_error

from cvtool.backend import to_numpy
from cvtool.nn import conv


def _check(layer, x, xp, in_shape):
    rng = np.random.default_rng(7)
    layer.build(in_shape, xp, np.float64, rng)
    for name in layer.params:  # non-zero biases so they matter
        layer.params[name] = xp.asarray(rng.normal(size=layer.params[name].shape))
    x = xp.asarray(x)
    out = layer.forward(x, training=True)
    r = xp.asarray(rng.normal(size=out.shape))
    dx = to_numpy(layer.backward(r))

    def loss():
        return float((layer.forward(x) * r).sum())

    assert rel_error(dx, numeric_grad(loss, x)) < 1e-6
    for name, p in layer.params.items():
        num = numeric_grad(loss, p)
        assert rel_error(to_numpy(layer.grads[name]), num) < 1e-6, name


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kernel": 3},
        {"kernel": (2, 3), "stride": 2, "padding": 1},
        {"kernel": 3, "padding": "same", "dilation": 2},
        {"kernel": 3, "stride": 2, "bias": False},
        {"kernel": 3, "padding": 1},  # dx as a transposed convolution
    ],
)
def test_conv2d_gradients(xp, kwargs):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 7, 6, 2))
    _check(conv.Conv2D(3, **kwargs), x, xp, (7, 6, 2))


@pytest.mark.parametrize("kwargs", [{"pool": 2}, {"pool": 3, "stride": 2, "padding": 1}])
@pytest.mark.parametrize("mode", ["avg", "l2"])
def test_smooth_pool_gradients(xp, mode, kwargs):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 6, 6, 2))
    _check(conv.POOL_CLASSES[mode](**kwargs), x, xp, (6, 6, 2))


@pytest.mark.parametrize(
    "kwargs", [{"pool": 2}, {"pool": 3, "stride": 2}, {"pool": 2, "stride": 1}]
)
def test_maxpool_gradients_away_from_ties(xp, kwargs):
    rng = np.random.default_rng(2)
    # A permutation of well-separated values: no two cells within 0.1 of each other.
    x = (rng.permutation(2 * 7 * 7 * 2) * 0.1).reshape(2, 7, 7, 2)
    _check(conv.MaxPool2D(**kwargs), x, xp, (7, 7, 2))
