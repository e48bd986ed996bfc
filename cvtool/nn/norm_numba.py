"""Compiled element-wise passes of batch normalisation (the optional ``fast`` extra, Numba).

:class:`cvtool.nn.norm.BatchNorm` uses them on NumPy when Numba imports. NumPy
runs ``y = x scale + shift`` as two passes over the batch and ``dx = x k2 + k3
+ dout k1`` as four (with a temporary); each is one pass here, with the same
operations in the same order, each rounded as NumPy rounds it (no fused
multiply-add), so the numbers are NumPy's bit for bit. The statistics (sums)
stay with NumPy.
"""

from __future__ import annotations

from numba import njit


@njit(cache=True, nogil=True, boundscheck=False)
def affine(x, scale, shift, y):
    """y = x * scale + shift, rows of x (m, K) against (K,) vectors."""
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            y[i, j] = x[i, j] * scale[j] + shift[j]


@njit(cache=True, nogil=True, boundscheck=False)
def grad_x(x, dout, k1, k2, k3, dx):
    """dx = (x * k2 + k3) + dout * k1, rows of (m, K) against (K,) vectors."""
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            dx[i, j] = (x[i, j] * k2[j] + k3[j]) + dout[i, j] * k1[j]
