"""From files to a mAP report: load, evaluate (COCO or VOC), tabulate, plot.

The command ``cvtool iou map`` is a thin wrapper around :func:`evaluate_files`,
which returns the JSON document, the summary pairs and the per-class table
rows, so the CLI does no arithmetic. :func:`plot` draws the precision-recall
curves of a result.
"""

from __future__ import annotations

import contextlib
import signal
import sys
from operator import itemgetter, methodcaller

import numpy as np

from cvtool.boxes import io as boxes_io
from cvtool.boxes import rle
from cvtool.boxes.coco import COCO_MAX_DETS, IOU_TYPES, coco_evaluate, stat_names
from cvtool.boxes.voc import voc_evaluate
from cvtool.errors import CvtoolError, check_choice, check_number

MODES = ("coco", "voc07", "voc12")
STAT_LABELS = (  # the default maxDets; see stat_labels
    "AP @[IoU=.50:.95 | area=all | maxDets=100]",
    "AP @[IoU=.50 | area=all | maxDets=100]",
    "AP @[IoU=.75 | area=all | maxDets=100]",
    "AP @[IoU=.50:.95 | area=small | maxDets=100]",
    "AP @[IoU=.50:.95 | area=medium | maxDets=100]",
    "AP @[IoU=.50:.95 | area=large | maxDets=100]",
    "AR @[IoU=.50:.95 | area=all | maxDets=1]",
    "AR @[IoU=.50:.95 | area=all | maxDets=10]",
    "AR @[IoU=.50:.95 | area=all | maxDets=100]",
    "AR @[IoU=.50:.95 | area=small | maxDets=100]",
    "AR @[IoU=.50:.95 | area=medium | maxDets=100]",
    "AR @[IoU=.50:.95 | area=large | maxDets=100]",
)


def stat_labels(max_dets=COCO_MAX_DETS) -> list[str]:
    """COCO's summary labels with the maxDets values in use (largest for the AP lines)."""
    a, b, c = (int(m) for m in max_dets)
    out = [s.replace("maxDets=100", f"maxDets={c}") for s in STAT_LABELS]
    out[6] = out[6].replace("maxDets=1]", f"maxDets={a}]")
    out[7] = out[7].replace("maxDets=10]", f"maxDets={b}]")
    return out


def parse_max_dets(text) -> tuple[int, int, int]:
    """``"A,B,C"`` -> three increasing ints >= 1 (COCOeval's params.maxDets).

    >>> parse_max_dets("5,20,50")
    (5, 20, 50)
    """
    parts = [p.strip() for p in str(text).split(",")]
    try:
        vals = tuple(int(p) for p in parts)
    except ValueError:
        vals = ()
    if len(vals) != 3 or vals[0] < 1 or not vals[0] < vals[1] < vals[2]:
        raise CvtoolError(
            "The 'max-dets' parameter must be three increasing ints >= 1, like 1,10,100. "
            f"Got {text!r} instead."
        )
    return vals


def segm_inputs(gt_doc, results, gt_name: str = "gt", dt_name: str = "dets"):
    """Ground truth, detections and their masks for segmentation evaluation.

    Ground-truth ``segmentation``: polygons (rasterised at the image's
    ``height`` x ``width``), uncompressed or compressed RLE. Results need an
    RLE ``segmentation``; a missing ``bbox`` is the mask's box. As pycocotools'
    ``loadRes``, detections are sized by their box area when the first result
    has a ``bbox``, by their mask area otherwise.

    Returns
    -------
    gt, dt, gt_masks, dt_masks, dt_area (array (D,) or None)
    """
    gt, gt_masks, image_hw = segm_ground_truth(gt_doc, gt_name)
    results, dt_masks = result_masks(results, dt_name)
    dt, dt_area = segm_detections(results, dt_masks, gt, image_hw, dt_name)
    return gt, dt, gt_masks, dt_masks, dt_area


