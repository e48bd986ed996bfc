"""Downloads against a local HTTP server on 127.0.0.1 serving the mnist-sample files."""

from __future__ import annotations

import functools
import socket
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cvtool.data.datasets import find_dataset_dir, load_dataset
from cvtool.data.fetch import SOURCES, download, fetch_dataset, md5_file
from cvtool.errors import CvtoolError

SAMPLE = find_dataset_dir("mnist-sample")
SAMPLE_MD5 = {f: md5_file(SAMPLE / f) for f in SOURCES["mnist"]["md5"]}


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    """The local server must be reached directly even where a proxy is configured."""
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


class _ShortBody(_Quiet):
    """Announces more bytes than it sends, like a connection dropped mid-file."""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        self.wfile.write(b"\x00" * 100)


def _serve(handler):
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


@pytest.fixture(scope="module")
def sample_server():
    server, url = _serve(functools.partial(_Quiet, directory=str(SAMPLE)))
    yield url
    server.shutdown()
    server.server_close()


@pytest.fixture
def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return port  # nothing listens there any more


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_fetch_downloads_verifies_and_skips_present(tmp_path, sample_server):
    seen = []
    got = fetch_dataset(
        "mnist",
        tmp_path / "mnist",
        url_base=sample_server,
        checksums=SAMPLE_MD5,
        progress=lambda f, done, total: seen.append((f, done, total)),
    )
    assert [f.status for f in got] == ["downloaded"] * 4
    assert [f.md5 for f in got] == list(SAMPLE_MD5.values())
    assert leftovers(tmp_path / "mnist") == sorted(SAMPLE_MD5)
    size = (SAMPLE / "train-images-idx3-ubyte.gz").stat().st_size
    assert ("train-images-idx3-ubyte.gz", size, size) in seen  # the bar reached its total
    ds = load_dataset(tmp_path / "mnist")
    assert (len(ds.x_train), len(ds.x_test)) == (4000, 1000)
    again = fetch_dataset("mnist", tmp_path / "mnist", url_base=sample_server, checksums=SAMPLE_MD5)
    assert [f.status for f in again] == ["present"] * 4


def test_fetch_into_cache_is_found_by_name(tmp_path, sample_server, monkeypatch):
    monkeypatch.setenv("CVTOOL_CACHE", str(tmp_path / "cache"))
    fetch_dataset("mnist", url_base=sample_server, checksums=SAMPLE_MD5)
    assert (tmp_path / "cache" / "mnist" / "t10k-labels-idx1-ubyte.gz").is_file()
    assert len(load_dataset("mnist").x_train) == 4000


def test_checksum_mismatch_leaves_no_file(tmp_path, sample_server):
    # The published MNIST sums do not match the sample files: the first download must fail.
    with pytest.raises(CvtoolError, match="Checksum mismatch .*train-images.*expected f68b3c2d"):
        fetch_dataset("mnist", tmp_path / "m", url_base=sample_server)
    assert leftovers(tmp_path / "m") == []


def test_corrupt_file_already_there_is_replaced(tmp_path, sample_server):
    target = tmp_path / "m" / "train-labels-idx1-ubyte.gz"
    target.parent.mkdir()
    target.write_bytes(b"garbage")
    got = fetch_dataset("mnist", tmp_path / "m", url_base=sample_server, checksums=SAMPLE_MD5)
    assert got[1].status == "downloaded" and md5_file(target) == SAMPLE_MD5[target.name]


def test_unreachable_host_is_clear_error(tmp_path, closed_port):
    with pytest.raises(CvtoolError, match=r"Cannot download http://127.0.0.1:\d+/train-images"):
        fetch_dataset("mnist", tmp_path / "m", url_base=f"http://127.0.0.1:{closed_port}/")
    assert leftovers(tmp_path / "m") == []


def test_http_404_and_short_body(tmp_path, sample_server):
    with pytest.raises(CvtoolError, match="HTTP 404"):
        download(sample_server + "nope.gz", tmp_path / "nope.gz")
    server, url = _serve(_ShortBody)
    try:
        with pytest.raises(CvtoolError, match="Cannot download|stopped after"):
            download(url + "x.gz", tmp_path / "x.gz", timeout=5)
    finally:
        server.shutdown()
        server.server_close()
    assert leftovers(tmp_path) == []


def test_existing_file_survives_a_failed_download(tmp_path, closed_port):
    keep = tmp_path / "f.gz"
    keep.write_bytes(b"old")
    with pytest.raises(CvtoolError):
        download(f"http://127.0.0.1:{closed_port}/f.gz", keep)
    assert keep.read_bytes() == b"old" and leftovers(tmp_path) == ["f.gz"]


def test_unknown_dataset_and_bad_dir(tmp_path):
    with pytest.raises(CvtoolError, match="ships inside cvtool"):
        fetch_dataset("mnist-sample")
    with pytest.raises(CvtoolError, match="'name' parameter must be one of mnist, fashion-mnist"):
        fetch_dataset("cifar10")
    (tmp_path / "file").write_text("x")
    with pytest.raises(CvtoolError, match="'dir' parameter must be a folder"):
        fetch_dataset("mnist", tmp_path / "file")
