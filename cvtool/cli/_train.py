"""Shared pieces of the training commands (train-mlp, train-cnn).

Option aliases defined once (defaults stay in each command's signature), the
data preparation (``--train-size``, ``--validation``), the run reporter
(progress bar and one row per epoch on stderr, a checkpoint at each
improvement), and ``run_training``, which trains a model (building it unless it
comes built, e.g. loaded for fine-tuning), touches the
test split once at the end, writes ``--out`` / ``--metrics`` / ``--plot`` and
renders the result. Ctrl-C stops cleanly: the best model so far is kept and
written atomically, the results are printed, and the exit code is 130. A cost
that becomes NaN or infinite stops the run with exit code 2 and a hint.

Only Typer and the standard library at import time; NumPy users are imported
inside the functions.
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from cvtool.errors import CvtoolError

EtaOpt = Annotated[float, typer.Option("--eta", help="Learning rate η.")]
EpochsOpt = Annotated[int, typer.Option("--epochs", help="Passes over the training data.")]
MiniBatchOpt = Annotated[
    int, typer.Option("--mini-batch", "--batch-size", help="Examples per gradient step.")
]
LmbdaOpt = Annotated[
    float, typer.Option("--lmbda", help="L2 regularisation λ (cost term λ/2n·Σw²; 0 = none).")
]
OptimizerOpt = Annotated[str, typer.Option("--optimizer", help="sgd, momentum (μ = 0.9) or adam.")]
InitOpt = Annotated[
    str,
    typer.Option("--init", help="Weights: default N(0,1/n_in), large N(0,1), he, glorot."),
]
CostOpt = Annotated[
    str, typer.Option("--cost", help="quadratic, cross-entropy (sigmoid out) or log-likelihood.")
]
TrainSizeOpt = Annotated[
    int | None,
    typer.Option("--train-size", help="Use only the first N training images.", show_default=False),
]
ValidationOpt = Annotated[
    str,
    typer.Option(
        "--validation",
        help="Validation split carved from training data: a count (1000) or a fraction (0.1); "
        "0 = none.",
    ),
]
EarlyStopOpt = Annotated[
    int,
    typer.Option(
        "--early-stop",
        help="Stop after N epochs without validation-accuracy improvement and restore the best "
        "epoch (0 = off).",
    ),
]
EtaScheduleOpt = Annotated[
    int,
    typer.Option(
        "--eta-schedule",
        help="Halve η after N epochs without validation improvement; stop at η0/128 (0 = off).",
    ),
]
MonitorOpt = Annotated[
    str | None,
    typer.Option(
        "--monitor",
        help="Comma list of train-cost, train-accuracy, val-cost, val-accuracy, gradients, or "
        "'all'. Default: training cost and accuracy, or validation cost and accuracy.",
        show_default=False,
    ),
]
OutOpt = Annotated[
    Path | None,
    typer.Option("--out", help="Save the model here (.npz; checkpointed at each improvement)."),
]
MetricsOpt = Annotated[
    Path | None, typer.Option("--metrics", help="Per-epoch metrics to a .csv or .json file.")
]
PlotOpt = Annotated[
    Path | None,
    typer.Option("--plot", help="Cost and accuracy against epoch, written to a .png file."),
]


@dataclass
class TrainOptions:
    """Everything ``run_training`` needs besides the model and the data."""

    eta: float
    epochs: int
    mini_batch: int
    lmbda: float
    optimizer: str
    cost: str
    early_stop: int = 0
    eta_schedule: int = 0
    monitor: str | None = None
    seed: int = 0
    out: Path | None = None
    metrics: Path | None = None
    plot: Path | None = None
    json_out: bool = False
    transform: Callable | None = None  # fit's per-mini-batch input transform (augmentation)


def parse_monitor(text: str | None):
    """'val-cost,gradients' -> ('val-cost', 'gradients'); None keeps fit's default."""
    from cvtool.nn.model import MONITORS

    if text is None:
        return None
    if text.strip() == "all":
        return MONITORS
    return tuple(p.strip() for p in text.split(",") if p.strip())


def prepare_data(dataset: str, train_size: int | None, validation: str, seed: int):
    """(Dataset, (x_train, y_train), (x_val, y_val) or None), validation carved from train."""
    from cvtool.data.datasets import load_dataset, parse_validation, stratified_split

    ds = load_dataset(dataset)
    x, y = ds.x_train, ds.y_train
    if train_size is not None:
        if not 1 <= train_size <= len(x):
            raise CvtoolError(
                f"The 'train-size' parameter must be in 1..{len(x)} for {ds.name}. "
                f"Got {train_size} instead."
            )
        x, y = x[:train_size], y[:train_size]
    val = parse_validation(validation)
    if not val:
        return ds, (x, y), None
    train_idx, val_idx = stratified_split(y, val, seed)
    return ds, (x[train_idx], y[train_idx]), (x[val_idx], y[val_idx])


