"""Whole commands, timed the way a user waits for them, against whole anchor scripts (issue 19).

Every measurement is a fresh process: ``cvtool`` runs as ``sys.executable -m cvtool``
from the repository root (or ``--cvtool-root``) with PYTHONPATH set to it, each
anchor as ``sys.executable benchmarks/anchors/<script>.py``. ``--base ROOT`` adds
a second cvtool tree (e.g. ``/work/main``) as ``cvtool-base`` to the same
alternation, for before/after numbers in one run. Within a command the runs
alternate (cvtool, anchor(s), cvtool, anchor(s), ...) so a shared machine slows
both alike; the table gives the median wall seconds of ``--repeat`` runs, the
median CPU seconds (user + system) and the peak resident memory of the process,
and the ratio of each median to the main anchor's (below 1: cvtool is faster).

Commands and anchors (the anchors load the same gzipped IDX files themselves):

* ``knn``: ``cvtool knn -k 5 --metric l2 --dataset fashion-mnist --predictions
  TMP.csv --force`` (the CSV is the only addition, for the agreement check)
  against ``anchors/faiss_knn.py`` (faiss-cpu IndexFlatL2 + majority vote,
  ``faiss.omp_set_num_threads(--threads)``) and ``anchors/sklearn_knn.py``
  (scikit-learn ``KNeighborsClassifier(5)`` fit + predict) as a second anchor
  (``--anchors faiss`` leaves it out). Agreement: every test prediction equal
  to faiss's (and scikit-learn's).
* ``train-mlp``: ``cvtool train-mlp --layers 784,30,10 --batch-size 10 --epochs 2
  --dataset fashion-mnist`` against ``anchors/torch_mlp.py`` (the same network,
  cost, SGD eta 0.5, mini-batch 10, two epochs, one test pass).
* ``train-cnn``: ``cvtool train-cnn --preset nielsen-ch6 --dataset fashion-mnist
  --epochs 1 --batch-size 128 --optimizer adam`` against ``anchors/torch_cnn.py``
  (the same layers, Glorot init, Adam 1e-3, batch 128, one epoch, one test pass).
  Agreement for both trainers: test accuracies within ``--tolerance`` (default
  0.03; different initial draws and shuffles, so not equal).

PyTorch runs with ``torch.set_num_threads(--threads)`` (default 2); cvtool runs
with the environment as it is (NumPy's BLAS picks its own thread count). The
trainers' own per-epoch seconds are recorded too: cvtool's printed epoch
``seconds`` column and ``train_seconds_per_epoch`` (training loop only), and
the anchors' epoch loop seconds.

Before timing, PYTHONDONTWRITEBYTECODE is removed from the children's
environment, cvtool and the anchors are byte-compiled, the imported packages
are imported once, and the dataset files are read once (page cache) and loaded
once by each cvtool tree (which fills cvtool's decoded IDX cache, see
docs/data.md), so no run pays a first-time cost the others do not. cvtool reads
the dataset from ``--data`` too (CVTOOL_FASHION_DIR). To time cvtool without its
decoded cache, run the benchmark with CVTOOL_IDX_CACHE=0 in the environment.

    python -m benchmarks.bench_commands [--commands knn,train-mlp,train-cnn]
        [--repeat 3] [--repeat-cnn 2] [--threads 2] [--tolerance 0.03]
        [--data /usr/share/datasets/fashion-mnist] [--anchors faiss,sklearn]
        [--cvtool-root ROOT] [--base ROOT] [--json out.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script, too

from benchmarks._common import report  # noqa: E402

PY = sys.executable
ROOT = Path(__file__).resolve().parent.parent
ANCHORS = ROOT / "benchmarks" / "anchors"
DATA = "/usr/share/datasets/fashion-mnist"
COMMANDS = ("knn", "train-mlp", "train-cnn")


def child_env(data: str = DATA, root: Path = ROOT) -> dict[str, str]:
    """The environment every measured process gets: bytecode caches on, cvtool from `root`."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPATH"] = str(root)
    env["CVTOOL_FASHION_DIR"] = str(data)
    env["COLUMNS"] = "200"  # Rich tables on one line each, so they parse
    return env


