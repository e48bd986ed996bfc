"""The convolution layer on NHWC images: Conv2D (pooling lives in ``cvtool.nn.pool``).

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
few worker threads (``cvtool.nn._parallel.run_chunks``: NumPy releases the GIL in
copies, additions and products; BLAS is held to one thread meanwhile). Chunks are
near-equal, a multiple of the worker count where the batch allows, and each goes
to whichever worker is free; each worker zero-pads its chunk in its own scratch
(whose borders are zeroed once), and the weight and bias gradients are summed per
chunk, in chunk order, so results do not depend on which worker ran a chunk. A
training batch whose columns fit KEEP_BYTES keeps them for backward; larger ones
rebuild each chunk's columns there. On a device
(CuPy) the chunks are DEVICE_CHUNK_BYTES of columns, one after the other: large
enough that each product keeps the GPU busy, small enough that an evaluation
batch of 2000 through keras-course's second convolution (1.3 MB of columns per
image, 2.65 GB for the batch) needs 256 MiB of workspace, not 2.65 GB.

Output sizes and parameter counts come from ``cvtool.shapes`` (the layer-calc
arithmetic) with floor rounding, as in Keras and PyTorch: rows and columns that
do not fill a window are dropped. Left out: grouped/depthwise convolution,
asymmetric padding. The pooling layers are importable from here too (they
lived here before).
"""

from __future__ import annotations

import numpy as np

from cvtool import shapes
from cvtool.backend import array_module, backend_name
from cvtool.errors import check_int
from cvtool.nn._parallel import (
    column_sums,
    run_chunks,
    threads,
    training_threads,  # noqa: F401  (re-exported for old callers)
)
from cvtool.nn.init import check_init, init_biases, init_weights
from cvtool.nn.layers import Layer
from cvtool.nn.pool import (  # noqa: F401  (the pooling layers lived here; re-exported)
    POOL_CLASSES,
    AvgPool2D,
    L2Pool2D,
    MaxPool2D,
    _Pool2D,
    check_image,
    pad_hw,
    pool_from_spec,
    unpad_hw,
)

# im2col columns per chunk on the CPU: small enough to stay in the cache between the
# copy and the matrix product that reads it (measured: benchmarks/bench_cnn.py).
CHUNK_BYTES = 2 * 2**20
DEVICE_CHUNK_BYTES = 256 * 2**20
# Training on the CPU keeps the columns of a whole batch up to this size for backward
# instead of rebuilding them per chunk. Measured (benchmarks/bench_conv_layers.py shapes,
# 1 and 2 threads): a small gain for a few MB of columns; for 16-30 MB, reading them back
# from memory was no faster than rebuilding them in the cache, sometimes slower.
KEEP_BYTES = 8 * 2**20


