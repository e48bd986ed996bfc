"""`cvtool knn`: k-nearest-neighbour classification (thin: cvtool.knn does the work)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cvtool.cli._common import (
    BackendOpt,
    DatasetOpt,
    ForceOpt,
    JsonOpt,
    SeedOpt,
    ValidationOpt,
    check_out,
    one_of,
    report_stream,
    user_errors,
)

HELP = (
    "Classify images with k-nearest neighbours (L1, L2, cosine; k voting). Several k or "
    "metrics are compared on a validation split (or --folds) of the training set; the chosen "
    "pair is applied to the test set once. Ties: equal distances go to the smaller training "
    "index (exact for uint8 images; cosine up to 1459 values per image; float images tie "
    "only where float64 rounding makes them equal); tied votes go to the smallest label, "
    "as in scikit-learn."
)


def knn_cmd(
    dataset: DatasetOpt = None,
    train: Annotated[
        str | None, typer.Option("--train", help="Training data path (any readable format).")
    ] = None,
    test: Annotated[
        str | None,
        typer.Option("--test", help="Test data path (default: --train's test split)."),
    ] = None,
    k: Annotated[str, typer.Option("-k", "--k", help="Neighbours: one value or a list.")] = (
        "1,3,5,7,9"
    ),
    metric: Annotated[
        str, typer.Option("--metric", help="l1, l2 or cosine, or a list (l1,l2).")
    ] = "l2",
    weights: Annotated[
        str, typer.Option("--weights", help="uniform, or distance (1/d; duplicates win).")
    ] = "uniform",
    validation: ValidationOpt = None,
    folds: Annotated[
        int | None, typer.Option("--folds", help="k-fold cross-validation instead.")
    ] = None,
    seed: SeedOpt = 0,
    backend: BackendOpt = None,
    memory: Annotated[
        float, typer.Option("--memory", help="Working-memory budget in MB for distances.")
    ] = 128,  # knn.search.DEFAULT_MEMORY_MB (not imported: NumPy stays out of start-up)
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            help="Numba's L1 kernel and pruned exact L2 search: auto (if installed), numpy, numba.",
        ),
    ] = "auto",
    predictions: Annotated[
        Path | None,
        typer.Option(
            "--predictions", help="Write CSV: index,true,predicted,distance ('-': stdout)."
        ),
    ] = None,
    force: ForceOpt = False,
    json_out: JsonOpt = False,
) -> None:
    with user_errors():
        from cvtool import backend as be
        from cvtool import knn
        from cvtool.data.datasets import parse_validation
        from cvtool.errors import check_choice, check_int, check_number
        from cvtool.knn import eval as knn_eval
        from cvtool.render import progress

        ks = knn_eval.parse_ints(k, "k")
        metrics = knn_eval.parse_names(metric, "metric", knn.METRICS)
        check_choice("weights", weights, knn.WEIGHTS)
        check_choice("engine", engine, ("auto", "numpy", "numba"))
        check_number("memory", memory, low=0, low_open=True)
        if folds is not None:
            check_int("folds", folds, low=2)
        one_of(validation=validation, folds=folds)
        split = parse_validation(validation, allow_zero=False)
        one_of(dataset=dataset, train=train)
        one_of(dataset=dataset, test=test)
        check_out(predictions, force, "predictions file")
        xp = be.get_xp(backend)
        bar = progress()
        with bar:  # a spinner on stderr, silent off a terminal
            task = bar.add_task(f"loading {dataset or train or 'mnist-sample'}", total=None)
            name, ds = knn_eval.load_data(dataset or "mnist-sample", train, test)
            bar.update(task, description=f"k-NN: {len(ds.y_test)} test x {len(ds.y_train)} train")
            res = knn_eval.evaluate(
                ds.x_train, ds.y_train, ds.x_test, ds.y_test, ks=ks, metrics=metrics,
                weights=weights, validation=split, folds=folds, seed=seed, memory_mb=memory,
                xp=xp, engine=engine, class_names=ds.class_names,
            )  # fmt: skip
        if predictions is not None:
            knn_eval.write_predictions(
                predictions, res["truth"], res["predictions"], res["nearest"]
            )
    with report_stream(predictions):
        _show(res, name, be.backend_name(xp), json_out, predictions)


def _show(res: dict, name: str, backend: str, json_out: bool, predictions) -> None:
    from cvtool.render import header, make_table, render

    used = f"used once: k={res['k']}, metric={res['metric']}, weights={res['weights']}"
    doc = {
        "dataset": name, "backend": backend, "train_size": res["train_size"],
        "test_size": res["test_size"], "k": res["k"], "metric": res["metric"],
        "weights": res["weights"], "selection_method": res["selection_method"],
        "selection": res["selection"], "test_set": used, "accuracy": res["accuracy"],
        "per_class": res["per_class"], "labels": res["labels"], "confusion": res["confusion"],
        "seconds": res["seconds"], "peak_rss_mb": res["peak_rss_mb"],
        "predictions_file": str(predictions) if predictions else None,
    }  # fmt: skip
    if json_out:
        render(doc, json_out=True)
        return
    header("knn", backend=backend, dataset=name, train=res["train_size"], test=res["test_size"])
    if res["selection"]:
        rows = [
            [r["k"], r["metric"], r["accuracy"], "<- chosen" if r["chosen"] else ""]
            for r in res["selection"]
        ]
        title = f"Validation accuracy ({res['selection_method']})"
        render(
            {}, json_out=False, tables=[make_table(["k", "metric", "accuracy", ""], rows, title)]
        )
    per_class = make_table(
        ["label", "class", "images", "correct", "accuracy"],
        [
            [p["label"], p["name"], p["count"], p["correct"], p["accuracy"]]
            for p in res["per_class"]
        ],
        title="Per-class test accuracy",
    )
    labels = [str(x) for x in res["labels"]]
    confusion = make_table(
        ["true \\ pred", *labels],
        [[lab, *row] for lab, row in zip(labels, res["confusion"].tolist(), strict=True)],
        title="Confusion matrix (rows: true label, columns: predicted)",
    )
    summary = {"test set": used, "test accuracy": res["accuracy"]}
    render(doc, json_out=False, title="Test", tables=[per_class, confusion], summary=summary)
    cost = {
        "time (s)": f"{res['seconds']['total']:.2f} (selection {res['seconds']['validation']:.2f}, "
        f"test {res['seconds']['test']:.2f})",
        "peak memory (MiB, RSS)": f"{res['peak_rss_mb']:.0f}",
    }
    if predictions:
        cost["predictions"] = str(predictions)
    render({}, json_out=False, summary=cost)
