"""``cvtool data``: list, info, convert and fetch datasets (thin layer over cvtool.data)."""

from __future__ import annotations

from typing import Annotated

import typer

from cvtool.cli._common import (
    ForceOpt,
    FormatOpt,
    JsonOpt,
    check_out,
    report_stream,
    spinner,
    user_errors,
)

app = typer.Typer(
    help="Datasets: list, info, convert, fetch.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)

ShapeOpt = Annotated[
    str | None,
    typer.Option(
        "--shape",
        help="Image shape HxW or HxWxC for CSV files whose shape cannot be inferred "
        "(default: from a 'HxW' header, else square grey).",
        show_default=False,
    ),
]


def _shape(text: str | None):
    from cvtool.data.csvfile import parse_shape

    return None if text is None else parse_shape(text)


@app.command("list")
def list_cmd(json_out: JsonOpt = False) -> None:
    """List the named datasets: sizes, where they live, and whether they are present."""
    from cvtool.data.summary import catalog
    from cvtool.render import make_table, render

    with user_errors():
        rows = catalog()
    table = make_table(
        ["dataset", "present", "train", "test", "image", "classes", "MiB", "location"],
        [
            [
                r["name"],
                "yes" if r["present"] else "no",
                r["train"],
                r["test"],
                "x".join(map(str, r["image_shape"])),
                r["classes"],
                "" if r["size_mib"] is None else f"{r['size_mib']:.1f}",
                r["path"] if r["present"] else f"absent: {r['source']}",
            ]
            for r in rows
        ],
        title="Named datasets (any IDX folder, .npz, .csv or image folder path works too)",
    )
    render({"datasets": rows}, json_out=json_out, tables=[table], summary={})


@app.command("info")
def info_cmd(
    dataset: Annotated[
        str, typer.Argument(help="Named dataset (see 'cvtool data list') or a path.")
    ],
    shape: ShapeOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Split sizes, image shape, dtype and class counts of a dataset."""
    from cvtool.data.summary import describe
    from cvtool.render import make_table, render

    with user_errors():
        doc = describe(dataset, shape=_shape(shape))
    summary = {k: v for k, v in doc.items() if k != "classes"}
    summary["image_shape"] = "x".join(map(str, doc["image_shape"]))
    table = make_table(
        ["label", "class", "train", "test"],
        [[c["label"], c["name"], c["train"], c["test"]] for c in doc["classes"]],
        title="Images per class",
        footer=["", "total", doc["train"], doc["test"]],
    )
    render(
        doc, json_out=json_out, title=f"Dataset {doc['dataset']}", tables=[table], summary=summary
    )


@app.command("convert")
def convert_cmd(
    source: Annotated[
        str, typer.Argument(help="Named dataset or path to read; '-' is stdin (NPZ or CSV).")
    ],
    output: Annotated[
        str,
        typer.Argument(help="Output path: .npz, .csv, or a folder; '-' is stdout (NPZ)."),
    ],
    fmt: FormatOpt = None,
    shape: ShapeOpt = None,
    force: ForceOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Convert a dataset between IDX, NPZ, CSV and image-folder formats."""
    from cvtool.data.datasets import KNOWN, load_dataset
    from cvtool.data.formats import output_format, read_any, write_any
    from cvtool.render import render

    with user_errors():
        from pathlib import Path

        from cvtool.data.csvfile import partner_path

        out_fmt = output_format(output, fmt)
        shape_t = _shape(shape)
        check_out(output, force, folder=out_fmt in ("idx", "folder"))
        if out_fmt == "csv" and output != "-" and Path(output).suffix:
            check_out(partner_path(Path(output)), force, "test-split output")
        with spinner(f"data convert: {source} -> {output}"):
            if source in KNOWN or shape is None:
                ds = load_dataset(source)
            else:
                ds = read_any(source, shape_t)
            written = write_any(ds, output, out_fmt, overwrite=True)
    doc = {
        "source": source,
        "output": output,
        "format": out_fmt,
        "train": len(ds.x_train),
        "test": len(ds.x_test),
        "image_shape": "x".join(map(str, ds.image_shape)),
        "written": [str(p) for p in written],
    }
    summary = {k: v for k, v in doc.items() if k != "written"}
    summary["written"] = ", ".join(doc["written"])
    with report_stream(output):
        render(doc, json_out=json_out, title="Converted", summary=summary)


@app.command("fetch")
def fetch_cmd(
    name: Annotated[str, typer.Argument(help="Dataset to download: mnist or fashion-mnist.")],
    folder: Annotated[
        str | None,
        typer.Option(
            "--dir", help="Download into this folder instead of the cache.", show_default=False
        ),
    ] = None,
    url_base: Annotated[
        str | None,
        typer.Option(
            "--url-base", help="Download from this base URL (a mirror).", show_default=False
        ),
    ] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Network timeout in seconds.")] = 30.0,
    json_out: JsonOpt = False,
) -> None:
    """Download MNIST or Fashion-MNIST (MD5-checked, atomic) into the cache or --dir."""
    from cvtool.data.fetch import fetch_dataset
    from cvtool.render import make_table, progress, render

    bar = progress(download=True)
    tasks: dict[str, int] = {}

    def on_progress(fname: str, done: int, total: int | None) -> None:
        if fname not in tasks:
            tasks[fname] = bar.add_task(fname, total=total)
        bar.update(tasks[fname], completed=done)

    with user_errors(), bar:
        fetched = fetch_dataset(
            name, folder, url_base=url_base, timeout=timeout, progress=on_progress
        )
    rows = [[f.path.name, f.status, f.bytes, f.md5] for f in fetched]
    doc = {
        "dataset": name,
        "dir": str(fetched[0].path.parent),
        "files": [
            {"file": f.path.name, "status": f.status, "bytes": f.bytes, "md5": f.md5}
            for f in fetched
        ],
    }
    table = make_table(
        ["file", "status", "bytes", "md5 (verified)"], rows, title=f"{name} in {doc['dir']}"
    )
    render(doc, json_out=json_out, tables=[table], summary={})


@app.command("make-canvas")
def make_canvas_cmd(
    out: Annotated[
        str, typer.Argument(help="The folder to create (images/, masks/, annotations/).")
    ],
    source: Annotated[
        str, typer.Option("--source", help="Digits to paste: mnist-sample, fashion-mnist, a path.")
    ] = "mnist-sample",
    train: Annotated[int, typer.Option("--train", help="Training canvases.")] = 2000,
    test: Annotated[int, typer.Option("--test", help="Test canvases (from test digits).")] = 500,
    size: Annotated[int, typer.Option("--size", help="Canvas height and width in pixels.")] = 64,
    channels: Annotated[int, typer.Option("--channels", help="1 (grey) or 3 (colour).")] = 1,
    min_objects: Annotated[
        int, typer.Option("--min-objects", help="Objects per canvas, least.")
    ] = 1,
    max_objects: Annotated[
        int, typer.Option("--max-objects", help="Objects per canvas, most.")
    ] = 4,
    min_scale: Annotated[float, typer.Option("--min-scale", help="Smallest digit scale.")] = 0.6,
    max_scale: Annotated[float, typer.Option("--max-scale", help="Largest digit scale.")] = 1.4,
    max_iou: Annotated[float, typer.Option("--max-iou", help="Largest IoU of two boxes.")] = 0.2,
    clutter: Annotated[int, typer.Option("--clutter", help="Unlabelled fragments, at most.")] = 0,
    noise: Annotated[
        float, typer.Option("--noise", help="Gaussian noise (fraction of 255).")
    ] = 0.0,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same bytes.")] = 0,
    force: ForceOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Generate a detection/segmentation set: canvases of pasted digits, seeded.

    Writes images/{train,test}/NNNNN.png, masks/{train,test}/NNNNN.png (label maps:
    0 background, class + 1 on each digit) and annotations/{train,test}.json (COCO:
    boxes xywh, areas, RLE instance masks, category names). Test canvases use the
    source's test digits only. The same seed writes the same bytes.
    """
    with user_errors():
        from cvtool.data.canvas import make_canvas_splits
        from cvtool.data.canvas_io import check_output_dir, write_canvas_set
        from cvtool.render import render

        check_output_dir(out, force)
        options = dict(size=size, channels=channels, min_objects=min_objects,
                       max_objects=max_objects, min_scale=min_scale, max_scale=max_scale,
                       max_iou=max_iou, clutter=clutter, noise=noise)  # fmt: skip
        tr, te = make_canvas_splits(train, test, source=source, seed=seed, **options)
        written = write_canvas_set(out, train=tr, test=te, overwrite=force)
    objects = {"train": tr.num_objects, "test": te.num_objects}
    doc = {"out": out, "train": len(tr), "test": len(te), "objects": objects,
           "classes": list(tr.class_names), "annotations": [str(p) for p in written],
           "seed": seed, **options}  # fmt: skip
    render(doc, json_out=json_out, title="data make-canvas", summary={
        k: doc[k] for k in ("out", "train", "test", "objects", "seed")})  # fmt: skip