def segm_ground_truth(gt_doc, gt_name: str = "gt"):
    """The ground truth of :func:`segm_inputs`, its masks, and each image's (height, width)."""
    gt = boxes_io.ground_truth_from_coco(gt_doc, gt_name)
    size = {}
    for im in gt_doc["images"]:
        try:
            size[im["id"]] = (int(im.get("height", -1)), int(im.get("width", -1)))
        except (TypeError, ValueError):
            raise CvtoolError(
                f"{gt_name}: image {im['id']!r}: height and width must be ints."
            ) from None
    anns = gt_doc["annotations"]
    for i, a in enumerate(anns):
        if "segmentation" not in a:
            raise CvtoolError(
                f"{gt_name}: annotation {i} has no 'segmentation' (needed by --iou-type segm)."
            )
    hw = np.array([size[a["image_id"]] for a in anns], np.int64).reshape(-1, 2)
    where = f"{gt_name}: annotation"
    gt_masks = rle.from_segmentations([a["segmentation"] for a in anns], hw[:, 0], hw[:, 1], where)
    _same_size(gt_masks, hw, where)
    image_hw = np.array([size[i] for i in gt.image_ids], np.int64).reshape(-1, 2)
    return gt, gt_masks, image_hw


def result_masks(results, dt_name: str = "dets"):
    """The results list of :func:`segm_inputs` and its masks (they need no ground truth)."""
    if isinstance(results, dict) and "annotations" in results:
        results = results["annotations"]
    if not isinstance(results, list):
        raise CvtoolError(
            f"'{dt_name}' must be a JSON list of detections (the COCO results format)."
        )
    try:
        segs = list(map(itemgetter("segmentation"), results))
    except (KeyError, TypeError):
        segs = [d.get("segmentation") if isinstance(d, dict) else None for d in results]
    if set(map(type, segs)) - {dict}:
        i = next(i for i, s in enumerate(segs) if not isinstance(s, dict))
        raise CvtoolError(
            f"{dt_name}: detection {i} needs an RLE 'segmentation' with 'size' and 'counts'."
        )
    return results, rle.from_segmentations(segs, -1, -1, f"{dt_name}: detection")


def segm_detections(results, dt_masks, gt, image_hw, dt_name: str = "dets"):
    """The detections of :func:`segm_inputs` and their areas for the area ranges (or None)."""
    given = list(map(methodcaller("get", "bbox"), results))
    missing = [] if all(given) else range(len(results)) if not any(given) else [
        i for i, b in enumerate(given) if not b]  # fmt: skip
    boxes = None
    if missing:  # the mask's box, only where a result has none
        boxes = rle.to_bbox(dt_masks)
        if len(missing) < len(results):
            boxes = boxes.copy()  # (to_bbox's is the set's cached array)
            for i in sorted(set(range(len(results))) - set(missing)):
                boxes[i] = boxes_io._bbox(results[i]["bbox"], f"{dt_name}: detection {i}")
    dt = boxes_io.detections_from_coco(results, gt, dt_name, boxes)
    _same_size(dt_masks, image_hw[dt.img], f"{dt_name}: detection")
    by_box = bool(results) and bool(results[0].get("bbox"))
    return dt, dt.boxes[:, 2] * dt.boxes[:, 3] if by_box else None


def _segm_ground_truth_file(path):
    par = sys.modules.get("numba.np.ufunc.parallel")
    if getattr(par, "_is_initialized", False):  # forked after Numba started its OpenMP
        rle.USE_NUMBA = False  # threads: they are not fork-safe, the NumPy code is
    gt, masks, image_hw = segm_ground_truth(boxes_io.read_json(path), str(path))
    masks.cache = {k: masks.cache[k] for k in ("area", "bbox") if k in masks.cache}  # (to send)
    return gt, masks, image_hw


def segm_inputs_from_files(gt_path, dets_path):
    """:func:`segm_inputs` from two COCO JSON files, the ground truth read in a second
    process (forked, on Linux) while this one reads and decodes the results.

    The two halves need nothing of each other until the detections are matched
    to the ground truth's image and category ids; with two cores the ground
    truth (parsing, polygons) costs no wall time. Errors keep their order: a
    bad ground truth is reported before bad results.
    """
    wait = _in_background(_segm_ground_truth_file, gt_path)
    try:
        results, dt_masks = result_masks(boxes_io.read_json(dets_path), str(dets_path))
    except CvtoolError:
        wait()  # the ground truth's error first, if it has one
        raise
    gt, gt_masks, image_hw = wait()
    dt, dt_area = segm_detections(results, dt_masks, gt, image_hw, str(dets_path))
    return gt, dt, gt_masks, dt_masks, dt_area


