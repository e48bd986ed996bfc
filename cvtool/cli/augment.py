"""cvtool augment: seeded, batched geometric augmentation of a data set (and its boxes)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cvtool.cli._common import (
    BackendOpt,
    BoxFormatOpt,
    DatasetOpt,
    ForceOpt,
    FormatOpt,
    JsonOpt,
    OutOpt,
    SeedOpt,
    check_out,
    one_of,
    report_stream,
    spinner,
    user_errors,
)

RANGE_HELP = "a number v (uniform -v..v) or 'low,high'"
SCALE_HELP = "a spread d (uniform 1-d..1+d) or 'low,high' factors"


def augment_cmd(
    dataset: DatasetOpt = "mnist-sample",
    out: OutOpt = None,
    fmt: FormatOpt = None,
    force: ForceOpt = False,
    copies: Annotated[
        int, typer.Option("--copies", help="Augmented copies per training image.")
    ] = 1,
    keep_original: Annotated[
        bool, typer.Option("--keep-original", help="Also keep each original image.")
    ] = False,
    rotation: Annotated[
        str,
        typer.Option(
            "--rotation",
            help=f"Degrees, positive = COUNTER-CLOCKWISE, about the image centre: {RANGE_HELP}.",
        ),
    ] = "10",
    zoom: Annotated[
        str, typer.Option("--zoom", help=f"Zoom (>1 magnifies, keeps aspect): {SCALE_HELP}.")
    ] = "0.1",
    stretch_x: Annotated[
        str, typer.Option("--stretch-x", help=f"Extra x scale: {SCALE_HELP}.")
    ] = "0",
    stretch_y: Annotated[
        str, typer.Option("--stretch-y", help=f"Extra y scale: {SCALE_HELP}.")
    ] = "0",
    shear: Annotated[
        str, typer.Option("--shear", help=f"x-shear angle in degrees: {RANGE_HELP}.")
    ] = "0",
    translate: Annotated[
        str,
        typer.Option(
            "--translate", help=f"Shift in x and y (positive = right/down): {RANGE_HELP}."
        ),
    ] = "2",
    translate_unit: Annotated[
        str, typer.Option("--translate-unit", help="px, or fraction of width/height.")
    ] = "px",
    hflip: Annotated[
        float, typer.Option("--hflip", help="Probability of a horizontal flip.")
    ] = 0.0,
    vflip: Annotated[float, typer.Option("--vflip", help="Probability of a vertical flip.")] = 0.0,
    interpolation: Annotated[
        str, typer.Option("--interpolation", help="bilinear or nearest.")
    ] = "bilinear",
    fill: Annotated[
        str, typer.Option("--fill", help="Outside the image: constant, nearest, reflect, wrap.")
    ] = "constant",
    cval: Annotated[
        float, typer.Option("--cval", help="Fill value for --fill constant (0..255 for uint8).")
    ] = 0.0,
    preset: Annotated[
        str | None,
        typer.Option(
            "--preset",
            help="nielsen-expand: each image + 4 one-pixel shifts (replaces the ranges).",
        ),
    ] = None,
    seed: SeedOpt = 0,
    backend: BackendOpt = None,
    boxes: Annotated[
        Path | None,
        typer.Option(
            "--boxes",
            help="Boxes of the training images: the box CSV image,class,x,y,w,h[,score] "
            "(image = training index; coordinates in --box-format, pixel edges), COCO JSON, or "
            "the older image,x1,y1,x2,y2,label CSV; '-' is stdin. Written back in the same form.",
        ),
    ] = None,
    box_format: BoxFormatOpt = "xywh",
    boxes_out: Annotated[
        Path | None,
        typer.Option(
            "--boxes-out",
            help="Where the moved boxes go (default: <out>-boxes.csv or .json; '-': stdout).",
        ),
    ] = None,
    min_visibility: Annotated[
        float,
        typer.Option(
            "--min-visibility", help="Drop boxes with less of their area left inside the image."
        ),
    ] = 0.0,
    params_out: Annotated[
        Path | None,
        typer.Option("--params", help="Write the sampled parameters of every output (JSON lines)."),
    ] = None,
    replay: Annotated[
        Path | None,
        typer.Option(
            "--replay",
            help="Apply a --params file (parameters, interpolation, fill) instead of sampling.",
        ),
    ] = None,
    preview: Annotated[
        Path | None,
        typer.Option(
            "--preview",
            help="PNG of originals beside their augmentations (default augment-preview.png without --out).",
        ),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Seeded geometric augmentation: flips, rotation (counter-clockwise), zoom, stretch, shear, shifts.

    --out writes the augmented data set (.npz, .csv, an IDX folder, or a class-folder tree
    with --format folder); its test split is copied unchanged.
    """
    with user_errors():
        from cvtool import augment as aug
        from cvtool.augment.warp import FILL_MODES
        from cvtool.backend import backend_name, get_xp
        from cvtool.boxes.core import FORMATS
        from cvtool.data.datasets import load_dataset
        from cvtool.data.formats import output_format, write_any
        from cvtool.errors import CvtoolError, check_choice, check_int, check_number
        from cvtool.fileio import check_outputs
        from cvtool.render import header

        one_of(replay=replay, preset=preset)
        check_choice("box-format", box_format, FORMATS)
        check_int("copies", copies, low=1)
        check_number("min-visibility", min_visibility, low=0, high=1)
        check_number("hflip", hflip, low=0, high=1)
        check_number("vflip", vflip, low=0, high=1)
        check_number("cval", cval)
        check_choice("interpolation", interpolation, aug.INTERPOLATIONS)
        check_choice("fill", fill, FILL_MODES)
        check_choice("translate-unit", translate_unit, ("px", "fraction"))
        if preset is not None:
            check_choice("preset", preset, aug.PRESETS)
        if boxes_out is not None and boxes is None:
            raise CvtoolError("--boxes-out needs --boxes (the boxes to move).")
        out_fmt = output_format(out, fmt) if out is not None else None
        if out is not None and boxes is not None and boxes_out is None:
            if str(out) == "-":
                raise CvtoolError("With --out - give --boxes-out too (stdout takes one output).")
            suffix = ".json" if str(boxes).lower().endswith(".json") else ".csv"
            boxes_out = out.with_name(out.stem + "-boxes" + suffix)
        if preview is None and out is None and boxes_out is None and params_out is None:
            preview = Path("augment-preview.png")
        if preview is not None and preview.suffix.lower() not in (".png", ".jpg", ".jpeg"):
            if str(preview) != "-":
                raise CvtoolError(f"--preview must end in .png or .jpg. Got {str(preview)!r}.")
        check_outputs(out, boxes_out, params_out, preview)
        check_out(out, force, "output", folder=out_fmt in ("idx", "folder"))
        if out_fmt == "csv" and str(out) != "-":
            from cvtool.data.csvfile import partner_path

            check_out(partner_path(Path(out)), force, "test-split output")
        check_out(boxes_out, force, "boxes output")
        check_out(params_out, force, "parameters output")
        check_out(preview, force, "preview")
        if str(boxes) == "-" and str(replay) == "-":
            raise CvtoolError("Only one of --boxes and --replay can be '-' (stdin).")
        xp = get_xp(backend)
        with spinner(f"augment: loading {dataset}"):
            ds = load_dataset(dataset)
        aug.check_memory(len(ds.x_train), copies, keep_original, ds.image_shape)
        ranges = aug.make_ranges(
            rotation=rotation, zoom=zoom, stretch_x=stretch_x, stretch_y=stretch_y, shear=shear,
            translate=translate, translate_unit=translate_unit, hflip=hflip, vflip=vflip,
            image_shape=ds.image_shape,
        )  # fmt: skip
        replayed = aug.read_params(replay, len(ds.x_train)) if replay is not None else None
        box_in = aug.read_boxes(boxes, len(ds.x_train), box_format) if boxes is not None else None
        result = aug.augment_dataset(
            ds, ranges=ranges, preset=preset, replay=replayed, copies=copies,
            keep_original=keep_original, seed=seed, interpolation=interpolation, fill=fill,
            cval=cval, xp=xp, boxes=box_in, min_visibility=min_visibility,
        )  # fmt: skip
        written = []
        if out is not None:
            written += [str(p) for p in write_any(result.dataset, out, out_fmt, overwrite=True)]
        if boxes_out is not None and result.boxes is not None:
            aug.write_boxes(boxes_out, result.boxes, result.dataset.image_shape)
            written.append(str(boxes_out))
        if params_out is not None:
            aug.write_params(params_out, result.source, result.params, result.settings)
            written.append(str(params_out))
        if preview is not None:
            grid = aug.preview_grid(
                ds.x_train, result.dataset.x_train, result.source,
                boxes=result.boxes, original_boxes=box_in,
            )  # fmt: skip
            aug.write_preview(preview, grid)
            written.append(str(preview))
    recipe = "replay" if replay else (preset or "ranges")
    doc = {
        "command": "augment",
        "dataset": ds.name,
        "backend": backend_name(xp),
        "recipe": recipe,
        "seed": seed,
        **result.summary(),
        "ranges": None if recipe != "ranges" else ranges.to_dict(),
        "out": str(out) if out is not None else None,
        "preview": str(preview) if preview is not None else None,
        "written": written,
    }
    from cvtool.render import kv_table, render

    tables = (
        []
        if json_out
        else [kv_table({k: str(v) for k, v in (doc["ranges"] or {}).items()}, title="ranges")]
    )
    with report_stream(out, boxes_out, params_out, preview):
        if not json_out:
            header("augment", dataset=ds.name, backend=doc["backend"], recipe=recipe, seed=seed)
        render(doc, json_out=json_out, title="augment", tables=tables)
