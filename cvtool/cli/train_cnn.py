"""cvtool train-cnn: convolutional networks (conv, pooling, dropout, Adam), as Keras users expect."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cvtool.cli import _train as T
from cvtool.cli._common import (
    BackendOpt,
    DatasetOpt,
    DtypeOpt,
    ForceOpt,
    JsonOpt,
    OutOpt,
    PlotOpt,
    SeedOpt,
    ValidationOpt,
    user_errors,
)

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


def train_cnn_cmd(
    arch: ArchOpt = None,
    preset: PresetOpt = None,
    optimizer: T.OptimizerOpt = "adam",
    eta: EtaOpt = None,
    batch_size: T.BatchOpt = 128,
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
    validation: ValidationOpt = "0",
    early_stop: T.EarlyStopOpt = 0,
    eta_schedule: T.EtaScheduleOpt = 0,
    dataset: DatasetOpt = "mnist-sample",
    seed: SeedOpt = 0,
    backend: BackendOpt = None,
    dtype: DtypeOpt = "float32",
    monitor: T.MonitorOpt = None,
    exact_train_metrics: T.ExactOpt = False,
    out: OutOpt = None,
    force: ForceOpt = False,
    metrics: T.MetricsOpt = None,
    plot: PlotOpt = None,
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
        from cvtool.data.datasets import load_dataset
        from cvtool.nn import cnn
        from cvtool.nn.train import train

        dt = B.resolve_dtype(dtype)
        ds = load_dataset(dataset)
        model = cnn.make_model(arch, preset, ds.image_shape, init=init, init_from=init_from,
                               freeze=freeze, replace_head=replace_head, backend_name=backend,
                               dtype=dt,
                               seed=seed)  # fmt: skip
        transform = None
        if augment:
            transform, model.meta["augment"] = cnn.augmentation(seed, hflip=0.0 if no_flip else 0.5)
        with T.Reporter("train-cnn", json_out) as reporter:
            result = train(model, ds, epochs=epochs, batch_size=batch_size, optimizer=optimizer,
                           eta=eta, lmbda=lmbda, cost=cost, validation=validation,
                           train_size=train_size, early_stop=early_stop,
                           eta_schedule=eta_schedule, monitor=monitor,
                           exact_train_metrics=exact_train_metrics, seed=seed,
                           transform=transform, out=out, metrics=metrics, plot=plot, overwrite=force,
                           callbacks=[reporter], backend_name=backend, dtype=dt,
                           title=f"train-cnn on {ds.name}")  # fmt: skip
    T.render_result("train-cnn", result, json_out)
