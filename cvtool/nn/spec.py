"""The architecture spec language shared by layer-calc, train-mlp and train-cnn.

Pure Python: parsing needs no NumPy. Grammar (layers separated by commas or
new lines; ``#`` starts a comment; spaces are ignored)::

    spec      := [input] layer {"," layer}
    input     := "input:" DIMS              28x28x1 (H x W x C), 28x28 (C = 1) or 784
    layer     := KIND {":" ARG}
    conv      := "conv:" F "x" K ["x" K2] {":" ACT | ":" OPT}     conv:64x3:relu
                 OPT: s=STRIDE  p=PADDING (int, valid, same)  d=DILATION  bias=0
    pool      := ("pool" | "maxpool" | "avgpool" | "l2pool") ":" K {":" OPT}
                 OPT: s=STRIDE  p=PADDING (int, valid, same)       pool:2 is max-pooling
    deconv    := "deconv:" F "x" K ["x" K2] {":" ACT | ":" OPT}   deconv:16x4:s=2:p=1
                 OPT: s=STRIDE  p=PADDING (int)  op=OUTPUT_PADDING (< s)  bias=0
                 transposed convolution: H' = (H - 1) S - 2P + K + OP
    upsample  := "upsample:" F ["x" F2] [":nearest" | ":bilinear"]  upsample:2:bilinear
                 integer factors; nearest by default; no parameters
    dense     := "dense:" UNITS {":" ACT | ":" bias=0}             dense:10:softmax
    dropout   := "dropout:" RATE                                   dropout:0.5 (rate dropped)
    flatten   := "flatten"
    batchnorm := "batchnorm" | "bn"                                2C trainable, 2C not
    ACT       := relu | sigmoid | tanh | softmax | identity         also a layer on its own

Example (the course's Keras network)::

    input:28x28x1, conv:64x3:relu, conv:32x3:relu, conv:32x3:relu, flatten,
    dense:64:relu, dense:10:softmax

A dense layer after an image flattens it implicitly, as Nielsen's code does;
an explicit ``flatten`` is clearer and is what the presets use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cvtool.errors import CvtoolError
from cvtool.shapes import UPSAMPLE_MODES

ACTIVATIONS = ("relu", "sigmoid", "tanh", "softmax", "identity")
POOLS = {"pool": "max", "maxpool": "max", "avgpool": "avg", "l2pool": "l2"}
KINDS = ("input", "conv", "pool", "dense", "dropout", "flatten", "activation", "batchnorm")
KINDS += ("deconv", "upsample")
KINDS += ("tap", "add", "concat")
MERGES = ("add", "concat")


@dataclass(frozen=True)
class LayerSpec:
    """One parsed layer: ``kind`` in KINDS and its keyword arguments.

    conv: filters, kernel (kh, kw), stride, padding (int | 'valid' | 'same'),
    dilation, bias, activation; pool: mode ('max' | 'avg' | 'l2'), pool,
    stride, padding (int | 'valid' | 'same'); dense: units, bias, activation;
    dropout: rate; activation: activation; batchnorm: none; input: shape;
    deconv: filters, kernel (kh, kw), stride, padding (int), output_padding, bias,
    activation; upsample: factor (fh, fw), mode ('nearest' | 'bilinear').
    """

    kind: str
    args: dict = field(default_factory=dict)
    text: str = ""

    def __getitem__(self, key):
        return self.args[key]


def parse_dims(text: str) -> tuple[int, ...]:
    """'28x28x1' -> (28, 28, 1); '28x28' -> (28, 28, 1); '784' -> (784,).

    >>> parse_dims("227x227x3")
    (227, 227, 3)
    """
    try:
        dims = tuple(int(p) for p in text.lower().replace("×", "x").split("x"))
    except ValueError:
        raise CvtoolError(
            f"Input shape must look like 28x28x1 (H x W x C), 28x28 or 784. Got {text!r} instead."
        ) from None
    if not dims or any(d < 1 for d in dims) or len(dims) > 3:
        raise CvtoolError(f"Input shape must have 1 to 3 positive sizes. Got {text!r} instead.")
    return dims + (1,) if len(dims) == 2 else dims


def _int(value: str, name: str, item: str, low: int = 1) -> int:
    try:
        n = int(value)
    except ValueError:
        n = None
    if n is None or n < low:
        raise CvtoolError(f"In {item!r}: {name} must be an int >= {low}. Got {value!r} instead.")
    return n


def _options(parts: list[str], item: str, allowed: tuple[str, ...]) -> tuple[dict, str | None]:
    """Split key=value options from one activation name."""
    opts, act = {}, None
    for p in parts:
        if "=" in p:
            key, value = p.split("=", 1)
            if key not in allowed:
                raise CvtoolError(
                    f"In {item!r}: unknown option {key!r}; allowed: {', '.join(allowed) or 'none'}."
                )
            opts[key] = value
        elif p in ACTIVATIONS and "act" in allowed:
            act = p
        else:
            raise CvtoolError(
                f"In {item!r}: {p!r} is neither an activation ({', '.join(ACTIVATIONS)}) "
                f"nor an option ({', '.join(a + '=' for a in allowed if a != 'act')})."
            )
    return opts, act


def _padding(value: str, item: str) -> int | str:
    if value in ("valid", "same"):
        return value
    return _int(value, "padding", item, low=0)


def _bias(value: str, item: str) -> bool:
    if value not in ("0", "1", "false", "true"):
        raise CvtoolError(f"In {item!r}: bias must be 0 or 1. Got {value!r} instead.")
    return value in ("1", "true")


def parse_layer(item: str) -> LayerSpec:
    """Parse one comma-separated item of a spec."""
    parts = item.split(":")
    kind, rest = parts[0].lower(), parts[1:]
    if kind == "input":
        if len(rest) != 1:
            raise CvtoolError(f"In {item!r}: write input:HxWxC, e.g. input:28x28x1.")
        return LayerSpec("input", {"shape": parse_dims(rest[0])}, item)
    if kind == "conv":
        if not rest:
            raise CvtoolError(f"In {item!r}: write conv:FILTERSxKERNEL, e.g. conv:64x3:relu.")
        sizes = rest[0].lower().split("x")
        if len(sizes) not in (2, 3):
            raise CvtoolError(
                f"In {item!r}: write conv:FILTERSxKERNEL, e.g. conv:64x3 or conv:64x3x5."
            )
        filters = _int(sizes[0], "filters", item)
        kh = _int(sizes[1], "kernel", item)
        kw = _int(sizes[2], "kernel", item) if len(sizes) == 3 else kh
        opts, act = _options(rest[1:], item, ("s", "p", "d", "bias", "act"))
        return LayerSpec(
            "conv",
            {
                "filters": filters,
                "kernel": (kh, kw),
                "stride": _int(opts.get("s", "1"), "stride", item),
                "padding": _padding(opts.get("p", "0"), item),
                "dilation": _int(opts.get("d", "1"), "dilation", item),
                "bias": _bias(opts.get("bias", "1"), item),
                "activation": act or "identity",
            },
            item,
        )
    if kind in POOLS:
        if not rest:
            raise CvtoolError(f"In {item!r}: write {kind}:SIZE, e.g. {kind}:2.")
        size = _int(rest[0], "pool size", item)
        opts, _ = _options(rest[1:], item, ("s", "p"))
        return LayerSpec(
            "pool",
            {
                "mode": POOLS[kind],
                "pool": size,
                "stride": _int(opts["s"], "stride", item) if "s" in opts else size,
                "padding": _padding(opts.get("p", "0"), item),
            },
            item,
        )
    if kind == "dense":
        if not rest:
            raise CvtoolError(f"In {item!r}: write dense:UNITS, e.g. dense:10:softmax.")
        opts, act = _options(rest[1:], item, ("bias", "act"))
        return LayerSpec(
            "dense",
            {
                "units": _int(rest[0], "units", item),
                "bias": _bias(opts.get("bias", "1"), item),
                "activation": act or "identity",
            },
            item,
        )
    if kind in ("deconv", "upsample"):
        return _parse_upsampling(kind, rest, item)
    if kind in ("tap", *MERGES):
        if len(rest) != 1 or not rest[0].isidentifier():
            raise CvtoolError(
                f"In {item!r}: write {kind}:NAME with NAME a word (letters, digits, _), e.g. "
                f"{kind}:skip1."
            )
        return LayerSpec(kind, {"name": rest[0]}, item)
    if kind == "dropout":
        try:
            rate = float(rest[0]) if len(rest) == 1 else -1.0
        except ValueError:
            rate = -1.0
        if not 0 <= rate < 1:
            raise CvtoolError(
                f"In {item!r}: write dropout:RATE with 0 <= RATE < 1, e.g. dropout:0.5."
            )
        return LayerSpec("dropout", {"rate": rate}, item)
    if kind == "flatten":
        if rest:
            raise CvtoolError(f"In {item!r}: flatten takes no arguments.")
        return LayerSpec("flatten", {}, item)
    if kind in ("batchnorm", "bn"):
        if rest:
            raise CvtoolError(f"In {item!r}: batchnorm takes no arguments.")
        return LayerSpec("batchnorm", {}, item)
    if kind in ACTIVATIONS:
        if rest:
            raise CvtoolError(f"In {item!r}: an activation layer takes no arguments.")
        return LayerSpec("activation", {"activation": kind}, item)
    raise CvtoolError(
        f"Unknown layer {kind!r} in {item!r}; known: conv, pool, maxpool, avgpool, l2pool, "
        f"dense, dropout, flatten, batchnorm, deconv, upsample, tap, add, concat, input, "
        f"{', '.join(ACTIVATIONS)}."
    )


def _parse_upsampling(kind: str, rest: list[str], item: str) -> LayerSpec:
    """'deconv:FxK[xK2]:...' or 'upsample:F[xF2][:nearest|:bilinear]'."""
    if kind == "upsample":
        sizes = rest[0].lower().split("x") if rest else []
        if len(sizes) not in (1, 2) or len(rest) > 2 or rest[1:] and rest[1] not in UPSAMPLE_MODES:
            raise CvtoolError(
                f"In {item!r}: write upsample:FACTOR[:nearest|:bilinear], e.g. upsample:2:bilinear."
            )
        fh = _int(sizes[0], "factor", item)
        fw = _int(sizes[1], "factor", item) if len(sizes) == 2 else fh
        mode = rest[1] if len(rest) == 2 else "nearest"
        return LayerSpec("upsample", {"factor": (fh, fw), "mode": mode}, item)
    sizes = rest[0].lower().split("x") if rest else []
    if len(sizes) not in (2, 3):
        raise CvtoolError(
            f"In {item!r}: write deconv:FILTERSxKERNEL, e.g. deconv:16x4:s=2:p=1 or deconv:16x4x2."
        )
    filters = _int(sizes[0], "filters", item)
    kh = _int(sizes[1], "kernel", item)
    kw = _int(sizes[2], "kernel", item) if len(sizes) == 3 else kh
    opts, act = _options(rest[1:], item, ("s", "p", "op", "bias", "act"))
    return LayerSpec(
        "deconv",
        {
            "filters": filters,
            "kernel": (kh, kw),
            "stride": _int(opts.get("s", "1"), "stride", item),
            "padding": _int(opts.get("p", "0"), "padding", item, low=0),
            "output_padding": _int(opts.get("op", "0"), "output padding", item, low=0),
            "bias": _bias(opts.get("bias", "1"), item),
            "activation": act or "identity",
        },
        item,
    )


def parse_spec(text: str) -> list[LayerSpec]:
    """Parse a whole spec (string, or '@file' / a path to a file holding one).

    Returns
    -------
    list of LayerSpec, the first of kind 'input' when the spec names one.
    """
    text = read_spec_text(text)
    lines = [line.split("#", 1)[0] for line in text.splitlines()]
    items = [i.replace(" ", "").replace("\t", "") for line in lines for i in line.split(",")]
    items = [i for i in items if i]
    if not items:
        raise CvtoolError("The architecture spec is empty.")
    layers = [parse_layer(i) for i in items]
    for i, layer in enumerate(layers):
        if layer.kind == "input" and i != 0:
            raise CvtoolError(
                f"'input:...' must come first in the spec; found it at position {i + 1}."
            )
    check_skips(layers)
    return layers


def check_skips(specs: list) -> None:
    """Tap names are unique and every add/concat names a tap earlier in the spec."""
    taps: set[str] = set()
    for spec in specs:
        name = spec.args.get("name")
        if spec.kind == "tap":
            if name in taps:
                raise CvtoolError(f"In {spec.text!r}: the tap name {name!r} is used twice.")
            taps.add(name)
        elif spec.kind in MERGES and name not in taps:
            raise CvtoolError(
                f"In {spec.text!r}: no 'tap:{name}' before it; a skip joins an earlier layer's "
                "output (e.g. 'tap:a, pool:2, ..., upsample:2, concat:a')."
            )


def read_spec_text(text: str) -> str:
    """The spec itself: '-' reads stdin, '@path' or an existing file path reads the file.

    FIFOs, ``/dev/stdin`` and process substitutions (``@<(echo ...)``) are read once.
    """
    from cvtool.fileio import is_stdio, read_text

    if is_stdio(text.strip()):
        return read_text("-")
    if text.startswith("@"):
        path = Path(text[1:])
        if text[1:] == "-":
            return read_text("-")
        if not path.exists() or path.is_dir():
            raise CvtoolError(f"Spec file not found: {path}")
        return read_text(path)
    if ("\n" not in text) and (":" not in text) and text.strip() and _readable(Path(text)):
        return read_text(Path(text))
    return text


def _readable(path: Path) -> bool:
    """An existing file or stream (FIFO, /dev/fd/N), not a folder."""
    try:
        return path.exists() and not path.is_dir()
    except OSError:  # a name too long to be a path is a spec
        return False


def layers_from_sizes(sizes: str | list[int], activation: str = "sigmoid") -> list[LayerSpec]:
    """Nielsen's '784,30,10' as a spec: input:784, dense:30:ACT, dense:10:ACT.

    >>> [l.kind for l in layers_from_sizes("784,30,10")]
    ['input', 'dense', 'dense']
    """
    if isinstance(sizes, str):
        sizes = [_int(s.strip(), "layer size", sizes) for s in sizes.split(",") if s.strip()]
    if len(sizes) < 2:
        raise CvtoolError(f"--layers needs at least an input and an output size. Got {sizes}.")
    if activation not in ACTIVATIONS:
        raise CvtoolError(
            f"The 'activation' parameter must be one of {', '.join(ACTIVATIONS)}. Got {activation!r}."
        )
    specs = [LayerSpec("input", {"shape": (sizes[0],)}, f"input:{sizes[0]}")]
    for n in sizes[1:]:
        specs.append(
            LayerSpec(
                "dense",
                {"units": n, "bias": True, "activation": activation},
                f"dense:{n}:{activation}",
            )
        )
    return specs


PRESETS = {
    "keras-course": "input:28x28x1, conv:64x3:relu, conv:32x3:relu, conv:32x3:relu, flatten, "
    "dense:64:relu, dense:10:softmax",
    "keras-course-improved": "input:28x28x1, conv:64x3:relu, pool:2, conv:32x3:relu, pool:2, "
    "conv:32x3:relu, flatten, dropout:0.5, dense:64:relu, dense:10:softmax",
    "nielsen-ch6": "input:28x28x1, conv:20x5:relu, pool:2, conv:40x5:relu, pool:2, flatten, "
    "dense:100:relu, dense:10:softmax",
}


def parse_network(text: str, activation: str = "sigmoid") -> list[LayerSpec]:
    """A preset name, Nielsen's sizes ('784,30,10') or a spec (string, '@file', path).

    >>> [l.kind for l in parse_network("784,20,10,5")]
    ['input', 'dense', 'dense', 'dense']
    >>> parse_network("keras-course")[1].kind
    'conv'
    """
    text = read_spec_text(text)
    name = text.strip()
    if name in PRESETS:
        return parse_spec(PRESETS[name])
    sizes = [p.strip() for p in name.split(",")]
    if len(sizes) > 1 and all(p.isdigit() for p in sizes):
        return layers_from_sizes(name, activation)
    return parse_spec(text)
