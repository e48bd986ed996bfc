"""cvtool perceptron: truth tables of a perceptron, and the perceptron learning rule.

The arithmetic is ``cvtool.nn.perceptron`` (imported inside the command, it uses NumPy).
"""

from __future__ import annotations

from typing import Annotated

import typer

from cvtool.cli._common import JsonOpt, user_errors

HELP = """The course's perceptron: output 1 when w.x + b > 0, else 0.

With --weights and --bias (default -2,-2 and 3, Nielsen's NAND gate) it prints
the truth table over every binary input and names the gate if it is one.
With --learn AND|OR|NAND|NOR|XOR|XNOR it runs the perceptron learning rule
(w += eta (t - y) x, b += eta (t - y), from zero weights, inputs in counting
order) and reports whether it converged; XOR cannot, and the output says why.
"""


def _parse_weights(text: str) -> list[float]:
    from cvtool.errors import CvtoolError

    try:
        weights = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        weights = []
    if not weights:
        raise CvtoolError(
            f"The 'weights' parameter must be comma-separated numbers, e.g. -2,-2. Got {text!r}."
        )
    return weights


def perceptron_cmd(
    weights: Annotated[str, typer.Option("--weights", "-w", help="Comma-separated.")] = "-2,-2",
    bias: Annotated[float, typer.Option("--bias", "-b", help="The bias b.")] = 3.0,
    gate: Annotated[
        str | None,
        typer.Option("--learn", help="Gate to learn: AND, OR, NAND, NOR, XOR, XNOR."),
    ] = None,
    inputs: Annotated[int, typer.Option("--inputs", "-n", help="Inputs of the gate.")] = 2,
    eta: Annotated[float, typer.Option("--eta", help="Learning rate.")] = 1.0,
    epochs: Annotated[int, typer.Option("--epochs", help="Most epochs to run.")] = 100,
    json_out: JsonOpt = False,
) -> None:
    from cvtool.nn import perceptron as pc
    from cvtool.render import make_table, render

    with user_errors():
        from cvtool.errors import check_int, check_number

        check_number("bias", bias)
        check_int("inputs", inputs, low=1, high=16)
        check_number("eta", eta, low=0, low_open=True)
        check_int("epochs", epochs, low=1)
        if gate is None:
            w = _parse_weights(weights)
            for v in w:
                check_number("weights", v)
            doc = pc.truth_table(w, bias)
        else:
            result = pc.learn(gate, inputs, eta, epochs)
            doc = {
                **pc.truth_table(result.weights, result.bias),
                "learn": result.gate,
                "converged": result.converged,
                "epochs": result.epochs,
                "mistakes_per_epoch": result.mistakes,
                "cycle": result.cycle,
                "witness": result.witness,
                "reason": result.reason,
            }
            doc["target"] = pc.gate_targets(gate, inputs).tolist()
    n = len(doc["weights"])
    columns = [f"x{i + 1}" for i in range(n)] + ["w.x + b", "output"]
    rows = [[*x, z, y] for x, z, y in zip(doc["inputs"], doc["z"], doc["output"], strict=True)]
    if gate is not None:
        columns.append("target")
        rows = [[*r, t] for r, t in zip(rows, doc["target"], strict=True)]
    summary = {
        "weights": ", ".join(f"{v:g}" for v in doc["weights"]),
        "bias": f"{doc['bias']:g}",
    }
    summary["computes"] = doc["gate"] or "no named gate"
    if gate is not None:
        summary = {
            "learning": f"{doc['learn']} on {n} inputs, eta {eta:g}",
            "converged": "yes" if doc["converged"] else "no",
            "epochs": doc["epochs"],
            "mistakes per epoch": " ".join(str(m) for m in doc["mistakes_per_epoch"]),
            **summary,
            "why": doc["reason"],
        }
    render(
        doc,
        json_out=json_out,
        title="perceptron",
        summary=summary,
        tables=[make_table(columns, rows, digits=3)],
    )
