"""Benchmark: COCO bbox evaluation and box IoU matrices, cvtool vs pycocotools.

1. COCO evaluation of synthetic data (default 500 images, about 25,000
   detections, 8 classes, crowd regions, tied scores): pycocotools' COCOeval
   evaluate + accumulate against cvtool's ``coco_evaluate``, both starting
   from loaded data (pycocotools' COCO objects / cvtool's arrays); a second
   pair of rows includes loading from the parsed JSON (pycocotools: COCO index
   + loadRes; cvtool: ground_truth_from_coco + detections_from_coco). The
   precision/recall arrays of both are compared (max abs difference).
2. Box IoU matrices: ``pycocotools.mask.iou`` against ``cvtool.boxes.box_iou``
   (NumPy), N x N for a few N, with the max abs difference.
3. COCO segm evaluation (``--segm-images``, 480 x 640 images, polygon, RLE
   and crowd ground truth, RLE results): pycocotools and faster-coco-eval
   (COCO index + loadRes + evaluate + accumulate) against cvtool
   (``segm_inputs`` + ``coco_evaluate``), all from the parsed JSON dicts;
   precision/recall compared with pycocotools'. ``--only segm`` runs this part alone.

4. Whole commands (``--only commands``), issue 16's target: COCO bbox and
   segm evaluation of ``--cmd-images`` (5,000) images with up to
   ``--cmd-dets`` (100) detections each, from the JSON files on disk to the
   12 printed stats, as the process a user waits for: ``python -m cvtool iou
   map --json`` against a script that runs pycocotools' (and one that runs
   faster-coco-eval's) COCO + loadRes + evaluate + accumulate + summarize.
   Wall seconds and the child's peak resident memory (``wait4`` rusage),
   the stats compared with pycocotools'. Segm uses ``--cmd-segm-images``
   images (masks are expensive to generate; ``--cmd-data`` keeps them).

Each row is the median of ``--repeat`` runs, each in a forked child
(benchmarks/_common.py). The machine may be shared: quote ratios from one run.

    python benchmarks/bench_iou.py [--images 500] [--dets-per-image 50] [--repeat 5]
        [--segm-images 300] [--only all|bbox|segm|commands] [--json out.json]
        [--cmd-images 5000] [--cmd-dets 100] [--cmd-segm-images 5000] [--cmd-types bbox,segm]
        [--cmd-data DIR] [--cmd-before /path/to/other/checkout]

``--cmd-data DIR`` keeps the generated JSON files there and reuses them on the
next run (the 5,000 segm images take minutes to draw); ``--cmd-before``
adds a "cvtool before" row running the same command from another checkout.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import measure, report  # noqa: E402
from cvtool.boxes import box_iou  # noqa: E402
from cvtool.boxes.coco import coco_evaluate  # noqa: E402
from cvtool.boxes.io import detections_from_coco, ground_truth_from_coco  # noqa: E402
from cvtool.boxes.report import segm_inputs  # noqa: E402
from cvtool.boxes.synth import synthetic_coco, synthetic_coco_segm  # noqa: E402


def _quiet():
    return contextlib.redirect_stdout(io.StringIO())


def pyco_objects(gt, dets):
    from pycocotools.coco import COCO

    with _quiet():
        cg = COCO()
        cg.dataset = copy.deepcopy(gt)
        cg.createIndex()
        cd = cg.loadRes(copy.deepcopy(dets))
    return cg, cd


def pyco_eval(cg, cd):
    from pycocotools.cocoeval import COCOeval

    with _quiet():
        E = COCOeval(cg, cd, "bbox")
        E.evaluate()
        E.accumulate()
    return E.eval["precision"], E.eval["recall"]


def pyco_from_json(gt, dets):
    return pyco_eval(*pyco_objects(gt, dets))


def cvtool_eval(G, D):
    r = coco_evaluate(G, D)
    return r["precision"], r["recall"]


def cvtool_from_json(gt, dets):
    G = ground_truth_from_coco(gt)
    return cvtool_eval(G, detections_from_coco(dets, G))


def pyco_segm(gt, dets):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with _quiet():
        cg = COCO()
        cg.dataset = copy.deepcopy(gt)
        cg.createIndex()
        E = COCOeval(cg, cg.loadRes(copy.deepcopy(dets)), "segm")
        E.evaluate()
        E.accumulate()
    return E.eval["precision"], E.eval["recall"]


def faster_segm(gt, dets):
    from faster_coco_eval import COCO, COCOeval_faster

    with _quiet():
        cg = COCO(copy.deepcopy(gt))
        E = COCOeval_faster(cg, cg.loadRes(copy.deepcopy(dets)), "segm")
        E.evaluate()
        E.accumulate()
    return E.eval["precision"], E.eval["recall"]


def cvtool_segm(gt, dets):
    g, d, gm, dm, da = segm_inputs(gt, dets)
    r = coco_evaluate(g, d, iou_type="segm", gt_masks=gm, dt_masks=dm, dt_area=da)
    return r["precision"], r["recall"]


def bench_segm(args) -> list:
    gt, dets = synthetic_coco_segm(n_images=args.segm_images, n_cats=args.classes,
                                   gt_per_image=7, dets_per_image=args.dets_per_image,
                                   height=480, width=640, seed=0)  # fmt: skip
    rows, ref = [], None
    for name, fn in (("pycocotools segm", pyco_segm), ("faster-coco-eval segm", faster_segm),
                     ("cvtool segm", cvtool_segm)):  # fmt: skip
        try:
            m = measure(fn, gt, dets, repeat=args.repeat)
        except ImportError as exc:
            print(f"({name} skipped: {exc})")
            continue
        prec, rec = m.pop("result")
        ref = ref or (prec, rec)
        diff = max(float(np.abs(prec - ref[0]).max()), float(np.abs(rec - ref[1]).max()))
        rows.append({"name": name, **m, "max_abs_diff": diff})
    title = (f"COCO segm evaluation from parsed JSON: {args.segm_images} images 480x640, "
             f"{len(dets)} mask results, {len(gt['annotations'])} objects")  # fmt: skip
    report(title, rows, baseline="pycocotools segm", json_path=None)
    return rows


_DRIVER = """
import json, sys, contextlib, io
lib, gt_path, dt_path, iou_type = sys.argv[1:5]
if lib == "pycocotools":
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
else:
    from faster_coco_eval import COCO
    from faster_coco_eval import COCOeval_faster as COCOeval
