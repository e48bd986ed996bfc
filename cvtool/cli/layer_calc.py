"""cvtool layer-calc: output sizes, parameters, receptive fields and memory, no NumPy.

A Typer sub-group: one sub-command per single layer (conv, pool, dense,
flatten, dropout) and ``net`` for a whole architecture spec. The arithmetic is
``cvtool.shapes`` (the same functions the layers call), walked through a network
by ``cvtool.summary``; the spec parser is ``cvtool.nn.spec``. All three are pure
Python and imported inside the commands.
"""

# No ``from __future__ import annotations`` here: Typer would have to eval every
# annotation string on each run, which costs start-up time.
import sys
from typing import Annotated

import typer

from cvtool.cli._common import DtypeOpt, JsonOpt, user_errors

# Square brackets below open with ':' so that Rich's markup leaves them alone.
NET_HELP = """Keras/torchinfo-style summary of a whole network.

SPEC is an architecture spec (the language train-mlp and train-cnn take), a
file holding one ('@file', a path, or '-' for stdin), Nielsen's sizes such as
784,30,10, or a preset: keras-course, keras-course-improved, nielsen-ch6.
--input gives the input shape when the spec has no input item.

\b
Spec grammar (layers separated by commas or new lines; '#' starts a comment):
  input:28x28x1 | input:28x28 | input:784      the input (H x W x C, or a vector)
  conv:FxK | conv:FxKhxKw [:ACT][:s=S][:p=P][:d=D][:bias=0]   P: int, valid, same
  pool:K | maxpool:K | avgpool:K | l2pool:K [:s=S][:p=P]   stride defaults to K
  dense:UNITS[:ACT][:bias=0]                    after an image it flattens implicitly
  dropout:RATE   flatten   batchnorm (bn)   relu|sigmoid|tanh|softmax|identity
  deconv:FxK[:ACT][:s=S][:p=P][:op=OP][:bias=0]  transposed conv: (W-1)S - 2P + K + OP
  upsample:F[:nearest|:bilinear]                 F times larger, no parameters
  tap:NAME ... add:NAME | concat:NAME            a skip: join an earlier layer's output
  e.g. input:28x28x1, conv:64x3:relu, pool:2, flatten, dense:10:softmax

'same' pads (K_eff-1)/2 on both sides (odd kernels) and gives ceil(W/S), the
size of Keras' 'same'. Without --floor, (W - K + 2P) must divide by S exactly.
Columns (--cols, comma-separated, or 'all'): layer, type, spec, input, output,
params, weights, biases, trainable, kernel, stride, padding, activation, rf,
jump, start, macs, mult_adds, elements, memory; torchinfo's output_size,
num_params, kernel_size work too. MACs count weights only; mult_adds is
torchinfo's count (MACs plus one addition per output of a layer with a bias). Activation memory is the forward pass (input
and every layer output times batch times dtype bytes); training is twice that.
--dtype (for the byte counts): float16, bfloat16, float32, float64 or int8.
"""

GROUP_HELP = """Output sizes, parameters, receptive fields, MACs and memory of layers and networks.

Pure arithmetic, no NumPy: the same formulas (cvtool.shapes) the layers use.

\b
Examples:
  cvtool layer-calc conv --input 227x227x3 --filters 96 --kernel 11 --stride 4
  cvtool layer-calc pool --input 55x55x96 --pool 3 --stride 2 --type max
  cvtool layer-calc dense --input 784 --units 30 --no-bias
  cvtool layer-calc net keras-course --batch 32 --cols layer,output,params,macs
  cvtool layer-calc net "input:28x28x1, conv:20x5:relu, pool:2, dense:10" --json

'cvtool layer-calc net --help' gives the architecture spec grammar.
"""

InputOpt = Annotated[
    str | None,
    typer.Option("--input", "-i", help="Input shape: HxWxC (227x227x3), HxW or a vector size."),
]
FloorOpt = Annotated[
    bool,
    typer.Option("--floor", help="Accept Keras/PyTorch floor rounding instead of exact sizes."),
]
BiasOpt = Annotated[bool, typer.Option("--bias/--no-bias", help="Count one bias per output.")]
PaddingOpt = Annotated[
    str, typer.Option("--padding", "-p", help="Per side: a number, valid or same.")
]


