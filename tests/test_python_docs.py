"""docs/python.md: each command's library call gives the command's numbers.

The page pairs a ``sh`` block (one cvtool command with --json) with a
``python`` block that leaves a dict ``doc``; every key of ``doc`` must equal
the same key of the command's JSON output (floats to 1e-12 relative).
"""

from __future__ import annotations

import json
import math
import re
import shlex
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "python.md"


def sections() -> list[tuple[str, str, str]]:
    """(title, command, python code) for every section with both blocks."""
    out = []
    for part in re.split(r"^## ", DOC.read_text(), flags=re.M)[1:]:
        title = part.splitlines()[0].strip()
        sh = re.search(r"```sh\n(.*?)```", part, re.S)
        py = re.search(r"```python\n(.*?)```", part, re.S)
        if sh and py:
            out.append((title, sh.group(1).strip(), py.group(1)))
    return out


def same(a, b, where: str) -> None:
    if isinstance(a, dict):
        for k in a:
            same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15), (where, a, b)
    else:
        assert a == b, (where, a, b)


def test_the_page_has_a_section_per_command():
    titles = [t for t, _, _ in sections()]
    for command in ("knn", "train-mlp", "train-cnn", "evaluate", "layer-calc", "iou", "data"):
        assert any(command in t for t in titles), command


def test_each_library_call_gives_the_commands_numbers(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for title, command, code in sections():
        args = shlex.split(command)
        assert args[0] == "cvtool" and "--json" in args, title
        result = cli(*args[1:])
        assert result.exit_code == 0, (title, result.stderr)
        expected = json.loads(result.stdout)
        scope: dict = {}
        exec(compile(code, f"docs/python.md ({title})", "exec"), scope)
        assert isinstance(scope.get("doc"), dict) and scope["doc"], title
        same(scope["doc"], expected, title)
