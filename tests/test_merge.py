"""Skip connections (tap, add, concat): shapes, summary, gradients, save/load."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import numeric_grad, rel_error

from cvtool.errors import CvtoolError
from cvtool.nn.model import Sequential
from cvtool.nn.spec import parse_spec
from cvtool.summary import summarize

SPEC = (
    "input:8x8x2, conv:3x3:tanh:p=same, tap:full, pool:2:s=2, conv:4x3:tanh:p=same, tap:half, "
    "avgpool:2, conv:4x1:tanh, upsample:2, add:half, upsample:2:bilinear, concat:full, conv:3x1"
)


def test_skips_backpropagate_like_finite_differences():
    rng = np.random.default_rng(0)
    model = Sequential.from_spec(parse_spec(SPEC)).build(np, "float64", seed=1)
    model.layers[0].need_dx = True
    x = rng.standard_normal((2, 8, 8, 2))
    w = rng.standard_normal((2, *model.output_shape))

    def cost():
        return float((model.forward(x, True) * w).sum())

    cost()
    d = w
    for layer in reversed(model.layers):
        d = layer.backward(d)
    assert rel_error(d, numeric_grad(cost, x)) < 1e-6  # the input gets both branches' gradients
    for layer in model.param_layers:
        for k, p in layer.params.items():
            analytic = layer.grads[k].copy()
            assert rel_error(analytic, numeric_grad(cost, p)) < 1e-6, (layer.kind, k)


def test_shapes_and_summary_agree_with_a_forward_pass():
    model = Sequential.from_spec(parse_spec(SPEC)).build(np, "float32")
    out = model.forward(np.zeros((1, 8, 8, 2), np.float32))
    rows = summarize(parse_spec(SPEC))["rows"]
    assert out.shape[1:] == model.output_shape == rows[-1]["output_shape"] == (8, 8, 3)
    concat = next(r for r in rows if r["type"] == "Concatenate")
    assert concat["output_shape"] == (8, 8, 7)  # 4 upsampled + 3 tapped channels
    assert model.count_params() == sum(
        int(p.size) for lay in model.layers for p in lay.params.values()
    )


def test_a_model_with_skips_saves_and_loads(tmp_path):
    model = Sequential.from_spec(parse_spec(SPEC)).build(np, "float64", seed=3)
    x = np.random.default_rng(1).standard_normal((3, 8, 8, 2))
    path = model.save(tmp_path / "skip.npz")
    again = Sequential.load(path, backend_name="numpy", dtype="float64")
    np.testing.assert_array_equal(again.forward(x), model.forward(x))


@pytest.mark.parametrize(
    "spec, message",
    [
        ("input:8x8x1, conv:2x3:p=same, concat:a", "no 'tap:a' before it"),
        ("input:8x8x1, tap:a, tap:a, concat:a", "used twice"),
        ("input:8x8x1, tap:a, pool:2, concat:a", "concat joins equal sizes"),
        ("input:8x8x1, tap:a, conv:2x1, add:a", "add joins equal shapes"),
        ("input:8x8x1, tap:1a, concat:1a", "NAME a word"),
    ],
)
def test_bad_skips_are_one_line_errors(spec, message):
    with pytest.raises(CvtoolError, match=message):
        summarize(parse_spec(spec))
    with pytest.raises(CvtoolError, match=message):
        Sequential.from_spec(parse_spec(spec)).build(np, "float32")


def test_layer_calc_prints_a_network_with_skips(cli):
    import json

    result = cli("layer-calc", "net", SPEC, "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert [r["type"] for r in doc["rows"]].count("Tap") == 2
    assert doc["totals"]["output_shape"] == [8, 8, 3]