def _row_text(record: dict) -> tuple[str, str]:
    """(header, row) for one epoch record, aligned columns."""
    cols = [("epoch", "epoch", "{:>5d}")]
    for key, label in (("train_cost", "train cost"), ("train_accuracy", "train acc"),
                       ("val_cost", "val cost"), ("val_accuracy", "val acc")):  # fmt: skip
        if key in record:
            cols.append((key, label, "{:>10.4f}"))
    cols += [("eta", "eta", "{:>8.4g}"), ("seconds", "seconds", "{:>8.2f}")]
    head = "  ".join(
        f"{label:>{max(5, len(label)) if k == 'epoch' else 10}}" for k, label, _ in cols
    )
    body = "  ".join(f.format(record[k]).rjust(5 if k == "epoch" else 10) for k, _, f in cols)
    if "grad_norms" in record:
        head += "  gradient norms"
        body += "  " + " ".join(f"{n}={v:.3g}" for n, v in record["grad_norms"].items())
    return head, body


class Reporter:
    """fit's callback: progress bar (stderr tty only), a row per epoch, checkpoints."""

    def __init__(self, checkpoint: Path | None):
        from cvtool import render

        self.checkpoint = checkpoint
        self.console = render.stderr()
        self.progress = render.progress() if sys.stderr.isatty() else None
        self.task = None
        self.header_done = False
        self.checkpoints = 0

    def __enter__(self):
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc):
        if self.progress is not None:
            self.progress.stop()
        return False

    def on_train_begin(self, model, info) -> None: ...

    def on_epoch_begin(self, epoch: int, steps: int) -> None:
        if self.progress is not None:
            if self.task is not None:
                self.progress.remove_task(self.task)
            self.task = self.progress.add_task(f"epoch {epoch}", total=steps)

    def on_progress(self, epoch: int, done: int, steps: int) -> None:
        if self.progress is not None:
            self.progress.update(self.task, completed=done)

    def on_epoch_end(self, record: dict, model, improved: bool) -> None:
        head, body = _row_text(record)
        if not self.header_done:
            self.console.print(head, markup=False, highlight=False)
            self.header_done = True
        self.console.print(body + ("  *" if improved else ""), markup=False, highlight=False)
        if improved and self.checkpoint is not None:
            model.save(self.checkpoint)
            self.checkpoints += 1


def flat_records(records: list[dict]) -> list[dict]:
    """Per-epoch rows with gradient norms as 'grad_norm:LAYER' columns."""
    rows = []
    for r in records:
        row = {k: v for k, v in r.items() if k != "grad_norms"}
        for name, v in r.get("grad_norms", {}).items():
            row[f"grad_norm:{name}"] = v
        rows.append(row)
    return rows


def write_metrics(path: Path, records: list[dict]) -> None:
    """Per-epoch metrics as CSV (one row per epoch) or JSON (a list), by extension."""
    import csv
    import io
    import json

    from cvtool.fileio import atomic_write_text

    _check_metrics(path)
    rows = flat_records(records)
    if path.suffix.lower() == ".json":
        atomic_write_text(path, json.dumps({"epochs": rows}, indent=2) + "\n")
    else:
        keys = list(dict.fromkeys(k for r in rows for k in r))
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(path, buf.getvalue())


def _check_metrics(path: Path) -> None:
    if path.suffix.lower() not in (".csv", ".json"):
        raise CvtoolError(f"--metrics must end in .csv or .json. Got {str(path)!r}.")


def _check_outputs(opts: TrainOptions) -> None:
    # Fail before training, not after an hour of it.
    if opts.out is not None and opts.out.suffix != ".npz":
        raise CvtoolError(f"--out must end in .npz. Got {str(opts.out)!r}; e.g. --out model.npz.")
    if opts.metrics is not None:
        _check_metrics(opts.metrics)
    if opts.plot is not None and opts.plot.suffix.lower() != ".png":
        raise CvtoolError(f"--plot must end in .png. Got {str(opts.plot)!r}.")


