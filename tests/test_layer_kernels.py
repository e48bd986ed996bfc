"""The layers' compiled kernels (cvtool.nn.pool_numba, norm_numba) give the NumPy code's numbers.

MaxPool2D runs its kernels on NumPy when Numba imports and the windows tile the
input (stride = window, no padding); BatchNorm runs its element-wise passes
compiled. Forward values, the input gradient and, through a model, every
parameter gradient must equal the NumPy path's bit for bit (zero signs too),
with ties, NaN, infinities, the paired ReLU and sizes the windows do not divide.
"""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import numeric_grad, rel_error
from hypothesis import given, settings
from hypothesis import strategies as st

from cvtool.nn import _parallel
from cvtool.nn.cnn import cnn_model
from cvtool.nn.norm import BatchNorm
from cvtool.nn.pool import MaxPool2D

pytest.importorskip("numba")


def _run(x, dout, size, relu, use):
    """(out, dx) of a MaxPool2D with the compiled kernels on (use=True) or off."""
    old = _parallel.USE_NUMBA
    _parallel.USE_NUMBA = use
    try:
        layer = MaxPool2D(size)
        layer.relu = relu
        out = layer.forward(x, training=True)
        compiled = layer._cache[0] is None
        dx = layer.backward(dout(out.shape))
    finally:
        _parallel.USE_NUMBA = old
    assert compiled == use
    return out, dx


def _same(a, b):
    """Equal values (NaN where NaN), the same signs of zero, and the same float type."""
    assert a.dtype == b.dtype
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np.signbit(a), np.signbit(b))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # inf * 0 in both paths
@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 5),
    h=st.integers(1, 9),
    w=st.integers(1, 19),
    c=st.integers(1, 5),
    size=st.sampled_from([1, 2, 3, (2, 3), (3, 1), (1, 17)]),
    relu=st.booleans(),
    dtype=st.sampled_from(["float32", "float64"]),
    specials=st.booleans(),
    threads=st.sampled_from(["1", "2"]),
    seed=st.integers(0, 2**16),
)
def test_compiled_max_pool_equals_the_numpy_code(
    n, h, w, c, size, relu, dtype, specials, threads, seed
):
    ph, pw = (size, size) if isinstance(size, int) else size
    if h < ph or w < pw:
        return
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CVTOOL_THREADS", threads)
        _compare(n, h, w, c, size, relu, dtype, specials, seed)


