"""Placeholder until its issue lands."""

import typer

from cvtool.cli._common import not_yet


def register(app: typer.Typer) -> None:
    @app.command(
        "evaluate",
        help="Evaluate a saved model on a dataset's test split.",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )
    def evaluate_cmd() -> None:
        not_yet("evaluate", "issue 5")

    @app.command(
        "predict",
        help="Predict classes of images or a data file with a saved model.",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )
    def predict_cmd() -> None:
        not_yet("predict", "issue 5")
