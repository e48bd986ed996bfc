"""Start-up wall time of `cvtool layer-calc` against `python -c "import typer, rich"`.

Every command is a fresh process of the same interpreter; the commands are run
interleaved (A, B, C, ... A, B, C, ...) so a noisy, shared machine slows them
alike, and the median of ``--runs`` runs is reported with its ratio to the
bare ``import typer, rich`` process (the issue's target: at most 1.2x). The
median CPU time (user + system) of each process is shown too: on a loaded
machine it moves less than the wall time.

By default every process may use cached bytecode (written to a temporary
PYTHONPYCACHEPREFIX after one warm-up run), as an installed cvtool would: its
.pyc files are compiled at install time. ``--no-bytecode`` keeps
PYTHONDONTWRITEBYTECODE=1 (as this development machine sets it), so cvtool's
own modules are compiled from source on every run (typer and rich keep their
installed .pyc files).

    python -m benchmarks.bench_layer_calc_startup --runs 21 [--no-bytecode] [--json out.json]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

from benchmarks._common import report

PY = sys.executable
CONV = "-m cvtool layer-calc conv -i 227x227x3 -f 96 -k 11 -s 4"
NET = "-m cvtool layer-calc net keras-course"
COMMANDS = {
    "import typer, rich": [PY, "-c", "import typer, rich"],
    "import typer, rich.console, rich.table": [PY, "-c", "import typer, rich.console, rich.table"],
    "layer-calc conv (table)": [PY, *CONV.split()],
    "layer-calc conv --json": [PY, *CONV.split(), "--json"],
    "layer-calc net keras-course (table)": [PY, *NET.split()],
    "layer-calc net keras-course --csv": [PY, *NET.split(), "--csv"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--no-bytecode", action="store_true")
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args()
    env = dict(os.environ)
    if args.no_bytecode:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    else:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix="cvtool-pyc-")
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    cpu: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for cmd in COMMANDS.values():  # warm the page cache (and the bytecode cache)
        subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True, env=env)
    for _ in range(args.runs):
        for name, cmd in COMMANDS.items():
            r0, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
            subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True, env=env)
            times[name].append(time.perf_counter() - t0)
            r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu[name].append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
    rows = [
        {
            "name": name,
            "seconds": statistics.median(ts),
            "min_s": min(ts),
            "cpu_s": statistics.median(cpu[name]),
            "runs": len(ts),
        }
        for name, ts in times.items()
    ]
    report(
        f"cvtool layer-calc start-up, median of {args.runs} interleaved runs, "
        f"{'no bytecode cache' if args.no_bytecode else 'bytecode cached'} ({PY})",
        rows,
        baseline="import typer, rich",
        json_path=args.json_path,
        columns=("seconds", "min_s", "cpu_s"),
    )


if __name__ == "__main__":
    main()
