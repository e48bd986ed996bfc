"""Convolution and pooling layers on NHWC images: Conv2D, MaxPool2D, AvgPool2D, L2Pool2D.

Layout is channels-last throughout: a batch of images is (N, H, W, C) and a
convolution kernel is (K_h, K_w, C, F), as in Keras. With that layout the
convolution is one matrix product and needs no transposes::

    cols (N*H'*W', K_h*K_w*C) @ W (K_h*K_w*C, F) -> (N*H'*W', F) = (N, H', W', F)

``cols`` (im2col) is a strided *view* of the padded input (no Python loop over
pixels); copying it into a buffer is the one copy. The backward pass is two more
matrix products (dW = cols.T @ dout, dcols = dout @ W.T) and a col2im that adds
the K_h*K_w kernel offsets back into the input with strided slice-adds (a loop
over kernel offsets, never over pixels, and no scatter); for stride-1 layers
where it is cheaper, dx is instead the transposed convolution (dout padded by
K - 1 - P, convolved with the flipped kernels: one im2col and one product).

On NumPy the batch is cut into chunks of about CHUNK_BYTES of columns, so the
copy and the product that reads it stay in the cache, and the chunks run in a
few worker threads (NumPy releases the GIL in copies, additions and products;
BLAS is held to one thread meanwhile). On CuPy the whole batch is one product.

Pooling loops over the cells of a window (at most a few dozen strided slices of
the whole batch). Max-pooling routes the gradient of a window to exactly one
cell, the first maximum in row-major order, as PyTorch does: blank image
backgrounds make every cell of a window equal, and splitting the gradient among
tied cells gives wrong gradients. Average pooling counts padding cells (PyTorch's
``count_include_pad=True``); L2 pooling is sqrt(sum of squares) over the window
(PyTorch's ``lp_pool2d`` with p=2).

Output sizes and parameter counts come from ``cvtool.shapes`` (the layer-calc
arithmetic) with floor rounding, as in Keras and PyTorch: rows and columns that
do not fill a window are dropped. Left out: grouped/depthwise convolution,
asymmetric padding, ceil-mode pooling.
"""

from __future__ import annotations

import contextlib
import functools
import os

import numpy as np

from cvtool import shapes
from cvtool.backend import array_module, backend_name
from cvtool.errors import CvtoolError
from cvtool.nn.init import check_init, init_biases, init_weights
from cvtool.nn.layers import Layer

# im2col columns per chunk on the CPU: small enough to stay in the cache between the
# copy and the matrix product that reads it (measured: benchmarks/bench_cnn.py).
CHUNK_BYTES = 2 * 2**20
TRANSPOSED_DX = True  # stride-1 layers may compute dx as a transposed convolution
_POOL = None
_BLAS = None


def threads() -> int:
    """Worker threads for the chunks of a convolution: $CVTOOL_THREADS, else the CPU count."""
    env = os.environ.get("CVTOOL_THREADS", "")
    return max(1, int(env) if env.isdigit() else min(8, _cpu_count()))


@functools.cache
def _cpu_count() -> int:
    return os.cpu_count() or 1


def _pool(workers: int):
    """The shared worker-thread pool, grown to at least `workers` threads."""
    global _POOL
    if _POOL is None or _POOL._max_workers < workers:
        from concurrent.futures import ThreadPoolExecutor

        _POOL = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cvtool-conv")
    return _POOL


# Elementwise work on fewer elements than this runs in the calling thread: below it
# handing pieces to threads costs more than it saves.
SPLIT_SIZE = 2**17


