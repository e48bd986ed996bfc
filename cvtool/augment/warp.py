"""Batched affine resampling: each image of a batch through its own matrix, in one gather.

Output pixel centres go through each image's inverse matrix (output -> input);
the source coordinates are folded into a padded copy of the whole batch as the
fill mode says, then the pixels are gathered (nearest) or interpolated
(bilinear; single-channel uint8 in 8-bit fixed point), a chunk of images per
vectorised step, on NumPy or CuPy. Coordinate and fill conventions are in the
``cvtool.augment`` docstring.

Left out: sampling parameters and building matrices (``params.py``), boxes
(``boxes.py``), bicubic interpolation.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from cvtool.backend import array_module
from cvtool.errors import CvtoolError, check_choice

INTERPOLATIONS = ("bilinear", "nearest")
FILL_MODES = ("constant", "nearest", "reflect", "wrap")
_PAD_MODE = {"constant": "constant", "nearest": "edge", "reflect": "symmetric", "wrap": "wrap"}


def warp_affine(
    x,
    inverse,
    *,
    interpolation: str = "bilinear",
    fill: str = "constant",
    cval: float = 0.0,
    xp=None,
    chunk: int | None = None,
):
    """Resample every image of a batch through its own affine matrix.

    Parameters
    ----------
    x : (N, H, W) or (N, H, W, C) uint8 or float images (NumPy or CuPy).
    inverse : (N, 2, 3) or (N, 3, 3) matrices mapping OUTPUT (x, y) pixel
        centres to INPUT coordinates (what scipy's affine_transform takes, in
        (x, y) order instead of (row, col)).
    interpolation : 'bilinear' or 'nearest'.
    fill : 'constant', 'nearest', 'reflect' or 'wrap' (see the module docstring).
    cval : the constant fill value (in the images' units: 0..255 for uint8).
    xp : array module; default that of x.
    chunk : images per vectorised step (bounded memory, cache-sized on the CPU).

    Returns
    -------
    Array of x's shape, dtype and module. Float images are interpolated in
    their own precision (float64 agrees with scipy to rounding). uint8 images
    are rounded to nearest; single-channel uint8 bilinear uses 8-bit
    fixed-point weights (error before rounding < 1, so at most one grey level
    from the correctly rounded value; exact for identity, flips, quarter turns
    and whole-pixel shifts).
    """
    check_choice("interpolation", interpolation, INTERPOLATIONS)
    check_choice("fill", fill, FILL_MODES)
    xp = array_module(x) if xp is None else xp
    x = xp.asarray(x)
    if x.ndim not in (3, 4) or x.shape[0] != len(inverse):
        raise CvtoolError(
            f"Images must be (N, H, W) or (N, H, W, C) with one matrix each; got {x.shape} "
            f"and {len(inverse)} matrices."
        )
    n, h, w = x.shape[:3]
    channels = 1 if x.ndim == 3 else x.shape[3]
    work = np.float64 if x.dtype == np.float64 else np.float32
    if x.dtype == np.uint8 and not 0 <= cval <= 255:
        raise CvtoolError(
            f"The 'cval' parameter must lie in [0, 255] for uint8 images. Got {cval}."
        )
    if chunk is None:
        # CPU: ~64k pixels per step stays in L2; GPU: big steps, bounded memory
        chunk = max(1, (2**16 if xp is np else 2**24) // (h * w))
    chunk = max(1, min(chunk, n))
    hp, wp = h + 3, w + 3  # padding: 1 before, 2 after (the +1 neighbour of the last clip)
    size = hp * wp
    # One padded copy of the batch, flat, with wp + 1 spare pixels at the end so that the
    # 2x2 neighbourhood of every padded pixel i is i, i + 1, i + wp, i + wp + 1.
    buf = xp.full((n * size + wp + 1, channels), cval, dtype=x.dtype)
    padded = buf[: n * size].reshape(n, hp, wp, channels)
    xc = x.reshape(n, h, w, channels)
    if fill == "constant":
        padded[:, 1 : h + 1, 1 : w + 1] = xc
    else:
        padded[...] = xp.pad(xc, ((0, 0), (1, 2), (1, 2), (0, 0)), mode=_PAD_MODE[fill])
    if array_module(inverse) is np:  # host matrices: one upload of (N, 2, 3)
        a = xp.asarray(np.asarray(inverse, dtype=np.float64)[:, :2, :], dtype=work)
    else:  # already on the device: no round trip through the host
        a = inverse[:, :2, :].astype(work)
    # output pixel centres as homogeneous columns: coordinates = a @ grid, one batched matmul
    # (short rows make broadcasting slow); long rows broadcast instead, which also keeps a
    # multi-threaded BLAS out of the loop
    by_matmul = w < 64 or xp is not np
    grid = _grid(xp, h, w, np.dtype(work))  # (3, H*W), made once per size
    gx, gy = grid[0].reshape(1, 1, h, w)[..., :1, :], grid[1].reshape(1, 1, h, w)[..., :1]
    out = xp.empty_like(x)
    fixed = x.dtype == np.uint8 and channels == 1 and interpolation == "bilinear"
    prescaled = fixed and fill in ("constant", "nearest")
    if prescaled:  # coordinates straight in 1/256 pixel (see _bilinear_fixed)
        a = a * 256.0
        a[:, :, 2] += 256.5
    a = xp.ascontiguousarray(a.transpose(1, 0, 2))  # (2, N, 3): x and y rows apart
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        m, lo = stop - start, start * size
        ac = a[:, start:stop]  # (2, m, 3)
        if by_matmul:
            coords = xp.matmul(ac, grid)  # (2, m, H*W)
        else:
            coords = ac[..., 0, None, None] * gx + (
                ac[..., 1, None, None] * gy + ac[..., 2, None, None]
            )
        sx = _fold(coords[0].reshape(m, h, w), w, fill, xp, prescaled)  # source x, (m, H, W)
        sy = _fold(coords[1].reshape(m, h, w), h, fill, xp, prescaled)
        if fixed and not prescaled:
            sx, sy = (sx + 1.0) * 256.0 + 0.5, (sy + 1.0) * 256.0 + 0.5
        oc = out[start:stop].reshape(m, h, w, channels)
        if fixed:
            flat = buf[lo : lo + m * size + wp + 1, 0]
            oc[..., 0] = _bilinear_fixed(flat, sx, sy, size, wp, xp)
            continue
        if interpolation == "nearest":
            sx += 0.5
            sy += 0.5
        fx0, fy0 = xp.floor(sx), xp.floor(sy)
        # flat index of the padded top-left neighbour (+1 row and column of padding); the
        # float holds the integer exactly (float64 once a chunk passes 2**24 pixels)
        exact = work if m * size < 2**24 else np.float64
        base = (xp.arange(m, dtype=exact) * size + (wp + 1))[:, None, None]
        idx = (fy0.astype(exact, copy=False) * wp + fx0 + base).astype(xp.int64)  # (m, H, W)
        gather = _gatherer(buf[lo:], idx, xp)
        if interpolation == "nearest":
            oc[...] = gather(0).reshape(oc.shape)
            continue
        tx, ty = sx - fx0, sy - fy0  # (m, H, W)
        if channels > 1:
            tx, ty = tx[..., None], ty[..., None]
        v00, v01 = gather(0).astype(work, copy=False), gather(1).astype(work, copy=False)
        v10, v11 = gather(wp).astype(work, copy=False), gather(wp + 1).astype(work, copy=False)
        top = v00 + tx * (v01 - v00)
        val = top + ty * ((v10 + tx * (v11 - v10)) - top)
        if x.dtype == np.uint8:
            val += 0.5  # round to nearest: values are convex combinations in [0, 255]
        oc[...] = (val if channels > 1 else val[..., None]).astype(x.dtype, copy=False)
    return out


@lru_cache(maxsize=8)
def _grid(xp, h: int, w: int, work):
    """Output pixel centres (x, y, 1) as (3, H*W) columns on xp, cached per size (read-only)."""
    return xp.stack(
        [xp.tile(xp.arange(w, dtype=work), h), xp.repeat(xp.arange(h, dtype=work), w)]
        + [xp.ones(h * w, dtype=work)]
    )


def _gatherer(flat, idx, xp):
    """gather(offset): the pixels at flat index idx + offset, (m, H, W) or (m, H, W, C).

    One channel: a 1-D take. Several channels on NumPy: each pixel's C values
    viewed as one opaque item, so the take copies whole pixels (much faster
    than fancy indexing of rows); on CuPy, fancy indexing.
    """
    channels = flat.shape[1]
    if channels == 1:
        plane = flat[:, 0]
        return lambda offset: xp.take(plane[offset:], idx)
    if xp is np:
        pixel = np.dtype((np.void, channels * flat.dtype.itemsize))
        items = np.ascontiguousarray(flat).view(pixel).reshape(-1)
        return lambda offset: (
            np.take(items[offset:], idx).view(flat.dtype).reshape(*idx.shape, channels)
        )
    return lambda offset: flat[offset:][idx]


def _bilinear_fixed(flat, sx, sy, size: int, wp: int, xp):
    """Bilinear uint8 resampling in 8-bit fixed point, two pixels per 32-bit operation.

    flat : (m * size + wp + 1,) uint8, the padded images of the chunk.
    sx, sy : (m, H, W) source coordinates as ``256 (s + 1) + 1/2`` (one pixel of
    padding, rounding folded in), already folded into the padded range.

    Each padded pixel's 2x2 neighbourhood is packed into one uint32, so one
    gather fetches all four; the two horizontal interpolations then run at once
    in the 16-bit halves of a uint32 (no lane overflows: 255 * 256 < 2**16).
    Returns (m, H, W) uint32 values in [0, 255].
    """
    m = sx.shape[0]
    k = m * size
    f = flat.astype(xp.uint32)
    words = f[:k] | (f[1 : k + 1] << 8) | (f[wp : k + wp] << 16) | (f[wp + 1 : k + wp + 1] << 24)
    ix = sx.astype(xp.int32).view(xp.uint32)  # truncation of s + 1/2: rounded to 1/256
    iy = sy.astype(xp.int32).view(xp.uint32)
    wx, wy = ix & 255, iy & 255  # weights of the right / lower neighbours, in 1/256
    ix >>= 8
    iy >>= 8
    iy *= wp
    iy += ix
    iy += (xp.arange(m, dtype=xp.uint32) * size)[:, None, None]  # image offsets in the chunk
    g = xp.take(words, iy.astype(xp.int64))  # (m, H, W): v00 | v01 << 8 | v10 << 16 | v11 << 24
    right = (g >> 8) & 0x00FF00FF  # (v01, v11) in 16-bit lanes
    g &= 0x00FF00FF  # (v00, v10)
    right *= wx
    wx -= 256  # modulo 2**32: g * (wx - 256) == -g * (256 - wx)
    g *= wx
    right -= g  # lanes: 256 * (top row, bottom row) interpolated along x
    top = right & 0xFFFF
    right >>= 16
    right *= wy
    wy -= 256
    top *= wy
    right -= top  # 65536 * value
    right += 32768
    right >>= 16
    return right


def _fold(s, size: int, fill: str, xp, fixed: bool = False):
    """Map source coordinates into the range the padded image answers for this fill mode.

    ``fixed``: s is in the fixed-point units of :func:`_bilinear_fixed`,
    ``256 (s + 1) + 1/2`` (constant and nearest fills only).
    """
    if fill in ("constant", "nearest"):
        # constant: beyond one pixel outside, both neighbours are the fill value
        lo, hi = (-1.0, float(size)) if fill == "constant" else (0.0, float(size - 1))
        if fixed:
            lo, hi = 256.0 * (lo + 1) + 0.5, 256.0 * (hi + 1) + 0.5
        return xp.clip(s, lo, hi, out=s)
    assert not fixed, "wrap and reflect fold in pixel units"
    if fill == "wrap":
        return xp.remainder(s, float(size), out=s)
    # reflect (half-sample symmetric, period 2*size), folded into [-0.5, size - 0.5]
    u = xp.remainder(s + 0.5, float(2 * size))
    return xp.where(u < size, u, 2 * size - u) - 0.5
