"""cvtool layer-calc: single layers, whole networks, --json/--csv, bad input, start-up."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pytest

CONV1 = ("--input", "227x227x3", "--filters", "96", "--kernel", "11", "--stride", "4")


def as_json(result):
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def one_error_line(result) -> str:
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert result.stdout == ""
    return lines[0]


def test_conv_alexnet(cli):
    doc = as_json(cli("layer-calc", "conv", *CONV1, "--json"))
    assert doc["output_shape"] == [55, 55, 96]
    assert (doc["weights"], doc["biases"], doc["params"]) == (34_848, 96, 34_944)
    assert doc["macs"] == 105_415_200 and doc["rf"] == [11, 11] and doc["jump"] == [4, 4]
    assert doc["formula"]["width"] == "(227 - 11 + 2*0) / 4 + 1 = 55"


def test_conv_table_shows_weights_and_biases_apart(cli):
    result = cli("layer-calc", "conv", *CONV1)
    assert result.exit_code == 0
    assert "55x55x96" in result.stdout
    assert "34,848" in result.stdout and "34,944" in result.stdout


def test_conv_no_bias_same_dilation(cli):
    doc = as_json(
        cli("layer-calc", "conv", "-i", "28x28", "-f", "20", "-k", "5", "--no-bias", "--json")
    )
    assert doc["output_shape"] == [24, 24, 20] and doc["params"] == 500 and doc["biases"] == 0
    doc = as_json(
        cli(
            "layer-calc",
            "conv",
            "-i",
            "32x32x3",
            "-f",
            "8",
            "-k",
            "3",
            "-d",
            "2",
            "-p",
            "same",
            "--json",
        )  # fmt: skip
    )
    assert doc["output_shape"] == [32, 32, 8] and doc["padding"] == [2, 2]


def test_pool_types(cli):
    for kind in ("max", "avg", "l2"):
        doc = as_json(cli("layer-calc", "pool", "-i", "24x24x20", "--type", kind, "--json"))
        assert doc["output_shape"] == [12, 12, 20] and doc["params"] == 0
    doc = as_json(cli("layer-calc", "pool", "-i", "55x55x96", "-k", "3", "-s", "2", "--json"))
    assert doc["output_shape"] == [27, 27, 96]


def test_dense_flatten_dropout(cli):
    doc = as_json(cli("layer-calc", "dense", "-i", "784", "-u", "20", "--json"))
    assert (doc["weights"], doc["biases"]) == (15_680, 20)
    doc = as_json(cli("layer-calc", "dense", "-i", "7x7x512", "-u", "4096", "--json"))
    assert doc["weights"] == 102_760_448 and "flattens" in doc["note"]
    assert as_json(cli("layer-calc", "flatten", "-i", "7x7x512", "--json"))["output_shape"] == [
        25088
    ]
    doc = as_json(cli("layer-calc", "dropout", "-i", "4096", "-r", "0.5", "--json"))
    assert doc["output_shape"] == [4096] and doc["params"] == 0


def test_net_fully_connected_sizes(cli):
    doc = as_json(cli("layer-calc", "net", "784,20,10,5", "--json"))
    t = doc["totals"]
    assert (t["weights"], t["biases"], t["params"]) == (15_930, 35, 15_965)


def test_net_keras_course_preset_and_string_agree(cli):
    spec = (
        "input:28x28x1, conv:64x3:relu, conv:32x3:relu, conv:32x3:relu, flatten, "
        "dense:64:relu, dense:10:softmax"
    )
    a = as_json(cli("layer-calc", "net", "keras-course", "--json"))
    b = as_json(cli("layer-calc", "net", spec, "--json"))
    assert a["totals"]["params"] == b["totals"]["params"] == 1_020_298
    assert "forward pass only" in a["counts"]


def test_net_from_file_and_stdin(cli, tmp_path):
    path = tmp_path / "nielsen.spec"
    path.write_text("# Nielsen chapter 6\ninput:28x28x1\nconv:20x5:relu\npool:2\nconv:40x5:relu\n")
    for args in (("--spec", str(path)), (f"@{path}",), (str(path),)):
        doc = as_json(cli("layer-calc", "net", *args, "--json"))
        assert [r["output_shape"][0] for r in doc["rows"]] == [28, 24, 12, 8]
    doc = as_json(cli("layer-calc", "net", "-", "--json", input=path.read_text()))
    assert doc["rows"][-1]["output_shape"] == [8, 8, 40]


def test_net_input_option_and_batch(cli):
    doc = as_json(
        cli(
            "layer-calc",
            "net",
            "conv:8x3, flatten, dense:10",
            "--input",
            "10x10x1",
            "-b",
            "4",
            "--dtype",
            "float16",
            "--json",
        )  # fmt: skip
    )
    t = doc["totals"]
    assert t["forward_bytes"] == (100 + 8 * 8 * 8 + 10) * 4 * 2
    assert t["forward_backward_bytes"] == 2 * t["forward_bytes"]


def test_net_cols_and_csv(cli):
    result = cli("layer-calc", "net", "nielsen-ch6", "--csv", "--cols", "layer,output,params,rf")
    assert result.exit_code == 0, result.stderr
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["Layer", "Output shape", "Param #", "Receptive field"]
    assert rows[2] == ["conv2d", "24x24x20", "520", "5"]
    assert rows[-1] == ["dense_1", "10", "1010", "all"]
    table = cli("layer-calc", "net", "nielsen-ch6", "--cols", "num_params,mult_adds")
    assert table.exit_code == 0 and "MACs" in table.stdout and "Output shape" not in table.stdout


def test_net_floor_says_so(cli):
    bad = cli("layer-calc", "net", "keras-course-improved")
    assert "--floor" in one_error_line(bad)
    doc = as_json(cli("layer-calc", "net", "keras-course-improved", "--floor", "--json"))
    assert doc["notes"][0].startswith("--floor")
    human = cli("layer-calc", "net", "keras-course-improved", "--floor")
    assert "floor rounding accepted on purpose" in human.stdout


def test_net_help_documents_grammar(cli):
    result = cli("layer-calc", "net", "--help")
    assert result.exit_code == 0
    for text in ("conv:FxK", "pool:K", "dense:UNITS", "input:28x28x1", "--cols", "same"):
        assert text in result.stdout


@pytest.mark.parametrize(
    "args, needle",
    [
        (("conv", "-i", "28x28x1", "-f", "20", "-k", "5", "-s", "2"), "stride 1 would make"),
        (("conv", "-i", "4x4x1", "-f", "2", "-k", "7"), "larger than the padded input"),
        (("conv", "-i", "28x28x1", "-f", "2", "-k", "4", "-p", "same"), "odd kernel"),
        (("conv", "-i", "28x", "-f", "2", "-k", "3"), "Input shape"),
        (("conv", "-i", "28x28x1", "-f", "0", "-k", "3"), "filters must be an int >= 1"),
        (("conv", "-i", "28x28x1", "-f", "2", "-k", "3", "-p", "-1"), "padding"),
        (
            ("conv", "-i", "28x28x1", "-f", "two", "-k", "3"),
            "'--filters' / '-f': Input should be a valid integer",
        ),
        (("pool", "-i", "24x24x3", "--type", "median"), "'type'"),
        (("pool", "-i", "8x8x3", "-k", "2", "-p", "2"), "at most half the window"),
        (("dropout", "-i", "10", "-r", "1.5"), "0 <= RATE < 1"),
        (("net", "conv:8x3, dense:10"), "No input shape"),
        (("net", "input:28x28x1, conv:8x3, warp:2"), "Unknown layer 'warp'"),
        (("net", "keras-course", "--cols", "colour"), "'cols'"),
        (("net", "keras-course", "--dtype", "float8"), "'dtype'"),
        (("net", "keras-course", "-b", "0"), "'batch'"),
        (("net", "input:784, dense:10", "--input", "28x28x1"), "disagrees"),
        (("net",), "SPEC or as --spec"),
        (("net", "@/nonexistent/spec.txt"), "not found"),
    ],
)
def test_bad_input_exits_2_with_one_line(cli, args, needle):
    line = one_error_line(cli("layer-calc", *args))
    assert needle in line, line


@pytest.mark.parametrize("output", ["--json", "--csv"])
def test_starts_without_numpy_or_rich_tables(output):
    """No NumPy, and Rich's console/table only when a table is drawn.

    Pydantic is loaded: Typer 0.29 coerces every option value through a Pydantic
    TypeAdapter, and cvtool no longer reaches into Typer to avoid it.
    """
    code = (
        "import sys\n"
        f"sys.argv = ['cvtool', 'layer-calc', 'net', 'keras-course', '{output}']\n"
        "from cvtool.cli import main\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "heavy = ('numpy', 'typer.rich_utils', 'torch', 'rich.console', 'rich.table',\n"
        "         'cvtool.cli.knn', 'cvtool.cli.train_cnn')\n"
        "print(sorted(m for m in heavy if m in sys.modules), file=sys.stderr)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    params = (
        json.loads(out.stdout)["totals"]["params"]
        if output == "--json"
        else sum(int(row[3]) for row in csv.reader(out.stdout.splitlines()[1:]))
    )
    assert params == 1_020_298
    assert out.stderr.strip().splitlines()[-1] == "[]"


def test_console_entry_point_matches_the_full_app(cli):
    """main() runs layer-calc under a root holding only its group; same answers."""
    args = ["layer-calc", "net", "nielsen-ch6", "--json"]
    code = f"import sys; sys.argv = ['cvtool', *{args!r}]\nfrom cvtool.cli import main\nmain()"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == as_json(cli(*args))
    bad = subprocess.run(
        [sys.executable, "-m", "cvtool", "layer-calc", "conv", "-i", "5x5x1", "-f", "1", "-k", "9"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and bad.stdout == ""
