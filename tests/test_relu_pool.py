"""A ReLU right before a max-pool runs on the pooled output (Sequential.pair_relu_pool).

relu then max-pool equals max-pool then relu; the gradient of either goes to the
window's first maximum where it is positive and is 0 elsewhere. So moving the
ReLU must change no bit of the outputs, the input gradient or the parameter
gradients, in training and in inference, also with ties and all-negative windows.
"""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import numeric_grad, rel_error

from cvtool.backend import to_numpy
from cvtool.nn.cnn import cnn_model
from cvtool.nn.layers import Activation
from cvtool.nn.pool import MaxPool2D

SPEC = "conv:6x3:relu, pool:2, conv:8x3:p=same, bn, relu, pool:2, flatten, dense:10:softmax"


def _unpair(model):
    for layer in model.layers:
        if isinstance(layer, Activation):
            layer.deferred = False
        if isinstance(layer, MaxPool2D):
            layer.relu = False
    return model


def _pass(model, x, Y):
    """(training output, input gradient, parameter gradients, inference output) as NumPy."""
    a = model.forward(x, True)
    d = (a - Y) / len(x)
    for layer in reversed(model.layers[:-1]):  # softmax + log-likelihood fused
        d = layer.backward(d)
    grads = [to_numpy(g).copy() for layer in model.param_layers for g in layer.grads.values()]
    return to_numpy(a), to_numpy(d), grads, to_numpy(model.forward(x, False))


def test_only_relu_right_before_a_max_pool_is_paired():
    spec = "conv:4x3:relu, pool:2, conv:4x3:relu, l2pool:2, conv:4x3:sigmoid, maxpool:1"
    model = cnn_model(spec, (20, 20, 1)).build()
    acts = [layer for layer in model.layers if isinstance(layer, Activation)]
    pools = [layer for layer in model.layers if layer.kind == "pool"]
    assert [a.deferred for a in acts] == [True, False, False]
    assert [getattr(p, "relu", False) for p in pools] == [True, False, False]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_pair_gives_the_same_bits_as_relu_then_pool(xp, dtype):
    rng = np.random.default_rng(0)
    # small integers: ties inside windows, exact zeros, and windows with no positive value
    x = rng.integers(-3, 3, (12, 14, 14, 1)).astype(dtype)
    Y = np.eye(10, dtype=dtype)[rng.integers(0, 10, 12)]
    x, Y = xp.asarray(x), xp.asarray(Y)
    paired = cnn_model(SPEC, (14, 14, 1)).build(xp, dtype, 0)
    plain = _unpair(cnn_model(SPEC, (14, 14, 1)).build(xp, dtype, 0))
    w = xp.asarray(rng.integers(-1, 2, (3, 3, 1, 6)).astype(dtype))  # integer first conv:
    for model in (paired, plain):  # windows whose maximum is exactly 0, and ties
        model.layers[0].params["W"][...] = w
        model.layers[0].params["b"][...] = 0
    assert any(getattr(layer, "relu", False) for layer in paired.layers)
    for got, want in zip(_pass(paired, x, Y), _pass(plain, x, Y), strict=True):
        if isinstance(got, list):
            for g, w in zip(got, want, strict=True):
                np.testing.assert_array_equal(g, w)
        else:
            np.testing.assert_array_equal(got, want)


def test_the_pair_passes_a_finite_difference_check():
    rng = np.random.default_rng(1)
    model = cnn_model("conv:3x3:relu, pool:2, flatten, dense:4:softmax", (8, 8, 1))
    model.build(np, "float64", 0)
    assert model.layers[2].relu
    x = rng.normal(size=(3, 8, 8, 1))
    Y = np.eye(4)[[0, 1, 3]]

    def cost():
        return float(-(Y * np.log(model.forward(x, False))).sum())

    dout = model.forward(x, True) - Y  # softmax + log-likelihood
    for layer in reversed(model.layers[:-1]):
        dout = layer.backward(dout)
    for layer in model.param_layers:
        for k, p in layer.params.items():
            assert rel_error(layer.grads[k], numeric_grad(cost, p)) < 1e-6, k
