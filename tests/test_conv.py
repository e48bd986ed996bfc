"""Conv2D and pooling layers against PyTorch (values and gradients), shapes and counts.

PyTorch works in NCHW and stores kernels as (F, C, K_h, K_w); cvtool is NHWC with
(K_h, K_w, C, F) kernels, so inputs and weights are permuted before comparing.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cvtool import shapes
from cvtool.backend import to_numpy
from cvtool.errors import CvtoolError
from cvtool.nn import _parallel, conv
from cvtool.nn.spec import parse_spec

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _nchw(x):
    return torch.from_numpy(np.ascontiguousarray(to_numpy(x).transpose(0, 3, 1, 2)))


def _nhwc(t):
    return t.detach().numpy().transpose(0, 2, 3, 1)


CONV_CASES = [
    # (H, W, C, F, kernel, stride, padding, dilation)
    (9, 9, 3, 4, 3, 1, 0, 1),
    (10, 8, 2, 5, (3, 2), 2, 1, 1),
    (11, 11, 3, 2, 5, 1, "same", 1),
    (12, 12, 2, 3, 3, 2, "same", 2),
    (7, 9, 1, 6, 4, 3, 2, 1),
    (14, 13, 2, 3, 3, 1, 0, 1),  # stride 1, H*W <= 1.5 H'*W': dx as a transposed convolution
    (10, 10, 4, 5, (3, 5), 1, 1, 1),
]


@pytest.mark.parametrize(
    ("chunk_bytes", "threads", "keep_bytes"),
    [(None, "1", None), (1, "1", None), (1, "2", None), (1, "2", 0)],
)
@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_matches_torch(xp, case, chunk_bytes, threads, keep_bytes, monkeypatch):
    """Whole batch in one product, and (chunk_bytes=1) one image per chunk, in 1 or 2 threads.

    keep_bytes=0: backward rebuilds each chunk's columns instead of reading kept ones.
    """
    h, w, c, f, kernel, stride, padding, dilation = case
    layer = conv.Conv2D(f, kernel, stride=stride, padding=padding, dilation=dilation)
    expect_transposed = CONV_CASES.index(case) in (2, 5, 6)
    assert layer._transposed((1, h, w, c), layer.output_shape((h, w, c))[:2]) == expect_transposed
    monkeypatch.setenv("CVTOOL_THREADS", threads)
    if chunk_bytes:
        monkeypatch.setattr(conv, "CHUNK_BYTES", chunk_bytes)
    if keep_bytes is not None:
        monkeypatch.setattr(conv, "KEEP_BYTES", keep_bytes)
    rng = np.random.default_rng(1)
    layer = conv.Conv2D(f, kernel, stride=stride, padding=padding, dilation=dilation)
    layer.build((h, w, c), xp, np.float64, rng)
    layer.params["b"] = xp.asarray(rng.normal(size=f))
    x = rng.normal(size=(3, h, w, c))
    out = layer.forward(xp.asarray(x), training=True)
    dout = rng.normal(size=out.shape)
    dx = layer.backward(xp.asarray(dout))

    xt = _nchw(x).requires_grad_()
    wt = torch.from_numpy(to_numpy(layer.params["W"]).transpose(3, 2, 0, 1).copy())
    wt.requires_grad_()
    bt = torch.from_numpy(to_numpy(layer.params["b"])).requires_grad_()
    pad = layer.pad
    ot = F.conv2d(xt, wt, bt, stride=stride, padding=pad, dilation=dilation)
    ot.backward(_nchw(dout))
    np.testing.assert_allclose(to_numpy(out), _nhwc(ot), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(to_numpy(dx), _nhwc(xt.grad), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(
        to_numpy(layer.grads["W"]), wt.grad.numpy().transpose(2, 3, 1, 0), rtol=1e-10, atol=1e-10
    )
    np.testing.assert_allclose(to_numpy(layer.grads["b"]), bt.grad.numpy(), rtol=1e-10)


POOL_CASES = [
    # (H, W, pool, stride, padding): tiling, overlapping, remainder, padded
    (8, 8, 2, None, 0),
    (9, 7, 3, 2, 0),
    (9, 9, 2, None, 0),
    (8, 10, 3, 2, 1),
    (6, 6, (2, 3), (2, 1), 0),
]


def _torch_pool(mode, xt, pool, stride, padding):
    stride = stride if stride is not None else pool
    if mode == "max":
        return F.max_pool2d(xt, pool, stride, padding)
    if mode == "avg":
        return F.avg_pool2d(xt, pool, stride, padding)
    assert padding == 0
    return F.lp_pool2d(xt, 2, pool, stride)


@pytest.mark.parametrize("mode", ["max", "avg", "l2"])
@pytest.mark.parametrize("case", POOL_CASES)
def test_pool_matches_torch(xp, mode, case):
    h, w, pool, stride, padding = case
    if mode == "l2" and padding:
        pytest.skip("torch's lp_pool2d has no padding")
    rng = np.random.default_rng(2)
    layer = conv.POOL_CLASSES[mode](pool, stride=stride, padding=padding)
    x = rng.normal(size=(2, h, w, 3))
    out = layer.forward(xp.asarray(x), training=True)
    dout = rng.normal(size=out.shape)
    dx = layer.backward(xp.asarray(dout))
    xt = _nchw(x).requires_grad_()
    ot = _torch_pool(mode, xt, pool, stride, padding)
    ot.backward(_nchw(dout))
    np.testing.assert_allclose(to_numpy(out), _nhwc(ot), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(to_numpy(dx), _nhwc(xt.grad), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("case", [(8, 8, 2, None), (9, 9, 3, 2), (10, 10, 3, 1)])
@pytest.mark.parametrize("threads", ["1", "2"])
def test_maxpool_ties_route_gradient_to_one_cell_like_torch(xp, case, threads, monkeypatch):
    """Blank backgrounds tie every cell of a window: exactly one cell gets the gradient."""
    monkeypatch.setenv("CVTOOL_THREADS", threads)  # 2: the batch is split between threads
    h, w, pool, stride = case
    rng = np.random.default_rng(3)
    x = np.zeros((5, h, w, 2))
    x[0, 2:5, 3:6, 0] = 1.0  # a blank image with a flat bright patch: ties everywhere
    x[1:] = rng.integers(0, 2, size=(4, h, w, 2))  # many ties of 0s and 1s
    layer = conv.MaxPool2D(pool, stride=stride)
    out = layer.forward(xp.asarray(x), training=True)
    dout = rng.normal(size=out.shape)
    dx = to_numpy(layer.backward(xp.asarray(dout)))
    xt = _nchw(x).requires_grad_()
    F.max_pool2d(xt, pool, stride if stride else pool).backward(_nchw(dout))
    np.testing.assert_allclose(dx, _nhwc(xt.grad), rtol=1e-12, atol=1e-12)
    # Sum of the gradient is preserved: each window passes its gradient to one cell.
    np.testing.assert_allclose(dx.sum(), dout.sum())


def test_first_layer_bias_gradient_with_blank_background_matches_torch():
    """The issue's failure: conv -> relu -> maxpool on blank images, bias grads vs torch."""
    rng = np.random.default_rng(4)
    x = np.zeros((4, 12, 12, 1))
    x[:, 4:8, 3:9, 0] = rng.uniform(size=(4, 4, 6))
    c = conv.Conv2D(3, 3)
    c.build((12, 12, 1), np, np.float64, rng)
    p = conv.MaxPool2D(2)
    z = c.forward(x, training=True)
    a = np.maximum(z, 0.0)
    out = p.forward(a, training=True)
    dout = rng.normal(size=out.shape)
    da = p.backward(dout)
    c.backward(da * (z > 0))
    xt = _nchw(x)
    wt = torch.from_numpy(c.params["W"].transpose(3, 2, 0, 1).copy()).requires_grad_()
    bt = torch.from_numpy(c.params["b"].copy()).requires_grad_()
    F.max_pool2d(F.relu(F.conv2d(xt, wt, bt)), 2).backward(_nchw(dout))
    np.testing.assert_allclose(c.grads["b"], bt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(
        c.grads["W"], wt.grad.numpy().transpose(2, 3, 1, 0), rtol=1e-10, atol=1e-12
    )


@pytest.mark.parametrize(
    "spec",
    [
        "conv:4x3",
        "conv:4x3x5:s=2:p=1",
        "conv:2x3:p=same:d=2",
        "conv:3x2:bias=0",
        "pool:2",
        "avgpool:3:s=2",
        "l2pool:2:s=1:p=1",
    ],
)
def test_forward_shape_and_param_count_agree_with_shapes(spec):
    (s,) = parse_spec(spec)
    layer = conv.Conv2D.from_spec(s) if s.kind == "conv" else conv.pool_from_spec(s)
    in_shape = (11, 10, 3)
    rng = np.random.default_rng(0)
    layer.build(in_shape, np, np.float32, rng)
    y = layer.forward(rng.normal(size=(2, *in_shape)).astype(np.float32))
    assert y.shape[1:] == layer.output_shape(in_shape)
    assert y.dtype == np.float32
    assert sum(layer.param_count(in_shape)) == sum(p.size for p in layer.params.values())
    assert set(layer.params) == set(layer.grads)


@settings(max_examples=25, deadline=None)
@given(
    h=st.integers(3, 12),
    w=st.integers(3, 12),
    k=st.integers(1, 3),
    stride=st.integers(1, 3),
    pad=st.integers(0, 2),
)
def test_conv2d_output_matches_real_forward(h, w, k, stride, pad):
    layer = conv.Conv2D(2, k, stride=stride, padding=pad)
    layer.build((h, w, 1), np, np.float32, np.random.default_rng(0))
    y = layer.forward(np.ones((1, h, w, 1), np.float32))
    assert y.shape[1:] == shapes.conv2d_output((h, w, 1), 2, k, stride, pad, floor=True)


def test_bad_layer_arguments_raise_cvtool_error():
    with pytest.raises(CvtoolError, match="filters"):
        conv.Conv2D(0, 3)
    with pytest.raises(CvtoolError, match="padding"):
        conv.Conv2D(4, 4, padding="same")  # even kernel cannot pad both sides equally
    with pytest.raises(CvtoolError, match="padding"):
        conv.MaxPool2D(2, padding=2)
    with pytest.raises(CvtoolError, match="image input"):
        conv.Conv2D(4, 3).output_shape((784,))
    with pytest.raises(CvtoolError, match="larger than"):
        conv.Conv2D(4, 5).output_shape((3, 3, 1))


def test_first_layer_can_skip_the_input_gradient():
    layer = conv.Conv2D(2, 3)
    layer.build((6, 6, 1), np, np.float32, np.random.default_rng(0))
    layer.need_dx = False
    y = layer.forward(np.ones((2, 6, 6, 1), np.float32), training=True)
    assert layer.backward(np.ones_like(y)) is None
    assert float(np.abs(layer.grads["W"]).sum()) > 0


@pytest.mark.parametrize("keep_bytes", [None, 0])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize(("stride", "padding"), [(1, 0), (1, 2), (2, 1)])
def test_chunked_threaded_conv_matches_torch_batch_after_batch(
    stride, padding, channels, keep_bytes, monkeypatch
):
    """C = 1 uses offset-major columns; many images, several per chunk (the last one short),
    two threads, kept or rebuilt columns; the second mini-batch reuses the first's scratch
    buffers (padded copies whose borders were zeroed once) and must be as right."""
    monkeypatch.setenv("CVTOOL_THREADS", "2")
    monkeypatch.setattr(conv, "CHUNK_BYTES", 3000 * channels)
    if keep_bytes is not None:
        monkeypatch.setattr(conv, "KEEP_BYTES", keep_bytes)
    rng = np.random.default_rng(5)
    layer = conv.Conv2D(5, 3, stride=stride, padding=padding)
    layer.build((12, 12, channels), np, np.float64, rng)
    for _ in range(2):
        x = rng.normal(size=(37, 12, 12, channels))
        out = layer.forward(x, training=True)
        dout = rng.normal(size=out.shape)
        dx = layer.backward(dout)
    xt = _nchw(x).requires_grad_()
    wt = torch.from_numpy(layer.params["W"].transpose(3, 2, 0, 1).copy()).requires_grad_()
    ot = F.conv2d(xt, wt, torch.from_numpy(layer.params["b"]), stride=stride, padding=padding)
    ot.backward(_nchw(dout))
    np.testing.assert_allclose(out, _nhwc(ot), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(dx, _nhwc(xt.grad), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(layer.grads["W"], wt.grad.numpy().transpose(2, 3, 1, 0), atol=1e-9)


def test_split_elementwise_work_gives_the_same_numbers(monkeypatch):
    """ReLU and Adam on arrays above _parallel.SPLIT_SIZE run in pieces on threads: same bits."""
    from cvtool.nn.activations import ReLU
    from cvtool.nn.optim import Adam

    monkeypatch.setenv("CVTOOL_THREADS", "2")
    rng = np.random.default_rng(0)
    z = rng.standard_normal((64, 48, 48)).astype(np.float32)  # 147456 elements
    assert z.size >= _parallel.SPLIT_SIZE
    pieces = []
    _parallel.run_rows(lambda s, e: pieces.append((s, e)), len(z), z.size)
    assert sorted(pieces) == [(0, 32), (32, 64)]
    a, dz = np.empty_like(z), np.empty_like(z)
    np.testing.assert_array_equal(ReLU().forward(z, out=a), np.maximum(z, 0))
    dout = rng.standard_normal(z.shape).astype(np.float32)
    np.testing.assert_array_equal(ReLU().backward(z, a, dout, out=dz), dout * (z > 0))

    def adam_run(threads):
        monkeypatch.setenv("CVTOOL_THREADS", str(threads))
        p, g = z.copy(), dout.copy()
        opt = Adam(0.01, lmbda=0.5)
        opt.bind([(p, g, True)], 100)
        for _ in range(3):
            opt.step()
        return p

    np.testing.assert_array_equal(adam_run(2), adam_run(1))
    assert not np.array_equal(adam_run(2), z)


@pytest.mark.parametrize("keep_bytes", [None, 0])
def test_threads_take_chunks_in_any_order_with_the_same_bits(keep_bytes, monkeypatch):
    """Chunks go to whichever worker is free; outputs, dx and the weight and bias gradients
    (summed per chunk, in chunk order) are the same bits in every two-thread run, and the
    same numbers as on one thread (where the chunks are cut differently)."""
    monkeypatch.setattr(conv, "CHUNK_BYTES", 5000)
    if keep_bytes is not None:
        monkeypatch.setattr(conv, "KEEP_BYTES", keep_bytes)
    rng = np.random.default_rng(7)
    x = rng.normal(size=(29, 10, 10, 3)).astype(np.float32)
    results = []
    for threads in ["2", "2", "2", "1"]:
        monkeypatch.setenv("CVTOOL_THREADS", threads)
        layer = conv.Conv2D(4, 3, padding=1)
        layer.build((10, 10, 3), np, np.float32, np.random.default_rng(3))
        out = layer.forward(x, training=True)
        dx = layer.backward(np.cos(out))
        results.append((out.copy(), np.array(dx), layer.grads["W"].copy(), layer.grads["b"].copy()))
    for other in results[1:3]:
        for a, b in zip(results[0], other, strict=True):
            np.testing.assert_array_equal(a, b)
    for a, b in zip(results[0], results[3], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_chunks_are_balanced_across_workers(monkeypatch):
    """Two threads get an even number of chunks of near-equal size, none above CHUNK_BYTES."""
    monkeypatch.setenv("CVTOOL_THREADS", "2")
    layer = conv.Conv2D(4, 3)
    for n, image_bytes in [(32, 147_456), (128, 57_600), (5, 1), (1, 10), (32, 2**30)]:
        nc, chunks, workers = layer._plan(np, n, image_bytes)
        sizes = [m for _, m in chunks]
        assert sum(sizes) == n and [s for s, _ in chunks] == list(range(0, n, nc))
        assert workers == min(2, n) and len(chunks) % workers == 0
        assert max(sizes) - min(sizes) <= max(1, len(chunks) - 1)
        assert nc * image_bytes <= max(conv.CHUNK_BYTES, image_bytes)
