"""The one user-facing exception and the one family of checks.

Bad user input raises :class:`CvtoolError` with one line naming the parameter,
the rule and the value, in one template (scikit-learn's)::

    The 'k' parameter must be an int >= 1. Got 0 instead.

The checks below write that line, so every module says it the same way:
``check_choice`` (one of a fixed set), ``check_int`` (an int in a range),
``check_number`` (a finite float in a range) and ``check_path`` (an input
file or folder that exists). Each returns the value it accepted, so a caller
can write ``k = check_int("k", k, low=1)``. The CLI turns a CvtoolError into
``error: ...`` on stderr and exit code 2. Bugs are not CvtoolErrors and keep
their tracebacks.

Pure standard library: ``layer-calc`` imports this before NumPy.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Iterable
from pathlib import Path


class CvtoolError(ValueError):
    """A user error: bad input, impossible settings, missing files."""


def _fail(name: str, rule: str, value, hint: str = "") -> CvtoolError:
    tail = f" {hint}" if hint else ""
    return CvtoolError(f"The '{name}' parameter must be {rule}. Got {value!r} instead.{tail}")


def check_choice(name: str, value, choices: Iterable, *, hint: str = ""):
    """`value` if it is one of `choices`, else a CvtoolError naming them.

    >>> check_choice("metric", "l2", ("l1", "l2"))
    'l2'
    """
    choices = tuple(choices)
    if value not in choices:
        raise _fail(name, f"one of {', '.join(map(str, choices))}", value, hint)
    return value


def _range_rule(kind: str, low, high) -> str:
    if low is not None and high is not None:
        return f"{kind} in {low}..{high}"
    if low is not None:
        return f"{kind} >= {low}"
    if high is not None:
        return f"{kind} <= {high}"
    return kind


def check_int(name: str, value, *, low: int | None = None, high: int | None = None,
              hint: str = "") -> int:  # fmt: skip
    """`value` as an int if it is an integer (not a bool) with low <= value <= high.

    NumPy integers count (``numbers.Integral``); floats do not, even 3.0.

    >>> check_int("k", 3, low=1)
    3
    """
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if ok and low is not None and value < low or ok and high is not None and value > high:
        ok = False
    if not ok:
        raise _fail(name, _range_rule("an int", low, high), value, hint)
    return int(value)


def check_number(name: str, value, *, low: float | None = None, high: float | None = None,
                 low_open: bool = False, high_open: bool = False, hint: str = "") -> float:  # fmt: skip
    """`value` as a float if it is a finite real number in [low, high] (or open ends).

    >>> check_number("rate", 0.5, low=0, high=1, high_open=True)
    0.5
    """
    try:
        x = float(value)
        ok = not isinstance(value, bool | str) and math.isfinite(x)
    except (TypeError, ValueError):
        ok, x = False, math.nan
    if ok and low is not None:
        ok = x > low if low_open else x >= low
    if ok and high is not None:
        ok = x < high if high_open else x <= high
    if not ok:
        if low is not None and high is not None:
            rule = f"a number in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        elif low is not None:
            rule = f"a number {'>' if low_open else '>='} {low}"
        elif high is not None:
            rule = f"a number {'<' if high_open else '<='} {high}"
        else:
            rule = "a finite number"
        raise _fail(name, rule, value, hint)
    return x


def check_path(path: str | os.PathLike, what: str = "File", *, kind: str = "file") -> Path:
    """`path` as a Path when it exists as a `kind` ('file', 'dir' or 'any').

    A FIFO, ``/dev/stdin`` or a process substitution counts as a file: it can
    be read once. The message is "<what> not found: <path>".
    """
    path = Path(path)
    exists = {"file": lambda p: p.exists() and not p.is_dir(), "dir": Path.is_dir,
              "any": Path.exists}[kind](path)  # fmt: skip
    if not exists:
        if kind == "file" and path.is_dir():
            raise CvtoolError(f"{what} is a folder, not a file: {path}")
        raise CvtoolError(f"{what} not found: {path}")
    return path
