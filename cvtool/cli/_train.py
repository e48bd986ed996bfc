"""Shared pieces of the training commands (train-mlp, train-cnn): rendering only.

Option aliases defined once (defaults stay in each command's signature), the
run reporter (a ``fit`` callback: the header and the layer table on stdout once
every option was accepted, a progress bar and one row per epoch on stderr) and
``render_result``. The training itself is one library call,
``cvtool.nn.train.train``; a run stopped by Ctrl-C exits with 130 after its
result is printed.

Only Typer and the standard library at import time; NumPy users are imported
inside the functions.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

EtaOpt = Annotated[float, typer.Option("--eta", help="Learning rate η.")]
EpochsOpt = Annotated[int, typer.Option("--epochs", help="Passes over the training data.")]
BatchOpt = Annotated[
    int,
    typer.Option("--batch-size", "--batch", "--mini-batch", help="Examples per gradient step."),
]
LmbdaOpt = Annotated[
    float, typer.Option("--lmbda", help="L2 regularisation λ (cost term λ/2n·Σw²; 0 = none).")
]
OptimizerOpt = Annotated[str, typer.Option("--optimizer", help="sgd, momentum (μ = 0.9) or adam.")]
InitOpt = Annotated[
    str,
    typer.Option(
        "--init",
        help="Weights: default N(0,1/n_in), large N(0,1), he, glorot, pytorch (U(+-1/sqrt(n_in))).",
    ),
]
CostOpt = Annotated[
    str, typer.Option("--cost", help="quadratic, cross-entropy (sigmoid out) or log-likelihood.")
]
TrainSizeOpt = Annotated[
    int | None,
    typer.Option("--train-size", help="Use only the first N training images.", show_default=False),
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
ExactOpt = Annotated[
    bool,
    typer.Option(
        "--exact-train-metrics",
        help="Measure training cost/accuracy with a full pass after each epoch (Nielsen's "
        "monitor_training_accuracy) instead of the free running average of the epoch's "
        "mini-batches (Keras).",
    ),
]
# The detector's and segmenter's data: generated canvases (or a canvas folder).
CanvasSizeOpt = Annotated[
    int, typer.Option("--train-size", help="Training canvases (generated sets).")
]
CanvasValOpt = Annotated[int, typer.Option("--validation", help="Validation canvases (0 = none).")]
CanvasTestOpt = Annotated[int, typer.Option("--test-size", help="Test canvases (generated sets).")]
CanvasFreshOpt = Annotated[
    bool,
    typer.Option(
        "--fresh/--no-fresh",
        help="Draw new training canvases every epoch (generated sets; no overfitting to a "
        "fixed set).",
    ),
]
CanvasSourceOpt = Annotated[
    str,
    typer.Option("--source", help="Digits the canvases are made of: mnist-sample, fashion-mnist."),
]
# --augment of the detector and segmenter: boxes / label maps follow the images.
CanvasAugmentOpt = Annotated[
    bool,
    typer.Option(
        "--augment",
        help="Train on randomly shifted (up to a quarter of the image) and zoomed (0.9-1.1) "
        "copies of every epoch's images, their boxes / label maps moved with them.",
    ),
]
CanvasFlipOpt = Annotated[
    float,
    typer.Option(
        "--flip",
        help="With --augment: flip this share of the images left-right (0-1; default none, "
        "a mirrored digit is not a digit).",
    ),
]
MetricsOpt = Annotated[
    Path | None, typer.Option("--metrics", help="Per-epoch metrics to a .csv or .json file.")
]


def _metric_keys(record: dict) -> list[str]:
    """The per-epoch figures of a record, training ones first (train_cost, val_mean_iou, ...)."""
    keys = [k for k in record if k.startswith(("train_", "val_")) and k != "train_seconds"]
    return sorted(
        keys, key=lambda k: (not k.startswith("train_"), k != f"{k[: k.index('_')]}_cost")
    )


def _row_text(record: dict) -> tuple[str, str]:
    """(header, row) for one epoch record, aligned columns."""
    cols = [("epoch", "epoch", "{:>5d}")]
    for key in _metric_keys(record):
        label = key.replace("_", " ").replace("accuracy", "acc")[:10]
        cols.append((key, label, "{:>10.4f}"))
    cols += [("eta", "eta", "{:>8.4g}"), ("seconds", "seconds", "{:>8.2f}")]
    head = "  ".join(
        f"{label:>{max(5, len(label)) if k == 'epoch' else 10}}" for k, label, _ in cols
    )
    body = "  ".join(
        ("nan" if record[k] is None else f.format(record[k])).rjust(5 if k == "epoch" else 10)
        for k, _, f in cols
    )
    if "grad_norms" in record:
        head += "  gradient norms"
        body += "  " + " ".join(f"{n}={v:.3g}" for n, v in record["grad_norms"].items())
    return head, body


def layer_table(model, title: str = "Network (layer-calc)"):
    """The one layer table (the summary walker's rows), as a Rich table."""
    from cvtool.render import make_table
    from cvtool.summary import parse_columns, summary_table

    rows = model.summary()
    headers, body = summary_table(
        {"rows": rows, "input_shape": model.input_shape}, parse_columns("layer,type,output,params")
    )
    return make_table(headers, body, title=title, footer=["", "", "total", model.count_params()])


class Reporter:
    """fit's callback for a terminal: header and layer table, progress bar, a row per epoch."""

    def __init__(self, command: str, json_out: bool):
        from cvtool import render

        self.command, self.json_out = command, json_out
        self.console = render.stderr()
        self.progress = render.progress() if sys.stderr.isatty() else None
        self.task = None
        self.header_done = False

    def __enter__(self):
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc):
        if self.progress is not None:
            self.progress.stop()
        return False

    def on_train_begin(self, model, info) -> None:
        # Called once every option was accepted: nothing reaches stdout before that.
        if self.json_out:
            return
        from cvtool import backend, render

        render.header(self.command, dataset=model.meta.get("dataset"),
                      backend=model.meta.get("backend_reason", backend.backend_name(model.xp)),
                      dtype=str(model.dtype),
                      train=info["n_train"], validation=info["n_val"],
                      params=model.count_params(),
                      train_metrics=info["train_metrics"])  # fmt: skip
        render.render({}, json_out=False, tables=[layer_table(model)], summary={})

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


def render_result(command: str, result, json_out: bool) -> None:
    """The trainers' output: one JSON document, or the result and epoch tables; exit 130
    after a Ctrl-C."""
    from cvtool import render

    doc = {"command": command, **result.to_dict()}
    if json_out:
        render.render(doc, json_out=True)
    else:
        keys = ("epochs_run", "stopped", "best_epoch", "train_seconds_per_epoch", "n_test", "model")
        summary = {k: doc[k] for k in keys}
        for k, v in (doc.get("test") or {}).items():  # the task's test figures
            if k != "n" and isinstance(v, int | float):
                summary[f"test_{k}"] = v
        if result.test is not None:
            summary["note"] = "test split evaluated once, after training"
        rows = doc["history"]
        step = max(1, -(-len(rows) // 25))
        shown = [r for i, r in enumerate(rows) if i % step == 0 or i == len(rows) - 1]
        cols = ["epoch", *_metric_keys(rows[0]), "eta", "seconds"] if rows else []
        title = "Epochs" if step == 1 else f"Epochs (every {step}th shown; all in --json/--metrics)"
        table = render.make_table(cols, [[r.get(c) for c in cols] for r in shown], title=title)
        render.render(doc, json_out=False, title=f"{command}: result", tables=[table],
                      summary=summary)  # fmt: skip
    if result.interrupted:
        raise typer.Exit(130)
