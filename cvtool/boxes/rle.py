"""COCO run-length encoding (RLE) of binary masks, computed on runs with NumPy.

A mask of height ``h`` and width ``w`` is read in column-major order (down
the first column, then the next) and stored as alternating run lengths,
background first: ``counts = [zeros, ones, zeros, ...]`` summing to ``h * w``
(a mask starting with foreground has ``counts[0] == 0``). The compressed form
is pycocotools' string (maskApi.c ``rleToString``): each count, minus the
count two before it from the fourth on, in signed 5-bit groups, 6 bits per
character from ``'0'``. Strings made here equal pycocotools' byte for byte.

Everything works on a batch, :class:`RleSet` (all counts in one array plus
offsets), without loops over masks or runs and without decoding to images:

* :func:`encode` / :func:`decode`, :func:`area`, :func:`to_bbox`;
* :func:`from_polygons` — pycocotools' ``frPyObjects`` rasterisation of
  polygons (boundary upsampled 5x, y-crossings downsampled, column parity);
* :func:`merge` — union (or intersection) of masks as canonical runs;
* :func:`iou` — ``pycocotools.mask.iou(dt, gt, iscrowd)``: intersection over
  union, or over the detection's area for a crowd ground truth; intersections
  come from the foreground intervals of one mask queried against the
  cumulative coverage of the other (one ``searchsorted``);
* :func:`from_segmentations` — COCO ``segmentation`` fields (polygon lists,
  uncompressed or compressed RLE) to one RLE each, as ``COCO.annToRLE``.

Dicts are ``{"size": [h, w], "counts": str}``; the string is ASCII (pycocotools
gives the same characters as ``bytes``). Left out: boxes as RLE (``frBbox``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import chain
from operator import itemgetter

import numpy as np

from cvtool.backend import compiled_kernels
from cvtool.errors import CvtoolError

SCALE = 5  # maskApi.c rleFrPoly's upsampling of polygon boundaries
# The compiled kernels of rle_numba when Numba imports: "auto" for work of at least
# NUMBA_MIN elements (importing Numba and loading its cached kernels costs about a second,
# more than the NumPy code takes on small inputs), True always, False never.
USE_NUMBA = "auto"
NUMBA_MIN = 2_000_000


def _kernels(size: int):
    """:mod:`cvtool.boxes.rle_numba` for work of ``size`` elements, or None (NumPy code)."""
    return compiled_kernels("cvtool.boxes.rle_numba", USE_NUMBA, size, NUMBA_MIN)


@dataclass
class RleSet:
    """A batch of N run-length encoded masks.

    ``h``, ``w`` : int64 (N,); ``counts`` : int64, or uint32 (maskApi.c's
    type) from the compiled string decoder, (total,) run lengths of all
    masks one after another; ``offsets`` : int64 (N + 1,), mask i's runs are
    ``counts[offsets[i]:offsets[i + 1]]``. Treated as immutable: ``cache``
    keeps what was derived from it (run positions, areas, boxes).
    """

    h: np.ndarray
    w: np.ndarray
    counts: np.ndarray
    offsets: np.ndarray
    cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __len__(self) -> int:
        return int(self.h.shape[0])

    def take(self, idx) -> RleSet:
        """The masks ``idx`` (array of int), in that order."""
        idx = np.asarray(idx, np.int64)
        n = np.diff(self.offsets)[idx]
        offs = _offsets(n)
        k = _kernels(int(offs[-1]))
        if k is not None and self.counts.dtype in (np.int64, np.uint32):
            counts = k.gather(self.counts, np.ascontiguousarray(self.offsets, np.int64), idx, offs)
        else:
            counts = self.counts[np.repeat(self.offsets[idx] - _starts(n), n) + np.arange(n.sum())]
        out = RleSet(self.h[idx], self.w[idx], counts, offs)
        for key in ("area", "bbox"):
            if key in self.cache:
                out.cache[key] = self.cache[key][idx]
        return out

    @staticmethod
    def concat(sets) -> RleSet:
        sets = list(sets)
        n = np.concatenate([np.diff(s.offsets) for s in sets] + [np.zeros(0, np.int64)])
        out = RleSet(
            np.concatenate([s.h for s in sets] + [np.zeros(0, np.int64)]),
            np.concatenate([s.w for s in sets] + [np.zeros(0, np.int64)]),
            np.concatenate([s.counts for s in sets] + [np.zeros(0, np.int64)]),
            _offsets(n),
        )
        for key in ("area", "bbox"):
            if sets and all(key in s.cache for s in sets):
                out.cache[key] = np.concatenate([s.cache[key] for s in sets])
        return out


# ---------------------------------------------------------------- small segment helpers
def _offsets(n):
    return np.concatenate(([0], np.cumsum(n))).astype(np.int64)


def _starts(n):
    return np.cumsum(n) - n


def _seg(offsets):
    """(mask of each element, position inside its mask) for segment ``offsets``."""
    n = np.diff(offsets)
    seg = np.repeat(np.arange(n.shape[0]), n)
    return seg, np.arange(offsets[-1]) - offsets[:-1][seg]


def _runs(rs: RleSet):
    """(mask, position inside the mask) of every run of ``rs``, computed once."""
    if "runs" not in rs.cache:
        rs.cache["runs"] = _seg(rs.offsets)
    return rs.cache["runs"]


def _ends(rs: RleSet):
    """Where each run ends inside its mask (cumulative counts), computed once."""
    if "ends" not in rs.cache:
        rs.cache["ends"] = _seg_cumsum(rs.counts, rs.offsets)
    return rs.cache["ends"]


def _seg_cumsum(x, offsets):
    """Cumulative sums restarting at every segment."""
    cs = np.cumsum(x, dtype=np.int64)
    before = np.concatenate(([0], cs))[offsets[:-1]]  # the sum just before each segment
    return cs - np.repeat(before, np.diff(offsets))


def _from_toggles(group, pos, n_groups, hw):
    """Canonical counts of masks given where foreground switches on or off.

    group, pos : int arrays sorted by (group, pos), positions in [0, hw).
    hw : int array (n_groups,). Returns (counts, offsets): for each group the
    differences of ``[0, *toggles, hw]`` (first count 0 when it starts on).
    """
    nt = np.bincount(group, minlength=n_groups)
    offs = _offsets(nt + 1)
    pts = np.empty(offs[-1] + n_groups, np.int64)  # [0, toggles..., hw] per group
    poff = offs + np.arange(n_groups + 1)
    pts[poff[:-1]] = 0
    pts[poff[1:] - 1] = hw
    inner = np.ones(pts.shape[0], bool)
    inner[poff[:-1]] = False
    inner[poff[1:] - 1] = False
    pts[inner] = pos
    d = np.diff(pts)
    keep = np.ones(d.shape[0], bool)
    keep[poff[1:-1] - 1] = False  # the step from one group's hw to the next group's 0
    return d[keep], offs


# ---------------------------------------------------------------- strings
def _check_sizes(rs: RleSet, name: str, index=None):
    """Counts must be >= 0 and sum to h * w (``index`` maps entries to the caller's numbers)."""
    index = np.arange(len(rs)) if index is None else np.asarray(index)
    if rs.counts.size and rs.counts.min() < 0:
        seg, _ = _runs(rs)
        i = int(index[seg[np.argmax(rs.counts < 0)]])
        raise CvtoolError(f"{name} {i}: RLE counts must be >= 0.")
    n = np.diff(rs.offsets)
    tot = np.where(n > 0, _ends(rs)[np.maximum(rs.offsets[1:] - 1, 0)] if rs.counts.size else 0, 0)
    bad = np.nonzero(tot != rs.h * rs.w)[0]
    if bad.size:
        b = int(bad[0])
        raise CvtoolError(
            f"{name} {int(index[b])}: RLE counts must sum to height * width = "
            f"{int(rs.h[b])} * {int(rs.w[b])} = {int(rs.h[b] * rs.w[b])}. Got {int(tot[b])}."
        )


def counts_to_strings(rs: RleSet) -> list[str]:
    """pycocotools' compressed strings of a batch (maskApi.c ``rleToString``)."""
    x = rs.counts.astype(np.int64)
    seg, r = _runs(rs)
    late = np.nonzero(r > 2)[0]
    x[late] -= rs.counts[late - 2]  # deltas from the 4th run on
    # characters per value: the fewest 5-bit groups holding x in two's complement
    nchar = np.ones(x.shape[0], np.int64)
    for k in range(1, 8):
        half = np.int64(1) << (5 * k - 1)
        nchar += (x < -half) | (x >= half)
    start = np.cumsum(nchar) - nchar
    out = np.empty(int(nchar.sum()), np.uint8)
    idx = np.arange(x.shape[0])
    for k in range(8):  # the k-th character of every value that has one
        if k:
            idx = idx[nchar[idx] > k]
        if not idx.size:
            break
        c = (x[idx] >> (5 * k)) & 0x1F
        out[start[idx] + k] = c + np.where(nchar[idx] > k + 1, 0x20, 0) + 48
    text = out.tobytes().decode("ascii")
    per = np.bincount(seg, weights=nchar, minlength=len(rs)).astype(np.int64)
    ends = np.cumsum(per)
    return [text[a:b] for a, b in zip((ends - per).tolist(), ends.tolist(), strict=True)]


def strings_to_counts(strings, h, w, name: str = "mask", index=None) -> RleSet:
    """Batch of compressed strings (str or bytes) -> RleSet (maskApi.c ``rleFrString``).

    Raises
    ------
    CvtoolError
        On a character outside '0'..'o', a truncated value, or counts not summing to h * w.
    """
    if set(map(type, strings)) == {str}:  # one join: ASCII has a byte per character
        lens = np.fromiter(map(len, strings), np.int64, len(strings))
        buf = np.frombuffer("".join(strings).encode("ascii", "replace"), np.uint8)
    else:
        raw = [s.encode("ascii", "replace") if isinstance(s, str) else bytes(s) for s in strings]
        lens = np.array([len(s) for s in raw], np.int64)
        buf = np.frombuffer(b"".join(raw), np.uint8)
    soff = _offsets(lens)
    k = _kernels(buf.size)
    if k is not None:
        hh = np.broadcast_to(np.asarray(h, np.int64).reshape(-1), lens.shape)
        ww = np.broadcast_to(np.asarray(w, np.int64).reshape(-1), lens.shape)
        got = k.strings_to_counts(buf, soff, np.ascontiguousarray(hh))
        if got is not None and (got[2] == hh * ww).all():
            rs = RleSet(hh.copy(), ww.copy(), got[0], got[1])
            rs.cache["area"], rs.cache["bbox"] = got[3], got[4]
            return rs
        # else: the NumPy code below names the problem
    c = buf.astype(np.int16) - 48
    index = np.arange(lens.size) if index is None else np.asarray(index)
    if c.size and (c.min() < 0 or c.max() > 63):
        i = int(index[_seg(soff)[0][np.argmax((c < 0) | (c > 63))]])
        raise CvtoolError(f"{name} {i}: the RLE string has a character outside '0'..'o'.")
    end = (c & 0x20) == 0
    last = soff[1:][lens > 0] - 1
    if last.size and not end[last].all():
        i = int(index[np.nonzero(lens > 0)[0][np.argmin(end[last])]])
        raise CvtoolError(f"{name} {i}: the RLE string ends inside a value.")
    vend = np.nonzero(end)[0]
    vstart = np.concatenate(([0], vend[:-1] + 1)).astype(np.int64)
    nch = vend - vstart + 1
    if nch.size and nch.max() > 7:  # more than a uint32 needs
        i = int(index[_seg(soff)[0][vend[np.argmax(nch > 7)]]])
        raise CvtoolError(f"{name} {i}: the RLE string holds a value beyond 32 bits.")
    x = (c[vstart] & 0x1F).astype(np.int64)
    longer = np.nonzero(nch > 1)[0]  # most values fit one or two characters
    for k in range(1, 7):
        longer = longer[nch[longer] > k]
        if not longer.size:
            break
        x[longer] |= (c[vstart[longer] + k] & 0x1F).astype(np.int64) << (5 * k)
    neg = (c[vend] & 0x10) != 0
    x = np.where(neg, x - (np.int64(1) << (5 * nch)), x)
    nval = np.diff(np.searchsorted(vend, soff))  # values ending inside each string
    voff = _offsets(nval)
    # cnts[m] = x[m] + cnts[m - 2] for m > 2: running sums of the odd and the even runs from 1
    seg, r = _seg(voff)
    odd = (r & 1).astype(bool)
    late = np.where(r > 0, x, 0)
    counts = np.where(odd, _seg_cumsum(np.where(odd, late, 0), voff),
                      _seg_cumsum(np.where(odd, 0, late), voff))  # fmt: skip
    counts = np.where(r == 0, x, counts)
    counts &= 0xFFFFFFFF  # maskApi.c stores uint
    rs = RleSet(np.asarray(h, np.int64).reshape(-1), np.asarray(w, np.int64).reshape(-1),
                counts, voff)  # fmt: skip
    rs.cache["runs"] = (seg, r)
    _check_sizes(rs, name, index)
    return rs


# ---------------------------------------------------------------- dicts <-> sets
def to_set(rles, name="mask", index=None) -> RleSet:
    """A list of RLE dicts (compressed or uncompressed counts), or an RleSet, as an RleSet.

    ``name`` and ``index`` (the caller's numbering) go into error messages.
    """
    if isinstance(rles, RleSet):
        return rles
    if isinstance(rles, dict):
        rles = [rles]
    index = np.arange(len(rles)) if index is None else np.asarray(index)
    hw = _sizes(rles, name, index)
    try:
        counts = list(map(itemgetter("counts"), rles))
    except KeyError:
        counts = [r.get("counts") for r in rles]
    if counts and set(map(type, counts)) <= {str, bytes}:  # all compressed (results are)
        return strings_to_counts(counts, hw[:, 0], hw[:, 1], name, index)
    strs = [isinstance(c, str | bytes) for c in counts]
    out, where = [], []
    si = [i for i, s in enumerate(strs) if s]
    if si:
        out.append(strings_to_counts([rles[i]["counts"] for i in si], hw[si, 0], hw[si, 1],
                                     name, index[si]))  # fmt: skip
        where.append(si)
    li = [i for i, s in enumerate(strs) if not s]
    if li:
        cl = []
        for i in li:
            c = rles[i].get("counts")
            plain = type(c) in (list, tuple) and set(map(type, c)) <= {int}  # (JSON's case)
            if not plain and (not isinstance(c, list | tuple) or not all(
                isinstance(v, int | np.integer) and not isinstance(v, bool) for v in c
            )):  # fmt: skip
                raise CvtoolError(
                    f"{name} {int(index[i])}: RLE 'counts' must be a string or a list of ints."
                )
            cl.append(np.asarray(c, np.int64).reshape(-1))
        rs = RleSet(hw[li, 0], hw[li, 1], np.concatenate(cl),
                    _offsets(np.array([a.size for a in cl], np.int64)))  # fmt: skip
        _check_sizes(rs, name, index[li])
        out.append(rs)
        where.append(li)
    if not out:
        return RleSet(*(np.zeros(0, np.int64) for _ in range(3)), np.zeros(1, np.int64))
    if len(out) == 1:  # all strings or all lists: already in input order
        return out[0]
    both = RleSet.concat(out)
    return both.take(np.argsort(np.concatenate(where), kind="stable"))


def _sizes(rles, name, index):
    """(N, 2) int64 of each RLE dict's 'size' [height, width]; the first bad one named."""
    try:  # in bulk: dicts whose sizes are lists or tuples of two ints
        sizes = list(map(itemgetter("size"), rles))
        if set(map(type, sizes)) - {list, tuple}:
            raise ValueError
        distinct = set(map(tuple, sizes))  # few: check those
        if any(len(v) != 2 or {type(x) for x in v} - {int} for v in distinct):
            raise ValueError
        hw = np.fromiter(chain.from_iterable(sizes), np.int64, 2 * len(sizes)).reshape(-1, 2)
        if not (hw < 0).any():
            return hw
    except (KeyError, TypeError, ValueError, OverflowError):
        pass
    for j, r in enumerate(rles):
        size = r.get("size") if isinstance(r, dict) else None
        if not (isinstance(size, list | tuple) and len(size) == 2
                and all(isinstance(v, int | np.integer) and v >= 0 for v in size)):  # fmt: skip
            raise CvtoolError(
                f"{name} {int(index[j])}: an RLE needs 'size' [height, width]. Got {size!r}."
            )
    return np.array([r["size"] for r in rles], np.int64).reshape(-1, 2)


def _as_dicts(rs: RleSet) -> list[dict]:
    strs = counts_to_strings(rs)
    return [{"size": [h, w], "counts": s}
            for h, w, s in zip(rs.h.tolist(), rs.w.tolist(), strs, strict=True)]  # fmt: skip


def _one_or_many(out, single):
    return out[0] if single else out


# ---------------------------------------------------------------- encode, decode, area, bbox
def encode_set(masks) -> RleSet:
    """Binary masks (N, H, W) (nonzero = foreground) -> RleSet."""
    m = np.asarray(masks)
    N, H, W = m.shape
    flat = (m != 0).transpose(0, 2, 1).reshape(N, H * W)  # column-major per mask
    change = np.diff(flat.astype(np.int8), axis=1, prepend=0) != 0  # (N, H*W)
    g, pos = np.nonzero(change)  # sorted by mask, then position
    counts, offs = _from_toggles(g, pos, N, np.full(N, H * W, np.int64))
    return RleSet(np.full(N, H, np.int64), np.full(N, W, np.int64), counts, offs)


def encode(mask):
    """Compressed RLE of a binary mask, as ``pycocotools.mask.encode``.

    Parameters
    ----------
    mask : array, shape (H, W) or (N, H, W)
        Nonzero is foreground. (pycocotools wants (H, W, N) Fortran order.)

    Returns
    -------
    dict or list of dict
        ``{"size": [H, W], "counts": str}`` (one per mask for a batch).

    Examples
    --------
    >>> encode(np.array([[0, 1], [1, 1]]))
    {'size': [2, 2], 'counts': '13'}
    """
    m = np.asarray(mask)
    if m.ndim not in (2, 3):
        raise CvtoolError(f"The mask must have shape (H, W) or (N, H, W). Got {m.shape}.")
    return _one_or_many(_as_dicts(encode_set(m[None] if m.ndim == 2 else m)), m.ndim == 2)


def decode(rles):
    """Masks from RLE dicts (compressed or uncompressed counts).

    Returns
    -------
    array of uint8, shape (H, W) for one dict, (N, H, W) for a list (same size each).
    """
    single = isinstance(rles, dict)
    rs = to_set(rles)
    if len(rs) and ((rs.h != rs.h[0]).any() or (rs.w != rs.w[0]).any()):
        raise CvtoolError("decode: the masks of a batch must all have the same size.")
    H, W = (int(rs.h[0]), int(rs.w[0])) if len(rs) else (0, 0)
    _, r = _seg(rs.offsets)
    flat = np.repeat((r % 2).astype(np.uint8), rs.counts)  # (N * H * W,)
    out = flat.reshape(len(rs), W, H).transpose(0, 2, 1)
    return np.ascontiguousarray(out[0] if single else out)


def area(rles):
    """Foreground pixels of each mask (sum of the odd runs): int, or int64 array (N,)."""
    single = isinstance(rles, dict)
    rs = to_set(rles)
    a = _area(rs)
    return int(a[0]) if single else a


def _area_bbox_compiled(rs: RleSet) -> bool:
    """Fill the area and bbox cache with the compiled kernel; False without one."""
    k = _kernels(rs.counts.size)
    if k is None:
        return False
    _, rs.cache["area"], rs.cache["bbox"] = k.area_box(
        np.ascontiguousarray(rs.counts),
        np.ascontiguousarray(rs.offsets, np.int64),
        np.ascontiguousarray(rs.h, np.int64),
    )
    return True


def _area(rs: RleSet):
    if "area" not in rs.cache and not _area_bbox_compiled(rs):
        seg, r = _runs(rs)
        odd = r % 2 == 1
        a = np.bincount(seg[odd], weights=rs.counts[odd], minlength=len(rs))
        rs.cache["area"] = a.astype(np.int64)
    return rs.cache["area"]


def to_bbox(rles):
    """xywh boxes of masks, as ``pycocotools.mask.toBbox``: float64 (4,) or (N, 4)."""
    single = isinstance(rles, dict)
    b = _bbox(to_set(rles))
    return b[0] if single else b


def _bbox(rs: RleSet):
    """maskApi.c rleToBbox: runs spanning a column boundary make the box full-height."""
    if "bbox" not in rs.cache and not _area_bbox_compiled(rs):
        rs.cache["bbox"] = _bbox_of(rs)
    return rs.cache["bbox"]


def _bbox_of(rs: RleSet):
    N = len(rs)
    n = np.diff(rs.offsets)
    m2 = (n // 2) * 2  # a trailing background run is ignored
    seg, r = _runs(rs)
    keep = r < m2[seg]
    seg = seg[keep]
    t = _ends(rs)[keep] - (r[keep] & 1)  # first pixel of a run (even j), last pixel (odd j)
    if N and (rs.h == rs.h[0]).all():  # one image size: divide by a scalar (much faster)
        h = max(int(rs.h[0]), 1)
    else:
        h = np.maximum(rs.h[seg], 1)
    x = t // h
    y = t - x * h
    xs, ys = np.zeros(N, np.int64), np.zeros(N, np.int64)
    xe, ye = np.zeros(N, np.int64), np.zeros(N, np.int64)
    span = np.zeros(N, bool)  # a run starting in one column and ending in a later one
    if seg.size:
        first = np.r_[0, np.nonzero(seg[1:] != seg[:-1])[0] + 1]  # kept runs, grouped by mask
        have = seg[first]
        xs[have] = np.minimum.reduceat(x, first)
        ys[have] = np.minimum.reduceat(y, first)
        xe[have] = np.maximum.reduceat(x, first)
        ye[have] = np.maximum.reduceat(y, first)
        grew = x[1::2] > x[0::2]  # kept runs alternate start, end; masks keep an even number
        span[have] = np.logical_or.reduceat(grew, first // 2)
    ys = np.where(span, 0, ys)
    ye = np.where(span, rs.h - 1, ye)
    box = np.stack([xs, ys, xe - xs + 1, ye - ys + 1], axis=1).astype(np.float64)
    box[m2 == 0] = 0.0
    return box


# ---------------------------------------------------------------- polygons
def _polygon_set(polys, h, w) -> RleSet:
    """One RleSet entry per polygon (maskApi.c rleFrPoly), all polygons at once.

    polys : list of float64 arrays (k_i, 2) of x, y vertices; h, w : int arrays (P,).

    rleFrPoly walks every edge on a 5x grid, one point per step of the longer
    axis, and keeps the steps where the grid column ``u`` changes from ``m`` to
    ``m + 1`` with ``m = 5 X + 2``: pixel column X's y-boundary, at the lower of
    the two ``v``. Only those steps are computed here: on a flat edge
    (``dx >= dy``) ``u`` moves one per step, so the step is known; on a steep
    one ``u(t)`` is monotone and the step is found by bisection, with C's own
    floating-point formula. (Consecutive edges share their end point, and
    where C's truncation makes them differ, the column is negative and dropped.)
    """
    P = len(polys)
    h = np.asarray(h, np.int64).reshape(-1)
    w = np.asarray(w, np.int64).reshape(-1)
    k = np.array([p.shape[0] for p in polys], np.int64)
    xy = np.concatenate(polys) if P else np.zeros((0, 2))
    # vertices on the 5x grid, C's (int) cast truncates towards zero
    vx = np.trunc(SCALE * xy[:, 0] + 0.5).astype(np.int64)
    vy = np.trunc(SCALE * xy[:, 1] + 0.5).astype(np.int64)
    pv, j = _seg(_offsets(k))
    nxt = np.where(j + 1 < k[pv], np.arange(vx.size) + 1, np.arange(vx.size) - j)
    xs, xe, ys, ye = vx, vx[nxt], vy, vy[nxt]
    dx, dy = np.abs(xe - xs), np.abs(ye - ys)
    compiled = _kernels(int(np.maximum(dx, dy).sum()))  # the C walk's steps
    if compiled is not None:
        counts, offs = compiled.polygon_counts(np.ascontiguousarray(xy), _offsets(k), h, w)
        return RleSet(h, w, counts, offs)
    flat = dx >= dy
    flip = (flat & (xs > xe)) | (~flat & (ys > ye))
    xs, xe = np.where(flip, xe, xs), np.where(flip, xs, xe)
    ys, ye = np.where(flip, ye, ys), np.where(flip, ys, ye)
    s = np.where(flat, ye - ys, xe - xs) / np.maximum(np.where(flat, dx, dy), 1).astype(float)
    fx, fy = xs.astype(np.float64), ys.astype(np.float64)

    def col(e, t):  # u at step t of steep edges e (C: (int)(xs + s*t + .5))
        return np.trunc(fx[e] + s[e] * t + 0.5).astype(np.int64)

    def row(e, t):  # v at step t of flat edges e
        return np.trunc(fy[e] + s[e] * t + 0.5).astype(np.int64)

    # the range of u along each edge, limited to the image's columns
    last = np.where(flat, dx, dy)
    u0 = np.where(flat, xs, np.trunc(fx + 0.5).astype(np.int64))
    u1 = np.where(flat, xe, np.trunc(fx + s * last + 0.5).astype(np.int64))
    lo_u, hi_u = np.minimum(u0, u1), np.maximum(u0, u1) - 1  # m in [lo_u, hi_u]
    W = w[pv]
    x_lo = np.maximum(-((2 - lo_u) // SCALE), 0)  # ceil((lo_u - 2) / 5)
    x_hi = np.minimum((hi_u - 2) // SCALE, W - 1)
    n = np.maximum(x_hi - x_lo + 1, 0)
    e, i = _seg(_offsets(n))
    X = x_lo[e] + i
    m = SCALE * X + 2
    fe = flat[e]
    # flat edges: the step from m to m + 1 is t = m - xs + 1
    t_flat = m - xs[e] + 1
    # steep edges: the first t whose u reaches m + 1 (s > 0) or falls to m (s < 0)
    up = s[e] > 0
    lo, hi = np.ones_like(m), last[e].copy()
    st = np.nonzero(~fe)[0]
    lo_s, hi_s, es, ms, ups = lo[st], hi[st], e[st], m[st], up[st]
    while True:
        open_ = lo_s < hi_s
        if not open_.any():
            break
        mid = (lo_s + hi_s) // 2
        u = col(es, mid)
        hit = np.where(ups, u >= ms + 1, u <= ms)
        hi_s = np.where(open_ & hit, mid, hi_s)
        lo_s = np.where(open_ & ~hit, mid + 1, lo_s)
    t = t_flat
    t[st] = lo_s
    yd = np.where(fe, 0, ys[e] + t - 1)
    fl = np.nonzero(fe)[0]
    yd[fl] = np.minimum(row(e[fl], t[fl] - 1), row(e[fl], t[fl]))
    pp = pv[e]
    yd = (yd.astype(np.float64) + 0.5) / SCALE - 0.5
    yd = np.ceil(np.clip(yd, 0, h[pp]))
    pos = X * h[pp] + yd.astype(np.int64)
    # toggles: positions crossed an odd number of times, below h * w
    order = np.lexsort((pos, pp))
    pp, pos = pp[order], pos[order]
    new = np.r_[True, (pp[1:] != pp[:-1]) | (pos[1:] != pos[:-1])] if pos.size else pos > 0
    first = np.nonzero(new)[0]
    mult = np.diff(np.r_[first, pos.size])
    pp, pos = pp[first], pos[first]
    keep = (mult % 2 == 1) & (pos < h[pp] * w[pp])
    counts, offs = _from_toggles(pp[keep], pos[keep], P, h * w)
    return RleSet(h, w, counts, offs)


def _check_polygon(p, where):
    a = np.asarray(p, dtype=np.float64) if isinstance(p, list | tuple) else None
    if a is None or a.ndim != 1 or a.size < 6 or a.size % 2:
        n = len(p) if isinstance(p, list | tuple) else p
        raise CvtoolError(
            f"{where}: a polygon must be a list of at least 3 x, y pairs (6 numbers). Got {n!r}"
            + (" numbers." if isinstance(p, list | tuple) else ".")
        )
    if not np.isfinite(a).all():
        raise CvtoolError(f"{where}: polygon coordinates must be finite numbers.")
    return a.reshape(-1, 2)


def from_polygons(polygons, h: int, w: int):
    """RLE of each polygon, equal to ``pycocotools.mask.frPyObjects(polygons, h, w)``.

    Parameters
    ----------
    polygons : list of lists of numbers ``[x1, y1, x2, y2, ...]`` (>= 3 points each)
    h, w : int
        Image height and width.

    Returns
    -------
    list of dict
        One compressed RLE per polygon (merge them with :func:`merge` for one object).
    """
    polys = [_check_polygon(p, f"polygon {i}") for i, p in enumerate(polygons)]
    P = len(polys)
    return _as_dicts(_polygon_set(polys, np.full(P, h), np.full(P, w)))


# ---------------------------------------------------------------- merge
def _intervals(rs: RleSet):
    """Foreground intervals [start, end) of every mask: (mask, start, end), sorted."""
    cs = _ends(rs)
    seg, r = _runs(rs)
    odd = np.nonzero(r % 2 == 1)[0]
    return seg[odd], cs[odd] - rs.counts[odd], cs[odd]


def _combine(rs: RleSet, group, n_groups, intersect=False) -> RleSet:
    """Union (or intersection) of the masks of each group, canonical runs."""
    group = np.asarray(group, np.int64)
    seg, s, e = _intervals(rs)
    g = group[seg]
    gk = np.concatenate([g, g])
    pk = np.concatenate([s, e])
    dk = np.concatenate([np.ones_like(s), -np.ones_like(e)])
    order = np.lexsort((pk, gk))
    gk, pk, dk = gk[order], pk[order], dk[order]
    last = np.r_[(gk[1:] != gk[:-1]) | (pk[1:] != pk[:-1]), True] if pk.size else pk > 0
    cover = np.cumsum(dk)[last]  # coverage after all events at a position
    gk, pk = gk[last], pk[last]
    need = np.bincount(group, minlength=n_groups) if intersect else np.ones(n_groups, np.int64)
    on = cover >= need[gk]
    before = np.r_[False, on[:-1]] & np.r_[False, gk[1:] == gk[:-1]]
    tog = on != before
    hh = np.zeros(n_groups, np.int64)
    ww = np.zeros(n_groups, np.int64)
    hh[group], ww[group] = rs.h, rs.w
    hw = hh * ww
    tog &= pk < hw[gk]
    counts, offs = _from_toggles(gk[tog], pk[tog], n_groups, hw)
    return RleSet(hh, ww, counts, offs)


def _union_of_parts(rs: RleSet, group, n_groups) -> RleSet:
    """The union of each group's masks (``group`` ascending), as ``COCO.annToRLE``: a
    group of one mask keeps it unchanged, as pycocotools' merge does."""
    multi = np.bincount(group, minlength=n_groups)[group] > 1
    if not multi.any():
        return rs
    one, several = np.nonzero(~multi)[0], np.nonzero(multi)[0]
    g_several, local = np.unique(group[several], return_inverse=True)
    both = RleSet.concat([rs.take(one), _combine(rs.take(several), local, g_several.size)])
    return both.take(np.argsort(np.concatenate([group[one], g_several]), kind="stable"))


def merge(rles, intersect: bool = False) -> dict:
    """Union (or intersection) of RLE masks of one size, as ``pycocotools.mask.merge``.

    One mask comes back unchanged; several give canonical runs (no empty run
    but a leading one), which is what pycocotools gives for canonical input.
    """
    rs = to_set(rles)
    if len(rs) == 0:
        return {"size": [0, 0], "counts": ""}
    if (rs.h != rs.h[0]).any() or (rs.w != rs.w[0]).any():
        raise CvtoolError("merge: the masks must all have the same size.")
    if len(rs) == 1:
        return _as_dicts(rs)[0]
    return _as_dicts(_combine(rs, np.zeros(len(rs), np.int64), 1, intersect))[0]


# ---------------------------------------------------------------- IoU
def pair_iou(dt: RleSet, di, gt: RleSet, gi, crowd, limit: int = 1_000_000):
    """IoU of the pairs (dt[di[p]], gt[gi[p]]) as maskApi.c rleIou, on runs.

    Parameters
    ----------
    dt, gt : RleSet
    di, gi : int arrays (P,)
    crowd : bool array (P,)
        A crowd ground truth divides the intersection by the detection's area.
    limit : int
        Bound on the interval queries of one chunk.

    Returns
    -------
    float64 array (P,)
        0 where the boxes (hence masks) do not overlap, -1 where sizes differ.
    """
    di, gi = np.asarray(di, np.int64), np.asarray(gi, np.int64)
    crowd = np.asarray(crowd, bool)
    out = np.zeros(di.shape[0])
    if di.size == 0:
        return out
    db, gb = _bbox(dt), _bbox(gt)
    D, G = db[di], gb[gi]
    ww = np.minimum(D[:, 0] + D[:, 2], G[:, 0] + G[:, 2]) - np.maximum(D[:, 0], G[:, 0])
    hh = np.minimum(D[:, 1] + D[:, 3], G[:, 1] + G[:, 3]) - np.maximum(D[:, 1], G[:, 1])
    live = np.nonzero((ww > 0) & (hh > 0))[0]
    bad = (dt.h[di[live]] != gt.h[gi[live]]) | (dt.w[di[live]] != gt.w[gi[live]])
    out[live[bad]] = -1.0
    live = live[~bad]
    d_area, g_area = _area(dt), _area(gt)
    k = _kernels(dt.counts.size + gt.counts.size + live.size)
    if k is not None:
        doff, dpi, goff, gpi = (np.ascontiguousarray(a, np.int64)
                                for a in (dt.offsets, di[live], gt.offsets, gi[live]))  # fmt: skip
        dc, gc = np.ascontiguousarray(dt.counts), np.ascontiguousarray(gt.counts)  # any dtype
        inter = k.pair_intersection(dc, doff, dpi, gc, goff, gpi).astype(np.float64)
        da, ga = d_area[di[live]], g_area[gi[live]]
        union = np.where(crowd[live], da, da + ga - inter)
        out[live] = np.where(inter > 0, inter / np.where(inter > 0, union, 1), 0.0)
        return out
    # coverage of the detections on one global axis, mask i shifted by the sizes before it
    dseg, ds, de = _intervals(dt)
    shift = _starts(dt.h * dt.w)
    total = int((dt.h * dt.w).sum())
    S = np.r_[ds + shift[dseg], total]  # a last empty interval keeps the lookups in range
    ln = np.r_[de - ds, 0]
    Lb = np.cumsum(ln) - ln

    def cover(y):  # foreground of all detections in [0, y)
        k = np.searchsorted(S, y, "right") - 1
        kk = np.maximum(k, 0)
        return np.where(k >= 0, Lb[kk] + np.minimum(y - S[kk], ln[kk]), 0)

    gseg, gs, ge = _intervals(gt)
    gn = np.bincount(gseg, minlength=len(gt))
    gstart = _starts(gn)
    d_area, g_area = _area(dt), _area(gt)
    cum = np.cumsum(gn[gi[live]])
    cuts = np.searchsorted(cum, np.arange(limit, cum[-1] if cum.size else 0, limit), "right")
    edges = np.unique(np.r_[0, cuts, live.size])
    for lo, hi in zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True):
        p = live[lo:hi]
        n = gn[gi[p]]
        idx = np.repeat(gstart[gi[p]] - _starts(n), n) + np.arange(n.sum())
        base = np.repeat(shift[di[p]], n)
        part = cover(base + ge[idx]) - cover(base + gs[idx])
        inter = np.bincount(np.repeat(np.arange(p.size), n), weights=part, minlength=p.size)
        da, ga = d_area[di[p]], g_area[gi[p]]
        union = np.where(crowd[p], da, da + ga - inter)
        out[p] = np.where(inter > 0, inter / np.where(inter > 0, union, 1), 0.0)
    return out


def iou(dt, gt, iscrowd):
    """IoU matrix of RLE masks, as ``pycocotools.mask.iou(dt, gt, iscrowd)``.

    Parameters
    ----------
    dt, gt : list of RLE dicts (or RleSet)
    iscrowd : sequence of bool (G,)

    Returns
    -------
    float64 array (D, G)
        For a crowd ground truth the union is the detection's area; -1 where sizes differ.
    """
    d, g = to_set(dt, "detection"), to_set(gt, "ground truth")
    crowd = np.asarray(iscrowd, bool).reshape(-1)
    if crowd.size != len(g):
        raise CvtoolError(f"iscrowd needs one flag per ground truth ({len(g)}). Got {crowd.size}.")
    di, gi = np.divmod(np.arange(len(d) * len(g)), max(len(g), 1))
    return pair_iou(d, di, g, gi, crowd[gi]).reshape(len(d), len(g))


# ---------------------------------------------------------------- COCO segmentation fields
def from_segmentations(segms, h, w, name: str = "annotation") -> RleSet:
    """One RLE per COCO ``segmentation``, as ``COCO.annToRLE`` (polygons merged).

    Parameters
    ----------
    segms : list
        Each a list of polygons, an uncompressed RLE (``counts`` list) or a
        compressed one (``counts`` string).
    h, w : int arrays (N,)
        Image height and width of each (used by polygons; -1 = unknown).

    Raises
    ------
    CvtoolError
        Polygons with fewer than 3 points, counts not summing to h * w, malformed entries.
    """
    h = np.asarray(h, np.int64).reshape(-1)
    w = np.asarray(w, np.int64).reshape(-1)
    if segms and set(map(type, segms)) == {dict}:
        return to_set(segms, name)  # all RLE (results are); to_set names a dict without counts
    poly_i, polys, rle_i, rles = [], [], [], []
    for i, s in enumerate(segms):
        where = f"{name} {i}"
        if isinstance(s, list):
            if not s:
                raise CvtoolError(f"{where}: 'segmentation' is an empty list of polygons.")
            if h[i] < 0 or w[i] < 0:
                raise CvtoolError(f"{where}: polygons need the image's 'height' and 'width'.")
            for p in s:
                polys.append(_check_polygon(p, where))
                poly_i.append(i)
        elif isinstance(s, dict) and "counts" in s:
            rle_i.append(i)
            rles.append(s)
        else:
            raise CvtoolError(
                f"{where}: 'segmentation' must be a list of polygons or an RLE with "
                f"'size' and 'counts'. Got {type(s).__name__}."
            )
    parts, where = [], []
    if polys:
        pi = np.array(poly_i, np.int64)
        per_poly = _polygon_set(polys, h[pi], w[pi])
        ann, group = np.unique(pi, return_inverse=True)
        parts.append(_union_of_parts(per_poly, group, ann.size))
        where.append(ann)
    if rles:
        parts.append(to_set(rles, name, rle_i))
        where.append(np.array(rle_i, np.int64))
    if not parts:
        return RleSet(*(np.zeros(0, np.int64) for _ in range(3)), np.zeros(1, np.int64))
    order = np.concatenate(where)
    if len(parts) == 1 and (order == np.arange(order.size)).all():
        return parts[0]
    return RleSet.concat(parts).take(np.argsort(order, kind="stable"))
