"""Pictures of what a detector or segmenter found: boxes drawn on images, label maps in colour.

- :func:`palette`: K fixed colours, background black, as RGB triples;
- :func:`label_map_image`: a label map as a palette PNG (mode "P": the pixel
  values are the classes, so the file is still a label map for ``iou seg``);
- :func:`boxes_image`: an image, enlarged, with each detection's box, class
  name and score drawn on it;
- :func:`overlay_image`: an image with its label map blended over it.

Pillow only (no matplotlib); the callers write the files atomically.
"""

from __future__ import annotations

import io

import numpy as np

_COLOURS = [
    (0, 0, 0), (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
    (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212),
    (0, 128, 128), (220, 190, 255), (170, 110, 40), (255, 250, 200), (128, 0, 0),
]  # fmt: skip


def palette(k: int) -> list[tuple[int, int, int]]:
    """K colours: class 0 (background) black, then distinct ones (repeating past 15)."""
    return [_COLOURS[0]] + [_COLOURS[1 + (i % (len(_COLOURS) - 1))] for i in range(k - 1)]


def _rgb(image) -> np.ndarray:
    a = np.asarray(image)
    a = a[..., 0] if a.ndim == 3 and a.shape[2] == 1 else a
    return np.stack([a] * 3, axis=-1) if a.ndim == 2 else a


def png_bytes(picture) -> bytes:
    buf = io.BytesIO()
    picture.save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def label_map_image(label_map, k: int):
    """A (H, W) label map as a palette PIL image whose pixel values are the classes."""
    from PIL import Image

    im = Image.fromarray(np.asarray(label_map, np.uint8), mode="P")
    im.putpalette([v for rgb in palette(max(k, 256)) for v in rgb][: 256 * 3])
    return im


def overlay_image(image, label_map, k: int, scale: int = 4, alpha: float = 0.5):
    """The image with the label map's colours blended over its non-background pixels."""
    from PIL import Image

    rgb = _rgb(image).astype(np.float64)
    colours = np.asarray(palette(k), np.float64)[np.asarray(label_map)]
    fg = (np.asarray(label_map) > 0)[..., None]
    out = np.where(fg, (1 - alpha) * rgb + alpha * colours, rgb).astype(np.uint8)
    h, w = out.shape[:2]
    return Image.fromarray(out).resize((w * scale, h * scale), Image.NEAREST)


def boxes_image(image, detections: list[dict], class_names, scale: int = 4):
    """The image, `scale` times larger, with boxes, class names and scores drawn.

    `detections` are COCO results of this image (bbox xywh in the image's
    pixels, category_id = class + 1, score).
    """
    from PIL import Image, ImageDraw

    rgb = _rgb(image).astype(np.uint8)
    h, w = rgb.shape[:2]
    im = Image.fromarray(rgb).resize((w * scale, h * scale), Image.NEAREST)
    draw = ImageDraw.Draw(im)
    colours = palette(len(class_names) + 1)
    for d in detections:
        x, y, bw, bh = (v * scale for v in d["bbox"])
        c = int(d["category_id"])
        colour = colours[c % len(colours)] if c else (255, 255, 255)
        draw.rectangle([x, y, max(x, x + bw - 1), max(y, y + bh - 1)], outline=colour, width=2)
        name = class_names[c - 1] if 0 < c <= len(class_names) else str(c)
        draw.text((x + 2, y + 1), f"{name} {d['score']:.2f}", fill=colour)
    return im