def run_process(argv: list[str], env: dict[str, str], cwd: Path = ROOT) -> dict:
    """Run argv to completion: wall and CPU seconds, peak RSS (MiB), stdout + stderr text."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        load = os.getloadavg()[0]
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        text_out, text_err = out.read(), err.read()
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} exited {proc.returncode}:\n{text_out[-2000:]}\n{text_err[-2000:]}"
        )
    return {
        "seconds": wall,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "peak_mb": usage.ru_maxrss / 1024,
        "load": load,
        "stdout": text_out,
        "stderr": text_err,
    }


def _table_value(text: str, key: str) -> float | None:
    """The number in a Rich key/value row '│ key │ value │' of cvtool's output."""
    m = re.search(rf"│\s*{re.escape(key)}\s*│\s*([0-9.]+)", text)
    return float(m.group(1)) if m else None


def _epoch_seconds(text: str) -> list[float]:
    """The last column of the rows of cvtool's 'Epochs' table (its `seconds`)."""
    part = text.split("\nEpochs\n", 1)
    if len(part) < 2:
        return []
    secs = []
    for line in part[1].splitlines():
        cells = [c.strip() for c in line.strip().strip("│").split("│")]
        if len(cells) > 1 and cells[0].isdigit():
            secs.append(float(cells[-1]))
    return secs


def parse_cvtool(text: str) -> dict:
    """Test accuracy, per-epoch seconds and train_seconds_per_epoch from cvtool's tables."""
    acc = _table_value(text, "test_accuracy")
    if acc is None:
        acc = _table_value(text, "test accuracy")  # knn's wording
    return {
        "accuracy": acc,
        "epoch_seconds": _epoch_seconds(text),
        "train_seconds_per_epoch": _table_value(text, "train_seconds_per_epoch"),
    }


def parse_anchor(text: str) -> dict:
    """The anchor scripts' last stdout line is one JSON document."""
    return json.loads(text.strip().splitlines()[-1])


def read_cvtool_predictions(path: Path) -> list[int]:
    with open(path, newline="") as fh:
        return [int(row["predicted"]) for row in csv.DictReader(fh)]


def plans(
    data: str, threads: int, tmp: Path, trees: dict[str, Path], anchors: tuple[str, ...]
) -> dict[str, list[dict]]:
    """For each command: the methods to alternate, cvtool first, then its main anchor.

    `trees` maps a cvtool method name to the tree it runs from ("cvtool" first);
    `anchors` names the knn anchors to run (faiss, sklearn).
    """
    cv = [PY, "-m", "cvtool"]
    a = str(ANCHORS)
    p = {
        "knn": [
            {
                "name": "cvtool",
                "argv": cv
                + "knn -k 5 --metric l2 --dataset fashion-mnist --force --predictions".split()
                + [str(tmp / "cvtool_knn.csv")],
                "predictions": tmp / "cvtool_knn.csv",
            },
            {
                "name": "faiss",
                "argv": [PY, f"{a}/faiss_knn.py", data, str(tmp / "faiss.npy"), str(threads)],
                "predictions": tmp / "faiss.npy",
            },
            {
                "name": "sklearn",
                "argv": [PY, f"{a}/sklearn_knn.py", data, str(tmp / "sklearn.npy")],
                "predictions": tmp / "sklearn.npy",
            },
        ],
        "train-mlp": [
            {
                "name": "cvtool",
                "argv": cv
                + "train-mlp --layers 784,30,10 --batch-size 10 --epochs 2".split()
                + ["--dataset", "fashion-mnist"],
            },
            {"name": "pytorch", "argv": [PY, f"{a}/torch_mlp.py", data, "2", str(threads)]},
        ],
        "train-cnn": [
            {
                "name": "cvtool",
                "argv": cv
                + "train-cnn --preset nielsen-ch6 --dataset fashion-mnist --epochs 1".split()
                + "--batch-size 128 --optimizer adam".split(),
            },
            {"name": "pytorch", "argv": [PY, f"{a}/torch_cnn.py", data, "1", str(threads)]},
        ],
    }
    p["knn"] = [m for m in p["knn"] if m["name"] == "cvtool" or m["name"] in anchors]
    out = {}
    for command, methods in p.items():
        main, rest = methods[0], methods[1:]
        copies = []
        for name, root in trees.items():
            m = dict(main, name=name, root=root)
            if "predictions" in m:  # each tree writes its own file
                m["predictions"] = tmp / f"{name}_{command}.csv"
                m["argv"] = [*main["argv"][:-1], str(m["predictions"])]
            copies.append(m)
        out[command] = [copies[0], *rest, *copies[1:]]  # the main anchor stays second
    return out


