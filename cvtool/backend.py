"""The array module switch: NumPy on the CPU or CuPy on an NVIDIA GPU.

Library code asks this module for ``xp`` and uses only ``xp.*``; nothing else
in cvtool imports cupy. Arrays cross to the host only at the edges
(``to_numpy``) and to the device with ``xp.asarray``. Probing for a GPU
happens when a backend is asked for, never at import time.

Seeding: ``host_rng(seed)`` is a NumPy Generator, used for everything that is
sampled on the host (weight initialisation, shuffles, splits), so the same seed
gives the same result on the same backend and dtype. ``device_rng(seed, xp)``
samples on the device (dropout masks) without a transfer.
"""

from __future__ import annotations

import os
from functools import lru_cache

import numpy as np

from cvtool.errors import CvtoolError, check_choice

BACKENDS = ("numpy", "cupy", "auto")
DTYPES = ("float32", "float64")
ENV_VAR = "CVTOOL_BACKEND"


@lru_cache(maxsize=1)
def _cupy_status() -> tuple[object | None, str]:
    """(cupy module or None, reason it is unusable)."""
    try:
        import cupy  # the only cupy import in cvtool
    except Exception as exc:  # ImportError, or a broken CUDA install
        return None, f"CuPy is not installed or does not import ({type(exc).__name__})"
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return None, "CuPy sees no CUDA device"
        # A tiny kernel: a driver that answers but cannot run code is no device.
        int((cupy.arange(4) * 2).sum())
    except Exception as exc:
        return None, f"CuPy cannot use a CUDA device ({type(exc).__name__}: {exc})".split("\n")[0]
    return cupy, ""


def gpu_available() -> bool:
    """True when CuPy imports and runs a kernel on a device."""
    return _cupy_status()[0] is not None


def resolve_backend(name: str | None = None) -> str:
    """Turn 'numpy' | 'cupy' | 'auto' | None (from $CVTOOL_BACKEND) into 'numpy' or 'cupy'.

    Raises
    ------
    CvtoolError
        For an unknown name, or 'cupy' where CuPy or a GPU is missing.
    """
    if name is None:
        name = os.environ.get(ENV_VAR) or "auto"
    name = name.strip().lower()
    check_choice("backend", name, BACKENDS)
    if name == "auto":
        return "cupy" if gpu_available() else "numpy"
    if name == "cupy" and not gpu_available():
        raise CvtoolError(
            f"--backend cupy is unavailable: {_cupy_status()[1]}. Use --backend numpy."
        )
    return name


def get_xp(name: str | None = None):
    """The array module for a backend name (see ``resolve_backend``)."""
    if resolve_backend(name) == "cupy":
        return _cupy_status()[0]
    return np


def backend_name(xp) -> str:
    """'numpy' or 'cupy' for an array module."""
    return "numpy" if xp is np else "cupy"


def array_module(x):
    """The array module of an array (``cupy.get_array_module`` without importing cupy)."""
    mod = type(x).__module__
    if mod.startswith("cupy"):
        return _cupy_status()[0]
    return np


def to_numpy(x):
    """A NumPy copy of x (no copy when x is already a NumPy array)."""
    if hasattr(x, "get") and type(x).__module__.startswith("cupy"):
        return x.get()
    return np.asarray(x)


def synchronize(xp) -> None:
    """Wait for the device to finish queued work (for honest timings)."""
    if xp is not np:
        xp.cuda.Device().synchronize()


def resolve_dtype(name: str):
    """np.float32 or np.float64 from its name."""
    return np.dtype(check_choice("dtype", name, DTYPES))


def host_rng(seed: int | None) -> np.random.Generator:
    """A NumPy Generator for host-side sampling; the same seed gives the same stream."""
    return np.random.default_rng(seed)


def device_rng(seed: int | None, xp):
    """A Generator that samples on xp's device (NumPy's, or CuPy's)."""
    return xp.random.default_rng(seed)
