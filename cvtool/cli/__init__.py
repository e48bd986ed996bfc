"""The cvtool command line: one Typer app, one module per command.

Each command module has ``register(app)``, which adds its command or command
group. Command modules import only Typer and ``_common`` at the top, so that
``cvtool --help`` and ``cvtool layer-calc`` start without NumPy.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from typer import rich_utils

from cvtool import __version__
from cvtool.cli import (
    augment,
    data,
    iou,
    knn,
    layer_calc,
    models,
    perceptron,
    show,
    train_cnn,
    train_mlp,
)


def _one_line_usage_error(exc) -> None:
    # Typer prints usage errors as a multi-line panel; cvtool promises one line on
    # stderr for every bad input, so usage errors get the same "error: ..." form.
    ctx = getattr(exc, "ctx", None)
    where = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    message = " ".join(exc.format_message().split())
    sys.stderr.write(f"error: {message}{where}\n")


rich_utils.rich_format_error = _one_line_usage_error

app = typer.Typer(
    name="cvtool",
    help="Composable commands for computer-vision and deep-learning basics, on NumPy or CuPy.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"cvtool {__version__}\n")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Composable commands for computer-vision and deep-learning basics, on NumPy or CuPy."""


for _module in (
    knn,
    train_mlp,
    train_cnn,
    iou,
    layer_calc,
    augment,
    data,
    models,
    show,
    perceptron,
):
    _module.register(app)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="cvtool")
