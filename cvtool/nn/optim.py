"""Optimisers: SGD with Nielsen's L2 update, momentum, Adam.

An optimiser is bound once to the parameters it updates (``bind(slots, n)``,
each slot ``(param, grad, decay)``) and then does one ``step()`` per
mini-batch, in place, with preallocated scratch buffers: the grads must hold
the mean gradient of the mini-batch's cost. ``decay`` is True for weights and
False for biases: L2 regularisation (lambda / 2n) sum w^2 never touches biases.

Nielsen's SGD update, with n the training-set size and m the mini-batch size::

    w -> (1 - eta lambda / n) w - (eta / m) sum_x dC_x/dw
    b -> b - (eta / m) sum_x dC_x/db

Momentum and Adam add the same L2 gradient (lambda / n) w to the weights'
gradient. Hyper-parameters are checked when the optimiser is made, with a
message that says how to fix them. ``eta`` may be changed between epochs
(the plateau schedule halves it).

On a device (CuPy) momentum and Adam update each parameter with one fused
elementwise kernel (``xp.ElementwiseKernel``, compiled once per process):
the NumPy sequence of in-place operations would be 4 and 11 kernel launches
per parameter per step, and a small network's step is launch-bound. The
kernels do the NumPy path's arithmetic in the same order (the CUDA compiler may
still contract a multiply and an add into one rounding). The NumPy path is
unchanged. Left out: Nesterov, RMSprop, AdamW's decoupled decay, gradient
clipping.
"""

from __future__ import annotations

import math

import numpy as np

from cvtool.backend import array_module
from cvtool.errors import CvtoolError, check_choice, check_number
from cvtool.nn._parallel import run_rows

OPTIMIZERS = ("sgd", "momentum", "adam")

# Fused updates for device backends: (in params, out params (updated in place), body). The
# body is a C statement list that is also valid Python (the strict test backend runs it so).
FUSED = {
    "momentum": (
        "T g, T mu, T eta, T decay",
        "T p, T v",
        "v = v * mu - g * eta - p * decay; p += v;",
    ),
    "adam": (
        "T g0, T l2, T b1, T c1, T b2, T c2, T eps, T step",
        "T p, T m, T v",
        "T g = g0 + l2 * p; m = m * b1 + g * c1; v = v * b2 + g * g * c2; "
        "p -= m / (sqrt(v) + eps) * step;",
    ),
}
_KERNELS: dict = {}


def fused_kernel(xp, name: str):
    """The fused update ``name`` ('momentum' or 'adam') as xp's ElementwiseKernel, made once."""
    key = (id(xp), name)
    if key not in _KERNELS:
        _KERNELS[key] = xp.ElementwiseKernel(*FUSED[name], f"cvtool_{name}")
    return _KERNELS[key]


def _positive(name: str, value: float, hint: str) -> float:
    return check_number(name, value, low=0, low_open=True, hint=hint)


def _unit(name: str, value: float, hint: str) -> float:
    return check_number(name, value, low=0, high=1, high_open=True, hint=hint)


class Optimizer:
    """Shared checks and binding; subclasses implement ``step``.

    ``prescale``: the factor the training loop may fold into the output error
    before backpropagation (backprop is linear in it), so that the grads already
    hold ``prescale * dC/dw``; ``step(prescaled=True)`` then skips that multiply.
    It is eta for SGD (the update is then one subtraction per array) and 1 else.
    """

    name = "optimizer"

    def __init__(self, eta: float, lmbda: float = 0.0):
        self.eta = _positive("eta", eta, "Try --eta 0.5 for SGD or --eta 0.001 for Adam.")
        self.lmbda = check_number("lmbda", lmbda, low=0, hint=(
            "Use 0 for no regularisation or e.g. 0.1 (Nielsen's choice for 1000 images)."))  # fmt: skip
        self.slots: list = []
        self.n = 1

    def bind(self, slots: list, n: int) -> None:
        """Take the (param, grad, decay) triples and the training-set size n."""
        if n < 1:
            raise CvtoolError(f"The training set must hold at least one example. Got {n}.")
        self.slots = [(p, g, bool(d), array_module(p).empty_like(p)) for p, g, d in slots]
        self.n = int(n)
        self.reset()

    def reset(self) -> None:
        """Clear state kept between steps (velocities, moments)."""

    def config(self) -> dict:
        return {"optimizer": self.name, "eta": self.eta, "lmbda": self.lmbda}

    @property
    def prescale(self) -> float:
        return 1.0

    def step(self, prescaled: bool = False) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class SGD(Optimizer):
    """Plain mini-batch SGD with Nielsen's weight decay (see module docstring)."""

    name = "sgd"

    @property
    def prescale(self) -> float:
        return self.eta

    def step(self, prescaled: bool = False) -> None:
        shrink = 1.0 - self.eta * self.lmbda / self.n
        for p, g, decay, buf in self.slots:
            if decay and shrink != 1.0:
                p *= shrink
            if prescaled:  # g already holds eta * dC/dw
                p -= g
            else:
                p -= array_module(p).multiply(g, self.eta, out=buf)


