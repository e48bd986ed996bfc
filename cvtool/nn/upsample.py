"""Layers that enlarge images, for FCN decoders: ConvTranspose2D and UpSampling2D (NHWC).

A transposed convolution is the data-gradient of a convolution. Its kernel is
stored ``W`` (K_h, K_w, F, C): exactly the kernel, in :class:`cvtool.nn.conv.Conv2D`'s
(K_h, K_w, C_in, F_out) layout, of the stride-S convolution from F channels back
to C whose input gradient this layer computes (Keras' Conv2DTranspose stores
the same layout; PyTorch's ConvTranspose2d weight (C, F, K_h, K_w) is its
transpose (3, 2, 0, 1)). With that, all three passes are matrix products::

    forward   cols (N*H*W, K_h*K_w*F) = x (N*H*W, C) @ W.reshape(K_h*K_w*F, C).T,
              then col2im: one strided slice-add of cols[..., a, b, :] per kernel
              offset (a, b) into the output, cropped by P on every side
    backward  tcols = im2col of dout, padded by P, with stride S windows (N*H*W, K_h*K_w*F)
              dx = tcols @ W.reshape(K_h*K_w*F, C)        (a plain convolution)
              dW = tcols.T @ x                            db = sum of dout

Output size O = (W - 1) S - 2P + K + OP (``cvtool.shapes.conv_transpose_size``);
the output padding OP < S adds rows/columns at the bottom/right that only the
bias reaches. On NumPy the batch is cut into chunks whose columns fit the
cache, run in the convolution's worker threads (the chunked two-thread plan of
:mod:`cvtool.nn.conv`); on CuPy the batch is one product.

Upsampling by integer factors (f_h, f_w) has two modes. ``nearest`` copies
input pixel (i // f_h, j // f_w), PyTorch's ``nn.Upsample(mode='nearest')``;
``bilinear`` is PyTorch's ``mode='bilinear', align_corners=False``: output
pixel i samples input coordinate (i + 1/2) / f - 1/2, clamped at the border.
Both are separable and periodic with period f, so each axis is f phase slices
of the edge-padded input blended with two fixed weights, and the backward pass
is the same slices added the other way.

Left out: dilation and groups in the transposed convolution, non-integer scale
factors, ``align_corners=True``, bicubic and area modes.
"""

from __future__ import annotations

import numpy as np

from cvtool import shapes
from cvtool.backend import array_module, backend_name
from cvtool.errors import check_choice, check_int
from cvtool.nn._parallel import column_sums, run_plan, run_rows, threads
from cvtool.nn.conv import CHUNK_BYTES, windows
from cvtool.nn.init import check_init, init_biases, init_weights
from cvtool.nn.layers import Layer
from cvtool.nn.pool import check_image


