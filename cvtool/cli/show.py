"""cvtool show: draw what a saved model learned.

``show weights`` draws each first-layer unit's incoming weights as an image
(one template per class for a linear classifier, ``--layers 784,10``).
``show filters`` draws the first convolution's kernels (from the train-cnn
work).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cvtool.cli._common import ForceOpt, JsonOpt, OutOpt, check_out, report_stream, user_errors

app = typer.Typer(
    help="Draw a saved model's first-layer weights or filters as an image.",
    no_args_is_help=True,
)


@app.command("weights")
def weights_cmd(
    model_path: Annotated[Path, typer.Argument(help="A model file written by --out (.npz).")],
    out: OutOpt = Path("templates.png"),
    max_units: Annotated[int, typer.Option("--max-units", help="Draw at most N units.")] = 100,
    force: ForceOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Draw the first dense layer's incoming weights, one image per unit (red +, blue -).

    --out is the PNG file to write ('-': stdout, the report then goes to stderr).
    """
    _draw("weights", model_path, out, max_units, force, json_out)


@app.command("filters")
def filters_cmd(
    model_path: Annotated[Path, typer.Argument(help="A model file written by --out (.npz).")],
    out: OutOpt = Path("filters.png"),
    max_filters: Annotated[int, typer.Option("--max-filters", help="Draw at most N filters.")] = 64,
    force: ForceOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Draw the first convolution's kernels as a grid (red +, blue -).

    --out is the PNG file to write ('-': stdout, the report then goes to stderr).
    """
    _draw("filters", model_path, out, max_filters, force, json_out)


def _draw(what: str, model_path: Path, out: Path, limit: int, force: bool, json_out: bool):
    """Load a model, take its first-layer weights ('weights') or kernels ('filters'), draw them."""
    with user_errors():
        from cvtool import render
        from cvtool.errors import CvtoolError, check_int
        from cvtool.fileio import writes_stdout
        from cvtool.nn.model import Sequential
        from cvtool.plots import plot_templates

        check_int("max-units" if what == "weights" else "max-filters", limit, low=1)
        if out.suffix.lower() != ".png" and not writes_stdout(out):
            raise CvtoolError(f"--out must end in .png. Got {str(out)!r}.")
        check_out(out, force)
        model = Sequential.load(model_path, backend_name="numpy")
        if what == "weights":
            from cvtool.nn.inference import dense_templates as extract
        else:
            from cvtool.nn.cnn import conv_filters as extract
        images, titles, info = extract(model, limit)
        noun = "weights" if what == "weights" else "kernels"
        plot_templates(images, out, titles, title=f"{model_path.name}: {info['layer']} {noun}")
    doc = {"model": str(model_path), "out": str(out), **info}
    with report_stream(out):
        render.render(doc, json_out=json_out, title=f"show {what}")
