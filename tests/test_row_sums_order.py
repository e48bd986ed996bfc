"""Per-thread partial sums are added in row order, whichever thread finishes first."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from cvtool.nn._parallel import column_sums
from cvtool.nn.norm import BatchNorm
from cvtool.nn.pixelwise import PixelLogLikelihood


def _rows(monkeypatch, last_first: bool):
    """run_rows in 4 pieces that finish first-first, or last-first (as busy threads may)."""

    def run_rows(fn, n, size):
        step = -(-n // 4)
        starts = list(range(0, n, step))
        for s in reversed(starts) if last_first else starts:
            fn(s, min(s + step, n))

    for module in ("cvtool.nn.norm", "cvtool.nn.pixelwise"):
        monkeypatch.setattr(f"{module}.run_rows", run_rows)


def test_batch_norm_statistics_do_not_depend_on_which_piece_finishes_first(monkeypatch):
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, (64, 16, 16, 8)) ** 3  # float64: the sum order shows in the bits
    dout = rng.normal(size=x.shape)

    def fwd_bwd():
        bn = BatchNorm()
        bn.build(x.shape[1:], np, np.float64, rng=np.random.default_rng(1))
        y = bn.forward(x, training=True).copy()
        return y, bn.backward(dout).copy(), bn.grads["gamma"].copy(), bn.grads["beta"].copy()

    _rows(monkeypatch, last_first=False)
    want = fwd_bwd()
    _rows(monkeypatch, last_first=True)
    got = fwd_bwd()
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)


def test_pixel_loss_does_not_depend_on_which_piece_finishes_first(monkeypatch):
    rng = np.random.default_rng(2)
    z = rng.normal(size=(32, 32, 32, 5)) * 10  # float64
    labels = rng.integers(0, 5, (32, 32, 32))
    loss = PixelLogLikelihood()
    _rows(monkeypatch, last_first=False)
    want = loss.value_and_delta(z, labels)[0]
    _rows(monkeypatch, last_first=True)
    assert loss.value_and_delta(z, labels)[0] == want


@settings(max_examples=80, deadline=None)
@given(
    rows=st.integers(1, 3000),
    cols=st.integers(1, 130),
    dtype=st.sampled_from(["float32", "float64"]),
    seed=st.integers(0, 2**16),
)
def test_column_sums_equal_numpys_sum_over_rows_bit_for_bit(rows, cols, dtype, seed):
    """The bias gradients' fast column sums (einsum) are sum(axis=0)'s very bits."""
    a = (np.random.default_rng(seed).standard_normal((rows, cols)) * 7 + 3).astype(dtype)
    out = np.empty(cols, dtype)
    np.testing.assert_array_equal(column_sums(a, out), a.sum(axis=0))
    np.testing.assert_array_equal(out, a.sum(axis=0))
