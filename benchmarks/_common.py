"""Shared benchmark plumbing: isolated timed runs, medians, ratio tables, JSON.

Each measured method runs in a forked child process so that its peak memory
is its own: ``peak_mb`` is the child's high-water resident set minus its
resident set when it started (the data it inherited is not counted).
Speed is the median of ``repeat`` runs. Nothing here is a test.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import resource
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def _child(fn, args, queue):
    try:
        start_rss = _rss_mb()
        t0 = time.perf_counter()
        result = fn(*args)
        seconds = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
        queue.put(("ok", result, seconds, max(0.0, peak - start_rss)))
    except BaseException:  # report, do not hang the parent
        queue.put(("error", traceback.format_exc(), 0.0, 0.0))


def run_isolated(fn: Callable, *args) -> tuple[Any, float, float]:
    """Run fn(*args) in a forked child: (result, seconds, peak extra MiB)."""
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(fn, args, queue))
    proc.start()
    status, result, seconds, peak = queue.get()
    proc.join()
    if status != "ok":
        raise RuntimeError(f"benchmarked function failed:\n{result}")
    return result, seconds, peak


def measure(fn: Callable, *args, repeat: int = 3) -> dict[str, Any]:
    """Median seconds and max peak MiB over `repeat` isolated runs; result of the last."""
    times, peaks, result = [], [], None
    for _ in range(repeat):
        result, seconds, peak = run_isolated(fn, *args)
        times.append(seconds)
        peaks.append(peak)
    return {
        "seconds": statistics.median(times),
        "runs": times,
        "peak_mb": max(peaks),
        "result": result,
    }


def report(
    title: str,
    rows: list[dict[str, Any]],
    baseline: str,
    json_path: str | None = None,
    columns: tuple[str, ...] = ("seconds", "peak_mb"),
) -> None:
    """Print a table of rows (each with 'name' and the columns) with time ratios to `baseline`.

    ``ratio`` is seconds / baseline seconds: below 1 is faster than the baseline.
    """
    base = next((r for r in rows if r["name"] == baseline), None)
    for r in rows:
        if base and "seconds" in r and base.get("seconds"):
            r["ratio_vs_" + baseline] = r["seconds"] / base["seconds"]
    keys = ["name", *columns] + ([f"ratio_vs_{baseline}"] if base else [])
    extra = sorted({k for r in rows for k in r} - set(keys) - {"result", "runs"})
    keys += extra
    print(f"\n{title}")
    widths = [max(len(k), *(len(_fmt(r.get(k))) for r in rows)) for k in keys]
    print("  ".join(k.ljust(w) for k, w in zip(keys, widths, strict=True)))
    for r in rows:
        print("  ".join(_fmt(r.get(k)).ljust(w) for k, w in zip(keys, widths, strict=True)))
    if json_path:
        doc = {"title": title, "python": sys.version.split()[0], "rows": rows}
        for r in rows:
            r.pop("result", None)
        Path(json_path).write_text(json.dumps(doc, indent=2, default=str))
        print(f"(written to {json_path})")


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)
