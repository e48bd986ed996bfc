"""cvtool evaluate / predict: use any saved model (train-mlp's or train-cnn's)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cvtool.cli._common import BackendOpt, DatasetOpt, JsonOpt, spinner, user_errors

ModelArg = Annotated[Path, typer.Argument(help="A model file written by --out (.npz).")]
PredictModelArg = Annotated[
    Path,
    typer.Argument(
        help="A model file written by --out (.npz), or one exported by 'cvtool export' (.onnx, "
        "run by ONNX Runtime on the CPU)."
    ),
]


def _load(model_path: Path, backend: str | None):
    from cvtool.nn.model import Sequential

    return Sequential.load(model_path, backend_name=backend)


def evaluate_cmd(
    model_path: ModelArg,
    dataset: DatasetOpt = None,
    split: Annotated[str, typer.Option("--split", help="test or train.")] = "test",
    backend: BackendOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Accuracy, cost, per-class accuracy and confusion matrix on a dataset's split.

    Without --dataset, the data set the model was trained on.
    """
    with user_errors():
        from cvtool import render
        from cvtool.data.datasets import load_dataset
        from cvtool.errors import CvtoolError, check_choice
        from cvtool.nn.inference import class_labels

        check_choice("split", split, ("test", "train"))
        model = _load(model_path, backend)
        name = dataset or model.meta.get("dataset", "mnist-sample")
        with spinner(f"evaluate: loading {name}"):
            ds = load_dataset(name)
        x, y = (ds.x_test, ds.y_test) if split == "test" else (ds.x_train, ds.y_train)
        if not len(x):
            raise CvtoolError(f"Dataset {ds.name} has no {split} split.")
        with spinner(f"evaluate: {len(x)} images"):
            result = model.evaluate(x, y)
    k = len(result["confusion"])
    names = class_labels(model.class_names or ds.class_names, k)
    support = result["support"]
    doc = {
        "model": str(model_path), "dataset": ds.name, "split": split, "n": result["n"],
        "accuracy": result["accuracy"], "cost": result["cost"],
        "cost_name": model.meta.get("training", {}).get("cost", "quadratic"),
        "class_names": names, "per_class_accuracy": result["per_class_accuracy"],
        "support": support, "confusion": result["confusion"],
    }  # fmt: skip
    per_class = render.make_table(
        ["class", "name", "support", "accuracy"],
        [[i, names[i], int(support[i]), float(result["per_class_accuracy"][i])]
         for i in range(k)],
        title="Per-class accuracy",
    )  # fmt: skip
    confusion = render.make_table(
        ["true \\ predicted", *[str(i) for i in range(k)]],
        [[f"{i} {names[i]}", *map(int, row)] for i, row in enumerate(result["confusion"])],
        title="Confusion matrix (rows: true class)",
    )
    summary = {k_: doc[k_] for k_ in ("model", "dataset", "split", "n", "accuracy", "cost")}
    render.render(doc, json_out=json_out, title="evaluate", summary=summary,
                  tables=[per_class, confusion])  # fmt: skip


def predict_cmd(
    model_path: PredictModelArg,
    inputs: Annotated[
        list[Path],
        typer.Argument(
            help="PNG/JPEG images, a .npy array or a data file/folder; '-' reads one .npy array "
            "or image from stdin. Float images above 1 are taken as 0..255 and divided by 255 "
            "(the training rule); NaN/inf are refused."
        ),
    ],
    top: Annotated[int, typer.Option("--top", help="Classes listed per input.")] = 3,
    backend: BackendOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Predict the class and probabilities of each input with a saved model."""
    with user_errors():
        from cvtool import render
        from cvtool.errors import check_int
        from cvtool.nn.export import load_model
        from cvtool.nn.inference import predictions, read_inputs

        check_int("top", top, low=1)
        from cvtool.errors import CvtoolError

        if [str(p) for p in (model_path, *inputs)].count("-") > 1:
            raise CvtoolError("Only one of MODEL and the inputs can be '-' (stdin).")
        model = load_model(model_path, backend_name=backend)  # .npz, or .onnx through ORT
        with spinner("predict"):
            x, names = read_inputs(inputs, model.input_shape)
            rows = predictions(model.predict_proba(x), model.class_names, top)
    for name, row in zip(names, rows, strict=True):
        row["input"] = name
    doc = {"model": str(model_path), "predictions": rows}
    table = render.make_table(
        ["input", "class", "name", "probability", "top"],
        [[r["input"], r["class"], r["name"], r["probability"],
          " ".join(f"{t['class']}:{t['probability']:.2f}" for t in r["top"])]
         for r in rows],
        title="Predictions",
    )  # fmt: skip
    render.render(doc, json_out=json_out, summary={}, tables=[table])
