"""Compiled RLE kernels (the optional ``fast`` extra, Numba): strings to counts, and IoU on runs.

:mod:`cvtool.boxes.rle` uses them when Numba imports and falls back to its
NumPy code otherwise, or when a kernel reports bad input (the NumPy code then
names the problem). Both give the same numbers: the kernels follow maskApi.c
(``rleFrString``, ``rleArea``, ``rleToBbox``, the intersection of ``rleIou``)
one mask or pair at a time, walking the runs without decoding, in parallel
over masks / pairs.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, boundscheck=False, parallel=True)
def _count_values(buf, soff, nval):
    """Values in each string; -1 for a bad character, an unterminated or too long value."""
    n = soff.shape[0] - 1
    for i in prange(n):
        k = 0
        run = 0
        ok = True
        for p in range(soff[i], soff[i + 1]):
            c = np.int64(buf[p]) - 48
            if c < 0 or c > 63:
                ok = False
                break
            run += 1
            if (c & 0x20) == 0:
                if run > 7:
                    ok = False
                    break
                k += 1
                run = 0
        nval[i] = k if ok and run == 0 else -1


@njit(cache=True, boundscheck=False, parallel=True)
def _decode(buf, soff, voff, counts):
    """counts of every string (maskApi.c rleFrString)."""
    n = soff.shape[0] - 1
    for i in prange(n):
        m = voff[i]
        p = soff[i]
        end = soff[i + 1]
        while p < end:
            x = np.int64(0)
            k = 0
            more = True
            while more:
                c = np.int64(buf[p]) - 48
                x |= (c & 0x1F) << (5 * k)
                more = (c & 0x20) != 0
                p += 1
                k += 1
                if not more and (c & 0x10) != 0:
                    x |= np.int64(-1) << (5 * k)
            j = m - voff[i]
            if j > 2:
                x += counts[m - 2]
            counts[m] = x & 0xFFFFFFFF
            m += 1


@njit(cache=True, boundscheck=False, parallel=True)
def _area_box(counts, voff, h, total, area, box):
    """Sum, area and box (maskApi.c rleArea, rleToBbox) of every mask."""
    for i in prange(voff.shape[0] - 1):
        # a trailing background run is ignored by the box
        hh = max(h[i], 1)
        nr = voff[i + 1] - voff[i]
        m2 = (nr // 2) * 2
        cc = np.int64(0)
        a = np.int64(0)
        xs = np.int64(1) << 62
        ys = np.int64(1) << 62
        xe = np.int64(0)
        ye = np.int64(0)
        xp = np.int64(0)
        span = False
        for j in range(nr):
            v = counts[voff[i] + j]
            cc += v
            if j & 1:
                a += v
            if j < m2:
                t = cc - (j & 1)
                xx = t // hh
                yy = t - xx * hh
                if (j & 1) == 0:
                    xp = xx
                elif xp < xx:
                    span = True
                xs = min(xs, xx)
                xe = max(xe, xx)
                ys = min(ys, yy)
                ye = max(ye, yy)
        total[i] = cc
        area[i] = a
        if m2 == 0:
            box[i, 0] = 0.0
            box[i, 1] = 0.0
            box[i, 2] = 0.0
            box[i, 3] = 0.0
        else:
            if span:
                ys = 0
                ye = h[i] - 1
            box[i, 0] = xs
            box[i, 1] = ys
            box[i, 2] = xe - xs + 1
            box[i, 3] = ye - ys + 1


def area_box(counts, offsets, h):
    """(sums, areas, boxes) of an RLE batch: int64 (N,), int64 (N,), float64 (N, 4)."""
    n = offsets.shape[0] - 1
    total = np.empty(n, np.int64)
    area = np.empty(n, np.int64)
    box = np.empty((n, 4), np.float64)
    _area_box(counts, offsets, h, total, area, box)
    return total, area, box


def strings_to_counts(buf, soff, h):
    """Decode concatenated strings; None when any string is malformed.

    Parameters
    ----------
    buf : uint8 (B,) the strings one after another; soff : int64 (N + 1,) their offsets.
    h : int64 (N,) mask heights (for the boxes).

    Returns
    -------
    counts (total,), offsets (N + 1,), sums (N,), areas (N,), boxes (N, 4) float64; or None.
    """
    n = soff.shape[0] - 1
    nval = np.empty(n, np.int64)
    _count_values(buf, soff, nval)
    if n and nval.min() < 0:
        return None
    voff = np.zeros(n + 1, np.int64)
    np.cumsum(nval, out=voff[1:])
    counts = np.empty(int(voff[-1]), np.int64)
    _decode(buf, soff, voff, counts)
    return (counts, voff, *area_box(counts, voff, h))


@njit(cache=True, boundscheck=False, parallel=True)
def _pair_inter(dc, doff, di, gc, goff, gi, out):
    """Foreground pixels common to dt mask di[p] and gt mask gi[p], merging their runs."""
    for q in prange(di.shape[0]):
        oa = doff[di[q]]
        na = doff[di[q] + 1] - oa
        ob = goff[gi[q]]
        nb = goff[gi[q] + 1] - ob
        tot = np.int64(0)
        if na >= 2 and nb >= 2:
            # current foreground intervals [sa, ea), [sb, eb); ka, kb their run indices
            sa = dc[oa]
            ea = sa + dc[oa + 1]
            ka = 1
            sb = gc[ob]
            eb = sb + gc[ob + 1]
            kb = 1
            while True:
                lo = max(sa, sb)
                hi = min(ea, eb)
                if hi > lo:
                    tot += hi - lo
                if ea <= eb:
                    if ka + 2 >= na:
                        break
                    sa = ea + dc[oa + ka + 1]
                    ea = sa + dc[oa + ka + 2]
                    ka += 2
                else:
                    if kb + 2 >= nb:
                        break
                    sb = eb + gc[ob + kb + 1]
                    eb = sb + gc[ob + kb + 2]
                    kb += 2
        out[q] = tot


def pair_intersection(dc, doff, di, gc, goff, gi):
    """int64 (P,): intersections of the pairs (dt di[p], gt gi[p]) given both sets' runs."""
    out = np.empty(di.shape[0], np.int64)
    _pair_inter(dc, doff, di, gc, goff, gi, out)
    return out


@njit(cache=True, boundscheck=False, parallel=True)
def _gather(counts, offsets, idx, new_offsets, out):
    for q in prange(idx.shape[0]):
        src = offsets[idx[q]]
        dst = new_offsets[q]
        for j in range(new_offsets[q + 1] - dst):
            out[dst + j] = counts[src + j]


def gather(counts, offsets, idx, new_offsets):
    """The runs of masks ``idx`` one after another (``new_offsets`` their offsets)."""
    out = np.empty(int(new_offsets[-1]), np.int64)
    _gather(counts, offsets, idx, new_offsets, out)
    return out
