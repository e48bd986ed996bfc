"""Whole-network summary: a parsed spec walked through the layer formulas. No NumPy import.

:func:`summarize` takes the layers of a parsed architecture spec
(``cvtool.nn.spec``) and returns a Keras/torchinfo-style summary as plain data:
per layer the output shape, weights, biases, MACs, activation memory and the
receptive field with its jump; totals; and notes on what ``--floor`` dropped.
:func:`summary_table` picks columns (torchinfo's names are accepted too) and
:func:`human_bytes` / :func:`human_count` format totals; ``layer-calc`` and
``train-cnn`` print with these.

Every size and count comes from :mod:`cvtool.shapes`, the functions the layers
call themselves; this module holds no formula of its own, only the bookkeeping
around them. :func:`detector_head` reads a summary as a YOLO-style grid
detector (grid, cell size, receptive field in cells). Left out: printing (that is ``cvtool.render``) and anything that
needs allocated weights.
"""

from __future__ import annotations

from cvtool import shapes
from cvtool.errors import CvtoolError


def format_shape(shape: tuple[int, ...] | None) -> str:
    """(55, 55, 96) -> '55x55x96'."""
    return "" if shape is None else "x".join(str(d) for d in shape)


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
TYPE_NAMES.update(
    {
        "deconv": ("ConvTranspose2D", "conv2d_transpose"),
        "upsample": ("UpSampling2D", "up_sampling2d"),
        "tap": ("Tap", "tap"),
        "add": ("Add", "add"),
        "concat": ("Concatenate", "concatenate"),
    }
)

