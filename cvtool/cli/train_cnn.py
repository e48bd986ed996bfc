"""cvtool train-cnn: convolutional networks (conv, pooling, dropout, Adam), as Keras users expect."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer

from cvtool.cli import _train as T
from cvtool.cli._common import BackendOpt, DatasetOpt, DtypeOpt, JsonOpt, SeedOpt, user_errors

ArchOpt = Annotated[
    str | None,
    typer.Option(
        "--arch",
        help="Architecture spec, e.g. 'conv:32x3:relu, pool:2, flatten, dense:10:softmax' "
        "(grammar: cvtool layer-calc --help), a preset name or @file.",
        show_default=False,
    ),
]
PresetOpt = Annotated[
    str | None,
    typer.Option(
        "--preset",
        help="keras-course, keras-course-improved or nielsen-ch6 (the default).",
        show_default=False,
    ),
]
BatchOpt = Annotated[
    int, typer.Option("--batch", "--mini-batch", "--batch-size", help="Examples per step.")
]
EtaOpt = Annotated[
    float | None,
    typer.Option(
        "--eta",
        help="Learning rate. Default: adam 0.001, momentum 0.01, sgd 0.1; a tenth of it "
        "with --init-from.",
        show_default=False,
    ),
]
InitFromOpt = Annotated[
    Path | None,
    typer.Option("--init-from", help="Start from this saved model (.npz) to fine-tune it."),
]
FreezeOpt = Annotated[
    int, typer.Option("--freeze", help="With --init-from: do not train the first N weight layers.")
]
HeadOpt = Annotated[
    int | None,
    typer.Option(
        "--replace-head",
        help="With --init-from: a new, untrained last dense layer with this many classes.",
        show_default=False,
    ),
]
AugmentOpt = Annotated[
    bool,
    typer.Option(
        "--augment",
        help="Train on randomly shifted (±2 px), rotated (±10°) and flipped copies of each batch.",
    ),
]
NoFlipOpt = Annotated[bool, typer.Option("--no-flip", help="With --augment: no horizontal flips.")]
DEFAULT_PRESET = "nielsen-ch6"


def _print_summary(text: str) -> None:
    """The layer-calc table of the network about to be trained (human mode, stdout)."""
    from cvtool.nn.spec import parse_spec
    from cvtool.render import make_table, render
    from cvtool.summary import parse_columns, summarize, summary_table

    summary = summarize(parse_spec(text), floor=True)
    headers, rows = summary_table(summary, parse_columns("layer,type,output,params"))
    total = summary["totals"]["params"]
    table = make_table(headers, rows, title="Network (layer-calc)", footer=["", "", "total", total])
    render({}, json_out=False, tables=[table], summary={})


def train_cnn_cmd(
    arch: ArchOpt = None,
    preset: PresetOpt = None,
    optimizer: T.OptimizerOpt = "adam",
    eta: EtaOpt = None,
    batch: BatchOpt = 128,
    epochs: T.EpochsOpt = 3,
    lmbda: T.LmbdaOpt = 0.0,
    init: T.InitOpt = "glorot",
    cost: T.CostOpt = "log-likelihood",
    augment: AugmentOpt = False,
    no_flip: NoFlipOpt = False,
    init_from: InitFromOpt = None,
    freeze: FreezeOpt = 0,
    replace_head: HeadOpt = None,
    train_size: T.TrainSizeOpt = None,
    validation: T.ValidationOpt = "0",
    early_stop: T.EarlyStopOpt = 0,
    eta_schedule: T.EtaScheduleOpt = 0,
    dataset: DatasetOpt = "mnist-sample",
    seed: SeedOpt = 0,
    backend: BackendOpt = None,
    dtype: DtypeOpt = "float32",
    monitor: T.MonitorOpt = None,
    out: T.OutOpt = None,
    metrics: T.MetricsOpt = None,
    plot: T.PlotOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Train a convolutional network (NHWC, im2col convolutions) and test it once.

    With no options: the nielsen-ch6 network (conv 20 5x5, max-pool, conv 40
    5x5, max-pool, dense 100, softmax 10), Adam, batch 128, 3 epochs on
    mnist-sample. Fine-tune a saved model with --init-from MODEL --freeze N
    --replace-head CLASSES (the learning rate drops to a tenth).
    """
    with user_errors():
        from cvtool import backend as B
        from cvtool.errors import CvtoolError
        from cvtool.nn import cnn

        xp = B.get_xp(backend)
        dt = B.resolve_dtype(dtype)
        finetune = init_from is not None
        if not finetune and (freeze or replace_head is not None):
            raise CvtoolError("--freeze and --replace-head need --init-from MODEL.")
        if finetune and (arch is not None or preset is not None):
            raise CvtoolError("--init-from takes the saved model's network; drop --arch/--preset.")
        if eta is None:
            eta = cnn.default_eta(optimizer, finetune)
        opts = T.TrainOptions(eta=eta, epochs=epochs, mini_batch=batch, lmbda=lmbda,
                              optimizer=optimizer, cost=cost, early_stop=early_stop,
                              eta_schedule=eta_schedule, monitor=monitor, seed=seed,
                              out=out, metrics=metrics, plot=plot, json_out=json_out)  # fmt: skip
        ds, train, val = T.prepare_data(dataset, train_size, validation, seed)
        if finetune:
            model = cnn.finetune_model(init_from, freeze=freeze, replace_head=replace_head,
                                       xp=xp, dtype=dt, seed=seed)  # fmt: skip
        else:
            text = cnn.spec_text(arch, preset, DEFAULT_PRESET)
            model = cnn.cnn_model(text, ds.image_shape, init=init)
        if augment:
            opts.transform, model.meta["augment"] = cnn.augmentation(
                seed, hflip=0.0 if no_flip else 0.5
            )
        if not json_out:
            _print_summary(model.spec_text)
        from cvtool.nn.conv import training_threads

        with training_threads() if B.backend_name(xp) == "numpy" else contextlib.nullcontext():
            T.run_training("train-cnn", model, ds, train, val, opts, xp=xp, dtype=dt)
