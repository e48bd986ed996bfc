"""Placeholder until its issue lands."""

import typer

from cvtool.cli._common import not_yet


def register(app: typer.Typer) -> None:
    @app.command(
        "data",
        help="Datasets: list, info, convert, fetch.",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )
    def data_cmd() -> None:
        not_yet("data", "issue 2")
