"""Placeholder until its issue lands."""

import typer

from cvtool.cli._common import not_yet


def register(app: typer.Typer) -> None:
    @app.command(
        "train-cnn",
        help="Train a convolutional network (conv, pooling, dropout, Adam).",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )
    def train_cnn_cmd() -> None:
        not_yet("train-cnn", "issue 6")