def warm_up(envs: dict[str, dict], trees: dict[str, Path], data: str, commands: list[str]) -> None:
    """Byte-compile cvtool and the anchors, import the anchors' packages, read the data once,
    and load it once through each cvtool tree (page cache, cvtool's decoded IDX cache)."""
    env = envs["cvtool"]
    subprocess.run([PY, "-m", "compileall", "-q", "benchmarks"], cwd=ROOT, env=env)
    mods = {"knn": "faiss, sklearn.neighbors", "train-mlp": "torch", "train-cnn": "torch"}
    imports = ", ".join(sorted({mods[c] for c in commands}))
    subprocess.run([PY, "-c", f"import numpy, typer, rich, {imports}"], env=env, check=True)
    for f in Path(data).iterdir():
        f.read_bytes()
    load = "from cvtool.data.datasets import load_dataset; load_dataset('fashion-mnist')"
    for name, root in trees.items():
        subprocess.run([PY, "-m", "compileall", "-q", "cvtool"], cwd=root, env=envs[name])
        subprocess.run([PY, "-c", load], cwd=root, env=envs[name], check=True)
        subprocess.run(
            [PY, "-m", "cvtool", "data", "list"], cwd=root, env=envs[name], capture_output=True
        )


def bench_command(command: str, methods: list[dict], repeat: int, envs: dict) -> dict:
    """Alternate the methods `repeat` times; rows (medians) and the agreement check."""
    runs: dict[str, list[dict]] = {m["name"]: [] for m in methods}
    predictions: dict[str, list[int]] = {}
    for i in range(repeat):
        for m in methods:
            env = envs.get(m["name"], envs["cvtool"])
            r = run_process(m["argv"], env, m.get("root", ROOT))
            text = r.pop("stdout") + "\n" + r.pop("stderr")
            parsed = parse_cvtool(text) if "root" in m else parse_anchor(text)
            r.update(
                accuracy=parsed.get("accuracy"),
                epoch_seconds=parsed.get("epoch_seconds", []),
                train_seconds_per_epoch=parsed.get("train_seconds_per_epoch"),
            )
            runs[m["name"]].append(r)
            print(
                f"  {command} run {i + 1}/{repeat} {m['name']}: {r['seconds']:.2f} s wall, "
                f"{r['cpu_seconds']:.2f} s CPU, acc {r['accuracy']}, epochs "
                f"{[round(s, 2) for s in r['epoch_seconds']]}, load {r['load']:.2f}",
                flush=True,
            )
            if "predictions" in m:
                p = m["predictions"]
                if p.suffix == ".csv":
                    predictions[m["name"]] = read_cvtool_predictions(p)
                else:
                    import numpy as np

                    predictions[m["name"]] = np.load(p).tolist()
    rows = []
    for name, rs in runs.items():
        epochs = [s for r in rs for s in r["epoch_seconds"]]
        tspe = [r["train_seconds_per_epoch"] for r in rs if r["train_seconds_per_epoch"]]
        rows.append(
            {
                "name": name,
                "seconds": statistics.median(r["seconds"] for r in rs),
                "cpu_seconds": statistics.median(r["cpu_seconds"] for r in rs),
                "peak_mb": max(r["peak_mb"] for r in rs),
                "accuracy": rs[-1]["accuracy"],
                "epoch_s": statistics.median(epochs) if epochs else None,
                "train_s_per_epoch": statistics.median(tspe) if tspe else None,
                "runs": [round(r["seconds"], 3) for r in rs],
                "detail": rs,
            }
        )
    return {"rows": rows, "predictions": predictions}


