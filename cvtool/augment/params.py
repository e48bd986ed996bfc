"""Per-image augmentation parameters: ranges, seeded sampling, affine matrices, files.

The parameters of N images are a dict name -> (N,) host array, one entry per
``PARAM_NAMES`` (flips bool, the rest float64). They are sampled uniformly from
validated :class:`Ranges` with a NumPy Generator (every parameter always drawn,
in ``PARAM_NAMES`` order, so a seed's stream never depends on which ranges are
degenerate), or fixed (identity, Nielsen's one-pixel shifts).
:func:`affine_matrices` turns them into forward / inverse (N, 3, 3) matrices in
closed form; parameters files (JSON lines) record them, with the run's
interpolation, fill and cval, for replay.

Left out: resampling (``warp.py``) and boxes (``boxes.py``).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from cvtool.augment.warp import FILL_MODES, INTERPOLATIONS
from cvtool.errors import CvtoolError, check_choice, check_int, check_number, check_path
from cvtool.fileio import atomic_write_text

PARAM_NAMES = (
    "hflip", "vflip", "rotation", "zoom", "stretch_x", "stretch_y", "shear",
    "translate_x", "translate_y",
)  # fmt: skip
FLIPS = ("hflip", "vflip")  # bool parameters, drawn by probability
SCALES = ("zoom", "stretch_x", "stretch_y")  # factors: identity 1, always > 0
SETTINGS = ("interpolation", "fill", "cval")  # per run; repeated on every parameters line


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
    if kind == "scale":
        v = check_number(name, value, low=0, high=1, high_open=True,
                         hint="A spread d gives 1-d..1+d; or give a 'low,high' pair.")  # fmt: skip
        return 1.0 - v, 1.0 + v
    v = check_number(name, value, low=0, hint="A number v gives -v..v; or give 'low,high'.")
    return (-v if v else 0.0), v


def as_probability(name: str, value) -> float:
    """A flip probability: True -> 0.5, False -> 0, else a number in [0, 1]."""
    if value is True or value is False:
        return 0.5 if value else 0.0
    try:
        value = float(value)
    except (TypeError, ValueError):
        pass  # check_number names the bad value
    return check_number(name, value, low=0, high=1, hint="It is a probability.")


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
    check_choice("translate_unit", translate_unit, ("px", "fraction"))
    tx = ty = as_range("translate", translate)
    if translate_unit == "fraction":
        if image_shape is None:
            raise CvtoolError("A fractional 'translate' needs the image shape.")
        if max(abs(tx[0]), abs(tx[1])) > 1:
            raise CvtoolError(f"The 'translate' fraction must lie in [-1, 1]. Got {translate!r}.")
        h, w = image_shape[:2]
        tx, ty = (tx[0] * w, tx[1] * w), (ty[0] * h, ty[1] * h)
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
        if name in FLIPS:
            params[name] = rng.random(n) < r
        else:
            params[name] = rng.uniform(r[0], r[1], n)
    return params


def identity_params(n: int) -> dict[str, np.ndarray]:
    """Parameters that leave n images unchanged."""
    return {
        k: np.zeros(n, bool) if k in FLIPS else np.full(n, 1.0 if k in SCALES else 0.0)
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


def expand_params(
    n: int, ranges: Ranges, copies: int, keep_original: bool, rng: np.random.Generator
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Sources and parameters for `copies` augmentations per image (plus the original).

    Returns (source (M,), params of (M,)) grouped per source image:
    [original,] copy 1, ..., copy k; M = n * (copies + keep_original).
    """
    check_int("copies", copies, low=0 if keep_original else 1,
              hint="" if keep_original else "0 is allowed with keep_original.")  # fmt: skip
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
    p = {k: np.asarray(params[k], dtype=bool if k in FLIPS else np.float64) for k in PARAM_NAMES}
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


# ---------------------------------------------------------------- parameters on disk


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
    from cvtool.fileio import read_text

    if str(path) != "-":  # '-' is stdin; FIFOs and <(...) are read once
        path = check_path(path, "Parameters file")
    rows, settings = [], None
    for lineno, line in enumerate(read_text(path).splitlines(), 1):
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
        dtype = bool if k in FLIPS else np.float64
        try:
            params[k] = np.array([r[j] for r in rows], dtype=dtype)
        except (ValueError, TypeError):
            raise CvtoolError(f"{path}: parameter '{k}' must be a number on every line.") from None
    for k in SCALES:
        if not np.all(params[k] > 0):
            raise CvtoolError(f"{path}: parameter '{k}' must be > 0 on every line.")
    if "interpolation" in settings:
        check_choice("interpolation", settings["interpolation"], INTERPOLATIONS)
    if "fill" in settings:
        check_choice("fill", settings["fill"], FILL_MODES)
    return source, params, settings
