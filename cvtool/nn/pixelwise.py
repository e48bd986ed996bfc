"""Per-pixel softmax + log-likelihood for segmentation, Nielsen-style: value and delta.

Segmentation is classification of every pixel: a network maps images to
scores (N, H, W, K) over K classes and the targets are label maps (N, H, W) of
integers in 0..K-1. :class:`PixelLogLikelihood` is the log-likelihood of the
softmax over the last axis at every pixel, with optional class weights and an
ignore label, reduced as PyTorch's ``CrossEntropyLoss(weight=w, ignore_index=i)``
reduces it (the weighted mean over the pixels that are not ignored)::

    C = - sum_i w[y_i] ln p_i[y_i] / sum_i w[y_i]          over pixels i with y_i != ignore
    dC/dz_i = w[y_i] (p_i - onehot(y_i)) / sum_j w[y_j]    (0 at ignored pixels)

``fn`` is the value, ``delta`` the gradient with respect to the *logits* z of
the batch's mean cost (already divided by the weight total: unlike the costs
of :mod:`cvtool.nn.losses`, the caller does not divide it by the batch size).
With ``from_logits=True`` the scores are logits (softmax applied here, via a
stable log-sum-exp); with ``from_logits=False`` they are softmax outputs and
``delta`` is the fused output error of that softmax (the softmax layer's
backward is then skipped, as ``Sequential.fuses_output`` does).

Class weights counter the imbalance of segmentation data (background is
most pixels): PyTorch's convention, a weight per class, multiplies each
pixel's term and its share of the normaliser. A batch with every pixel
ignored has cost 0 and gradient 0 (PyTorch returns nan). Left out: label
smoothing, focal and Dice losses, reductions other than the mean.
"""

from __future__ import annotations

import math

from cvtool.backend import array_module, backend_name
from cvtool.errors import CvtoolError, check_int
from cvtool.nn._parallel import run_rows

_TINY = 1e-12  # keeps ln(0) finite for saturated softmax outputs


