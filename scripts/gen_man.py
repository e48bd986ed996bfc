#!/usr/bin/env python
"""Generate the roff man pages in man/ from the CLI's own definitions.

Usage: ``python scripts/gen_man.py [--out DIR]`` (default: man/ beside this
script's folder). Writes ``cvtool.1`` and one ``cvtool-<command>.1`` per
top-level command; a command group (``data``) gets one page that documents
each of its sub-commands in its own sub-section, as git does for
``git-remote``. Pages for commands that no longer exist are removed.

Typer 0.26+ vendors its own copy of Click, so tools that expect a
``click.Command`` (click-man and the like) do not see the tree; this script
walks ``typer.main.get_command(app)`` itself: ``.commands`` for groups,
``.params`` for arguments and options, ``.help`` for the text. The output is
deterministic (no dates), so ``tests/test_man.py`` can compare it byte for byte.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_MARKUP = re.compile(
    r"\[/?(?:bold|b|italic|i|dim|underline|u|code|red|green|yellow|blue|cyan|magenta)\]"
)
_TYPE_METAVAR = {int: "INTEGER", float: "FLOAT", str: "TEXT", bool: "BOOLEAN"}

ENVIRONMENT = [
    ("CVTOOL_BACKEND", "Default array backend (numpy, cupy or auto) when --backend is not given."),
    (
        "CVTOOL_CACHE",
        "Folder for downloaded datasets (default: $XDG_CACHE_HOME/cvtool or ~/.cache/cvtool).",
    ),
    (
        "CVTOOL_FASHION_DIR",
        "Where Fashion-MNIST is installed (default: /usr/share/datasets/fashion-mnist).",
    ),
    ("NO_COLOR", "When set, output has no colour (also the case when stdout is not a terminal)."),
]


# Two or more examples per command: (what it does, the command line).
EXAMPLES = {
    "knn": [
        (
            "Compare k = 1, 3, 5 with L1 and L2 on a validation split, then test once",
            "cvtool knn \\-k 1,3,5 \\-\\-metric l1,l2",
        ),
        (
            "Fashion-MNIST, predictions as CSV into another program",
            "cvtool knn \\-\\-dataset fashion\\-mnist \\-k 5 \\-\\-predictions \\- | head",
        ),
        (
            "Train on one file, test on another, JSON for jq",
            "cvtool knn \\-\\-train a.npz \\-\\-test b.npz \\-\\-json | jq .accuracy",
        ),
    ],
    "train-mlp": [
        (
            "Nielsen's 784,30,10 network, saved",
            "cvtool train\\-mlp \\-\\-layers 784,30,10 \\-\\-epochs 10 \\-\\-out m.npz",
        ),
        (
            "The sizes from stdin, replacing an earlier model",
            "echo 784,100,10 | cvtool train\\-mlp \\-\\-layers \\- \\-\\-out m.npz \\-\\-force",
        ),
    ],
    "train-cnn": [
        (
            "The course network",
            "cvtool train\\-cnn \\-\\-preset keras\\-course \\-\\-epochs 3 \\-\\-out cnn.npz",
        ),
        (
            "A spec from a process substitution",
            "cvtool train\\-cnn \\-\\-arch @<(echo 'conv:8x3:relu, pool:2, dense:10:softmax')",
        ),
    ],
    "iou": [
        ("IoU and GIoU of two boxes", "cvtool iou box 10,20,30,40 15,25,30,40"),
        (
            "NMS piped into mAP",
            "cvtool iou nms dets.csv \\-\\-out \\- | cvtool iou map \\-\\-gt gt.json "
            "\\-\\-dets \\-",
        ),
        (
            "Mean IoU from pixel counts",
            "cvtool iou counts \\-\\-pred 189,31 \\-\\-true 201,50 \\-\\-overlap 185,23",
        ),
    ],
    "layer-calc": [
        (
            "One convolution",
            "cvtool layer\\-calc conv \\-\\-input 227x227x3 \\-\\-filters 96 "
            "\\-\\-kernel 11 \\-\\-stride 4",
        ),
        (
            "A whole network from stdin, as CSV",
            "echo 'input:28x28x1, conv:20x5, pool:2, dense:10' | cvtool layer\\-calc net \\- "
            "\\-\\-csv",
        ),
    ],
    "augment": [
        (
            "Two augmented copies of each image, written as NPZ",
            "cvtool augment \\-\\-copies 2 \\-\\-out aug.npz",
        ),
        (
            "Boxes moved with their images, straight into iou",
            "cvtool augment \\-\\-boxes b.csv \\-\\-boxes\\-out \\- | cvtool iou map "
            "\\-\\-gt b.csv \\-\\-dets \\-",
        ),
    ],
    "data": [
        ("What is there", "cvtool data list"),
        (
            "Convert to NPZ and describe it through a pipe",
            "cvtool data convert mnist\\-sample \\- | cvtool data info \\-",
        ),
    ],
    "evaluate": [
        ("Test accuracy of a saved model", "cvtool evaluate m.npz"),
        (
            "On another data set, as JSON",
            "cvtool evaluate m.npz \\-\\-dataset fashion\\-mnist \\-\\-json",
        ),
    ],
    "predict": [
        ("Classes of two images", "cvtool predict m.npz a.png b.png"),
        (
            "A .npy array from stdin, JSON into Python",
            "cat x.npy | cvtool predict m.npz \\- \\-\\-json | python3 \\-c "
            "'import json,sys; print(json.load(sys.stdin))'",
        ),
    ],
    "show": [
        ("Class templates of a linear classifier", "cvtool show weights m.npz \\-\\-out t.png"),
        (
            "First-layer filters of a CNN, replacing the picture",
            "cvtool show filters cnn.npz \\-\\-out f.png \\-\\-force",
        ),
    ],
    "perceptron": [
        ("Nielsen's NAND perceptron", "cvtool perceptron"),
        ("Learn OR with the perceptron rule", "cvtool perceptron \\-\\-learn OR \\-\\-json"),
    ],
    "export": [
        ("A model as ONNX", "cvtool export m.npz m.onnx"),
        (
            "Replace an earlier export with opset 13",
            "cvtool export m.npz m.onnx \\-\\-opset 13 \\-\\-force",
        ),
    ],
    "train-detector": [
        (
            "A grid detector on freshly generated canvases, saved",
            "cvtool train\\-detector \\-\\-epochs 5 \\-\\-out detector.npz",
        ),
        (
            "On a canvas folder, replacing an earlier model",
            "cvtool train\\-detector \\-\\-dataset canvases \\-\\-out detector.npz \\-\\-force",
        ),
    ],
    "detect": [
        (
            "Detections of a canvas folder's test split, scored by iou map",
            "cvtool detect detector.npz \\-\\-dataset canvases | cvtool iou map "
            "\\-\\-gt canvases/annotations/test.json \\-\\-dets \\-",
        ),
        ("The box CSV of two images", "cvtool detect detector.npz a.png b.png \\-\\-out d.csv"),
    ],
    "train-segmenter": [
        (
            "An FCN segmenter on generated canvases",
            "cvtool train\\-segmenter \\-\\-out segmenter.npz",
        ),
        (
            "Fewer epochs, JSON summary",
            "cvtool train\\-segmenter \\-\\-epochs 3 \\-\\-out s.npz \\-\\-force \\-\\-json",
        ),
    ],
    "segment": [
        (
            "Label maps of a canvas folder's test split",
            "cvtool segment segmenter.npz \\-\\-dataset canvases \\-\\-out maps",
        ),
        (
            "Instances piped into segm mAP",
            "cvtool segment segmenter.npz \\-\\-dataset canvases \\-\\-instances \\- > "
            "inst.json && cvtool iou map \\-\\-gt canvases/annotations/test.json \\-\\-dets "
            "inst.json \\-\\-iou\\-type segm",
        ),
    ],
}

EXIT_STATUS = [
    ("0", "Success."),
    ("1", "An internal failure (a bug: the traceback is printed)."),
    (
        "2",
        "A user error: bad options or input, an output that cannot be written or exists "
        "without \\-\\-force, not enough memory. One line starting 'error:' on stderr; no "
        "file is changed.",
    ),
    ("130", "Interrupted (Ctrl\\-C)."),
]

FILES_TEXT = (
    "Every file argument that can stream takes '\\-' for stdin or stdout; FIFOs, /dev/stdin, "
    "/dev/stdout and process substitution work. Outputs are checked before any work starts; "
    "an existing regular file is replaced only with \\-\\-force, atomically, and a symlink "
    "keeps pointing at its (updated) target. When a result goes to stdout, the report goes to "
    "stderr. See docs/files.md."
)


def examples_section(name: str) -> list[str]:
    out = [".SH EXAMPLES"]
    for what, line in EXAMPLES[name]:
        out += [".PP", what + ":", ".PP", ".RS 4", ".nf", line, ".fi", ".RE"]
    return out


def exit_section() -> list[str]:
    out = [".SH EXIT STATUS"]
    for code, text in EXIT_STATUS:
        out += [".TP", f"\\fB{code}\\fR", text]
    return out


def esc(text: str) -> str:
    """Escape text for roff: backslashes, leading dots/quotes, hyphens in option names."""
    text = _MARKUP.sub("", text).replace("\\", "\\e")
    text = re.sub(r"(?<![\w])-", r"\\-", text)  # option dashes, not hyphenated words
    lines = []
    for line in text.split("\n"):
        lines.append("\\&" + line if line.startswith((".", "'")) else line)
    return "\n".join(lines)


def esc_opt(name: str) -> str:
    """An option or command name: every hyphen is a minus (\\-), so it can be copied and searched."""
    return esc(name).replace("\\-", "-").replace("-", "\\-")


def paragraphs(help_text: str | None) -> list[str]:
    """Roff for a help text: blank-line paragraphs, indented or \\b blocks kept verbatim."""
    out = []
    for block in re.split(r"\n\s*\n", (help_text or "").strip()):
        if not block.strip():
            continue
        lines = block.split("\n")
        verbatim = lines[0].strip() == "\b" or any(line.startswith("  ") for line in lines)
        lines = [line for line in lines if line.strip() != "\b"]
        if verbatim:
            out += [".PP", ".nf", *(esc(line.rstrip()) for line in lines), ".fi"]
        else:
            out += [".PP", esc(" ".join(line.strip() for line in lines))]
    return out


def short_help(cmd) -> str:
    text = cmd.short_help or (cmd.help or "").strip().split("\n\n")[0]
    return " ".join(_MARKUP.sub("", text).split())


def metavar(param) -> str:
    if getattr(param, "metavar", None):
        return param.metavar
    if param.opts and param.opts[0].startswith("-"):
        annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
        if annotation in (int, float):
            return _TYPE_METAVAR[annotation]
        long = max(param.opts, key=len).lstrip("-")
        return long.upper().replace("-", "_")
    return param.name.upper()


def is_flag(param) -> bool:
    return bool(getattr(param, "is_flag", False))


def is_option(param) -> bool:
    return any(o.startswith("-") for o in param.opts)


def default_text(param) -> str:
    if is_flag(param) and param.secondary_opts:  # --bias/--no-bias: say which one is on
        return f" (default: {param.opts[0] if param.default else param.secondary_opts[0]})"
    if is_flag(param) or param.default is None or param.required:
        return ""
    if getattr(param, "show_default", True) is False:
        return ""
    value = param.default
    if isinstance(value, list | tuple):
        value = ", ".join(map(str, value))
    return f" (default: {value})"


def params_section(params, title_args="ARGUMENTS", title_opts="OPTIONS", sub=False) -> list[str]:
    visible = [p for p in params if not getattr(p, "hidden", False)]
    args = [p for p in visible if not is_option(p)]
    opts = [p for p in visible if is_option(p)]
    out = []
    head = ".PP\n.B" if sub else ".SH"
    if args:
        out.append(f"{head} {title_args}")
        for p in args:
            out += [
                ".TP",
                f"\\fI{esc(metavar(p))}\\fR",
                esc((getattr(p, "help", None) or "").strip() or " "),
            ]
    if opts:
        out.append(f"{head} {title_opts}")
        for p in opts:
            names = ", ".join(f"\\fB{esc_opt(o)}\\fR" for o in [*p.opts, *p.secondary_opts])
            if not is_flag(p):
                names += f" \\fI{esc(metavar(p))}\\fR"
            text = (getattr(p, "help", None) or "").strip() + default_text(p)
            out += [".TP", names, esc(" ".join(text.split())) or " "]
    return out


def synopsis(path: str, cmd) -> str:
    parts = [f"\\fB{esc_opt(path)}\\fR"]
    if any(is_option(p) for p in cmd.params if not getattr(p, "hidden", False)):
        parts.append("[\\fIOPTIONS\\fR]")
    if hasattr(cmd, "commands"):
        parts.append("\\fICOMMAND\\fR [\\fIARGS\\fR]...")
    for p in cmd.params:
        if not is_option(p) and not getattr(p, "hidden", False):
            mv = f"\\fI{esc(metavar(p))}\\fR"
            parts.append(mv if p.required else f"[{mv}]")
    return " ".join(parts)


def header(title: str, version: str) -> list[str]:
    return [
        '.\\" Generated by scripts/gen_man.py from the cvtool CLI; do not edit.',
        f'.TH {title.upper()} 1 "" "cvtool {version}" "cvtool manual"',
    ]


def command_page(name: str, cmd, version: str) -> str:
    path = f"cvtool {name}"
    out = header(f"cvtool-{name}", version)
    out += [".SH NAME", f"cvtool\\-{esc_opt(name)} \\- {esc(short_help(cmd))}"]
    out += [".SH SYNOPSIS", synopsis(path, cmd)]
    out += [".SH DESCRIPTION", *paragraphs(cmd.help)]
    out += params_section(cmd.params)
    subs = {
        k: c for k, c in getattr(cmd, "commands", {}).items() if not getattr(c, "hidden", False)
    }
    if subs:
        out.append(".SH COMMANDS")
        for sub_name, sub in subs.items():
            out += [
                f'.SS "{esc_opt(path)} {esc_opt(sub_name)}"',
                ".PP",
                synopsis(f"{path} {sub_name}", sub),
            ]
            out += paragraphs(sub.help)
            out += params_section(sub.params, "Arguments", "Options", sub=True)
    out += examples_section(name)
    out += [".SH FILES", FILES_TEXT]
    out += exit_section()
    out += [".SH SEE ALSO", "\\fBcvtool\\fR(1)"]
    return "\n".join(out) + "\n"


def root_page(cmd, version: str) -> str:
    out = header("cvtool", version)
    out += [".SH NAME", f"cvtool \\- {esc(short_help(cmd))}"]
    out += [".SH SYNOPSIS", synopsis("cvtool", cmd)]
    out += [".SH DESCRIPTION", *paragraphs(cmd.help)]
    out += params_section(cmd.params)
    out.append(".SH COMMANDS")
    visible = {k: c for k, c in cmd.commands.items() if not getattr(c, "hidden", False)}
    for name, sub in visible.items():
        out += [
            ".TP",
            f"\\fB{esc_opt(name)}\\fR",
            f"{esc(short_help(sub))} See \\fBcvtool\\-{esc_opt(name)}\\fR(1).",
        ]
    out.append(".SH ENVIRONMENT")
    for var, text in ENVIRONMENT:
        out += [".TP", f"\\fB{var}\\fR", esc(text)]
    out += [".SH EXAMPLES"]
    for what, line in (EXAMPLES["iou"][1], EXAMPLES["layer-calc"][1], EXAMPLES["knn"][0]):
        out += [".PP", what + ":", ".PP", ".RS 4", ".nf", line, ".fi", ".RE"]
    out += [".SH FILES", FILES_TEXT]
    out += exit_section()
    out += [".SH SEE ALSO", ", ".join(f"\\fBcvtool\\-{esc_opt(n)}\\fR(1)" for n in visible)]
    return "\n".join(out) + "\n"


def build_pages() -> dict[str, str]:
    """File name -> roff text for every page."""
    import typer.main

    from cvtool import __version__
    from cvtool.cli import app

    root = typer.main.get_command(app)
    pages = {"cvtool.1": root_page(root, __version__)}
    for name, cmd in root.commands.items():
        if not getattr(cmd, "hidden", False):
            pages[f"cvtool-{name}.1"] = command_page(name, cmd, __version__)
    return pages


def generate(out_dir: str | Path) -> list[Path]:
    """Write every page into out_dir (atomically) and remove stale cvtool*.1 pages there."""
    from cvtool.fileio import atomic_write_text

    out_dir = Path(out_dir)
    pages = build_pages()
    for stale in out_dir.glob("cvtool*.1"):
        if stale.name not in pages:
            stale.unlink()
    written = []
    for fname, text in pages.items():
        atomic_write_text(out_dir / fname, text)
        written.append(out_dir / fname)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate cvtool's man pages.")
    parser.add_argument("--out", default=str(ROOT / "man"), help="output folder (default: man/)")
    args = parser.parse_args(argv)
    written = generate(args.out)
    print(f"wrote {len(written)} pages to {args.out}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))  # this tree's cvtool, not another installed one
    sys.exit(main())
