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
ForceOpt = Annotated[bool, typer.Option("--force", help="Overwrite an existing output.")]
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


def fail(message: str) -> None:
    """Write 'error: message' on stderr and exit with code 2."""
    sys.stderr.write(f"error: {message}\n")
    sys.stderr.flush()
    raise typer.Exit(2)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn CvtoolError into one line on stderr and exit code 2; bugs keep tracebacks."""
    try:
        yield
    except CvtoolError as exc:
        fail(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
