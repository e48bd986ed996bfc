"""Precision-recall curves to an image file (matplotlib, Agg backend, imported lazily).

One line per class plus, optionally, a thick line for the mean curve. The file
is written atomically; the format follows the suffix (``.png``, ``.pdf``,
``.svg``). Nothing is shown on screen.
"""

from __future__ import annotations

from collections.abc import Sequence

from cvtool.errors import CvtoolError
from cvtool.fileio import atomic_path


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
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise CvtoolError("--plot needs matplotlib (pip install 'cvtool[plot]').") from None
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
