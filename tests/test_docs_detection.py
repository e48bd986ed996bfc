"""docs/detection.md's worked example, run as written but on a small set.

Only sizes change: fewer and smaller canvases, a smaller grid and network,
fewer epochs (the substitutions below); every command and option is the page's.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "detection.md"
SMALL = {
    "--train 2000 --test 500": "--train 60 --test 12 --size 32 --max-objects 2 --min-scale 0.5 "
    "--max-scale 0.8",
    "--epochs 30": "--epochs 2 --grid 4 --validation 8 --arch 'conv:8x3:p=same, bn, relu, "
    "pool:4, conv:8x3:p=same, bn, relu, pool:{pool}, conv:{head}x1'",
}


def example() -> list[str]:
    part = DOC.read_text().split("## A worked example", 1)[1]
    block = re.search(r"```sh\n(.*?)```", part, re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def test_the_worked_example_runs(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    lines = example()
    assert len(lines) >= 4
    for line in lines:
        for big, small in SMALL.items():
            line = line.replace(big, small)
        args = shlex.split(line)
        assert args[0] == "cvtool"
        result = cli(*args[1:])
        assert result.exit_code == 0, (line, result.stderr)
    assert Path("detector.npz").is_file() and Path("dets.json").is_file()
    assert Path("dets.csv").read_text().startswith("image,class,x,y,w,h,score")
    assert len(list(Path("previews").glob("*.png"))) == 12
