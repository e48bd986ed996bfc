"""Shared pieces of the commands: option aliases, the user-error boundary.

Only Typer, the standard library and ``cvtool.errors`` are imported here, so
that every command (layer-calc above all) starts fast. Command modules import
the library modules they need inside the command function.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from cvtool.errors import CvtoolError

# One alias per option name used by more than one command: the name, its type and its help
# are declared here once; each command gives the default in its signature.
BackendOpt = Annotated[
    str | None,
    typer.Option(
        "--backend",
        help="Array backend: numpy, cupy or auto (CuPy when a GPU answers). "
        "Default: $CVTOOL_BACKEND, else auto.",
        show_default=False,
    ),
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Write one JSON document to stdout instead of tables.")
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed (same seed, same result).")]
DtypeOpt = Annotated[
    str, typer.Option("--dtype", help="Element type of the arrays, e.g. float32 or float64.")
]
DatasetOpt = Annotated[
    str | None,
    typer.Option(
        "--dataset",
        help="Named dataset (see 'cvtool data list') or a path: IDX folder, .npz, .csv, "
        "or a folder of images with one sub-folder per class.",
    ),
]
ValidationOpt = Annotated[
    str | None,
    typer.Option(
        "--validation",
        help="Validation split carved from the training set: a count (1000) or a fraction (0.1).",
    ),
]
OutOpt = Annotated[
    Path | None,
    typer.Option(
        "--out", help="Write the result to this file or folder (the description says what)."
    ),
]
ForceOpt = Annotated[
    bool,
    typer.Option("--force", help="Replace an existing output file (without it, one is refused)."),
]
FormatOpt = Annotated[
    str | None,
    typer.Option(
        "--format",
        help="Data-set format to write: idx, npz, csv or folder (PNG per class). "
        "Default: from the extension; a path without one is an IDX folder.",
        show_default=False,
    ),
]
BoxFormatOpt = Annotated[
    str,
    typer.Option(
        "--box-format",
        help="Box coordinates: xywh (corner + size, COCO's), xyxy or cxcywh. "
        "COCO JSON files are always xywh.",
    ),
]
PlotOpt = Annotated[Path | None, typer.Option("--plot", help="Draw the result to this .png file.")]


# The option that lowers the memory a command asks for, named when an allocation fails.
MEMORY_HINTS = {
    "train-mlp": "use smaller --layers sizes or a smaller --batch-size",
    "train-cnn": "use a smaller --arch (fewer filters or units) or a smaller --batch-size",
    "augment": "lower --copies (or augment the data set in parts)",
    "knn": "lower --memory, or use a smaller --train set",
    "predict": "give fewer inputs at a time",
    "evaluate": "use a smaller --dataset",
    "iou": "give fewer boxes at a time",
    "data": "convert a smaller data set",
}


# The command being run (the first word after 'cvtool'), set by the root group.
RUNNING: dict[str, str | None] = {"command": None}


def _memory_hint() -> str:
    """The MEMORY_HINTS entry of the running command, else a general one."""
    return MEMORY_HINTS.get(RUNNING["command"] or "", "use smaller sizes")


def _too_big(exc: BaseException) -> str | None:
    """A one-line message for an allocation that cannot be made, else None."""
    text = " ".join(str(exc).split())
    if isinstance(exc, MemoryError):
        asked = text or "an array larger than the free memory"
    elif isinstance(exc, ValueError) and any(
        m in text for m in ("too big", "maximum possible size", "Maximum allowed dimension")
    ):
        asked = "an array larger than any the machine can address"
    elif isinstance(exc, OverflowError):
        asked = f"a size that does not fit in memory ({text})"
    else:
        return None
    asked = asked[0].lower() + asked[1:]
    return f"Not enough memory: {asked}; {_memory_hint()}."


def check_out(path, force: bool = False, what: str = "output", folder: bool = False):
    """`fileio.check_output` for a CLI option (None passes): one line, exit 2, before any work."""
    if path is None:
        return None
    from cvtool.fileio import check_output

    return check_output(path, overwrite=force, what=what, folder=folder)


def one_of(**given) -> None:
    """Refuse options that exclude each other: at most one of `given` may be set (not None/False).

    Keys are option names without dashes, underscores for dashes.
    """
    used = [f"--{k.replace('_', '-')}" for k, v in given.items() if v not in (None, False)]
    if len(used) > 1:
        raise CvtoolError(f"Give {' or '.join(used)}, not both.")


@contextmanager
def report_stream(*outputs) -> Iterator[None]:
    """Send the report (tables or --json) to stderr while a result file goes to stdout.

    stdout then carries the result file alone, so ``cvtool iou nms d.csv --out - | ...``
    pipes cleanly.
    """
    from contextlib import redirect_stdout

    from cvtool.fileio import writes_stdout

    if writes_stdout(*outputs):
        with redirect_stdout(sys.stderr):
            yield
    else:
        yield


@contextmanager
def spinner(text: str) -> Iterator[None]:
    """A spinner on stderr while a slow step runs (loading, searching); silent off a terminal."""
    from cvtool.render import progress

    bar = progress()
    with bar:
        bar.add_task(text, total=None)
        yield


def fail(message: str) -> None:
    """Write 'error: message' on stderr and exit with code 2."""
    sys.stderr.write(f"error: {message}\n")
    sys.stderr.flush()
    raise typer.Exit(2)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn CvtoolError into one line on stderr and exit code 2; bugs keep tracebacks.

    An allocation that cannot be made (MemoryError, NumPy's "array is too big")
    is a user error too: the line says what was asked and which option lowers it.
    """
    try:
        yield
    except CvtoolError as exc:
        fail(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
    except (MemoryError, ValueError, OverflowError) as exc:
        message = _too_big(exc)
        if message is None:
            raise
        fail(message)
