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
from cvtool.nn._parallel import flushed_subnormals
from cvtool.nn.losses import l2_penalty
from cvtool.nn.optim import SGD
from cvtool.nn.tasks import get_task

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
    epoch_data=None,
) -> History:
    """Train with mini-batch gradient descent.

    Parameters
    ----------
    x_train : (N, ...) images or vectors (uint8 are scaled to [0, 1]).
    y_train : (N,) integer labels, or what the task's ``targets`` takes
        (boxes per image for detection, label maps for segmentation).
    optimizer : an ``optim.Optimizer`` (default SGD eta 0.5); its lmbda is the
        L2 strength unless ``lmbda`` is given here.
    loss : cost name (quadratic, cross-entropy, log-likelihood) for
        classification, or a task object (:mod:`cvtool.nn.tasks`).
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
    epoch_data : None or a callable ``epoch_data(epoch) -> (x, y)`` giving the
        training set of each epoch (same size as ``x_train``; e.g. freshly
        drawn or augmented images with their labels); epoch 1 uses x_train.

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
    task = get_task(loss)
    x, y_raw = model.prepare(x_train), y_train
    Y = task.targets(model, y_train)
    n = len(x)
    if n == 0:
        raise CvtoolError("The training set is empty.")
    xv = yv = Yv = None
    if validation is not None:
        xv, yv = model.prepare(validation[0]), validation[1]
        Yv = task.targets(model, yv)
    monitor = _resolve_monitor(monitor, xv is not None, early_stop, eta_schedule)
    score = task.score
    key = f"val_{score}" if "val-accuracy" in monitor else (
        f"train_{score}" if "train-accuracy" in monitor else None)  # fmt: skip

    trainable = [layer for layer in model.param_layers if layer.trainable]
    opt.bind(
        [(p, layer.grads[k], k == "W") for layer in trainable for k, p in layer.params.items()],
        n,
    )
    # Layers below the lowest trainable one need no backward pass at all.
    first = min((model.layers.index(t) for t in trainable), default=len(model.layers))
    for i, layer in enumerate(model.layers):
        layer.need_dx = i > first
    fused = model.fuses_output(task)
    top = len(model.layers) - 1 if fused else len(model.layers)
    tail = model.layers[first:top][::-1]
    grad_probe = min(n, 1000)

    train_metrics = "train-cost" in monitor or "train-accuracy" in monitor
    running = not exact_train_metrics and train_metrics and task.running
    model.meta["training"] = {
        **task.config(), "epochs": epochs, "batch_size": batch_size,
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
    ybuf = xp.empty((batch_size, *Y.shape[1:]), dtype=Y.dtype)
    dbuf = xp.empty((batch_size, *model.output_shape), dtype=model.dtype) if fused else None
    abuf = xp.empty((n, *model.output_shape), dtype=model.dtype) if running else None
    # Tasks that cannot keep the epoch's outputs add up each step's cost instead.
    step_costs = [] if train_metrics and not running and not exact_train_metrics else None
    # ... from the gradient's own pass of the loss where the task offers one.
    joint = step_costs is not None and not fused and hasattr(task, "loss_and_grad")
    # SGD's eta rides on the output error (backprop is linear in it): one multiply
    # of an (m, K) array per step instead of one per parameter array.
    prescaled = opt.prescale != 1.0
    # mode='clip' keeps NumPy from buffering `out` (the indices are valid anyway).
    clip = {"mode": "clip"} if xp is np else {}

    def error(a, yb, out=None):
        """The step's output error (dC/da per example); a joint task's cost goes to step_costs."""
        if joint:  # the step's cost and gradient from one pass of the loss
            cost, d = task.loss_and_grad(a, yb)
            step_costs.append(cost * len(a))
            return d
        if fused:
            return a - yb if out is None else xp.subtract(a, yb, out=out)
        return task.grad(a, yb)

    def xtake(idx, out=None):
        return x.take(idx, axis=0, out=out, **clip)

    def ytake(idx, out=None):
        return Y.take(idx, axis=0, out=out, **clip)

    # A diverging run overflows: that is reported as stopped='nan', not as warnings.
    errstate = np.errstate(over="ignore", invalid="ignore", divide="ignore")
    errstate.__enter__()
    # Subnormal floats count as 0 while training (x86 products that touch them run up to
    # 30x slower; cvtool.nn.fpmode), where the fast extra's Numba is there.
    flushed = flushed_subnormals(xp)
    flushed.__enter__()
    try:
        for epoch in range(1, epochs + 1):
            t0 = time.perf_counter()
            cb.on_epoch_begin(epoch, steps)
            if epoch_data is not None and epoch > 1:
                x, y_raw, Y = _epoch_data(model, task, epoch_data, epoch, n)
            order = shuffle_rng.permutation(n) if shuffle else np.arange(n)
            order = xp.asarray(order)
            scale = (opt.prescale if prescaled else 1.0) / batch_size  # eta may change per epoch
            for s in range(steps):
                idx = order[s * batch_size : (s + 1) * batch_size]
                if len(idx) == batch_size:
                    xb = xtake(idx, out=xbuf)
                    yb = ytake(idx, out=ybuf)
                    if transform is not None:
                        xb = transform(xb)
                    a = forward(xb, True)
                    if running:
                        abuf[s * batch_size : (s + 1) * batch_size] = a
                    d = error(a, yb, dbuf)
                    d *= scale
                else:  # the last, smaller mini-batch
                    xb, yb = xtake(idx), ytake(idx)
                    if transform is not None:
                        xb = transform(xb)
                    a = forward(xb, True)
                    if running:
                        abuf[s * batch_size :] = a
                    d = error(a, yb)
                    d *= scale * batch_size / len(idx)
                if step_costs is not None and not joint:
                    step_costs.append(task.fn(a, yb) * len(idx))
                for layer in tail:
                    d = layer.backward(d)
                opt.step(prescaled=prescaled)
                if s % report_every == 0:
                    cb.on_progress(epoch, s + 1, steps)
            backend.synchronize(xp)
            record = {"epoch": epoch, "eta": opt.eta, "train_seconds": time.perf_counter() - t0}
            if running:  # the epoch's outputs against the targets in the order they were seen
                _running(model, record, monitor, abuf, ytake(order), task, opt.lmbda, n)
            elif step_costs is not None:
                # one host transfer an epoch: a task's step costs may be 0-d device arrays
                record["train_cost"] = float(sum(step_costs)) / n + l2_penalty(
                    model._weights(), opt.lmbda, n
                )
                step_costs.clear()
            _monitor(model, record, monitor, (x, y_raw, Y), (xv, yv, Yv), task, opt.lmbda, n,
                     grad_probe, exact_train=exact_train_metrics)  # fmt: skip
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
        flushed.__exit__(None, None, None)
        errstate.__exit__(None, None, None)
    if hist.stopped != "completed" and best_params is not None:
        _set_params(model, best_params)
        hist.restored_best = True
    for i, layer in enumerate(model.layers):
        layer.need_dx = i > 0
    model.meta["history"] = hist.to_dict()
    return hist


def _epoch_data(model, task, epoch_data, epoch: int, n: int):
    """This epoch's (x, y, Y) from ``epoch_data``, checked to keep the set's size."""
    xe, ye = epoch_data(epoch)
    x = model.prepare(xe)
    if len(x) != n:
        raise CvtoolError(f"epoch_data({epoch}) gave {len(x)} examples; the first epoch had {n}.")
    return x, ye, task.targets(model, ye)


def _running(model, record, monitor, a, Y, task, lmbda, n) -> None:
    """Training cost and accuracy from the outputs the epoch's steps produced."""
    if "train-cost" in monitor:
        record["train_cost"] = task.fn(a, Y) + l2_penalty(model._weights(), lmbda, n)
    if "train-accuracy" in monitor:
        record["train_accuracy"] = float((a.argmax(axis=1) == Y.argmax(axis=1)).mean())


