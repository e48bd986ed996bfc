"""Pooling layers on NHWC images: MaxPool2D, AvgPool2D, L2Pool2D, and the image helpers.

Pooling loops over the cells of a window (at most a few dozen strided slices of
the whole batch). Max-pooling routes the gradient of a window to exactly one
cell, the first maximum in row-major order, as PyTorch does: blank image
backgrounds make every cell of a window equal, and splitting the gradient among
tied cells gives wrong gradients. Average pooling counts padding cells (PyTorch's
``count_include_pad=True``); L2 pooling is sqrt(sum of squares) over the window
(PyTorch's ``lp_pool2d`` with p=2). Output sizes come from ``cvtool.shapes``
with floor rounding. Left out: ceil-mode pooling, global pooling.

With the ``fast`` extra (Numba) max-pooling whose windows tile the input (stride
= window, no padding: every preset, the detector and the segmenter) runs as one
compiled pass each way (``cvtool.nn.pool_numba``): forward keeps the winning
cell of each window, backward writes each window's gradient to it. The numbers
are the NumPy code's, bit for bit (a test compares them with NaN, infinities and
ties); the 2x2 pools of the detector went from 16 to 6.5 ms a batch of 32.

``check_image``, ``pad_hw`` and ``unpad_hw`` are shared with ``conv``.
"""

from __future__ import annotations

import numpy as np

from cvtool import shapes
from cvtool.backend import array_module
from cvtool.errors import CvtoolError, check_choice, check_int
from cvtool.nn._parallel import batch_plan, layer_kernels, run_plan
from cvtool.nn.layers import Layer


def check_image(layer: str, in_shape) -> tuple[int, int, int]:
    """`in_shape` as (H, W, C) ints, or a CvtoolError naming `layer` for a non-image shape."""
    if len(in_shape) != 3:
        raise CvtoolError(
            f"{layer} needs an image input (H, W, C); got {tuple(in_shape)}. "
            f"Give the spec an input such as input:28x28x1, or put it before flatten/dense."
        )
    return tuple(int(d) for d in in_shape)


def pad_hw(xp, x, pad, value=0.0):
    """x (N, H, W, C) padded by `pad` on both sides of H and W."""
    if pad == (0, 0):
        return x
    ph, pw = pad
    out = xp.full(
        (x.shape[0], x.shape[1] + 2 * ph, x.shape[2] + 2 * pw, x.shape[3]), value, x.dtype
    )
    out[:, ph : ph + x.shape[1], pw : pw + x.shape[2]] = x
    return out


def unpad_hw(x, pad, in_hw):
    """The (N, H, W, C) interior of x padded by `pad` (a view)."""
    ph, pw = pad
    return x[:, ph : ph + in_hw[0], pw : pw + in_hw[1]]


