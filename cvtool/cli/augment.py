"""Placeholder until its issue lands."""

import typer

from cvtool.cli._common import not_yet


def register(app: typer.Typer) -> None:
    @app.command(
        "augment",
        help="Seeded geometric augmentation: flips, rotations, zooms, shifts.",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )
    def augment_cmd() -> None:
        not_yet("augment", "issue 8")
