"""Download MNIST and Fashion-MNIST into the cache, checked by MD5, written atomically.

``fetch_dataset(name)`` downloads the four IDX files of a named dataset into
``cache_dir()/name`` (or ``dest``), where ``load_dataset(name)`` finds them.
Each file streams into a temporary file beside its target; the MD5 of the
bytes received is compared with the published sum and only a verified file is
renamed into place. A failure (network, HTTP status, short body, checksum)
removes the temporary file, so nothing partial is ever left; files already
verified stay, and a second run skips them (a resume at file granularity).

The MD5 sums are the published ones: MNIST from ../shared/data/README.md
(the sums LeCun's page lists), Fashion-MNIST from the zalandoresearch
repository's README (also used by torchvision). Only the standard library
(urllib) is used. What is left out: mirrors tried in turn, proxies beyond what
urllib reads from the environment, byte-range resume.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cvtool.data.datasets import cache_dir
from cvtool.data.idx import load_idx_dir
from cvtool.errors import CvtoolError, check_choice
from cvtool.fileio import atomic_path

# (name -> download base URL, {file: md5})
SOURCES: dict[str, dict] = {
    "mnist": {
        # yann.lecun.com now refuses plain downloads; this is torchvision's mirror of the same files.
        "url_base": "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "md5": {
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        },
    },
    "fashion-mnist": {
        "url_base": "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        "md5": {
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
    },
}
CHUNK = 1 << 16

ProgressFn = Callable[[str, int, "int | None"], None]


@dataclass
class Fetched:
    """One file of a fetch: where it is, whether it was downloaded or already there, its MD5."""

    path: Path
    status: str  # "downloaded" or "present"
    md5: str
    bytes: int


def md5_file(path: str | os.PathLike) -> str:
    """Hex MD5 of a file, read in chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download(
    url: str,
    dest: str | os.PathLike,
    md5: str | None = None,
    *,
    timeout: float = 30.0,
    progress: ProgressFn | None = None,
) -> Fetched:
    """Download `url` to `dest` atomically, verifying the MD5 when given.

    Parameters
    ----------
    url : http(s):// or file:// address.
    dest : target file; its folder is created.
    md5 : expected hex digest, or None to skip the check.
    timeout : seconds to wait for the connection and for each read.
    progress : called as progress(file name, bytes so far, total or None).

    Raises
    ------
    CvtoolError
        Unreachable host, HTTP error status, a body shorter than announced, or
        a checksum mismatch. `dest` is then untouched and no temporary file remains.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)  # the cache folder is cvtool's own
    request = urllib.request.Request(url, headers={"User-Agent": "cvtool"})
    digest = hashlib.md5(usedforsecurity=False)
    received = 0
    try:
        with atomic_path(dest) as tmp:
            with urllib.request.urlopen(request, timeout=timeout) as resp, open(tmp, "wb") as fh:
                length = resp.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                if progress:
                    progress(dest.name, 0, total)
                for block in iter(lambda: resp.read(CHUNK), b""):
                    fh.write(block)
                    digest.update(block)
                    received += len(block)
                    if progress:
                        progress(dest.name, received, total)
                if total is not None and received != total:
                    raise CvtoolError(
                        f"Download of {url} stopped after {received} of {total} bytes."
                    )
                fh.flush()
                os.fsync(fh.fileno())
            got = digest.hexdigest()
            if md5 is not None and got != md5.lower():
                raise CvtoolError(
                    f"Checksum mismatch for {url}: MD5 {got}, expected {md5} (file not kept)."
                )
    except urllib.error.HTTPError as exc:
        raise CvtoolError(f"Cannot download {url}: HTTP {exc.code} {exc.reason}.") from exc
    except urllib.error.URLError as exc:
        raise CvtoolError(f"Cannot download {url}: {_reason(exc.reason)}.") from exc
    except (OSError, http.client.HTTPException) as exc:  # TimeoutError is an OSError
        raise CvtoolError(f"Cannot download {url}: {_reason(exc)}.") from exc
    return Fetched(dest, "downloaded", got, received)


def _reason(exc: object) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def fetch_dataset(
    name: str,
    dest: str | os.PathLike | None = None,
    *,
    url_base: str | None = None,
    checksums: dict[str, str] | None = None,
    timeout: float = 30.0,
    progress: ProgressFn | None = None,
) -> list[Fetched]:
    """Download the IDX files of a named dataset and check that they read.

    Parameters
    ----------
    name : 'mnist' or 'fashion-mnist'.
    dest : folder for the files; default ``cache_dir() / name``.
    url_base : replaces the default download base (a mirror, or a local server).
    checksums : {file name: md5} replacing the published sums (tests, mirrors of other data).
    timeout, progress : as in :func:`download`.

    Returns
    -------
    One :class:`Fetched` per file, in the order train images, train labels,
    test images, test labels.
    """
    hint = "It ships inside cvtool." if name == "mnist-sample" else ""
    check_choice("name", name, SOURCES, hint=hint)
    source = SOURCES[name]
    sums = dict(source["md5"]) if checksums is None else dict(checksums)
    base = (url_base or source["url_base"]).rstrip("/") + "/"
    folder = Path(dest) if dest is not None else cache_dir() / name
    if folder.exists() and not folder.is_dir():
        raise CvtoolError(f"The 'dir' parameter must be a folder. Got {str(folder)!r}, a file.")
    results = []
    for fname in source["md5"]:
        target = folder / fname
        expected = sums.get(fname)
        if target.is_file() and expected is not None:
            have = md5_file(target)
            if have == expected.lower():
                results.append(Fetched(target, "present", have, target.stat().st_size))
                continue
        results.append(download(base + fname, target, expected, timeout=timeout, progress=progress))
    load_idx_dir(folder, name)  # the files must also parse as a dataset
    return results