def _compare(n, h, w, c, size, relu, dtype, specials, seed):
    ph, pw = (size, size) if isinstance(size, int) else size
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, (n, h, w, c)).astype(dtype)  # ties, zeros, all-negative windows
    if specials:  # NaN, infinities and -0.0 at random places
        picks = rng.choice(x.size, size=min(x.size, 6), replace=False)
        x.reshape(-1)[picks] = rng.choice([np.nan, np.inf, -np.inf, -0.0], size=len(picks))
    g = rng.normal(size=(n, h // ph, w // pw, c)).astype(dtype)
    if specials:
        g.reshape(-1)[rng.integers(0, g.size)] = rng.choice([np.inf, np.nan, -0.0])
    out1, dx1 = _run(x, lambda s: g, size, relu, True)
    out0, dx0 = _run(x, lambda s: g, size, relu, False)
    _same(out1, out0)
    _same(dx1, dx0)


@pytest.mark.parametrize("threads", ["1", "2"])
def test_a_model_trains_to_the_same_bits_with_and_without_the_kernels(threads, monkeypatch):
    monkeypatch.setenv("CVTOOL_THREADS", threads)
    spec = "conv:6x3:relu, pool:2, conv:8x3:p=same, bn, relu, pool:2, flatten, dense:10:softmax"
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 14, 14, 1)).astype("float32")
    y = rng.integers(0, 10, 40)
    weights = []
    for use in (True, False):
        monkeypatch.setattr(_parallel, "USE_NUMBA", use)
        model = cnn_model(spec, (14, 14, 1)).build(np, "float32", 0)
        model.fit(x, y, epochs=2, batch_size=8, seed=1, loss="log-likelihood")
        weights.append([p.copy() for layer in model.param_layers for p in layer.params.values()])
    for a, b in zip(*weights, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("relu", [False, True])
def test_compiled_max_pool_gradient_matches_finite_differences(relu, monkeypatch):
    monkeypatch.setattr(_parallel, "USE_NUMBA", True)
    rng = np.random.default_rng(4)
    x = rng.permutation(np.linspace(-1, 1, 2 * 7 * 6 * 3)).reshape(2, 7, 6, 3)  # no ties
    layer = MaxPool2D((2, 3))
    layer.relu = relu
    wts = rng.normal(size=(2, 3, 2, 3))

    def loss():
        return float((layer.forward(x) * wts).sum())

    layer.forward(x, training=True)
    assert layer._cache[0] is None  # the compiled path
    dx = layer.backward(wts)
    assert rel_error(dx, numeric_grad(loss, x)) < 1e-7


@pytest.mark.parametrize("size", [15, 16, 17])
def test_windows_of_more_than_255_cells_use_the_numpy_code(size):
    """Winners are numbered in uint8 (255: none): 16x16 and larger windows stay NumPy."""
    x = np.zeros((1, 17, 17, 1), np.float32)
    x[0, 15, 1, 0] = 5
    x[0, 14, 14, 0] = np.nan if size == 16 else 0
    g = np.ones((1, 1, 1, 1), np.float32)
    out1, dx1 = _run(x, lambda s: g, size, False, size <= 15)
    out0, dx0 = _run(x, lambda s: g, size, False, False)
    _same(out1, out0)
    _same(dx1, dx0)


def test_compiled_backward_checks_the_gradient_shape(monkeypatch):
    monkeypatch.setattr(_parallel, "USE_NUMBA", True)
    layer = MaxPool2D(2)
    layer.forward(np.zeros((2, 4, 4, 3)), training=True)
    with pytest.raises(ValueError, match="dout has shape"):
        layer.backward(np.zeros((2, 3, 3, 3)))


def _batchnorm(x, g, use):
    """(y, dx, dgamma, dbeta, running mean, running var) of a training pass, kernels on/off."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_parallel, "USE_NUMBA", use)
        layer = BatchNorm()
        layer.build(x.shape[1:], np, x.dtype, None)
        layer.params["gamma"][...] = np.linspace(0.5, 2, x.shape[-1])
        layer.params["beta"][...] = np.linspace(-1, 1, x.shape[-1])
        y = layer.forward(x, training=True).copy()
        assert (layer._kernels(x.reshape(-1, x.shape[-1])) is not None) == use
        dx = layer.backward(g).copy()
    out = [y, dx, layer.grads["gamma"], layer.grads["beta"]]
    return out + [layer.state["running_mean"], layer.state["running_var"]]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@settings(max_examples=40, deadline=None)
@given(
    shape=st.sampled_from([(8, 5), (4, 6, 6, 3), (2, 9, 7, 16), (3, 4, 4, 1)]),
    dtype=st.sampled_from(["float32", "float64"]),
    scale=st.sampled_from([1e-3, 1.0, 1e3]),
    offset=st.sampled_from([0.0, 100.0]),
    specials=st.booleans(),
    threads=st.sampled_from(["1", "2"]),
    seed=st.integers(0, 2**16),
)
def test_compiled_batchnorm_equals_the_numpy_code(
    shape, dtype, scale, offset, specials, threads, seed
):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * scale + offset).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    if specials:  # a NaN or an infinity in the gradient, -0.0 in both
        g.reshape(-1)[rng.integers(0, g.size)] = rng.choice([np.nan, np.inf, -0.0])
        x.reshape(-1)[rng.integers(0, x.size)] = -0.0
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CVTOOL_THREADS", threads)
        for a, b in zip(_batchnorm(x, g, True), _batchnorm(x, g, False), strict=True):
            _same(a, b)


def test_compiled_batchnorm_gradient_matches_finite_differences(monkeypatch):
    monkeypatch.setattr(_parallel, "USE_NUMBA", True)
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 4, 4, 2))
    wts = rng.standard_normal(x.shape)
    layer = BatchNorm()
    layer.build(x.shape[1:], np, np.float64, None)

    def loss():
        return float((layer.forward(x, training=True) * wts).sum())

    layer.forward(x, training=True)
    dx = layer.backward(wts)
    assert layer._kernels(x.reshape(-1, 2)) is not None
    assert rel_error(dx, numeric_grad(loss, x)) < 1e-7


def _subnormal_survives() -> bool:
    """Whether a float32 product keeps a subnormal value in the calling thread."""
    a = np.full(8, 1e-39, dtype=np.float32)
    return bool((a * np.float32(1.0) > 0).all())


@pytest.mark.skipif(
    __import__("platform").machine().lower() not in ("x86_64", "amd64"), reason="x86-64 only"
)
def test_training_flushes_subnormals_in_every_thread_and_restores_the_caller(monkeypatch):
    monkeypatch.setenv("CVTOOL_THREADS", "2")
    assert _subnormal_survives()
    with _parallel.flushed_subnormals(np):
        assert not _subnormal_survives()  # this thread: FTZ/DAZ
        pool = _parallel.worker_pool(2)
        assert not any(pool.submit(_subnormal_survives).result() for _ in range(8))
    assert _subnormal_survives()  # the caller's register is back
    assert all(pool.submit(_subnormal_survives).result() for _ in range(8))  # the workers' too
    monkeypatch.setattr(_parallel, "FLUSH_SUBNORMALS", False)
    with _parallel.flushed_subnormals(np):
        assert _subnormal_survives()


def test_fit_runs_with_subnormals_flushed(monkeypatch):
    """fit enters flushed_subnormals (and leaves it, also when training fails)."""
    seen = []
    real = _parallel.flushed_subnormals

    def spy(xp):
        seen.append(xp)
        return real(xp)

    monkeypatch.setattr("cvtool.nn.fit.flushed_subnormals", spy)
    model = cnn_model("conv:2x3:relu, flatten, dense:3:softmax", (6, 6, 1)).build(np, "float32", 0)
    x = np.random.default_rng(0).normal(size=(12, 6, 6, 1)).astype("float32")
    model.fit(x, np.arange(12) % 3, epochs=1, batch_size=4, loss="log-likelihood")
    assert seen == [np]
    assert _subnormal_survives()