def agreement(command: str, rows: list[dict], predictions: dict, tolerance: float) -> dict:
    """knn: predictions equal to each anchor's; trainers: accuracies within tolerance."""
    acc = {r["name"]: r["accuracy"] for r in rows}
    if command == "knn":
        base = predictions["cvtool"]
        diff = {
            name: sum(a != b for a, b in zip(base, p, strict=True))
            for name, p in predictions.items()
            if name != "cvtool"
        }
        ok = all(d == 0 for d in diff.values())
        return {"check": "test predictions equal", "differing": diff, "accuracy": acc, "ok": ok}
    anchor = rows[1]["name"]
    gap = abs(acc["cvtool"] - acc[anchor])
    return {
        "check": f"|test accuracy difference| <= {tolerance}",
        "difference": gap,
        "accuracy": acc,
        "ok": gap <= tolerance,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--commands", default=",".join(COMMANDS))
    ap.add_argument("--repeat", type=int, default=3, help="runs of each process (median)")
    ap.add_argument("--repeat-cnn", type=int, default=None, help="runs for train-cnn")
    ap.add_argument("--threads", type=int, default=2, help="PyTorch and faiss threads")
    ap.add_argument("--tolerance", type=float, default=0.03, help="test accuracy tolerance")
    ap.add_argument("--data", default=DATA, help="the IDX folder cvtool and the anchors load")
    ap.add_argument("--anchors", default="faiss,sklearn", help="knn anchors to run")
    ap.add_argument("--cvtool-root", default=str(ROOT), help="the cvtool tree to time")
    ap.add_argument("--base", default=None, help="a second cvtool tree, run as cvtool-base")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    commands = [c.strip() for c in args.commands.split(",") if c.strip()]
    for c in commands:
        if c not in COMMANDS:
            ap.error(f"unknown command {c!r}; choose from {', '.join(COMMANDS)}")
    anchors = tuple(a.strip() for a in args.anchors.split(",") if a.strip())
    if "faiss" not in anchors:
        ap.error("--anchors must include faiss (the main knn anchor)")
    trees = {"cvtool": Path(args.cvtool_root).resolve()}
    if args.base:
        trees["cvtool-base"] = Path(args.base).resolve()
    doc = {"title": "whole commands (issue 19)", "python": sys.version.split()[0], "commands": {}}
    with tempfile.TemporaryDirectory() as tmp:
        envs = {name: child_env(args.data, root) for name, root in trees.items()}
        for name, root in trees.items():
            if root != ROOT:  # bytecode of another tree goes to a scratch folder, not into it
                envs[name]["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / f"pycache-{name}")
        warm_up(envs, trees, args.data, commands)
        all_plans = plans(args.data, args.threads, Path(tmp), trees, anchors)
        for c in commands:
            repeat = args.repeat_cnn if (c == "train-cnn" and args.repeat_cnn) else args.repeat
            res = bench_command(c, all_plans[c], repeat, envs)
            rows = res["rows"]
            check = agreement(c, rows, res["predictions"], args.tolerance)
            baseline = rows[1]["name"]
            details = {r["name"]: r.pop("detail") for r in rows}
            report(
                f"{c}: whole process, median of {repeat} (threads {args.threads})",
                rows,
                baseline,
                columns=("seconds", "cpu_seconds", "peak_mb", "accuracy", "epoch_s"),
            )
            print(f"agreement ({check['check']}): {'ok' if check['ok'] else 'FAILED'} {check}")
            for r in rows:
                r["detail"] = details[r["name"]]
            doc["commands"][c] = {"repeat": repeat, "rows": rows, "agreement": check}
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=2, default=str))
        print(f"(written to {args.json})")


if __name__ == "__main__":
    main()