def _single(item: str, input_shape: str, floor: bool, json_out: bool) -> None:
    """Summarise one layer (given as a spec item) on an input and render it."""
    from cvtool.nn import spec
    from cvtool.render import render
    from cvtool.summary import format_shape, human_count, per_axis, summarize

    with user_errors():
        summary = summarize([spec.parse_layer(item)], spec.parse_dims(input_shape), floor)
    row = summary["rows"][1]
    doc = {"spec": item, "floor": floor, **{k: v for k, v in row.items() if k != "index"}}
    doc["notes"] = summary["notes"]
    pairs = {
        "Layer": f"{row['type']}  (as a spec: {item})",
        "Input": format_shape(row["input_shape"]),
        "Output": format_shape(row["output_shape"]),
    }
    for axis, text in row.get("formula", {}).items():
        pairs[f"Output {axis}"] = text
    if "padding" in row:
        pairs["Padding per side"] = per_axis(row["padding"], "")
    pairs.update(Weights=row["weights"], Biases=row["biases"], Parameters=row["params"])
    pairs["MACs"] = human_count(row["macs"])
    pairs["Mult-adds (torchinfo)"] = human_count(row["mult_adds"])
    if row["rf"] is not None:
        rf, jump = per_axis(row["rf"], ""), per_axis(row["jump"], "")
        pairs["Receptive field / jump"] = f"{rf} / {jump}"
    for i, note in enumerate(summary["notes"] + ([row["note"]] if "note" in row else [])):
        pairs[f"Note {i + 1}"] = note
    render(doc, json_out=json_out, summary=pairs, title=f"layer-calc {row['type']}")


# '-k' means neighbours in knn; here it was the kernel/window size. Kept as a hidden alias.
OldKOpt = Annotated[str | None, typer.Option("-k", hidden=True, show_default=False)]


def _one_name(name: str, value, old, required: bool = False):
    """The value of --NAME or of its old spelling -k (not both; one of them when required)."""
    with user_errors():
        from cvtool.errors import CvtoolError

        if value is not None and old is not None:
            raise CvtoolError(f"Give --{name} or its old spelling -k, not both.")
        value = value if value is not None else old
        if value is None and required:
            raise CvtoolError(f"Missing option '--{name}'.")
    return None if value is None else str(value)


def _kernel(text: str) -> str:
    return text.lower().replace("×", "x")


app = typer.Typer(name="layer-calc", help=GROUP_HELP, no_args_is_help=True)


@app.command("conv")
def conv_cmd(
    input_shape: InputOpt,
    filters: Annotated[int, typer.Option("--filters", "-f", help="Number of filters F.")],
    kernel: Annotated[
        str | None, typer.Option("--kernel", help="Kernel K or KhxKw.", show_default=False)
    ] = None,
    stride: Annotated[int, typer.Option("--stride", "-s", help="Stride S.")] = 1,
    padding: PaddingOpt = "0",
    dilation: Annotated[int, typer.Option("--dilation", "-d", help="Dilation D.")] = 1,
    bias: BiasOpt = True,
    floor: FloorOpt = False,
    json_out: JsonOpt = False,
    kernel_k: OldKOpt = None,
) -> None:
    """One convolution: output shape, weights and biases apart, MACs, receptive field."""
    kernel = _one_name("kernel", kernel, kernel_k, required=True)
    item = f"conv:{filters}x{_kernel(kernel)}:s={stride}:p={padding}:d={dilation}:bias={int(bias)}"
    _single(item, input_shape, floor, json_out)


@app.command("pool")
def pool_cmd(
    input_shape: InputOpt,
    pool: Annotated[
        int | None, typer.Option("--pool", help="Window size K (default 2).", show_default=False)
    ] = None,
    stride: Annotated[
        int | None, typer.Option("--stride", "-s", help="Stride (default K).")
    ] = None,
    padding: PaddingOpt = "0",
    mode: Annotated[str, typer.Option("--type", "-t", help="max, avg or l2.")] = "max",
    floor: FloorOpt = False,
    json_out: JsonOpt = False,
    pool_k: OldKOpt = None,
) -> None:
    """One pooling layer (max, average or L2): output shape; no parameters."""
    from cvtool.errors import check_choice

    pool = _one_name("pool", pool, pool_k) or "2"

    kinds = {"max": "maxpool", "avg": "avgpool", "l2": "l2pool"}
    with user_errors():
        check_choice("type", mode, kinds)
    item = f"{kinds[mode]}:{pool}:p={padding}" + (f":s={stride}" if stride is not None else "")
    _single(item, input_shape, floor, json_out)


