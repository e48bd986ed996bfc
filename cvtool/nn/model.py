"""Sequential models: build, train (fit), evaluate, predict, save and load.

A :class:`Sequential` is a list of layers and an input shape (no batch axis).
``fit`` (the loop itself lives in :mod:`cvtool.nn.fit`) trains it by
mini-batch gradient descent and reports through a ``Callback``; the library
prints nothing.

A model saves to one ``.npz`` file: the parameters (``p{i}.{name}``), the
non-trainable state of layers that have one (``s{i}.{name}``: batch-norm
running statistics) and a JSON ``meta`` entry with the spec text, input shape,
class names, dtype, the training configuration and the final metrics. Writes are atomic.

Fine-tuning: ``load`` a model, ``freeze(n)`` its first n parametrised layers,
``replace_head(k, new_layers)`` to swap the last k layers, and ``fit`` again;
frozen layers get no optimiser slot and no weight update.
Left out: multiple inputs/outputs, mixed precision, data loaders.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from cvtool import backend
from cvtool.errors import CvtoolError
from cvtool.fileio import atomic_path
from cvtool.nn import layers as L
from cvtool.nn.build import build_layers, split_input
from cvtool.nn.fit import MONITORS, Callback, History  # noqa: F401  (re-exported)
from cvtool.nn.losses import get_loss, l2_penalty
from cvtool.nn.pool import MaxPool2D

FORMAT = "cvtool-model"
MODEL_VERSION = 1  # the format version save() writes and load() reads
EVAL_BATCH = 2000


class Sequential:
    """Layers applied in order to inputs of shape (N, *input_shape)."""

    def __init__(self, layers: list, input_shape: tuple[int, ...], *, spec_text: str = ""):
        self.layers = list(layers)
        self.input_shape = tuple(int(d) for d in input_shape)
        self.spec_text = spec_text
        self.class_names: tuple[str, ...] = ()
        self.meta: dict = {}
        self.xp = None
        self.dtype = None

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_spec(cls, specs: list, input_shape=None, *, init: str | None = None, spec_text=""):
        """A model from parsed specs; the spec's 'input' item wins over `input_shape`."""
        spec_shape, rest = split_input(specs)
        shape = spec_shape or input_shape
        if shape is None:
            raise CvtoolError("The spec needs an input shape: start it with input:HxWxC.")
        if not rest:
            raise CvtoolError("The spec has no layers after its input.")
        text = spec_text or ", ".join(s.text for s in specs)
        return cls(build_layers(rest, init=init), shape, spec_text=text)

    def _insert_flattens(self) -> None:
        # A dense layer after an image flattens it implicitly (Nielsen's convention).
        shape, out = self.input_shape, []
        for layer in self.layers:
            if isinstance(layer, L.Dense) and len(shape) > 1:
                out.append(L.Flatten())
                shape = out[-1].output_shape(shape)
            out.append(layer)
            shape = layer.output_shape(shape)
        self.layers = out

    def build(self, xp=None, dtype="float32", seed: int | None = 0) -> Sequential:
        """Allocate every layer's parameters; same seed, same weights."""
        self.xp = xp if xp is not None else np
        self.dtype = backend.resolve_dtype(str(np.dtype(dtype)))
        self._insert_flattens()
        rng = backend.host_rng(seed)
        shape = self.input_shape
        for layer in self.layers:
            layer.build(shape, self.xp, self.dtype, rng)
            shape = layer.output_shape(shape)
        self.output_shape = shape
        for i, layer in enumerate(self.layers):
            layer.need_dx = i > 0
        self.pair_relu_pool()
        return self

    def pair_relu_pool(self) -> None:
        """Let each max-pool apply the ReLU that comes right before it, on its pooled output.

        relu then max-pool equals max-pool then relu, values and gradients alike
        (bit for bit), and the pooled array is a quarter of the size (2x2 pools):
        nielsen-ch6's first ReLU and the detector's ReLUs cost a quarter. The
        layers and the model's description are unchanged; only who computes the
        ReLU moves (``Activation.deferred``, ``MaxPool2D.relu``).
        """
        for layer in self.layers:
            if isinstance(layer, L.Activation):
                layer.deferred = False
            elif isinstance(layer, MaxPool2D):
                layer.relu = False
        for a, b in zip(self.layers, self.layers[1:], strict=False):
            if isinstance(a, L.Activation) and a.name == "relu" and type(b) is MaxPool2D:
                a.deferred = b.relu = True

    @property
    def param_layers(self) -> list:
        return [layer for layer in self.layers if layer.params]

    def layer_names(self) -> list[str]:
        """Keras-style names: dense, dense_1, activation, ..."""
        seen: dict = {}
        names = []
        for layer in self.layers:
            k = layer.kind
            names.append(k if k not in seen else f"{k}_{seen[k]}")
            seen[k] = seen.get(k, 0) + 1
        return names

    def summary(self) -> list[dict]:
        """Layer rows from the one summary walker (``cvtool.summary.summarize``, as
        ``layer-calc net`` prints them) for the model's spec; no data needed.

        A frozen layer's parameters count as non-trainable.
        """
        from cvtool.nn.spec import parse_spec
        from cvtool.summary import summarize

        rows = summarize(parse_spec(self.spec_text), self.input_shape, floor=True)["rows"]
        frozen = iter(not layer.trainable for layer in self.param_layers)
        for row in rows:
            if row["weights"] + row["biases"] and next(frozen, False):
                row["non_trainable"], row["trainable"] = row["params"], 0
        return rows

    def count_params(self) -> int:
        return sum(r["params"] for r in self.summary())

    def freeze(self, n: int) -> None:
        """Mark the first n parametrised layers as not trainable (all others trainable)."""
        for i, layer in enumerate(self.param_layers):
            layer.trainable = i >= n

    def replace_head(self, remove: int, new_layers: list, seed: int | None = 0) -> None:
        """Drop the last `remove` layers and append `new_layers`, built on the current output."""
        if not 0 <= remove <= len(self.layers):
            raise CvtoolError(f"Cannot remove {remove} layers of {len(self.layers)}.")
        self.layers = self.layers[: len(self.layers) - remove]
        shape = self.input_shape
        for layer in self.layers:
            shape = layer.output_shape(shape)
        rng = backend.host_rng(seed)
        for layer in new_layers:
            layer.build(shape, self.xp, self.dtype, rng)
            shape = layer.output_shape(shape)
            self.layers.append(layer)
        self.output_shape = shape
        for i, layer in enumerate(self.layers):
            layer.need_dx = i > 0
        self.pair_relu_pool()

    # ------------------------------------------------------------------ passes
    def forward(self, x, training: bool = False):
        for layer in self.layers:
            x = layer.forward(x, training)
        return x

    def prepare(self, x):
        """Inputs as floats of the model's dtype on its device, shaped (N, *input_shape).

        uint8 images are scaled to [0, 1]; (N, 28, 28) becomes (N, 784) or
        (N, 28, 28, 1) to suit the input shape when the sizes agree.
        """
        from cvtool.data.datasets import to_float

        self._check_built()
        x = to_float(x, self.dtype.type, self.xp)
        per = math.prod(self.input_shape)
        if x.ndim == 0 or math.prod(x.shape[1:]) != per:
            raise CvtoolError(
                f"Inputs of shape {tuple(x.shape[1:])} do not fit the model's input shape "
                f"{self.input_shape} ({per} values per example)."
            )
        return x.reshape((x.shape[0], *self.input_shape))

    def one_hot(self, y, num_classes: int | None = None):
        """Integer labels (N,) as one-hot rows (N, K) on the device."""
        k = num_classes or self.output_shape[-1]
        y = np.asarray(backend.to_numpy(y), dtype=np.int64)
        if y.size and (y.min() < 0 or y.max() >= k):
            raise CvtoolError(
                f"Labels must lie in 0..{k - 1} for a model with {k} outputs. "
                f"Got labels {int(y.min())}..{int(y.max())}."
            )
        out = np.zeros((len(y), k), dtype=self.dtype)
        out[np.arange(len(y)), y] = 1
        return self.xp.asarray(out)

    def predict_proba(self, x, batch_size: int = EVAL_BATCH):
        """Network outputs (N, K) for inputs x, on the model's device."""
        x = self.prepare(x)
        outs = [self.forward(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
        return self.xp.concatenate(outs) if outs else self.xp.zeros((0, *self.output_shape))

    def predict(self, x, batch_size: int = EVAL_BATCH):
        """Predicted class indices (N,) as a NumPy array."""
        return backend.to_numpy(self.predict_proba(x, batch_size).argmax(axis=1))

    def _check_built(self) -> None:
        if self.xp is None:
            raise RuntimeError("build() the model first")

    def _measure(self, x, Y, loss, lmbda: float, n_train: int, preds=None) -> tuple[float, float]:
        """(cost incl. L2 term, accuracy) on prepared x and one-hot Y, in chunks.

        A list `preds` receives each chunk's predicted classes (NumPy), so callers
        that need them run no second forward pass.
        """
        cost, correct = 0.0, 0
        for i in range(0, len(x), EVAL_BATCH):
            a = self.forward(x[i : i + EVAL_BATCH])
            yb = Y[i : i + EVAL_BATCH]
            cost += loss.fn(a, yb) * len(a)
            pred = a.argmax(axis=1)
            correct += int((pred == yb.argmax(axis=1)).sum())
            if preds is not None:
                preds.append(backend.to_numpy(pred))
        cost = cost / max(len(x), 1)
        cost += l2_penalty(self._weights(), lmbda, n_train)
        return float(cost), correct / max(len(x), 1)

    def _weights(self) -> list:
        return [layer.params["W"] for layer in self.param_layers if "W" in layer.params]

    def evaluate(self, x, y, loss: str | None = None, lmbda: float = 0.0, n_train=None) -> dict:
        """Accuracy, cost, per-class accuracy and confusion matrix on (x, y).

        Returns
        -------
        dict with accuracy, cost, n, support (K,) (examples per true class),
        per_class_accuracy (K,), confusion (K, K) with rows = true class, columns =
        predicted class.
        """
        loss_cls = get_loss(loss or self.meta.get("training", {}).get("cost", "quadratic"))
        xp_x = self.prepare(x)
        Y = self.one_hot(y)
        chunks = []
        cost, acc = self._measure(xp_x, Y, loss_cls, lmbda, n_train or len(y), preds=chunks)
        pred = np.concatenate(chunks) if chunks else np.zeros(0, np.int64)
        k = self.output_shape[-1]
        y = np.asarray(backend.to_numpy(y), np.int64)
        confusion = np.zeros((k, k), np.int64)
        np.add.at(confusion, (y, pred), 1)
        support = confusion.sum(axis=1)
        per_class = np.where(support > 0, np.diag(confusion) / np.maximum(support, 1), np.nan)
        return {"accuracy": acc, "cost": cost, "n": len(y), "support": support,
                "per_class_accuracy": per_class, "confusion": confusion}  # fmt: skip

    def gradient_norms(self, x, Y, loss) -> dict:
        """Euclidean norm of each parametrised layer's gradient on (x, Y) (no update).

        The forward pass runs in training mode (layers keep what backward needs)
        except for dropout, which stays off: the gradient of the deterministic
        network, and the dropout random stream is left untouched.
        """
        a = x
        for layer in self.layers:
            a = layer.forward(a, not isinstance(layer, L.Dropout))
        fused = self.fuses_output(loss)
        dout = (a - Y) if fused else loss.grad(a, Y)
        dout = dout / len(x)
        for layer in reversed(self.layers[: len(self.layers) - fused]):
            dout = layer.backward(dout)
        names = self.layer_names()
        out = {}
        for name, layer in zip(names, self.layers, strict=True):
            if layer.params:
                sq = sum(float((g * g).sum()) for g in layer.grads.values())
                out[name] = math.sqrt(sq)
        return out

    def fuses_output(self, loss) -> bool:
        """True when the last layer is `loss`'s matching activation, so the output
        error is ``a - y`` and that activation's backward is skipped."""
        last = self.layers[-1]
        return isinstance(last, L.Activation) and loss.fused == last.name

    # ------------------------------------------------------------------ training
    def fit(self, x_train, y_train, **kwargs):
        """Train with mini-batch gradient descent; see :func:`cvtool.nn.fit.fit` for the
        arguments (epochs, batch_size, optimizer, loss, lmbda, validation, early_stop,
        eta_schedule, monitor, callback, seed, shuffle, transform). Returns a ``History``."""
        from cvtool.nn.fit import fit

        return fit(self, x_train, y_train, **kwargs)

    # ------------------------------------------------------------------ files
    def save(self, path, **extra_meta) -> Path:
        """Write parameters and metadata to one .npz file, atomically."""
        self._check_built()
        path = Path(path)
        if path.suffix != ".npz":
            raise CvtoolError(f"Model files end in .npz. Got {str(path)!r}; e.g. --out model.npz.")
        meta = {
            "format": FORMAT, "version": MODEL_VERSION, "spec": self.spec_text,
            "input_shape": list(self.input_shape), "dtype": str(self.dtype),
            "class_names": list(self.class_names),
            "layers": [{"kind": layer.kind, **layer.config(), "trainable": layer.trainable}
                       for layer in self.layers],
            **{k: v for k, v in self.meta.items() if k not in ("format", "version")},
            **extra_meta,
        }  # fmt: skip
        from cvtool.render import to_jsonable

        arrays = {
            f"p{i}.{k}": backend.to_numpy(v)
            for i, layer in enumerate(self.layers)
            for k, v in layer.params.items()
        }
        for i, layer in enumerate(self.layers):  # non-trainable state (batch-norm statistics)
            state = getattr(layer, "state", {})
            arrays.update({f"s{i}.{k}": backend.to_numpy(v) for k, v in state.items()})
        arrays["meta"] = np.array(json.dumps(to_jsonable(meta)))
        with atomic_path(path) as tmp:
            np.savez(tmp, **arrays)
        return path

    @classmethod
    def load(cls, path, *, backend_name: str | None = None, dtype: str | None = None) -> Sequential:
        """A model from a file written by ``save``, on the chosen backend and dtype."""
        from cvtool.nn.spec import parse_spec

        arrays, meta = _read_model_file(path)
        path = Path(path)
        try:
            spec_text, input_shape = meta["spec"], tuple(meta["input_shape"])
            layer_meta = list(meta["layers"])
        except (KeyError, TypeError):
            raise CvtoolError(
                f"{path}: the model's description is incomplete; file damaged?"
            ) from None
        model = cls.from_spec(parse_spec(spec_text), input_shape)
        model.build(backend.get_xp(backend_name), dtype or meta.get("dtype", "float32"), seed=0)
        if len(model.layers) != len(layer_meta):
            raise CvtoolError(f"{path}: the spec and the saved layers disagree; file damaged?")
        for i, (layer, info) in enumerate(zip(model.layers, layer_meta, strict=True)):
            layer.trainable = bool(info.get("trainable", True))
            for k in layer.params:
                arr = arrays.get(f"p{i}.{k}")
                if arr is None or arr.shape != tuple(layer.params[k].shape):
                    raise CvtoolError(f"{path}: parameter p{i}.{k} is missing or mis-shaped.")
                layer.params[k][...] = model.xp.asarray(arr, dtype=model.dtype)
            for k in getattr(layer, "state", {}):
                arr = arrays.get(f"s{i}.{k}")
                if arr is None or arr.shape != tuple(layer.state[k].shape):
                    raise CvtoolError(f"{path}: state s{i}.{k} is missing or mis-shaped.")
                layer.state[k][...] = model.xp.asarray(arr, dtype=model.dtype)
        model.class_names = tuple(meta.get("class_names", ()))
        model.meta = {k: v for k, v in meta.items()
                      if k not in ("spec", "input_shape", "dtype", "class_names", "layers")}  # fmt: skip
        return model


def _read_model_file(path) -> tuple[dict, dict]:
    """The arrays and the metadata of a model file, or one line naming what is wrong.

    A missing, empty, truncated (damaged zip), foreign (not a cvtool model) or
    newer-format file is named as such. '-' and streams are read once.
    """
    import zipfile

    from cvtool.fileio import is_stdio, read_bytes

    if not is_stdio(path):
        p = Path(path)
        if p.is_dir():
            raise CvtoolError(f"Model file is a folder, not a file: {p}")
        if not p.exists():
            raise CvtoolError(f"Model file not found: {p}")
    payload = read_bytes(path)
    if not payload:
        raise CvtoolError(f"{path} is empty, not a cvtool model file.")
    if not payload.startswith(b"PK"):
        raise CvtoolError(f"{path} is not a cvtool model file (not an .npz archive).")
    import io

    try:
        with np.load(io.BytesIO(payload), allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as exc:
        raise CvtoolError(
            f"{path} is truncated or damaged: not a complete cvtool model file "
            f"({type(exc).__name__})."
        ) from None
    if "meta" not in arrays:
        raise CvtoolError(f"{path} is not a cvtool model file (an .npz without 'meta').")
    try:
        meta = json.loads(str(arrays.pop("meta")))
    except (ValueError, RecursionError):
        raise CvtoolError(f"{path} is not a cvtool model file (its 'meta' is not JSON).") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        fmt = meta.get("format") if isinstance(meta, dict) else None
        raise CvtoolError(f"{path} is not a cvtool model file (format {fmt!r}).")
    if meta.get("version") != MODEL_VERSION:
        raise CvtoolError(
            f"{path} is a cvtool model of format version {meta.get('version')!r}; this cvtool "
            f"reads version {MODEL_VERSION} (save it again with a matching cvtool)."
        )
    return arrays, meta