class _Pool2D(Layer):
    """Shared pooling plumbing: window, stride, padding, shapes and cell slices."""

    kind = "pool"
    mode = ""
    pad_value = 0.0

    trainable = False

    def __init__(self, pool: int | tuple[int, int] = 2, stride=None, padding: int = 0):
        super().__init__()
        ph, pw = shapes.pair(pool)
        self.pool = (check_int("pool", ph, low=1), check_int("pool", pw, low=1))
        sh, sw = shapes.pair(stride) if stride is not None else self.pool
        self.stride = (check_int("stride", sh, low=1), check_int("stride", sw, low=1))
        half = min(self.pool) // 2
        self.padding = check_int("padding", padding, low=0, high=half,
                                 hint=f"(at most half of the {ph}x{pw} window)")  # fmt: skip
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
        in_shape = check_image(f"{self.mode}pool", in_shape)
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
        return xp, pad_hw(xp, x, (p, p), self.pad_value), (ho, wo)

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
        return unpad_hw(dxpad, (p, p), (h, w))

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
    # Set by Sequential.pair_relu_pool when a ReLU comes right before: max(relu(z)) =
    # relu(max(z)), and the gradient of either goes to the same first maximum where
    # it is positive and is 0 elsewhere, so the ReLU runs here on the pooled output.
    relu = False

    def forward(self, x, training: bool = False):
        kernels = self._compiled(x)
        if kernels is not None:
            return self._forward_compiled(kernels, x, training)
        xp, xpad, out_hw = self._prepare(x)
        cells = [cell for _, _, cell in self._cells(xpad, out_hw)]
        out = xp.empty(cells[0].shape, dtype=x.dtype)  # (N, H', W', C)

        def work(chunks, _):
            for s, m in chunks:  # images s .. s+m-1
                o = out[s : s + m]
                o[...] = cells[0][s : s + m]
                for cell in cells[1:]:
                    xp.maximum(o, cell[s : s + m], out=o)
                if self.relu:
                    xp.maximum(o, 0, out=o)

        plan = batch_plan(xp, len(x))
        run_plan(work, plan, plan)
        self._cache = (xpad, x.shape, out) if training else None
        return out

    def backward(self, dout):
        """dout (N, H', W', C) -> dx (N, H, W, C): each window's gradient to one cell."""
        assert self._cache is not None, "MaxPool2D.backward needs forward(x, training=True) first"
        xp = array_module(dout)
        if self._cache[0] is None:  # the compiled forward's cache: (None, idx, x shape)
            return self._backward_compiled(dout)
        xpad, x_shape, out = self._cache
        self._cache = None
        if self.relu:  # the ReLU's derivative: 0 where the pooled output was not positive
            dout = dout * (out > 0)
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

            plan = batch_plan(xp, n)
            run_plan(work, plan, plan)
            return dx.reshape(x_shape)
        taken = xp.zeros(out.shape, dtype=bool)  # window already gave its gradient away
        first = xp.empty(out.shape, dtype=bool)
        pieces = []
        for i, j, cell in cells:
            self._first(xp, cell, out, taken, first)
            pieces.append((i, j, dout * first))
        return self._scatter(xp, x_shape, pieces, out_hw)

    def _compiled(self, x):
        """The pool_numba kernels where they apply: NumPy, windows that do not overlap."""
        if array_module(x) is not np or self.padding or self.stride != self.pool:
            return None
        if self.pool[0] * self.pool[1] > 255:  # winners are uint8, 255 meaning none
            return None
        return layer_kernels("cvtool.nn.pool_numba", x.size)

    def _forward_compiled(self, kernels, x, training: bool):
        """forward by pool_numba: one read of each window, the winners kept for backward."""
        x = np.ascontiguousarray(x)
        ho, wo, c = self.output_shape(x.shape[1:])
        out = np.empty((len(x), ho, wo, c), dtype=x.dtype)
        idx = np.empty(out.shape, dtype=np.uint8)
        ph, pw = self.pool

        def work(chunks, _):
            for s, m in chunks:
                sl = slice(s, s + m)
                kernels.max_forward(x[sl], out[sl], idx[sl], ph, pw, self.relu)

        plan = batch_plan(np, len(x))
        run_plan(work, plan, plan)
        self._cache = (None, idx, x.shape, kernels) if training else None
        return out

    def _backward_compiled(self, dout):
        _, idx, x_shape, kernels = self._cache
        self._cache = None
        if dout.shape != idx.shape:  # the kernels do not check bounds
            raise ValueError(f"MaxPool2D.backward: dout has shape {dout.shape}, not {idx.shape}")
        dout = np.ascontiguousarray(dout)
        dx = np.empty(x_shape, dtype=dout.dtype)

        def work(chunks, _):
            for s, m in chunks:
                sl = slice(s, s + m)
                kernels.max_backward(dout[sl], idx[sl], dx[sl], *self.pool)

        plan = batch_plan(np, len(dout))
        run_plan(work, plan, plan)
        return dx

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
    mode = check_choice("mode", a.get("mode", "max"), POOL_CLASSES)
    return POOL_CLASSES[mode](a["pool"], stride=a.get("stride"), padding=a.get("padding", 0))
