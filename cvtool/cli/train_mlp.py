"""cvtool train-mlp: Nielsen's fully connected network, trained by backpropagation."""

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
    ValidationOpt,
    user_errors,
)

LayersOpt = Annotated[
    str,
    typer.Option(
        "--layers",
        help="Layer sizes as in Nielsen's Network([784, 30, 10]), or an architecture spec "
        "(e.g. 'input:784, dense:64:relu, dense:10:softmax'), a preset or @file.",
    ),
]
ActivationOpt = Annotated[
    str,
    typer.Option(
        "--activation",
        help="Hidden activation for --layers sizes: sigmoid, tanh, relu, identity. The output "
        "is softmax for log-likelihood, sigmoid for cross-entropy, else this one.",
    ),
]


def train_mlp_cmd(
    layers: LayersOpt = "784,30,10",
    activation: ActivationOpt = "sigmoid",
    cost: T.CostOpt = "cross-entropy",
    eta: T.EtaOpt = 0.5,
    batch_size: T.BatchOpt = 10,
    epochs: T.EpochsOpt = 30,
    lmbda: T.LmbdaOpt = 0.0,
    init: T.InitOpt = "default",
    optimizer: T.OptimizerOpt = "sgd",
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
    """Train a fully connected network by backpropagation (Nielsen's network).

    With no options: [784, 30, 10] sigmoid network, cross-entropy cost, SGD
    eta 0.5, mini-batch 10, 30 epochs on mnist-sample; then one look at its
    test split.
    """
    with user_errors():
        from cvtool import backend as B
        from cvtool.data.datasets import load_dataset
        from cvtool.nn.cnn import mlp_model
        from cvtool.nn.train import train
        from cvtool.shapes import flatten_output

        dt = B.resolve_dtype(dtype)
        ds = load_dataset(dataset)
        (input_size,) = flatten_output(ds.image_shape)
        model = mlp_model(layers, input_size, activation=activation, cost=cost, init=init)
        with T.Reporter("train-mlp", json_out) as reporter:
            result = train(model, ds, epochs=epochs, batch_size=batch_size, optimizer=optimizer,
                           eta=eta, lmbda=lmbda, cost=cost, validation=validation,
                           train_size=train_size, early_stop=early_stop,
                           eta_schedule=eta_schedule, monitor=monitor,
                           exact_train_metrics=exact_train_metrics, seed=seed, out=out,
                           metrics=metrics, plot=plot, overwrite=force, callbacks=[reporter], backend_name=backend, dtype=dt,
                           title=f"train-mlp on {ds.name}")  # fmt: skip
    T.render_result("train-mlp", result, json_out)
