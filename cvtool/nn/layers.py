"""Layers: plain classes that own their parameters and gradients.

Every layer has ``params`` and ``grads`` (dicts with the same keys and shapes),
``trainable``, ``build(in_shape, xp, dtype, rng)`` (allocates parameters; the
shape excludes the batch axis; weights are sampled on the host with ``rng``
and moved with ``xp.asarray``), ``forward(x, training=False)``,
``backward(dout) -> dx`` (fills ``grads`` with the gradient of the batch's
mean cost, given ``dout`` already divided by the batch size),
``output_shape(in_shape)`` and ``param_count(in_shape) -> (weights, biases)``
from :mod:`cvtool.shapes` (never from allocated arrays), ``config()`` and
``from_spec(spec)``.

Parameters named ``W`` are weights (L2-decayed); ``b`` are biases (not).
In training mode layers write into buffers kept per batch size, so the
training loop allocates nothing per mini-batch; outputs of a training-mode
forward are therefore only valid until the next one. ``need_dx = False``
(set by the model on the first layer) skips the input gradient nobody reads.

``build`` keeps its ``xp`` as ``self.xp`` for the layer's own state (params,
grads, buffers); ``forward`` and ``backward`` take ``xp`` from their argument
(``array_module``), as every library function does (docs/design.md).

Layers here: Dense, Activation, Flatten, Dropout. Conv2D lives in
:mod:`cvtool.nn.conv`, the pooling layers in :mod:`cvtool.nn.pool`. Left out:
batch normalisation.
"""

from __future__ import annotations

from cvtool import shapes
from cvtool.backend import array_module, device_rng
from cvtool.errors import CvtoolError, check_int, check_number
from cvtool.nn import activations
from cvtool.nn._parallel import column_sums
from cvtool.nn.init import check_init, init_biases, init_weights


class Layer:
    """Base class: no parameters, identity shapes; subclasses override what they need."""

    kind = "layer"
    trainable = True
    need_dx = True

    def __init__(self):
        self.params: dict = {}
        self.grads: dict = {}
        self._buffers: dict = {}

    def build(self, in_shape: tuple[int, ...], xp, dtype, rng) -> None:
        """Allocate parameters for inputs of shape (N, *in_shape).

        Scratch buffers of an earlier build (another backend or dtype) are dropped.
        """
        self.xp, self.dtype = xp, dtype
        self._buffers = {}

    def forward(self, x, training: bool = False):
        raise NotImplementedError

    def backward(self, dout):
        raise NotImplementedError

    def output_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(in_shape)

    def param_count(self, in_shape: tuple[int, ...]) -> tuple[int, int]:
        return 0, 0

    def config(self) -> dict:
        return {}

    @classmethod
    def from_spec(cls, spec):
        raise NotImplementedError

    def buffer(self, name: str, shape: tuple[int, ...]):
        """A scratch array reused across mini-batches of the same shape."""
        key = (name, shape)
        buf = self._buffers.get(key)
        if buf is None:
            if len(self._buffers) > 16:  # evaluation batches of many sizes: do not hoard
                self._buffers.clear()
            buf = self._buffers[key] = self.xp.empty(shape, dtype=self.dtype)
        return buf

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"