def run_rows(fn, n: int, size: int) -> None:
    """fn(start, stop) over rows 0..n-1: split across the worker threads when `size` is large.

    For elementwise NumPy work on a batch (an activation and its gradient): the
    ufuncs release the GIL, so the pieces run on all cores. No BLAS inside, so
    BLAS threads are left alone.
    """
    workers = min(threads(), n)
    if workers <= 1 or size < SPLIT_SIZE:
        fn(0, n)
        return
    step = -(-n // workers)
    futures = [_pool(workers).submit(fn, s, min(s + step, n)) for s in range(step, n, step)]
    fn(0, step)  # the calling thread does the first piece
    for fut in futures:
        fut.result()


def _run(work, plan: list, args: list) -> None:
    """work(chunks, arg) for each worker's chunks, in threads; chunked work uses one BLAS thread.

    NumPy releases the GIL in copies, additions and matrix products, so chunks of
    a batch run in parallel; each thread's products use one BLAS thread, or the
    two levels of threading would fight over the cores.
    """
    if len(plan) == 1 and len(plan[0]) == 1:  # one product over the whole batch
        work(plan[0], args[0])
        return
    if len(plan) == 1:  # small chunks gain nothing from BLAS threads, and lose under load
        with _blas_limit():
            work(plan[0], args[0])
        return
    pool = _pool(len(plan))
    with _blas_limit():
        futures = [pool.submit(work, chunks, arg) for chunks, arg in zip(plan, args, strict=True)]
        for fut in futures:
            fut.result()


def _batch_plan(xp, n: int) -> list:
    """The batch split into one contiguous piece per worker thread (NumPy), else whole."""
    workers = threads() if backend_name(xp) == "numpy" else 1
    if workers <= 1 or n < 2 * workers:
        return [[(0, n)]]
    step = -(-n // workers)
    return [[(s, min(step, n - s))] for s in range(0, n, step)]


def training_threads():
    """A context for a CPU training run: conv chunks in threads, BLAS on one thread throughout.

    Between the chunked products, BLAS threads left over from an unchunked product
    (a dense layer) busy-wait and take the cores from the chunk workers; holding
    BLAS to one thread for the whole run avoids that (measured with
    benchmarks/bench_cnn.py: one Fashion-MNIST epoch of nielsen-ch6 went from about
    18 s to 12.5 s on 2 cores). Does nothing with one thread.
    """
    if threads() <= 1:
        return contextlib.nullcontext()
    return _blas_limit()


def _blas_limit():
    """A context that keeps BLAS to one thread (threadpoolctl), or nothing without it."""
    global _BLAS
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return contextlib.nullcontext()
    if _BLAS is None:
        _BLAS = ThreadpoolController()
    return _BLAS.limit(limits=1, user_api="blas")


def _check_int(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise CvtoolError(f"The '{name}' parameter must be an int >= {low}. Got {value!r} instead.")
    return int(value)


def _check_image(layer: str, in_shape) -> tuple[int, int, int]:
    if len(in_shape) != 3:
        raise CvtoolError(
            f"{layer} needs an image input (H, W, C); got {tuple(in_shape)}. "
            f"Give the spec an input such as input:28x28x1, or put it before flatten/dense."
        )
    return tuple(int(d) for d in in_shape)


def _windows(xp, x, kernel, stride, dilation, out_hw):
    """Strided view (N, H', W', K_h, K_w, C) of x (N, H, W, C): every window, no copy."""
    kh, kw = kernel
    ho, wo = out_hw
    n, _, _, c = x.shape
    s_n, s_h, s_w, s_c = x.strides
    return xp.lib.stride_tricks.as_strided(
        x,
        shape=(n, ho, wo, kh, kw, c),
        strides=(s_n, s_h * stride, s_w * stride, s_h * dilation, s_w * dilation, s_c),
    )


def _cell(x, i, j, stride, dilation, out_hw):
    """Slice (N, H', W', C) of x holding cell (i, j) of every window."""
    ho, wo = out_hw
    r0, c0 = i * dilation, j * dilation
    return x[:, r0 : r0 + stride * (ho - 1) + 1 : stride, c0 : c0 + stride * (wo - 1) + 1 : stride]


def _pad(xp, x, pad, value=0.0):
    """x (N, H, W, C) padded by `pad` on both sides of H and W."""
    if pad == (0, 0):
        return x
    ph, pw = pad
    out = xp.full(
        (x.shape[0], x.shape[1] + 2 * ph, x.shape[2] + 2 * pw, x.shape[3]), value, x.dtype
    )
    out[:, ph : ph + x.shape[1], pw : pw + x.shape[2]] = x
    return out


def _unpad(x, pad, in_hw):
    ph, pw = pad
    return x[:, ph : ph + in_hw[0], pw : pw + in_hw[1]]


class Conv2D(Layer):
    """2-D cross-correlation on (N, H, W, C) input with shared weights, F filters.

    Parameters
    ----------
    filters : int
        Number of filters F (output channels).
    kernel : int or (int, int)
        Kernel size (K_h, K_w).
    stride : int
        Step between windows, both axes.
    padding : int, 'valid' or 'same'
        Zero padding per side ('same' keeps H and W for stride 1 and odd kernels).
    dilation : int
        Spacing between kernel cells.
    bias : bool
        Whether to add one bias per filter.
    init : str
        A name from ``cvtool.nn.init`` with fan-in K_h K_w C and fan-out K_h K_w F;
        'glorot' (uniform, zero biases) is Keras' default.

    Notes
    -----
    params: ``W`` (K_h, K_w, C, F) and ``b`` (F,). Forward (N, H, W, C) ->
    (N, H', W', F). With ``need_dx = False`` (the model sets it on a first layer)
    backward skips the gradient with respect to the images and returns None.
    """

    kind = "conv"

    def __init__(
        self,
        filters: int,
        kernel: int | tuple[int, int],
        stride: int = 1,
        padding: int | str = 0,
        dilation: int = 1,
        bias: bool = True,
        init: str = "glorot",
    ):
        super().__init__()
        self.filters = _check_int("filters", filters, 1)
        kh, kw = shapes.pair(kernel)
        self.kernel = (_check_int("kernel", kh, 1), _check_int("kernel", kw, 1))
        self.stride = _check_int("stride", stride, 1)
        self.dilation = _check_int("dilation", dilation, 1)
        self.pad = (
            shapes.resolve_padding(padding, self.kernel[0], self.dilation),
            shapes.resolve_padding(padding, self.kernel[1], self.dilation),
        )
        self.padding = padding
        self.bias = bool(bias)
        self.init = check_init(init)
        self._cache = None

    @classmethod
    def from_spec(cls, spec) -> Conv2D:
        """A Conv2D from a parsed 'conv' LayerSpec (its activation is a separate layer)."""
        a = spec.args
        return cls(
            a["filters"],
            a["kernel"],
            stride=a.get("stride", 1),
            padding=a.get("padding", 0),
            dilation=a.get("dilation", 1),
            bias=a.get("bias", True),
        )

    def config(self) -> dict:
        return {
            "kind": self.kind,
            "filters": self.filters,
            "kernel": list(self.kernel),
            "stride": self.stride,
            "padding": self.padding,
            "dilation": self.dilation,
            "bias": self.bias,
            "init": self.init,
        }

    def output_shape(self, in_shape) -> tuple[int, int, int]:
        """(H, W, C) -> (H', W', F), from shapes.conv2d_output."""
        in_shape = _check_image("conv", in_shape)
        return shapes.conv2d_output(
            in_shape,
            self.filters,
            self.kernel,
            self.stride,
            self.padding,
            self.dilation,
            floor=True,
        )

    def param_count(self, in_shape) -> tuple[int, int]:
        """(weights, biases), from shapes.conv2d_params."""
        in_shape = _check_image("conv", in_shape)
        return shapes.conv2d_params(in_shape[2], self.filters, self.kernel, self.bias)

    def build(self, in_shape, xp, dtype, rng: np.random.Generator) -> None:
        """Allocate W (K_h, K_w, C, F) and b (F,) on xp, sampled on the host with rng."""
        super().build(in_shape, xp, dtype, rng)
        self.output_shape(in_shape)  # CvtoolError now for an impossible input
        kh, kw = self.kernel
        c, f = in_shape[2], self.filters
        w = init_weights(self.init, (kh, kw, c, f), kh * kw * c, kh * kw * f, rng)
        self.params = {"W": xp.asarray(w, dtype=dtype)}
        if self.bias:
            self.params["b"] = xp.asarray(init_biases(self.init, (f,), rng), dtype=dtype)
        self.grads = {k: xp.zeros_like(v) for k, v in self.params.items()}

    def _plan(self, xp, n: int, image_bytes: int) -> tuple[int, list]:
        """(images per chunk, one list of (start, count) chunks per worker thread)."""
        if backend_name(xp) != "numpy":  # one product over the whole batch on a GPU
            return n, [[(0, n)]]
        nc = max(1, min(n, CHUNK_BYTES // max(1, image_bytes)))
        chunks = [(s, min(nc, n - s)) for s in range(0, n, nc)]
        workers = min(threads(), len(chunks))
        return nc, [chunks[i::workers] for i in range(workers)]

    def _transposed(self, x_shape, out_hw) -> bool:
        """Whether dx is cheaper as a full convolution of dout than as dcols + col2im.

        For stride 1 the input gradient is dout, zero-padded by K - 1 - P, convolved
        with the flipped kernels: one more im2col and product, no slice-adds. It
        computes H*W outputs where col2im handles H'*W' windows, so it is used
        only while H*W <= 1.5 H'*W' (3x3 kernels on large images, not 5x5 on 12x12).
        """
        if self.stride != 1 or self.dilation != 1 or not TRANSPOSED_DX:
            return False
        if self.pad[0] > self.kernel[0] - 1 or self.pad[1] > self.kernel[1] - 1:
            return False
        return x_shape[1] * x_shape[2] <= 1.5 * out_hw[0] * out_hw[1]

    def forward(self, x, training: bool = False):
        """x (N, H, W, C) -> (N, H', W', F): im2col, then one matrix product per chunk."""
        xp = array_module(x)
        n, h, w, c = x.shape
        ho, wo, f = self.output_shape((h, w, c))
        kh, kw = self.kernel
        k, rows = kh * kw * c, ho * wo
        xpad = _pad(xp, x, self.pad)
        win = _windows(xp, xpad, self.kernel, self.stride, self.dilation, (ho, wo))
        wmat = self.params["W"].reshape(k, f)  # (K_h*K_w*C, F), a view
        bias = self.params.get("b")
        nc, plan = self._plan(xp, n, rows * k * x.dtype.itemsize)
        # One input channel: offset-major columns (K_h*K_w, rows), filled by one slice copy
        # per kernel offset with runs of W' contiguous values (a (rows, K) copy of a C=1
        # window view moves runs of K_w values only); the product reads them transposed.
        offset_major = c == 1
        shape = (k, nc * rows) if offset_major else (nc, ho, wo, kh, kw, c)

        def fill(buf, s, m):  # im2col of images s .. s+m-1: the one copy
            if not offset_major:
                buf[:m] = win[s : s + m]  # (m, H', W', K_h, K_w, C)
                return
            b = buf.reshape(k, nc, ho, wo)
            for a in range(kh):
                for j in range(kw):
                    cell = _cell(xpad, a, j, self.stride, self.dilation, (ho, wo))
                    b[a * kw + j, :m] = cell[s : s + m, :, :, 0]

        def matrix(buf, m):  # the (m*H'*W', K_h*K_w*C) columns, a view
            return buf[:, : m * rows].T if offset_major else buf[:m].reshape(m * rows, k)

        if training:
            out = self.buffer("out", (n * rows, f))
            cols = [self.buffer(f"cols{i}", shape) for i in range(len(plan))]
        else:
            out = xp.empty((n * rows, f), dtype=x.dtype)
            cols = [xp.empty(shape, dtype=x.dtype) for _ in plan]

        def work(chunks, buf):
            for s, m in chunks:
                fill(buf, s, m)
                o = out[s * rows : (s + m) * rows]  # (m*H'*W', F)
                xp.matmul(matrix(buf, m), wmat, out=o)
                if bias is not None:
                    o += bias

        _run(work, plan, cols)
        self._cache = ((fill, matrix, nc), plan, cols, x.shape, xpad.shape) if training else None
        return out.reshape(n, ho, wo, f)

    def backward(self, dout):
        """dout (N, H', W', F) -> dx (N, H, W, C); fills grads['W'], grads['b']."""
        assert self._cache is not None, "Conv2D.backward needs forward(x, training=True) first"
        xp = array_module(dout)
        (fill, matrix, nc), plan, cols, x_shape, pad_shape = self._cache
        self._cache = None
        n, ho, wo, f = dout.shape
        kh, kw = self.kernel
        k, rows = kh * kw * x_shape[3], ho * wo
        rebuild = len(plan) > 1 or len(plan[0]) > 1  # chunked: the forward's columns are gone
        dmat = dout.reshape(n * rows, f)  # (N*H'*W', F)
        wmat = self.params["W"].reshape(k, f)
        if self.bias:
            dmat.sum(axis=0, out=self.grads["b"])
        tconv = self._transposed(x_shape, (ho, wo))
        dxpad = dcols = None
        if self.need_dx and tconv:
            h, w, c = x_shape[1:]
            ph, pw = kh - 1 - self.pad[0], kw - 1 - self.pad[1]
            dx = self.buffer("dx", (n * h * w, c))
            wflip = self.params["W"][::-1, ::-1].transpose(0, 1, 3, 2).reshape(kh * kw * f, c)
            dpads = [
                self.buffer(f"dpad{i}", (nc, ho + 2 * ph, wo + 2 * pw, f)) for i in range(len(plan))
            ]
            tcols = [self.buffer(f"tcols{i}", (nc, h, w, kh, kw, f)) for i in range(len(plan))]
            for d in dpads:
                d[...] = 0  # borders stay zero; interiors are rewritten per chunk
        elif self.need_dx:
            dxpad = self.buffer("dxpad", pad_shape)
            dxpad[...] = 0
            dcols = [self.buffer(f"dcols{i}", (nc * rows, k)) for i in range(len(plan))]
        gws = [self.buffer(f"gw{i}", (k, f)) for i in range(len(plan))]

        def work(chunks, i):
            buf, gw = cols[i], gws[i]
            for t, (s, m) in enumerate(chunks):
                if rebuild:
                    fill(buf, s, m)
                cm = matrix(buf, m)  # (m*H'*W', K_h*K_w*C)
                dm = dmat[s * rows : (s + m) * rows]  # (m*H'*W', F)
                if t == 0:
                    xp.matmul(cm.T, dm, out=gw)
                else:
                    gw += cm.T @ dm
                if not self.need_dx:
                    continue
                if tconv:  # dx = full convolution of dout with the flipped kernels
                    dpads[i][:m, ph : ph + ho, pw : pw + wo] = dout[s : s + m]
                    tc = tcols[i][:m]  # (m, H, W, K_h, K_w, F)
                    tc[...] = _windows(xp, dpads[i][:m], self.kernel, 1, 1, (h, w))
                    xp.matmul(tc.reshape(m * h * w, -1), wflip, out=dx[s * h * w : (s + m) * h * w])
                    continue
                dc = xp.matmul(dm, wmat.T, out=dcols[i][: m * rows])
                dc = dc.reshape(m, ho, wo, kh, kw, -1)  # (m, H', W', K_h, K_w, C)
                dxc = dxpad[s : s + m]
                for a in range(kh):  # col2im: one strided slice-add per kernel offset
                    for b in range(kw):
                        _cell(dxc, a, b, self.stride, self.dilation, (ho, wo))[...] += dc[
                            :, :, :, a, b, :
                        ]

        _run(work, plan, list(range(len(plan))))
        gw = self.grads["W"].reshape(k, f)  # a view: writing it fills grads['W']
        gw[...] = gws[0]
        for extra in gws[1:]:
            gw += extra
        if not self.need_dx:
            return None
        if tconv:
            return dx.reshape(x_shape)
        return _unpad(dxpad, self.pad, x_shape[1:3])


class _Pool2D(Layer):
    """Shared pooling plumbing: window, stride, padding, shapes and cell slices."""

    kind = "pool"
    mode = ""
    pad_value = 0.0

    trainable = False

    def __init__(self, pool: int | tuple[int, int] = 2, stride=None, padding: int = 0):
        super().__init__()
        ph, pw = shapes.pair(pool)
        self.pool = (_check_int("pool", ph, 1), _check_int("pool", pw, 1))
        sh, sw = shapes.pair(stride) if stride is not None else self.pool
        self.stride = (_check_int("stride", sh, 1), _check_int("stride", sw, 1))
        self.padding = _check_int("padding", padding, 0)
        if 2 * self.padding > min(self.pool):
            raise CvtoolError(
                f"The 'padding' parameter of a {self.pool[0]}x{self.pool[1]} pool must be at most "
                f"half the window ({min(self.pool) // 2}). Got {padding} instead."
            )
        self._cache = None

    def config(self) -> dict:
        return {
            "kind": self.kind,
            "mode": self.mode,
            "pool": list(self.pool),
            "stride": list(self.stride),
            "padding": self.padding,
        }

    def output_shape(self, in_shape) -> tuple[int, int, int]:
        """(H, W, C) -> (H', W', C), from shapes.pool2d_output."""
        in_shape = _check_image(f"{self.mode}pool", in_shape)
        return shapes.pool2d_output(in_shape, self.pool, self.stride, self.padding, floor=True)

    def param_count(self, in_shape) -> tuple[int, int]:
        return (0, 0)

    def build(self, in_shape, xp, dtype, rng=None) -> None:
        super().build(in_shape, xp, dtype, rng)
        self.output_shape(in_shape)  # CvtoolError now for an impossible input

    def _cells(self, x, out_hw):
        """[(i, j, slice (N, H', W', C))] for every cell of the window, row-major."""
        ph, pw = self.pool
        sh, sw = self.stride
        ho, wo = out_hw
        return [
            (i, j, x[:, i : i + sh * (ho - 1) + 1 : sh, j : j + sw * (wo - 1) + 1 : sw])
            for i in range(ph)
            for j in range(pw)
        ]

    def _prepare(self, x):
        xp = array_module(x)
        ho, wo, _ = self.output_shape(x.shape[1:])
        p = self.padding
        return xp, _pad(xp, x, (p, p), self.pad_value), (ho, wo)

    def _scatter(self, xp, x_shape, pieces, out_hw):
        """dx (N, H, W, C) from per-cell gradients [(i, j, (N, H', W', C))] by slice-adds."""
        p = self.padding
        n, h, w, c = x_shape
        if self._tiles_shape(x_shape):
            ph, pw = self.pool
            ho, wo = out_hw
            dx = xp.empty((n, ho, ph, wo, pw, c), dtype=pieces[0][2].dtype)
            for i, j, g in pieces:  # windows tile: every cell written once, no adds
                dx[:, :, i, :, j, :] = g
            return dx.reshape(n, h, w, c)
        dxpad = xp.zeros((n, h + 2 * p, w + 2 * p, c), dtype=pieces[0][2].dtype)
        for i, j, g in pieces:
            sh, sw = self.stride
            ho, wo = out_hw
            dxpad[:, i : i + sh * (ho - 1) + 1 : sh, j : j + sw * (wo - 1) + 1 : sw] += g
        return _unpad(dxpad, (p, p), (h, w))

    def _tiles_shape(self, x_shape) -> bool:
        return (
            self.padding == 0
            and self.stride == self.pool
            and x_shape[1] % self.pool[0] == 0
            and x_shape[2] % self.pool[1] == 0
        )


class MaxPool2D(_Pool2D):
    """Maximum over each window; the gradient goes to the first maximum (row-major).

    Forward (N, H, W, C) -> (N, H', W', C). Padding cells are -inf, as in PyTorch.
    """

    mode = "max"
    pad_value = -np.inf

    def forward(self, x, training: bool = False):
        xp, xpad, out_hw = self._prepare(x)
        cells = [cell for _, _, cell in self._cells(xpad, out_hw)]
        out = xp.empty(cells[0].shape, dtype=x.dtype)  # (N, H', W', C)

        def work(chunks, _):
            for s, m in chunks:  # images s .. s+m-1
                o = out[s : s + m]
                o[...] = cells[0][s : s + m]
                for cell in cells[1:]:
                    xp.maximum(o, cell[s : s + m], out=o)

        plan = _batch_plan(xp, len(x))
        _run(work, plan, plan)
        self._cache = (xpad, x.shape, out) if training else None
        return out

    def backward(self, dout):
        """dout (N, H', W', C) -> dx (N, H, W, C): each window's gradient to one cell."""
        assert self._cache is not None, "MaxPool2D.backward needs forward(x, training=True) first"
        xp = array_module(dout)
        xpad, x_shape, out = self._cache
        self._cache = None
        out_hw = out.shape[1:3]
        cells = self._cells(xpad, out_hw)
        if self._tiles_shape(x_shape):  # each cell's gradient written in place, no adds
            n, h, w, c = x_shape
            dx = xp.empty((n, out_hw[0], self.pool[0], out_hw[1], self.pool[1], c), dout.dtype)

            def work(chunks, _):
                for s, m in chunks:
                    taken = xp.zeros((m, *out.shape[1:]), dtype=bool)  # window already gave
                    first = xp.empty((m, *out.shape[1:]), dtype=bool)
                    o, d = out[s : s + m], dout[s : s + m]
                    for i, j, cell in cells:
                        self._first(xp, cell[s : s + m], o, taken, first)
                        xp.multiply(d, first, out=dx[s : s + m, :, i, :, j, :])

            plan = _batch_plan(xp, n)
            _run(work, plan, plan)
            return dx.reshape(x_shape)
        taken = xp.zeros(out.shape, dtype=bool)  # window already gave its gradient away
        first = xp.empty(out.shape, dtype=bool)
        pieces = []
        for i, j, cell in cells:
            self._first(xp, cell, out, taken, first)
            pieces.append((i, j, dout * first))
        return self._scatter(xp, x_shape, pieces, out_hw)

    @staticmethod
    def _first(xp, cell, out, taken, first) -> None:
        """first = (cell == out) and not taken; taken |= first (row-major first maximum)."""
        xp.equal(cell, out, out=first)
        xp.greater(first, taken, out=first)  # a > b on booleans is a and not b
        taken |= first


class AvgPool2D(_Pool2D):
    """Mean over each window (padding cells count as zeros, as PyTorch's default)."""

    mode = "avg"

    def forward(self, x, training: bool = False):
        xp, xpad, out_hw = self._prepare(x)
        cells = self._cells(xpad, out_hw)
        out = cells[0][2].copy()
        for _, _, cell in cells[1:]:
            out += cell
        out *= 1.0 / (self.pool[0] * self.pool[1])
        self._cache = (x.shape, out_hw) if training else None
        return out

    def backward(self, dout):
        assert self._cache is not None, "AvgPool2D.backward needs forward(x, training=True) first"
        xp = array_module(dout)
        x_shape, out_hw = self._cache
        g = dout * (1.0 / (self.pool[0] * self.pool[1]))
        pieces = [(i, j, g) for i in range(self.pool[0]) for j in range(self.pool[1])]
        self._cache = None
        return self._scatter(xp, x_shape, pieces, out_hw)


class L2Pool2D(_Pool2D):
    """sqrt of the sum of squares over each window (PyTorch's lp_pool2d with p=2)."""

    mode = "l2"

    def forward(self, x, training: bool = False):
        xp, xpad, out_hw = self._prepare(x)
        cells = self._cells(xpad, out_hw)
        sq = cells[0][2] * cells[0][2]
        for _, _, cell in cells[1:]:
            sq += cell * cell
        out = xp.sqrt(sq, out=sq)
        self._cache = (xpad, x.shape, out) if training else None
        return out

    def backward(self, dout):
        """d sqrt(sum x^2) / dx = x / out; an all-zero window (out = 0) gets zero gradient."""
        assert self._cache is not None, "L2Pool2D.backward needs forward(x, training=True) first"
        xp = array_module(dout)
        xpad, x_shape, out = self._cache
        out_hw = out.shape[1:3]
        # Where out == 0 every cell is 0, so any finite divisor gives the zero gradient.
        g = dout / xp.where(out > 0, out, 1)
        pieces = [(i, j, cell * g) for i, j, cell in self._cells(xpad, out_hw)]
        self._cache = None
        return self._scatter(xp, x_shape, pieces, out_hw)


POOL_CLASSES = {"max": MaxPool2D, "avg": AvgPool2D, "l2": L2Pool2D}


def pool_from_spec(spec) -> _Pool2D:
    """The pooling layer of a parsed 'pool' LayerSpec (mode max, avg or l2)."""
    a = spec.args
    mode = a.get("mode", "max")
    if mode not in POOL_CLASSES:
        raise CvtoolError(
            f"The 'mode' parameter of a pool must be one of max, avg, l2. Got {mode!r} instead."
        )
    return POOL_CLASSES[mode](a["pool"], stride=a.get("stride"), padding=a.get("padding", 0))
