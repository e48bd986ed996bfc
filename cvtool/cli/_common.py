"""Shared pieces of the commands: option aliases, the user-error boundary.

Only Typer, the standard library and ``cvtool.errors`` are imported here, so
that every command (layer-calc above all) starts fast. Command modules import
the library modules they need inside the command function.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from cvtool.errors import CvtoolError

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
DtypeOpt = Annotated[str, typer.Option("--dtype", help="Floating-point type: float32 or float64.")]
DatasetOpt = Annotated[
    str,
    typer.Option("--dataset", help="Named dataset (see 'cvtool data list') or a path."),
]


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