@contextlib.contextmanager
def _small_pages():
    """NumPy's transparent huge pages off for the block (restored after).

    NumPy asks the kernel for 2 MB pages on large arrays (madvise). Where the
    kernel then compacts memory synchronously on first touch (the common
    ``defrag = madvise`` setting), the ~1 GB of fresh arrays of a large segm
    evaluation (results' runs, their strings, masks, matching) cost 1.6-2.1 s of system
    time instead of 1.1 s: measured 3.65-3.88 s against 3.96-4.42 s for the
    5,000-image benchmark command. The switch is NumPy's private
    ``_set_madvise_hugepage`` (the ``NUMPY_MADVISE_HUGEPAGE`` environment
    variable only acts at import); without it nothing changes.
    """
    switch = getattr(getattr(np, "_core", None), "multiarray", None)
    switch = getattr(switch, "_set_madvise_hugepage", None)
    was = switch(False) if switch else None
    try:
        yield
    finally:
        if switch:
            switch(was)


def _in_background(fn, *args):
    """Start fn(*args) in a forked process; returns a function that waits for its result
    (or raises its exception). Runs fn at once, in this process, where fork is not
    the safe default (only Linux is used)."""
    if not sys.platform.startswith("linux"):
        out = fn(*args)
        return lambda: out
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)

    def child():
        # Ctrl-C reaches both processes: the parent reports it and ends this daemon
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            reply = (True, fn(*args))
        except BaseException as exc:  # noqa: BLE001 - sent to the parent, which raises it
            reply = (False, exc)
        try:
            send.send(reply)
        except OSError:  # the parent is gone
            pass
        except Exception as exc:  # a reply that does not pickle
            with contextlib.suppress(OSError):
                send.send((False, RuntimeError(repr(exc))))

    proc = ctx.Process(target=child, daemon=True)  # a daemon dies with the parent
    proc.start()
    send.close()

    def wait():
        try:
            ok, value = recv.recv()
        except BaseException as exc:  # Ctrl-C here, or the child died
            proc.terminate()  # (it may be blocked sending to a parent that stopped reading)
            proc.join()
            if isinstance(exc, EOFError):
                raise CvtoolError(
                    "Reading the ground truth failed: its process ended early."
                ) from None
            raise
        finally:
            recv.close()
        proc.join()
        if not ok:
            raise value
        return value

    return wait


def _same_size(masks, hw, where):
    """Each mask's size equals its image's (where the image gives one)."""
    known = hw[:, 0] >= 0
    bad = np.nonzero(known & ((masks.h != hw[:, 0]) | (masks.w != hw[:, 1])))[0]
    if bad.size:
        i = int(bad[0])
        raise CvtoolError(
            f"{where} {i}: the mask size [{int(masks.h[i])}, {int(masks.w[i])}] differs from "
            f"its image's [{int(hw[i, 0])}, {int(hw[i, 1])}] (height, width)."
        )


def _none(v):
    return None if v is None or v == -1 or (isinstance(v, float) and np.isnan(v)) else float(v)


