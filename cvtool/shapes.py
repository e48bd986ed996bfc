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
stride, in input pixels), multiply-accumulates (MACs), parameter and
activation memory by dtype, and :func:`summarize`, which walks a parsed
architecture spec and returns a Keras/torchinfo-style summary as plain data.
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


def format_shape(shape: tuple[int, ...] | None) -> str:
    """(55, 55, 96) -> '55x55x96'."""
    return "" if shape is None else "x".join(str(d) for d in shape)


# ---------------------------------------------------------------- whole networks

TYPE_NAMES = {
    "conv": ("Conv2D", "conv2d"),
    "pool:max": ("MaxPool2D", "max_pooling2d"),
    "pool:avg": ("AvgPool2D", "average_pooling2d"),
    "pool:l2": ("L2Pool2D", "l2_pooling2d"),
    "dense": ("Dense", "dense"),
    "flatten": ("Flatten", "flatten"),
    "dropout": ("Dropout", "dropout"),
    "activation": ("Activation", "activation"),
    "batchnorm": ("BatchNorm", "batch_normalization"),
}

COUNTS = (
    "Parameters: weights + biases (+ batch-norm statistics, non-trainable). MACs: "
    "multiply-accumulates of conv and dense weights for one sample, bias additions, "
    "pooling and activations not counted (torchinfo's convention). Activation memory: "
    "the input and every layer's output tensor (a fused activation such as conv:64x3:relu "
    "counts once; flatten is a view and counts 0) times batch times dtype bytes, "
    "forward pass only; forward + backward is twice that (a gradient of the same size "
    "for each stored tensor, the cs231n/torchinfo estimate). Parameter gradients and "
    "optimiser state are not included."
)


def _image(kind: str, shape: tuple[int, ...]) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise CvtoolError(
            f"{kind} needs an image input (H x W x C), got {format_shape(shape)}; "
            f"start the spec with input:HxWxC, or put it before flatten/dense."
        )
    return shape


def _window_row(spec, shape, floor: bool) -> dict:
    """Output shape, padding and per-axis details of a conv or pooling layer."""
    a = spec.args
    if spec.kind == "conv":
        kernel, stride, dil = pair(a["kernel"]), pair(a.get("stride", 1)), a.get("dilation", 1)
        out = conv2d_output(
            shape, a["filters"], kernel, stride, a.get("padding", 0), dil, floor=floor
        )
        weights, biases = conv2d_params(shape[2], a["filters"], kernel, a.get("bias", True))
        macs = conv2d_macs(out, shape[2], kernel)
    else:
        kernel, dil = pair(a["pool"]), 1
        stride = pair(a["stride"]) if a.get("stride") is not None else kernel
        out = pool2d_output(shape, kernel, stride, a.get("padding", 0), floor=floor)
        weights = biases = macs = 0
    padding = a.get("padding", 0)
    pads = [resolve_padding(padding, k, dil) for k in kernel]
    dropped = [
        (n - effective_kernel(k, dil) + 2 * p) % s
        for n, k, p, s in zip(shape[:2], kernel, pads, stride, strict=True)
    ]
    return {
        "output_shape": out,
        "weights": weights,
        "biases": biases,
        "macs": macs,
        "kernel": kernel,
        "stride": stride,
        "padding": tuple(pads),
        "dilation": dil,
        "dropped": tuple(dropped) if padding != "same" else (0, 0),
        "formula": {
            axis: output_size_formula(n, k, s, p, dil, floor=True)
            for axis, n, k, s, p in zip(
                ("height", "width"), shape[:2], kernel, stride, pads, strict=True
            )
        },
    }


def layer_row(spec, shape: tuple[int, ...], floor: bool = False) -> dict:
    """Shape, parameters and MACs of one parsed layer on an input of ``shape``.

    Parameters
    ----------
    spec : LayerSpec
        A parsed layer (``cvtool.nn.spec``); only ``kind`` and ``args`` are read.
    shape : tuple of int
        Input shape without the batch axis: (H, W, C) or (N,).
    floor : bool
        Accept floor rounding of window layers instead of requiring exact sizes.

    Returns
    -------
    dict with output_shape, weights, biases, trainable, non_trainable, macs and,
    for conv/pool, kernel, stride, padding (per side), dilation, dropped (rows
    and columns left over per axis) and formula.
    """
    kind, a = spec.kind, spec.args
    row = {"output_shape": shape, "weights": 0, "biases": 0, "macs": 0, "non_trainable": 0}
    if kind in ("conv", "pool"):
        row.update(_window_row(spec, _image(kind, shape), floor))
    elif kind == "dense":
        n_in = numel(shape)
        row["weights"], row["biases"] = dense_params(n_in, a["units"], a.get("bias", True))
        row["output_shape"] = (a["units"],)
        row["macs"] = dense_macs(n_in, a["units"])
        if len(shape) > 1:
            row["note"] = "flattens its input implicitly"
    elif kind == "flatten":
        row["output_shape"] = flatten_output(shape)
    elif kind == "batchnorm":
        gamma_beta, stats = batchnorm_params(shape[-1])
        row["weights"], row["biases"] = gamma_beta // 2, gamma_beta // 2
        row["non_trainable"] = stats
    elif kind not in ("dropout", "activation"):
        raise CvtoolError(f"Layer kind {kind!r} has no size rule; known: {', '.join(TYPE_NAMES)}.")
    row["trainable"] = row["weights"] + row["biases"]
    row["params"] = row["trainable"] + row["non_trainable"]
    return row


