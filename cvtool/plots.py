"""Figures written to PNG with matplotlib (Agg backend, imported only when asked).

- ``plot_history``: cost and accuracy against epoch, training and validation;
- ``plot_templates``: a grid of images, one per unit (first-layer weights).

matplotlib is an optional dependency (``pip install cvtool[plot]``); without it
these raise a CvtoolError that says so. Files are written atomically.
Left out: interactive windows, SVG/PDF styling options.
"""

from __future__ import annotations

import math

from cvtool.errors import CvtoolError
from cvtool.fileio import atomic_path


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise CvtoolError("Plotting needs matplotlib: pip install 'cvtool[plot]'.") from None
    return plt


def _check_png(path) -> None:
    if not str(path).lower().endswith(".png"):
        raise CvtoolError(
            f"Plots are written as PNG; the file name must end in .png. Got {path!r}."
        )


def plot_history(records: list[dict], path, title: str = "") -> None:
    """Cost (left) and accuracy (right) against epoch from ``History.records``.

    Curves are drawn for the keys present: train_cost, val_cost,
    train_accuracy, val_accuracy.
    """
    _check_png(path)
    plt = _pyplot()
    fig, (ax_c, ax_a) = plt.subplots(1, 2, figsize=(10, 4))
    epochs = [r["epoch"] for r in records]
    for ax, metric in ((ax_c, "cost"), (ax_a, "accuracy")):
        for split, style in (("train", "-"), ("val", "--")):
            key = f"{split}_{metric}"
            values = [r.get(key) for r in records]
            if any(v is not None for v in values):
                label = "training" if split == "train" else "validation"
                ax.plot(epochs, values, style, label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)


def plot_templates(images, path, titles=None, title: str = "", cmap: str = "seismic") -> None:
    """A grid of images (K, H, W) or (K, H, W, 3), each scaled symmetrically about 0.

    Red is positive weight, blue negative (``seismic``), as in the course's
    linear-classifier templates.
    """
    _check_png(path)
    plt = _pyplot()
    k = len(images)
    cols = min(k, 10)
    rows = math.ceil(k / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.4 * cols, 1.5 * rows + 0.3), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= k:
            continue
        im = images[i]
        if im.ndim == 3 and im.shape[-1] == 3:  # colour: min-max to [0, 1]
            lo, hi = float(im.min()), float(im.max())
            ax.imshow((im - lo) / (hi - lo or 1.0))
        else:
            im = im.reshape(im.shape[:2])
            lim = float(abs(im).max()) or 1.0
            ax.imshow(im, cmap=cmap, vmin=-lim, vmax=lim)
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
