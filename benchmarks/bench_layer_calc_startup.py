"""Start-up wall time of `cvtool layer-calc` against `python -c "import typer, rich"`.

Every command is a fresh process of the same interpreter; the commands are run
interleaved (A, B, C, ... A, B, C, ...) so a noisy, shared machine slows them
alike, and the median of ``--runs`` runs is reported with its ratio to the
bare ``import typer, rich`` process (the issue's target: at most 1.2x). The
median CPU time (user + system) of each process is shown too: on a loaded
machine it moves less than the wall time.

Reference rows besides the baseline:

* ``import typer, rich.console, rich.table``: what drawing any Rich table costs;
* ``typer app, one int option``: the smallest Typer program that parses one
  ``int`` option. Typer 0.29 coerces every non-flag value through a Pydantic
  ``TypeAdapter``, so this is the floor for any Typer command that takes an
  option, reached by public means only.

``--before DIR`` runs the cvtool rows a second time from another source tree
(e.g. ``git worktree add /tmp/before 08460b6``), labelled ``[before]``, in the
same interleaved loop, so before and after share the machine's state.

By default every process may use cached bytecode (written to a temporary
PYTHONPYCACHEPREFIX after one warm-up run), as an installed cvtool would: its
.pyc files are compiled at install time. ``--no-bytecode`` keeps
PYTHONDONTWRITEBYTECODE=1 (as this development machine sets it), so cvtool's
own modules are compiled from source on every run (typer and rich keep their
installed .pyc files).

    python -m benchmarks.bench_layer_calc_startup --runs 21 [--before DIR] [--no-bytecode]
        [--json out.json] [--csv out.csv]
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._common import report

PY = sys.executable
ROOT = Path(__file__).resolve().parent.parent
CONV = "-m cvtool layer-calc conv -i 227x227x3 -f 96 -k 11 -s 4"
NET = "-m cvtool layer-calc net keras-course"
TYPER_APP = (
    "import typer\n"
    "app = typer.Typer()\n"
    "@app.command()\n"
    "def main(n: int = 1) -> None:\n"
    "    print(n)\n"
    "app(['--n', '3'])\n"
)
REFERENCES = {
    "import typer, rich": [PY, "-c", "import typer, rich"],
    "import typer, rich.console, rich.table": [PY, "-c", "import typer, rich.console, rich.table"],
    "typer app, one int option": [PY, "-c", TYPER_APP],
}
CVTOOL = {
    "layer-calc conv (table)": [PY, *CONV.split()],
    "layer-calc conv --json": [PY, *CONV.split(), "--json"],
    "layer-calc net keras-course (table)": [PY, *NET.split()],
    "layer-calc net keras-course --json": [PY, *NET.split(), "--json"],
    "layer-calc net keras-course --csv": [PY, *NET.split(), "--csv"],
}


def commands(before: str | None) -> dict[str, tuple[list[str], Path]]:
    """Name -> (argv, working directory); cvtool rows run from the tree whose cvtool they time."""
    out = {name: (cmd, ROOT) for name, cmd in REFERENCES.items()}
    out.update({name: (cmd, ROOT) for name, cmd in CVTOOL.items()})
    if before:
        out.update({f"{name} [before]": (cmd, Path(before)) for name, cmd in CVTOOL.items()})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--before", help="Another source tree whose cvtool is timed too.")
    parser.add_argument("--no-bytecode", action="store_true")
    parser.add_argument("--json", dest="json_path")
    parser.add_argument("--csv", dest="csv_path")
    args = parser.parse_args()
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # `python -m cvtool` imports the tree it runs in
    if args.no_bytecode:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    else:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix="cvtool-pyc-")
    todo = commands(args.before)
    times: dict[str, list[float]] = {name: [] for name in todo}
    cpu: dict[str, list[float]] = {name: [] for name in todo}
    for cmd, cwd in todo.values():  # warm the page cache (and the bytecode cache)
        subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True, env=env, cwd=cwd)
    for _ in range(args.runs):
        for name, (cmd, cwd) in todo.items():
            r0, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
            subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True, env=env, cwd=cwd)
            times[name].append(time.perf_counter() - t0)
            r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu[name].append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
    base_cpu = statistics.median(cpu["import typer, rich"])
    rows = [
        {
            "name": name,
            "seconds": statistics.median(ts),
            "min_s": min(ts),
            "cpu_s": statistics.median(cpu[name]),
            "cpu_ratio": statistics.median(cpu[name]) / base_cpu,
            "runs": len(ts),
        }
        for name, ts in times.items()
    ]
    report(
        f"cvtool layer-calc start-up, median of {args.runs} interleaved runs, "
        f"{'no bytecode cache' if args.no_bytecode else 'bytecode cached'} ({PY}, "
        f"load average {os.getloadavg()[0]:.1f})",
        rows,
        baseline="import typer, rich",
        json_path=args.json_path,
        columns=("seconds", "min_s", "cpu_s", "cpu_ratio"),
    )
    if args.csv_path:
        keys = list(rows[0])
        with open(args.csv_path, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=keys, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        print(f"(written to {args.csv_path})")


if __name__ == "__main__":
    main()
