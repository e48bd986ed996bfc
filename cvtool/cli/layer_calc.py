"""Placeholder until its issue lands."""

import typer

from cvtool.cli._common import not_yet


def register(app: typer.Typer) -> None:
    @app.command(
        "layer-calc",
        help="Output sizes, parameter counts and memory of layers and networks.",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )
    def layer_calc_cmd() -> None:
        not_yet("layer-calc", "issue 3")