with contextlib.redirect_stdout(io.StringIO()):
    gt = COCO(gt_path)
    E = COCOeval(gt, gt.loadRes(dt_path), iou_type)
    E.evaluate()
    E.accumulate()
E.summarize()
print("STATS " + json.dumps([float(v) for v in E.stats[:12]]))
"""


def _run_command(argv, cwd):
    """Run argv to the end: (wall seconds, peak resident MiB of the child, stdout).

    The peak is the child's own ``ru_maxrss`` from ``wait4`` (Linux: KiB).
    """
    import os
    import subprocess
    import tempfile
    import time

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, stdout=out, stderr=err,
                                env={**os.environ, "CVTOOL_BACKEND": "numpy"})  # fmt: skip
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise RuntimeError(f"{argv[:4]} failed: {err.read().decode()[-400:]}")
        return seconds, usage.ru_maxrss / 1024, out.read().decode()


def _stats_of(name, out):
    import json

    if name.startswith("cvtool"):
        doc = json.loads(out)
        return np.array([-1.0 if v is None else v for v in doc["stats"].values()])
    line = next(s for s in out.splitlines() if s.startswith("STATS "))
    return np.array(json.loads(line[6:]))


def bench_commands(args) -> list:
    """Issue 16's whole-command target: cvtool iou map vs pycocotools / faster-coco-eval."""
    import tempfile

    root = str(Path(__file__).resolve().parents[1])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        (t / "driver.py").write_text(_DRIVER)
        for iou_type in args.cmd_types.split(","):
            # the data are made in a forked child: a child forked from a big parent would
            # count the parent's pages in its peak RSS
            data = Path(args.cmd_data) if args.cmd_data else t
            g, d = data / f"{iou_type}_gt.json", data / f"{iou_type}_dets.json"
            if args.cmd_data and g.exists() and d.exists():  # made by an earlier run
                n_img, n_dets, n_gt = _in_child(_sizes_of, g, d)
            else:
                data.mkdir(parents=True, exist_ok=True)
                n_img, n_dets, n_gt = _in_child(_make_files, args, iou_type, g, d)
            cmds = {
                "pycocotools": [sys.executable, str(t / "driver.py"), "pycocotools", str(g),
                                str(d), iou_type],
                "faster-coco-eval": [sys.executable, str(t / "driver.py"), "faster", str(g),
                                     str(d), iou_type],
                "cvtool": [sys.executable, "-m", "cvtool", "iou", "map", "--gt", str(g), "--dets",
                           str(d), "--iou-type", iou_type, "--json"],
            }  # fmt: skip
            cwd = dict.fromkeys(cmds, root)
            if args.cmd_before:  # the same command from another checkout (cwd first on sys.path)
                cmds["cvtool before"] = cmds["cvtool"]
                cwd["cvtool before"] = args.cmd_before
            ref = None
            group = []
            for name, argv in cmds.items():
                try:
                    times, peaks, out = [], [], ""
                    for _ in range(args.repeat):
                        sec, peak, out = _run_command(argv, cwd[name])
                        times.append(sec)
                        peaks.append(peak)
                except RuntimeError as exc:
                    print(f"({name} {iou_type} skipped: {exc})")
                    continue
                stats = _stats_of(name, out)
                ref = stats if ref is None else ref
                group.append({"name": f"{name} {iou_type}", "seconds": float(np.median(times)),
                              "runs": times, "peak_mb": max(peaks),
                              "max_abs_stat_diff": float(np.abs(stats - ref).max())})  # fmt: skip
            title = (f"Whole command, COCO {iou_type}: {n_img} images, {n_dets} detections "
                     f"(at most 100 per image), {n_gt} objects; the launching process holds "
                     f"{_rss_mb():.0f} MiB")  # fmt: skip
            report(title, group, baseline=f"pycocotools {iou_type}")
            fce = next((r for r in group if r["name"].startswith("faster")), None)
            cv = next((r for r in group if r["name"].startswith("cvtool")), None)
            if fce and cv:
                print(f"cvtool / faster-coco-eval: {cv['seconds'] / fce['seconds']:.3f}x "
                      "(issue 16 target: <= 0.3x)")  # fmt: skip
            rows += group
    return rows