class Dense(Layer):
    """Fully connected: z = x W + b for x (N, D), W (D, units), b (units,)."""

    kind = "dense"

    def __init__(self, units: int, bias: bool = True, init: str = "default"):
        super().__init__()
        self.units = check_int("units", units, low=1)
        self.bias, self.init = bool(bias), check_init(init)
        self.x = None

    @classmethod
    def from_spec(cls, spec):
        return cls(spec["units"], bias=spec.args.get("bias", True))

    def config(self) -> dict:
        return {"units": self.units, "bias": self.bias, "init": self.init}

    def output_shape(self, in_shape):
        self._check_input(in_shape)
        return (self.units,)

    def param_count(self, in_shape):
        self._check_input(in_shape)
        return shapes.dense_params(in_shape[0], self.units, self.bias)

    def _check_input(self, in_shape) -> None:
        if len(in_shape) != 1:
            raise CvtoolError(
                f"A dense layer needs flat inputs (D,); got {tuple(in_shape)}. "
                "Put 'flatten' before it."
            )

    def build(self, in_shape, xp, dtype, rng) -> None:
        super().build(in_shape, xp, dtype, rng)
        n_in = in_shape[0]
        self.params = {"W": xp.asarray(init_weights(self.init, (n_in, self.units), n_in,
                                                    self.units, rng), dtype=dtype)}  # fmt: skip
        if self.bias:
            self.params["b"] = xp.asarray(
                init_biases(self.init, (self.units,), rng, n_in), dtype=dtype
            )
        self.grads = {k: xp.zeros_like(v) for k, v in self.params.items()}
        n_w, n_b = self.param_count(in_shape)
        assert n_w + n_b == sum(int(v.size) for v in self.params.values()), "param count mismatch"

    def forward(self, x, training=False):
        xp = array_module(x)
        self.x = x if training else None  # (N, D), for backward; inference keeps nothing
        if training:
            z = xp.matmul(x, self.params["W"], out=self.buffer("z", (x.shape[0], self.units)))
        else:
            z = x @ self.params["W"]  # (N, units)
        if self.bias:
            z += self.params["b"]
        return z

    def backward(self, dout):
        assert self.x is not None, "Dense.backward needs forward(x, training=True) first"
        xp, W = array_module(dout), self.params["W"]
        xp.matmul(self.x.T, dout, out=self.grads["W"])  # (D, units)
        if self.bias:
            column_sums(dout, self.grads["b"])
        if not self.need_dx:
            return None
        return xp.matmul(dout, W.T, out=self.buffer("dx", (dout.shape[0], W.shape[0])))


class Activation(Layer):
    """An element-wise (or, for softmax, row-wise) activation as its own layer."""

    kind = "activation"

    def __init__(self, activation: str):
        super().__init__()
        self.fn = activations.get_activation(activation)
        self.name = self.fn.name
        self.z = self.a = None
        # A ReLU right before a max-pool is applied by the pool, on its 4x smaller output
        # (max and ReLU commute; the gradients are the same bits): set by
        # Sequential.pair_relu_pool, this layer then passes its input through.
        self.deferred = False

    @classmethod
    def from_spec(cls, spec):
        return cls(spec["activation"])

    def config(self) -> dict:
        return {"activation": self.name}

    def forward(self, x, training=False):
        if self.deferred:  # the next layer (a max-pool) applies it
            return x
        if not training:  # inference keeps no references (they would pin memory)
            self.z = self.a = None
            return self.fn.forward(x)
        self.z = x
        self.a = self.fn.forward(x, out=self.buffer("a", x.shape))
        return self.a

    def backward(self, dout):
        if self.deferred:
            return dout
        assert self.a is not None, "Activation.backward needs forward(x, training=True) first"
        return self.fn.backward(self.z, self.a, dout, out=self.buffer("dz", dout.shape))


class Flatten(Layer):
    """(N, H, W, C) -> (N, H*W*C), channels-last order (a view, no copy)."""

    kind = "flatten"

    @classmethod
    def from_spec(cls, spec):
        return cls()

    def output_shape(self, in_shape):
        return shapes.flatten_output(in_shape)

    def forward(self, x, training=False):
        self.in_shape = x.shape
        return x.reshape(x.shape[0], -1)  # (N, H*W*C)

    def backward(self, dout):
        return dout.reshape(self.in_shape)  # (N, H, W, C)


class Dropout(Layer):
    """Inverted dropout: in training, zero each input with probability ``rate`` and
    scale the rest by 1/(1 - rate); identity at inference. Masks are drawn on the
    device (``backend.device_rng``), seeded from the build rng."""

    kind = "dropout"

    def __init__(self, rate: float):
        super().__init__()
        self.rate = check_number("rate", rate, low=0, high=1, high_open=True)

    @classmethod
    def from_spec(cls, spec):
        return cls(spec["rate"])

    def config(self) -> dict:
        return {"rate": self.rate}

    def build(self, in_shape, xp, dtype, rng) -> None:
        super().build(in_shape, xp, dtype, rng)
        self.rng = device_rng(int(rng.integers(2**63)), xp)

    def forward(self, x, training=False):
        if not training or self.rate == 0:
            self.mask = None
            return x
        keep = self.rng.random(x.shape, dtype=self.dtype) >= self.rate
        self.mask = keep * self.dtype.type(1.0 / (1.0 - self.rate))  # (N, ...) in {0, 1/(1-p)}
        return x * self.mask

    def backward(self, dout):
        return dout if self.mask is None else dout * self.mask
