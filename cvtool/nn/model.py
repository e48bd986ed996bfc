"""Sequential models: build, train (fit), evaluate, predict, save and load.

A :class:`Sequential` is a list of layers and an input shape (no batch axis).
``fit`` runs mini-batch gradient descent over the whole mini-batch as matrix
products, keeps the data on the device, shuffles indices rather than arrays,
and reports through a :class:`Callback` (the library prints nothing). With
the output activation that matches the cost (sigmoid + cross-entropy,
softmax + log-likelihood) the output error is ``a - y`` and the activation's
own backward is skipped.

A model saves to one ``.npz`` file: the parameters (``p{i}.{name}``) and a
JSON ``meta`` entry with the spec text, input shape, class names, dtype, the
training configuration and the final metrics. Writes are atomic.

Fine-tuning: ``load`` a model, ``freeze(n)`` its first n parametrised layers,
``replace_head(k, new_layers)`` to swap the last k layers, and ``fit`` again;
frozen layers get no optimiser slot and no weight update.
Left out: multiple inputs/outputs, mixed precision, data loaders.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cvtool import backend
from cvtool.errors import CvtoolError
from cvtool.fileio import atomic_path
from cvtool.nn import layers as L
from cvtool.nn.build import build_layers, split_input
from cvtool.nn.losses import get_loss, l2_penalty

FORMAT = "cvtool-model"
MONITORS = ("train-cost", "train-accuracy", "val-cost", "val-accuracy", "gradients")
EVAL_BATCH = 2000


class Callback:
    """Hooks ``fit`` calls; override what you need (all are no-ops here)."""

    def on_train_begin(self, model, info: dict) -> None: ...

    def on_epoch_begin(self, epoch: int, steps: int) -> None: ...

    def on_progress(self, epoch: int, done: int, steps: int) -> None: ...

    def on_epoch_end(self, record: dict, model, improved: bool) -> None: ...


@dataclass
class History:
    """Per-epoch records and how training ended.

    ``stopped`` is 'completed', 'early-stop', 'eta-schedule', 'interrupted' or
    'nan'; ``best_epoch`` is the epoch whose weights the model holds when
    training stopped early (1-based; None when nothing was monitored).
    """

    records: list = field(default_factory=list)
    best_epoch: int | None = None
    best_metric: float | None = None
    monitor_metric: str | None = None
    stopped: str = "completed"
    restored_best: bool = False

    def to_dict(self) -> dict:
        return {
            "epochs": self.records,
            "best_epoch": self.best_epoch,
            "best_metric": self.best_metric,
            "monitor_metric": self.monitor_metric,
            "stopped": self.stopped,
            "restored_best": self.restored_best,
        }


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
        return self

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
        """Rows (name, type, output shape, weights, biases, params, trainable), no data needed."""
        rows, shape = [], self.input_shape
        for name, layer in zip(self.layer_names(), self.layers, strict=True):
            w, b = layer.param_count(shape)
            shape = layer.output_shape(shape)
            label = type(layer).__name__
            if isinstance(layer, L.Activation):
                label += f"({layer.name})"
            rows.append({"name": name, "type": label, "output_shape": shape, "weights": w,
                         "biases": b, "params": w + b, "trainable": layer.trainable})  # fmt: skip
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

    # ------------------------------------------------------------------ passes
    def forward(self, x, training: bool = False):
        for layer in self.layers:
            x = layer.forward(x, training)
        return x

    def backward(self, dout, stop: int = 0):
        """Backpropagate dC/d(output) through layers[stop:] (top down)."""
        for layer in reversed(self.layers[stop:]):
            dout = layer.backward(dout)
        return dout

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

    def _measure(self, x, Y, loss, lmbda: float, n_train: int) -> tuple[float, float]:
        """(cost incl. L2 term, accuracy) on prepared x and one-hot Y, in chunks."""
        cost, correct = 0.0, 0
        for i in range(0, len(x), EVAL_BATCH):
            a = self.forward(x[i : i + EVAL_BATCH])
            yb = Y[i : i + EVAL_BATCH]
            cost += loss.fn(a, yb) * len(a)
            correct += int((a.argmax(axis=1) == yb.argmax(axis=1)).sum())
        cost = cost / max(len(x), 1)
        cost += l2_penalty(self._weights(), lmbda, n_train)
        return float(cost), correct / max(len(x), 1)

    def _weights(self) -> list:
        return [layer.params["W"] for layer in self.param_layers if "W" in layer.params]

    def evaluate(self, x, y, loss: str | None = None, lmbda: float = 0.0, n_train=None) -> dict:
        """Accuracy, cost, per-class accuracy and confusion matrix on (x, y).

        Returns
        -------
        dict with accuracy, cost, n, per_class_accuracy (K,), confusion (K, K) with
        rows = true class, columns = predicted class.
        """
        loss_cls = get_loss(loss or self.meta.get("training", {}).get("cost", "quadratic"))
        xp_x = self.prepare(x)
        Y = self.one_hot(y)
        cost, acc = self._measure(xp_x, Y, loss_cls, lmbda, n_train or len(y))
        pred = np.concatenate(
            [backend.to_numpy(self.forward(xp_x[i : i + EVAL_BATCH]).argmax(axis=1))
             for i in range(0, len(xp_x), EVAL_BATCH)]
        ) if len(xp_x) else np.zeros(0, np.int64)  # fmt: skip
        k = self.output_shape[-1]
        y = np.asarray(backend.to_numpy(y), np.int64)
        confusion = np.zeros((k, k), np.int64)
        np.add.at(confusion, (y, pred), 1)
        support = confusion.sum(axis=1)
        per_class = np.where(support > 0, np.diag(confusion) / np.maximum(support, 1), np.nan)
        return {"accuracy": acc, "cost": cost, "n": len(y),
                "per_class_accuracy": per_class, "confusion": confusion}  # fmt: skip

    def gradient_norms(self, x, Y, loss) -> dict:
        """Euclidean norm of each parametrised layer's gradient on (x, Y) (no update)."""
        a = self.forward(x)
        last = self.layers[-1]
        fused = isinstance(last, L.Activation) and loss.fused == last.name
        dout = (a - Y) if fused else loss.grad(a, Y)
        dout = dout / len(x)
        self.backward(dout, stop=0) if not fused else self._backward_fused(dout)
        names = self.layer_names()
        out = {}
        for name, layer in zip(names, self.layers, strict=True):
            if layer.params:
                sq = sum(float((g * g).sum()) for g in layer.grads.values())
                out[name] = math.sqrt(sq)
        return out

    def _backward_fused(self, dz) -> None:
        for layer in reversed(self.layers[:-1]):
            dz = layer.backward(dz)

    # ------------------------------------------------------------------ training
    def fit(
        self,
        x_train,
        y_train,
        *,
        epochs: int = 30,
        batch_size: int = 10,
        optimizer=None,
        loss: str = "cross-entropy",
        lmbda: float | None = None,
        validation=None,
        early_stop: int = 0,
        eta_schedule: int = 0,
        monitor=None,
        callback: Callback | None = None,
        seed: int | None = 0,
        shuffle: bool = True,
    ) -> History:
        """Train with mini-batch gradient descent.

        Parameters
        ----------
        x_train : (N, ...) images or vectors (uint8 are scaled to [0, 1]).
        y_train : (N,) integer labels.
        optimizer : an ``optim.Optimizer`` (default SGD eta 0.5); its lmbda is the
            L2 strength unless ``lmbda`` is given here.
        loss : cost name (quadratic, cross-entropy, log-likelihood).
        validation : (x_val, y_val) or None.
        early_stop : stop after this many epochs without a validation-accuracy
            improvement and restore the best epoch's weights (0 = off).
        eta_schedule : halve eta after this many epochs without improvement; stop
            once eta < eta0/128 (Nielsen's schedule; 0 = off).
        monitor : names from MONITORS computed after each epoch (default: the
            training cost and, with validation, validation cost and accuracy).
        callback : a :class:`Callback`; Ctrl-C inside fit stops cleanly and restores
            the best weights so far.
        seed : seeds the shuffles.

        Returns
        -------
        History
        """
        from cvtool.nn.optim import SGD

        self._check_built()
        xp = self.xp
        cb = callback or Callback()
        _check_int("epochs", epochs, 1)
        _check_int("batch_size", batch_size, 1)
        _check_int("early_stop", early_stop, 0)
        _check_int("eta_schedule", eta_schedule, 0)
        opt = optimizer or SGD(0.5)
        if lmbda is not None:
            opt.lmbda = float(lmbda)
        loss_cls = get_loss(loss)
        x = self.prepare(x_train)
        Y = self.one_hot(y_train)
        n = len(x)
        if n == 0:
            raise CvtoolError("The training set is empty.")
        xv = Yv = None
        if validation is not None:
            xv, Yv = self.prepare(validation[0]), self.one_hot(validation[1])
        monitor = _resolve_monitor(monitor, xv is not None, early_stop, eta_schedule)
        key = "val_accuracy" if "val-accuracy" in monitor else (
            "train_accuracy" if "train-accuracy" in monitor else None)  # fmt: skip

        trainable = [layer for layer in self.param_layers if layer.trainable]
        opt.bind(
            [(p, layer.grads[k], k == "W") for layer in trainable for k, p in layer.params.items()],
            n,
        )
        # Layers below the lowest trainable one need no backward pass at all.
        first = min((self.layers.index(t) for t in trainable), default=len(self.layers))
        for i, layer in enumerate(self.layers):
            layer.need_dx = i > first
        last = self.layers[-1]
        fused = isinstance(last, L.Activation) and loss_cls.fused == last.name
        top = len(self.layers) - 1 if fused else len(self.layers)
        tail = self.layers[first:top][::-1]
        grad_probe = min(n, 1000)

        self.meta["training"] = {
            "cost": loss_cls.name, "epochs": epochs, "batch_size": batch_size,
            "n_train": n, "n_val": 0 if xv is None else len(xv), "seed": seed,
            "early_stop": early_stop, "eta_schedule": eta_schedule, **opt.config(),
        }  # fmt: skip
        cb.on_train_begin(self, dict(self.meta["training"], monitor=list(monitor)))
        hist = History(monitor_metric=key)
        best_params, since_best, eta0 = None, 0, opt.eta
        shuffle_rng = backend.host_rng(None if seed is None else [seed, 1])
        steps = -(-n // batch_size)
        report_every = max(1, steps // 50)
        forward = self.forward
        xbuf = xp.empty((batch_size, *self.input_shape), dtype=self.dtype)
        ybuf = xp.empty((batch_size, Y.shape[1]), dtype=self.dtype)
        dbuf = xp.empty_like(ybuf)
        # The optimiser's prescale (eta for SGD) rides on the output error: one
        # multiply of an (m, K) array instead of one per parameter array.
        prescale = opt.prescale if opt.prescale != 1.0 else None
        if xp is np:  # mode='clip' avoids NumPy buffering `out` (indices are valid anyway)

            def xtake(idx, axis=0, out=None):
                return x.take(idx, axis=axis, out=out, mode="clip")

            def ytake(idx, axis=0, out=None):
                return Y.take(idx, axis=axis, out=out, mode="clip")
        else:
            xtake, ytake = x.take, Y.take
        # A diverging run overflows: that is reported as stopped='nan', not as warnings.
        errstate = np.errstate(over="ignore", invalid="ignore", divide="ignore")
        errstate.__enter__()
        try:
            for epoch in range(1, epochs + 1):
                t0 = time.perf_counter()
                cb.on_epoch_begin(epoch, steps)
                order = shuffle_rng.permutation(n) if shuffle else np.arange(n)
                order = xp.asarray(order)
                for s in range(steps):
                    idx = order[s * batch_size : (s + 1) * batch_size]
                    if len(idx) == batch_size:
                        xb = xtake(idx, axis=0, out=xbuf)
                        yb = ytake(idx, axis=0, out=ybuf)
                        a = forward(xb, True)
                        d = xp.subtract(a, yb, out=dbuf) if fused else loss_cls.grad(a, yb)
                    else:  # the last, smaller mini-batch
                        xb, yb = xtake(idx, axis=0), ytake(idx, axis=0)
                        a = forward(xb, True)
                        d = (a - yb) if fused else loss_cls.grad(a, yb)
                    d *= (opt.eta if prescale else 1.0) / len(idx)
                    for layer in tail:
                        d = layer.backward(d)
                    opt.step(prescaled=bool(prescale))
                    if s % report_every == 0:
                        cb.on_progress(epoch, s + 1, steps)
                backend.synchronize(xp)
                record = {"epoch": epoch, "eta": opt.eta, "train_seconds": time.perf_counter() - t0}
                self._monitor(record, monitor, x, Y, xv, Yv, loss_cls, opt.lmbda, n, grad_probe)
                record["seconds"] = time.perf_counter() - t0
                hist.records.append(record)
                if not _finite(record) or not self._params_finite():
                    hist.stopped = "nan"
                    cb.on_epoch_end(record, self, False)
                    break
                improved = False
                if key is not None:
                    if hist.best_metric is None or record[key] > hist.best_metric:
                        hist.best_metric, hist.best_epoch = record[key], epoch
                        best_params, since_best, improved = self._copy_params(), 0, True
                    else:
                        since_best += 1
                cb.on_epoch_end(record, self, improved)
                if early_stop and since_best >= early_stop:
                    hist.stopped = "early-stop"
                    break
                if eta_schedule and since_best and since_best % eta_schedule == 0:
                    opt.eta /= 2
                    if opt.eta < eta0 / 128:
                        hist.stopped = "eta-schedule"
                        break
        except KeyboardInterrupt:
            hist.stopped = "interrupted"
        finally:
            errstate.__exit__(None, None, None)
        if hist.stopped != "completed" and best_params is not None:
            self._set_params(best_params)
            hist.restored_best = True
        for i, layer in enumerate(self.layers):
            layer.need_dx = i > 0
        self.meta["history"] = hist.to_dict()
        return hist

    def _monitor(self, record, monitor, x, Y, xv, Yv, loss_cls, lmbda, n, grad_probe) -> None:
        if "train-cost" in monitor or "train-accuracy" in monitor:
            cost, acc = self._measure(x, Y, loss_cls, lmbda, n)
            if "train-cost" in monitor:
                record["train_cost"] = cost
            if "train-accuracy" in monitor:
                record["train_accuracy"] = acc
        if xv is not None and ("val-cost" in monitor or "val-accuracy" in monitor):
            cost, acc = self._measure(xv, Yv, loss_cls, lmbda, n)
            if "val-cost" in monitor:
                record["val_cost"] = cost
            if "val-accuracy" in monitor:
                record["val_accuracy"] = acc
        if "gradients" in monitor:
            norms = self.gradient_norms(x[:grad_probe], Y[:grad_probe], loss_cls)
            record["grad_norms"] = norms

    def _params_finite(self) -> bool:
        return all(
            math.isfinite(float(p.sum()))
            for layer in self.param_layers
            for p in layer.params.values()
        )

    def _copy_params(self) -> list:
        return [{k: v.copy() for k, v in layer.params.items()} for layer in self.layers]

    def _set_params(self, saved: list) -> None:
        for layer, params in zip(self.layers, saved, strict=True):
            for k, v in params.items():
                layer.params[k][...] = v

    # ------------------------------------------------------------------ files
    def save(self, path, **extra_meta) -> Path:
        """Write parameters and metadata to one .npz file, atomically."""
        self._check_built()
        path = Path(path)
        if path.suffix != ".npz":
            raise CvtoolError(f"Model files end in .npz. Got {str(path)!r}; e.g. --out model.npz.")
        meta = {
            "format": FORMAT, "version": 1, "spec": self.spec_text,
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
        arrays["meta"] = np.array(json.dumps(to_jsonable(meta)))
        with atomic_path(path) as tmp:
            np.savez(tmp, **arrays)
        return path

    @classmethod
    def load(cls, path, *, backend_name: str | None = None, dtype: str | None = None) -> Sequential:
        """A model from a file written by ``save``, on the chosen backend and dtype."""
        from cvtool.nn.spec import parse_spec

        path = Path(path)
        if not path.is_file():
            raise CvtoolError(f"Model file not found: {path}")
        try:
            with np.load(path, allow_pickle=False) as f:
                arrays = {k: f[k] for k in f.files}
            meta = json.loads(str(arrays.pop("meta")))
        except (OSError, ValueError, KeyError) as exc:
            raise CvtoolError(
                f"{path} is not a cvtool model file ({type(exc).__name__})."
            ) from None
        if meta.get("format") != FORMAT:
            raise CvtoolError(f"{path} is not a cvtool model file (format {meta.get('format')!r}).")
        model = cls.from_spec(parse_spec(meta["spec"]), tuple(meta["input_shape"]))
        model.build(backend.get_xp(backend_name), dtype or meta.get("dtype", "float32"), seed=0)
        if len(model.layers) != len(meta["layers"]):
            raise CvtoolError(f"{path}: the spec and the saved layers disagree; file damaged?")
        for i, (layer, info) in enumerate(zip(model.layers, meta["layers"], strict=True)):
            layer.trainable = bool(info.get("trainable", True))
            for k in layer.params:
                arr = arrays.get(f"p{i}.{k}")
                if arr is None or arr.shape != tuple(layer.params[k].shape):
                    raise CvtoolError(f"{path}: parameter p{i}.{k} is missing or mis-shaped.")
                layer.params[k][...] = model.xp.asarray(arr, dtype=model.dtype)
        model.class_names = tuple(meta.get("class_names", ()))
        model.meta = {k: v for k, v in meta.items()
                      if k not in ("spec", "input_shape", "dtype", "class_names", "layers")}  # fmt: skip
        return model


def _check_int(name: str, value, low: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise CvtoolError(f"The '{name}' parameter must be an int >= {low}. Got {value!r} instead.")


def _finite(record: dict) -> bool:
    return all(math.isfinite(v) for k, v in record.items() if k.endswith("_cost") and v is not None)


def _resolve_monitor(monitor, has_val: bool, early_stop: int, eta_schedule: int) -> tuple:
    if monitor is None:
        monitor = ("train-cost", "val-cost", "val-accuracy") if has_val else (
            "train-cost", "train-accuracy")  # fmt: skip
    monitor = tuple(monitor)
    for m in monitor:
        if m not in MONITORS:
            raise CvtoolError(
                f"The 'monitor' parameter takes {', '.join(MONITORS)}. Got {m!r} instead."
            )
    if any(m.startswith("val-") for m in monitor) and not has_val:
        raise CvtoolError("Monitoring validation metrics needs a validation split (--validation).")
    if early_stop or eta_schedule:
        if not has_val:
            raise CvtoolError(
                "--early-stop and --eta-schedule watch validation accuracy; add --validation N."
            )
        if "val-accuracy" not in monitor:
            monitor += ("val-accuracy",)
    return monitor
