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

from cvtool.errors import CvtoolError


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
    if dtype not in DTYPE_BYTES:
        raise CvtoolError(
            f"The 'dtype' parameter must be one of {', '.join(DTYPE_BYTES)}. Got {dtype!r} instead."
        )
    return DTYPE_BYTES[dtype]


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

    Bias additions are not counted (torchinfo and fvcore do the same).

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
