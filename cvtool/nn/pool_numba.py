"""Compiled max-pooling kernels (the optional ``fast`` extra, Numba): one pass each way.

:class:`cvtool.nn.pool.MaxPool2D` uses them on NumPy when Numba imports. The
NumPy code reads every cell of a window as a strided slice of the batch, then
finds each window's first maximum again in backward with boolean passes (five
or six whole-batch passes each way). Here forward reads each window once and
keeps, per output value, the row-major number of the cell that won (uint8; 255
where none did: the NumPy code's ``cell == out`` finds no cell when the maximum
is NaN), and backward writes each window's gradient to that cell. The numbers
are the NumPy code's exactly: the same maximum, the same first winner, the same
products.

The kernels release the GIL and work on the images they are given, so the
layer runs them on its chunks of the batch in the conv worker threads.
"""

from __future__ import annotations

from numba import njit

NONE = 255  # no cell won: the window's maximum is NaN (so windows have at most 255 cells)


@njit(cache=True, nogil=True, boundscheck=False)
def max_forward(x, out, idx, ph, pw, relu):
    """out (N, H', W', C) = the maximum of each window of x (N, H, W, C) that tiles it
    (stride = window, no padding); idx the number of the first cell that holds it."""
    n_img, ho, wo, c = out.shape
    for n in range(n_img):
        for i in range(ho):
            o = out[n, i]  # (W', C): rows of C contiguous values, the inner loops
            k = idx[n, i]
            for j in range(wo):
                for ch in range(c):
                    o[j, ch] = x[n, i * ph, j * pw, ch]
                    k[j, ch] = 0
            for cell in range(1, ph * pw):
                row = x[n, i * ph + cell // pw]
                b = cell % pw
                for j in range(wo):
                    for ch in range(c):
                        v = row[j * pw + b, ch]
                        best = o[j, ch]
                        gt = v > best  # the first maximum gets the gradient
                        nan = v != v and best == best  # NaN propagates, as in np.maximum
                        # np.maximum(best, v) returns v on a tie: the same zero sign
                        o[j, ch] = v if v >= best or nan else best
                        k[j, ch] = cell if gt else k[j, ch]
            for j in range(wo):
                for ch in range(c):
                    best = o[j, ch]
                    if not best > 0 and (relu or best != best):
                        k[j, ch] = NONE  # NaN: no cell equals it; relu: no gradient at <= 0
                        if relu and best == best:
                            o[j, ch] = 0.0  # np.maximum(best, 0): +0.0 for -0.0 too


@njit(cache=True, nogil=True, boundscheck=False)
def max_backward(dout, idx, dx, ph, pw):
    """dx (N, H, W, C) of windows that tile it (stride = window, no padding): each window's
    dout to its winning cell, 0 to the others and to the rows and columns no window covers."""
    n_img, ho, wo, c = dout.shape
    h, w = dx.shape[1], dx.shape[2]
    # Where the windows leave rows or columns uncovered the NumPy code adds each window's
    # gradient to zeros (0 + -0.0 = +0.0); where they tile the input it writes it.
    add = ho * ph < h or wo * pw < w
    for n in range(n_img):
        for i in range(ho):
            d = dout[n, i]
            k = idx[n, i]
            for a in range(ph):
                row = dx[n, i * ph + a]
                for j in range(wo):
                    for b in range(pw):
                        cell = a * pw + b
                        for ch in range(c):
                            g = d[j, ch] * (k[j, ch] == cell)
                            row[j * pw + b, ch] = g + 0.0 if add else g
                if wo * pw < w:
                    row[wo * pw :] = 0
        if ho * ph < h:
            dx[n, ho * ph :] = 0
