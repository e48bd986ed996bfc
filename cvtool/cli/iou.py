"""Placeholder until its issue lands."""

import typer

from cvtool.cli._common import not_yet


def register(app: typer.Typer) -> None:
    @app.command(
        "iou",
        help="Box and mask overlap: IoU, GIoU, NMS, mAP (COCO and VOC).",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )
    def iou_cmd() -> None:
        not_yet("iou", "issue 7")
