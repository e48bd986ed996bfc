"""Batch normalisation: each channel standardised by its mini-batch statistics.

For an input x of shape (N, H, W, C) (channels last) or (N, D), every
channel c (or feature d) is normalised over the other axes, m = N H W values::

    mu = mean(x),  var = mean((x - mu)^2)          (biased, over the batch)
    x_hat = (x - mu) / sqrt(var + epsilon)
    y = gamma * x_hat + beta

In training mode the batch statistics are used and the running estimates are
updated; in inference mode the running estimates replace them, so an image's
output does not depend on the rest of its batch. The running variance uses the
unbiased batch variance var * m / (m - 1), as PyTorch's ``BatchNorm2d`` does.

``momentum`` and ``epsilon`` are named as Keras names them: ``running =
momentum * running + (1 - momentum) * batch``, so Keras' momentum 0.99 is
PyTorch's ``momentum=0.01`` and PyTorch's default 0.1 is ``momentum=0.9``
here. The defaults are PyTorch's (momentum 0.9, epsilon 1e-5) rather than
Keras' (0.99, 1e-3): with 0.99 the running estimates need several hundred
steps to forget their initial values, longer than a short training run of a
few thousand canvases gives them, and PyTorch is the reference that the
detection benchmark and the tests compare against.

Parameters ``gamma`` (scale) and ``beta`` (shift) are trainable and, not
being named ``W``, never L2-decayed. The running mean and variance are
non-trainable state: they live in ``state`` (saved and loaded with the model),
not in ``params``, so no optimiser ever sees them. The backward pass is the
usual batch-statistics gradient (the mean and variance depend on x)::

    dx = gamma / sqrt(var + eps) * (dy - mean(dy) - x_hat * mean(dy * x_hat))

Left out: Keras' ``renorm``, virtual batches, inference-mode training of a
frozen layer (a layer with ``trainable = False`` still uses batch statistics
in a training pass, as PyTorch's does), and synchronised statistics.
"""

from __future__ import annotations

from cvtool import shapes
from cvtool.errors import CvtoolError, check_number
from cvtool.nn.layers import Layer


class BatchNorm(Layer):
    """Batch normalisation over every axis but the last (channels or features).

    Parameters
    ----------
    momentum : float
        Keras' momentum of the running statistics, in [0, 1):
        ``running = momentum * running + (1 - momentum) * batch`` (PyTorch's
        ``momentum`` is 1 minus this).
    epsilon : float
        Added to the variance before the square root, > 0.

    Notes
    -----
    params: ``gamma`` (C,) (ones) and ``beta`` (C,) (zeros); state:
    ``running_mean`` (C,) (zeros) and ``running_var`` (C,) (ones). Forward
    keeps the shape: (N, H, W, C) -> (N, H, W, C) or (N, D) -> (N, D).
    """

    kind = "batchnorm"

    def __init__(self, momentum: float = 0.9, epsilon: float = 1e-5):
        super().__init__()
        self.momentum = check_number("momentum", momentum, low=0.0, high=1.0, high_open=True)
        self.epsilon = check_number("epsilon", epsilon, low=0.0, low_open=True)
        self.state: dict = {}
        self._cache = None

    @classmethod
    def from_spec(cls, spec) -> BatchNorm:
        a = spec.args
        return cls(momentum=a.get("momentum", 0.9), epsilon=a.get("epsilon", 1e-5))

    def config(self) -> dict:
        return {"momentum": self.momentum, "epsilon": self.epsilon}

    def param_count(self, in_shape) -> tuple[int, int]:
        """(gamma, beta) counts, from shapes.batchnorm_params; the running statistics
        (the other half of that function's answer) are not parameters."""
        trainable, _ = shapes.batchnorm_params(int(in_shape[-1]))
        return trainable // 2, trainable // 2

    def state_count(self, in_shape) -> int:
        """Non-trainable values: the running mean and variance."""
        return shapes.batchnorm_params(int(in_shape[-1]))[1]

    def build(self, in_shape, xp, dtype, rng) -> None:
        super().build(in_shape, xp, dtype, rng)
        c = int(in_shape[-1])
        self.params = {"gamma": xp.ones(c, dtype=dtype), "beta": xp.zeros(c, dtype=dtype)}
        self.grads = {k: xp.zeros_like(v) for k, v in self.params.items()}
        self.state = {
            "running_mean": xp.zeros(c, dtype=dtype),
            "running_var": xp.ones(c, dtype=dtype),
        }

    def forward(self, x, training: bool = False):
        """x (N, ..., C) -> y of the same shape; training mode updates the running statistics."""
        xp, c = self.xp, x.shape[-1]
        gamma, beta = self.params["gamma"], self.params["beta"]
        if not training:
            self._cache = None
            scale = gamma / xp.sqrt(self.state["running_var"] + self.epsilon)  # (C,)
            return x * scale + (beta - self.state["running_mean"] * scale)
        x2 = x.reshape(-1, c)  # (m, C), a view of a contiguous batch
        m = x2.shape[0]
        if m < 2:
            raise CvtoolError(
                f"Batch normalisation needs more than one value per channel in training; "
                f"got an input of shape {tuple(x.shape)}. Use a batch size >= 2."
            )
        mu = x2.mean(axis=0)  # (C,)
        xhat = self.buffer("xhat", x2.shape)
        xp.subtract(x2, mu, out=xhat)
        y = self.buffer("y", x2.shape)
        xp.multiply(xhat, xhat, out=y)
        var = y.mean(axis=0)  # (C,), biased: the one that normalises
        inv = 1.0 / xp.sqrt(var + self.epsilon)  # (C,)
        xhat *= inv
        xp.multiply(xhat, gamma, out=y)
        y += beta
        k = self.momentum
        rm, rv = self.state["running_mean"], self.state["running_var"]
        rm *= k
        rm += (1.0 - k) * mu
        rv *= k
        rv += ((1.0 - k) * m / (m - 1)) * var  # unbiased, as PyTorch
        self._cache = (xhat, inv)
        return y.reshape(x.shape)

    def backward(self, dout):
        """dout (N, ..., C) -> dx; fills grads['gamma'] = sum(dout x_hat), grads['beta'] = sum(dout)."""
        assert self._cache is not None, "BatchNorm.backward needs forward(x, training=True) first"
        xp = self.xp
        xhat, inv = self._cache
        self._cache = None
        d2 = dout.reshape(xhat.shape)  # (m, C)
        m = d2.shape[0]
        dgamma, dbeta = self.grads["gamma"], self.grads["beta"]
        d2.sum(axis=0, out=dbeta)
        tmp = self.buffer("dx", xhat.shape)
        xp.multiply(d2, xhat, out=tmp)
        tmp.sum(axis=0, out=dgamma)
        if not self.need_dx:
            return None
        # dx = gamma inv (dout - (dbeta + x_hat dgamma) / m)
        xp.multiply(xhat, dgamma, out=tmp)
        tmp += dbeta
        tmp *= -1.0 / m
        tmp += d2
        tmp *= self.params["gamma"] * inv
        return tmp.reshape(dout.shape)
