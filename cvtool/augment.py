"""Seeded, batched geometric augmentation of images and of their boxes.

Every image gets ONE affine matrix, composed from parameters sampled per image
from ranges: horizontal / vertical flip, rotation, zoom, stretch (x and y
scale), shear and translation. The whole batch is then resampled at once by a
gather at computed coordinates (no Python loop per image), with bilinear or
nearest interpolation and a fill mode, on NumPy or CuPy (``xp``).

Conventions (the same as ``scipy.ndimage.affine_transform``):

- Pixel centres sit at integer coordinates: column ``j`` is ``x = j``, row ``i``
  is ``y = i``; ``y`` points down. Matrices act on ``(x, y, 1)``.
- Rotation, zoom, stretch, shear and flips act about the image centre
  ``((W - 1) / 2, (H - 1) / 2)``. Positive rotation is COUNTER-CLOCKWISE as the
  image is displayed, so rotating by 90 degrees equals ``np.rot90(image)``.
- Zoom > 1 magnifies. Shear is an x-shear by an angle: ``x' = x + tan(shear) y``.
  Translation is in pixels, positive moves the content right / down.
- Forward matrix (input -> output) ``T(c + t) R Sh S F T(-c)``; resampling uses
  its inverse (output -> input), built in closed form so that identity
  parameters, flips and whole-pixel shifts are exact.
- Fill modes, in scipy's names: ``constant`` = ``grid-constant`` (outside pixels
  are ``cval`` and take part in the interpolation), ``nearest`` = ``nearest``,
  ``reflect`` = ``reflect`` (d c b a | a b c d | d c b a), ``wrap`` =
  ``grid-wrap`` (periodic).
- Boxes are ``(x1, y1, x2, y2)`` in pixel-EDGE coordinates (the image spans
  ``[0, W] x [0, H]``, pixel ``j`` covers ``[j, j + 1]``), as in COCO / albumentations.

For a training loop (train-cnn uses this)::

    rng = np.random.default_rng(seed)
    x_aug = random_affine_batch(x, rng, rotation=10, shift=2, zoom=0.1, hflip=0.5, xp=xp)

``x`` is (N, H, W) or (N, H, W, C), uint8 or float, NumPy or CuPy; the result
has the same shape, dtype and array module. Parameters are sampled on the host
from ``rng`` (a NumPy Generator), so a seed gives the same result everywhere.

Left out: perspective and elastic transforms, colour / intensity changes,
bicubic interpolation, masks and keypoints.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from cvtool.backend import array_module, to_numpy
from cvtool.errors import CvtoolError
from cvtool.fileio import atomic_write_text

PARAM_NAMES = (
    "hflip", "vflip", "rotation", "zoom", "stretch_x", "stretch_y", "shear",
    "translate_x", "translate_y",
)  # fmt: skip
INTERPOLATIONS = ("bilinear", "nearest")
FILL_MODES = ("constant", "nearest", "reflect", "wrap")
PRESETS = ("nielsen-expand",)
_PAD_MODE = {"constant": "constant", "nearest": "edge", "reflect": "symmetric", "wrap": "wrap"}


# ---------------------------------------------------------------- ranges and sampling


def as_range(name: str, value, kind: str = "symmetric") -> tuple[float, float]:
    """A (low, high) range from a number or a pair.

    ``kind='symmetric'`` (angles, shifts): ``v -> (-v, v)``, v >= 0.
    ``kind='scale'`` (zoom, stretch): ``d -> (1 - d, 1 + d)``, 0 <= d < 1, like Keras;
    an explicit pair must be positive.

    >>> as_range("rotation", 15)
    (-15.0, 15.0)
    >>> as_range("zoom", (0.9, 1.1), "scale")
    (0.9, 1.1)
    """
    if isinstance(value, str):
        parts = [p for p in value.replace(":", ",").split(",") if p.strip()]
        try:
            nums = [float(p) for p in parts]
        except ValueError:
            nums = []
        if len(nums) not in (1, 2):
            raise CvtoolError(
                f"The '{name}' parameter must be a number or 'low,high'. Got {value!r} instead."
            )
        value = nums[0] if len(nums) == 1 else tuple(nums)
    if isinstance(value, tuple | list):
        if len(value) != 2:
            raise CvtoolError(f"The '{name}' parameter must be a (low, high) pair. Got {value!r}.")
        lo, hi = float(value[0]), float(value[1])
        if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
            raise CvtoolError(
                f"The '{name}' parameter must be a finite range with low <= high. Got {value!r}."
            )
        if kind == "scale" and lo <= 0:
            raise CvtoolError(
                f"The '{name}' parameter must be a range of factors > 0. Got {value!r}."
            )
        return lo, hi
    v = float(value)
    if kind == "scale":
        if not 0 <= v < 1:
            raise CvtoolError(
                f"The '{name}' parameter must be a spread in [0, 1) (giving 1-d..1+d) "
                f"or a 'low,high' pair. Got {value!r} instead."
            )
        return 1.0 - v, 1.0 + v
    if not (math.isfinite(v) and v >= 0):
        raise CvtoolError(
            f"The '{name}' parameter must be a number >= 0 (giving -v..v) or 'low,high'. Got {value!r}."
        )
    return (-v if v else 0.0), v


def as_probability(name: str, value) -> float:
    """A flip probability: True -> 0.5, False -> 0, else a number in [0, 1]."""
    if value is True or value is False:
        return 0.5 if value else 0.0
    p = float(value)
    if not 0 <= p <= 1:
        raise CvtoolError(f"The '{name}' parameter must be a probability in [0, 1]. Got {value!r}.")
    return p


@dataclass(frozen=True)
class Ranges:
    """The ranges every per-image parameter is sampled from (uniformly; flips by probability).

    Angles in degrees (rotation positive = counter-clockwise), translations in pixels.
    """

    hflip: float = 0.0
    vflip: float = 0.0
    rotation: tuple[float, float] = (0.0, 0.0)
    zoom: tuple[float, float] = (1.0, 1.0)
    stretch_x: tuple[float, float] = (1.0, 1.0)
    stretch_y: tuple[float, float] = (1.0, 1.0)
    shear: tuple[float, float] = (0.0, 0.0)
    translate_x: tuple[float, float] = (0.0, 0.0)
    translate_y: tuple[float, float] = (0.0, 0.0)

    def to_dict(self) -> dict:
        return asdict(self)


def make_ranges(
    *,
    rotation=0.0,
    zoom=0.0,
    stretch_x=0.0,
    stretch_y=0.0,
    shear=0.0,
    translate=0.0,
    translate_unit: str = "px",
    hflip=0.0,
    vflip=0.0,
    image_shape: tuple[int, ...] | None = None,
) -> Ranges:
    """Validated :class:`Ranges` from user values (see :func:`as_range` for the forms).

    ``translate`` applies to x and y (sampled independently); with
    ``translate_unit='fraction'`` it is a fraction of the width / height and
    ``image_shape`` (H, W[, C]) is required.
    """
    tx = ty = as_range("translate", translate)
    if translate_unit == "fraction":
        if image_shape is None:
            raise CvtoolError("A fractional 'translate' needs the image shape.")
        if max(abs(tx[0]), abs(tx[1])) > 1:
            raise CvtoolError(f"The 'translate' fraction must lie in [-1, 1]. Got {translate!r}.")
        h, w = image_shape[:2]
        tx, ty = (tx[0] * w, tx[1] * w), (ty[0] * h, ty[1] * h)
    elif translate_unit != "px":
        raise CvtoolError(
            f"The 'translate_unit' parameter must be 'px' or 'fraction'. Got {translate_unit!r}."
        )
    return Ranges(
        hflip=as_probability("hflip", hflip),
        vflip=as_probability("vflip", vflip),
        rotation=as_range("rotation", rotation),
        zoom=as_range("zoom", zoom, "scale"),
        stretch_x=as_range("stretch_x", stretch_x, "scale"),
        stretch_y=as_range("stretch_y", stretch_y, "scale"),
        shear=as_range("shear", shear),
        translate_x=tx,
        translate_y=ty,
    )


def sample_params(n: int, ranges: Ranges, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Draw the parameters of n images: a dict name -> (n,) host array (flips bool).

    Every parameter is always drawn, in PARAM_NAMES order, so the stream a seed
    gives does not depend on which ranges are degenerate.
    """
    params = {}
    for name in PARAM_NAMES:
        r = getattr(ranges, name)
        if name in ("hflip", "vflip"):
            params[name] = rng.random(n) < r
        else:
            params[name] = rng.uniform(r[0], r[1], n)
    return params


