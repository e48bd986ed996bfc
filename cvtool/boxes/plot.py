"""Figures to image files (matplotlib, Agg backend, imported lazily).

Precision-recall curves (one line per class plus, optionally, a thick mean
line), the detection confusion-matrix heatmap, and the F1-confidence and
per-class precision-recall panels of ``iou curves``. Each file is written
atomically; the format follows the suffix (``.png``, ``.pdf``, ``.svg``).
Nothing is shown on screen.
"""

from __future__ import annotations

from collections.abc import Sequence

from cvtool.errors import CvtoolError
from cvtool.fileio import atomic_path


def _pyplot():
    """matplotlib.pyplot on the Agg backend, or a CvtoolError when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise CvtoolError("--plot needs matplotlib (pip install 'cvtool[plot]').") from None
    return plt


def _save(fig, path, plt) -> None:
    """Save ``fig`` atomically to ``path`` and close it; a CvtoolError when it cannot."""
    try:
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp)
    except (ValueError, OSError) as exc:
        raise CvtoolError(f"Cannot write the plot to '{path}' ({exc}).") from None
    finally:
        plt.close(fig)


def plot_pr_curves(curves: Sequence[tuple[str, object, object]], path, title: str = "",
                   mean_curve: tuple[object, object] | None = None) -> None:  # fmt: skip
    """Draw (label, recall, precision) curves and save them to ``path``.

    Parameters
    ----------
    curves : sequence of (str, array (n,), array (n,))
        Per-class recall and precision values (recall on x).
    path : str or Path
    title : str
    mean_curve : (recall, precision), optional
        Drawn thicker, in black, labelled "mean".
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 5.5), dpi=110)
    try:
        for label, rec, prec in curves:
            ax.plot(rec, prec, lw=1.2, label=label)
        if mean_curve is not None:
            ax.plot(*mean_curve, lw=2.6, color="black", label="mean")
        ax.set_xlim(0, 1.0)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        if len(curves) <= 20:
            ax.legend(fontsize=7, loc="lower left", ncols=2 if len(curves) > 8 else 1)
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp)
    except (ValueError, OSError) as exc:
        raise CvtoolError(f"Cannot write the plot to '{path}' ({exc}).") from None
    finally:
        plt.close(fig)


def plot_confusion(matrix, names: Sequence[str], path, title: str = "") -> None:
    """Heatmap of a (K + 1, K + 1) detection confusion matrix, background last.

    Rows are true classes, columns predicted ones; each row's cells are
    coloured by their share of the row (counts written in the cells when
    there are at most 30 classes).
    """
    import numpy as np

    plt = _pyplot()
    m = np.asarray(matrix)
    labels = [*map(str, names), "background"]
    share = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    n = m.shape[0]
    side = min(4 + 0.45 * n, 24)
    fig, ax = plt.subplots(figsize=(side + 1.5, side), dpi=110)
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of the row")
    ax.set_xticks(range(n), labels, rotation=90 if n > 8 else 0, fontsize=8)
    ax.set_yticks(range(n), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if n <= 31:
        for i in range(n):
            for j in range(n):
                if m[i, j]:
                    ax.text(j, i, str(int(m[i, j])), ha="center", va="center", fontsize=7,
                            color="white" if share[i, j] > 0.5 else "black")  # fmt: skip
    _save(fig, path, plt)


def plot_bars(values: dict, path, title: str = "", xlabel: str = "") -> None:
    """Horizontal bars, one per ``name: value`` (top to bottom in the dict's order)."""
    plt = _pyplot()
    names, vals = list(values), [float(v) for v in values.values()]
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(names) + 1.5), dpi=110)
    ax.barh(range(len(names)), vals, color="tab:red")
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    for i, v in enumerate(vals):
        ax.text(v, i, f" {v:.2f}", va="center", fontsize=8)
    ax.set_xlim(0, max([*vals, 1e-9]) * 1.15)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    _save(fig, path, plt)


def plot_score_curves(grid, per_class: dict, mean: dict, pr_curves, names: Sequence[str], path,
                      best: float | None = None, title: str = "") -> None:  # fmt: skip
    """Four panels: precision, recall and F1 against confidence, and precision-recall.

    Parameters
    ----------
    grid : array (G,)
        Confidences.
    per_class : dict "precision"/"recall"/"f1" -> array (K, G)
    mean : dict of the same keys -> array (G,), drawn thick in black
    pr_curves : sequence of (recall (n,), precision (n,)), one per class
    names : sequence of str, K class names
    best : float, optional
        The best-F1 confidence, marked on the F1 panel.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(11, 8.5), dpi=100)
    few = len(names) <= 20
    for ax, key in zip(axes.flat[:3], ("precision", "recall", "f1"), strict=True):
        for k, name in enumerate(names):
            ax.plot(grid, per_class[key][k], lw=1.0, label=name if few else None)
        ax.plot(grid, mean[key], lw=2.6, color="black", label="mean")
        ax.set_xlabel("confidence")
        ax.set_ylabel(key if key != "f1" else "F1")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.set_title(f"{'F1' if key == 'f1' else key.capitalize()}-confidence")
    if best is not None:
        axes[1, 0].axvline(best, color="tab:red", ls="--", lw=1.2, label=f"best {best:.3f}")
    ax = axes[1, 1]
    for (rec, prec), name in zip(pr_curves, names, strict=True):
        ax.plot(rec, prec, lw=1.0, label=name if few else None)
    ax.set_xlim(0, 1.0)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title("Precision-recall")
    ax.grid(alpha=0.3)
    for a in axes.flat:
        if few or a is axes[1, 0]:
            a.legend(fontsize=6, loc="lower left")
    fig.suptitle(title)
    _save(fig, path, plt)