def _monitor(model, record, monitor, train, val, task, lmbda, n, grad_probe,
             exact_train=True) -> None:  # fmt: skip
    """The monitored figures that need a pass over a split: (x, y, Y) for train and val."""
    score = task.score
    for split, (x, y, Y), on in (("train", train, exact_train), ("val", val, val[0] is not None)):
        wanted = [m for m in ("cost", "accuracy") if f"{split}-{m}" in monitor]
        if not on or not wanted:
            continue
        got = task.measure(model, x, y, Y, lmbda, n)
        if "cost" in wanted:
            record[f"{split}_cost"] = got["cost"]
        if "accuracy" in wanted and got.get(score) is not None:
            record[f"{split}_{score}"] = got[score]
    if "gradients" in monitor:
        x, _, Y = train
        record["grad_norms"] = model.gradient_norms(x[:grad_probe], Y[:grad_probe], task)


def _params_finite(model) -> bool:
    return all(
        math.isfinite(float(p.sum())) for layer in model.param_layers for p in layer.params.values()
    )


def _copy_params(model) -> list:
    """Every layer's parameters and state (batch-norm statistics), copied."""
    return [
        {**{k: v.copy() for k, v in layer.params.items()},
         **{f"state:{k}": v.copy() for k, v in getattr(layer, "state", {}).items()}}
        for layer in model.layers
    ]  # fmt: skip


def _set_params(model, saved: list) -> None:
    for layer, params in zip(model.layers, saved, strict=True):
        for k, v in params.items():
            if k.startswith("state:"):
                layer.state[k[6:]][...] = v
            else:
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