def summarize(
    specs: list,
    input_shape: tuple[int, ...] | None = None,
    floor: bool = False,
    batch: int = 1,
    dtype: str = "float32",
) -> dict:
    """A Keras/torchinfo-style summary of a parsed spec, as plain data (no printing).

    Parameters
    ----------
    specs : list of LayerSpec
        From ``cvtool.nn.spec.parse_spec``; a leading 'input' item gives the shape.
    input_shape : tuple of int, optional
        (H, W, C) or (N,); needed when the spec has no 'input' item, and must
        agree with it when it has one.
    floor : bool
        Accept Keras/PyTorch floor rounding; rows record what it dropped.
    batch : int
        Batch size for the activation memory.
    dtype : str
        Element type for memory figures (see DTYPE_BYTES).

    Returns
    -------
    dict
        ``input_shape``; ``rows``: one dict per layer, the input first, each with
        index, name, type, spec, input_shape, output_shape, weights, biases,
        params, trainable, non_trainable, macs, elements (per sample),
        activation_bytes (for the batch), rf, jump, rf_start (per axis, None
        once a dense layer has seen the whole input or for vector inputs);
        ``totals``; ``counts`` (what the memory figures include); ``notes``.

    Raises
    ------
    CvtoolError
        Impossible settings, naming the layer (``layer 3 (conv:32x3): ...``).
    """
    specs = list(specs)
    if specs and specs[0].kind == "input":
        spec_shape = tuple(specs[0].args["shape"])
        if input_shape is not None and tuple(input_shape) != spec_shape:
            raise CvtoolError(
                f"The input shape {format_shape(tuple(input_shape))} disagrees with the spec's "
                f"input:{format_shape(spec_shape)}; give one of them."
            )
        input_shape, specs = spec_shape, specs[1:]
    if input_shape is None:
        raise CvtoolError(
            "No input shape: start the spec with input:HxWxC (e.g. input:28x28x1) or give --input."
        )
    if not isinstance(batch, int) or batch < 1:
        raise CvtoolError(f"The 'batch' parameter must be an int >= 1. Got {batch!r} instead.")
    nbytes = dtype_bytes(dtype)
    shape = tuple(input_shape)
    image = len(shape) == 3
    rf = [1, 1] if image else None
    jump, start = [1, 1], [0.5, 0.5]
    rows = [
        {
            "index": 0,
            "name": "input",
            "type": "Input",
            "spec": "input:" + format_shape(shape),
            "input_shape": None,
            "output_shape": shape,
            "weights": 0,
            "biases": 0,
            "params": 0,
            "trainable": 0,
            "non_trainable": 0,
            "macs": 0,
            "elements": numel(shape),
            "activation_bytes": numel(shape) * batch * nbytes,
            "rf": tuple(rf) if rf else None,
            "jump": (1, 1) if rf else None,
            "rf_start": (0.5, 0.5) if rf else None,
        }
    ]
    notes, seen = [], {}
    for i, spec in enumerate(specs, 1):
        key = f"pool:{spec.args.get('mode', 'max')}" if spec.kind == "pool" else spec.kind
        if spec.kind == "input":
            raise CvtoolError(f"layer {i}: 'input:...' must come first in the spec.")
        try:
            row = layer_row(spec, shape, floor)
        except CvtoolError as exc:
            raise CvtoolError(f"layer {i} ({spec.text or spec.kind}): {exc}") from None
        type_name, base = TYPE_NAMES[key]
        seen[base] = seen.get(base, -1) + 1
        if spec.kind in ("conv", "pool") and rf is not None:
            for ax in range(2):
                rf[ax], jump[ax], start[ax] = receptive_field(
                    rf[ax],
                    jump[ax],
                    start[ax],
                    row["kernel"][ax],
                    row["stride"][ax],
                    row["padding"][ax],
                    row["dilation"],
                )
        elif spec.kind == "dense":
            rf = None  # every unit now sees the whole input
        if any(row.get("dropped", ())):
            notes.append(
                f"layer {i} ({spec.text or spec.kind}): --floor dropped "
                f"{row['dropped'][0]} row(s) and {row['dropped'][1]} column(s) of its input"
            )
        stored = spec.kind != "flatten"
        elements = numel(row["output_shape"])
        row.update(
            index=i,
            name=base if seen[base] == 0 else f"{base}_{seen[base]}",
            type=type_name,
            spec=spec.text or spec.kind,
            input_shape=shape,
            activation=spec.args.get("activation"),
            elements=elements,
            activation_bytes=elements * batch * nbytes if stored else 0,
            rf=tuple(rf) if rf else None,
            jump=tuple(jump) if rf else None,
            rf_start=tuple(start) if rf else None,
        )
        rows.append(row)
        shape = row["output_shape"]
    act_elements = sum(r["elements"] for r in rows if r["activation_bytes"])
    totals = {
        "params": sum(r["params"] for r in rows),
        "trainable": sum(r["trainable"] for r in rows),
        "non_trainable": sum(r["non_trainable"] for r in rows),
        "weights": sum(r["weights"] for r in rows),
        "biases": sum(r["biases"] for r in rows),
        "macs": sum(r["macs"] for r in rows),
        "output_shape": shape,
        "batch": batch,
        "dtype": dtype,
        "activation_elements": act_elements,
        "forward_bytes": act_elements * batch * nbytes,
        "forward_backward_bytes": 2 * act_elements * batch * nbytes,
    }
    totals["param_bytes"] = {d: totals["params"] * b for d, b in DTYPE_BYTES.items()}
    totals["param_bytes_dtype"] = totals["params"] * nbytes
    if floor:
        notes.insert(0, "--floor: Keras/PyTorch floor rounding accepted on purpose")
    return {
        "input_shape": tuple(input_shape),
        "rows": rows,
        "totals": totals,
        "counts": COUNTS,
        "notes": notes,
    }


