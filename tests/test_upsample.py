"""ConvTranspose2D and UpSampling2D: finite differences, PyTorch, shapes and layer-calc.

Gradient checks are float64 central differences of sum(forward(x) * R) for a
fixed random R (its gradient with respect to the output is R). PyTorch is NCHW
and stores the transposed kernel as (C_in, F, K_h, K_w); cvtool is NHWC with
W (K_h, K_w, F, C_in), hence the transposes below.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from gradcheck import numeric_grad, rel_error
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cvtool import shapes
from cvtool.backend import to_numpy
from cvtool.errors import CvtoolError
from cvtool.nn import upsample
from cvtool.nn.upsample import ConvTranspose2D, UpSampling2D

DECONV_CASES = [
    {"kernel": 3},
    {"kernel": 4, "stride": 2, "padding": 1},
    {"kernel": 3, "stride": 2, "padding": 1, "output_padding": 1},
    {"kernel": (2, 3), "stride": 3, "output_padding": 2, "bias": False},  # OP > P: bias-only rows
    {"kernel": 3, "stride": 2, "padding": 2, "output_padding": 1},  # P > K / 2
    {"kernel": 1, "stride": 2},  # K < S: gaps that only the bias fills
]


def _built(layer, in_shape, xp, seed=7):
    rng = np.random.default_rng(seed)
    layer.build(in_shape, xp, np.float64, rng)
    for name in layer.params:  # non-zero biases so they matter
        layer.params[name] = xp.asarray(rng.normal(size=layer.params[name].shape))
    return layer


def _check_gradients(layer, x, xp):
    layer = _built(layer, x.shape[1:], xp)
    x = xp.asarray(x)
    out = layer.forward(x, training=True)
    r = xp.asarray(np.random.default_rng(3).normal(size=out.shape))
    dx = to_numpy(layer.backward(r))

    def loss():
        return float((layer.forward(x) * r).sum())

    assert rel_error(dx, numeric_grad(loss, x)) < 1e-6
    for name, p in layer.params.items():
        assert rel_error(to_numpy(layer.grads[name]), numeric_grad(loss, p)) < 1e-6, name


@pytest.mark.parametrize("kwargs", DECONV_CASES)
def test_deconv_gradients(xp, kwargs):
    x = np.random.default_rng(0).normal(size=(2, 4, 5, 3))
    _check_gradients(ConvTranspose2D(4, **kwargs), x, xp)


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
@pytest.mark.parametrize("factor", [2, 3, (1, 2), (3, 2)])
def test_upsample_gradients(xp, mode, factor):
    x = np.random.default_rng(1).normal(size=(2, 4, 3, 2))
    _check_gradients(UpSampling2D(factor, mode), x, xp)


def _torch_deconv(layer, c):
    torch = pytest.importorskip("torch")
    kw = layer.config()
    t = torch.nn.ConvTranspose2d(
        c, layer.filters, tuple(kw["kernel"]), stride=layer.stride, padding=layer.padding,
        output_padding=layer.output_padding, bias=layer.bias,
    ).double()  # fmt: skip
    with torch.no_grad():
        t.weight.copy_(
            torch.from_numpy(np.ascontiguousarray(layer.params["W"].transpose(3, 2, 0, 1)))
        )
        if layer.bias:
            t.bias.copy_(torch.from_numpy(layer.params["b"]))
    return torch, t


def _nchw(a):
    return np.ascontiguousarray(np.moveaxis(a, 3, 1))


def _nhwc(t):
    return np.moveaxis(t.detach().numpy(), 1, 3)


@pytest.mark.parametrize("kwargs", DECONV_CASES)
def test_deconv_matches_torch(kwargs):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3, 5, 4, 3))
    layer = _built(ConvTranspose2D(4, **kwargs), x.shape[1:], np)
    torch, t = _torch_deconv(layer, 3)
    out = layer.forward(x, training=True)
    g = rng.normal(size=out.shape)
    dx = layer.backward(g)
    xt = torch.from_numpy(_nchw(x)).requires_grad_()
    yt = t(xt)
    yt.backward(torch.from_numpy(_nchw(g)))
    np.testing.assert_allclose(out, _nhwc(yt), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, _nhwc(xt.grad), rtol=1e-10, atol=1e-12)
    dw = t.weight.grad.numpy().transpose(2, 3, 1, 0)  # (C, F, Kh, Kw) -> (Kh, Kw, F, C)
    np.testing.assert_allclose(layer.grads["W"], dw, rtol=1e-10, atol=1e-12)
    if layer.bias:
        np.testing.assert_allclose(layer.grads["b"], t.bias.grad.numpy(), rtol=1e-10)


def test_deconv_chunked_threads_match_torch(monkeypatch):
    """Many small chunks on two worker threads give the one-product answer (float32)."""
    monkeypatch.setenv("CVTOOL_THREADS", "2")
    monkeypatch.setattr(upsample, "CHUNK_BYTES", 1)  # one image per chunk
    rng = np.random.default_rng(4)
    x = rng.normal(size=(7, 8, 8, 5))
    layer = _built(ConvTranspose2D(3, 4, stride=2, padding=1), x.shape[1:], np)
    torch, t = _torch_deconv(layer, 5)
    layer.need_dx = True
    out = layer.forward(x, training=True)
    g = rng.normal(size=out.shape)
    dx = layer.backward(g)
    xt = torch.from_numpy(_nchw(x)).requires_grad_()
    yt = t(xt)
    yt.backward(torch.from_numpy(_nchw(g)))
    np.testing.assert_allclose(out, _nhwc(yt), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, _nhwc(xt.grad), rtol=1e-10, atol=1e-12)
    dw = t.weight.grad.numpy().transpose(2, 3, 1, 0)
    np.testing.assert_allclose(layer.grads["W"], dw, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.forward(x), out)  # inference equals training mode


def test_deconv_first_layer_skips_dx():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(2, 3, 3, 2))
    layer = _built(ConvTranspose2D(2, 3, stride=2), x.shape[1:], np)
    out = layer.forward(x, training=True)
    g = rng.normal(size=out.shape)
    layer.backward(g)
    dw = layer.grads["W"].copy()
    layer.need_dx = False
    layer.forward(x, training=True)
    assert layer.backward(g) is None
    np.testing.assert_allclose(layer.grads["W"], dw)


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
@pytest.mark.parametrize("factor", [2, 3, (2, 3), 1])
def test_upsample_matches_torch(mode, factor):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(6)
    x = rng.normal(size=(2, 5, 4, 3))
    layer = UpSampling2D(factor, mode)
    layer.build(x.shape[1:], np, np.float64, rng)
    out = layer.forward(x, training=True)
    g = rng.normal(size=out.shape)
    dx = layer.backward(g)
    extra = {"align_corners": False} if mode == "bilinear" else {}
    t = torch.nn.Upsample(scale_factor=shapes.pair(factor), mode=mode, **extra)
    xt = torch.from_numpy(_nchw(x)).requires_grad_()
    yt = t(xt)
    yt.backward(torch.from_numpy(_nchw(g)))
    np.testing.assert_allclose(out, _nhwc(yt), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, _nhwc(xt.grad), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_upsample_split_across_threads_matches_whole(monkeypatch, mode):
    rng = np.random.default_rng(8)
    x = rng.normal(size=(5, 4, 6, 3))
    layer = UpSampling2D((2, 3), mode)
    layer.build(x.shape[1:], np, np.float64, rng)
    g = rng.normal(size=(5, 8, 18, 3))
    whole = layer.forward(x, training=True).copy()
    dx_whole = layer.backward(g).copy()
    monkeypatch.setenv("CVTOOL_THREADS", "2")
    monkeypatch.setattr(sys.modules[upsample.run_rows.__module__], "SPLIT_SIZE", 1)
    np.testing.assert_array_equal(layer.forward(x, training=True), whole)
    np.testing.assert_array_equal(layer.backward(g), dx_whole)


@pytest.mark.parametrize(
    "layer",
    [ConvTranspose2D(4, **kw) for kw in DECONV_CASES]
    + [UpSampling2D(2, "nearest"), UpSampling2D((3, 2), "bilinear")],
    ids=lambda layer: repr(layer),
)
def test_shape_and_param_count_from_config(layer):
    in_shape = (4, 5, 3)
    layer.build(in_shape, np, np.float32, np.random.default_rng(0))
    out = layer.forward(np.zeros((2, *in_shape), np.float32))
    assert out.shape[1:] == layer.output_shape(in_shape)
    assert sum(layer.param_count(in_shape)) == sum(int(p.size) for p in layer.params.values())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    h=st.integers(1, 7), w=st.integers(1, 7), kh=st.integers(1, 5), kw=st.integers(1, 5),
    s=st.integers(1, 3), p=st.integers(0, 3), op=st.integers(0, 2),
)  # fmt: skip
def test_conv_transpose_formula_matches_forward(h, w, kh, kw, s, p, op):
    assume(op < s)
    assume((h - 1) * s - 2 * p + kh + op >= 1 and (w - 1) * s - 2 * p + kw + op >= 1)
    out_shape = shapes.conv_transpose2d_output((h, w, 2), 3, (kh, kw), s, p, op)
    layer = ConvTranspose2D(3, (kh, kw), stride=s, padding=p, output_padding=op)
    layer.build((h, w, 2), np, np.float64, np.random.default_rng(0))
    assert layer.forward(np.ones((1, h, w, 2))).shape[1:] == out_shape


@settings(max_examples=30, deadline=None)
@given(h=st.integers(1, 6), w=st.integers(1, 6), fh=st.integers(1, 4), fw=st.integers(1, 4),
       mode=st.sampled_from(shapes.UPSAMPLE_MODES))  # fmt: skip
def test_upsample_formula_matches_forward(h, w, fh, fw, mode):
    layer = UpSampling2D((fh, fw), mode)
    out = layer.forward(np.ones((1, h, w, 2)))
    assert out.shape[1:] == shapes.upsample2d_output((h, w, 2), (fh, fw))
    np.testing.assert_allclose(out, 1.0)  # both modes keep constants constant


@pytest.mark.parametrize(
    "make",
    [
        lambda: ConvTranspose2D(4, 3, stride=2, output_padding=2),
        lambda: ConvTranspose2D(0, 3),
        lambda: ConvTranspose2D(4, 3, padding=-1),
        lambda: UpSampling2D(0),
        lambda: UpSampling2D(2, "bicubic"),
    ],
)
def test_bad_settings_are_user_errors(make):
    with pytest.raises(CvtoolError, match="parameter must be"):
        make()


def test_cropping_everything_is_a_user_error():
    with pytest.raises(CvtoolError, match="crops the whole output"):
        ConvTranspose2D(2, 3, padding=3).output_shape((2, 2, 1))
    with pytest.raises(CvtoolError, match="image input"):
        UpSampling2D(2).output_shape((10,))


SPEC = "input:16x16x3, conv:8x3:relu:p=same, pool:2, deconv:4x4:s=2:p=1, upsample:2:bilinear"


def test_layer_calc_net_with_upsampling_layers(cli):
    result = cli("layer-calc", "net", SPEC, "--json")
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)["rows"]
    deconv, up = rows[3], rows[4]
    assert deconv["type"] == "ConvTranspose2D" and up["type"] == "UpSampling2D"
    assert deconv["output_shape"] == [16, 16, 4] and up["output_shape"] == [32, 32, 4]
    assert deconv["params"] == 4 * 4 * 8 * 4 + 4 and up["params"] == 0
    assert deconv["macs"] == 8 * 8 * 8 * 4 * 4 * 4 and up["macs"] == 0
    # pool leaves jump 2; the stride-2 deconv halves it and the x2 upsampling halves it again
    assert rows[2]["jump"] == [2, 2] and deconv["jump"] == [1, 1] and up["jump"] == [0.5, 0.5]
    # deconv outputs 2q and 2q+1 see pool units {q-1, q} and {q, q+1} (6 pixels each); a
    # bilinear unit blends two of them, 3 pool units: 4 + 2 * 2 = 8 pixels
    assert deconv["rf"] == [6, 6] and up["rf"] == [8, 8]


def test_spec_builds_a_model_whose_shapes_agree_with_layer_calc(cli):
    from cvtool.nn.model import Sequential
    from cvtool.nn.spec import parse_spec

    doc = json.loads(cli("layer-calc", "net", SPEC, "--json").stdout)
    model = Sequential.from_spec(parse_spec(SPEC)).build(np, "float64", 0)
    a = np.random.default_rng(0).normal(size=(2, 16, 16, 3))
    for layer in model.layers:
        a = layer.forward(a)
    assert list(a.shape[1:]) == doc["totals"]["output_shape"]
    assert model.count_params() == doc["totals"]["params"]


@pytest.mark.parametrize(
    "spec, message",
    [
        ("input:8x8x1, deconv:4", "deconv:FILTERSxKERNEL"),
        ("input:8x8x1, deconv:4x3:q=1", "unknown option"),
        ("input:8x8x1, upsample:2:cubic", "upsample:FACTOR"),
        ("input:8x8x1, upsample:0", "factor must be an int >= 1"),
        ("input:8x8x1, deconv:4x3:s=2:op=2", "output_padding"),
        ("input:8, upsample:2", "image input"),
    ],
)
def test_layer_calc_bad_upsampling_specs(cli, spec, message):
    result = cli("layer-calc", "net", spec)
    assert result.exit_code == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "body",
    [
        "conv:1x3:p=same, avgpool:2, deconv:1x4:s=2:p=1, upsample:2:bilinear",
        "conv:1x3, avgpool:2, deconv:1x3:s=2, upsample:3",
        "avgpool:2, upsample:2:bilinear, deconv:1x5:s=3:p=1:op=2",
        "avgpool:2, deconv:1x4:s=2:p=1, conv:1x3:p=same, avgpool:3, upsample:3:bilinear",
        "upsample:2, conv:1x3:d=2:p=same, deconv:1x2:s=3, conv:1x3:s=2",  # K < S: gaps
    ],
)
def test_receptive_field_is_the_widest_real_dependency(cli, body):
    """layer-calc's receptive field equals the widest span of input rows one output unit
    depends on (all weights positive, so no dependency cancels; border units excluded)."""
    from cvtool.nn.model import Sequential
    from cvtool.nn.spec import parse_spec

    spec = "input:24x6x1, " + body
    doc = json.loads(cli("layer-calc", "net", spec, "--json").stdout)
    model = Sequential.from_spec(parse_spec(spec)).build(np, "float64", 0)
    rng = np.random.default_rng(0)
    for layer in model.layers:
        layer.need_dx = True
        for name in layer.params:
            layer.params[name][...] = rng.uniform(0.5, 1.5, layer.params[name].shape)
    out_rows = doc["totals"]["output_shape"][0]
    spans = []
    margin = out_rows // 4  # units near the border see padding or clamped rows
    for i in range(margin, out_rows - margin):
        x = rng.normal(size=(1, 24, 6, 1))
        for layer in model.layers:  # a fresh forward for each backward (caches are used up)
            x = layer.forward(x, training=True)
        g = np.zeros(x.shape)
        g[0, i, 3, 0] = 1.0
        for layer in reversed(model.layers):
            g = layer.backward(g)
        rows = np.flatnonzero(np.abs(g[0]).sum(axis=(1, 2)) > 0)
        spans.append(rows[-1] - rows[0] + 1)
    assert max(spans) == doc["rows"][-1]["rf"][0]