def _plan(xp, n: int, image_bytes: int) -> tuple[int, list]:
    """(images per chunk, one list of (start, count) chunks per worker thread)."""
    if backend_name(xp) != "numpy":  # one product over the whole batch on a GPU
        return n, [[(0, n)]]
    nc = max(1, min(n, CHUNK_BYTES // max(1, image_bytes)))
    chunks = [(s, min(nc, n - s)) for s in range(0, n, nc)]
    workers = min(threads(), len(chunks))
    return nc, [chunks[i::workers] for i in range(workers)]


def _split(xp, fn, n: int, size: int) -> None:
    """fn(start, stop) over images 0..n-1: across the worker threads on NumPy, whole on CuPy."""
    if backend_name(xp) == "numpy":
        run_rows(fn, n, size)
    else:
        fn(0, n)


def _taps(n: int, out: int, kernel: int, stride: int, pad: int) -> list:
    """Per kernel offset a along one axis: (input slice, output slice) it adds, or None.

    Input i reaches output i*S + a - P; only offsets that land inside 0..out-1 count.
    """
    taps = []
    for a in range(kernel):
        lo = max(0, -(-(pad - a) // stride))
        hi = min(n - 1, (out - 1 + pad - a) // stride)
        if lo > hi:
            taps.append(None)
            continue
        start = lo * stride + a - pad
        taps.append((slice(lo, hi + 1), slice(start, start + stride * (hi - lo) + 1, stride)))
    return taps


class ConvTranspose2D(Layer):
    """2-D transposed convolution on (N, H, W, C) input: the data-gradient of a convolution.

    Parameters
    ----------
    filters : int
        Output channels F.
    kernel : int or (int, int)
        Kernel size (K_h, K_w).
    stride : int
        Upsampling step S, both axes.
    padding : int
        Rows/columns P cropped from each side of the full output.
    output_padding : int
        Extra rows/columns 0 <= OP < S at the bottom/right.
    bias : bool
        Whether to add one bias per filter.
    init : str
        A name from ``cvtool.nn.init``, with Keras' fans for this kernel layout:
        fan-in K_h K_w F, fan-out K_h K_w C ('glorot' is symmetric in them).

    Notes
    -----
    params: ``W`` (K_h, K_w, F, C) and ``b`` (F,). Forward (N, H, W, C) ->
    (N, H', W', F) with H' = (H - 1) S - 2P + K_h + OP. Dilation 1 only. With
    ``need_dx = False`` (the model sets it on a first layer) backward skips the
    input gradient and returns None.
    """

    kind = "deconv"

    def __init__(
        self,
        filters: int,
        kernel: int | tuple[int, int],
        stride: int = 1,
        padding: int = 0,
        output_padding: int = 0,
        bias: bool = True,
        init: str = "glorot",
    ):
        super().__init__()
        self.filters = check_int("filters", filters, low=1)
        kh, kw = shapes.pair(kernel)
        self.kernel = (check_int("kernel", kh, low=1), check_int("kernel", kw, low=1))
        self.stride = check_int("stride", stride, low=1)
        self.padding = check_int("padding", padding, low=0)
        self.output_padding = check_int("output_padding", output_padding, low=0, high=stride - 1)
        self.bias = bool(bias)
        self.init = check_init(init)
        self._cache = None

    @classmethod
    def from_spec(cls, spec) -> ConvTranspose2D:
        """A ConvTranspose2D from a parsed 'deconv' LayerSpec (its activation is a separate layer)."""
        a = spec.args
        return cls(
            a["filters"],
            a["kernel"],
            stride=a.get("stride", 1),
            padding=a.get("padding", 0),
            output_padding=a.get("output_padding", 0),
            bias=a.get("bias", True),
        )

    def config(self) -> dict:
        return {
            "kind": self.kind,
            "filters": self.filters,
            "kernel": list(self.kernel),
            "stride": self.stride,
            "padding": self.padding,
            "output_padding": self.output_padding,
            "bias": self.bias,
            "init": self.init,
        }

    def output_shape(self, in_shape) -> tuple[int, int, int]:
        """(H, W, C) -> (H', W', F), from shapes.conv_transpose2d_output."""
        in_shape = check_image("deconv", in_shape)
        return shapes.conv_transpose2d_output(
            in_shape, self.filters, self.kernel, self.stride, self.padding, self.output_padding
        )

    def param_count(self, in_shape) -> tuple[int, int]:
        """(weights, biases), from shapes.conv_transpose2d_params."""
        in_shape = check_image("deconv", in_shape)
        return shapes.conv_transpose2d_params(in_shape[2], self.filters, self.kernel, self.bias)

    def build(self, in_shape, xp, dtype, rng: np.random.Generator) -> None:
        """Allocate W (K_h, K_w, F, C) and b (F,) on xp, sampled on the host with rng."""
        super().build(in_shape, xp, dtype, rng)
        self.output_shape(in_shape)  # CvtoolError now for an impossible input
        kh, kw = self.kernel
        c, f = in_shape[2], self.filters
        w = init_weights(self.init, (kh, kw, f, c), kh * kw * f, kh * kw * c, rng)
        self.params = {"W": xp.asarray(w, dtype=dtype)}
        if self.bias:
            self.params["b"] = xp.asarray(
                init_biases(self.init, (f,), rng, kh * kw * f), dtype=dtype
            )
        self.grads = {k: xp.zeros_like(v) for k, v in self.params.items()}

    def forward(self, x, training: bool = False):
        """x (N, H, W, C) -> (N, H', W', F): one product per chunk, then col2im by slice-adds."""
        xp = array_module(x)
        n, h, w, c = x.shape
        ho, wo, f = self.output_shape((h, w, c))
        kh, kw = self.kernel
        k, hw = kh * kw * f, h * w
        x2 = x.reshape(n * hw, c)  # (N*H*W, C)
        wt = self.params["W"].reshape(k, c).T  # (C, K_h*K_w*F), a view
        bias = self.params.get("b")
        taps_h = _taps(h, ho, kh, self.stride, self.padding)
        taps_w = _taps(w, wo, kw, self.stride, self.padding)
        nc, plan = _plan(xp, n, hw * k * x.dtype.itemsize)
        if training:
            out = self.buffer("out", (n, ho, wo, f))
            cols = [self.buffer(f"cols{i}", (nc * hw, k)) for i in range(len(plan))]
        else:
            out = xp.empty((n, ho, wo, f), dtype=x.dtype)
            cols = [xp.empty((nc * hw, k), dtype=x.dtype) for _ in plan]

        def work(chunks, buf):
            for s, m in chunks:
                cm = xp.matmul(x2[s * hw : (s + m) * hw], wt, out=buf[: m * hw])
                cm = cm.reshape(m, h, w, kh, kw, f)
                o = out[s : s + m]  # (m, H', W', F)
                o[...] = 0 if bias is None else bias
                for a, th in enumerate(taps_h):  # col2im: one slice-add per kernel offset
                    for b, tw in enumerate(taps_w):
                        if th is not None and tw is not None:
                            o[:, th[1], tw[1]] += cm[:, th[0], tw[0], a, b]

        run_plan(work, plan, cols)
        self._cache = x if training else None
        return out

    def backward(self, dout):
        """dout (N, H', W', F) -> dx (N, H, W, C): a stride-S convolution; fills grads."""
        assert self._cache is not None, "ConvTranspose2D.backward needs forward(x, training=True)"
        xp = array_module(dout)
        x, self._cache = self._cache, None
        n, h, w, c = x.shape
        _, ho, wo, f = dout.shape
        kh, kw = self.kernel
        k, hw, p, s_ = kh * kw * f, h * w, self.padding, self.stride
        # dout sits at offset P in a zero frame as large as the uncropped output minus
        # the output padding: its stride-S windows are exactly the H x W input pixels.
        hp, wp = (h - 1) * s_ + kh, (w - 1) * s_ + kw
        rh, rw = min(ho, hp - p), min(wo, wp - p)  # rows beyond reach only met the bias
        x2 = x.reshape(n * hw, c)
        wmat = self.params["W"].reshape(k, c)  # (K_h*K_w*F, C)
        if self.bias:
            column_sums(dout.reshape(-1, f), self.grads["b"])
        nc, plan = _plan(xp, n, hw * k * dout.dtype.itemsize)
        dpads = [self.buffer(f"dpad{i}", (nc, hp, wp, f)) for i in range(len(plan))]
        tcols = [self.buffer(f"tcols{i}", (nc, h, w, kh, kw, f)) for i in range(len(plan))]
        gws = [self.buffer(f"gw{i}", (k, c)) for i in range(len(plan))]
        dx = self.buffer("dx", (n * hw, c)) if self.need_dx else None
        for d in dpads:
            d[...] = 0  # the frame stays zero; the interior is rewritten per chunk

        def work(chunks, i):
            dpad, tc, gw = dpads[i], tcols[i], gws[i]
            for t, (s, m) in enumerate(chunks):
                dpad[:m, p : p + rh, p : p + rw] = dout[s : s + m, :rh, :rw]
                tc[:m] = windows(xp, dpad[:m], self.kernel, s_, 1, (h, w))  # im2col
                tm = tc[:m].reshape(m * hw, k)  # (m*H*W, K_h*K_w*F)
                xm = x2[s * hw : (s + m) * hw]  # (m*H*W, C)
                if t == 0:
                    xp.matmul(tm.T, xm, out=gw)
                else:
                    gw += tm.T @ xm
                if dx is not None:
                    xp.matmul(tm, wmat, out=dx[s * hw : (s + m) * hw])

        run_plan(work, plan, list(range(len(plan))))
        gw = self.grads["W"].reshape(k, c)  # a view: writing it fills grads['W']
        gw[...] = gws[0]
        for extra in gws[1:]:
            gw += extra
        return None if dx is None else dx.reshape(n, h, w, c)


def _phases(factor: int) -> list[tuple[int, float]]:
    """Per output phase r of a bilinear upsampling by `factor`: (d, lam).

    Output q*f + r blends input rows q + d and q + d + 1 with weights (1 - lam, lam):
    its source coordinate (r + 1/2) / f - 1/2 lies in [-1/2, 1/2).

    >>> _phases(2)
    [(-1, 0.75), (0, 0.25)]
    """
    out = []
    for r in range(factor):
        off = (r + 0.5) / factor - 0.5
        out.append((0, off) if off >= 0 else (-1, 1.0 + off))
    return out


def _along(axis: int, index) -> tuple:
    """An index tuple that applies `index` to `axis` and keeps the axes before it whole."""
    return (slice(None),) * axis + (index,)


def _edge_pad(xp, x, axis: int):
    """x with one edge-replicated row added on each side of `axis` (clamp-to-border)."""
    n = x.shape[axis]
    first, last = x[_along(axis, slice(0, 1))], x[_along(axis, slice(n - 1, n))]
    return xp.concatenate([first, x, last], axis=axis)


def _bilinear_axis(xp, x, factor: int, axis: int, out=None):
    """Bilinear (align_corners=False) upsampling of x along `axis` (1 or 2) by `factor`.

    ``out``, if given, is the contiguous result (its shape has the axis enlarged).
    """
    n = x.shape[axis]
    shape = list(x.shape)
    shape[axis] *= factor
    if out is None:
        out = xp.empty(shape, dtype=x.dtype)
    phases = out.reshape(x.shape[: axis + 1] + (factor,) + x.shape[axis + 1 :])  # a view
    xpad = _edge_pad(xp, x, axis)  # xpad[j + 1] = x[clamp(j)]
    for r, (d, lam) in enumerate(_phases(factor)):
        o = phases[_along(axis + 1, r)]  # (.., n, ..): output rows q*f + r
        xp.multiply(xpad[_along(axis, slice(d + 1, d + 1 + n))], 1.0 - lam, out=o)
        o += lam * xpad[_along(axis, slice(d + 2, d + 2 + n))]
    return out


def _bilinear_axis_backward(xp, dout, factor: int, axis: int):
    """The adjoint of _bilinear_axis: each phase's gradient added back to its two rows."""
    n = dout.shape[axis] // factor
    g = dout.reshape(dout.shape[:axis] + (n, factor) + dout.shape[axis + 1 :])
    shape = list(dout.shape)
    shape[axis] = n + 2
    dpad = xp.zeros(shape, dtype=dout.dtype)
    for r, (d, lam) in enumerate(_phases(factor)):
        gr = g[_along(axis + 1, r)]
        dpad[_along(axis, slice(d + 1, d + 1 + n))] += (1.0 - lam) * gr
        dpad[_along(axis, slice(d + 2, d + 2 + n))] += lam * gr
    dx = dpad[_along(axis, slice(1, n + 1))]
    dx[_along(axis, slice(0, 1))] += dpad[_along(axis, slice(0, 1))]  # clamped at the border
    dx[_along(axis, slice(n - 1, n))] += dpad[_along(axis, slice(n + 1, n + 2))]
    return dx


class UpSampling2D(Layer):
    """Upsampling of (N, H, W, C) images by integer factors, nearest or bilinear.

    Parameters
    ----------
    factor : int or (int, int)
        Factors (f_h, f_w) >= 1.
    mode : str
        'nearest' (copies) or 'bilinear' (PyTorch's align_corners=False).

    Notes
    -----
    No parameters. Forward (N, H, W, C) -> (N, H f_h, W f_w, C).
    """

    kind = "upsample"
    trainable = False

    def __init__(self, factor: int | tuple[int, int] = 2, mode: str = "nearest"):
        super().__init__()
        fh, fw = shapes.pair(factor)
        self.factor = (check_int("factor", fh, low=1), check_int("factor", fw, low=1))
        self.mode = check_choice("mode", mode, shapes.UPSAMPLE_MODES)
        self._shape = None

    @classmethod
    def from_spec(cls, spec) -> UpSampling2D:
        """An UpSampling2D from a parsed 'upsample' LayerSpec."""
        return cls(spec.args["factor"], spec.args.get("mode", "nearest"))

    def config(self) -> dict:
        return {"kind": self.kind, "factor": list(self.factor), "mode": self.mode}

    def output_shape(self, in_shape) -> tuple[int, int, int]:
        """(H, W, C) -> (H f_h, W f_w, C), from shapes.upsample2d_output."""
        return shapes.upsample2d_output(check_image("upsample", in_shape), self.factor)

    def param_count(self, in_shape) -> tuple[int, int]:
        return shapes.upsample2d_params(check_image("upsample", in_shape)[2])

    def build(self, in_shape, xp, dtype, rng=None) -> None:
        super().build(in_shape, xp, dtype, rng)
        self.output_shape(in_shape)  # CvtoolError now for an impossible input

    def forward(self, x, training: bool = False):
        """x (N, H, W, C) -> (N, H f_h, W f_w, C); images split across the worker threads."""
        xp = array_module(x)
        n, h, w, c = x.shape
        fh, fw = self.factor
        shape = (n, h * fh, w * fw, c)
        out = self.buffer("out", shape) if training else xp.empty(shape, dtype=x.dtype)
        self._shape = x.shape if training else None

        def rows(s, e):  # images s .. e-1
            o = out[s:e]
            if self.mode == "nearest":  # one broadcast copy into the (m, H, f_h, W, f_w, C) view
                o.reshape(e - s, h, fh, w, fw, c)[...] = x[s:e, :, None, :, None, :]
            elif fh == 1:
                _bilinear_axis(xp, x[s:e], fw, 2, out=o)
            else:
                wide = _bilinear_axis(xp, x[s:e], fw, 2) if fw > 1 else x[s:e]
                _bilinear_axis(xp, wide, fh, 1, out=o)

        _split(xp, rows, n, out.size)
        return out

    def backward(self, dout):
        """dout (N, H f_h, W f_w, C) -> dx (N, H, W, C)."""
        assert self._shape is not None, "UpSampling2D.backward needs forward(x, training=True)"
        xp = array_module(dout)
        n, h, w, c = self._shape
        self._shape = None
        fh, fw = self.factor
        dx = self.buffer("dx", (n, h, w, c))

        def rows(s, e):
            d = dout[s:e]
            if self.mode == "nearest":  # the f_h f_w copies summed one strided view at a time
                d6, o = d.reshape(e - s, h, fh, w, fw, c), dx[s:e]
                parts = [d6[:, :, i, :, j] for i in range(fh) for j in range(fw)]
                if len(parts) == 1:
                    o[...] = parts[0]
                    return
                xp.add(parts[0], parts[1], out=o)  # 3x faster than .sum(axis=(2, 4)) here
                for part in parts[2:]:
                    o += part
                return
            g = _bilinear_axis_backward(xp, d, fh, 1) if fh > 1 else d
            dx[s:e] = _bilinear_axis_backward(xp, g, fw, 2) if fw > 1 else g

        _split(xp, rows, n, dout.size)
        return dx
