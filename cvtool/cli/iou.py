"""`cvtool iou ...`: box and mask overlap, NMS and mAP (thin: the library does the work)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cvtool.cli._common import (
    BackendOpt,
    BoxFormatOpt,
    ForceOpt,
    JsonOpt,
    OutOpt,
    PlotOpt,
    check_out,
    report_stream,
    spinner,
    user_errors,
)

app = typer.Typer(
    help="Box and mask overlap: IoU, GIoU, NMS, mean IoU and detection mAP (COCO, VOC). "
    "Boxes are xywh (corner + size, COCO's) with continuous coordinates unless "
    "--box-format / --voc-pixels say otherwise.",
    no_args_is_help=True,
)

NamesOpt = Annotated[str | None, typer.Option("--names", help="Comma-separated class names.")]
PixelOpt = Annotated[
    bool,
    typer.Option("--voc-pixels", help="Legacy VOC +1 pixel convention (xyxy width = x2 - x1 + 1)."),
]


def _offset(voc_pixels: bool) -> float:
    return 1.0 if voc_pixels else 0.0


@app.command("box")
def box_cmd(
    box_a: Annotated[str, typer.Argument(help="First box: 4 numbers, e.g. 10,20,30,40.")],
    box_b: Annotated[str, typer.Argument(help="Second box: 4 numbers.")],
    fmt: BoxFormatOpt = "xywh",
    voc_pixels: PixelOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """IoU and GIoU of two boxes."""
    with user_errors():
        from cvtool import boxes
        from cvtool.boxes.core import FORMATS
        from cvtool.errors import check_choice
        from cvtool.render import render

        check_choice("box-format", fmt, FORMATS)
        a, b = boxes.parse_box(box_a, "box A"), boxes.parse_box(box_b, "box B")
        off = _offset(voc_pixels)
        doc = {
            "iou": boxes.iou(a, b, fmt, off),
            "giou": boxes.iou(a, b, fmt, off, giou=True),
            "format": fmt,
            "box_a_xyxy": boxes.convert(a, fmt, "xyxy", off).tolist(),
            "box_b_xyxy": boxes.convert(b, fmt, "xyxy", off).tolist(),
        }
    render(doc, json_out=json_out, title="Box overlap")


@app.command("matrix")
def matrix_cmd(
    file_a: Annotated[
        Path,
        typer.Argument(help="Boxes A: CSV (4 numbers a row, or the box CSV), JSON, NPY, or '-'."),
    ],
    file_b: Annotated[Path, typer.Argument(help="Boxes B, same forms ('-': stdin).")],
    fmt: BoxFormatOpt = "xywh",
    giou: Annotated[bool, typer.Option("--giou", help="Generalised IoU instead of IoU.")] = False,
    voc_pixels: PixelOpt = False,
    out: OutOpt = None,
    force: ForceOpt = False,
    backend: BackendOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """The N x M IoU (or GIoU) matrix of two box files, computed without Python loops.

    --out writes the matrix (.csv or .npy; '-' is CSV on stdout, the report then goes to stderr).
    """
    with user_errors():
        from cvtool import backend as be
        from cvtool.boxes import files as boxes_files
        from cvtool.boxes.core import FORMATS
        from cvtool.errors import CvtoolError, check_choice
        from cvtool.render import make_table, render

        check_choice("box-format", fmt, FORMATS)
        if str(file_a) == "-" and str(file_b) == "-":
            raise CvtoolError("Only one of the two box files can be '-' (stdin).")
        boxes_files.matrix_format(out)
        check_out(out, force)
        xp = be.get_xp(backend)
        result = boxes_files.iou_matrix_files(file_a, file_b, fmt, _offset(voc_pixels), giou, xp)
        m = result["matrix"]
        if out is not None:
            boxes_files.write_matrix(m, out)
        doc = {"shape": list(m.shape), "backend": be.backend_name(xp),
               **result}  # fmt: skip
        rows = [[f"A{i}", *r[:12]] for i, r in enumerate(m[:30].tolist())]
        title = f"{doc['metric']} matrix {m.shape[0]} x {m.shape[1]}" + (
            " (first 30 x 12)" if m.shape[0] > 30 or m.shape[1] > 12 else ""
        )
        table = make_table(["", *(f"B{j}" for j in range(min(12, m.shape[1])))], rows, title=title)
    with report_stream(out):
        render(
            doc,
            json_out=json_out,
            tables=[table],
            summary={"shape": f"{m.shape[0]} x {m.shape[1]}"},
        )


@app.command("mask")
def mask_cmd(
    mask_a: Annotated[Path, typer.Argument(help="Binary mask (PNG or NPY; nonzero = object).")],
    mask_b: Annotated[Path, typer.Argument(help="Second mask, same size.")],
    json_out: JsonOpt = False,
) -> None:
    """IoU of two binary masks."""
    with user_errors():
        from cvtool.boxes import files as boxes_files
        from cvtool.boxes import masks as boxes_masks
        from cvtool.render import render, warn

        doc = boxes_masks.mask_iou(
            boxes_files.load_image_array(mask_a), boxes_files.load_image_array(mask_b)
        )
        if doc["union"] == 0:
            warn("both masks are empty: IoU is undefined (null)")
    render(doc, json_out=json_out, title="Mask IoU")


@app.command("seg")
def seg_cmd(
    pred: Annotated[
        Path, typer.Argument(help="Predicted label map (PNG/NPY) or a folder of them.")
    ],
    truth: Annotated[Path, typer.Argument(help="True label map, or a folder with the same names.")],
    num_classes: Annotated[
        int | None, typer.Option("--num-classes", help="Classes (default: 1 + largest label).")
    ] = None,
    ignore_index: Annotated[
        int, typer.Option("--ignore-index", help="True label to skip (VOC: 255).")
    ] = 255,
    names: NamesOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Semantic segmentation: per-class IoU, mean IoU and pixel accuracy (summed over files)."""
    with user_errors():
        from cvtool.boxes import files as boxes_files
        from cvtool.boxes import masks as boxes_masks
        from cvtool.render import make_table, render

        pairs = boxes_files.label_map_pairs(pred, truth)
        doc = boxes_masks.segmentation_metrics_many(pairs, num_classes, ignore_index)
        labels = boxes_files.class_names(names, doc["num_classes"])
        rows = [[labels[c], int(doc["true_pixels"][c]), int(doc["pred_pixels"][c]),
                 int(doc["intersection"][c]), doc["per_class_iou"][c]] for c in range(doc["num_classes"])]  # fmt: skip
        table = make_table(
            ["class", "true px", "pred px", "overlap px", "IoU"], rows, title="Per-class IoU"
        )
        doc["class_names"] = labels
    keys = ("mean_iou", "pixel_accuracy", "mean_class_accuracy", "num_classes")
    summary = {k: doc[k] for k in keys}
    title = f"Segmentation ({len(pairs)} image pair(s))"
    render(doc, json_out=json_out, title=title, tables=[table], summary=summary)