def per_axis(value, whole: str) -> str:
    """(11, 11) -> '11', (11, 5) -> '11x5', None -> ``whole``."""
    if value is None:
        return whole
    a, b = value
    return f"{a:g}" if a == b else f"{a:g}x{b:g}"


COLUMNS = {
    "layer": ("Layer", lambda r, w: r["name"]),
    "type": ("Type", lambda r, w: r["type"]),
    "spec": ("Spec", lambda r, w: r["spec"]),
    "input": ("Input shape", lambda r, w: format_shape(r["input_shape"])),
    "output": ("Output shape", lambda r, w: format_shape(r["output_shape"])),
    "params": ("Param #", lambda r, w: r["params"]),
    "weights": ("Weights", lambda r, w: r["weights"]),
    "biases": ("Biases", lambda r, w: r["biases"]),
    "trainable": ("Trainable", lambda r, w: r["trainable"]),
    "kernel": ("Kernel", lambda r, w: per_axis(r.get("kernel"), "")),
    "stride": ("Stride", lambda r, w: per_axis(r.get("stride"), "")),
    "padding": ("Padding", lambda r, w: per_axis(r.get("padding"), "")),
    "activation": ("Activation", lambda r, w: r.get("activation") or ""),
    "rf": ("Receptive field", lambda r, w: per_axis(r["rf"], w)),
    "jump": ("Jump", lambda r, w: per_axis(r["jump"], w)),
    "start": ("RF start", lambda r, w: per_axis(r["rf_start"], w)),
    "macs": ("MACs", lambda r, w: r["macs"]),
    "elements": ("Activations", lambda r, w: r["elements"]),
    "memory": ("Act. bytes", lambda r, w: r["activation_bytes"]),
}
COLUMN_ALIASES = {
    "output_size": "output",
    "input_size": "input",
    "num_params": "params",
    "kernel_size": "kernel",
    "mult_adds": "macs",
    "receptive_field": "rf",
    "name": "layer",
    "mem": "memory",
}
DEFAULT_COLUMNS = ("layer", "type", "output", "params", "rf", "jump", "macs")


def parse_columns(text: str | None) -> list[str]:
    """'layer,output,params' -> column keys; torchinfo's names are accepted too.

    >>> parse_columns("output_size,num_params")
    ['output', 'params']
    """
    if not text:
        return list(DEFAULT_COLUMNS)
    if text.strip() == "all":
        return list(COLUMNS)
    cols = []
    for name in (c.strip().lower() for c in text.split(",") if c.strip()):
        key = COLUMN_ALIASES.get(name, name)
        if key not in COLUMNS:
            raise CvtoolError(
                f"The 'cols' parameter takes names from: {', '.join(COLUMNS)} (or 'all'). "
                f"Got {name!r} instead."
            )
        cols.append(key)
    return cols


def summary_table(summary: dict, cols: list[str]) -> tuple[list[str], list[list]]:
    """(headers, rows of plain values) of a summary for the selected column keys."""
    whole = "all" if len(summary["input_shape"]) == 3 else "-"
    headers = [COLUMNS[c][0] for c in cols]
    return headers, [[COLUMNS[c][1](r, whole) for c in cols] for r in summary["rows"]]


def human_bytes(n: int) -> str:
    """Bytes in binary units (torchinfo's and Keras' MB are MiB).

    >>> human_bytes(4081192)
    '3.89 MiB'
    """
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n} B"


def human_count(n: int) -> str:
    """A count with its SI magnitude: 138357544 -> '138,357,544 (138.36 M)'."""
    for unit, size in (("G", 10**9), ("M", 10**6), ("k", 10**3)):
        if n >= size:
            return f"{n:,} ({n / size:.2f} {unit})"
    return f"{n:,}"