def identity_params(n: int) -> dict[str, np.ndarray]:
    """Parameters that leave n images unchanged."""
    ones = {"zoom", "stretch_x", "stretch_y"}
    return {
        k: np.zeros(n, bool) if k in ("hflip", "vflip") else np.full(n, 1.0 if k in ones else 0.0)
        for k in PARAM_NAMES
    }


def nielsen_params(n: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Nielsen's expand_mnist.py: each image, then shifted 1 px down, up, right, left.

    Returns (source (5n,), params) with the outputs grouped per source image.
    """
    source = np.repeat(np.arange(n), 5)
    params = identity_params(5 * n)
    params["translate_y"] = np.tile([0.0, 1.0, -1.0, 0.0, 0.0], n)
    params["translate_x"] = np.tile([0.0, 0.0, 0.0, 1.0, -1.0], n)
    return source, params


def _concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([p[k] for p in parts]) for k in PARAM_NAMES}


def expand_params(
    n: int, ranges: Ranges, copies: int, keep_original: bool, rng: np.random.Generator
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Sources and parameters for `copies` augmentations per image (plus the original).

    Returns (source (M,), params of (M,)) grouped per source image:
    [original,] copy 1, ..., copy k; M = n * (copies + keep_original).
    """
    if copies < 0 or (copies == 0 and not keep_original):
        raise CvtoolError(
            f"The 'copies' parameter must be >= 1 (or 0 with keep_original). Got {copies}."
        )
    k = copies + int(keep_original)
    sampled = sample_params(n * copies, ranges, rng)
    params = identity_params(n * k)
    rows = np.arange(n * k).reshape(n, k)[:, int(keep_original) :].ravel()  # augmented slots
    for name in PARAM_NAMES:
        params[name][rows] = sampled[name]
    return np.repeat(np.arange(n), k), params


# ---------------------------------------------------------------- matrices


def _cos_sin(degrees: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rad = np.deg2rad(degrees)
    c, s = np.cos(rad), np.sin(rad)
    c[np.abs(c) < 1e-12] = 0.0  # exact quarter turns: rot90 is a permutation
    s[np.abs(s) < 1e-12] = 0.0
    return c, s


def affine_matrices(
    params: dict[str, np.ndarray], image_shape: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Forward and inverse matrices of each image's parameters.

    Parameters
    ----------
    params : dict name -> (N,) arrays, names PARAM_NAMES.
    image_shape : (H, W) or (H, W, C).

    Returns
    -------
    forward, inverse : (N, 3, 3) float64, acting on (x, y, 1) pixel-centre
        coordinates; forward maps input to output, inverse output to input.
    """
    h, w = image_shape[:2]
    p = {
        k: np.asarray(params[k], dtype=bool if k in ("hflip", "vflip") else np.float64)
        for k in PARAM_NAMES
    }
    n = len(p["rotation"])
    c, s = _cos_sin(p["rotation"])
    t = np.tan(np.deg2rad(p["shear"]))
    fx = np.where(p["hflip"], -1.0, 1.0)
    fy = np.where(p["vflip"], -1.0, 1.0)
    sx, sy = p["zoom"] * p["stretch_x"], p["zoom"] * p["stretch_y"]
    if np.any(sx <= 0) or np.any(sy <= 0):
        raise CvtoolError("The 'zoom' and 'stretch' parameters must be > 0.")

    dx, dy = sx * fx, sy * fy  # S F, diagonal
    # R = [[c, s], [-s, c]] turns counter-clockwise on screen (y down); Sh = [[1, t], [0, 1]].
    # Closed forms (elementwise, no batched 2x2 matmuls): forward R Sh D, inverse D^-1 Sh^-1 R^T.
    forward, inverse = np.zeros((n, 3, 3)), np.zeros((n, 3, 3))
    forward[:, 0, 0], forward[:, 0, 1] = c * dx, (c * t + s) * dy
    forward[:, 1, 0], forward[:, 1, 1] = -s * dx, (c - s * t) * dy
    inverse[:, 0, 0], inverse[:, 0, 1] = (c - t * s) / dx, (-s - t * c) / dx
    inverse[:, 1, 0], inverse[:, 1, 1] = s / dy, c / dy
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0  # the image centre
    tx, ty = cx + p["translate_x"], cy + p["translate_y"]
    forward[:, 0, 2] = tx - (forward[:, 0, 0] * cx + forward[:, 0, 1] * cy)
    forward[:, 1, 2] = ty - (forward[:, 1, 0] * cx + forward[:, 1, 1] * cy)
    inverse[:, 0, 2] = cx - (inverse[:, 0, 0] * tx + inverse[:, 0, 1] * ty)
    inverse[:, 1, 2] = cy - (inverse[:, 1, 0] * tx + inverse[:, 1, 1] * ty)
    forward[:, 2, 2] = inverse[:, 2, 2] = 1.0
    return forward, inverse


# ---------------------------------------------------------------- resampling


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise CvtoolError(
            f"The '{name}' parameter must be one of {', '.join(choices)}. Got {value!r} instead."
        )


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
    _check_choice("interpolation", interpolation, INTERPOLATIONS)
    _check_choice("fill", fill, FILL_MODES)
    xp = xp or array_module(x)
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
    a = xp.asarray(to_numpy(inverse).astype(np.float64)[:, :2, :], dtype=work)  # (N, 2, 3)
    # output pixel centres as homogeneous columns: coordinates = a @ grid, one batched matmul
    # (short rows make broadcasting slow); long rows broadcast instead, which also keeps a
    # multi-threaded BLAS out of the loop
    by_matmul = w < 64 or xp is not np
    grid = xp.stack(
        [xp.tile(xp.arange(w, dtype=work), h), xp.repeat(xp.arange(h, dtype=work), w)]
        + [xp.ones(h * w, dtype=work)]
    )  # (3, H*W)
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


# ---------------------------------------------------------------- high-level API


def apply_params(x, params, *, interpolation="bilinear", fill="constant", cval=0.0, xp=None):
    """Augment x (N, H, W[, C]) with one parameter set per image (dict of (N,) arrays)."""
    xp = xp or array_module(x)
    _, inverse = affine_matrices(params, tuple(x.shape[1:]))
    return warp_affine(x, inverse, interpolation=interpolation, fill=fill, cval=cval, xp=xp)


def random_affine_batch(
    x,
    rng: np.random.Generator,
    *,
    rotation=0.0,
    shift=0.0,
    zoom=0.0,
    stretch_x=0.0,
    stretch_y=0.0,
    shear=0.0,
    hflip=False,
    vflip=False,
    interpolation: str = "bilinear",
    fill: str = "constant",
    cval: float = 0.0,
    xp=None,
    return_params: bool = False,
):
    """Random affine augmentation of a batch, one matrix per image (for training loops).

    Parameters
    ----------
    x : (N, H, W) or (N, H, W, C) uint8 or float images, NumPy or CuPy.
    rng : NumPy Generator; the parameters are drawn from it on the host.
    rotation : degrees, v -> uniform(-v, v) or (low, high); positive = counter-clockwise.
    shift : pixels, v -> uniform(-v, v) for x and y independently, or (low, high).
    zoom : d -> uniform(1 - d, 1 + d) or (low, high); > 1 magnifies.
    stretch_x, stretch_y, shear : as zoom (per axis) and as rotation (x-shear angle).
    hflip, vflip : flip probability (True = 0.5).
    interpolation, fill, cval : see :func:`warp_affine`.
    return_params : also return the sampled parameters (dict of (N,) arrays).

    Returns
    -------
    x_aug with x's shape, dtype and module (and the parameters if asked).
    """
    ranges = make_ranges(
        rotation=rotation, zoom=zoom, stretch_x=stretch_x, stretch_y=stretch_y, shear=shear,
        translate=shift, hflip=hflip, vflip=vflip,
    )  # fmt: skip
    params = sample_params(len(x), ranges, rng)
    out = apply_params(x, params, interpolation=interpolation, fill=fill, cval=cval, xp=xp)
    return (out, params) if return_params else out


def nielsen_expand(x, xp=None):
    """Nielsen's five-fold expansion: (N, H, W[, C]) -> (5N, ...), grouped per image.

    Each image, then copies shifted by one pixel down, up, right and left, the
    vacated row or column zero. Returns (x_out, source (5N,)).
    """
    source, params = nielsen_params(len(x))
    xp = xp or array_module(x)
    x_rep = xp.asarray(x)[xp.asarray(source)]
    return apply_params(
        x_rep, params, interpolation="nearest", fill="constant", cval=0, xp=xp
    ), source


# ---------------------------------------------------------------- parameters on disk


SETTINGS = ("interpolation", "fill", "cval")  # per run; repeated on every parameters line


def params_to_lines(
    source: np.ndarray, params: dict[str, np.ndarray], settings: dict | None = None
) -> str:
    """JSON lines, one per output image: {"index", "source", <SETTINGS>, <PARAM_NAMES>}."""
    cols = [np.asarray(params[k]).tolist() for k in PARAM_NAMES]
    head = {k: settings[k] for k in SETTINGS} if settings else {}
    lines = []
    for i, (src, *vals) in enumerate(zip(np.asarray(source).tolist(), *cols, strict=True)):
        row = {"index": i, "source": src, **head, **dict(zip(PARAM_NAMES, vals, strict=True))}
        lines.append(json.dumps(row))
    return "\n".join(lines) + "\n"


def write_params(
    path: str | Path,
    source: np.ndarray,
    params: dict[str, np.ndarray],
    settings: dict | None = None,
) -> None:
    """Write the per-image parameters (and the run's interpolation, fill, cval) as JSON lines."""
    atomic_write_text(path, params_to_lines(source, params, settings))


def read_params(
    path: str | Path, n_source: int | None = None
) -> tuple[np.ndarray, dict[str, np.ndarray], dict]:
    """Read a parameters file written by :func:`write_params` (for replay).

    Returns (source (M,), params of (M,), settings), in file order; settings
    holds the interpolation, fill and cval of the first line (empty if absent).

    Raises
    ------
    CvtoolError
        Missing file, a line that is not a JSON object with every parameter, or
        a source index outside [0, n_source).
    """
    path = Path(path)
    if not path.is_file():
        raise CvtoolError(f"Parameters file not found: {path}")
    rows, settings = [], None
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            rows.append([int(row["source"])] + [row[k] for k in PARAM_NAMES])
            if settings is None:
                settings = {k: row[k] for k in SETTINGS if k in row}
        except (ValueError, KeyError, TypeError) as exc:
            raise CvtoolError(
                f"{path}:{lineno}: not a parameters line (JSON with 'source' and "
                f"{', '.join(PARAM_NAMES)}): {type(exc).__name__} {exc}"
            ) from None
    if not rows:
        raise CvtoolError(f"Parameters file {path} holds no lines.")
    source = np.array([r[0] for r in rows], dtype=np.int64)
    if n_source is not None and (source.min() < 0 or source.max() >= n_source):
        raise CvtoolError(
            f"{path}: source indices must lie in [0, {n_source}); got {source.min()}..{source.max()}."
        )
    params = {}
    for j, k in enumerate(PARAM_NAMES, 1):
        dtype = bool if k in ("hflip", "vflip") else np.float64
        try:
            params[k] = np.array([r[j] for r in rows], dtype=dtype)
        except (ValueError, TypeError):
            raise CvtoolError(f"{path}: parameter '{k}' must be a number on every line.") from None
    for k in ("zoom", "stretch_x", "stretch_y"):
        if not np.all(params[k] > 0):
            raise CvtoolError(f"{path}: parameter '{k}' must be > 0 on every line.")
    if "interpolation" in settings:
        _check_choice("interpolation", settings["interpolation"], INTERPOLATIONS)
    if "fill" in settings:
        _check_choice("fill", settings["fill"], FILL_MODES)
    return source, params, settings


# ---------------------------------------------------------------- boxes


@dataclass
class Boxes:
    """Boxes of a set of images: image index, (x1, y1, x2, y2) pixel-edge corners, label."""

    image: np.ndarray  # (B,) int64
    xyxy: np.ndarray  # (B, 4) float64
    label: np.ndarray  # (B,) object (strings, kept as written)

    def __len__(self) -> int:
        return len(self.image)


def transform_boxes(
    xyxy: np.ndarray, forward: np.ndarray, image_shape: tuple[int, ...], min_visibility: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Move boxes through their images' forward matrices.

    The four corners of each box go through the matrix; the result is re-boxed
    (axis-aligned hull), clipped to the image and kept when its visibility
    (clipped area / unclipped area of the new box) is >= min_visibility and
    its clipped area is > 0.

    Parameters
    ----------
    xyxy : (B, 4) boxes in pixel-edge coordinates.
    forward : (B, 3, 3) the forward matrix of each box's image (pixel centres).
    image_shape : (H, W[, C]) of the output images.
    min_visibility : in [0, 1].

    Returns
    -------
    boxes (B, 4) clipped, keep (B,) bool, visibility (B,).
    """
    if not 0 <= min_visibility <= 1:
        raise CvtoolError(
            f"The 'min_visibility' parameter must lie in [0, 1]. Got {min_visibility}."
        )
    h, w = image_shape[:2]
    xyxy = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    x1, y1, x2, y2 = xyxy.T
    corners = (
        np.stack(
            [
                np.stack([x1, y1], -1),
                np.stack([x2, y1], -1),
                np.stack([x1, y2], -1),
                np.stack([x2, y2], -1),
            ],
            1,
        )
        - 0.5
    )  # (B, 4, 2) edge -> centre coordinates
    moved = corners @ np.swapaxes(forward[:, :2, :2], 1, 2) + forward[:, None, :2, 2] + 0.5
    lo, hi = moved.min(1), moved.max(1)  # (B, 2)
    area = np.prod(hi - lo, axis=1)
    clo = np.clip(lo, 0, [w, h])
    chi = np.clip(hi, 0, [w, h])
    clipped_area = np.prod(chi - clo, axis=1)
    vis = np.divide(clipped_area, area, out=np.zeros_like(area), where=area > 0)
    keep = (clipped_area > 0) & (vis >= min_visibility)
    return np.concatenate([clo, chi], 1), keep, vis


def boxes_for_outputs(
    boxes: Boxes, source: np.ndarray, forward: np.ndarray, image_shape, min_visibility: float = 0.0
) -> tuple[Boxes, int]:
    """Boxes of augmented outputs: output i receives the boxes of image source[i].

    Returns (the kept boxes indexed by output image, labels aligned; number dropped).
    """
    source = np.asarray(source)
    order = np.argsort(boxes.image, kind="stable")
    counts = np.bincount(boxes.image, minlength=int(source.max(initial=-1)) + 1)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    per_out = counts[source]  # boxes each output receives
    out_idx = np.repeat(np.arange(len(source)), per_out)
    # ragged arange: position of each pair within its output's box list
    within = np.arange(per_out.sum()) - np.repeat(np.cumsum(per_out) - per_out, per_out)
    box_idx = order[np.repeat(starts[source], per_out) + within]
    xyxy, keep, _ = transform_boxes(
        boxes.xyxy[box_idx], forward[out_idx], image_shape, min_visibility
    )
    kept = Boxes(out_idx[keep], xyxy[keep], boxes.label[box_idx][keep])
    return kept, int((~keep).sum())


def read_boxes(path: str | Path, n_images: int | None = None) -> Boxes:
    """Read a boxes CSV: header ``image,x1,y1,x2,y2,label``, pixel-edge coordinates.

    Raises
    ------
    CvtoolError
        Missing file, wrong header, a value that is not a number, x2 < x1 or
        y2 < y1, or an image index outside [0, n_images).
    """
    import csv

    path = Path(path)
    if not path.is_file():
        raise CvtoolError(f"Boxes file not found: {path}")
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    want = ["image", "x1", "y1", "x2", "y2", "label"]
    if not rows or [c.strip() for c in rows[0]] != want:
        raise CvtoolError(f"{path}: the first line must be the header {','.join(want)}.")
    image, xyxy, label = [], [], []
    for lineno, row in enumerate(rows[1:], 2):
        if not row:
            continue
        if len(row) != 6:
            raise CvtoolError(f"{path}:{lineno}: expected 6 fields, got {len(row)}.")
        try:
            i, coords = int(row[0]), [float(v) for v in row[1:5]]
        except ValueError:
            raise CvtoolError(
                f"{path}:{lineno}: image must be an int and x1,y1,x2,y2 numbers."
            ) from None
        if (
            not all(math.isfinite(v) for v in coords)
            or coords[2] < coords[0]
            or coords[3] < coords[1]
        ):
            raise CvtoolError(f"{path}:{lineno}: a box needs x1 <= x2 and y1 <= y2; got {coords}.")
        if i < 0 or (n_images is not None and i >= n_images):
            raise CvtoolError(f"{path}:{lineno}: image index {i} is outside [0, {n_images}).")
        image.append(i)
        xyxy.append(coords)
        label.append(row[5])
    return Boxes(
        np.array(image, dtype=np.int64),
        np.array(xyxy, dtype=np.float64).reshape(-1, 4),
        np.array(label, dtype=object),
    )


def write_boxes(path: str | Path, boxes: Boxes) -> None:
    """Write boxes in the CSV layout :func:`read_boxes` reads, atomically."""
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["image", "x1", "y1", "x2", "y2", "label"])
    for i, b, lab in zip(
        boxes.image.tolist(), boxes.xyxy.tolist(), boxes.label.tolist(), strict=True
    ):
        writer.writerow([i, *(f"{v:.4f}".rstrip("0").rstrip(".") for v in b), lab])
    atomic_write_text(path, buf.getvalue())


# ---------------------------------------------------------------- data sets and previews


@dataclass
class AugmentResult:
    """An augmented data set and how it was made (see :func:`augment_dataset`)."""

    dataset: object  # cvtool.data.datasets.Dataset: train augmented, test unchanged
    source: np.ndarray  # (M,) training image each output came from
    params: dict[str, np.ndarray]  # (M,) per parameter
    boxes: Boxes | None
    dropped_boxes: int
    seconds: float  # wall time of the resampling (device synchronised)
    settings: dict  # the interpolation, fill and cval used

    def summary(self) -> dict:
        """Counts, the observed parameter ranges and the time, for reports."""
        p = self.params
        observed = {
            k: [float(np.min(p[k])), float(np.max(p[k]))] if len(p[k]) else None
            for k in PARAM_NAMES
            if k not in ("hflip", "vflip")
        }
        doc = {
            "inputs": int(len(np.unique(self.source))),
            "outputs": int(len(self.source)),
            "hflipped": int(np.sum(p["hflip"])),
            "vflipped": int(np.sum(p["vflip"])),
            "observed_ranges": observed,
            "seconds": self.seconds,
            "images_per_second": len(self.source) / self.seconds if self.seconds > 0 else None,
            **self.settings,
        }
        if self.boxes is not None:
            doc["boxes_out"] = len(self.boxes)
            doc["boxes_dropped"] = self.dropped_boxes
        return doc


def augment_dataset(
    ds,
    *,
    ranges: Ranges | None = None,
    preset: str | None = None,
    replay: tuple[np.ndarray, dict[str, np.ndarray], dict] | None = None,
    copies: int = 1,
    keep_original: bool = False,
    seed: int | None = 0,
    interpolation: str = "bilinear",
    fill: str = "constant",
    cval: float = 0.0,
    xp=np,
    boxes: Boxes | None = None,
    min_visibility: float = 0.0,
) -> AugmentResult:
    """Augment the training split of a Dataset; the test split is left untouched.

    Exactly one recipe applies: `replay` (source, params, settings) read from a
    file (its settings, when present, replace interpolation / fill / cval), else
    `preset` ('nielsen-expand'), else `ranges` sampled `copies` times per image
    with the generator ``np.random.default_rng(seed)``. Boxes (indices into the
    training images) follow their images.
    """
    import time

    from cvtool.backend import synchronize
    from cvtool.data.datasets import Dataset

    n = len(ds.x_train)
    if replay is not None:
        source, params, recorded = replay
        interpolation = recorded.get("interpolation", interpolation)
        fill = recorded.get("fill", fill)
        cval = float(recorded.get("cval", cval))
        if len(source) and source.max() >= n:
            raise CvtoolError(
                f"The replayed parameters refer to image {source.max()}; the data has {n}."
            )
    elif preset is not None:
        _check_choice("preset", preset, PRESETS)
        source, params = nielsen_params(n)
        interpolation, fill, cval = "nearest", "constant", 0.0
    else:
        source, params = expand_params(
            n, ranges or Ranges(), copies, keep_original, np.random.default_rng(seed)
        )
    forward, inverse = affine_matrices(params, ds.image_shape)
    t0 = time.perf_counter()
    x_dev = xp.asarray(ds.x_train)[xp.asarray(source)]
    x_aug = warp_affine(x_dev, inverse, interpolation=interpolation, fill=fill, cval=cval, xp=xp)
    synchronize(xp)
    seconds = time.perf_counter() - t0
    out = Dataset(
        ds.name + "-augmented",
        to_numpy(x_aug),
        ds.y_train[source],
        ds.x_test,
        ds.y_test,
        ds.class_names,
    )
    kept, dropped = (None, 0)
    if boxes is not None:
        kept, dropped = boxes_for_outputs(boxes, source, forward, ds.image_shape, min_visibility)
    settings = {"interpolation": interpolation, "fill": fill, "cval": cval}
    return AugmentResult(out, source, params, kept, dropped, seconds, settings)


def preview_grid(
    originals: np.ndarray,
    augmented: np.ndarray,
    source: np.ndarray,
    rows: int = 8,
    scale: int = 3,
    boxes: Boxes | None = None,
    original_boxes: Boxes | None = None,
) -> np.ndarray:
    """An RGB uint8 picture: each row an original image, then its augmentations.

    Parameters
    ----------
    originals : (N, H, W[, C]) uint8 training images.
    augmented : (M, H, W[, C]) uint8 outputs; source (M,) their originals.
    rows : how many originals to show (the first ones that have outputs).
    scale : integer up-scaling (nearest) so 28x28 digits are visible.
    boxes, original_boxes : boxes of the outputs / of the originals to draw (red), optional.
    """

    def rgb(img):
        img = img if img.ndim == 3 else img[..., None]
        return np.repeat(img, 3, axis=2) if img.shape[2] == 1 else img[..., :3]

    h, w = originals.shape[1:3]
    shown = np.unique(source)[:rows]
    per_row = max(int((source == s).sum()) for s in shown) if len(shown) else 0
    gap = 2
    cell_h, cell_w = h * scale + gap, w * scale + gap
    canvas = np.full((len(shown) * cell_h + gap, (per_row + 1) * cell_w + 3 * gap, 3), 96, np.uint8)
    for r, s in enumerate(shown):
        outs = np.flatnonzero(source == s)
        tiles = [(originals[s], original_boxes, s)] + [(augmented[o], boxes, o) for o in outs]
        for c, (img, drawn, i) in enumerate(tiles):
            tile = rgb(img).repeat(scale, 0).repeat(scale, 1).copy()
            if drawn is not None:
                for b in drawn.xyxy[drawn.image == i]:
                    x1, y1, x2, y2 = (np.round(b * scale).astype(int) - [0, 0, 1, 1]).clip(
                        0, [w * scale - 1, h * scale - 1] * 2
                    )
                    tile[y1, x1 : x2 + 1] = tile[y2, x1 : x2 + 1] = (255, 0, 0)
                    tile[y1 : y2 + 1, x1] = tile[y1 : y2 + 1, x2] = (255, 0, 0)
            y0 = gap + r * cell_h
            x0 = gap + c * cell_w + (3 * gap if c else 0)  # a wider gap after the original
            canvas[y0 : y0 + h * scale, x0 : x0 + w * scale] = tile
    return canvas


def write_preview(path: str | Path, picture: np.ndarray) -> None:
    """Save an RGB uint8 picture with Pillow (format from the extension), atomically."""
    from PIL import Image

    from cvtool.fileio import atomic_path

    try:
        with atomic_path(path) as tmp:
            Image.fromarray(picture).save(tmp)
    except (ValueError, KeyError) as exc:  # Pillow: unknown extension
        raise CvtoolError(f"Cannot write the preview {path}: {exc}") from None