@app.command("counts")
def counts_cmd(
    pred: Annotated[str, typer.Option("--pred", help="Predicted pixels per class, e.g. 189,31.")],
    true: Annotated[str, typer.Option("--true", help="True pixels per class, e.g. 201,50.")],
    overlap: Annotated[
        str, typer.Option("--overlap", help="Overlapping pixels per class, e.g. 185,23.")
    ],
    names: NamesOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Per-class IoU from pixel counts and their mean (mean IoU, not detection mAP).

    IoU_c = overlap_c / (pred_c + true_c - overlap_c). The course example
    --pred 189,31 --true 201,50 --overlap 185,23 gives 0.902, 0.397 and a mean of
    0.6495 (~0.65). Mean IoU averages one overlap ratio per class; detection mAP
    ('cvtool iou map') averages per class the area under a precision-recall curve
    of ranked detections matched at an IoU threshold.
    """
    with user_errors():
        from cvtool.boxes import files as boxes_files
        from cvtool.boxes import masks as boxes_masks
        from cvtool.render import make_table, render, warn

        p, t, o = (
            boxes_files.parse_counts(v, n)
            for v, n in ((pred, "pred"), (true, "true"), (overlap, "overlap"))
        )
        doc = boxes_masks.iou_from_counts(p, t, o)
        labels = boxes_files.class_names(names, len(p), start=1)
        rows = [
            [labels[i], p[i], t[i], o[i], doc["union"][i], doc["per_class_iou"][i]]
            for i in range(len(p))
        ]
        table = make_table(
            ["class", "pred", "true", "overlap", "union", "IoU"],
            rows,
            title="IoU per class",
            digits=3,
        )
        doc["note"] = boxes_masks.MEAN_IOU_NOTE
        mean = doc["mean_iou"]
        if mean is None or mean != mean:  # no class has a pixel: undefined, null as in 'iou mask'
            doc["mean_iou"] = None
            warn("no class has any pixel: the mean IoU is undefined (null)")
        summary = {
            "mean IoU (mIoU)": "null"
            if doc["mean_iou"] is None
            else f"{doc['mean_iou']:.4f} (~{doc['mean_iou']:.2f})",
            "note": "mean IoU, not detection mAP (see --help)",
        }
    render(
        doc, json_out=json_out, title="Mean IoU from pixel counts", tables=[table], summary=summary
    )


@app.command("nms")
def nms_cmd(
    file: Annotated[
        Path,
        typer.Argument(
            help="Detections: CSV (image,class,x,y,w,h,score) or COCO results JSON; '-' is stdin."
        ),
    ],
    iou_threshold: Annotated[
        float, typer.Option("--iou", help="Suppress a box whose IoU with a kept one is > this.")
    ] = 0.5,
    score_threshold: Annotated[
        float | None, typer.Option("--score-threshold", help="Drop boxes scoring below this first.")
    ] = None,
    top_k: Annotated[
        int | None, typer.Option("--top-k", help="Keep at most this many boxes per image.")
    ] = None,
    agnostic: Annotated[
        bool,
        typer.Option(
            "--class-agnostic", help="Let boxes of different classes suppress each other."
        ),
    ] = False,
    fmt: BoxFormatOpt = "xywh",
    voc_pixels: PixelOpt = False,
    out: OutOpt = None,
    force: ForceOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Greedy non-maximum suppression per image, per class by default (torchvision's batched_nms).

    Ties in score keep input order: the earlier box wins. Kept boxes are listed in input order.
    --out writes the kept detections in the input's format ('-': stdout, the report then goes
    to stderr).
    """
    with user_errors():
        from cvtool import boxes
        from cvtool.boxes import files as boxes_files
        from cvtool.boxes.core import FORMATS
        from cvtool.errors import check_choice, check_int, check_number
        from cvtool.render import render

        check_choice("box-format", fmt, FORMATS)
        if score_threshold is not None:
            check_number("score-threshold", score_threshold)
        if top_k is not None:
            check_int("top-k", top_k, low=1)
        check_out(out, force)
        table = boxes_files.read_detection_table(file, fmt)
        keep = boxes.nms_per_image(
            table["image"], table["boxes"], table["scores"], iou_threshold,
            classes=None if agnostic else table["cls"], score_threshold=score_threshold,
            top_k=top_k, offset=_offset(voc_pixels),
        )  # fmt: skip
        if out is not None:
            boxes_files.write_detection_table(table, keep, out)
        n = len(table["records"])
        doc = {"input": n, "kept": int(keep.size), "removed": n - int(keep.size), "kept_indices": keep,
               "iou_threshold": iou_threshold, "per_class": not agnostic, "out": str(out) if out else None}  # fmt: skip
    summary = {k: v for k, v in doc.items() if k != "kept_indices"}
    with report_stream(out):
        render(doc, json_out=json_out, title="Non-maximum suppression", summary=summary)


@app.command("map")
def map_cmd(
    gt: Annotated[
        Path,
        typer.Option(
            "--gt",
            help="Ground truth: COCO JSON, or CSV image,class,x,y,w,h[,difficult]; '-' is stdin.",
        ),
    ],
    dets: Annotated[
        Path,
        typer.Option(
            "--dets",
            help="Detections: COCO results JSON, or CSV image,class,x,y,w,h,score; '-' is stdin.",
        ),
    ],
    mode: Annotated[
        str,
        typer.Option(
            "--mode",
            help="coco (IoU .50:.95, 101 points, areas, maxDets 1/10/100), "
            "voc07 (11-point) or voc12 (all-point, VOC2010+), both at IoU 0.5.",
        ),
    ] = "coco",
    iou_threshold: Annotated[
        float, typer.Option("--iou", help="IoU threshold of the VOC modes.")
    ] = 0.5,
    fmt: BoxFormatOpt = "xywh",
    voc_pixels: PixelOpt = False,
    plot: PlotOpt = None,
    iou_type: Annotated[
        str,
        typer.Option(
            "--iou-type",
            help="bbox (boxes) or segm (masks: polygons or RLE, COCO JSON; COCO mode).",
        ),
    ] = "bbox",
    max_dets: Annotated[
        str, typer.Option("--max-dets", help="COCO maxDets: three increasing ints, A,B,C.")
    ] = "1,10,100",
    force: ForceOpt = False,
    image_sizes: Annotated[
        Path | None,
        typer.Option(
            "--image-sizes", help="YOLO image sizes: image folder or CSV image,width,height."
        ),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Detection mAP. COCO mode gives pycocotools' 12 numbers; a per-class AP table follows.

    --plot draws the precision-recall curves.
    """
    with user_errors():
        from cvtool.boxes import report as rep
        from cvtool.boxes.core import FORMATS
        from cvtool.errors import CvtoolError, check_choice, check_number
        from cvtool.render import header, make_table, render, warn

        check_choice("mode", mode, rep.MODES)
        check_choice("box-format", fmt, FORMATS)
        check_number("iou", iou_threshold, low=0, high=1, low_open=True)
        if str(gt) == "-" and str(dets) == "-":
            raise CvtoolError("Only one of --gt and --dets can be '-' (stdin).")
        if plot is not None and plot.suffix.lower() != ".png":
            raise CvtoolError(f"--plot must end in .png. Got {str(plot)!r}.")
        check_choice("iou-type", iou_type, rep.IOU_TYPES)
        max_dets_t = rep.parse_max_dets(max_dets)
        check_out(plot, force, "plot")

        with spinner(f"iou map --mode {mode}"):
            result = rep.evaluate_files(gt, dets, mode=mode, fmt=fmt, iou_threshold=iou_threshold,
                                        offset=_offset(voc_pixels), iou_type=iou_type,
                                        max_dets=max_dets_t, image_sizes=image_sizes)  # fmt: skip
        for w in result["warnings"]:
            warn(w)
        if plot is not None:
            rep.plot(result, plot)
        table = make_table(result["table_columns"], result["table_rows"], title="Per-class AP")
    if not json_out:
        header(f"iou map --mode {mode}", images=result["images"], classes=len(result["per_class"]),
               detections=result["detections"])  # fmt: skip
    render(
        result["doc"],
        json_out=json_out,
        title=result["title"],
        tables=[table],
        summary=result["summary"],
    )


LabelGtOpt = Annotated[
    Path,
    typer.Option(
        "--gt",
        help="Ground truth: COCO JSON, CSV, a YOLO .txt folder or VOC .xml (file or folder).",
    ),
]
LabelDetsOpt = Annotated[
    Path,
    typer.Option(
        "--dets",
        help="Detections: COCO results JSON, CSV, YOLO .txt folder (6th value: conf) "
        "or VOC .xml with <score>.",
    ),
]
ImageSizesOpt = Annotated[
    Path | None,
    typer.Option(
        "--image-sizes",
        help="YOLO image sizes: a folder of the images, or a CSV list image,width,height.",
    ),
]


def _analysis(name: str, options: dict, plot, force: bool, json_out: bool, title: str,
              table_title: str, digits: int = 4) -> None:  # fmt: skip
    """iou confusion / errors / curves: cvtool.boxes.analysis.<name>_files, plot, render."""
    with user_errors():
        from cvtool.boxes import analysis
        from cvtool.render import header, make_table, render

        check_out(plot, force, "plot")
        gt, dets = options.pop("gt"), options.pop("dets")
        result = getattr(analysis, f"{name}_files")(gt, dets, **options)
        if plot is not None:
            getattr(analysis, f"plot_{name}")(result, plot)
        table = make_table(result["table_columns"], result["table_rows"], title=table_title,
                           digits=digits)  # fmt: skip
    if not json_out:
        classes = result["classes"] if "classes" in result else len(result["names"])
        header(f"iou {name}", images=result["images"], classes=classes,
               detections=result["detections"])  # fmt: skip
    render(result["doc"], json_out=json_out, title=title, tables=[table],
           summary=result["summary"])  # fmt: skip


@app.command("confusion")
def confusion_cmd(
    gt: LabelGtOpt,
    dets: LabelDetsOpt,
    iou_threshold: Annotated[
        float, typer.Option("--iou", help="A pair matches when its IoU is above this.")
    ] = 0.5,
    score_threshold: Annotated[
        float, typer.Option("--score-threshold", help="Detections scoring below this are dropped.")
    ] = 0.3,
    fmt: BoxFormatOpt = "xywh",
    image_sizes: ImageSizesOpt = None,
    plot: PlotOpt = None,
    force: ForceOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Detection confusion matrix with a background row and column (supervision's definition).

    Rows are true classes, columns predicted ones, background last: an
    unmatched object counts in its row's background column, an unmatched
    detection in the background row. --plot draws the heatmap.
    """
    _analysis("confusion", dict(gt=gt, dets=dets, fmt=fmt, iou_threshold=iou_threshold,
                                score_threshold=score_threshold, image_sizes=image_sizes),
              plot, force, json_out, "Detection confusion matrix",
              "Confusion matrix (rows true, columns predicted)")  # fmt: skip


@app.command("errors")
def errors_cmd(
    gt: LabelGtOpt,
    dets: LabelDetsOpt,
    pos: Annotated[float, typer.Option("--pos", help="Foreground IoU (a true positive).")] = 0.5,
    bg: Annotated[float, typer.Option("--bg", help="Background IoU (below: background).")] = 0.1,
    max_dets: Annotated[int, typer.Option("--max-dets", help="Detections per image.")] = 100,
    fmt: BoxFormatOpt = "xywh",
    image_sizes: ImageSizesOpt = None,
    plot: PlotOpt = None,
    force: ForceOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """TIDE error breakdown: where the AP goes, and the AP gained by fixing each error type.

    Types: classification, localisation, both, duplicate, background, missed
    (as the tidecv package defines them). --plot draws the dAP bars.
    """
    _analysis("errors", dict(gt=gt, dets=dets, fmt=fmt, pos=pos, bg=bg, max_dets=max_dets,
                             image_sizes=image_sizes),
              plot, force, json_out, "TIDE error breakdown",
              "Errors and dAP (AP points gained by fixing them)", digits=2)  # fmt: skip


@app.command("curves")
def curves_cmd(
    gt: LabelGtOpt,
    dets: LabelDetsOpt,
    iou_threshold: Annotated[
        float, typer.Option("--iou", help="A detection is right when IoU >= this.")
    ] = 0.5,
    score_threshold: Annotated[
        float, typer.Option("--score-threshold", help="Report P, R and F1 at this score.")
    ] = 0.25,
    fmt: BoxFormatOpt = "xywh",
    image_sizes: ImageSizesOpt = None,
    plot: PlotOpt = None,
    force: ForceOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Precision, recall and F1 at a score threshold, and the best-F1 threshold, per class.

    --plot draws the precision-, recall- and F1-confidence curves and the
    per-class precision-recall curves.
    """
    _analysis("curves", dict(gt=gt, dets=dets, fmt=fmt, iou_threshold=iou_threshold,
                             score_threshold=score_threshold, image_sizes=image_sizes),
              plot, force, json_out, "Precision, recall and F1", "Per class")  # fmt: skip


@app.command("convert")
def convert_cmd(
    src: Annotated[
        Path,
        typer.Argument(help="Labels: COCO JSON, CSV, a YOLO .txt folder, VOC .xml (file/folder)."),
    ],
    to: Annotated[str, typer.Option("--to", help="coco, csv (a file), yolo or voc (a folder).")],
    out: Annotated[Path, typer.Option("--out", help="The file (coco, csv) or folder to write.")],
    fmt: BoxFormatOpt = "xywh",
    image_sizes: ImageSizesOpt = None,
    names: NamesOpt = None,
    force: ForceOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Convert box labels (ground truth or detections) between COCO, CSV, YOLO and VOC.

    YOLO needs image sizes (--image-sizes, or COCO width/height, or VOC size);
    class names come from classes.txt in a YOLO folder or --names.
    """
    with user_errors():
        from cvtool.boxes import formats
        from cvtool.boxes.labels import convert_labels
        from cvtool.errors import check_choice
        from cvtool.render import render

        check_choice("to", to, formats.FORMATS)
        check_out(out, force, "output", folder=to in ("yolo", "voc"))
        doc = convert_labels(src, out, to, fmt=fmt, image_sizes=image_sizes, names=names)
    render(doc, json_out=json_out, title=f"Converted {doc['from']} -> {doc['to']}")
