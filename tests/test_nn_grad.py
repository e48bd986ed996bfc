"""Finite-difference gradient checks (float64) for every layer, activation and cost."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import numeric_grad

from cvtool.nn import layers as L
from cvtool.nn.activations import ACTIVATIONS, get_activation
from cvtool.nn.losses import LOSSES
from cvtool.nn.model import Sequential
from cvtool.nn.spec import parse_spec

TOL = 1e-6


def rel_err(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))


def check_layer(layer, x, rng, training=True):
    """dx and every param grad of sum(R * layer(x)) against central differences."""
    out = layer.forward(x, training)
    R = rng.standard_normal(out.shape)

    def f():
        return float((layer.forward(x, training) * R).sum())

    layer.forward(x, training)
    dx = layer.backward(R.copy())
    grads = {k: v.copy() for k, v in layer.grads.items()}
    assert rel_err(dx, numeric_grad(f, x)) < TOL
    for k, p in layer.params.items():
        assert grads[k].shape == p.shape
        assert rel_err(grads[k], numeric_grad(f, p)) < TOL, k


@pytest.mark.parametrize("bias", [True, False])
def test_dense_gradients(rng, bias):
    layer = L.Dense(4, bias=bias)
    layer.build((5,), np, np.dtype("float64"), rng)
    check_layer(layer, rng.standard_normal((3, 5)), rng)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_layer_gradients(rng, name):
    layer = L.Activation(name)
    layer.build((6,), np, np.dtype("float64"), rng)
    x = rng.standard_normal((4, 6))
    if name == "relu":  # stay away from the kink
        x = np.where(np.abs(x) < 0.05, 0.5, x)
    check_layer(layer, x, rng)


def test_flatten_gradients(rng):
    layer = L.Flatten()
    layer.build((3, 2, 2), np, np.dtype("float64"), rng)
    check_layer(layer, rng.standard_normal((2, 3, 2, 2)), rng)


def test_dropout_gradients_with_fixed_mask(rng):
    layer = L.Dropout(0.4)
    layer.build((10,), np, np.dtype("float64"), rng)
    x = rng.standard_normal((5, 10))
    layer.forward(x, training=True)
    mask = layer.mask.copy()
    R = rng.standard_normal(x.shape)
    dx = layer.backward(R)
    numeric = numeric_grad(lambda: float((x * mask * R).sum()), x)
    assert rel_err(dx, numeric) < TOL
    assert set(np.unique(mask)) <= {0.0, 1 / 0.6}


@pytest.mark.parametrize("loss_name", sorted(LOSSES))
def test_cost_gradient_matches_fn(rng, loss_name):
    loss = LOSSES[loss_name]
    a = rng.uniform(0.05, 0.95, (4, 3))
    y = np.eye(3)[rng.integers(0, 3, 4)]
    numeric = numeric_grad(lambda: loss.fn(a, y) * len(a), a)  # fn is the batch mean
    assert rel_err(loss.grad(a, y), numeric) < TOL


@pytest.mark.parametrize(
    "loss_name, act", [("cross-entropy", "sigmoid"), ("log-likelihood", "softmax"),
                       ("quadratic", "sigmoid"), ("quadratic", "tanh"),
                       ("cross-entropy", "softmax"), ("log-likelihood", "sigmoid")],
)  # fmt: skip
def test_output_delta_is_dC_dz(rng, loss_name, act):
    """The output error the model uses (fused a - y, or the chain rule) equals dC/dz."""
    loss, fn = LOSSES[loss_name], get_activation(act)
    z = rng.standard_normal((4, 3))
    y = np.eye(3)[rng.integers(0, 3, 4)]
    a = fn.forward(z)
    delta = (a - y) if loss.fused == act else fn.backward(z, a, loss.grad(a, y))
    numeric = numeric_grad(lambda: loss.fn(fn.forward(z), y) * len(z), z)
    assert rel_err(delta, numeric) < TOL


@pytest.mark.parametrize(
    "spec, loss",
    [
        ("input:6, dense:5:sigmoid, dense:3:sigmoid", "cross-entropy"),
        ("input:6, dense:5:tanh, dense:3:softmax", "log-likelihood"),
        ("input:6, dense:5:relu, dense:4:identity, dense:3:sigmoid", "quadratic"),
    ],
)
def test_whole_network_gradient_with_l2(rng, spec, loss):
    """The model's mean-cost gradient (as fit computes it) against central differences."""
    from cvtool.nn.losses import get_loss, l2_penalty

    model = Sequential.from_spec(parse_spec(spec)).build(np, "float64", seed=3)
    x = rng.standard_normal((7, 6))
    Y = np.eye(3)[rng.integers(0, 3, 7)]
    cost = get_loss(loss)
    lmbda, n = 0.3, 50

    def f():
        return cost.fn(model.forward(x), Y) + l2_penalty(model._weights(), lmbda, n)

    model.gradient_norms(x, Y, cost)  # fills every layer's grads with the mean gradient
    for layer in model.param_layers:
        for k, p in layer.params.items():
            analytic = layer.grads[k] + (lmbda / n * p if k == "W" else 0)
            assert rel_err(analytic, numeric_grad(f, p)) < TOL, (type(layer).__name__, k)


def test_fused_and_chain_rule_paths_agree(rng):
    """Training with the fused a - y output error equals the generic chain rule."""
    from cvtool.nn.losses import LogLikelihoodCost

    model = Sequential.from_spec(parse_spec("input:4, dense:3:softmax")).build(np, "float64")
    x = rng.standard_normal((5, 4))
    Y = np.eye(3)[rng.integers(0, 3, 5)]
    model.gradient_norms(x, Y, LogLikelihoodCost)
    fused = model.layers[0].grads["W"].copy()
    a = model.forward(x, True)
    d = LogLikelihoodCost.grad(a, Y) / len(x)
    for layer in reversed(model.layers):  # the generic chain rule, softmax's backward included
        d = layer.backward(d)
    assert np.allclose(model.layers[0].grads["W"], fused, rtol=1e-9, atol=1e-12)
