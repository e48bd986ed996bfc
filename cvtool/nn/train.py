"""The one training call every trainer uses: :func:`train`.

``train(model, dataset, ...)`` does what ``cvtool train-mlp`` and
``cvtool train-cnn`` do, as library code a Python user can call:

1. checks every option and output path before any work (nothing is trained
   and nothing is printed when one is wrong);
2. carves the validation split from the training set (seeded, stratified;
   never from the test set), optionally after keeping the first
   ``train_size`` images;
3. builds the model (unless it comes built, e.g. for fine-tuning) and checks
   that its output has one unit per class;
4. fits it with the callbacks given, plus :class:`ModelCheckpoint` when
   ``out`` is given (the model is saved, atomically, each time validation
   accuracy improves, as Keras' ``ModelCheckpoint(save_best_only=True)``);
   the BLAS/thread policy of :func:`cvtool.nn._parallel.training_threads`
   applies, the same for every trainer;
5. applies the NaN policy: a cost that becomes NaN or infinite stops the run
   with a :class:`~cvtool.errors.CvtoolError` that suggests a smaller eta,
   after the history so far was written to ``metrics``;
6. evaluates the test split once, at the end (Ctrl-C during ``fit`` stops it
   cleanly: the best weights so far are restored, evaluated and saved, and the
   result says ``stopped == 'interrupted'``);
7. writes the model (``out``), the per-epoch history (``metrics``, CSV or
   JSON) and the learning curves (``plot``, PNG), and returns a
   :class:`TrainResult`.

The library prints nothing: progress reaches the caller through callbacks.
Left out: learning-rate warm-up, mixed precision, multi-GPU.
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cvtool import backend, fileio
from cvtool.data.datasets import load_dataset, parse_validation, stratified_split
from cvtool.errors import CvtoolError, check_choice, check_int
from cvtool.fileio import atomic_write_text
from cvtool.nn._parallel import training_threads
from cvtool.nn.cnn import default_eta
from cvtool.nn.fit import MONITORS, Callback, History
from cvtool.nn.optim import get_optimizer
from cvtool.nn.tasks import get_task

METRICS_SUFFIXES = (".csv", ".json")


class CallbackList(Callback):
    """Several callbacks called in order, as one."""

    def __init__(self, callbacks):
        self.callbacks = [c for c in callbacks if c is not None]

    def on_train_begin(self, model, info):
        for c in self.callbacks:
            c.on_train_begin(model, info)

    def on_epoch_begin(self, epoch, steps):
        for c in self.callbacks:
            c.on_epoch_begin(epoch, steps)

    def on_progress(self, epoch, done, steps):
        for c in self.callbacks:
            c.on_progress(epoch, done, steps)

    def on_epoch_end(self, record, model, improved):
        for c in self.callbacks:
            c.on_epoch_end(record, model, improved)


class ModelCheckpoint(Callback):
    """Save the model to `path` (atomically) each time the monitored metric improves."""

    def __init__(self, path):
        self.path = Path(path)
        self.saved = 0

    def on_epoch_end(self, record, model, improved):
        if improved:
            model.save(self.path)
            self.saved += 1


@dataclass
class TrainResult:
    """What :func:`train` returns: the trained model and everything said about the run."""

    model: object
    dataset: str
    history: History
    n_train: int
    n_val: int
    test: dict | None = None
    checkpoints: int = 0
    out: Path | None = None
    extra: dict = field(default_factory=dict)

    @property
    def stopped(self) -> str:
        return self.history.stopped

    @property
    def interrupted(self) -> bool:
        return self.history.stopped == "interrupted"

    def rows(self) -> list[dict]:
        """Per-epoch records with gradient norms as 'grad_norm:LAYER' columns."""
        return flat_records(self.history.records)

    def to_dict(self) -> dict:
        """The run as plain data (the trainers' ``--json`` document, less the command)."""
        model, hist, test = self.model, self.history, self.test
        seconds = [r["train_seconds"] for r in hist.records]
        return {
            "dataset": self.dataset,
            "backend": backend.backend_name(model.xp),
            "dtype": str(model.dtype),
            "spec": model.spec_text,
            "params": model.count_params(),
            "layers": model.summary(),
            "config": model.meta.get("training", {}),
            "train": self.n_train,
            "validation": self.n_val,
            "epochs_run": len(hist.records),
            "stopped": hist.stopped,
            "best_epoch": hist.best_epoch,
            "restored_best": hist.restored_best,
            "train_seconds_per_epoch": statistics.median(seconds) if seconds else None,
            "test_accuracy": None if test is None else test.get("accuracy"),
            "test_cost": None if test is None else test.get("cost"),
            "n_test": 0 if test is None else test["n"],
            "test": None
            if test is None
            else {k: v for k, v in test.items() if isinstance(v, int | float | str | None)},
            "model": None if self.out is None else str(self.out),
            "history": self.rows(),
            **self.extra,
        }


def flat_records(records: list[dict]) -> list[dict]:
    """Per-epoch rows with gradient norms as 'grad_norm:LAYER' columns."""
    rows = []
    for r in records:
        row = {k: v for k, v in r.items() if k != "grad_norms"}
        for name, v in r.get("grad_norms", {}).items():
            row[f"grad_norm:{name}"] = v
        rows.append(row)
    return rows


def write_history(path, records: list[dict]) -> None:
    """Per-epoch metrics as CSV (one row per epoch) or JSON ({"epochs": [...]}), by suffix."""
    path = Path(path)
    check_choice("metrics suffix", path.suffix.lower(), METRICS_SUFFIXES)
    rows = flat_records(records)
    if path.suffix.lower() == ".json":
        atomic_write_text(path, json.dumps({"epochs": rows}, indent=2) + "\n")
        return
    keys = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def check_memory(model, batch_size: int, dtype="float32", xp=np) -> int:
    """Refuse, before training, a network whose training step cannot fit in memory.

    The estimate (bytes): the parameters four times (weights, gradients, two
    Adam moments) plus the forward and backward activations of one mini-batch
    against the free memory of `xp`'s device (the GPU's for CuPy),
    from the summary walker (``layer-calc net --batch``); the im2col workspace
    is chunked and not counted. Linux overcommits memory, so without this check
    an impossible network starts, prints its header and dies later.
    """
    from cvtool.nn.spec import parse_spec
    from cvtool.summary import human_bytes, summarize

    t = summarize(parse_spec(model.spec_text), model.input_shape, floor=True, batch=batch_size,
                  dtype=str(np.dtype(dtype)))["totals"]  # fmt: skip
    need = 4 * t["param_bytes_dtype"] + t["forward_backward_bytes"]
    free = backend.free_memory(xp)
    if free is not None and need > free:
        raise CvtoolError(
            f"Training this network needs about {human_bytes(need)} (parameters "
            f"{human_bytes(4 * t['param_bytes_dtype'])} with gradients and optimiser state, "
            f"activations {human_bytes(t['forward_backward_bytes'])} for a batch of {batch_size}); "
            f"{human_bytes(free)} is free. Lower --batch-size or the layer sizes."
        )
    return need


def check_options(*, epochs=1, batch_size=1, early_stop=0, eta_schedule=0, out=None,
                  metrics=None, plot=None, overwrite: bool = False) -> None:  # fmt: skip
    """The checks of :func:`train` that need no data: counts and output paths.

    Trainers whose data takes time to make (generated canvases) call it first.
    """
    check_int("epochs", epochs, low=1)
    check_int("batch_size", batch_size, low=1)
    check_int("early_stop", early_stop, low=0)
    check_int("eta_schedule", eta_schedule, low=0)
    check_outputs(out, metrics, plot, overwrite=overwrite)


def check_outputs(out=None, metrics=None, plot=None, *, overwrite: bool = False) -> None:
    """Refuse outputs that cannot be written as asked, before any training: the
    suffixes, then fileio's one output rule (folder, parent, existing file)."""
    if out is not None and Path(out).suffix != ".npz":
        raise CvtoolError(f"--out must end in .npz. Got {str(out)!r}; e.g. --out model.npz.")
    if metrics is not None and Path(metrics).suffix.lower() not in METRICS_SUFFIXES:
        raise CvtoolError(f"--metrics must end in .csv or .json. Got {str(metrics)!r}.")
    if plot is not None and Path(plot).suffix.lower() != ".png":
        raise CvtoolError(f"--plot must end in .png. Got {str(plot)!r}.")
    for path, what in ((out, "model output"), (metrics, "metrics output"), (plot, "plot")):
        if path is not None:
            fileio.check_output(path, overwrite=overwrite, what=what)
    fileio.check_outputs(out, metrics, plot)


def parse_monitor(monitor) -> tuple | None:
    """'val-cost,gradients' or a sequence -> a tuple of names; 'all' -> every monitor."""
    if monitor is None or isinstance(monitor, tuple | list):
        return None if monitor is None else tuple(monitor)
    if monitor.strip() == "all":
        return MONITORS
    return tuple(p.strip() for p in monitor.split(",") if p.strip())


def split_data(ds, train_size: int | None = None, validation=0, seed: int | None = 0):
    """((x_train, y_train), (x_val, y_val) or None): validation carved from the training set.

    Parameters
    ----------
    ds : Dataset
    train_size : keep only the first N training images first (None: all).
    validation : a count (1000), a fraction (0.1), 0/None for none, or that as
        text; or a fixed validation set (x_val, y_val), used as it is.
    seed : seeds the stratified split.
    """
    x, y = ds.x_train, ds.y_train
    if train_size is not None:
        check_int("train-size", train_size, low=1, high=len(x), hint=f"({ds.name})")
        x, y = x[:train_size], y[:train_size]
    if isinstance(validation, tuple):
        return (x, y), validation
    val = parse_validation(None if validation is None else str(validation))
    if not val:
        return (x, y), None
    train_idx, val_idx = stratified_split(y, val, seed)
    return (x[train_idx], y[train_idx]), (x[val_idx], y[val_idx])


def _first(epoch_data, n: int):
    """`epoch_data` cut to each epoch's first `n` examples, as ``train_size`` cuts the first."""

    def first(epoch):
        xe, ye = epoch_data(epoch)
        return xe[:n], ye[:n]

    return first


def train(
    model,
    dataset,
    *,
    epochs: int = 30,
    batch_size: int = 10,
    optimizer="sgd",
    eta: float | None = None,
    lmbda: float = 0.0,
    cost: str = "cross-entropy",
    task=None,
    validation=0,
    train_size: int | None = None,
    early_stop: int = 0,
    eta_schedule: int = 0,
    monitor=None,
    seed: int | None = 0,
    transform=None,
    exact_train_metrics: bool = False,
    epoch_data=None,
    out=None,
    metrics=None,
    plot=None,
    overwrite: bool = False,
    callbacks=(),
    xp=None,
    backend_name: str | None = None,
    dtype="float32",
    title: str = "",
) -> TrainResult:
    """Train `model` on `dataset`, test it once, write what was asked; see the module text.

    Parameters
    ----------
    model : Sequential, built or not (an unbuilt one is built on `xp` in
        `dtype` with `seed`).
    dataset : a Dataset, or a dataset name or path for ``load_dataset``; for
        tasks other than classification, any object with ``name``,
        ``x_train``, ``y_train``, ``x_test``, ``y_test`` and ``class_names``
        whose labels the task's ``targets`` takes.
    epochs, batch_size, lmbda, early_stop, eta_schedule, seed, transform,
    exact_train_metrics, epoch_data : as in :func:`cvtool.nn.fit.fit`.
    optimizer : 'sgd', 'momentum', 'adam' or an ``optim.Optimizer``.
    eta : learning rate (None: the optimiser's default, ``cnn.DEFAULT_ETA``, a tenth
        of it for a fine-tuned model).
    cost : cost name (quadratic, cross-entropy, log-likelihood) of a classifier.
    task : what the network learns (:mod:`cvtool.nn.tasks`); None means
        classification with `cost`.
    validation : validation split: count, fraction, 0 for none, or (x_val, y_val).
    train_size : use only the first N training images.
    monitor : names from ``fit.MONITORS``, a comma list, 'all' or None.
    out, metrics, plot : model file (.npz, checkpointed at each improvement),
        history (.csv/.json) and learning curves (.png), or None.
    overwrite : replace existing output files (``--force``); without it an
        existing file is refused before any work.
    callbacks : ``fit`` callbacks (progress, reporting), called in order.
    xp, dtype : backend module and float type for an unbuilt model.
    backend_name : when `xp` is None: 'numpy', 'cupy' or 'auto' (None: $CVTOOL_BACKEND,
        else auto), chosen by ``backend.choose`` from the network's multiply-adds
        per step (a small step stays on NumPy); the reason goes in
        ``model.meta['backend_reason']`` for the run's header.
    title : the plot's title.

    Returns
    -------
    TrainResult

    Raises
    ------
    CvtoolError
        Bad options or outputs (before any work), a network whose output does
        not fit the classes, or a cost that became NaN/infinite.
    """
    check_options(epochs=epochs, batch_size=batch_size, early_stop=early_stop,
                  eta_schedule=eta_schedule, out=out, metrics=metrics, plot=plot,
                  overwrite=overwrite)  # fmt: skip
    ds = load_dataset(dataset) if isinstance(dataset, str | Path) else dataset
    task = get_task(cost if task is None else task)
    if isinstance(optimizer, str):
        if eta is None:  # a tenth of the default when fine-tuning a saved model
            eta = default_eta(optimizer, finetune="finetuned_from" in model.meta)
        opt = get_optimizer(optimizer, eta, lmbda)
    else:
        opt = optimizer
    train_xy, val_xy = split_data(ds, train_size, validation, seed)
    if epoch_data is not None and train_size is not None:
        epoch_data = _first(epoch_data, train_size)
    if model.xp is None and xp is None:  # auto picks the GPU only where a step pays
        macs = sum(r["macs"] for r in model.summary()) * batch_size
        choice = backend.choose(backend_name, macs_per_step=macs)
        xp = choice.xp
        model.meta["backend_reason"] = f"{choice.name}: {choice.reason}"
    check_memory(model, batch_size, dtype if model.dtype is None else model.dtype,
                 model.xp if model.xp is not None else xp)  # fmt: skip
    if model.xp is None:
        model.build(xp, dtype, seed=seed)
    model.class_names = tuple(ds.class_names)
    task.check(model, ds)
    model.meta["dataset"] = ds.name
    checkpoint = ModelCheckpoint(out) if out is not None else None
    with training_threads(model.xp):
        hist = model.fit(
            train_xy[0], train_xy[1], epochs=epochs, batch_size=batch_size, optimizer=opt,
            loss=task, validation=val_xy, early_stop=early_stop, eta_schedule=eta_schedule,
            monitor=parse_monitor(monitor), callback=CallbackList([*callbacks, checkpoint]),
            seed=seed, transform=transform, exact_train_metrics=exact_train_metrics,
            epoch_data=epoch_data,
        )  # fmt: skip
        if hist.stopped == "nan":
            if metrics is not None:  # the diverging epochs are worth keeping
                write_history(metrics, hist.records)
            last = hist.records[-1]
            kept = f"; the best model so far is in {out}" if checkpoint and checkpoint.saved else ""
            raise CvtoolError(
                f"the cost became NaN or infinite at epoch {last['epoch']}: eta {last['eta']:g} "
                f"is too large for this network; try --eta {last['eta'] / 10:g}{kept}."
            )
        test = None
        if len(ds.x_test):
            try:
                test = task.evaluate(model, ds.x_test, ds.y_test)  # the one look at the test split
            except KeyboardInterrupt:  # Ctrl-C in the test pass: keep the model and history
                hist.stopped = "interrupted"
            else:
                model.meta["metrics"] = {
                    f"test_{k}": v for k, v in test.items() if isinstance(v, int | float)
                }
    if out is not None:
        model.save(out)
    if metrics is not None:
        write_history(metrics, hist.records)
    if plot is not None:
        from cvtool.plots import plot_history

        plot_history(hist.records, plot, title=title or f"training on {ds.name}")
    return TrainResult(
        model=model, dataset=ds.name, history=hist, n_train=len(train_xy[0]),
        n_val=0 if val_xy is None else len(val_xy[0]), test=test,
        checkpoints=checkpoint.saved if checkpoint else 0,
        out=None if out is None else Path(out),
    )  # fmt: skip
