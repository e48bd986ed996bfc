"""The command line's entry: usage errors as one line, public API only, lazy wiring."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CVTOOL = ROOT / "cvtool"

USAGE_ERRORS = [
    (["layer-calc", "conv", "--bogus"], "No such option: --bogus"),
    (["layer-calc", "conv", "-i", "9x9x1", "-f", "two", "-k", "3"], "'--filters' / '-f'"),
    (["layer-calc", "conv", "-f", "2", "-k", "3"], "Missing option '--input'"),
    (["knnn"], "No such command 'knnn'. Did you mean 'knn'?"),
    (["iou", "box", "1,2,3,4"], "Missing argument 'box_b'"),
    (["perceptron", "--epochs", "1.5"], "'--epochs'"),
]


def _one_line(stderr: str, needle: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ") and needle in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("args, needle", USAGE_ERRORS)
def test_usage_error_is_one_line_exit_2(cli, args, needle):
    result = cli(*args)
    assert result.exit_code == 2 and result.stdout == ""
    line = _one_line(result.stderr, needle)
    assert line.endswith("--help')")  # names where help is


@pytest.mark.parametrize("args, needle", USAGE_ERRORS[:4])
def test_console_script_usage_error_is_one_line_exit_2(args, needle):
    out = subprocess.run(
        [sys.executable, "-m", "cvtool", *args], capture_output=True, text=True, cwd=ROOT
    )
    assert out.returncode == 2 and out.stdout == ""
    _one_line(out.stderr, needle)


def test_user_error_from_the_library_is_one_line_exit_2(cli):
    result = cli("layer-calc", "conv", "-i", "4x4x1", "-f", "2", "-k", "7")
    assert result.exit_code == 2
    _one_line(result.stderr, "larger than the padded input")


@pytest.mark.parametrize("args", [[], ["iou"], ["layer-calc"]])
def test_group_without_a_command_prints_its_help_and_exits_2(cli, args):
    result = cli(*args)
    assert result.exit_code == 2 and result.stderr == ""
    assert "Usage: cvtool" in result.stdout and "Commands" in result.stdout


def test_version_and_help_exit_0(cli):
    from cvtool import __version__

    result = cli("--version")
    assert result.exit_code == 0 and result.stdout == f"cvtool {__version__}\n"
    result = cli("layer-calc", "conv", "--help")
    assert result.exit_code == 0 and "--filters" in result.stdout


def test_main_builds_only_the_command_it_is_asked_for():
    code = (
        "import sys\n"
        "sys.argv = ['cvtool', 'iou', 'box', '0,0,2,2', '1,1,2,2', '--json']\n"
        "from cvtool.cli import main\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "print(sorted(m for m in sys.modules if m.startswith('cvtool.cli.')), file=sys.stderr)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert '"iou": 0.142857' in out.stdout  # 1 / 7
    assert out.stderr.strip().splitlines()[-1] == "['cvtool.cli._common', 'cvtool.cli.iou']"


def test_every_command_is_wired():
    import typer.main

    from cvtool import cli

    root = typer.main.get_command(cli.app)
    assert set(root.commands) == set(cli.COMMANDS)
    files = {p.stem for p in (CVTOOL / "cli").glob("*.py") if not p.stem.startswith("_")}
    assert files == {module for module, _ in cli.COMMANDS.values()}


# --- no private names of other packages ------------------------------------------------


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _violations(path: Path, strict: bool) -> list[str]:
    """Private names of other packages that `path` touches.

    Everywhere: importing a private module or name of a package other than cvtool,
    an attribute with a private name on such an imported module (``typer.core._X``),
    and import hooks (``sys.meta_path``, ``sys.path_hooks``). With ``strict`` (the
    CLI and render.py): any private attribute on anything but ``self``/``cls``.
    """
    tree = ast.parse(path.read_text(), str(path))
    foreign: set[str] = set()  # names bound to modules or objects of other packages
    found = []

    def where(node) -> str:
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        return f"{shown}:{node.lineno}"

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] != "cvtool":
                    if any(_private(part) for part in alias.name.split(".")):
                        found.append(f"{where(node)} imports {alias.name}")
                    foreign.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] == "cvtool":
                continue
            parts = node.module.split(".")
            for alias in node.names:
                if any(_private(p) for p in [*parts, alias.name]):
                    found.append(f"{where(node)} imports {alias.name} from {node.module}")
                foreign.add(alias.asname or alias.name)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        root = node.value
        while isinstance(root, ast.Attribute):
            root = root.value
        root_name = root.id if isinstance(root, ast.Name) else None
        if root_name == "sys" and node.attr in ("meta_path", "path_hooks"):
            found.append(f"{where(node)} uses sys.{node.attr} (an import hook)")
        if not _private(node.attr):
            continue
        if root_name in foreign or (strict and root_name not in ("self", "cls")):
            found.append(f"{where(node)} touches .{node.attr}")
    return found


def test_no_private_names_of_other_packages():
    found = []
    for path in sorted(CVTOOL.rglob("*.py")):
        strict = path.parent.name == "cli" or path.name == "render.py"
        found += _violations(path, strict)
    assert not found, "\n".join(found)


def test_the_private_name_check_can_fail(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import sys\nimport typer.core\nfrom typer._click import Context\n"
        "typer.core._TyperParameter.get_runtime_param = None\n"
        "sys.meta_path.insert(0, object())\n"
        "def f(param):\n    param._runtime_param = 1\n"
    )
    lax, strict = _violations(bad, False), _violations(bad, True)
    assert len(lax) == 3 and len(strict) == 4, (lax, strict)


def test_ctrl_c_outside_a_training_loop_exits_130_in_one_line(tmp_path):
    # A Ctrl-C outside a training loop (which catches its own and keeps the best
    # model): exit 130, as a shell reports SIGINT, no traceback, nothing written.
    code = (
        "import cvtool.data.canvas as c\n"
        "def stop(*a, **k):\n"
        "    raise KeyboardInterrupt\n"
        "c.make_canvas_splits = stop\n"
        "import sys\n"
        f"sys.argv = ['cvtool', 'data', 'make-canvas', {str(tmp_path / 'set')!r}]\n"
        "from cvtool.cli import main\n"
        "main()\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 130, out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "set").exists()