class Momentum(Optimizer):
    """v -> mu v - eta (dC/dw + (lambda/n) w);  w -> w + v."""

    name = "momentum"

    def __init__(self, eta: float, lmbda: float = 0.0, momentum: float = 0.9):
        super().__init__(eta, lmbda)
        self.momentum = _unit("momentum", momentum, "0.9 is the usual choice.")

    def reset(self) -> None:
        self.velocity = [array_module(p).zeros_like(p) for p, *_ in self.slots]

    def config(self) -> dict:
        return {**super().config(), "momentum": self.momentum}

    def step(self, prescaled: bool = False) -> None:
        decay_rate = self.eta * self.lmbda / self.n
        for (p, g, decay, buf), v in zip(self.slots, self.velocity, strict=True):
            xp = array_module(p)
            if xp is not np:  # one kernel: v = mu v - eta g - rate p; p += v
                fused_kernel(xp, "momentum")(
                    g, self.momentum, self.eta, decay_rate if decay else 0.0, p, v
                )
                continue
            v *= self.momentum
            v -= xp.multiply(g, self.eta, out=buf)
            if decay and decay_rate:
                v -= xp.multiply(p, decay_rate, out=buf)
            p += v


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction; L2 enters as (lambda/n) w in the gradient."""

    name = "adam"

    def __init__(
        self,
        eta: float = 0.001,
        lmbda: float = 0.0,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
    ):
        super().__init__(eta, lmbda)
        self.beta1 = _unit("beta1", beta1, "0.9 is the usual choice.")
        self.beta2 = _unit("beta2", beta2, "0.999 is the usual choice.")
        self.eps = _positive("eps", eps, "1e-8 is the usual choice.")

    def reset(self) -> None:
        self.t = 0
        self.m = [array_module(p).zeros_like(p) for p, *_ in self.slots]
        self.v = [array_module(p).zeros_like(p) for p, *_ in self.slots]

    def config(self) -> dict:
        return {**super().config(), "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}

    def step(self, prescaled: bool = False) -> None:
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        step = self.eta * math.sqrt(1 - b2**self.t) / (1 - b1**self.t)
        eps = self.eps * math.sqrt(1 - b2**self.t)
        l2 = self.lmbda / self.n
        for (p, g, decay, buf), m, v in zip(self.slots, self.m, self.v, strict=True):
            xp = array_module(p)
            arrays = (p, g, buf, m, v)
            l2p = l2 if decay else 0.0
            if xp is not np:  # one kernel per parameter (module text)
                fused_kernel(xp, "adam")(g, l2p, b1, 1 - b1, b2, 1 - b2, eps, step, p, m, v)
                continue
            if not all(a.flags.c_contiguous for a in arrays):
                self._update(xp, *arrays, l2p, step, eps)
                continue
            # Elementwise: large arrays are split across the cores (same numbers).
            flat = [a.reshape(-1) for a in arrays]  # views (contiguous)
            run_rows(
                lambda s, e: self._update(xp, *(a[s:e] for a in flat), l2p, step, eps),  # noqa: B023
                p.size,
                p.size,
            )

    def _update(self, xp, p, g, buf, m, v, l2, step, eps) -> None:
        """One Adam update of p in place (m, v: moments; buf: scratch of p's shape)."""
        b1, b2 = self.beta1, self.beta2
        if l2:
            g = g + l2 * p
        m *= b1
        m += xp.multiply(g, 1 - b1, out=buf)
        v *= b2
        xp.multiply(g, g, out=buf)
        buf *= 1 - b2
        v += buf
        xp.sqrt(v, out=buf)
        buf += eps
        xp.divide(m, buf, out=buf)
        buf *= step
        p -= buf


def get_optimizer(name: str, eta: float, lmbda: float = 0.0, **kwargs) -> Optimizer:
    """An optimiser by name: 'sgd', 'momentum' or 'adam'."""
    classes = {"sgd": SGD, "momentum": Momentum, "adam": Adam}
    check_choice("optimizer", name, OPTIMIZERS)
    return classes[name](eta, lmbda, **kwargs)
