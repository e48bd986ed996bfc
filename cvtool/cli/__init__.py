"""The cvtool command line: one Typer app, one module per command.

A command module holds one command (a module-level function, wired below
with ``app.command``) or one command group (a module-level ``app``, wired with
``app.add_typer``); this file is the only place that wires them. Command modules import only Typer and ``_common`` at the top, so that
``cvtool --help`` and ``cvtool layer-calc`` start without NumPy.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
import typer.core

from cvtool import __version__
from cvtool.cli import (
    augment,
    data,
    export,
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
    if type(exc).__name__ == "NoArgsIsHelpError":  # help was printed; nothing to add
        return
    ctx = getattr(exc, "ctx", None)
    where = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    message = " ".join(exc.format_message().split())
    sys.stderr.write(f"error: {message}{where}\n")


def _patch_rich_utils(module) -> None:
    module.rich_format_error = _one_line_usage_error


class _OnImport:
    """Patch typer.rich_utils when Typer first imports it (help, usage errors).

    Importing it eagerly costs ~85 ms (rich.markdown, pygments) on every run,
    more than ``import typer, rich`` itself; layer-calc must start fast.
    """

    def find_spec(self, name, path=None, target=None):
        if name != "typer.rich_utils":
            return None
        sys.meta_path.remove(self)
        import importlib.util

        spec = importlib.util.find_spec(name)
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            _patch_rich_utils(module)

        spec.loader.exec_module = exec_module
        return spec


if "typer.rich_utils" in sys.modules:
    _patch_rich_utils(sys.modules["typer.rich_utils"])
else:
    sys.meta_path.insert(0, _OnImport())


class _LazyCoercion:
    """Typer's value coercion, built only for a value that needs it.

    Typer 0.29 builds a Pydantic TypeAdapter (importing Pydantic, ~100 ms) even
    for absent values such as --help's None; absent values are answered here as
    Typer's RuntimeParam.coerce answers them, everything else goes to Typer.
    """

    def __init__(self, build):
        self.build = build

    def coerce(self, value, param, ctx):
        if value is None:
            return () if (param.multiple or param.nargs == -1) else None
        return self.build().coerce(value, param=param, ctx=ctx)


_typer_runtime_param = getattr(
    getattr(typer.core, "_TyperParameter", None), "get_runtime_param", None
)


def _lazy_runtime_param(self):
    if getattr(self, "_runtime_param", None) is not None:
        return self._runtime_param
    return _LazyCoercion(lambda: _typer_runtime_param(self))


if _typer_runtime_param is not None:  # Typer versions without it need no patch
    typer.core._TyperParameter.get_runtime_param = _lazy_runtime_param

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


app.command("knn", help=knn.HELP)(knn.knn_cmd)
app.command("train-mlp")(train_mlp.train_mlp_cmd)
app.command("train-cnn")(train_cnn.train_cnn_cmd)
app.add_typer(iou.app, name="iou")
app.add_typer(layer_calc.app, name="layer-calc")
app.command("augment")(augment.augment_cmd)
app.add_typer(data.app, name="data")
app.command("evaluate")(models.evaluate_cmd)
app.command("predict")(models.predict_cmd)
app.command("export")(export.export_cmd)
app.add_typer(show.app, name="show")
app.command("perceptron", help=perceptron.HELP)(perceptron.perceptron_cmd)


def main() -> None:
    """Console-script entry point."""
    if sys.argv[1:2] == ["layer-calc"]:
        # Typer builds every command's click tree on each run (~25 ms); layer-calc must
        # start fast, so it runs under a root that holds only its own group.
        fast = typer.Typer(
            name="cvtool",
            pretty_exceptions_enable=False,
            add_completion=False,
            context_settings={"help_option_names": ["-h", "--help"]},
        )
        fast.callback()(_root)
        fast.add_typer(layer_calc.app, name="layer-calc")
        fast(prog_name="cvtool")
        return
    app(prog_name="cvtool")
