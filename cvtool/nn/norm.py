"""Batch normalisation: each channel standardised by its mini-batch statistics.

For an input x of shape (N, H, W, C) (channels last) or (N, D), every
channel c (or feature d) is normalised over the other axes, m = N H W values::

    mu = mean(x),  var = mean((x - mu)^2)          (biased, over the batch)
    x_hat = (x - mu) / sqrt(var + epsilon)
    y = gamma * x_hat + beta

In training mode the batch statistics are used and the running estimates are
updated; in inference mode the running estimates replace them, so an image's
output does not depend on the rest of its batch. The running variance uses the
unbiased batch variance var * m / (m - 1), as PyTorch's ``BatchNorm2d`` does.

``momentum`` and ``epsilon`` are named as Keras names them: ``running =
momentum * running + (1 - momentum) * batch``, so Keras' momentum 0.99 is
PyTorch's ``momentum=0.01`` and PyTorch's default 0.1 is ``momentum=0.9``
here. The defaults are PyTorch's (momentum 0.9, epsilon 1e-5) rather than
Keras' (0.99, 1e-3): with 0.99 the running estimates need several hundred
steps to forget their initial values, longer than a short training run of a
few thousand canvases gives them, and PyTorch is the reference that the
detection benchmark and the tests compare against.

Parameters ``gamma`` (scale) and ``beta`` (shift) are trainable and, not
being named ``W``, never L2-decayed. The running mean and variance are
non-trainable state: they live in ``state`` (saved and loaded with the model),
not in ``params``, so no optimiser ever sees them. The backward pass is the
usual batch-statistics gradient (the mean and variance depend on x)::

    dx = gamma / sqrt(var + eps) * (dy - mean(dy) - x_hat * mean(dy * x_hat))

On NumPy the (m, C) values are viewed as (m/k, k C) rows so reductions
(``einsum``) and per-channel broadcasts run along long rows instead of a few
channels, and the element-wise passes are split across cores
(``_parallel.run_rows``): 2-3x faster than plain ``sum(axis=0)`` code here.
With the ``fast`` extra (Numba) the element-wise passes (y = x scale + shift, and
dx from x and dout) are one compiled pass each (``cvtool.nn.norm_numba``), with
NumPy's roundings: the same bits. Training forward reads x once for sum(x) and
sum(x^2) (float32 partial sums, combined in float64; a second, centred pass only where the mean is so large
against the spread that the one-pass variance would lose precision), then
writes y = x scale + shift; x itself (not x - mu) is kept for backward, whose
sums are sum(dout) and sum(dout x) - mu sum(dout).
Left out: Keras' ``renorm``, virtual batches, inference-mode training of a
frozen layer (a layer with ``trainable = False`` still uses batch statistics
in a training pass, as PyTorch's does), and synchronised statistics.
"""

from __future__ import annotations

import functools

import numpy as np

from cvtool import shapes
from cvtool.errors import CvtoolError, check_number
from cvtool.nn._parallel import layer_kernels, run_rows
from cvtool.nn.layers import Layer

FOLD = 1024  # values per folded row on NumPy (see _fold)
# The one-pass variance E[x^2] - mean^2 is kept while E[x^2] <= CANCEL var (it loses at
# most log2(CANCEL) = 6 of float32's 24 bits); beyond, x - mean is summed in a second pass.
CANCEL = 64.0


