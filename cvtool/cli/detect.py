"""cvtool detect / segment: run a trained detector or segmenter on images."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cvtool.cli._common import BackendOpt, ForceOpt, JsonOpt, user_errors

ModelArg = Annotated[Path, typer.Argument(help="A model file from train-detector/segmenter.")]
ImagesArg = Annotated[
    list[Path] | None, typer.Argument(help="PNG/JPEG images (or give --dataset FOLDER).")
]
FolderOpt = Annotated[
    Path | None,
    typer.Option(
        "--dataset",
        help="A canvas folder from 'cvtool data make-canvas': its --split images, with the "
        "image ids of its annotations/<split>.json.",
        show_default=False,
    ),
]
SplitOpt = Annotated[str, typer.Option("--split", help="With --dataset: train or test.")]
PreviewOpt = Annotated[
    Path | None,
    typer.Option("--preview", help="Write one PNG per image, enlarged, to this new folder."),
]


def detect_cmd(
    model_path: ModelArg,
    images: ImagesArg = None,
    dataset: FolderOpt = None,
    split: SplitOpt = "test",
    out: Annotated[
        str,
        typer.Option(
            "--out",
            help="COCO results JSON (.json) or the box CSV (.csv, image,class,x,y,w,h,score); "
            "'-' is stdout (JSON).",
        ),
    ] = "-",
    score_threshold: Annotated[
        float,
        typer.Option(
            "--score-threshold",
            help="Keep detections scoring at least this (low for mAP, which integrates over scores).",
        ),
    ] = 0.05,
    iou: Annotated[float, typer.Option("--iou", help="Per-class NMS IoU threshold.")] = 0.5,
    top_k: Annotated[int, typer.Option("--top-k", help="At most this many per image.")] = 100,
    preview: PreviewOpt = None,
    force: ForceOpt = False,
    backend: BackendOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Boxes, classes and scores of a trained grid detector, for 'cvtool iou map/nms'.

    NMS is the code of 'cvtool iou nms' (per class). With --dataset FOLDER the image
    ids are those of FOLDER/annotations/<split>.json, so
    'cvtool iou map --gt FOLDER/annotations/test.json --dets results.json' scores them.
    """
    with user_errors():
        from cvtool import fileio
        from cvtool.detect import output as O
        from cvtool.detect import task as D
        from cvtool.nn.inference import read_images
        from cvtool.nn.model import Sequential

        fileio.check_output(out, overwrite=force, what="detections output")
        _check_preview(preview, force)
        model = Sequential.load(model_path, backend_name=backend)
        det = D.detector_of(model)
        x, names, ids = read_images(images, model.input_shape, dataset=dataset, split=split)
        results = D.detect(model, x, image_ids=ids, score_threshold=score_threshold,
                           iou_threshold=iou, top_k=top_k)  # fmt: skip
        O.write_results(results, out)
        if preview is not None:
            O.write_previews(preview, x, ids, names, results, det.class_names)
    if out != "-":
        _summary("detect", {"images": len(x), "detections": len(results), "out": out}, json_out)


def segment_cmd(
    model_path: ModelArg,
    images: ImagesArg = None,
    dataset: FolderOpt = None,
    split: SplitOpt = "test",
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Write one label-map PNG (palette) per image to this new folder."
        ),
    ] = None,
    instances: Annotated[
        str | None,
        typer.Option(
            "--instances",
            help="COCO results with RLE masks, one per connected component of a class "
            "(.json, '-' for stdout), for 'cvtool iou map --iou-type segm'.",
        ),
    ] = None,
    min_area: Annotated[
        int, typer.Option("--min-area", help="Instances: drop components smaller than this.")
    ] = 4,
    preview: PreviewOpt = None,
    force: ForceOpt = False,
    backend: BackendOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Label maps of a trained segmenter (and instances from their connected components)."""
    with user_errors():
        from cvtool import fileio
        from cvtool.errors import CvtoolError
        from cvtool.nn.inference import read_images
        from cvtool.nn.model import Sequential
        from cvtool.segment import output as S

        if out is None and instances is None and preview is None:
            raise CvtoolError("Say what to write: --out FOLDER, --instances FILE and/or --preview.")
        for folder in (out, preview):
            _check_preview(folder, force)
        if instances is not None:
            fileio.check_output(instances, overwrite=force, what="instances output")
        model = Sequential.load(model_path, backend_name=backend)
        x, names, ids = read_images(images, model.input_shape, dataset=dataset, split=split)
        doc = S.write_segmentation(model, x, ids, out=out, instances=instances,
                                   preview=preview, min_area=min_area)  # fmt: skip
    if instances != "-":
        _summary("segment", doc, json_out)


def _check_preview(folder, force: bool) -> None:
    from cvtool import fileio

    if folder is not None:
        fileio.check_output_folder(folder, overwrite=force)


def _summary(command: str, doc: dict, json_out: bool) -> None:
    from cvtool.render import render

    render(doc, json_out=json_out, title=command, summary=doc)
