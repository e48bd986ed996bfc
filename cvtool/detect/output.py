"""Writing a detector's results: COCO results JSON or the box CSV, and preview pictures.

The box CSV is the one ``cvtool iou`` reads: ``image,class,x,y,w,h,score``
(xywh in pixels, class = the COCO category id), so ``cvtool detect ... --out
dets.csv`` feeds ``cvtool iou nms`` and ``cvtool iou map`` as the JSON does.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from cvtool import fileio
from cvtool.preview import boxes_image, png_bytes


def write_results(results: list[dict], out) -> None:
    """COCO results JSON (a list; '-' and *.json) or the box CSV (*.csv) to `out`."""
    if str(out).lower().endswith(".csv"):
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["image", "class", "x", "y", "w", "h", "score"])
        for r in results:
            writer.writerow([r["image_id"], r["category_id"], *r["bbox"], r["score"]])
        fileio.atomic_write_text(out, buf.getvalue())
        return
    fileio.atomic_write_text(out, json.dumps(results) + "\n")


def write_previews(folder, images, image_ids, names, results, class_names, scale: int = 4) -> None:
    """One PNG per image with its detections drawn, in a new folder (atomic as a whole)."""
    by_image: dict = {}
    for r in results:
        by_image.setdefault(r["image_id"], []).append(r)
    with fileio.atomic_folder(folder) as tmp:
        for image, i, name in zip(images, image_ids, names, strict=True):
            picture = boxes_image(image, by_image.get(int(i), []), class_names, scale)
            (tmp / f"{Path(str(name)).stem.replace('/', '-')}.png").write_bytes(png_bytes(picture))
