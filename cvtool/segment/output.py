"""Writing a segmenter's results: label-map PNGs, COCO instances with RLE masks, previews."""

from __future__ import annotations

import json

from cvtool import fileio
from cvtool.preview import label_map_image, overlay_image, png_bytes
from cvtool.segment.instances import instances as find_instances
from cvtool.segment.task import segment, segmenter_of


def write_segmentation(model, images, image_ids, *, out=None, instances=None, preview=None,
                       min_area: int = 4) -> dict:  # fmt: skip
    """Run the segmenter on images and write what was asked; returns counts for the report.

    out : a new folder of label-map PNGs (palette; pixel values are classes),
        named by image id, e.g. ``00001.png`` (the canvas folders' names).
    instances : a COCO results file ('-' is stdout) with one RLE-masked
        instance per connected component of each class (category id = class).
    preview : a new folder of images with their label maps blended over them.
    """
    k = segmenter_of(model).num_classes
    maps, probs = segment(model, images)
    names = [f"{int(i):05d}.png" for i in image_ids]
    if out is not None:
        with fileio.atomic_folder(out) as tmp:
            for name, m in zip(names, maps, strict=True):
                (tmp / name).write_bytes(png_bytes(label_map_image(m, k)))
    if preview is not None:
        with fileio.atomic_folder(preview) as tmp:
            for name, image, m in zip(names, images, maps, strict=True):
                (tmp / name).write_bytes(png_bytes(overlay_image(image, m, k)))
    found = []
    if instances is not None:
        for i, m, p in zip(image_ids, maps, probs, strict=True):
            found += find_instances(m, p, image_id=int(i), min_area=min_area)
        fileio.atomic_write_text(instances, json.dumps(found) + "\n")
    return {"images": len(maps), "classes": k, "instances": len(found) if instances else None,
            "out": None if out is None else str(out),
            "instances_file": None if instances is None else str(instances),
            "preview": None if preview is None else str(preview)}  # fmt: skip
