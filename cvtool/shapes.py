"""Layer arithmetic: output sizes and parameter counts. No NumPy import.

One home for every formula: ``layer-calc`` prints these numbers and the
layers in ``cvtool.nn`` call the same functions for their shapes and
parameter counts, so a summary and a real forward pass cannot disagree.

Shapes are channels-last, as in Keras: images are (H, W, C), flat vectors
(N,) — the batch axis is never part of a shape here.

The output size of a convolution or pooling window along one axis is
``O = (W - K_eff + 2P) / S + 1`` with ``K_eff = D (K - 1) + 1`` for dilation D.
By default the division must be exact; ``floor=True`` accepts Keras/PyTorch
floor rounding (the last rows/columns that do not fill a window are dropped).

Padding ``'same'`` is symmetric, P = (K_eff - 1) / 2 per side, so it needs an
odd kernel span (as PyTorch's ``padding=K // 2``). Its output size is
ceil(W / S) at any stride, the size Keras' ``'same'`` gives, and it is never
an exactness error; at stride > 1 Keras puts the padding asymmetrically (the
extra row at the bottom/right) while cvtool pads both sides and leaves the last
padded row unused, so the sampling grid is PyTorch's, the shape is Keras'.

Beyond sizes and counts: the receptive field and its jump (the effective
stride, in input pixels), multiply-accumulates (MACs), batch-norm parameters
and bytes per element by dtype. The whole-network summary that walks a parsed
spec through these formulas lives in :mod:`cvtool.summary`.
Left out: grouped/depthwise convolution, asymmetric padding, ceil-mode pooling.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from cvtool.errors import CvtoolError, check_choice


def effective_kernel(kernel: int, dilation: int = 1) -> int:
    """Span of a dilated kernel: D (K - 1) + 1.

    >>> effective_kernel(3, 2)
    5
    """
    return dilation * (kernel - 1) + 1


def resolve_padding(padding: int | str, kernel: int, dilation: int = 1) -> int:
    """Padding per side as an int: 'valid' is 0, 'same' is (K_eff - 1) / 2 (odd K_eff only).

    >>> resolve_padding("same", 5)
    2
    """
    if isinstance(padding, int):
        if padding < 0:
            raise CvtoolError(f"The 'padding' parameter must be >= 0. Got {padding} instead.")
        return padding
    if padding == "valid":
        return 0
    if padding == "same":
        k = effective_kernel(kernel, dilation)
        if k % 2 == 0:
            raise CvtoolError(
                f"padding 'same' needs an odd kernel span to pad both sides equally; "
                f"kernel {kernel} (span {k}) is even. Give the padding as a number."
            )
        return (k - 1) // 2
    raise CvtoolError(
        f"The 'padding' parameter must be 'valid', 'same' or an int >= 0. Got {padding!r} instead."
    )


def output_size(
    size: int,
    kernel: int,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    *,
    floor: bool = False,
    axis: str = "width",
) -> int:
    """O = (W - K_eff + 2P) / S + 1 along one axis.

    >>> output_size(227, 11, 4)
    55
    >>> output_size(28, 5)
    24

    Raises
    ------
    CvtoolError
        Kernel larger than the padded input, or (W - K_eff + 2P) not divisible
        by S without ``floor`` (the message names a padding and a stride that
        would make it exact).
    """
    for name, value, low in (
        ("kernel", kernel, 1),
        ("stride", stride, 1),
        ("dilation", dilation, 1),
    ):
        if not isinstance(value, int) or value < low:
            raise CvtoolError(
                f"The '{name}' parameter must be an int >= {low}. Got {value!r} instead."
            )
    k = effective_kernel(kernel, dilation)
    span = size - k + 2 * padding
    if span < 0:
        need = -(-(k - size) // 2)
        raise CvtoolError(
            f"kernel {k} is larger than the padded input {size + 2 * padding} along the {axis}; "
            f"use padding >= {need} or a smaller kernel."
        )
    if floor_remainder(size, kernel, stride, padding, dilation) and not floor:
        fixes = _exact_fixes(size, k, stride, padding)
        raise CvtoolError(
            f"(W - K + 2P) / S = ({size} - {k} + 2*{padding}) / {stride} is not an integer along "
            f"the {axis}; {fixes}, or pass --floor to drop the remainder as Keras/PyTorch do."
        )
    return span // stride + 1


def floor_remainder(
    size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1
) -> int:
    """Rows (or columns) that floor rounding drops: (W - K_eff + 2P) mod S.

    >>> floor_remainder(28, 3, 2)
    1
    """
    return (size - effective_kernel(kernel, dilation) + 2 * padding) % stride


def _exact_fixes(size: int, k: int, stride: int, padding: int) -> str:
    """Suggest the nearest padding and stride that make the division exact."""
    pads = [
        p for p in range(padding + 1, padding + stride * 2 + 1) if (size - k + 2 * p) % stride == 0
    ]
    strides = [s for s in range(stride - 1, 0, -1) if (size - k + 2 * padding) % s == 0]
    parts = []
    if pads:
        parts.append(f"padding {pads[0]} would make it exact")
    if strides:
        parts.append(f"stride {strides[0]} would make it exact")
    return " or ".join(parts) if parts else "no nearby padding or stride makes it exact"


def conv2d_output(
    in_shape: tuple[int, int, int],
    filters: int,
    kernel: int | tuple[int, int],
    stride: int | tuple[int, int] = 1,
    padding: int | str = 0,
    dilation: int = 1,
    *,
    floor: bool = False,
) -> tuple[int, int, int]:
    """(H, W, C) -> (H', W', filters) of a 2-D convolution.

    Padding 'same' gives ceil(H / S) x ceil(W / S) at any stride (module docstring).

    >>> conv2d_output((227, 227, 3), 96, 11, stride=4)
    (55, 55, 96)
    >>> conv2d_output((224, 224, 3), 64, 3, stride=2, padding="same")
    (112, 112, 64)
    """
    kh, kw = pair(kernel)
    sh, sw = pair(stride)
    h, w, _ = in_shape
    ph = resolve_padding(padding, kh, dilation)
    pw = resolve_padding(padding, kw, dilation)
    floor = floor or padding == "same"
    return (
        output_size(h, kh, sh, ph, dilation, floor=floor, axis="height"),
        output_size(w, kw, sw, pw, dilation, floor=floor, axis="width"),
        filters,
    )


def conv2d_params(
    in_channels: int, filters: int, kernel: int | tuple[int, int], bias: bool = True
) -> tuple[int, int]:
    """(weights, biases) of a convolution: K_h K_w C_in F weights and F biases.

    >>> conv2d_params(3, 96, 11)
    (34848, 96)
    """
    kh, kw = pair(kernel)
    return kh * kw * in_channels * filters, filters if bias else 0


def pool2d_output(
    in_shape: tuple[int, int, int],
    pool: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | str = 0,
    *,
    floor: bool = False,
) -> tuple[int, int, int]:
    """(H, W, C) -> (H', W', C) of a pooling window (stride defaults to the window).

    Padding may be at most half the window (PyTorch's rule: a window must never
    lie wholly in the padding).

    >>> pool2d_output((24, 24, 20), 2)
    (12, 12, 20)
    """
    kh, kw = pair(pool)
    h, w, c = in_shape
    sh, sw = pair(stride) if stride is not None else (kh, kw)
    ph, pw = resolve_padding(padding, kh), resolve_padding(padding, kw)
    if 2 * ph > kh or 2 * pw > kw:
        raise CvtoolError(
            f"The 'padding' parameter of a {kh}x{kw} pool must be at most half the window "
            f"({min(kh, kw) // 2}). Got {max(ph, pw)} instead."
        )
    floor = floor or padding == "same"
    return (
        output_size(h, kh, sh, ph, floor=floor, axis="height"),
        output_size(w, kw, sw, pw, floor=floor, axis="width"),
        c,
    )


def dense_params(n_in: int, units: int, bias: bool = True) -> tuple[int, int]:
    """(weights, biases) of a fully connected layer.

    >>> dense_params(784, 30)
    (23520, 30)
    """
    return n_in * units, units if bias else 0


def flatten_output(in_shape: tuple[int, ...]) -> tuple[int]:
    """(H, W, C) -> (H*W*C,)."""
    n = 1
    for d in in_shape:
        n *= d
    return (n,)


def pair(value: int | tuple[int, int]) -> tuple[int, int]:
    """An int or a pair as a pair."""
    if isinstance(value, tuple | list):
        a, b = value
        return int(a), int(b)
    return int(value), int(value)


# ---------------------------------------------------------------- beyond shapes

DTYPE_BYTES = {"float16": 2, "bfloat16": 2, "float32": 4, "float64": 8, "int8": 1}


def dtype_bytes(dtype: str) -> int:
    """Bytes per element of a dtype name.

    >>> dtype_bytes("float32")
    4
    """
    return DTYPE_BYTES[check_choice("dtype", dtype, DTYPE_BYTES)]


def numel(shape: tuple[int, ...]) -> int:
    """Number of elements of a shape (the batch axis is not part of it).

    >>> numel((55, 55, 96))
    290400
    """
    return flatten_output(shape)[0]


def conv2d_macs(
    out_shape: tuple[int, int, int], in_channels: int, kernel: int | tuple[int, int]
) -> int:
    """Multiply-accumulates of one convolution on one image: H' W' F K_h K_w C_in.

    Bias additions are not counted (fvcore does the same; torchinfo's "mult-adds"
    add them: see :func:`bias_adds`).

    >>> conv2d_macs((55, 55, 96), 3, 11)
    105415200
    """
    kh, kw = pair(kernel)
    return numel(out_shape) * kh * kw * in_channels


def dense_macs(n_in: int, units: int) -> int:
    """Multiply-accumulates of a fully connected layer on one sample: n_in * units.

    >>> dense_macs(784, 30)
    23520
    """
    return n_in * units


def bias_adds(out_shape: tuple[int, ...], bias: bool = True) -> int:
    """Additions of a bias on one sample: one per output element (0 without a bias).

    torchinfo's "mult-adds" are the MACs plus these (its conv rule counts every
    parameter, bias included, once per output position).

    >>> bias_adds((55, 55, 96)), bias_adds((10,), bias=False)
    (290400, 0)
    """
    return numel(out_shape) if bias else 0


def batchnorm_params(channels: int) -> tuple[int, int]:
    """(trainable, non-trainable) of batch normalisation: gamma, beta; moving mean, variance.

    >>> batchnorm_params(64)
    (128, 128)
    """
    return 2 * channels, 2 * channels


def receptive_field(
    rf: int, jump: int, start: float, kernel: int, stride: int, padding: int, dilation: int = 1
) -> tuple[int, int, float]:
    """One axis of the receptive-field recurrence through a conv or pooling window.

    ``rf`` is the span in input pixels seen by one unit, ``jump`` the distance in
    input pixels between neighbouring units (the effective stride), ``start``
    the centre of the first unit's field (input pixel i covers [i, i+1), so the
    input starts at 0.5)::

        rf'    = rf + (K_eff - 1) * jump
        jump'  = jump * S
        start' = start + ((K_eff - 1) / 2 - P) * jump

    >>> receptive_field(1, 1, 0.5, 11, 4, 0)
    (11, 4, 5.5)
    """
    k = effective_kernel(kernel, dilation)
    return rf + (k - 1) * jump, jump * stride, start + ((k - 1) / 2 - padding) * jump


def output_size_formula(
    size: int, kernel: int, stride: int, padding: int, dilation: int = 1, floor: bool = False
) -> str:
    """The output-size arithmetic written out, for people checking it by hand.

    >>> output_size_formula(227, 11, 4, 0)
    '(227 - 11 + 2*0) / 4 + 1 = 55'
    """
    k = effective_kernel(kernel, dilation)
    out = output_size(size, kernel, stride, padding, dilation, floor=True)
    body = f"({size} - {k} + 2*{padding}) / {stride}"
    if (size - k + 2 * padding) % stride:
        body = f"floor({body})"
    return f"{body} + 1 = {out}"


# ---------------------------------------------------------------- upsampling layers
# Transposed convolution and upsampling (the FCN decoder). Appended here so that the
# layers in cvtool.nn.upsample, layer-calc and the summary share one formula each.


def conv_transpose_size(
    size: int, kernel: int, stride: int = 1, padding: int = 0, output_padding: int = 0,
    *, axis: str = "width",
) -> int:  # fmt: skip
    """O = (W - 1) S - 2P + K + output_padding along one axis (PyTorch's ConvTranspose2d).

    ``output_padding`` (0 <= OP < S) picks one of the S input sizes that a stride-S
    convolution maps to the same output: it adds OP rows at the bottom/right.

    >>> conv_transpose_size(32, 4, 2, 1)
    64
    >>> conv_transpose_size(7, 3, 2, 1, 1)
    14

    Raises
    ------
    CvtoolError
        Output padding outside 0..S-1, or an output smaller than one pixel.
    """
    for name, value, low in (("kernel", kernel, 1), ("stride", stride, 1), ("padding", padding, 0)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise CvtoolError(
                f"The '{name}' parameter must be an int >= {low}. Got {value!r} instead."
            )
    if not isinstance(output_padding, int) or not 0 <= output_padding < stride:
        raise CvtoolError(
            f"The 'output_padding' parameter must be an int in 0..{stride - 1} (below the stride "
            f"{stride}). Got {output_padding!r} instead."
        )
    out = (size - 1) * stride - 2 * padding + kernel + output_padding
    if out < 1:
        raise CvtoolError(
            f"(W - 1)S - 2P + K + OP = ({size} - 1)*{stride} - 2*{padding} + {kernel} + "
            f"{output_padding} = {out} along the {axis}: the padding {padding} crops the whole "
            f"output; use padding <= {((size - 1) * stride + kernel + output_padding - 1) // 2}."
        )
    return out


def conv_transpose2d_output(
    in_shape: tuple[int, int, int],
    filters: int,
    kernel: int | tuple[int, int],
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    output_padding: int | tuple[int, int] = 0,
) -> tuple[int, int, int]:
    """(H, W, C) -> (H', W', filters) of a 2-D transposed convolution.

    >>> conv_transpose2d_output((32, 32, 32), 16, 4, stride=2, padding=1)
    (64, 64, 16)
    """
    h, w, _ = in_shape
    (kh, kw), (sh, sw) = pair(kernel), pair(stride)
    (ph, pw), (oh, ow) = pair(padding), pair(output_padding)
    return (
        conv_transpose_size(h, kh, sh, ph, oh, axis="height"),
        conv_transpose_size(w, kw, sw, pw, ow, axis="width"),
        filters,
    )


def conv_transpose2d_params(
    in_channels: int, filters: int, kernel: int | tuple[int, int], bias: bool = True
) -> tuple[int, int]:
    """(weights, biases) of a transposed convolution: K_h K_w F C_in weights and F biases.

    The same count as the convolution it transposes (PyTorch's ConvTranspose2d).

    >>> conv_transpose2d_params(32, 16, 4)
    (8192, 16)
    """
    return conv2d_params(in_channels, filters, kernel, bias)


def conv_transpose2d_macs(
    in_shape: tuple[int, int, int], filters: int, kernel: int | tuple[int, int]
) -> int:
    """Multiply-accumulates of one transposed convolution on one image: H W C_in K_h K_w F.

    Every input value meets every kernel weight of its channel once (the products
    that col2im sums), so the count is per *input* pixel, as fvcore counts it.
    torchinfo multiplies the weights by the *output* pixels instead, S^2 times
    more for stride S (it counts the zeros a zero-insertion view would multiply).

    >>> conv_transpose2d_macs((32, 32, 32), 16, 4)
    8388608
    """
    kh, kw = pair(kernel)
    return numel(in_shape) * kh * kw * filters


UPSAMPLE_MODES = ("nearest", "bilinear")


def upsample2d_output(
    in_shape: tuple[int, int, int], factor: int | tuple[int, int]
) -> tuple[int, int, int]:
    """(H, W, C) -> (H f_h, W f_w, C) of an upsampling by integer factors.

    >>> upsample2d_output((16, 16, 8), 2)
    (32, 32, 8)
    """
    h, w, c = in_shape
    fh, fw = pair(factor)
    for value in (fh, fw):
        if value < 1:
            raise CvtoolError(f"The 'factor' parameter must be an int >= 1. Got {value!r} instead.")
    return h * fh, w * fw, c


def upsample2d_params(in_channels: int) -> tuple[int, int]:
    """(weights, biases) of an upsampling layer: none, at any size.

    >>> upsample2d_params(64)
    (0, 0)
    """
    return 0, 0


def upsample2d_macs(out_shape: tuple[int, int, int], mode: str = "nearest") -> int:
    """Multiply-accumulates of an upsampling layer counted the summary's way: 0.

    Like pooling it has no weights, and the summary counts only weight products
    (torchinfo's convention). For reference, bilinear interpolation costs 4
    multiply-adds per output value (fvcore's count); nearest copies.

    >>> upsample2d_macs((32, 32, 8), "bilinear")
    0
    """
    if mode not in UPSAMPLE_MODES:
        raise CvtoolError(
            f"The 'mode' parameter must be one of {', '.join(UPSAMPLE_MODES)}. Got {mode!r} instead."
        )
    return 0


# ------------------------------------------------------- receptive fields, uneven units
# After a transposed convolution or an upsampling, neighbouring units no longer sit a
# constant jump apart: the outputs 2q and 2q+1 of a stride-2 deconv (K=4, P=1) see input
# units {q-1, q} and {q, q+1}, the outputs 2q+1 and 2q+2 both see {q, q+1}. One (rf, jump,
# start) triple cannot carry that, so from the first such layer on the summary tracks the
# field of every unit of one period: unit q*p + r sees the input pixels
# lo[r] + q*shift .. hi[r] + q*shift (inclusive; padding counts, as in the recurrence).


class Field(NamedTuple):
    """Receptive fields of the units along one axis, periodic with period len(lo).

    ``lo[r]``, ``hi[r]``: first and last input pixel seen by unit r (None for a unit
    that sees no input: a transposed convolution with K < S leaves gaps only the bias
    fills); unit q*p + r sees them shifted by q*shift pixels.
    """

    lo: tuple
    hi: tuple
    shift: int


def field_from_recurrence(rf: int, jump: int, start: float) -> Field:
    """The evenly spaced fields of the classic recurrence as a Field of period 1.

    >>> field_from_recurrence(4, 2, 1.0)
    Field(lo=(-1,), hi=(2,), shift=2)
    """
    lo = int(start - rf / 2)
    return Field((lo,), (lo + rf - 1,), jump)


def _field_of(field: Field, units) -> tuple[int | None, int | None]:
    """(first, last) input pixel seen by any of the given units (indices may be < 0)."""
    p, los, his = len(field.lo), [], []
    for u in units:
        q, r = divmod(u, p)
        if field.lo[r] is not None:
            los.append(field.lo[r] + q * field.shift)
            his.append(field.hi[r] + q * field.shift)
    return (min(los), max(his)) if los else (None, None)


def _field(field: Field, period: int, units_of, shift: int) -> Field:
    pairs = [_field_of(field, units_of(o)) for o in range(period)]
    return Field(tuple(a for a, _ in pairs), tuple(b for _, b in pairs), shift)


def field_window(field: Field, kernel: int, stride: int, padding: int, dilation: int = 1) -> Field:
    """Fields through a conv or pooling window: unit o sees units o S - P + j D, j < K.

    >>> field_window(Field((0,), (0,), 1), 3, 2, 1)
    Field(lo=(-1,), hi=(1,), shift=2)
    """
    p = len(field.lo)
    period = p // math.gcd(p, stride)
    return _field(
        field,
        period,
        lambda o: [o * stride - padding + j * dilation for j in range(kernel)],
        field.shift * stride * period // p,
    )


def field_transpose(field: Field, kernel: int, stride: int, padding: int) -> Field:
    """Fields through a transposed convolution: output o sums inputs i with i S + k - P = o.

    >>> field_transpose(Field((-1,), (2,), 2), 4, 2, 1)
    Field(lo=(-3, -1), hi=(2, 4), shift=2)
    """
    p = len(field.lo)
    return _field(
        field,
        p * stride,
        lambda o: range(-(-(o + padding - kernel + 1) // stride), (o + padding) // stride + 1),
        field.shift,
    )


def field_upsample(field: Field, factor: int, mode: str = "nearest") -> Field:
    """Fields through an upsampling: nearest copies unit o // f; bilinear blends the two
    units around (o + 1/2) / f - 1/2 (one, where that is a whole number).

    >>> field_upsample(Field((0,), (1,), 2), 2, "bilinear")
    Field(lo=(-2, 0), hi=(1, 3), shift=2)
    """

    def units(o):
        if mode == "nearest":
            return [o // factor]
        num, den = 2 * o + 1 - factor, 2 * factor  # the source coordinate is num / den
        i0 = num // den
        return [i0] if num % den == 0 else [i0, i0 + 1]

    return _field(field, len(field.lo) * factor, units, field.shift)


def field_summary(field: Field) -> tuple[int, float, float]:
    """(rf, jump, start) of a Field: the widest field, the mean distance between units
    (jump = shift / period, a fraction after upsampling) and the centre of the first
    unit's field (of the first unit that sees any input).

    >>> field_summary(Field((-3, -1), (2, 4), 2))
    (6, 1, 0.0)
    """
    spans = [b - a + 1 for a, b in zip(field.lo, field.hi, strict=True) if a is not None]
    first = next(r for r, a in enumerate(field.lo) if a is not None)
    return (
        max(spans),
        _divide(field.shift, len(field.lo)),
        (field.lo[first] + field.hi[first] + 1) / 2,
    )


def _divide(jump: int, period: int) -> float:
    """jump / period, kept an int while it divides exactly (jumps print as 2, not 2.0)."""
    return jump // period if jump % period == 0 else jump / period


def merge_output(kind: str, in_shape: tuple[int, ...], tap_shape: tuple[int, ...]) -> tuple:
    """Output shape of a skip connection joining `in_shape` with an earlier `tap_shape`.

    'add' needs equal shapes (FCN's sum of score maps); 'concat' needs equal
    sizes but the channels (U-Net's join), and adds the channels up.

    >>> merge_output("concat", (16, 16, 32), (16, 16, 8))
    (16, 16, 40)
    """
    in_shape, tap_shape = tuple(in_shape), tuple(tap_shape)
    if kind == "add":
        if in_shape != tap_shape:
            raise CvtoolError(
                f"add joins equal shapes; got {in_shape} and the tap's {tap_shape}. Use concat, or "
                "match the channels with a 1x1 conv."
            )
        return in_shape
    if kind != "concat":
        raise CvtoolError(f"The 'kind' parameter must be one of add, concat. Got {kind!r} instead.")
    if len(in_shape) != len(tap_shape) or in_shape[:-1] != tap_shape[:-1]:
        raise CvtoolError(
            f"concat joins equal sizes along all but the channel axis; got {in_shape} and the "
            f"tap's {tap_shape}. Upsample or pool one side first."
        )
    return (*in_shape[:-1], in_shape[-1] + tap_shape[-1])


def yolo_head_output(grid: int, boxes_per_cell: int, num_classes: int) -> tuple[int, int, int]:
    """(S, S, 5B + C): a YOLO-v1-style head's output for an S x S grid, B boxes, C classes.

    Each box is x, y, sqrt w, sqrt h and a confidence; the C class scores are per cell.

    >>> yolo_head_output(7, 2, 20)
    (7, 7, 30)
    """
    for name, value in (("grid", grid), ("boxes_per_cell", boxes_per_cell),
                        ("num_classes", num_classes)):  # fmt: skip
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise CvtoolError(f"The '{name}' parameter must be an int >= 1. Got {value!r} instead.")
    return grid, grid, 5 * boxes_per_cell + num_classes
