"""Placeholder until its issue lands."""

import typer

from cvtool.cli._common import not_yet


def register(app: typer.Typer) -> None:
    @app.command(
        "perceptron",
        help="The course's perceptron: truth tables and the learning rule.",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )
    def perceptron_cmd() -> None:
        not_yet("perceptron", "issue 5")