COUNTS = (
    "Parameters: weights + biases (+ batch-norm statistics, non-trainable). MACs: "
    "multiply-accumulates of conv and dense weights for one sample; bias additions, "
    "pooling and activations not counted. Mult-adds: torchinfo's count, the MACs plus one "
    "addition per output of a layer with a bias (and 2C for a batch norm), for one sample "
    "(torchinfo's total is for the whole batch). Activation memory: "
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
        kernel, stride, dil = (
            shapes.pair(a["kernel"]),
            shapes.pair(a.get("stride", 1)),
            a.get("dilation", 1),
        )
        out = shapes.conv2d_output(
            shape, a["filters"], kernel, stride, a.get("padding", 0), dil, floor=floor
        )
        weights, biases = shapes.conv2d_params(shape[2], a["filters"], kernel, a.get("bias", True))
        macs = shapes.conv2d_macs(out, shape[2], kernel)
        mult_adds = macs + shapes.bias_adds(out, biases > 0)
    else:
        kernel, dil = shapes.pair(a["pool"]), 1
        stride = shapes.pair(a["stride"]) if a.get("stride") is not None else kernel
        out = shapes.pool2d_output(shape, kernel, stride, a.get("padding", 0), floor=floor)
        weights = biases = macs = mult_adds = 0
    padding = a.get("padding", 0)
    pads = [shapes.resolve_padding(padding, k, dil) for k in kernel]
    dropped = [
        shapes.floor_remainder(n, k, s, p, dil)
        for n, k, p, s in zip(shape[:2], kernel, pads, stride, strict=True)
    ]
    return {
        "output_shape": out,
        "weights": weights,
        "biases": biases,
        "macs": macs,
        "mult_adds": mult_adds,
        "kernel": kernel,
        "stride": stride,
        "padding": tuple(pads),
        "dilation": dil,
        "dropped": tuple(dropped) if padding != "same" else (0, 0),
        "formula": {
            axis: shapes.output_size_formula(n, k, s, p, dil, floor=True)
            for axis, n, k, s, p in zip(
                ("height", "width"), shape[:2], kernel, stride, pads, strict=True
            )
        },
    }


def _upsampling_row(spec, shape) -> dict:
    """Output shape, counts and per-axis details of a transposed convolution or upsampling."""
    a = spec.args
    if spec.kind == "upsample":
        factor = shapes.pair(a["factor"])
        mode = a.get("mode", "nearest")
        out = shapes.upsample2d_output(shape, factor)
        weights, biases = shapes.upsample2d_params(shape[2])
        return {"output_shape": out, "weights": weights, "biases": biases,
                "macs": shapes.upsample2d_macs(out, mode), "factor": factor, "mode": mode}  # fmt: skip
    kernel, stride = shapes.pair(a["kernel"]), a.get("stride", 1)
    pad, op = a.get("padding", 0), a.get("output_padding", 0)
    out = shapes.conv_transpose2d_output(shape, a["filters"], kernel, stride, pad, op)
    weights, biases = shapes.conv_transpose2d_params(
        shape[2], a["filters"], kernel, a.get("bias", True)
    )
    formula = {
        axis: f"({n} - 1)*{stride} - 2*{pad} + {k} + {op} = {o}"
        for axis, n, k, o in zip(("height", "width"), shape[:2], kernel, out[:2], strict=True)
    }
    return {"output_shape": out, "weights": weights, "biases": biases,
            "macs": shapes.conv_transpose2d_macs(shape, a["filters"], kernel), "kernel": kernel,
            "stride": (stride, stride), "padding": (pad, pad), "output_padding": (op, op),
            "dilation": 1, "formula": formula}  # fmt: skip


def _upsampling_field(row: dict, ax: int, field):
    """One axis's unit fields (shapes.Field) through a deconv/upsample row: the jump divides."""
    if "factor" in row:
        return shapes.field_upsample(field, row["factor"][ax], row["mode"])
    return shapes.field_transpose(field, row["kernel"][ax], row["stride"][ax], row["padding"][ax])


def _window_field(row: dict, ax: int, field):
    """One axis's unit fields through a conv/pool row that follows a deconv/upsample."""
    return shapes.field_window(
        field, row["kernel"][ax], row["stride"][ax], row["padding"][ax], row["dilation"]
    )


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
    dict with output_shape, weights, biases, trainable, non_trainable, macs,
    mult_adds (torchinfo's count: MACs + bias additions) and,
    for conv/pool, kernel, stride, padding (per side), dilation, dropped (rows
    and columns left over per axis) and formula.
    """
    kind, a = spec.kind, spec.args
    row = {
        "output_shape": shape,
        "weights": 0,
        "biases": 0,
        "macs": 0,
        "mult_adds": 0,
        "non_trainable": 0,
    }
    if kind in ("conv", "pool"):
        row.update(_window_row(spec, _image(kind, shape), floor))
    elif kind == "dense":
        n_in = shapes.numel(shape)
        row["weights"], row["biases"] = shapes.dense_params(n_in, a["units"], a.get("bias", True))
        row["output_shape"] = (a["units"],)
        row["macs"] = shapes.dense_macs(n_in, a["units"])
        row["mult_adds"] = row["macs"] + shapes.bias_adds((a["units"],), row["biases"] > 0)
        if len(shape) > 1:
            row["note"] = "flattens its input implicitly"
    elif kind in ("deconv", "upsample"):
        row.update(_upsampling_row(spec, _image(kind, shape)))
    elif kind == "flatten":
        row["output_shape"] = shapes.flatten_output(shape)
    elif kind == "batchnorm":
        gamma_beta, stats = shapes.batchnorm_params(shape[-1])
        row["weights"], row["biases"] = gamma_beta // 2, gamma_beta // 2
        row["non_trainable"] = stats
        row["mult_adds"] = gamma_beta  # torchinfo: each of gamma, beta once per sample
    elif kind not in ("dropout", "activation", "tap", "add", "concat"):
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
        Element type for memory figures (see shapes.DTYPE_BYTES).

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
    nbytes = shapes.dtype_bytes(dtype)
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
            "mult_adds": 0,
            "elements": shapes.numel(shape),
            "activation_bytes": shapes.numel(shape) * batch * nbytes,
            "rf": tuple(rf) if rf else None,
            "jump": (1, 1) if rf else None,
            "rf_start": (0.5, 0.5) if rf else None,
        }
    ]
    notes, seen, taps = [], {}, {}
    field = None  # per-axis shapes.Field once a deconv/upsample has made units uneven
    for i, spec in enumerate(specs, 1):
        key = f"pool:{spec.args.get('mode', 'max')}" if spec.kind == "pool" else spec.kind
        if spec.kind == "input":
            raise CvtoolError(f"layer {i}: 'input:...' must come first in the spec.")
        try:
            row = layer_row(spec, shape, floor)
            if spec.kind in ("add", "concat"):  # a skip: the tapped branch joins here
                tap = taps[spec.args["name"]]
                row["output_shape"] = shapes.merge_output(spec.kind, shape, tap["shape"])
                if tap["rf"] is not None and rf is not None:  # the wider of the two branches
                    rf = [max(a, b) for a, b in zip(rf, tap["rf"], strict=True)]
        except CvtoolError as exc:
            raise CvtoolError(f"layer {i} ({spec.text or spec.kind}): {exc}") from None
        if spec.kind == "tap":
            taps[spec.args["name"]] = {"shape": shape, "rf": None if rf is None else list(rf)}
        type_name, base = TYPE_NAMES[key]
        seen[base] = seen.get(base, -1) + 1
        if field is not None and rf is not None and spec.kind in ("conv", "pool"):  # uneven units
            field = [_window_field(row, ax, field[ax]) for ax in range(2)]
            rf, jump, start = map(list, zip(*map(shapes.field_summary, field), strict=True))
        elif spec.kind in ("conv", "pool") and rf is not None:
            for ax in range(2):
                rf[ax], jump[ax], start[ax] = shapes.receptive_field(
                    rf[ax],
                    jump[ax],
                    start[ax],
                    row["kernel"][ax],
                    row["stride"][ax],
                    row["padding"][ax],
                    row["dilation"],
                )
        elif spec.kind in ("deconv", "upsample") and rf is not None:
            if field is None:
                field = [
                    shapes.field_from_recurrence(rf[ax], jump[ax], start[ax]) for ax in range(2)
                ]
            field = [_upsampling_field(row, ax, field[ax]) for ax in range(2)]
            rf, jump, start = map(list, zip(*map(shapes.field_summary, field), strict=True))
        elif spec.kind == "dense":
            rf = None  # every unit now sees the whole input
        if any(row.get("dropped", ())):
            notes.append(
                f"layer {i} ({spec.text or spec.kind}): --floor dropped "
                f"{row['dropped'][0]} row(s) and {row['dropped'][1]} column(s) of its input"
            )
        stored = spec.kind != "flatten"
        elements = shapes.numel(row["output_shape"])
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
        "mult_adds": sum(r["mult_adds"] for r in rows),
        "output_shape": shape,
        "batch": batch,
        "dtype": dtype,
        "activation_elements": act_elements,
        "forward_bytes": act_elements * batch * nbytes,
        "forward_backward_bytes": 2 * act_elements * batch * nbytes,
    }
    totals["param_bytes"] = {d: totals["params"] * b for d, b in shapes.DTYPE_BYTES.items()}
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


def detector_head(summary: dict, boxes_per_cell: int, num_classes: int) -> dict:
    """How a summarised network reads as a YOLO-style grid detector (``cvtool.detect``).

    The network's output must be S x S x (5B + C) (``shapes.yolo_head_output``).
    Each output cell answers for the objects whose centres fall in its cell of
    the image; its receptive field should cover the objects, not only the cell.

    Parameters
    ----------
    summary : dict
        From :func:`summarize` on an image input.
    boxes_per_cell, num_classes : int
        B and C.

    Returns
    -------
    dict with grid (S), boxes_per_cell, num_classes, head_shape, cell_size
    (pixels per cell along height and width), rf (the last layer's receptive
    field in pixels, None after a dense layer), rf_cells (rf / cell size per
    axis, None likewise) and a one-line ``note``.

    Raises
    ------
    CvtoolError
        The output is not S x S x (5B + C), or the input is not an image.
    """
    inp, out = tuple(summary["input_shape"]), tuple(summary["totals"]["output_shape"])
    if len(inp) != 3:
        raise CvtoolError(f"A detector needs an image input (H x W x C). Got {format_shape(inp)}.")
    want = None
    if len(out) == 3 and out[0] == out[1]:
        want = shapes.yolo_head_output(out[0], boxes_per_cell, num_classes)
    if out != want:
        depth = 5 * boxes_per_cell + num_classes
        raise CvtoolError(
            f"A detector with B={boxes_per_cell} and C={num_classes} must end in S x S x {depth} "
            f"(S x S x (5B + C), e.g. conv:{depth}x1). Got {format_shape(out)} instead."
        )
    s = out[0]
    cell = (inp[0] / s, inp[1] / s)
    rf = summary["rows"][-1]["rf"]
    rf_cells = None if rf is None else (rf[0] / cell[0], rf[1] / cell[1])
    if rf is None:
        note = "a dense layer sees the whole image from every cell"
    else:
        note = (
            f"each of the {s}x{s} cells ({per_axis(cell, '')} px) sees {per_axis(rf, '')} px, "
            f"{per_axis(tuple(round(r, 2) for r in rf_cells), '')} cells"
        )
        if min(rf_cells) < 2:
            note += ": less than two cells, so an object reaching into the neighbours is judged "
            note += "from a partial view"
    return {"grid": s, "boxes_per_cell": boxes_per_cell, "num_classes": num_classes,
            "head_shape": out, "cell_size": cell, "rf": rf, "rf_cells": rf_cells,
            "note": note}  # fmt: skip


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
    "mult_adds": ("Mult-adds", lambda r, w: r["mult_adds"]),
    "elements": ("Activations", lambda r, w: r["elements"]),
    "memory": ("Act. bytes", lambda r, w: r["activation_bytes"]),
}
COLUMN_ALIASES = {
    "output_size": "output",
    "input_size": "input",
    "num_params": "params",
    "kernel_size": "kernel",
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
    """Bytes in binary units: KiB, MiB, GiB (Keras' "MB" is MiB; torchinfo's "MB" is 10^6 B).

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