def _make_files(args, iou_type, g, d):
    """Write the synthetic ground truth and results of one IoU type; their sizes."""
    import json

    if iou_type == "bbox":
        gt, dets = synthetic_coco(n_images=args.cmd_images, n_cats=args.classes,
                                  dets_per_image=args.cmd_dets, seed=0)  # fmt: skip
    else:
        gt, dets = synthetic_coco_segm(n_images=args.cmd_segm_images, n_cats=args.classes,
                                       gt_per_image=7, dets_per_image=args.cmd_dets,
                                       height=480, width=640, seed=0)  # fmt: skip
    dets = _cap_per_image(dets, 100)
    g.write_text(json.dumps(gt))
    d.write_text(json.dumps(dets))
    return len(gt["images"]), len(dets), len(gt["annotations"])


def _sizes_of(g, d):
    """(images, detections, objects) of files written by :func:`_make_files`."""
    import json

    gt = json.loads(g.read_text())
    return len(gt["images"]), len(json.loads(d.read_text())), len(gt["annotations"])


def _in_child(fn, *args):
    """fn(*args) in a forked child (its memory is freed when it exits); its result."""
    from benchmarks._common import run_isolated

    return run_isolated(fn, *args)[0]


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096 / 2**20


def _cap_per_image(dets, k):
    """Keep the k highest-scored detections of each image (input order otherwise)."""
    by_img = {}
    for i, x in enumerate(dets):
        by_img.setdefault(x["image_id"], []).append(i)
    keep = set()
    for idx in by_img.values():
        keep.update(sorted(idx, key=lambda i: -dets[i]["score"])[:k])
    return [x for i, x in enumerate(dets) if i in keep]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=500)
    ap.add_argument("--dets-per-image", type=float, default=50.0)
    ap.add_argument("--classes", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--iou-sizes", default="500,2000")
    ap.add_argument("--segm-images", type=int, default=300)
    ap.add_argument("--only", choices=("all", "bbox", "segm", "commands"), default="all")
    ap.add_argument("--json", dest="json_path", default=None)
    ap.add_argument("--cmd-images", type=int, default=5000)
    ap.add_argument("--cmd-segm-images", type=int, default=5000)
    ap.add_argument("--cmd-dets", type=float, default=100.0)
    ap.add_argument("--cmd-types", default="bbox,segm")
    ap.add_argument(
        "--cmd-data",
        default=None,
        help="folder for the command benchmark's JSON files, kept and reused",
    )
    ap.add_argument(
        "--cmd-before",
        default=None,
        help="another checkout whose cvtool also runs the commands (cvtool before)",
    )
    args = ap.parse_args()
    if args.only == "commands":
        return _write(args, [], [], [], bench_commands(args))
    segm_rows = bench_segm(args) if args.only in ("all", "segm") else []
    if args.only == "segm":
        return _write(args, [], [], segm_rows)

    gt, dets = synthetic_coco(n_images=args.images, n_cats=args.classes,
                              dets_per_image=args.dets_per_image, seed=0)  # fmt: skip
    cg, cd = pyco_objects(gt, dets)
    G = ground_truth_from_coco(gt)
    D = detections_from_coco(dets, G)
    rows = []
    runs = [
        ("pycocotools evaluate+accumulate", pyco_eval, (cg, cd)),
        ("cvtool coco_evaluate", cvtool_eval, (G, D)),
        ("pycocotools incl. COCO index+loadRes", pyco_from_json, (gt, dets)),
        ("cvtool incl. parsing the JSON dicts", cvtool_from_json, (gt, dets)),
    ]
    ref = None
    for name, fn, fargs in runs:
        m = measure(fn, *fargs, repeat=args.repeat)
        prec, rec = m.pop("result")
        if ref is None:
            ref = (prec, rec)
        diff = max(float(np.abs(prec - ref[0]).max()), float(np.abs(rec - ref[1]).max()))
        rows.append({"name": name, **m, "max_abs_diff": diff})
    title = (f"COCO bbox evaluation: {args.images} images, {len(dets)} detections, "
             f"{len(gt['annotations'])} ground-truth boxes, {args.classes} classes")  # fmt: skip
    report(title, rows, baseline="pycocotools evaluate+accumulate", json_path=None)
    eval_rows = rows

    from pycocotools import mask as mask_utils

    rng = np.random.default_rng(1)
    iou_rows = []
    for n in (int(s) for s in args.iou_sizes.split(",")):
        a = np.hstack([rng.uniform(0, 600, (n, 2)), rng.uniform(1, 200, (n, 2))])
        b = np.hstack([rng.uniform(0, 600, (n, 2)), rng.uniform(1, 200, (n, 2))])
        crowd = [0] * n
        mp = measure(mask_utils.iou, a, b, crowd, repeat=args.repeat)
        mc = measure(box_iou, a, b, repeat=args.repeat)
        diff = float(np.abs(mp.pop("result") - mc.pop("result")).max())
        iou_rows.append({"name": f"pycocotools.mask.iou {n}x{n}", **mp})
        iou_rows.append({"name": f"cvtool box_iou {n}x{n}", **mc, "max_abs_diff": diff})
        report(f"Box IoU matrix {n} x {n}", iou_rows[-2:], baseline=f"pycocotools.mask.iou {n}x{n}")
    _write(args, eval_rows, iou_rows, segm_rows)


def _write(args, eval_rows, iou_rows, segm_rows, command_rows=()) -> None:
    if args.json_path:
        import json

        for r in eval_rows + iou_rows + segm_rows:
            r.pop("result", None)
        doc = {"python": sys.version.split()[0], "evaluation": eval_rows, "iou": iou_rows,
               "segm": segm_rows, "commands": list(command_rows)}  # fmt: skip
        Path(args.json_path).write_text(json.dumps(doc, indent=2, default=str))
        print(f"(written to {args.json_path})")


if __name__ == "__main__":
    main()