@app.command("dense")
def dense_cmd(
    input_shape: InputOpt,
    units: Annotated[int, typer.Option("--units", "-u", help="Number of output units.")],
    bias: BiasOpt = True,
    json_out: JsonOpt = False,
) -> None:
    """One fully connected layer (an image input is flattened first)."""
    _single(f"dense:{units}:bias={int(bias)}", input_shape, False, json_out)


@app.command("flatten")
def flatten_cmd(input_shape: InputOpt, json_out: JsonOpt = False) -> None:
    """Flatten: HxWxC -> H*W*C, no parameters."""
    _single("flatten", input_shape, False, json_out)


@app.command("dropout")
def dropout_cmd(
    input_shape: InputOpt,
    rate: Annotated[float, typer.Option("--rate", "-r", help="Fraction dropped.")] = 0.5,
    json_out: JsonOpt = False,
) -> None:
    """Dropout: same shape, no parameters."""
    _single(f"dropout:{rate}", input_shape, False, json_out)


@app.command("net", help=NET_HELP)
def net_cmd(
    spec_text: Annotated[
        str | None,
        typer.Argument(
            metavar="SPEC", help="Spec, @file, path, '-', sizes or preset.", show_default=False
        ),
    ] = None,
    spec_file: Annotated[
        str | None, typer.Option("--spec", help="Read the spec from a file.")
    ] = None,
    input_shape: InputOpt = None,
    batch: Annotated[int, typer.Option("--batch", "-b", help="Batch size for memory.")] = 1,
    dtype: DtypeOpt = "float32",
    cols: Annotated[str | None, typer.Option("--cols", help="Columns to show (see above).")] = None,
    floor: FloorOpt = False,
    json_out: JsonOpt = False,
    csv_out: Annotated[bool, typer.Option("--csv", help="Write the layer table as CSV.")] = False,
) -> None:
    from cvtool.errors import CvtoolError
    from cvtool.nn import spec
    from cvtool.summary import human_bytes, human_count, parse_columns, summarize, summary_table

    with user_errors():
        if (spec_text is None) == (spec_file is None):
            raise CvtoolError("Give the architecture as SPEC or as --spec FILE (one of them).")
        text = spec_text if spec_text is not None else "@" + spec_file
        if not text.strip():
            raise CvtoolError("The architecture spec is empty.")
        shape = spec.parse_dims(input_shape) if input_shape else None
        columns = parse_columns(cols)
        if json_out and csv_out:
            raise CvtoolError("Give --json or --csv, not both.")
        summary = summarize(spec.parse_network(text), shape, floor, batch, dtype)
    headers, rows = summary_table(summary, columns)
    if csv_out:
        import csv

        csv.writer(sys.stdout, lineterminator="\n").writerows([headers, *rows])
        return
    from cvtool.render import kv_table, make_table, render

    if json_out:
        render(summary, json_out=True)
        return
    t = summary["totals"]
    totals = {
        "Total params": t["params"],
        "Trainable params": t["trainable"],
        "Non-trainable params": t["non_trainable"],
        "Weights / biases": f"{t['weights']:,} / {t['biases']:,}",
        "Total MACs (one sample)": human_count(t["macs"]),
        "Total mult-adds (torchinfo, one sample)": human_count(t["mult_adds"]),
        "Param memory": "  ".join(
            f"{d}: {human_bytes(t['param_bytes'][d])}" for d in ("float16", "float32", "float64")
        ),
        f"Activations, forward (batch {batch}, {dtype})": human_bytes(t["forward_bytes"]),
        "Activations, forward + backward": human_bytes(t["forward_backward_bytes"]),
    }
    for i, note in enumerate(summary["notes"]):
        totals[f"Note {i + 1}"] = note
    tables = [
        make_table(headers, rows, title="layer-calc net"),
        kv_table(totals, caption=summary["counts"]),
    ]
    render(summary, json_out=False, tables=tables, summary={})
