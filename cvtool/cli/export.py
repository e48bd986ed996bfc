"""cvtool export: a saved model (.npz) as an ONNX file that ONNX Runtime runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cvtool.cli._common import ForceOpt, JsonOpt, report_stream, user_errors


def export_cmd(
    model_path: Annotated[Path, typer.Argument(help="A model file written by --out (.npz).")],
    out: Annotated[Path, typer.Argument(help="The ONNX file to write (.onnx; '-' is stdout).")],
    opset: Annotated[
        int, typer.Option("--opset", help="ONNX opset (ai.onnx domain), 13 or newer.")
    ] = 17,
    force: ForceOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Export a trained model to ONNX (input NHWC float32, batch axis dynamic; needs the onnx extra)."""
    with user_errors():
        from cvtool.nn.export import export_file
        from cvtool.render import render

        doc = export_file(model_path, out, opset=opset, overwrite=force)
    summary = {k: v for k, v in doc.items() if k not in ("nodes", "input_shape", "output_shape")}
    summary["input"] = "x".join(["N", *map(str, doc["input_shape"][1:])])
    summary["output"] = "x".join(["N", *map(str, doc["output_shape"][1:])])
    summary["nodes"] = " ".join(doc["nodes"])
    with report_stream(out):
        render(doc, json_out=json_out, title="Exported to ONNX", summary=summary)
