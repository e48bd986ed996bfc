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
    if span % stride and not floor:
        fixes = _exact_fixes(size, k, stride, padding)
        raise CvtoolError(
            f"(W - K + 2P) / S = ({size} - {k} + 2*{padding}) / {stride} is not an integer along "
            f"the {axis}; {fixes}, or pass --floor to drop the remainder as Keras/PyTorch do."
        )
    return span // stride + 1


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
    stride: int = 1,
    padding: int | str = 0,
    dilation: int = 1,
    *,
    floor: bool = False,
) -> tuple[int, int, int]:
    """(H, W, C) -> (H', W', filters) of a 2-D convolution.

    >>> conv2d_output((227, 227, 3), 96, 11, stride=4)
    (55, 55, 96)
    """
    kh, kw = pair(kernel)
    h, w, _ = in_shape
    ph = resolve_padding(padding, kh, dilation)
    pw = resolve_padding(padding, kw, dilation)
    return (
        output_size(h, kh, stride, ph, dilation, floor=floor, axis="height"),
        output_size(w, kw, stride, pw, dilation, floor=floor, axis="width"),
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
    stride: int | None = None,
    padding: int = 0,
    *,
    floor: bool = False,
) -> tuple[int, int, int]:
    """(H, W, C) -> (H', W', C) of a pooling window (stride defaults to the window).

    >>> pool2d_output((24, 24, 20), 2)
    (12, 12, 20)
    """
    ph, pw = pair(pool)
    h, w, c = in_shape
    sh, sw = pair(stride) if stride is not None else (ph, pw)
    return (
        output_size(h, ph, sh, padding, floor=floor, axis="height"),
        output_size(w, pw, sw, padding, floor=floor, axis="width"),
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
