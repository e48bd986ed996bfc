"""cvtool train-segmenter: an FCN with skips trained per pixel, scored by mean IoU."""

from __future__ import annotations

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
    user_errors,
)

ArchOpt = Annotated[
    str | None,
    typer.Option(
        "--arch",
        help="Network spec without its input; {classes} stands for the number of classes. "
        "Default: cvtool.segment.SEGMENTER (a small U-Net-like FCN with concat skips).",
        show_default=False,
    ),
]
WeightsOpt = Annotated[
    str,
    typer.Option(
        "--class-weights",
        help="auto (median frequency balancing), none, or one weight per class (w0,w1,...).",
    ),
]


def train_segmenter_cmd(
    dataset: DatasetOpt = None,
    source: T.CanvasSourceOpt = "mnist-sample",
    train_size: T.CanvasSizeOpt = 2000,
    validation: T.CanvasValOpt = 200,
    test_size: T.CanvasTestOpt = 500,
    fresh: T.CanvasFreshOpt = True,
    augment: T.CanvasAugmentOpt = False,
    flip: T.CanvasFlipOpt = 0.0,
    arch: ArchOpt = None,
    class_weights: WeightsOpt = "auto",
    epochs: T.EpochsOpt = 12,
    batch_size: T.BatchOpt = 32,
    optimizer: T.OptimizerOpt = "adam",
    eta: Annotated[float, typer.Option("--eta", help="Learning rate.")] = 3e-3,
    lmbda: T.LmbdaOpt = 0.0,
    early_stop: T.EarlyStopOpt = 0,
    eta_schedule: T.EtaScheduleOpt = 0,
    seed: SeedOpt = 0,
    backend: BackendOpt = None,
    dtype: DtypeOpt = "float32",
    out: OutOpt = None,
    force: ForceOpt = False,
    metrics: T.MetricsOpt = None,
    plot: PlotOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Train a segmenter (per-pixel classes) and score its test split once with mean IoU.

    With no options: 2,000 generated 64x64 canvases of mnist-sample digits (fresh ones
    every epoch), 200 validation and 500 test canvases (test digits never seen in
    training), 11 classes (background and ten digits), the default FCN, Adam at 3e-3, 12
    epochs. --dataset takes a folder from 'cvtool data make-canvas'. The test
    figures are those of 'cvtool iou seg' on the predicted label maps.
    """
    with user_errors():
        from cvtool import backend as B
        from cvtool.augment import augment_option
        from cvtool.nn.train import check_options
        from cvtool.segment import segmentation_data, train_segmenter
        from cvtool.segment.task import parse_weights

        dt = B.resolve_dtype(dtype)
        augmenting = augment_option(augment, flip)
        weights = parse_weights(class_weights)
        check_options(
            epochs=epochs,
            batch_size=batch_size,
            early_stop=early_stop,
            eta_schedule=eta_schedule,
            out=out,
            metrics=metrics,
            plot=plot,
            overwrite=force,
        )  # before the canvases are made (seconds)
        canvases = {"source": source} if dataset is None else {}
        data = segmentation_data(dataset, n_train=train_size, n_val=validation, n_test=test_size,
                                 fresh=fresh, seed=seed, **canvases)  # fmt: skip
        with T.Reporter("train-segmenter", json_out) as reporter:
            result = train_segmenter(data, arch=arch, weights=weights, epochs=epochs,
                                     batch_size=batch_size, optimizer=optimizer, eta=eta,
                                     lmbda=lmbda, augment=augmenting, early_stop=early_stop,
                                     eta_schedule=eta_schedule, seed=seed, out=out,
                                     metrics=metrics, plot=plot, overwrite=force,
                                     callbacks=[reporter], backend_name=backend, dtype=dt,
                                     title="train-segmenter")  # fmt: skip
    T.render_result("train-segmenter", result, json_out)
