"""Skip connections in a sequential spec: named taps, then ``add`` or ``concat``.

FCN-16s/8s and U-Net join a deep, coarse feature map with an earlier, finer
one. In cvtool's spec language that is written in order, with names::

    conv:16x3:relu:p=same, tap:full, pool:2, conv:32x3:relu:p=same, pool:2,
    ..., upsample:4, concat:full, conv:11x1

- :class:`Tap` passes its input on unchanged and keeps it (``out``) for the
  merge that names it;
- :class:`Concat` joins its input with the tapped tensor along the channel
  axis (U-Net); :class:`Add` sums them (FCN's score maps; equal shapes).

Backward, a merge hands the tapped branch its share of the gradient
(``Tap.pending``); the tap adds it to the gradient coming down the main path,
so backpropagation stays one walk down the list of layers. Shapes come from
``shapes.merge_output``; the summary and ``layer-calc`` walk the same spec.
Left out: merges of more than two tensors, taps used by more than one merge.
"""

from __future__ import annotations

import numpy as np

from cvtool import shapes
from cvtool.errors import CvtoolError
from cvtool.nn._parallel import run_rows
from cvtool.nn.layers import Layer


class Tap(Layer):
    """Identity that keeps its input for a later merge and adds that merge's gradient back."""

    kind = "tap"

    def __init__(self, name: str):
        super().__init__()
        self.name = name
        self.out = self.pending = None
        self.shape: tuple[int, ...] | None = None

    def config(self) -> dict:
        return {"name": self.name}

    def output_shape(self, in_shape):
        self.shape = tuple(in_shape)
        return self.shape

    def forward(self, x, training=False):
        self.out = x
        return x

    def backward(self, dout):
        if self.pending is not None:  # the skip's gradient joins the main path's
            pending, self.pending = self.pending, None
            xp = self.xp
            if xp is not np:
                return dout + pending
            out = self.buffer("dx", dout.shape)  # the sum, split across cores
            run_rows(lambda s, e: xp.add(dout[s:e], pending[s:e], out=out[s:e]), len(out), out.size)
            return out
        return dout


class _Merge(Layer):
    def __init__(self, name: str, tap: Tap | None = None):
        super().__init__()
        self.name, self.tap = name, tap

    def config(self) -> dict:
        return {"name": self.name}

    def link(self, taps: dict) -> None:
        if self.name not in taps:
            raise CvtoolError(f"'{self.kind}:{self.name}' has no 'tap:{self.name}' before it.")
        self.tap = taps[self.name]

    def output_shape(self, in_shape):
        assert self.tap.shape is not None, "the tap's output_shape runs first (layer order)"
        return shapes.merge_output(self.kind, in_shape, self.tap.shape)

    def _give(self, grad) -> None:
        self.tap.pending = grad if self.tap.pending is None else self.tap.pending + grad


class Concat(_Merge):
    """(N, H, W, C1) and the tap's (N, H, W, C2) -> (N, H, W, C1 + C2), input channels first."""

    kind = "concat"

    def forward(self, x, training=False):
        xp, t = self.xp, self.tap.out
        self.channels = c1 = x.shape[-1]
        if xp is not np or not training:
            return xp.concatenate([x, t], axis=-1)
        out = self.buffer("out", (*x.shape[:-1], c1 + t.shape[-1]))

        def rows(s, e):  # two strided copies, a batch slice per core
            np.copyto(out[s:e, ..., :c1], x[s:e])
            np.copyto(out[s:e, ..., c1:], t[s:e])

        run_rows(rows, len(out), out.size)
        return out

    def backward(self, dout):
        self._give(dout[..., self.channels :])
        return dout[..., : self.channels]


class Add(_Merge):
    """x + the tap's tensor (equal shapes)."""

    kind = "add"

    def forward(self, x, training=False):
        xp, t = self.xp, self.tap.out
        if xp is not np or not training:
            return x + t
        out = self.buffer("out", x.shape)
        run_rows(lambda s, e: xp.add(x[s:e], t[s:e], out=out[s:e]), len(out), out.size)
        return out

    def backward(self, dout):
        self._give(dout)
        return dout


MERGES = {"concat": Concat, "add": Add}
