"""The per-pixel softmax + log-likelihood: finite differences, PyTorch's cross_entropy, errors."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from cvtool.backend import to_numpy
from cvtool.errors import CvtoolError
from cvtool.nn import pixelwise
from cvtool.nn.pixelwise import PixelLogLikelihood

EPS = 1e-6
IGNORE = 255
CASES = [
    {},
    {"weight": [0.1, 1.0, 2.5, 4.0]},
    {"ignore_index": IGNORE},
    {"weight": [0.1, 1.0, 2.5, 4.0], "ignore_index": IGNORE},
]


def _data(seed=0, ignore=True):
    rng = np.random.default_rng(seed)
    z = 3 * rng.normal(size=(2, 5, 6, 4))  # (N, H, W, K) logits
    y = rng.integers(0, 4, size=(2, 5, 6))  # (N, H, W)
    if ignore:
        y[0, 1, :4] = IGNORE
        y[1, 3, 2] = IGNORE
    return z, y


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize("kwargs", CASES)
def test_delta_matches_finite_differences(xp, kwargs):
    z, y = _data(ignore="ignore_index" in kwargs)
    loss = PixelLogLikelihood(**kwargs)
    zd, yd = xp.asarray(z), xp.asarray(y)
    value, delta = loss.value_and_delta(zd, yd)
    num = np.zeros(z.shape)
    flat = zd.reshape(-1)
    for i in range(flat.size):
        old = float(flat[i])
        flat[i] = old + EPS
        up = loss.fn(zd, yd)
        flat[i] = old - EPS
        down = loss.fn(zd, yd)
        flat[i] = old
        num.reshape(-1)[i] = (up - down) / (2 * EPS)
    delta = to_numpy(delta)
    err = np.max(np.abs(delta - num)) / max(1e-12, np.max(np.abs(delta) + np.abs(num)))
    assert err < 1e-6
    assert value == pytest.approx(loss.fn(zd, yd), rel=1e-12)
    np.testing.assert_allclose(to_numpy(loss.delta(zd, yd)), delta, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("kwargs", CASES)
@pytest.mark.parametrize("from_logits", [True, False])
def test_matches_torch_cross_entropy(kwargs, from_logits):
    torch = pytest.importorskip("torch")
    z, y = _data(seed=1, ignore="ignore_index" in kwargs)
    loss = PixelLogLikelihood(**kwargs, from_logits=from_logits)
    value, delta = loss.value_and_delta(z if from_logits else _softmax(z), y)
    zt = torch.from_numpy(np.ascontiguousarray(np.moveaxis(z, 3, 1))).requires_grad_()
    extra = {}
    if "weight" in kwargs:
        extra["weight"] = torch.tensor(kwargs["weight"], dtype=torch.float64)
    if "ignore_index" in kwargs:
        extra["ignore_index"] = kwargs["ignore_index"]
    ref = torch.nn.functional.cross_entropy(zt, torch.from_numpy(y), **extra)
    ref.backward()
    assert value == pytest.approx(ref.item(), rel=1e-10)
    np.testing.assert_allclose(delta, np.moveaxis(zt.grad.numpy(), 1, 3), rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("from_logits", [True, False])
def test_split_across_threads_matches_whole(monkeypatch, from_logits):
    z, y = _data(seed=4)
    scores = z if from_logits else _softmax(z)
    loss = PixelLogLikelihood(
        weight=CASES[3]["weight"], ignore_index=IGNORE, from_logits=from_logits
    )
    value, delta = loss.value_and_delta(scores, y)
    monkeypatch.setenv("CVTOOL_THREADS", "2")
    monkeypatch.setattr(sys.modules[pixelwise.run_rows.__module__], "SPLIT_SIZE", 1)
    split_value, split_delta = loss.value_and_delta(scores, y)
    assert split_value == pytest.approx(value, rel=1e-12)
    np.testing.assert_array_equal(split_delta, delta)


def test_float32_large_logits_stay_finite():
    z, y = _data(seed=2, ignore=False)
    z = (200 * z).astype(np.float32)
    value, delta = PixelLogLikelihood().value_and_delta(z, y)
    assert np.isfinite(value) and np.isfinite(delta).all()
    assert delta.dtype == np.float32


def test_every_pixel_ignored_gives_zero():
    z, _ = _data()
    y = np.full(z.shape[:3], IGNORE)
    value, delta = PixelLogLikelihood(ignore_index=IGNORE).value_and_delta(z, y)
    assert value == 0.0 and not delta.any()


def test_class_weights_scale_as_torch_does():
    """Equal weights change nothing; a zero weight drops that class's pixels from the mean."""
    z, y = _data(seed=3, ignore=False)
    plain = PixelLogLikelihood().fn(z, y)
    assert PixelLogLikelihood(weight=[3.0] * 4).fn(z, y) == pytest.approx(plain, rel=1e-12)
    keep = y != 0
    picked = -np.log(np.take_along_axis(_softmax(z), y[..., None], -1)[..., 0])
    dropped = PixelLogLikelihood(weight=[0.0, 1.0, 1.0, 1.0]).fn(z, y)
    assert dropped == pytest.approx(picked[keep].mean(), rel=1e-12)


@pytest.mark.parametrize(
    "labels, kwargs, message",
    [
        (np.full((2, 5, 6), 4), {}, r"Labels must be in 0\.\.3\. Got 4"),
        (np.full((2, 5, 6), -1), {"ignore_index": IGNORE}, "or the ignore label 255. Got -1"),
        (np.zeros((2, 5, 5), int), {}, "do not match"),
        (np.zeros((2, 5, 6)), {}, "must hold integers"),
        (np.zeros((2, 5, 6), int), {"weight": [1, 2, 3]}, "one entry per class"),
    ],
)
def test_bad_labels_are_one_line_user_errors(labels, kwargs, message):
    z, _ = _data()
    with pytest.raises(CvtoolError, match=message) as info:
        PixelLogLikelihood(**kwargs).value_and_delta(z, labels)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("kwargs", [{"weight": [1, -1]}, {"weight": []}, {"ignore_index": 1.5}])
def test_bad_settings(kwargs):
    with pytest.raises(CvtoolError, match="parameter must be"):
        PixelLogLikelihood(**kwargs)


@pytest.mark.parametrize("kwargs", CASES)
@pytest.mark.parametrize("from_logits", [True, False])
def test_delta_scale_is_the_scaled_delta(kwargs, from_logits):
    z, y = _data(4, ignore="ignore_index" in kwargs)
    scores = z if from_logits else _softmax(z)
    loss = PixelLogLikelihood(from_logits=from_logits, **kwargs)
    want = 7.0 * loss.delta(scores, y)
    np.testing.assert_allclose(loss.delta(scores, y, scale=7.0), want, rtol=1e-13, atol=1e-15)
