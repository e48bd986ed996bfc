"""Real shell pipelines: cvtool commands joined by bash pipes, '-', FIFOs and <(...).

Each test runs ``bash -c`` with a shell function ``cvtool`` that runs this
tree's code (``$PYTHON -m cvtool``), so what is checked is what a user types.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")

GT = {
    "images": [{"id": 1, "width": 100, "height": 100}, {"id": 2, "width": 100, "height": 100}],
    "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}],
    "annotations": [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 30, 30]},
        {"id": 2, "image_id": 1, "category_id": 2, "bbox": [60, 60, 20, 20]},
        {"id": 3, "image_id": 2, "category_id": 1, "bbox": [5, 5, 40, 40]},
    ],
}
DETS = """image,class,x,y,w,h,score
1,1,10,10,30,30,0.9
1,1,11,11,30,30,0.8
1,2,60,60,20,20,0.7
2,1,5,5,40,40,0.95
2,1,6,5,40,40,0.5
"""


def sh(script: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    """Run `script` with bash -c (pipefail), `cvtool` meaning this tree's `python -m cvtool`."""
    env = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    prelude = 'set -euo pipefail\ncvtool() { "$PYTHON" -m cvtool "$@"; }\n'
    return subprocess.run(
        ["bash", "-c", prelude + script],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return result.stdout


@pytest.fixture
def boxes(tmp_path):
    (tmp_path / "gt.json").write_text(json.dumps(GT))
    (tmp_path / "dets.csv").write_text(DETS)
    return tmp_path


def test_nms_output_piped_into_map(boxes):
    piped = json.loads(
        ok(
            sh(
                "cvtool iou nms dets.csv --out - | cvtool iou map --gt gt.json --dets - --json",
                boxes,
            )
        )
    )
    # the same through files, to compare
    ok(sh("cvtool iou nms dets.csv --out kept.csv", boxes))
    kept = (boxes / "kept.csv").read_text().splitlines()
    assert kept[0] == DETS.splitlines()[0] and len(kept) == 1 + 3  # two duplicates removed
    direct = json.loads(ok(sh("cvtool iou map --gt gt.json --dets kept.csv --json", boxes)))
    assert piped["stats"] == direct["stats"]
    assert piped["stats"]["AP50"] == pytest.approx(1.0)


def test_nms_report_goes_to_stderr_when_the_result_is_on_stdout(boxes):
    result = sh("cvtool iou nms dets.csv --out -", boxes)
    assert ok(result).splitlines() == [
        line for i, line in enumerate(DETS.splitlines()) if i not in (2, 5)
    ]
    assert "kept" in result.stderr


def test_out_dev_stdout_writes_stdout_and_keeps_the_device(boxes):
    before = os.readlink("/dev/stdout") if os.path.islink("/dev/stdout") else None
    out = ok(sh("cvtool iou nms dets.csv --out /dev/stdout | wc -l", boxes))
    assert int(out.strip()) == 4
    after = os.readlink("/dev/stdout") if os.path.islink("/dev/stdout") else None
    assert before == after  # the link (or device) is still there, not replaced by a file


def test_output_through_a_symlink_updates_the_target_and_keeps_the_link(boxes):
    target = boxes / "target.csv"
    target.write_text("old\n")
    (boxes / "link.csv").symlink_to(target)
    ok(sh("cvtool iou nms dets.csv --out link.csv --force --json >/dev/null", boxes))
    assert (boxes / "link.csv").is_symlink()
    assert os.readlink(boxes / "link.csv") == str(target)
    assert target.read_text().splitlines()[0] == "image,class,x,y,w,h,score"
    assert len(target.read_text().splitlines()) == 4


def test_existing_output_is_refused_without_force(boxes):
    (boxes / "kept.csv").write_text("keep me\n")
    result = sh("cvtool iou nms dets.csv --out kept.csv", boxes)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("error: ") and "--force" in result.stderr
    assert (boxes / "kept.csv").read_text() == "keep me\n"


def test_process_substitution_and_fifo_inputs(boxes):
    a = json.loads(ok(sh("cvtool iou matrix <(head -3 dets.csv) dets.csv --json", boxes)))
    assert a["shape"] == [2, 5]
    os.mkfifo(boxes / "pipe.csv")
    b = json.loads(
        ok(sh("cat dets.csv > pipe.csv & cvtool iou matrix pipe.csv dets.csv --json; wait", boxes))
    )
    assert b["shape"] == [5, 5]


def test_augment_boxes_straight_into_iou(tmp_path):
    rows = "image,class,x,y,w,h,score\n0,digit,4,4,20,20,0.9\n1,digit,2,3,10,12,0.8\n"
    (tmp_path / "b.csv").write_text(rows)
    script = (
        "cvtool augment --boxes b.csv --boxes-out - --rotation 0 --zoom 0 --translate 0 "
        "| cvtool iou map --gt b.csv --dets - --mode voc12 --json"
    )
    doc = json.loads(ok(sh(script, tmp_path)))
    assert doc["map"] == pytest.approx(1.0)  # no movement: the boxes come back unchanged
    # with movement the boxes still parse as the one contract, in the form they were read
    moved = ok(sh("cvtool augment --boxes b.csv --boxes-out - --seed 3 2>/dev/null", tmp_path))
    lines = moved.splitlines()
    assert lines[0] == "image,class,x,y,w,h,score" and len(lines) == 3
    assert [line.split(",")[1] for line in lines[1:]] == ["digit", "digit"]


def test_predict_json_into_python(tmp_path):
    from cvtool.nn.model import Sequential
    from cvtool.nn.spec import parse_spec

    spec = "input:2x2x1, flatten, dense:3:softmax"
    Sequential.from_spec(parse_spec(spec), spec_text=spec).build(seed=1).save(tmp_path / "m.npz")
    x = np.arange(8, dtype=np.uint8).reshape(2, 2, 2) * 30
    np.save(tmp_path / "x.npy", x)
    code = "import json,sys; d=json.load(sys.stdin); print(len(d['predictions']))"
    out = ok(sh(f'cvtool predict m.npz x.npy --json | "$PYTHON" -c "{code}"', tmp_path))
    assert out.strip() == "2"
    piped = json.loads(ok(sh("cat x.npy | cvtool predict m.npz - --json", tmp_path)))
    direct = json.loads(ok(sh("cvtool predict m.npz x.npy --json", tmp_path)))
    assert [p["probabilities"] for p in piped["predictions"]] == [
        p["probabilities"] for p in direct["predictions"]
    ]
    # the same pixels as floats 0..255 predict the same (the training rule)
    np.save(tmp_path / "xf.npy", x.astype(np.float32))
    floats = json.loads(ok(sh("cvtool predict m.npz xf.npy --json", tmp_path)))
    for a, b in zip(floats["predictions"], direct["predictions"], strict=True):
        assert a["probabilities"] == pytest.approx(b["probabilities"], rel=1e-5)


def test_layer_calc_spec_from_process_substitution_stdin_and_at_file(tmp_path):
    spec = "input:28x28x1, conv:4x3:relu, pool:2, flatten, dense:10:softmax"
    direct = json.loads(ok(sh(f"cvtool layer-calc net '{spec}' --json", tmp_path)))
    for form in (f"<(echo '{spec}')", f"@<(echo '{spec}')", "-"):
        stdin = spec if form == "-" else None
        got = json.loads(ok(sh(f"cvtool layer-calc net {form} --json", tmp_path, stdin=stdin)))
        assert got["totals"] == direct["totals"], form


def test_data_convert_to_stdout_and_back(tmp_path):
    out = ok(
        sh("cvtool data convert mnist-sample - 2>/dev/null | cvtool data info - --json", tmp_path)
    )
    doc = json.loads(out)
    assert doc["train"] == 4000 and doc["test"] == 1000


def test_two_outputs_on_stdout_are_refused(tmp_path):
    rows = "image,class,x,y,w,h\n0,digit,4,4,20,20\n"
    (tmp_path / "b.csv").write_text(rows)
    result = sh("cvtool augment --boxes b.csv --boxes-out - --params -", tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "stdout" in result.stderr


def test_detector_output_pipes_into_iou_nms_and_iou_map(tmp_path):
    """make-canvas, a short train-detector, then detect | iou nms | iou map, all through pipes."""
    arch = (
        "conv:8x3:p=same, bn, relu, pool:4, conv:16x3:p=same, bn, relu, pool:{pool}, conv:{head}x1"
    )
    script = f"""
cvtool data make-canvas digits --train 60 --test 10 --size 32 --max-objects 2 --min-scale 0.5 \\
    --max-scale 0.8 > /dev/null
cvtool train-detector --dataset digits --grid 4 --epochs 3 --eta 0.01 --validation 8 \\
    --batch-size 16 --arch '{arch}' --out det.npz --json > /dev/null
cvtool detect det.npz --dataset digits --out - --score-threshold 0.001 \\
    | cvtool iou nms - --iou 0.3 --out - \\
    | cvtool iou map --gt digits/annotations/test.json --dets - --json
"""
    doc = json.loads(ok(sh(script, tmp_path)))
    assert doc["images"] == 10 and doc["detections"] > 0
    assert set(doc["stats"]) >= {"AP", "AP50"}