def windows(xp, x, kernel, stride, dilation, out_hw):
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
        self.filters = check_int("filters", filters, low=1)
        kh, kw = shapes.pair(kernel)
        self.kernel = (check_int("kernel", kh, low=1), check_int("kernel", kw, low=1))
        self.stride = check_int("stride", stride, low=1)
        self.dilation = check_int("dilation", dilation, low=1)
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
        in_shape = check_image("conv", in_shape)
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
        in_shape = check_image("conv", in_shape)
        return shapes.conv2d_params(in_shape[2], self.filters, self.kernel, self.bias)

    def build(self, in_shape, xp, dtype, rng: np.random.Generator) -> None:
        """Allocate W (K_h, K_w, C, F) and b (F,) on xp, sampled on the host with rng."""
        super().build(in_shape, xp, dtype, rng)
        self._pads = {}
        self.output_shape(in_shape)  # CvtoolError now for an impossible input
        kh, kw = self.kernel
        c, f = in_shape[2], self.filters
        w = init_weights(self.init, (kh, kw, c, f), kh * kw * c, kh * kw * f, rng)
        self.params = {"W": xp.asarray(w, dtype=dtype)}
        if self.bias:
            self.params["b"] = xp.asarray(
                init_biases(self.init, (f,), rng, kh * kw * c), dtype=dtype
            )
        self.grads = {k: xp.zeros_like(v) for k, v in self.params.items()}

    def _plan(self, xp, n: int, image_bytes: int) -> tuple[int, list, int]:
        """(images per chunk, the (start, count) chunks in order, worker threads)."""
        if backend_name(xp) != "numpy":  # few large products, one after the other
            nc = max(1, min(n, DEVICE_CHUNK_BYTES // max(1, image_bytes)))
            return nc, [(s, min(nc, n - s)) for s in range(0, n, nc)], 1
        nc = max(1, min(n, CHUNK_BYTES // max(1, image_bytes)))
        workers = min(threads(), n)
        if workers > 1:  # near-equal chunks, a multiple of `workers` where n allows: none idles
            count = workers * -(-n // (nc * workers))  # at least as many as CHUNK_BYTES asks
            nc = -(-n // count)
        chunks = [(s, min(nc, n - s)) for s in range(0, n, nc)]
        return nc, chunks, min(workers, len(chunks))

    def _transposed(self, x_shape, out_hw) -> bool:
        """Whether dx is cheaper as a full convolution of dout than as dcols + col2im.

        For stride 1 the input gradient is dout, zero-padded by K - 1 - P, convolved
        with the flipped kernels: one more im2col and product, no slice-adds. It
        computes H*W outputs where col2im handles H'*W' windows, so it is used
        only while H*W <= 1.5 H'*W' (3x3 kernels on large images, not 5x5 on 12x12).
        """
        if self.stride != 1 or self.dilation != 1:
            return False
        if self.pad[0] > self.kernel[0] - 1 or self.pad[1] > self.kernel[1] - 1:
            return False
        return x_shape[1] * x_shape[2] <= 1.5 * out_hw[0] * out_hw[1]

    def _zeroed(self, name: str, shape: tuple[int, ...]):
        """A scratch array whose borders stay zero: zero-filled once, when it is made.

        For padded copies of a chunk: each use rewrites the interior only, so the
        zero-fill of the whole array is not repeated every mini-batch.
        """
        key = (name, shape)
        buf = self._pads.get(key)
        if buf is None:
            if len(self._pads) > 8:  # training batches of several sizes: do not hoard
                self._pads.clear()
            buf = self._pads[key] = self.xp.zeros(shape, dtype=self.dtype)
        return buf

    def forward(self, x, training: bool = False):
        """x (N, H, W, C) -> (N, H', W', F): im2col, then one matrix product per chunk."""
        xp = array_module(x)
        n, h, w, c = x.shape
        ho, wo, f = self.output_shape((h, w, c))
        kh, kw = self.kernel
        k, rows = kh * kw * c, ho * wo
        ph, pw = self.pad
        padded = (ph, pw) != (0, 0)
        wmat = self.params["W"].reshape(k, f)  # (K_h*K_w*C, F), a view
        bias = self.params.get("b")
        nc, chunks, workers = self._plan(xp, n, rows * k * x.dtype.itemsize)
        # One input channel: offset-major columns (K_h*K_w, rows), filled by one slice copy
        # per kernel offset with runs of W' contiguous values (a (rows, K) copy of a C=1
        # window view moves runs of K_w values only); the product reads them transposed.
        offset_major = c == 1
        # In training, a batch whose columns fit KEEP_BYTES keeps every chunk's columns
        # (one buffer, a region per chunk) so that backward need not rebuild them.
        keep = training and len(chunks) > 1
        keep = keep and n * rows * k * x.dtype.itemsize <= KEEP_BYTES

        def fill(buf, pbuf, s, m):  # im2col of images s .. s+m-1 into buf: the one copy
            src = x[s : s + m]
            if padded:  # the chunk, zero-padded in the worker's scratch (borders stay zero)
                pbuf[:m, ph : ph + h, pw : pw + w] = src
                src = pbuf[:m]
            if not offset_major:
                buf[...] = windows(xp, src, self.kernel, self.stride, self.dilation, (ho, wo))
                return
            b = buf.reshape(k, m, ho, wo)
            for a in range(kh):
                for j in range(kw):
                    cell = _cell(src, a, j, self.stride, self.dilation, (ho, wo))
                    b[a * kw + j] = cell[:, :, :, 0]

        def matrix(buf, m):  # the (m*H'*W', K_h*K_w*C) columns, a view
            return buf.T if offset_major else buf.reshape(m * rows, k)

        if training:
            out = self.buffer("out", (n * rows, f))
            whole = (k, n * rows) if offset_major else (n, ho, wo, kh, kw, c)
            cols = [self.buffer("cols", whole)] if keep else None
        else:
            out = xp.empty((n * rows, f), dtype=x.dtype)
        if not keep:
            shape = (k, nc * rows) if offset_major else (nc, ho, wo, kh, kw, c)
            new = self.buffer if training else (lambda _, sh: xp.empty(sh, dtype=x.dtype))
            cols = [new(f"cols{i}", shape) for i in range(workers)]
        pshape = (nc, h + 2 * ph, w + 2 * pw, c)
        if not padded:
            pbufs = [None] * workers
        elif training:
            pbufs = [self._zeroed(f"xpad{i}", pshape) for i in range(workers)]
        else:  # evaluation batches come in many sizes: fresh scratch, as pad_hw made
            pbufs = [xp.zeros(pshape, dtype=x.dtype) for _ in range(workers)]

        def chunk(i, s, m):  # the columns of images s .. s+m-1: a region of a buffer
            buf = cols[0] if keep else cols[i]
            if keep:
                return buf[:, s * rows : (s + m) * rows] if offset_major else buf[s : s + m]
            return buf[:, : m * rows] if offset_major else buf[:m]

        def work(s, m, i):  # images s .. s+m-1 in worker i
            buf = chunk(i, s, m)
            fill(buf, pbufs[i], s, m)
            o = out[s * rows : (s + m) * rows]  # (m*H'*W', F)
            xp.matmul(matrix(buf, m), wmat, out=o)
            if bias is not None:
                o += bias

        run_chunks(work, chunks, workers)
        pad_shape = (n, h + 2 * ph, w + 2 * pw, c)
        plan = (nc, chunks, workers)
        self._cache = (
            ((fill, matrix, chunk, keep), plan, pbufs, x.shape, pad_shape) if training else None
        )
        return out.reshape(n, ho, wo, f)

    def backward(self, dout):
        """dout (N, H', W', F) -> dx (N, H, W, C); fills grads['W'], grads['b']."""
        assert self._cache is not None, "Conv2D.backward needs forward(x, training=True) first"
        xp = array_module(dout)
        (fill, matrix, chunk, keep), (nc, chunks, nw), pbufs, x_shape, pad_shape = self._cache
        self._cache = None
        n, ho, wo, f = dout.shape
        kh, kw = self.kernel
        k, rows = kh * kw * x_shape[3], ho * wo
        # Chunked and not kept: the forward's columns were overwritten, rebuild them.
        rebuild = not keep and len(chunks) > 1
        dmat = dout.reshape(n * rows, f)  # (N*H'*W', F)
        wmat = self.params["W"].reshape(k, f)
        tconv = self._transposed(x_shape, (ho, wo))
        workers = range(nw)
        dxpad = dcols = None
        if self.need_dx and tconv:
            h, w, c = x_shape[1:]
            ph, pw = kh - 1 - self.pad[0], kw - 1 - self.pad[1]
            dx = self.buffer("dx", (n * h * w, c))
            wflip = self.params["W"][::-1, ::-1].transpose(0, 1, 3, 2).reshape(kh * kw * f, c)
            # borders stay zero (zero-filled once); interiors are rewritten per chunk
            dpads = [self._zeroed(f"dpad{i}", (nc, ho + 2 * ph, wo + 2 * pw, f)) for i in workers]
            tcols = [self.buffer(f"tcols{i}", (nc, h, w, kh, kw, f)) for i in workers]
        elif self.need_dx:
            dxpad = self.buffer("dxpad", pad_shape)  # zeroed per chunk, in the workers
            dcols = [self.buffer(f"dcols{i}", (nc * rows, k)) for i in workers]
        # One weight (and bias) gradient per chunk, added up in chunk order below: the
        # same numbers whichever worker ran which chunk.
        gws = self.buffer("gw", (len(chunks), k, f))
        gbs = self.buffer("gb", (len(chunks), f)) if self.bias and nw > 1 else None
        if self.bias and nw == 1:  # one thread: one sum over the batch, as always
            column_sums(dmat, self.grads["b"])

        def work(s, m, i):  # images s .. s+m-1 in worker i
            t = s // nc  # the chunk's number
            buf = chunk(i, s, m)
            if rebuild:
                fill(buf, pbufs[i], s, m)
            cm = matrix(buf, m)  # (m*H'*W', K_h*K_w*C)
            dm = dmat[s * rows : (s + m) * rows]  # (m*H'*W', F)
            xp.matmul(cm.T, dm, out=gws[t])
            if gbs is not None:
                column_sums(dm, gbs[t])
            if not self.need_dx:
                return
            if tconv:  # dx = full convolution of dout with the flipped kernels
                dpads[i][:m, ph : ph + ho, pw : pw + wo] = dout[s : s + m]
                tc = tcols[i][:m]  # (m, H, W, K_h, K_w, F)
                tc[...] = windows(xp, dpads[i][:m], self.kernel, 1, 1, (h, w))
                xp.matmul(tc.reshape(m * h * w, -1), wflip, out=dx[s * h * w : (s + m) * h * w])
                return
            dc = xp.matmul(dm, wmat.T, out=dcols[i][: m * rows])
            dc = dc.reshape(m, ho, wo, kh, kw, -1)  # (m, H', W', K_h, K_w, C)
            dxc = dxpad[s : s + m]
            dxc[...] = 0
            for a in range(kh):  # col2im: one strided slice-add per kernel offset
                for b in range(kw):
                    _cell(dxc, a, b, self.stride, self.dilation, (ho, wo))[...] += dc[
                        :, :, :, a, b, :
                    ]

        run_chunks(work, chunks, nw)
        gw = self.grads["W"].reshape(k, f)  # a view: writing it fills grads['W']
        gw[...] = gws[0]
        for t in range(1, len(chunks)):  # by index: iterating a device array downloads it
            gw += gws[t]
        if gbs is not None:
            self.grads["b"][...] = gbs[0]
            for t in range(1, len(chunks)):
                self.grads["b"] += gbs[t]
        if not self.need_dx:
            return None
        if tconv:
            return dx.reshape(x_shape)
        return unpad_hw(dxpad, self.pad, x_shape[1:3])