def run_training(command: str, model, ds, train, val, opts: TrainOptions, *, xp, dtype) -> None:
    """Train `model` on `train`, evaluate on ds's test split once, report.

    An unbuilt `model` is built here (`xp`, `dtype`, seed ``opts.seed``); a
    built one (e.g. from ``cnn.finetune_model``) is trained as it is.
    """
    from cvtool import backend, render
    from cvtool.cli._common import fail
    from cvtool.nn.optim import get_optimizer

    _check_outputs(opts)
    opt = get_optimizer(opts.optimizer, opts.eta, opts.lmbda)
    if model.xp is None:
        model.build(xp, dtype, seed=opts.seed)
    model.class_names = tuple(ds.class_names)
    k = model.output_shape[-1]
    if len(model.output_shape) != 1 or k < ds.num_classes:
        raise CvtoolError(
            f"The network's output {model.output_shape} must be ({ds.num_classes},): one unit per "
            f"class of {ds.name}. Change the last layer's size."
        )
    if not opts.json_out:
        render.header(command, dataset=ds.name, backend=backend.backend_name(xp),
                      dtype=str(model.dtype), train=len(train[0]),
                      validation=0 if val is None else len(val[0]),
                      params=model.count_params())  # fmt: skip
    with Reporter(opts.out) as reporter:
        hist = model.fit(
            train[0], train[1], epochs=opts.epochs, batch_size=opts.mini_batch, optimizer=opt,
            loss=opts.cost, validation=val, early_stop=opts.early_stop,
            eta_schedule=opts.eta_schedule, monitor=parse_monitor(opts.monitor),
            callback=reporter, seed=opts.seed, transform=opts.transform,
        )  # fmt: skip
    if hist.stopped == "nan":
        if opts.metrics is not None:  # the diverging epochs are worth keeping
            write_metrics(opts.metrics, hist.records)
        last = hist.records[-1]
        kept = f"; the best model so far is in {opts.out}" if reporter.checkpoints else ""
        fail(
            f"the cost became NaN or infinite at epoch {last['epoch']}: eta {last['eta']:g} is "
            f"too large for this network; try --eta {last['eta'] / 10:g}{kept}."
        )
    test = None
    if len(ds.x_test):
        test = model.evaluate(ds.x_test, ds.y_test, opts.cost)  # the one look at the test split
        model.meta["metrics"] = {"test_accuracy": test["accuracy"], "test_cost": test["cost"]}
    model.meta["dataset"] = ds.name
    if opts.out is not None:
        model.save(opts.out)
    if opts.metrics is not None:
        write_metrics(opts.metrics, hist.records)
    if opts.plot is not None:
        from cvtool.plots import plot_history

        plot_history(hist.records, opts.plot, title=f"{command} on {ds.name}")
    _render(command, model, ds, hist, test, opts, xp)
    if hist.stopped == "interrupted":
        raise typer.Exit(130)


def _render(command, model, ds, hist, test, opts, xp) -> None:
    from cvtool import backend, render

    seconds = [r["train_seconds"] for r in hist.records]
    doc = {
        "command": command, "dataset": ds.name, "backend": backend.backend_name(xp),
        "dtype": str(model.dtype), "spec": model.spec_text, "params": model.count_params(),
        "layers": model.summary(), "config": model.meta.get("training", {}),
        "epochs_run": len(hist.records), "stopped": hist.stopped,
        "best_epoch": hist.best_epoch, "restored_best": hist.restored_best,
        "train_seconds_per_epoch": statistics.median(seconds) if seconds else None,
        "test_accuracy": None if test is None else test["accuracy"],
        "test_cost": None if test is None else test["cost"],
        "n_test": 0 if test is None else test["n"],
        "model": None if opts.out is None else str(opts.out),
        "history": flat_records(hist.records),
    }  # fmt: skip
    if opts.json_out:
        render.render(doc, json_out=True)
        return
    summary = {k: doc[k] for k in ("epochs_run", "stopped", "best_epoch",
                                   "train_seconds_per_epoch", "test_accuracy", "test_cost",
                                   "n_test", "model")}  # fmt: skip
    if test is not None:
        summary["note"] = "test split evaluated once, after training"
    rows = doc["history"]
    step = max(1, -(-len(rows) // 25))
    shown = [r for i, r in enumerate(rows) if i % step == 0 or i == len(rows) - 1]
    cols = [c for c in ("epoch", "train_cost", "train_accuracy", "val_cost", "val_accuracy",
                        "eta", "seconds") if rows and c in rows[0]]  # fmt: skip
    title = "Epochs" if step == 1 else f"Epochs (every {step}th shown; all in --json/--metrics)"
    tables = [
        render.make_table(
            ["Layer", "Type", "Output shape", "Params"],
            [[r["name"], r["type"], str(r["output_shape"]), r["params"]] for r in doc["layers"]],
            title="Model",
            footer=["", "", "total", doc["params"]],
        ),
        render.make_table(cols, [[r.get(c) for c in cols] for r in shown], title=title),
    ]
    render.render(doc, json_out=False, title=f"{command}: result", tables=tables, summary=summary)
