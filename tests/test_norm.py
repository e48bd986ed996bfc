"""BatchNorm: finite differences (float64, training mode), PyTorch equality, save/load, shapes."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import numeric_grad, rel_error

from cvtool.backend import to_numpy
from cvtool.errors import CvtoolError
from cvtool.nn.model import Sequential
from cvtool.nn.norm import BatchNorm
from cvtool.nn.spec import parse_spec


def _layer(xp, in_shape, rng, **kwargs):
    layer = BatchNorm(**kwargs)
    layer.build(in_shape, xp, np.dtype(np.float64), rng)
    c = in_shape[-1]
    layer.params["gamma"][...] = xp.asarray(rng.normal(1.0, 0.5, size=c))
    layer.params["beta"][...] = xp.asarray(rng.normal(size=c))
    return layer


@pytest.mark.parametrize("shape", [(3, 4, 5, 2), (6, 3)])
def test_batchnorm_gradients(xp, shape):
    rng = np.random.default_rng(0)
    layer = _layer(xp, shape[1:], rng)
    x = xp.asarray(rng.normal(2.0, 3.0, size=shape))
    r = xp.asarray(rng.normal(size=shape))
    layer.forward(x, training=True)
    dx = to_numpy(layer.backward(r)).copy()

    def loss():  # training mode: the batch statistics depend on x
        return float((layer.forward(x, training=True) * r).sum())

    assert rel_error(dx, numeric_grad(loss, x)) < 1e-6
    for name, p in layer.params.items():
        assert rel_error(to_numpy(layer.grads[name]), numeric_grad(loss, p)) < 1e-6, name


def test_batchnorm_forward_normalises(xp):
    rng = np.random.default_rng(1)
    layer = BatchNorm()
    layer.build((5, 5, 3), xp, np.dtype(np.float64), rng)
    x = xp.asarray(rng.normal(4.0, 2.0, size=(8, 5, 5, 3)))
    y = to_numpy(layer.forward(x, training=True))
    np.testing.assert_allclose(y.mean(axis=(0, 1, 2)), 0.0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=(0, 1, 2)), 1.0, rtol=1e-4)  # epsilon shifts it


def test_batchnorm_shapes_and_counts():
    layer = BatchNorm()
    layer.build((4, 4, 7), np, np.dtype(np.float32), np.random.default_rng(0))
    assert layer.output_shape((4, 4, 7)) == (4, 4, 7)
    assert sum(layer.param_count((4, 4, 7))) == sum(p.size for p in layer.params.values()) == 14
    assert layer.state_count((4, 4, 7)) == sum(v.size for v in layer.state.values()) == 14
    assert set(layer.params) == {"gamma", "beta"}  # no "W": never L2-decayed
    y = layer.forward(np.ones((2, 4, 4, 7), np.float32), training=True)
    assert y.shape == (2, 4, 4, 7) and y.dtype == np.float32


def test_batchnorm_bad_settings():
    with pytest.raises(CvtoolError, match="'momentum'"):
        BatchNorm(momentum=1.0)
    with pytest.raises(CvtoolError, match="'epsilon'"):
        BatchNorm(epsilon=0)
    layer = BatchNorm()
    layer.build((3,), np, np.dtype(np.float64), np.random.default_rng(0))
    with pytest.raises(CvtoolError, match="batch size"):
        layer.forward(np.ones((1, 3)), training=True)


def _torch_pair(torch, shape, momentum, rng):
    """A cvtool BatchNorm and a torch BatchNorm1d/2d with the same random gamma, beta."""
    c = shape[-1]
    ours = BatchNorm(momentum=momentum, epsilon=1e-5)
    ours.build(shape[1:], np, np.dtype(np.float64), rng)
    gamma, beta = rng.normal(1.0, 0.5, size=c), rng.normal(size=c)
    ours.params["gamma"][...] = gamma
    ours.params["beta"][...] = beta
    cls = torch.nn.BatchNorm2d if len(shape) == 4 else torch.nn.BatchNorm1d
    ref = cls(c, momentum=1 - momentum, eps=1e-5).double()
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(gamma))
        ref.bias.copy_(torch.from_numpy(beta))
    return ours, ref


def _nchw(a, torch):
    """(N, H, W, C) NumPy -> (N, C, H, W) torch; (N, D) unchanged."""
    t = torch.from_numpy(np.ascontiguousarray(a))
    return t.permute(0, 3, 1, 2) if a.ndim == 4 else t


@pytest.mark.parametrize(
    ("shape", "momentum"),
    [
        ((4, 5, 6, 3), 0.9),
        ((4, 5, 6, 3), 0.99),
        ((16, 5), 0.9),
        ((1031, 2), 0.9),  # a prime count per channel: no folding of rows
        ((8, 32, 32, 16), 0.9),  # large enough to be split across threads
    ],
)
def test_batchnorm_matches_torch(shape, momentum):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    ours, ref = _torch_pair(torch, shape, momentum, rng)
    ref.train()
    for step in range(4):  # several steps: running statistics compound
        x = rng.normal(step - 1.0, 1.0 + step, size=shape)
        r = rng.normal(size=shape)
        y = ours.forward(x, training=True)
        dx = ours.backward(r)
        xt = _nchw(x, torch).requires_grad_(True)
        yt = ref(xt)
        (yt * _nchw(r, torch)).sum().backward()
        back = (0, 2, 3, 1) if len(shape) == 4 else (0, 1)
        np.testing.assert_allclose(y, yt.detach().permute(*back).numpy(), atol=1e-12)
        np.testing.assert_allclose(dx, xt.grad.permute(*back).numpy(), atol=1e-10)
        np.testing.assert_allclose(ours.grads["gamma"], ref.weight.grad.numpy(), atol=1e-10)
        np.testing.assert_allclose(ours.grads["beta"], ref.bias.grad.numpy(), atol=1e-10)
        ref.weight.grad = ref.bias.grad = None
    np.testing.assert_allclose(ours.state["running_mean"], ref.running_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.state["running_var"], ref.running_var.numpy(), rtol=1e-12)
    ref.eval()
    x = rng.normal(size=shape)
    with torch.no_grad():
        want = ref(_nchw(x, torch)).permute(*back).numpy()
    np.testing.assert_allclose(ours.forward(x, training=False), want, atol=1e-12)


def test_batchnorm_spec_builds_and_save_load_round_trip(tmp_path):
    spec = "input:8x8x1, conv:4x3:p=same, batchnorm, relu, conv:2x3, bn, relu, flatten, dense:3"
    model = Sequential.from_spec(parse_spec(spec))
    model.build(np, "float64", seed=0)
    kinds = [layer.kind for layer in model.layers]
    assert kinds[:3] == ["conv", "batchnorm", "activation"]
    rng = np.random.default_rng(3)
    for _ in range(3):  # move the running statistics away from their initial values
        model.forward(rng.normal(size=(5, 8, 8, 1)), training=True)
    bn = model.layers[1]
    assert not np.allclose(bn.state["running_mean"], 0.0)
    x = rng.normal(size=(4, 8, 8, 1))
    want = model.forward(x)
    path = model.save(tmp_path / "bn.npz")
    back = Sequential.load(path, backend_name="numpy", dtype="float64")
    for a, b in zip(model.layers, back.layers, strict=True):
        for k in getattr(a, "state", {}):
            np.testing.assert_array_equal(a.state[k], b.state[k])
    np.testing.assert_allclose(back.forward(x), want, atol=1e-12)
    rows = [r for r in back.summary() if r["type"] == "BatchNorm"]
    assert sum(r["trainable"] for r in rows) == 4 * 2 + 2 * 2  # gamma, beta
    assert sum(r["non_trainable"] for r in rows) == 4 * 2 + 2 * 2  # running mean, variance


def test_batchnorm_state_missing_is_a_user_error(tmp_path):
    model = Sequential.from_spec(parse_spec("input:4x4x1, conv:2x3, bn, flatten, dense:2"))
    model.build(np, "float32", seed=0)
    path = model.save(tmp_path / "m.npz")
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files if not k.startswith("s1.")}
    np.savez(path, **arrays)
    with pytest.raises(CvtoolError, match="state s1"):
        Sequential.load(path)


def test_batchnorm_layer_calc_agrees_with_the_layer():
    from cvtool.summary import summarize

    spec = parse_spec("input:8x8x3, conv:16x3:p=same, bn, relu")
    rows = summarize(spec)["rows"]
    layer = BatchNorm()
    assert rows[2]["trainable"] == sum(layer.param_count((8, 8, 16)))
    assert rows[2]["non_trainable"] == layer.state_count((8, 8, 16))


@pytest.mark.parametrize("mean", [0.5, 1e3])  # the one-pass variance, then the two-pass fallback
def test_batchnorm_float32_statistics_match_float64(mean):
    rng = np.random.default_rng(5)
    x = rng.normal(mean, 2.0, size=(16, 12, 12, 8)).astype(np.float32)
    dout = rng.normal(size=x.shape).astype(np.float32)
    layers = []
    for dtype in (np.float32, np.float64):
        layer = BatchNorm()
        layer.build(x.shape[1:], np, np.dtype(dtype), np.random.default_rng(0))
        y = layer.forward(x.astype(dtype), training=True)
        layers.append((layer, y.astype(np.float64), layer.backward(dout.astype(dtype))))
    (l32, y32, dx32), (l64, y64, dx64) = layers
    np.testing.assert_allclose(l32.state["running_var"], l64.state["running_var"], rtol=1e-5)
    np.testing.assert_allclose(l32.state["running_mean"], l64.state["running_mean"], rtol=1e-5)
    np.testing.assert_allclose(y32, y64, atol=1e-4)
    np.testing.assert_allclose(dx32, dx64, atol=1e-4 * np.abs(dx64).max())
    np.testing.assert_allclose(l32.grads["gamma"], l64.grads["gamma"], rtol=1e-3, atol=1e-2)
