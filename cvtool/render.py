"""Output for people and for scripts.

stdout carries results: Rich tables for people, or with ``--json`` one JSON
document (no colour, no decoration) so ``cvtool ... --json | jq`` works.
Progress bars, logs and warnings go to stderr. Colour is off when the stream
is not a terminal or ``NO_COLOR`` is set (Rich honours both).

Rich is imported only when something is drawn: ``make_table`` and
``kv_table`` build plain ``Table`` values, and ``--json`` never loads Rich.
Nothing here imports NumPy: values with ``tolist()``/``item()`` (NumPy or
CuPy scalars and arrays) are converted by duck typing.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # Rich is imported when a table is drawn, not for --json or CSV
    from rich.console import Console
    from rich.table import Table as RichTable


def _console(stderr: bool = False) -> Console:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    is_tty = hasattr(stream, "isatty") and stream.isatty()
    return Console(
        file=stream,
        stderr=stderr,
        no_color=bool(os.environ.get("NO_COLOR")) or not is_tty,
        highlight=False,
        width=None if is_tty else 200,  # pipes and files: do not squeeze tables to 80
        soft_wrap=not is_tty,
    )


def stdout() -> Console:
    """A Console on the current stdout (created per call: tests swap sys.stdout)."""
    return _console(stderr=False)


def stderr() -> Console:
    """A Console on the current stderr, for progress, logs and warnings."""
    return _console(stderr=True)


def to_jsonable(value: Any) -> Any:
    """Plain Python types for json.dumps: arrays to lists, NaN/inf to None, tuples to lists."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, bool | int | str) or value is None:
        return value
    if hasattr(value, "get") and type(value).__module__.startswith("cupy"):
        value = value.get()
    if hasattr(value, "tolist"):
        return to_jsonable(value.tolist())
    if hasattr(value, "item"):
        return to_jsonable(value.item())
    return str(value)


def dumps(doc: Any) -> str:
    return json.dumps(to_jsonable(doc), indent=2)


def print_json(doc: Any) -> None:
    """Write one JSON document to stdout."""
    sys.stdout.write(dumps(doc) + "\n")
    sys.stdout.flush()


def fmt(value: Any, digits: int = 4) -> str:
    """Human formatting of one cell: ints with thousands separators, floats to `digits`."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.{digits}f}"
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return fmt(value.item(), digits)
    return str(value)


@dataclass
class Table:
    """A table for people, built without Rich; ``render`` draws it (importing Rich then).

    ``columns`` are the header names, ``rows`` the cells (formatted by ``fmt``
    when drawn: numbers right-aligned), ``footer`` one cell per column or None,
    ``caption`` a line under the table. ``keys=True`` makes a two-column
    key/value table without a header, keys in bold.
    """

    columns: list[str]
    rows: list[list[Any]]
    title: str | None = None
    digits: int = 4
    footer: list[Any] | None = None
    caption: str | None = None
    keys: bool = False

    def to_rich(self) -> RichTable:
        """The Rich table (imports Rich)."""
        from rich.table import Table as RichTable

        table = RichTable(
            title=self.title,
            show_header=not self.keys,
            show_footer=self.footer is not None,
            title_justify="left",
            caption=self.caption,
            caption_justify="left",
        )
        for i, name in enumerate(self.columns):
            numeric = bool(self.rows) and all(
                isinstance(r[i], int | float) and not isinstance(r[i], bool) for r in self.rows
            )
            table.add_column(
                name,
                justify="right" if numeric and not self.keys else "left",
                footer=fmt(self.footer[i], self.digits) if self.footer is not None else "",
                style="bold" if self.keys and i == 0 else None,
            )
        for r in self.rows:
            table.add_row(*(fmt(v, self.digits) for v in r))
        return table


def make_table(
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    title: str | None = None,
    digits: int = 4,
    footer: Sequence[Any] | None = None,
    caption: str | None = None,
) -> Table:
    """A table with a header row; numbers right-aligned and formatted by ``fmt`` when drawn."""
    return Table(
        list(columns),
        [list(r) for r in rows],
        title=title,
        digits=digits,
        footer=None if footer is None else list(footer),
        caption=caption,
    )


def kv_table(
    pairs: dict[str, Any], title: str | None = None, digits: int = 4, caption: str | None = None
) -> Table:
    """A two-column key/value table (no header, keys in bold)."""
    rows = [[str(k), v] for k, v in pairs.items()]
    return Table(["key", "value"], rows, title=title, digits=digits, caption=caption, keys=True)


def header(command: str, **info: Any) -> None:
    """The run's header line on stdout (human mode): command, backend, dtype, ..."""
    parts = " · ".join(f"{k}={fmt(v)}" for k, v in info.items() if v is not None)
    stdout().print(f"[bold]cvtool {command}[/bold]  {parts}")


def render(
    doc: dict[str, Any],
    *,
    json_out: bool,
    title: str | None = None,
    tables: Sequence[Table] = (),
    summary: dict[str, Any] | None = None,
) -> None:
    """Write a result: the JSON document, or the summary pairs and tables for people.

    With ``summary=None`` the scalar entries of ``doc`` form the key/value table.
    """
    if json_out:
        print_json(doc)
        return
    out = stdout()
    if summary is None:
        summary = {k: v for k, v in doc.items() if not isinstance(v, dict | list | tuple)}
    if summary:
        out.print(kv_table(summary, title=title).to_rich())
    for t in tables:
        out.print(t.to_rich())


def warn(message: str) -> None:
    """A warning line on stderr."""
    stderr().print(f"warning: {message}", markup=False)


def progress(transient: bool = True, download: bool = False):
    """A Rich Progress on stderr (use as a context manager); silent when stderr is no terminal.

    ``download=True`` shows bytes and transfer speed instead of step counts and elapsed time.
    Off a terminal it is a stand-in that draws nothing, without importing ``rich.progress``.
    """
    console = stderr()
    if not console.is_terminal:  # no bar (and no stray newline) in pipes and logs
        return _NoProgress()
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    counts = (
        (DownloadColumn(), TransferSpeedColumn())
        if download
        else (MofNCompleteColumn(), TimeElapsedColumn())
    )
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        *counts,
        TimeRemainingColumn(),
        console=console,
        transient=transient,
    )


class _NoProgress:
    """What :func:`progress` gives off a terminal: Rich Progress's calls, drawing nothing."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    def add_task(self, *args, **kwargs) -> int:
        return 0

    def update(self, *args, **kwargs) -> None:
        return None

    def advance(self, *args, **kwargs) -> None:
        return None

    start = stop = remove_task = advance
