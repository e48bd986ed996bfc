"""cvtool train-mlp: Nielsen's fully connected network, trained by backpropagation."""

from __future__ import annotations

from typing import Annotated

import typer

from cvtool.cli import _train as T
from cvtool.cli._common import BackendOpt, DatasetOpt, DtypeOpt, JsonOpt, SeedOpt, user_errors

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


def model_from_layers(layers: str, activation: str, cost: str, init: str, input_size: int):
    """A Sequential from '784,30,10' (sizes) or a spec text; not built yet."""
    from cvtool.errors import CvtoolError
    from cvtool.nn import spec as S
    from cvtool.nn.losses import get_loss
    from cvtool.nn.model import Sequential

    text = S.PRESETS.get(layers, layers)
    if ":" not in text and any(p.strip().isdigit() for p in text.split(",")):  # 784,30,10
        specs = S.layers_from_sizes(text, activation)
        if specs[0]["shape"] != (input_size,):
            raise CvtoolError(
                f"The first --layers size must be the input size {input_size}. "
                f"Got {specs[0]['shape'][0]} in {layers!r}."
            )
        out_act = get_loss(cost).fused or activation  # the cost's matching output activation
        last = specs[-1]
        specs[-1] = S.LayerSpec("dense", {**last.args, "activation": out_act},
                                f"dense:{last['units']}:{out_act}")  # fmt: skip
        return Sequential.from_spec(specs, init=init)
    return Sequential.from_spec(S.parse_spec(text), (input_size,), init=init)


def train_mlp_cmd(
    layers: LayersOpt = "784,30,10",
    activation: ActivationOpt = "sigmoid",
    cost: T.CostOpt = "cross-entropy",
    eta: T.EtaOpt = 0.5,
    mini_batch: T.MiniBatchOpt = 10,
    epochs: T.EpochsOpt = 30,
    lmbda: T.LmbdaOpt = 0.0,
    init: T.InitOpt = "default",
    optimizer: T.OptimizerOpt = "sgd",
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
    """Train a fully connected network by backpropagation (Nielsen's network).

    With no options: [784, 30, 10] sigmoid network, cross-entropy cost, SGD
    eta 0.5, mini-batch 10, 30 epochs on mnist-sample; then one look at its
    test split.
    """
    with user_errors():
        from cvtool import backend as B

        xp = B.get_xp(backend)
        dt = B.resolve_dtype(dtype)
        opts = T.TrainOptions(eta=eta, epochs=epochs, mini_batch=mini_batch, lmbda=lmbda,
                              optimizer=optimizer, cost=cost, early_stop=early_stop,
                              eta_schedule=eta_schedule, monitor=monitor, seed=seed,
                              out=out, metrics=metrics, plot=plot, json_out=json_out)  # fmt: skip
        ds, train, val = T.prepare_data(dataset, train_size, validation, seed)
        from cvtool.shapes import flatten_output

        (input_size,) = flatten_output(ds.image_shape)
        model = model_from_layers(layers, activation, cost, init, input_size)
        T.run_training("train-mlp", model, ds, train, val, opts, xp=xp, dtype=dt)
