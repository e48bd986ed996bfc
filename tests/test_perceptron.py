"""cvtool perceptron: truth tables, the learning rule, and linear separability checked by LP."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from cvtool.errors import CvtoolError
from cvtool.nn import perceptron as pc


def test_nand_truth_table():
    table = pc.truth_table([-2, -2], 3)
    assert table["inputs"] == [[0, 0], [0, 1], [1, 0], [1, 1]]
    assert table["z"] == [3, 1, 1, -1]
    assert table["output"] == [1, 1, 1, 0]
    assert table["gate"] == "NAND"


def test_threshold_is_strict_and_gates_are_named():
    # w.x + b == 0 gives 0 (Nielsen: output 0 if w.x + b <= 0)
    assert pc.truth_table([1, 1], -2)["output"] == [0, 0, 0, 0]
    assert pc.truth_table([1, 1], -1.5)["gate"] == "AND"
    assert pc.truth_table([1, 1], -0.5)["gate"] == "OR"
    assert pc.truth_table([1, 1, 1], -2.5)["gate"] == "AND"
    assert pc.truth_table([1, -1], 0)["gate"] is None


@pytest.mark.parametrize("gate", ["AND", "OR", "NAND", "NOR"])
@pytest.mark.parametrize("n", [2, 3])
def test_separable_gates_converge_to_that_gate(gate, n):
    result = pc.learn(gate, n)
    assert result.converged and result.mistakes[-1] == 0
    assert pc.truth_table(result.weights, result.bias)["gate"] == gate
    assert result.witness is None and result.cycle is None


@pytest.mark.parametrize("gate", ["XOR", "XNOR"])
def test_xor_cannot_converge_and_says_why(gate):
    result = pc.learn(gate, 2, max_epochs=1000)
    assert not result.converged
    assert result.cycle is not None and result.epochs < 1000
    assert "not linearly separable" in result.reason and "(0.5, 0.5)" in result.reason
    (p1, p2), (n1, n2) = result.witness
    assert np.array_equal(np.add(p1, p2), np.add(n1, n2))


def _separable_by_lp(X, t) -> bool:
    """Exists w, b with w.x + b >= 1 on t = 1 and <= -1 on t = 0 (scipy's LP)."""
    optimize = pytest.importorskip("scipy.optimize")
    sign = np.where(t == 1, -1.0, 1.0)[:, None]
    A = sign * np.hstack([X, np.ones((len(X), 1))])
    res = optimize.linprog(
        np.zeros(X.shape[1] + 1), A_ub=A, b_ub=-np.ones(len(X)), bounds=(None, None)
    )
    return res.status == 0


@pytest.mark.parametrize("n, separable", [(2, 14), (3, 104)])
def test_converges_exactly_on_the_separable_functions(n, separable):
    X = pc.binary_inputs(n)
    count = 0
    for t in itertools.product((0, 1), repeat=len(X)):
        t = np.array(t)
        result = pc.learn_targets(X, t, max_epochs=2000)
        assert result.converged == _separable_by_lp(X, t), t
        assert result.converged or result.cycle is not None  # never just runs out
        if result.converged:
            _, out = pc.fire(X, np.array(result.weights), result.bias)
            assert np.array_equal(out, t)
        count += result.converged
    assert count == separable  # 14 of 16 and 104 of 256 boolean functions


def test_bad_parameters():
    with pytest.raises(CvtoolError, match="'learn'"):
        pc.learn("MAJORITY")
    with pytest.raises(CvtoolError, match="'eta'"):
        pc.learn("AND", eta=0)
    with pytest.raises(CvtoolError, match="'epochs'"):
        pc.learn("AND", max_epochs=0)
    with pytest.raises(CvtoolError, match="'inputs'"):
        pc.binary_inputs(13)


def test_cli_default_is_nand(cli):
    result = cli("perceptron")
    assert result.exit_code == 0 and "NAND" in result.stdout
    doc = json.loads(cli("perceptron", "--weights", "-2,-2", "--bias", "3", "--json").stdout)
    assert doc["output"] == [1, 1, 1, 0] and doc["gate"] == "NAND"


def test_cli_learn(cli):
    doc = json.loads(cli("perceptron", "--learn", "or", "--json").stdout)
    assert doc["learn"] == "OR" and doc["converged"] and doc["output"] == doc["target"]
    result = cli("perceptron", "--learn", "XOR")
    assert result.exit_code == 0
    assert "not linearly separable" in result.stdout and "no" in result.stdout
    doc = json.loads(cli("perceptron", "--learn", "XOR", "--json").stdout)
    assert doc["converged"] is False and doc["witness"]


@pytest.mark.parametrize(
    "args, needle",
    [
        (("--weights", "1,x"), "'weights'"),
        (("--learn", "foo"), "'learn'"),
        (("--learn", "AND", "--eta", "0"), "'eta'"),
        (("--learn", "AND", "--epochs", "0"), "'epochs'"),
        (("--learn", "AND", "--inputs", "13"), "'inputs'"),
    ],
)
def test_cli_bad_input(cli, args, needle):
    result = cli("perceptron", *args)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0]
