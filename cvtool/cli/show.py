"""Placeholder until its issue lands."""

import typer

from cvtool.cli._common import not_yet


def register(app: typer.Typer) -> None:
    @app.command(
        "show",
        help="Draw a saved model's first-layer weights or filters as an image.",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )
    def show_cmd() -> None:
        not_yet("show", "issue 5")
