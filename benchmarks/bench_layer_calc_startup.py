"""Start-up wall time of `cvtool layer-calc` against `python -c "import typer, rich"`.

Every command is a fresh process of the same interpreter; the commands are run
interleaved (A, B, C, ... A, B, C, ...) so a noisy, shared machine slows them
alike, and the median of ``--runs`` runs is reported with its ratio to the
bare ``import typer, rich`` process (the issue's target: at most 1.2x).

    python -m benchmarks.bench_layer_calc_startup --runs 21 [--json out.json]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from benchmarks._common import report

PY = sys.executable
COMMANDS = {
    "import typer, rich": [PY, "-c", "import typer, rich"],
    "import typer, rich.console, rich.table": [
        PY,
        "-c",
        "import typer, rich.console, rich.table",
    ],
    "layer-calc conv (table)": [
        PY,
        "-m",
        "cvtool",
        "layer-calc",
        "conv",
        "-i",
        "227x227x3",
        "-f",
        "96",
        "-k",
        "11",
        "-s",
        "4",
    ],  # fmt: skip
    "layer-calc conv --json": [
        PY,
        "-m",
        "cvtool",
        "layer-calc",
        "conv",
        "-i",
        "227x227x3",
        "-f",
        "96",
        "-k",
        "11",
        "-s",
        "4",
        "--json",
    ],  # fmt: skip
    "layer-calc net keras-course (table)": [
        PY,
        "-m",
        "cvtool",
        "layer-calc",
        "net",
        "keras-course",
    ],
    "layer-calc net keras-course --csv": [
        PY,
        "-m",
        "cvtool",
        "layer-calc",
        "net",
        "keras-course",
        "--csv",
    ],  # fmt: skip
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for cmd in COMMANDS.values():  # warm the page cache and .pyc files
        subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
    for _ in range(args.runs):
        for name, cmd in COMMANDS.items():
            t0 = time.perf_counter()
            subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
            times[name].append(time.perf_counter() - t0)
    rows = [
        {"name": name, "seconds": statistics.median(ts), "min_s": min(ts), "runs": len(ts)}
        for name, ts in times.items()
    ]
    report(
        f"cvtool layer-calc start-up, median of {args.runs} interleaved runs ({PY})",
        rows,
        baseline="import typer, rich",
        json_path=args.json_path,
        columns=("seconds", "min_s"),
    )


if __name__ == "__main__":
    main()