class BatchNorm(Layer):
    """Batch normalisation over every axis but the last (channels or features).

    Parameters
    ----------
    momentum : float
        Keras' momentum of the running statistics, in [0, 1):
        ``running = momentum * running + (1 - momentum) * batch`` (PyTorch's
        ``momentum`` is 1 minus this).
    epsilon : float
        Added to the variance before the square root, > 0.

    Notes
    -----
    params: ``gamma`` (C,) (ones) and ``beta`` (C,) (zeros); state:
    ``running_mean`` (C,) (zeros) and ``running_var`` (C,) (ones). Forward
    keeps the shape: (N, H, W, C) -> (N, H, W, C) or (N, D) -> (N, D).
    """

    kind = "batchnorm"

    def __init__(self, momentum: float = 0.9, epsilon: float = 1e-5):
        super().__init__()
        self.momentum = check_number("momentum", momentum, low=0.0, high=1.0, high_open=True)
        self.epsilon = check_number("epsilon", epsilon, low=0.0, low_open=True)
        self.state: dict = {}
        self._cache = None

    @classmethod
    def from_spec(cls, spec) -> BatchNorm:
        a = spec.args
        return cls(momentum=a.get("momentum", 0.9), epsilon=a.get("epsilon", 1e-5))

    def config(self) -> dict:
        return {"momentum": self.momentum, "epsilon": self.epsilon}

    def param_count(self, in_shape) -> tuple[int, int]:
        """(gamma, beta) counts, from shapes.batchnorm_params; the running statistics
        (the other half of that function's answer) are not parameters."""
        trainable, _ = shapes.batchnorm_params(int(in_shape[-1]))
        return trainable // 2, trainable // 2

    def state_count(self, in_shape) -> int:
        """Non-trainable values: the running mean and variance."""
        return shapes.batchnorm_params(int(in_shape[-1]))[1]

    def build(self, in_shape, xp, dtype, rng) -> None:
        super().build(in_shape, xp, dtype, rng)
        c = int(in_shape[-1])
        self.params = {"gamma": xp.ones(c, dtype=dtype), "beta": xp.zeros(c, dtype=dtype)}
        self.grads = {k: xp.zeros_like(v) for k, v in self.params.items()}
        self.state = {
            "running_mean": xp.zeros(c, dtype=dtype),
            "running_var": xp.ones(c, dtype=dtype),
        }

    def forward(self, x, training: bool = False):
        """x (N, ..., C) -> y of the same shape; training mode updates the running statistics."""
        xp, c = self.xp, x.shape[-1]
        gamma, beta = self.params["gamma"], self.params["beta"]
        if not training:
            self._cache = None
            scale = gamma / xp.sqrt(self.state["running_var"] + self.epsilon)  # (C,)
            return x * scale + (beta - self.state["running_mean"] * scale)
        m = x.size // c  # values per channel
        if m < 2:
            raise CvtoolError(
                f"Batch normalisation needs more than one value per channel in training; "
                f"got an input of shape {tuple(x.shape)}. Use a batch size >= 2."
            )
        k = _fold(m, c) if xp is np else 1
        xf = xp.ascontiguousarray(x).reshape(m // k, k * c)  # (m/k, kC): a view
        mu, var = self._moments(xf, k, c, m)  # float64 (C,)
        inv = 1.0 / xp.sqrt(var + self.epsilon)  # (C,)
        scale = gamma * inv
        scale_k = xp.tile(scale.astype(x.dtype), k)
        shift_k = xp.tile((beta - mu * scale).astype(x.dtype), k)
        y = self.buffer("y", xf.shape)
        compiled = self._kernels(xf)

        def affine(s, e):  # y = gamma (x - mu) inv + beta = x scale + (beta - mu scale)
            if compiled is not None:  # one pass, the same two roundings
                compiled.affine(xf[s:e], scale_k, shift_k, y[s:e])
                return
            xp.multiply(xf[s:e], scale_k, out=y[s:e])
            y[s:e] += shift_k

        self._rows(affine, len(xf), x.size)
        r = self.momentum
        rm, rv = self.state["running_mean"], self.state["running_var"]
        rm *= r
        rm += ((1.0 - r) * mu).astype(rm.dtype)
        rv *= r
        rv += ((1.0 - r) * m / (m - 1) * var).astype(rv.dtype)  # unbiased, as PyTorch
        self._cache = (xf, mu, var, inv, k)
        return y.reshape(x.shape)

    def _moments(self, xf, k: int, c: int, m: int):
        """(mean, biased variance) per channel, float64 (C,), of the folded (m/k, kC) x.

        One read-only pass for sum(x) and sum(x^2) (float32 partial sums per
        piece, combined in float64). Where the mean is large against the spread
        (the one-pass variance would lose more than CANCEL_BITS to cancellation)
        a second pass sums (x - mean)^2 instead.
        """
        xp = self.xp

        def sums(s, e):
            a = xf[s:e]
            return xp.stack([xp.einsum("ij->j", a), xp.einsum("ij,ij->j", a, a)]).astype(np.float64)

        acc = self._rows(sums, len(xf), xf.size).reshape(2, k, c).sum(axis=1) / m  # (2, C)
        mu = acc[0]
        var = acc[1] - mu * mu
        # On a device the second pass always runs: deciding would be a host transfer a step.
        if xp is not np or bool(xp.any(acc[1] > CANCEL * xp.maximum(var, 0.0))):
            mu_k = xp.tile(mu.astype(xf.dtype), k)

            def centred(s, e):
                d = xp.subtract(xf[s:e], mu_k)
                return xp.einsum("ij,ij->j", d, d).astype(np.float64)

            var = self._rows(centred, len(xf), xf.size).reshape(k, c).sum(axis=0) / m
        return mu, xp.maximum(var, 0.0)

    def backward(self, dout):
        """dout (N, ..., C) -> dx; fills grads['gamma'] = sum(dout x_hat), grads['beta'] = sum(dout)."""
        assert self._cache is not None, "BatchNorm.backward needs forward(x, training=True) first"
        xp = self.xp
        xf, mu, var, inv, k = self._cache
        self._cache = None
        c = inv.shape[0]
        m = dout.size // c
        df = xp.ascontiguousarray(dout).reshape(xf.shape)  # (m/k, kC)

        def sums(s, e):  # sum(dout), sum(dout x): read-only
            return xp.stack(
                [xp.einsum("ij->j", df[s:e]), xp.einsum("ij,ij->j", df[s:e], xf[s:e])]
            ).astype(np.float64)

        both = self._rows(sums, len(df), dout.size).reshape(2, k, c).sum(axis=1)  # (2, C)
        dsum = both[1] - mu * both[0]  # sum(dout (x - mu))
        dbeta, dgamma = self.grads["beta"], self.grads["gamma"]
        dbeta[...] = both[0]
        dgamma[...] = dsum * inv  # sum(dout * x_hat)
        if not self.need_dx:
            return None
        # dx = gamma inv (dout - dbeta / m - x_hat dgamma / m) = k1 dout + k2 x + k3
        g = self.params["gamma"] * inv
        k2 = -g * inv * inv * dsum / m
        k1, k2, k3 = (xp.tile(v.astype(xf.dtype), k) for v in (g, k2, -g * both[0] / m - k2 * mu))
        dx = self.buffer("dx", xf.shape)
        compiled = self._kernels(df)
        tmp = self.buffer("tmp", xf.shape) if compiled is None else None

        def grad_x(s, e):
            if compiled is not None:  # one pass, the same roundings in the same order
                compiled.grad_x(xf[s:e], df[s:e], k1, k2, k3, dx[s:e])
                return
            xp.multiply(xf[s:e], k2, out=dx[s:e])
            dx[s:e] += k3
            dx[s:e] += xp.multiply(df[s:e], k1, out=tmp[s:e])

        self._rows(grad_x, len(df), dout.size)
        return dx.reshape(dout.shape)

    def _kernels(self, a):
        """:mod:`cvtool.nn.norm_numba` for a folded NumPy array ``a`` (C-contiguous), or None."""
        if self.xp is not np or not a.flags.c_contiguous:
            return None
        return layer_kernels("cvtool.nn.norm_numba", a.size)

    def _rows(self, fn, n: int, size: int):
        """fn(start, stop) over rows 0..n-1, split across cores on NumPy when large; the sum
        of what the pieces return (per-column partial sums), or None. The pieces are added
        in row order, whichever thread finished first, so every run gives the same bits."""
        parts = {}

        def piece(s, e):
            out = fn(s, e)
            if out is not None:
                parts[s] = out

        if self.xp is np:
            run_rows(piece, n, size)
        else:
            piece(0, n)
        ordered = [parts[s] for s in sorted(parts)]
        return sum(ordered[1:], ordered[0]) if ordered else None


@functools.lru_cache(maxsize=64)
def _fold(m: int, c: int) -> int:
    """The largest k <= FOLD / C dividing m: (m, C) is viewed as (m/k, kC) rows.

    NumPy reduces and broadcasts along a short last axis (a few channels) slowly;
    folding k rows into one gives its inner loops FOLD values at a time.
    """
    return max(k for k in range(1, max(1, FOLD // c) + 1) if m % k == 0)
