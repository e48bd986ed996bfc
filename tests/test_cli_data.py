"""`cvtool data list|info|convert|fetch`: happy paths (parsed --json) and bad input (exit 2)."""

from __future__ import annotations

import functools
import gzip
import json
import socket
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from cvtool.data import fetch
from cvtool.data.datasets import find_dataset_dir

SAMPLE = find_dataset_dir("mnist-sample")
FASHION_DEB = Path("/usr/share/datasets/fashion-mnist")


def ok_json(result):
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def one_line_error(result, pattern):
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.rstrip("\n").split("\n")  # a stray blank line would count
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert pattern in lines[0], lines[0]
    assert "Traceback" not in result.stderr


def test_info_mnist_sample(cli):
    doc = ok_json(cli("data", "info", "mnist-sample", "--json"))
    assert (doc["train"], doc["test"]) == (4000, 1000)
    assert doc["image_shape"] == [28, 28] and doc["dtype"] == "uint8"
    assert doc["num_classes"] == 10 and doc["balanced"] is True
    assert {(c["train"], c["test"]) for c in doc["classes"]} == {(400, 100)}
    human = cli("data", "info", "mnist-sample")
    assert human.exit_code == 0
    for text in ("4,000", "1,000", "28x28", "uint8", "balanced"):
        assert text in human.stdout


def test_list_shows_present_and_absent(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("CVTOOL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CVTOOL_FASHION_DIR", str(SAMPLE))  # stands in for the Debian folder
    rows = {r["name"]: r for r in ok_json(cli("data", "list", "--json"))["datasets"]}
    assert rows["mnist-sample"]["present"] and rows["mnist-sample"]["train"] == 4000
    assert rows["fashion-mnist"]["present"] and rows["fashion-mnist"]["path"] == str(SAMPLE)
    assert not rows["mnist"]["present"] and rows["mnist"]["train"] == 60000
    monkeypatch.setenv("CVTOOL_FASHION_DIR", str(tmp_path / "none"))
    rows = {r["name"]: r for r in ok_json(cli("data", "list", "--json"))["datasets"]}
    assert not rows["fashion-mnist"]["present"]
    human = cli("data", "list")
    assert "fashion-mnist" in human.stdout and "cvtool data fetch mnist" in human.stdout


@pytest.mark.skipif(not FASHION_DEB.is_dir(), reason="Debian package dataset-fashion-mnist absent")
def test_list_finds_the_debian_fashion_mnist(cli, monkeypatch):
    monkeypatch.delenv("CVTOOL_FASHION_DIR", raising=False)
    rows = {r["name"]: r for r in ok_json(cli("data", "list", "--json"))["datasets"]}
    assert rows["fashion-mnist"]["present"]
    assert (rows["fashion-mnist"]["train"], rows["fashion-mnist"]["test"]) == (60000, 10000)


@pytest.mark.parametrize("out,fmt", [("s.npz", None), ("s.csv", None), ("idx", None)])
def test_convert_then_info(cli, tmp_path, out, fmt):
    args = ["data", "convert", "mnist-sample", tmp_path / out, "--json"]
    doc = ok_json(cli(*args, *(["--format", fmt] if fmt else [])))
    assert doc["format"] == (fmt or out.split(".")[-1])
    info = ok_json(cli("data", "info", tmp_path / out, "--json"))
    assert (info["train"], info["test"], info["image_shape"]) == (4000, 1000, [28, 28])
    assert info["balanced"] and info["format"] == doc["format"]
    one_line_error(cli(*args, *(["--format", fmt] if fmt else [])), "exists")
    assert cli(*args, "--force", *(["--format", fmt] if fmt else [])).exit_code == 0


def test_convert_to_image_folder_and_back(cli, tmp_path, tiny_npz):
    doc = ok_json(
        cli("data", "convert", tiny_npz, tmp_path / "png", "--format", "folder", "--json")
    )
    assert doc["written"] == [str(tmp_path / "png")]
    assert sorted(p.name for p in (tmp_path / "png").iterdir()) == ["test", "train"]
    info = ok_json(cli("data", "info", tmp_path / "png", "--json"))
    assert (info["format"], info["train"], info["test"], info["image_shape"]) == (
        "folder",
        30,
        10,
        [6, 6],
    )
    assert [c["name"] for c in info["classes"]] == [str(i) for i in range(10)]
    back = ok_json(cli("data", "convert", tmp_path / "png", tmp_path / "back.npz", "--json"))
    assert back["train"] == 30


def test_convert_csv_with_shape(cli, tmp_path):
    (tmp_path / "r.csv").write_text("1,0,1,2,3,4,5\n0,5,4,3,2,1,0\n")
    one_line_error(cli("data", "info", tmp_path / "r.csv"), "--shape")
    info = ok_json(cli("data", "info", tmp_path / "r.csv", "--shape", "2x3", "--json"))
    assert info["image_shape"] == [2, 3]
    doc = ok_json(
        cli("data", "convert", tmp_path / "r.csv", tmp_path / "r.npz", "--shape", "2x3", "--json")
    )
    assert doc["image_shape"] == "2x3"
    with np.load(tmp_path / "r.npz") as z:
        assert z["x_train"][0].tolist() == [[0, 1, 2], [3, 4, 5]]


@pytest.fixture
def tiny_npz(tmp_path):
    from cvtool.data.datasets import Dataset
    from cvtool.data.formats import write_any

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (40, 6, 6), dtype=np.uint8)
    ds = Dataset("tiny", x[:30], np.arange(30) % 10, x[30:], np.arange(10) % 10)
    write_any(ds, tmp_path / "tiny.npz")
    return tmp_path / "tiny.npz"


