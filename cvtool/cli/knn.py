"""Placeholder until its issue lands."""

import typer

from cvtool.cli._common import not_yet


def register(app: typer.Typer) -> None:
    @app.command(
        "knn",
        help="Classify images with k-nearest neighbours (L1, L2, cosine; k voting).",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )
    def knn_cmd() -> None:
        not_yet("knn", "issue 4")
