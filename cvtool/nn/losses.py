"""Costs, Nielsen-style: ``fn(a, y)`` is the cost and ``grad(a, y)`` its derivative
dC/da, for a mini-batch of outputs ``a`` (N, K) and one-hot targets ``y`` (N, K).

- ``quadratic``: C = 1/2 ||a - y||^2;
- ``cross-entropy``: C = -sum(y ln a + (1 - y) ln(1 - a)), for sigmoid outputs;
- ``log-likelihood``: C = -ln a_y, for softmax outputs (categorical cross-entropy).

``fn`` returns the mean over the batch (Nielsen's cost divided by n); ``grad``
is per example, so the model divides by the batch size once. With the matching
output activation (sigmoid for cross-entropy, softmax for log-likelihood; the
cost's ``fused`` attribute) the error dC/dz at the activation's input is exactly
``a - y``: the model then starts backpropagation below that activation with
``a - y`` (``Sequential.fuses_output``), which is cheaper than the chain rule
``act'(z) * grad(a, y)`` and free of its 1/a blow-up. L2
regularisation lives in the optimiser and in ``l2_penalty``. Left out:
per-class weights and label smoothing.
"""

from __future__ import annotations

from cvtool.backend import array_module
from cvtool.errors import check_choice

_TINY = 1e-12  # keeps ln(0) finite for saturated outputs (float32 represents it)


class Cost:
    """A cost: ``fn(a, y)`` (batch mean), ``grad(a, y)`` (dC/da per example), and
    ``fused``, the output activation with which dC/dz is exactly ``a - y``."""

    fused: str | None = None


class QuadraticCost(Cost):
    """C = 1/2 ||a - y||^2 per example."""

    name = "quadratic"
    fused = None  # no activation makes the chain rule collapse

    @staticmethod
    def fn(a, y):
        d = a - y
        return 0.5 * float((d * d).sum()) / len(a)

    @staticmethod
    def grad(a, y):
        return a - y


class CrossEntropyCost(Cost):
    """C = -sum_j [y_j ln a_j + (1 - y_j) ln(1 - a_j)] per example (sigmoid outputs)."""

    name = "cross-entropy"
    fused = "sigmoid"

    @staticmethod
    def fn(a, y):
        xp = array_module(a)
        c = y * xp.log(xp.maximum(a, _TINY)) + (1 - y) * xp.log(xp.maximum(1 - a, _TINY))
        return -float(c.sum()) / len(a)

    @staticmethod
    def grad(a, y):
        xp = array_module(a)
        return (a - y) / xp.maximum(a * (1 - a), _TINY)


class LogLikelihoodCost(Cost):
    """C = -ln a_y per example (softmax outputs; categorical cross-entropy)."""

    name = "log-likelihood"
    fused = "softmax"

    @staticmethod
    def fn(a, y):
        xp = array_module(a)
        return -float((y * xp.log(xp.maximum(a, _TINY))).sum()) / len(a)

    @staticmethod
    def grad(a, y):
        xp = array_module(a)
        return -y / xp.maximum(a, _TINY)


LOSSES = {c.name: c for c in (QuadraticCost, CrossEntropyCost, LogLikelihoodCost)}
ALIASES = {"ce": "cross-entropy", "crossentropy": "cross-entropy", "mse": "quadratic",
           "loglikelihood": "log-likelihood", "nll": "log-likelihood",
           "categorical-crossentropy": "log-likelihood"}  # fmt: skip


def get_loss(name: str):
    """A cost class by name (quadratic, cross-entropy, log-likelihood, or an alias)."""
    key = ALIASES.get(name, name)
    if key not in LOSSES:
        check_choice("cost", name, LOSSES)  # raises, naming the costs
    return LOSSES[key]


def l2_penalty(weights, lmbda: float, n: int) -> float:
    """lambda / (2 n) * sum of squared weights (biases excluded by the caller)."""
    if not lmbda:
        return 0.0
    return 0.5 * (lmbda / n) * sum(float((w * w).sum()) for w in weights)
