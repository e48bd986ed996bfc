"""The cvtool command line: one Typer app, one module per command.

A command module holds one command (a module-level function) or one command
group (a module-level Typer ``app``); ``COMMANDS`` below names them and
``build`` is the only place that wires them. Command modules import only Typer
and ``_common`` at the top, so that ``cvtool --help`` and ``cvtool layer-calc``
start without NumPy.

``cvtool.cli.app`` is the whole app (built on first use; tests and the man
pages use it). The console script ``main`` builds only the command it is asked
for when argv names one: Typer turns every command's signature into a click
command on each run, which for the whole app costs more than the command
itself (tens of ms); ``cvtool layer-calc`` is meant to start fast.
"""

import importlib
import sys
from typing import Annotated

import typer
from typer.core import TyperGroup

from cvtool import __version__

HELP = "Composable commands for computer-vision and deep-learning basics, on NumPy or CuPy."

# command name -> (module in cvtool.cli, attribute): a function, or a Typer group 'app'.
# A module's HELP, when it has one, is the command's help (else the docstring).
COMMANDS = {
    "knn": ("knn", "knn_cmd"),
    "train-mlp": ("train_mlp", "train_mlp_cmd"),
    "train-cnn": ("train_cnn", "train_cnn_cmd"),
    "iou": ("iou", "app"),
    "layer-calc": ("layer_calc", "app"),
    "augment": ("augment", "augment_cmd"),
    "data": ("data", "app"),
    "evaluate": ("models", "evaluate_cmd"),
    "predict": ("models", "predict_cmd"),
    "show": ("show", "app"),
    "perceptron": ("perceptron", "perceptron_cmd"),
    "export": ("export", "export_cmd"),
    "train-detector": ("train_detector", "train_detector_cmd"),
    "detect": ("detect", "detect_cmd"),
    "train-segmenter": ("train_segmenter", "train_segmenter_cmd"),
    "segment": ("detect", "segment_cmd"),
}


class RootGroup(TyperGroup):
    """The root command: a usage error is one line ``error: ...`` on stderr, exit code 2.

    Typer prints usage errors as a multi-line panel. Run standalone, this group
    runs Typer's own ``main`` with ``standalone_mode=False`` (click's documented
    switch: exceptions come back to the caller) and reports them itself. Public
    API only: ``typer.Typer(cls=...)``, ``TyperGroup``, ``typer.TyperException``
    (the base of Typer's usage errors since it vendors Click, hence the pin on
    Typer's minor version in pyproject.toml), ``typer.Abort`` and ``typer.Exit``.
    """

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        from cvtool.cli._common import RUNNING

        words = list(sys.argv[1:] if args is None else args)
        RUNNING["command"] = next((w for w in words if not w.startswith("-")), None)
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except typer.TyperException as exc:  # usage errors, bad parameters, no such command
            sys.exit(_report(exc))
        except typer.Abort:  # end of input at a prompt; Ctrl-C arrives as Exit(130)
            sys.stderr.write("error: aborted.\n")
            sys.exit(1)
        # A command that returns normally returns None; typer.Exit(code) comes back as code.
        sys.exit(code if isinstance(code, int) else 0)


def _report(exc: typer.TyperException) -> int:
    """Write a usage error as one line on stderr; return its exit code."""
    message = " ".join(exc.format_message().split())
    if message:  # empty: a group called without a command, its help is already printed
        ctx = getattr(exc, "ctx", None)
        where = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        sys.stderr.write(f"error: {message}{where}\n")
    return exc.exit_code


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"cvtool {__version__}\n")
        raise typer.Exit()


def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Composable commands for computer-vision and deep-learning basics, on NumPy or CuPy."""


def build(names=None) -> typer.Typer:
    """The cvtool app with every command, or only those in ``names`` (as in ``COMMANDS``)."""
    root = typer.Typer(
        name="cvtool",
        cls=RootGroup,
        help=HELP,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=names is None,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    root.callback()(_root)
    for name, (module_name, attribute) in COMMANDS.items():
        if names is not None and name not in names:
            continue
        module = importlib.import_module(f"cvtool.cli.{module_name}")
        target = getattr(module, attribute)
        if isinstance(target, typer.Typer):
            root.add_typer(target, name=name)
        else:
            root.command(name, help=getattr(module, "HELP", None))(target)
    return root


def __getattr__(name: str):
    if name == "app":  # the whole app, built once on first use
        globals()["app"] = build()
        return globals()["app"]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    """Console-script entry point."""
    command = sys.argv[1] if len(sys.argv) > 1 else None
    build([command] if command in COMMANDS else None)(prog_name="cvtool")
