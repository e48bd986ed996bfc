"""cvtool train-detector: a YOLO-style grid detector on the shared engine, scored by COCO mAP."""

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
        help="Network spec without its input; {head} stands for 5B + C and {pool} for the "
        "pooling that reaches the grid. Default: cvtool.detect.DETECTOR (conv + batch norm).",
        show_default=False,
    ),
]


def train_detector_cmd(
    dataset: DatasetOpt = None,
    source: T.CanvasSourceOpt = "mnist-sample",
    train_size: T.CanvasSizeOpt = 2000,
    validation: T.CanvasValOpt = 200,
    test_size: T.CanvasTestOpt = 500,
    fresh: T.CanvasFreshOpt = True,
    augment: T.CanvasAugmentOpt = False,
    flip: T.CanvasFlipOpt = 0.0,
    arch: ArchOpt = None,
    grid: Annotated[int, typer.Option("--grid", help="S: the image is cut into S x S cells.")] = 8,
    boxes: Annotated[int, typer.Option("--boxes", help="B: boxes predicted per cell.")] = 2,
    loss: Annotated[
        str,
        typer.Option(
            "--loss", help="bce (BCE confidence, softmax classes; default) or v1 (YOLO v1's)."
        ),
    ] = "bce",
    lambda_coord: Annotated[float, typer.Option("--lambda-coord", help="Box-term weight.")] = 5.0,
    lambda_noobj: Annotated[
        float, typer.Option("--lambda-noobj", help="No-object confidence weight.")
    ] = 0.5,
    epochs: T.EpochsOpt = 30,
    batch_size: T.BatchOpt = 32,
    optimizer: T.OptimizerOpt = "adam",
    eta: Annotated[
        float | None,
        typer.Option("--eta", help="Learning rate (default: the optimiser's).", show_default=False),
    ] = None,
    lmbda: T.LmbdaOpt = 0.0,
    init: T.InitOpt = "pytorch",
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
    """Train a grid detector (S x S cells, B boxes, C classes) and score its test split once.

    With no options: 2,000 generated 64x64 canvases of mnist-sample digits (fresh ones
    every epoch), 200 validation and 500 test canvases (test digits never seen in
    training), an 8x8 grid with 2 boxes per cell, the default conv + batch-norm network,
    YOLO's loss with a BCE confidence, Adam, 30 epochs. Validation watches mAP@0.5; the
    test report gives COCO mAP, mAP@0.5 and per-class AP. --dataset takes a folder from
    'cvtool data make-canvas'. 'cvtool detect' runs the saved model.
    """
    with user_errors():
        from cvtool import backend as B
        from cvtool.augment import augment_option
        from cvtool.detect import detection_data, train_detector
        from cvtool.nn.train import check_options

        dt = B.resolve_dtype(dtype)
        augmenting = augment_option(augment, flip)
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
        data = detection_data(dataset, n_train=train_size, n_val=validation, n_test=test_size,
                              fresh=fresh, seed=seed, **canvases)  # fmt: skip
        with T.Reporter("train-detector", json_out) as reporter:
            result = train_detector(data, arch=arch, grid=grid, boxes_per_cell=boxes,
                                    variant=loss, lambda_coord=lambda_coord,
                                    lambda_noobj=lambda_noobj, epochs=epochs,
                                    batch_size=batch_size, optimizer=optimizer, eta=eta,
                                    lmbda=lmbda, augment=augmenting, init=init,
                                    early_stop=early_stop,
                                    eta_schedule=eta_schedule, seed=seed, out=out,
                                    metrics=metrics, plot=plot, overwrite=force,
                                    callbacks=[reporter], backend_name=backend, dtype=dt,
                                    title="train-detector")  # fmt: skip
    T.render_result("train-detector", result, json_out)
