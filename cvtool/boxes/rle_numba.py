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
def _decode(buf, soff, voff, counts, h, total, area, box):
    """counts of every string (maskApi.c rleFrString), and each mask's sum, area and box
    while its runs are in cache."""
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
                x += np.int64(counts[m - 2])
            counts[m] = x & 0xFFFFFFFF
            m += 1
        _one_area_box(counts, voff[i], voff[i + 1], h[i], i, total, area, box)


@njit(cache=True, boundscheck=False)
def _one_area_box(counts, lo, hi, h, i, total, area, box):
    """Sum, area and box (maskApi.c rleArea, rleToBbox) of the mask counts[lo:hi], into row i."""
    # a trailing background run is ignored by the box
    hh = max(h, 1)
    nr = hi - lo
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
        v = np.int64(counts[lo + j])
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
            ye = h - 1
        box[i, 0] = xs
        box[i, 1] = ys
        box[i, 2] = xe - xs + 1
        box[i, 3] = ye - ys + 1


@njit(cache=True, boundscheck=False, parallel=True)
def _area_box(counts, voff, h, total, area, box):
    """Sum, area and box of every mask."""
    for i in prange(voff.shape[0] - 1):
        _one_area_box(counts, voff[i], voff[i + 1], h[i], i, total, area, box)


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
    counts = np.empty(int(voff[-1]), np.uint32)  # maskApi.c's uint: half of int64's memory
    total, area, box = np.empty(n, np.int64), np.empty(n, np.int64), np.empty((n, 4), np.float64)
    _decode(buf, soff, voff, counts, h, total, area, box)
    return counts, voff, total, area, box


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
            # (run lengths read as int64: the sets may hold int64 or uint32)
            sa = np.int64(dc[oa])
            ea = sa + np.int64(dc[oa + 1])
            ka = 1
            sb = np.int64(gc[ob])
            eb = sb + np.int64(gc[ob + 1])
            kb = 1
            while True:
                lo = max(sa, sb)
                hi = min(ea, eb)
                if hi > lo:
                    tot += hi - lo
                if ea <= eb:
                    if ka + 2 >= na:
                        break
                    sa = ea + np.int64(dc[oa + ka + 1])
                    ea = sa + np.int64(dc[oa + ka + 2])
                    ka += 2
                else:
                    if kb + 2 >= nb:
                        break
                    sb = eb + np.int64(gc[ob + kb + 1])
                    eb = sb + np.int64(gc[ob + kb + 2])
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
    out = np.empty(int(new_offsets[-1]), counts.dtype)
    _gather(counts, offsets, idx, new_offsets, out)
    return out


@njit(cache=True, boundscheck=False)
def _poly_walk(xy, lo, hi, h, w, out, at, write):
    """maskApi.c rleFrPoly's boundary walk of the polygon xy[lo:hi]: the positions
    x * h + y where a pixel column's y-boundary is crossed, written to out[at:]
    when ``write``; returns how many there are.

    Edges are walked on the 5x grid one point per step of the longer axis, both
    ends included, and a point counts where the grid column u differs from the
    previous point's (across edges too), on the columns 5 X + 2 of the image.
    """
    k = hi - lo
    n = 0
    first = True
    pu = np.int64(0)
    pv = np.int64(0)
    for j in range(k):
        a = lo + j
        b = lo + (j + 1) % k
        xs = np.int64(5.0 * xy[a, 0] + 0.5)  # C's (int) cast truncates towards zero
        ys = np.int64(5.0 * xy[a, 1] + 0.5)
        xe = np.int64(5.0 * xy[b, 0] + 0.5)
        ye = np.int64(5.0 * xy[b, 1] + 0.5)
        dx = abs(xe - xs)
        dy = abs(ys - ye)
        flat = dx >= dy
        if (flat and xs > xe) or (not flat and ys > ye):
            flip = True
            xs, xe = xe, xs
            ys, ye = ye, ys
        else:
            flip = False
        last = dx if flat else dy
        s = 0.0
        if last > 0:
            s = (ye - ys) / dx if flat else (xe - xs) / dy
        for d in range(last + 1):
            t = last - d if flip else d
            if flat:
                u = t + xs
                # a zero-length edge divides 0 by 0 in C: (int)NaN is INT_MIN on x86
                v = np.int64(ys + s * t + 0.5) if last > 0 else np.int64(-2147483648)
            else:
                v = t + ys
                u = np.int64(xs + s * t + 0.5)
            if not first and u != pu:
                xd = ((u if u < pu else u - 1) + 0.5) / 5.0 - 0.5
                if np.floor(xd) == xd and xd >= 0 and xd <= w - 1:
                    yd = ((v if v < pv else pv) + 0.5) / 5.0 - 0.5
                    yd = np.ceil(min(max(yd, 0.0), float(h)))
                    if write:
                        out[at + n] = np.int64(xd) * h + np.int64(yd)
                    n += 1
            first = False
            pu = u
            pv = v
    return n


@njit(cache=True, boundscheck=False, parallel=True)
def _poly_count(xy, voff, h, w, n):
    for i in prange(voff.shape[0] - 1):
        n[i] = _poly_walk(xy, voff[i], voff[i + 1], h[i], w[i], n, 0, False)


@njit(cache=True, boundscheck=False, parallel=True)
def _poly_runs(xy, voff, h, w, buf, boff, nruns):
    """Each polygon's crossings, plus h * w, sorted and turned into runs in place
    (a repeated position makes an empty run, merged with the next one)."""
    for i in prange(voff.shape[0] - 1):
        o = boff[i]
        k = _poly_walk(xy, voff[i], voff[i + 1], h[i], w[i], buf, o, True)
        buf[o + k] = h[i] * w[i]
        k += 1
        buf[o : o + k] = np.sort(buf[o : o + k])
        p = np.int64(0)
        for j in range(k):
            t = buf[o + j]
            buf[o + j] = t - p
            p = t
        m = 1
        j = 1
        while j < k:
            if buf[o + j] > 0:
                buf[o + m] = buf[o + j]
                m += 1
                j += 1
            else:
                j += 1
                if j < k:
                    buf[o + m - 1] += buf[o + j]
                    j += 1
        nruns[i] = m


def polygon_counts(xy, voff, h, w):
    """Runs of each polygon (vertices xy[voff[i]:voff[i + 1]], float64 (V, 2)) in an
    h[i] x w[i] image, as maskApi.c rleFrPoly: (counts, offsets)."""
    n = np.empty(voff.shape[0] - 1, np.int64)
    _poly_count(xy, voff, h, w, n)
    boff = np.zeros(n.shape[0] + 1, np.int64)
    np.cumsum(n + 1, out=boff[1:])
    buf = np.empty(int(boff[-1]), np.int64)
    nruns = np.empty_like(n)
    _poly_runs(xy, voff, h, w, buf, boff, nruns)
    offsets = np.zeros(n.shape[0] + 1, np.int64)
    np.cumsum(nruns, out=offsets[1:])
    return gather(buf, boff, np.arange(n.shape[0]), offsets), offsets