class PixelLogLikelihood:
    """Softmax + log-likelihood over every pixel of (N, H, W, K) scores.

    Parameters
    ----------
    weight : sequence of K floats >= 0, optional
        Per-class weights (PyTorch's ``weight``); None weighs every class 1.
    ignore_index : int, optional
        A label whose pixels count for nothing (PyTorch's ``ignore_index``; e.g.
        255 for VOC's object borders). None ignores nothing.
    from_logits : bool
        True: scores are logits. False: scores are softmax outputs.
    check : bool
        Check labels' shape, dtype and range on every call (one CvtoolError line).
        A training loop that checked its label maps once may pass False, which also
        keeps ``delta`` free of device-to-host transfers.

    Examples
    --------
    >>> import numpy as np
    >>> loss = PixelLogLikelihood()
    >>> z = np.zeros((1, 2, 2, 4)); y = np.zeros((1, 2, 2), dtype=int)
    >>> round(loss.fn(z, y), 6) == round(float(np.log(4)), 6)
    True
    """

    name = "pixel-log-likelihood"
    fused = "softmax"

    def __init__(self, weight=None, ignore_index: int | None = None, *, from_logits: bool = True,
                 check: bool = True):  # fmt: skip
        if weight is not None:
            weight = tuple(float(w) for w in weight)
            if not weight or any(not math.isfinite(w) or w < 0 for w in weight):
                raise CvtoolError(
                    f"The 'weight' parameter must be one finite number >= 0 per class. "
                    f"Got {list(weight)!r} instead."
                )
        if ignore_index is not None:
            ignore_index = check_int("ignore_index", ignore_index)
        self.weight = weight
        self.ignore_index = ignore_index
        self.from_logits = bool(from_logits)
        self.check = bool(check)

    def config(self) -> dict:
        return {"weight": self.weight, "ignore_index": self.ignore_index,
                "from_logits": self.from_logits}  # fmt: skip

    def check_labels(self, scores, labels) -> None:
        """CvtoolError unless labels (N, H, W) are integers in 0..K-1 (or the ignore label).

        Reads two numbers back from the device (the smallest and largest label).
        """
        k = scores.shape[-1]
        if tuple(labels.shape) != tuple(scores.shape[:-1]):
            raise CvtoolError(
                f"Label maps of shape {tuple(labels.shape)} do not match scores of shape "
                f"{tuple(scores.shape)}; each pixel needs one label (N, H, W)."
            )
        if labels.dtype.kind not in "iu":
            raise CvtoolError(f"Label maps must hold integers; got dtype {labels.dtype}.")
        if self.weight is not None and len(self.weight) != k:
            raise CvtoolError(
                f"The 'weight' parameter must have one entry per class ({k}). "
                f"Got {len(self.weight)} instead."
            )
        valid = labels if self.ignore_index is None else labels[labels != self.ignore_index]
        if valid.size and (int(valid.min()) < 0 or int(valid.max()) >= k):
            bad = int(valid.min()) if int(valid.min()) < 0 else int(valid.max())
            ignore = (
                "" if self.ignore_index is None else f" or the ignore label {self.ignore_index}"
            )
            raise CvtoolError(f"Labels must be in 0..{k - 1}{ignore}. Got {bad} instead.")

    def _pixels(self, scores, labels):
        """(labels safe to index with, per-pixel weights / their total) for the scores."""
        if self.check:
            self.check_labels(scores, labels)
        xp = array_module(scores)
        valid = None if self.ignore_index is None else labels != self.ignore_index
        lab = labels if valid is None else xp.where(valid, labels, 0)  # (N, H, W)
        if self.weight is not None:
            w = xp.asarray(self.weight, dtype=scores.dtype)[lab]  # (N, H, W)
            if valid is not None:
                w *= valid
        elif valid is not None:
            w = valid.astype(scores.dtype)
        else:
            w = xp.full(lab.shape, 1.0 / max(1, lab.size), dtype=scores.dtype)
            return lab, w
        w /= xp.maximum(w.sum(), _TINY)  # all pixels ignored: every weight stays 0
        return lab, w

    def fn(self, scores, labels) -> float:
        """The weighted mean of -ln p[y] over the pixels that are not ignored."""
        return self._compute(scores, labels, delta=False)[0]

    def delta(self, scores, labels, scale: float = 1.0):
        """dC/dz (N, H, W, K): the gradient of fn with respect to the logits, times `scale`
        (a training loop that wants the per-example form passes the batch size: no second
        pass over the array)."""
        return self._compute(scores, labels, delta=True, value=False, scale=scale)[1]

    def value_and_delta(self, scores, labels, scale: float = 1.0, on_device: bool = False):
        """(fn, delta times `scale`) sharing one softmax; `on_device`: fn as a 0-d array on
        the scores' device (a training step then makes no host transfer), else a float."""
        return self._compute(scores, labels, delta=True, scale=scale, on_device=on_device)

    def _compute(self, scores, labels, *, delta: bool, value: bool = True, scale: float = 1.0,
                 on_device: bool = False):  # fmt: skip
        """(fn or None, delta or None), one row per pixel, rows split across threads on NumPy."""
        xp = array_module(scores)
        lab, w = self._pixels(scores, labels)
        k = scores.shape[-1]
        z = scores.reshape(-1, k)  # (M, K): one row per pixel
        lab, w = lab.reshape(-1), w.reshape(-1)  # (M,)
        wd = w if scale == 1.0 else w * w.dtype.type(scale)  # the weights of delta
        d = xp.empty_like(z) if delta else None
        sums = {}

        def rows(s, e):  # pixels s .. e-1
            zs, ls, ws, wds = z[s:e], lab[s:e], w[s:e], wd[s:e]
            idx = xp.arange(e - s)
            picked = zs[idx, ls]  # the score of each pixel's label
            if self.from_logits:
                top = zs[:, 0].copy()
                for j in range(1, k):  # NumPy reduces a short last axis slowly; K slices do not
                    xp.maximum(top, zs[:, j], out=top)
                ex = d[s:e] if delta else xp.empty_like(zs)
                xp.exp(xp.subtract(zs, top[:, None], out=ex), out=ex)
                total = xp.einsum("ij->i", ex)  # (m,) sum over classes
                nll = xp.log(total) + top - picked
                if delta:
                    ex *= (wds / total)[:, None]  # w p
            else:
                nll = -xp.log(xp.maximum(picked, _TINY))
                if delta:  # softmax outputs: the fused error of the softmax, w (a - onehot)
                    xp.multiply(zs, wds[:, None], out=d[s:e])
            if delta:
                d[s:e][idx, ls] -= wds  # w (p - onehot)
            if value:
                sums[s] = xp.dot(nll, ws)

        if backend_name(xp) == "numpy":
            run_rows(rows, len(z), z.size)
        else:
            rows(0, len(z))
        total = sum(sums[s] for s in sorted(sums)) if value else None  # row order: same bits
        return (
            None if total is None else total if on_device else float(total),
            d.reshape(scores.shape) if delta else None,
        )
