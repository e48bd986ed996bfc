"""Mini-batch training of a Sequential model: the loop behind ``Sequential.fit``.

``fit`` runs mini-batch gradient descent over the whole mini-batch as matrix
products, keeps the data on the device, shuffles indices rather than arrays,
gathers each mini-batch into preallocated buffers and reports through a
:class:`Callback` (the library prints nothing). With the output activation
that matches the cost (sigmoid + cross-entropy, softmax + log-likelihood) the
output error is ``a - y`` and the activation's own backward is skipped; SGD's
eta rides on that error (one multiply per step instead of one per array).

Training cost and accuracy are, by default, running averages over the
epoch's mini-batches, as Keras reports them: each step's outputs are kept
(one small copy) and scored once at the epoch's end, so they cost no extra
forward pass; they describe the network as it changed during the epoch, with
dropout and augmentation active. ``exact_train_metrics=True`` measures them
instead with a full extra pass over the training set after the epoch, as
Nielsen's ``monitor_training_accuracy`` does. The L2 term is added with the
weights at the epoch's end in both cases.

After each epoch it computes the monitored costs and accuracies, and stops on
a NaN/infinite cost, after ``early_stop`` epochs without improvement, when the
plateau schedule has brought eta below eta0/128, or on Ctrl-C; in each of
those cases the best epoch's weights are restored. Data augmentation plugs in
as ``transform``: a callable applied to each training mini-batch of inputs
(never to the monitored metrics, validation or prediction). Left out:
learning-rate warm-up, gradient accumulation.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from cvtool import backend
from cvtool.errors import CvtoolError, check_choice, check_int
from cvtool.nn.losses import get_loss
from cvtool.nn.optim import SGD

MONITORS = ("train-cost", "train-accuracy", "val-cost", "val-accuracy", "gradients")


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


def fit(
    model,
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
    transform=None,
    exact_train_metrics: bool = False,
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
    transform : None or a callable ``transform(xb) -> xb`` applied to each
        training mini-batch of inputs, (m, *input_shape) on the model's device
        and dtype, after it is gathered and before the forward pass; it must
        return an array of the same shape (e.g. random augmentation). It may
        overwrite its argument (a reused buffer). Monitored metrics, validation
        and prediction see the inputs untransformed.
    exact_train_metrics : measure the training cost and accuracy with a full
        pass after each epoch instead of as running averages (module text).

    Returns
    -------
    History
    """
    model._check_built()
    xp = model.xp
    cb = callback or Callback()
    check_int("epochs", epochs, low=1)
    check_int("batch_size", batch_size, low=1)
    check_int("early_stop", early_stop, low=0)
    check_int("eta_schedule", eta_schedule, low=0)
    if transform is not None and not callable(transform):
        raise CvtoolError(f"The 'transform' parameter must be callable. Got {transform!r}.")
    opt = optimizer or SGD(0.5)
    if lmbda is not None:
        opt.lmbda = float(lmbda)
    loss_cls = get_loss(loss)
    x = model.prepare(x_train)
    Y = model.one_hot(y_train)
    n = len(x)
    if n == 0:
        raise CvtoolError("The training set is empty.")
    xv = Yv = None
    if validation is not None:
        xv, Yv = model.prepare(validation[0]), model.one_hot(validation[1])
    monitor = _resolve_monitor(monitor, xv is not None, early_stop, eta_schedule)
    key = "val_accuracy" if "val-accuracy" in monitor else (
        "train_accuracy" if "train-accuracy" in monitor else None)  # fmt: skip

    trainable = [layer for layer in model.param_layers if layer.trainable]
    opt.bind(
        [(p, layer.grads[k], k == "W") for layer in trainable for k, p in layer.params.items()],
        n,
    )
    # Layers below the lowest trainable one need no backward pass at all.
    first = min((model.layers.index(t) for t in trainable), default=len(model.layers))
    for i, layer in enumerate(model.layers):
        layer.need_dx = i > first
    fused = model.fuses_output(loss_cls)
    top = len(model.layers) - 1 if fused else len(model.layers)
    tail = model.layers[first:top][::-1]
    grad_probe = min(n, 1000)

    running = not exact_train_metrics and ("train-cost" in monitor or "train-accuracy" in monitor)
    model.meta["training"] = {
        "cost": loss_cls.name, "epochs": epochs, "batch_size": batch_size,
        "n_train": n, "n_val": 0 if xv is None else len(xv), "seed": seed,
        "train_metrics": "running average" if not exact_train_metrics else "exact pass",
        "early_stop": early_stop, "eta_schedule": eta_schedule, **opt.config(),
    }  # fmt: skip
    cb.on_train_begin(model, dict(model.meta["training"], monitor=list(monitor)))
    hist = History(monitor_metric=key)
    best_params, since_best, eta0 = None, 0, opt.eta
    shuffle_rng = backend.host_rng(None if seed is None else [seed, 1])
    steps = -(-n // batch_size)
    report_every = max(1, steps // 50)
    forward = model.forward
    xbuf = xp.empty((batch_size, *model.input_shape), dtype=model.dtype)
    ybuf = xp.empty((batch_size, Y.shape[1]), dtype=model.dtype)
    dbuf = xp.empty_like(ybuf)
    abuf = xp.empty((n, Y.shape[1]), dtype=model.dtype) if running else None  # step outputs
    # SGD's eta rides on the output error (backprop is linear in it): one multiply
    # of an (m, K) array per step instead of one per parameter array.
    prescaled = opt.prescale != 1.0
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
            scale = (opt.prescale if prescaled else 1.0) / batch_size  # eta may change per epoch
            for s in range(steps):
                idx = order[s * batch_size : (s + 1) * batch_size]
                if len(idx) == batch_size:
                    xb = xtake(idx, axis=0, out=xbuf)
                    yb = ytake(idx, axis=0, out=ybuf)
                    if transform is not None:
                        xb = transform(xb)
                    a = forward(xb, True)
                    if running:
                        abuf[s * batch_size : (s + 1) * batch_size] = a
                    d = xp.subtract(a, yb, out=dbuf) if fused else loss_cls.grad(a, yb)
                    d *= scale
                else:  # the last, smaller mini-batch
                    xb, yb = xtake(idx, axis=0), ytake(idx, axis=0)
                    if transform is not None:
                        xb = transform(xb)
                    a = forward(xb, True)
                    if running:
                        abuf[s * batch_size :] = a
                    d = (a - yb) if fused else loss_cls.grad(a, yb)
                    d *= scale * batch_size / len(idx)
                for layer in tail:
                    d = layer.backward(d)
                opt.step(prescaled=prescaled)
                if s % report_every == 0:
                    cb.on_progress(epoch, s + 1, steps)
            backend.synchronize(xp)
            record = {"epoch": epoch, "eta": opt.eta, "train_seconds": time.perf_counter() - t0}
            if running:  # the epoch's outputs against the targets in the order they were seen
                _running(model, record, monitor, abuf, ytake(order, axis=0), loss_cls, opt.lmbda, n)
            _monitor(model, record, monitor, x, Y, xv, Yv, loss_cls, opt.lmbda, n, grad_probe,
                     exact_train=not running)  # fmt: skip
            record["seconds"] = time.perf_counter() - t0
            hist.records.append(record)
            if not _finite(record) or not _params_finite(model):
                hist.stopped = "nan"
                cb.on_epoch_end(record, model, False)
                break
            improved = False
            if key is not None:
                if hist.best_metric is None or record[key] > hist.best_metric:
                    hist.best_metric, hist.best_epoch = record[key], epoch
                    best_params, since_best, improved = _copy_params(model), 0, True
                else:
                    since_best += 1
            cb.on_epoch_end(record, model, improved)
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
        _set_params(model, best_params)
        hist.restored_best = True
    for i, layer in enumerate(model.layers):
        layer.need_dx = i > 0
    model.meta["history"] = hist.to_dict()
    return hist


def _running(model, record, monitor, a, Y, loss_cls, lmbda, n) -> None:
    """Training cost and accuracy from the outputs the epoch's steps produced."""
    from cvtool.nn.losses import l2_penalty

    if "train-cost" in monitor:
        record["train_cost"] = loss_cls.fn(a, Y) + l2_penalty(model._weights(), lmbda, n)
    if "train-accuracy" in monitor:
        record["train_accuracy"] = float((a.argmax(axis=1) == Y.argmax(axis=1)).mean())


def _monitor(model, record, monitor, x, Y, xv, Yv, loss_cls, lmbda, n, grad_probe,
             exact_train=True) -> None:  # fmt: skip
    if exact_train and ("train-cost" in monitor or "train-accuracy" in monitor):
        cost, acc = model._measure(x, Y, loss_cls, lmbda, n)
        if "train-cost" in monitor:
            record["train_cost"] = cost
        if "train-accuracy" in monitor:
            record["train_accuracy"] = acc
    if xv is not None and ("val-cost" in monitor or "val-accuracy" in monitor):
        cost, acc = model._measure(xv, Yv, loss_cls, lmbda, n)
        if "val-cost" in monitor:
            record["val_cost"] = cost
        if "val-accuracy" in monitor:
            record["val_accuracy"] = acc
    if "gradients" in monitor:
        norms = model.gradient_norms(x[:grad_probe], Y[:grad_probe], loss_cls)
        record["grad_norms"] = norms


def _params_finite(model) -> bool:
    return all(
        math.isfinite(float(p.sum())) for layer in model.param_layers for p in layer.params.values()
    )


def _copy_params(model) -> list:
    return [{k: v.copy() for k, v in layer.params.items()} for layer in model.layers]


def _set_params(model, saved: list) -> None:
    for layer, params in zip(model.layers, saved, strict=True):
        for k, v in params.items():
            layer.params[k][...] = v


def _finite(record: dict) -> bool:
    return all(math.isfinite(v) for k, v in record.items() if k.endswith("_cost") and v is not None)


def _resolve_monitor(monitor, has_val: bool, early_stop: int, eta_schedule: int) -> tuple:
    if monitor is None:
        monitor = ("train-cost", "val-cost", "val-accuracy") if has_val else (
            "train-cost", "train-accuracy")  # fmt: skip
    monitor = tuple(monitor)
    for m in monitor:
        check_choice("monitor", m, MONITORS)
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
