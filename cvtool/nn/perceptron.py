"""The course's perceptron: a weighted sum, a threshold, truth tables and the learning rule.

A perceptron outputs 1 when w . x + b > 0 and 0 otherwise (Nielsen, chapter 1;
weights -2, -2 and bias 3 make a NAND gate). :func:`truth_table` evaluates one
over every binary input. :func:`learn` runs Rosenblatt's rule, one sample at a
time in a fixed order, starting from zero weights::

    y = step(w . x + b);   w <- w + eta (t - y) x;   b <- b + eta (t - y)

until an epoch makes no mistake (converged: guaranteed for a linearly separable
target, the perceptron convergence theorem) or the epochs run out. For a target
that no line (hyperplane) separates, such as XOR, the rule can never converge;
the result says why with a witness (two 1-inputs and two 0-inputs with the same
midpoint, which any w . x + b would have to put on both sides of 0), and when
the weights at the end of an epoch repeat an earlier epoch's, it reports the
cycle: the same epochs then repeat for ever.

Left out: real-valued inputs, random initialisation, sigmoid neurons and
multi-layer networks (those are train-mlp's).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from cvtool.errors import check_choice, check_int, check_number

GATES = {
    "AND": lambda x: int(all(x)),
    "OR": lambda x: int(any(x)),
    "NAND": lambda x: int(not all(x)),
    "NOR": lambda x: int(not any(x)),
    "XOR": lambda x: int(sum(x) % 2 == 1),
    "XNOR": lambda x: int(sum(x) % 2 == 0),
}


def binary_inputs(n: int) -> np.ndarray:
    """Every binary input of length n in counting order, shape (2**n, n).

    >>> binary_inputs(2).tolist()
    [[0, 0], [0, 1], [1, 0], [1, 1]]
    """
    check_int("inputs", n, low=1, high=12)
    return np.array(list(itertools.product((0, 1), repeat=n)), dtype=np.int64)


def gate_targets(name: str, n: int = 2) -> np.ndarray:
    """Targets of a named gate over binary_inputs(n), shape (2**n,)."""
    key = name.upper()
    if key not in GATES:
        check_choice("learn", name, GATES)  # raises, naming the gates
    return np.array([GATES[key](x) for x in binary_inputs(n)], dtype=np.int64)


def fire(X: np.ndarray, w: np.ndarray, b: float) -> tuple[np.ndarray, np.ndarray]:
    """(z, output) with z = X w + b, shape (m,), and output = 1 where z > 0."""
    z = X @ w + b
    return z, (z > 0).astype(np.int64)


def which_gate(outputs: np.ndarray, n: int) -> str | None:
    """The name of the gate these outputs over binary_inputs(n) compute, if any."""
    for name in GATES:
        if np.array_equal(outputs, gate_targets(name, n)):
            return name
    return None


def truth_table(weights, bias: float) -> dict:
    """Evaluate a perceptron over every binary input.

    Parameters
    ----------
    weights : sequence of float, length n (1 to 12)
    bias : float

    Returns
    -------
    dict with inputs (2**n, n), z (2**n,), output (2**n,), and gate (its name
    when the table is one of GATES, else None).

    >>> truth_table([-2, -2], 3)["gate"]
    'NAND'
    """
    w = np.asarray(weights, dtype=np.float64)
    X = binary_inputs(len(w))
    z, out = fire(X, w, float(bias))
    return {
        "weights": w.tolist(),
        "bias": float(bias),
        "inputs": X.tolist(),
        "z": z.tolist(),
        "output": out.tolist(),
        "gate": which_gate(out, len(w)),
    }


def separability_witness(X: np.ndarray, t: np.ndarray) -> tuple | None:
    """Two 1-inputs and two 0-inputs with the same midpoint, or None if there are none.

    Such a pair proves the target is not linearly separable: w . x + b > 0 at
    both 1-inputs gives > 0 at their midpoint, <= 0 at both 0-inputs gives <= 0
    at the same point. (For two inputs, the only non-separable gates, XOR and
    XNOR, always have one; for more inputs None does not prove separability.)
    """
    pos, neg = X[t == 1], X[t == 0]
    sums = {}
    for i, j in itertools.combinations_with_replacement(range(len(neg)), 2):
        sums.setdefault(tuple(neg[i] + neg[j]), (i, j))
    for i, j in itertools.combinations_with_replacement(range(len(pos)), 2):
        key = tuple(pos[i] + pos[j])
        if key in sums:
            a, c = sums[key]
            return (pos[i].tolist(), pos[j].tolist()), (neg[a].tolist(), neg[c].tolist())
    return None


@dataclass
class LearnResult:
    """What the perceptron learning rule did on one gate."""

    gate: str
    converged: bool
    epochs: int
    weights: list
    bias: float
    mistakes: list = field(default_factory=list)  # per epoch
    cycle: tuple | None = None  # (earlier epoch, epoch) with identical weights and bias
    witness: tuple | None = None
    reason: str = ""


def learn(gate: str, n_inputs: int = 2, eta: float = 1.0, max_epochs: int = 100) -> LearnResult:
    """Run the perceptron learning rule on a named gate from zero weights.

    Parameters
    ----------
    gate : one of GATES (case-insensitive)
    n_inputs : number of binary inputs (2**n_inputs samples, counting order)
    eta : learning rate > 0
    max_epochs : epochs before giving up (>= 1)

    Returns
    -------
    LearnResult; ``converged`` is True after an epoch without mistakes.
    """
    t = gate_targets(gate, n_inputs)
    result = learn_targets(binary_inputs(n_inputs), t, eta, max_epochs)
    result.gate = gate.upper()
    result.reason = result.reason.replace("The target", result.gate, 1)
    return result


def learn_targets(X: np.ndarray, t: np.ndarray, eta: float = 1.0, max_epochs: int = 100):
    """The learning rule on inputs X (m, n) with 0/1 targets t (m,); see :func:`learn`."""
    check_number("eta", eta, low=0, low_open=True)
    check_int("epochs", max_epochs, low=1)
    X = np.asarray(X, dtype=np.float64)
    w, b = np.zeros(X.shape[1]), 0.0
    seen = {(tuple(w), b): 0}
    result = LearnResult("", False, 0, [], 0.0)
    for epoch in range(1, max_epochs + 1):
        mistakes = 0
        for x, target in zip(X, t, strict=True):
            y = int(x @ w + b > 0)
            if y != target:
                w = w + eta * (target - y) * x
                b += eta * (target - y)
                mistakes += 1
        result.mistakes.append(mistakes)
        result.epochs = epoch
        if mistakes == 0:
            result.converged = True
            break
        state = (tuple(w), b)
        if state in seen:
            result.cycle = (seen[state], epoch)
            break
        seen[state] = epoch
    result.weights, result.bias = w.tolist(), float(b)
    if result.converged:
        result.reason = f"an epoch without mistakes after {result.epochs - 1} epoch(s) of updates"
        return result
    result.witness = separability_witness(X.astype(np.int64), np.asarray(t))
    parts = []
    if result.witness is not None:
        (p1, p2), (n1, n2) = result.witness
        mid = tuple(float(v) / 2 for v in np.add(p1, p2))
        parts.append(
            f"The target is not linearly separable: inputs {p1} and {p2} (output 1) and "
            f"{n1} and {n2} (output 0) share the midpoint {mid}, so no line (hyperplane) "
            f"w.x + b = 0 can put the first pair above it and the second below"
        )
    if result.cycle is not None:
        parts.append(
            f"the weights after epoch {result.cycle[1]} equal those after epoch "
            f"{result.cycle[0]}, so the same epochs repeat for ever"
        )
    if not parts:
        parts.append(f"still {result.mistakes[-1]} mistake(s) after {max_epochs} epochs")
    result.reason = "; ".join(parts)
    return result
