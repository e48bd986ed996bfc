"""Activation functions, each with its derivative next to it.

An activation is a small object with ``forward(z, out=None) -> a`` and
``backward(z, a, dout, out=None) -> dz``: the derivative is expressed through
the forward output ``a`` where that is cheaper (sigmoid, tanh, softmax), so the
layer that uses it keeps ``a`` rather than recomputing it. ``out=`` lets the
training loop reuse buffers instead of allocating each mini-batch.

Everything is written with the array module of the input (NumPy or CuPy);
on NumPy the sigmoid uses ``scipy.special.expit`` when SciPy is installed.
Left out: parametric activations (PReLU, ELU) and their learnable slopes.
"""

from __future__ import annotations

import numpy as np

from cvtool.backend import array_module
from cvtool.errors import check_choice
from cvtool.nn._parallel import run_rows

_EXPIT: list = []  # [scipy.special.expit or None], filled on first use (import costs 0.2 s)


def _expit():
    if not _EXPIT:
        try:
            from scipy.special import expit
        except ImportError:  # pragma: no cover - scipy is optional
            expit = None
        _EXPIT.append(expit)
    return _EXPIT[0]


def _rows(fn, x) -> None:
    """fn(start, stop) over the rows of the NumPy batch x, split across cores when x is large."""
    run_rows(fn, len(x), x.size)


class Sigmoid:
    """sigma(z) = 1 / (1 + e^-z); sigma'(z) = a (1 - a)."""

    name = "sigmoid"

    def forward(self, z, out=None):
        xp = array_module(z)
        if xp is np:
            expit = _EXPIT[0] if _EXPIT else _expit()
            if expit is not None:  # one ufunc call instead of four (hot loop)
                return expit(z, out=out)
        # 0.5 tanh(z/2) + 0.5 is the same function without exp overflow for large -z.
        out = xp.multiply(z, 0.5, out=out)
        xp.tanh(out, out=out)
        out *= 0.5
        out += 0.5
        return out

    def backward(self, z, a, dout, out=None):
        xp = array_module(a)
        out = xp.subtract(1.0, a, out=out)  # 1 - a
        out *= a
        out *= dout
        return out


class Tanh:
    """tanh(z); tanh'(z) = 1 - a^2."""

    name = "tanh"

    def forward(self, z, out=None):
        return array_module(z).tanh(z, out=out)

    def backward(self, z, a, dout, out=None):
        xp = array_module(a)
        out = xp.multiply(a, a, out=out)
        xp.subtract(1.0, out, out=out)
        out *= dout
        return out


class ReLU:
    """max(0, z); derivative 1 where z > 0, else 0 (0 at the kink)."""

    name = "relu"

    def forward(self, z, out=None):
        xp = array_module(z)
        if out is None or xp is not np:
            return xp.maximum(z, 0, out=out)
        _rows(lambda s, e: xp.maximum(z[s:e], 0, out=out[s:e]), z)
        return out

    def backward(self, z, a, dout, out=None):
        xp = array_module(dout)
        if out is None or xp is not np:
            return xp.multiply(dout, a > 0, out=out)
        _rows(lambda s, e: xp.multiply(dout[s:e], a[s:e] > 0, out=out[s:e]), dout)
        return out


class Identity:
    """z itself; derivative 1."""

    name = "identity"

    def forward(self, z, out=None):
        if out is None:
            return z
        out[...] = z
        return out

    def backward(self, z, a, dout, out=None):
        if out is None:
            return dout
        out[...] = dout
        return out


class Softmax:
    """softmax over the last axis; dz = a * (dout - sum(dout * a)) per row.

    The row maximum is subtracted before exponentiating, so large inputs do
    not overflow.
    """

    name = "softmax"

    def forward(self, z, out=None):
        xp = array_module(z)
        out = xp.subtract(z, z.max(axis=-1, keepdims=True), out=out)
        xp.exp(out, out=out)
        out /= out.sum(axis=-1, keepdims=True)
        return out

    def backward(self, z, a, dout, out=None):
        xp = array_module(a)
        dot = (dout * a).sum(axis=-1, keepdims=True)  # (N, 1)
        out = xp.subtract(dout, dot, out=out)
        out *= a
        return out


ACTIVATIONS = {cls.name: cls for cls in (Sigmoid, Tanh, ReLU, Identity, Softmax)}


def get_activation(name: str):
    """An activation object by name (sigmoid, tanh, relu, softmax, identity).

    Raises
    ------
    CvtoolError
        For an unknown name.
    """
    return ACTIVATIONS[check_choice("activation", name, ACTIVATIONS)]()