def test_bad_inputs_exit_2_with_one_line(cli, tmp_path, tiny_npz):
    one_line_error(cli("data", "info", "cifar-11"), "Unknown dataset 'cifar-11'")
    one_line_error(cli("data", "info", tmp_path / "missing.npz"), "Unknown dataset")
    (tmp_path / "empty").mkdir()
    one_line_error(cli("data", "info", tmp_path / "empty"), "empty folder")
    assert cli("data", "convert", tiny_npz, tmp_path / "idx").exit_code == 0
    labels = tmp_path / "idx" / "t10k-labels-idx1-ubyte.gz"
    raw = gzip.decompress(labels.read_bytes())
    labels.write_bytes(gzip.compress(raw[:-10]))
    one_line_error(cli("data", "info", tmp_path / "idx"), "truncated")
    labels.write_bytes(b"\x01\x02\x08\x01")
    one_line_error(cli("data", "info", tmp_path / "idx"), "magic number")
    labels.write_bytes(
        gzip.compress(b"\x00\x00\x08\x01" + (999).to_bytes(4, "big") + b"\x00" * 999)
    )
    one_line_error(cli("data", "info", tmp_path / "idx"), "10 images but 999 labels")
    assert cli("data", "convert", tiny_npz, tmp_path / "png", "--format", "folder").exit_code == 0
    (tmp_path / "png" / "test" / "3" / "zz.png").write_bytes(b"broken")
    one_line_error(cli("data", "info", tmp_path / "png"), "Cannot read image")
    one_line_error(cli("data", "convert", "mnist-sample", tmp_path / "x.h5"), "output format")
    one_line_error(
        cli("data", "convert", "mnist-sample", tmp_path / "x", "--format", "tiff"), "'format'"
    )
    one_line_error(cli("data", "info", "mnist-sample", "--shape", "big"), "'shape'")
    one_line_error(cli("data", "nope"), "No such command")


# ---------------------------------------------------------------- fetch


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    """The local server must be reached directly even where a proxy is configured."""
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def sample_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(SAMPLE)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_fetch_from_local_server(cli, tmp_path, sample_url, monkeypatch):
    sums = {f: fetch.md5_file(SAMPLE / f) for f in fetch.SOURCES["mnist"]["md5"]}
    monkeypatch.setitem(fetch.SOURCES, "mnist", {"url_base": sample_url, "md5": sums})
    monkeypatch.setenv("CVTOOL_CACHE", str(tmp_path / "cache"))
    doc = ok_json(cli("data", "fetch", "mnist", "--json"))
    assert doc["dir"] == str(tmp_path / "cache" / "mnist")
    assert [f["status"] for f in doc["files"]] == ["downloaded"] * 4
    rows = {r["name"]: r for r in ok_json(cli("data", "list", "--json"))["datasets"]}
    assert rows["mnist"]["present"] and rows["mnist"]["train"] == 4000
    again = cli("data", "fetch", "mnist")
    assert again.exit_code == 0 and "present" in again.stdout


def test_fetch_checksum_mismatch_and_unreachable(cli, tmp_path, sample_url):
    out = tmp_path / "m"
    one_line_error(
        cli("data", "fetch", "mnist", "--dir", out, "--url-base", sample_url), "Checksum mismatch"
    )
    assert not out.exists() or list(out.iterdir()) == []
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    one_line_error(
        cli(
            "data", "fetch", "fashion-mnist", "--dir", out, "--url-base", f"http://127.0.0.1:{port}"
        ),
        "Cannot download",
    )
    assert not out.exists() or list(out.iterdir()) == []
    one_line_error(cli("data", "fetch", "mnist-sample"), "ships inside cvtool")