@boxes_io.no_gc()  # the parsed files are big and acyclic: see no_gc
@_small_pages()  # ~1 GB of fresh arrays for segm: see _small_pages
def evaluate_files(gt_path, dets_path, *, mode="coco", fmt="xywh", iou_threshold=0.5, offset=0.0,
                   iou_type="bbox", max_dets=COCO_MAX_DETS, image_sizes=None):  # fmt: skip
    """Load ground truth and detections, evaluate, and build the report.

    ``iou_type`` ``segm`` (COCO JSON, mode coco) scores masks; ``max_dets`` are
    COCOeval's three maxDets (mode coco). Boxes may also come as YOLO folders
    (``image_sizes``) or VOC XML (:func:`cvtool.boxes.labels.load_pair`).

    Returns
    -------
    dict
        ``doc`` (the JSON document), ``summary``, ``title``, ``table_columns``,
        ``table_rows``, ``warnings`` (list of str), ``images``, ``detections``,
        ``per_class``, ``curves`` (label, recall, precision) for plotting.
    """
    check_choice("mode", mode, MODES)
    check_number("iou", iou_threshold, low=0, high=1, low_open=True)
    check_choice("iou-type", iou_type, IOU_TYPES)
    max_dets = tuple(int(m) for m in max_dets)
    if mode != "coco" and (iou_type != "bbox" or max_dets != COCO_MAX_DETS):
        raise CvtoolError("--iou-type segm and --max-dets need --mode coco.")
    masks = {}
    if iou_type == "segm":
        if not (
            str(gt_path).lower().endswith(".json") and str(dets_path).lower().endswith(".json")
        ):
            raise CvtoolError("--iou-type segm needs COCO JSON ground truth and results.")
        gt, dt, gm, dm, darea = segm_inputs_from_files(gt_path, dets_path)
        masks = {"iou_type": "segm", "gt_masks": gm, "dt_masks": dm, "dt_area": darea}
    else:
        from cvtool.boxes.labels import load_pair

        gt, dt = load_pair(gt_path, dets_path, fmt, image_sizes)
    if len(gt.image_ids) == 0:
        raise CvtoolError(f"The ground truth '{gt_path}' has no images.")
    if len(gt.img) == 0:
        raise CvtoolError(f"The ground truth '{gt_path}' has no annotations.")
    warnings = []
    if len(dt.img) == 0:
        warnings.append(f"'{dets_path}' has no detections: every AP is 0")
    if gt.id_zero.any() and mode == "coco":
        warnings.append("an annotation has id 0; like COCOeval, a match to it counts as no match")
    n_gt = np.bincount(gt.cat, minlength=len(gt.cat_ids))
    n_dt = np.bincount(dt.cat, minlength=len(gt.cat_ids))
    names = [str(n) for n in gt.cat_names]
    per_class, curves = [], []
    if mode == "coco":
        r = coco_evaluate(gt, dt, max_dets=max_dets, **masks)
        names_ = stat_names(max_dets)
        stats = {k: _none(v) for k, v in zip(names_, r["stats"].tolist(), strict=True)}
        summary = {lab: stats[k] for lab, k in zip(stat_labels(max_dets), names_, strict=True)}
        for k, name in enumerate(names):
            per_class.append({"class": name, "id": gt.cat_ids[k], "gt": int(n_gt[k]), "dets": int(n_dt[k]),
                              "ap": _none(r["per_class_ap"][k]), "ap50": _none(r["per_class_ap50"][k])})  # fmt: skip
            p = r["precision"][0, :, k, 0, -1]  # IoU .50, area all, largest maxDets
            if (p > -1).all():
                curves.append((name, r["recall_thresholds"], p))
        doc = {"mode": mode, "iou_type": iou_type, "max_dets": list(max_dets), "stats": stats,
               "per_class": per_class}  # fmt: skip
        columns = ["class", "gt", "dets", "AP", "AP50"]
        rows = [[c["class"], c["gt"], c["dets"], c["ap"], c["ap50"]] for c in per_class]
        title = f"COCO {iou_type} evaluation (pycocotools-compatible)"
        plot_title = "Precision-recall at IoU 0.50 (COCO, 101-point interpolated)"
    else:
        r = voc_evaluate(gt, dt, iou_threshold=iou_threshold, use_07=mode == "voc07", offset=offset)
        for k, name in enumerate(names):
            per_class.append({"class": name, "id": gt.cat_ids[k], "gt": int(n_gt[k]),
                              "npos": int(r["npos"][k]), "dets": int(n_dt[k]), "ap": r["per_class_ap"][k]})  # fmt: skip
            if r["per_class_ap"][k] is not None and r["curves"][k][0].size:
                curves.append((name, *r["curves"][k]))
        label = "VOC2007 11-point" if mode == "voc07" else "VOC2010+ all-point"
        summary = {f"mAP @ IoU {iou_threshold:g} ({label})": r["map"]}
        doc = {
            "mode": mode,
            "map": r["map"],
            "iou_threshold": iou_threshold,
            "per_class": per_class,
        }
        columns = ["class", "gt (non-difficult)", "dets", "AP"]
        rows = [[c["class"], c["npos"], c["dets"], c["ap"]] for c in per_class]
        title = f"PASCAL VOC evaluation ({label})"
        plot_title = f"Precision-recall at IoU {iou_threshold:g} ({label})"
    doc.update(images=len(gt.image_ids), detections=int(len(dt.img)), warnings=warnings)
    return {"doc": doc, "summary": summary, "title": title, "table_columns": columns,
            "table_rows": rows, "warnings": warnings, "images": len(gt.image_ids),
            "detections": int(len(dt.img)), "per_class": per_class, "curves": curves,
            "plot_title": plot_title}  # fmt: skip


def plot(result: dict, path) -> None:
    """Draw the per-class precision-recall curves of an :func:`evaluate_files` result."""
    from cvtool.boxes.plot import plot_pr_curves

    mean = None
    if result["doc"]["mode"] == "coco" and result["curves"]:
        rec = result["curves"][0][1]
        mean = (rec, np.mean([c[2] for c in result["curves"]], axis=0))
    plot_pr_curves(result["curves"], path, title=result["plot_title"], mean_curve=mean)
