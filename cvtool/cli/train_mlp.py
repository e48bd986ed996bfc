"""Placeholder until its issue lands."""

import typer

from cvtool.cli._common import not_yet


def register(app: typer.Typer) -> None:
    @app.command(
        "train-mlp",
        help="Train a fully connected network by backpropagation (Nielsen's network).",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )
    def train_mlp_cmd() -> None:
        not_yet("train-mlp", "issue 5")
