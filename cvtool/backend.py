"""The array module switch: NumPy on the CPU or CuPy on an NVIDIA GPU.

Library code asks this module for ``xp`` and uses only ``xp.*``; nothing else
in cvtool imports cupy. Arrays cross to the host only at the edges
(``to_numpy``) and to the device with ``xp.asarray``. Probing for a GPU
happens when a backend is asked for, never at import time.

Seeding: ``host_rng(seed)`` is a NumPy Generator, used for everything that is
sampled on the host (weight initialisation, shuffles, splits), so the same seed
gives the same result on the same backend and dtype. ``device_rng(seed, xp)``
samples on the device (dropout masks) without a transfer.

Other array modules can be registered (``register_backend``): the tests add
the strict CuPy-like CPU backend (:mod:`cvtool.testing.strict`) so that every
backend-parametrised test and ``--backend strict`` in in-process CLI tests run
the device code paths without a GPU. Registered names are not offered in help.

``auto`` picks the GPU only where it pays (``choose``): a mini-batch step of
fewer than ``GPU_MIN_MACS`` multiply-adds is launch-bound on a GPU (each of its
tens of kernels costs a ~10 us launch while the arithmetic would take a few),
so it stays on NumPy: an MLP at mini-batch 10 takes 8.2 s per epoch with
PyTorch on an H100 and 0.27 s on two CPU cores. Work of unknown size (kNN,
augmentation, IoU matrices: large array operations) goes to the GPU when one
answers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from cvtool.errors import CvtoolError, check_choice

BACKENDS = ("numpy", "cupy", "auto")
DTYPES = ("float32", "float64")
ENV_VAR = "CVTOOL_BACKEND"
# Forward multiply-adds per mini-batch step below which a GPU is launch-bound: at ~30 kernel
# launches of ~10 us per step, a step costs ~0.3 ms on a GPU whatever its size, which two CPU
# cores (~25 G multiply-adds/s, x3 for the backward pass) match at ~2.5 M; 10 M leaves margin.
GPU_MIN_MACS = 10_000_000

_EXTRA: dict[str, tuple[object, type]] = {}  # name -> (array module, its array type)


def register_backend(name: str, module, array_type: type) -> None:
    """Add an array module under a name (tests register the strict backend).

    ``get_xp(name)``, ``--backend name``, ``array_module``, ``backend_name``,
    ``to_numpy`` and ``synchronize`` then know it; help texts do not list it.
    The module must offer ``asnumpy`` and ``cuda.Device().synchronize()``.
    """
    _EXTRA[name.strip().lower()] = (module, array_type)


def unregister_backend(name: str) -> None:
    """Forget a backend added by ``register_backend`` (no error if absent)."""
    _EXTRA.pop(name.strip().lower(), None)


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


@dataclass(frozen=True)
class Choice:
    """A resolved backend: its name ('numpy', 'cupy' or a registered one) and why."""

    name: str
    reason: str

    @property
    def xp(self):
        if self.name == "numpy":
            return np
        if self.name == "cupy":
            return _cupy_status()[0]
        return _EXTRA[self.name][0]


def choose(name: str | None = None, *, macs_per_step: float | None = None) -> Choice:
    """Resolve a backend name (None: $CVTOOL_BACKEND, else 'auto') with the reason for it.

    Parameters
    ----------
    name : 'numpy', 'cupy', 'auto', a registered name, or None.
    macs_per_step : forward multiply-adds of one mini-batch step (batch size x
        the network's MACs per example), when known; ``auto`` keeps a step below
        ``GPU_MIN_MACS`` on NumPy even where a GPU answers.

    Raises
    ------
    CvtoolError
        For an unknown name, or 'cupy' where CuPy or a GPU is missing.
    """
    if name is None:
        name = os.environ.get(ENV_VAR) or "auto"
    name = str(name).strip().lower()
    if name in _EXTRA:
        return Choice(name, "asked for (a registered test backend)")
    check_choice("backend", name, BACKENDS)
    if name == "numpy":
        return Choice("numpy", "asked for")
    if name == "cupy":
        if not gpu_available():
            raise CvtoolError(
                f"--backend cupy is unavailable: {_cupy_status()[1]}. Use --backend numpy."
            )
        return Choice("cupy", "asked for")
    if not gpu_available():
        return Choice("numpy", f"auto, no GPU: {_cupy_status()[1]}")
    if macs_per_step is not None and macs_per_step < GPU_MIN_MACS:
        return Choice(
            "numpy",
            f"auto, {_millions(macs_per_step)} multiply-adds per step is launch-bound on a GPU "
            f"(the GPU from {_millions(GPU_MIN_MACS)})",
        )
    if macs_per_step is None:
        return Choice("cupy", "auto, a GPU answers")
    return Choice(
        "cupy", f"auto, a GPU answers and a step is {_millions(macs_per_step)} multiply-adds"
    )


def _millions(n: float) -> str:
    return f"{n / 1e6:.3g} M"


def describe(name: str | None = None, *, macs_per_step: float | None = None) -> str:
    """One line for a run's header: the backend ``choose`` picks and why, e.g.
    ``'numpy: auto, 0.238 M multiply-adds per step is launch-bound on a GPU (the GPU from 10 M)'``.
    """
    c = choose(name, macs_per_step=macs_per_step)
    return f"{c.name}: {c.reason}"


def resolve_backend(name: str | None = None, *, macs_per_step: float | None = None) -> str:
    """Turn 'numpy' | 'cupy' | 'auto' | None (from $CVTOOL_BACKEND) into a backend name.

    Raises
    ------
    CvtoolError
        For an unknown name, or 'cupy' where CuPy or a GPU is missing.
    """
    return choose(name, macs_per_step=macs_per_step).name


def get_xp(name: str | None = None, *, macs_per_step: float | None = None):
    """The array module for a backend name (see ``choose``)."""
    return choose(name, macs_per_step=macs_per_step).xp


def backend_name(xp) -> str:
    """'numpy', 'cupy' or a registered name for an array module."""
    if xp is np:
        return "numpy"
    for name, (module, _) in _EXTRA.items():
        if xp is module:
            return name
    return "cupy"


def is_device(xp) -> bool:
    """True for an array module whose arrays live on a device (CuPy, the strict backend)."""
    return xp is not np


def array_module(x):
    """The array module of an array (``cupy.get_array_module`` without importing cupy)."""
    t = type(x)
    if t.__module__.startswith("cupy"):
        return _cupy_status()[0]
    for module, array_type in _EXTRA.values():
        if isinstance(x, array_type):
            return module
    return np


def to_numpy(x):
    """A NumPy copy of x (no copy when x is already a NumPy array); a device array is
    copied to the host (one transfer)."""
    if isinstance(x, np.ndarray):
        return x
    xp = array_module(x)
    if xp is not np:
        return xp.asnumpy(x)
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


def free_memory(xp) -> int | None:
    """Bytes that `xp`'s memory can still give: the GPU's free memory for CuPy, Linux's
    MemAvailable for NumPy; None where unknown."""
    if xp is np:
        try:
            with open("/proc/meminfo") as fh:
                for line in fh:
                    if line.startswith("MemAvailable:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            return None
        return None
    try:
        return int(xp.cuda.runtime.memGetInfo()[0])
    except Exception:  # a test backend without a device, or a driver that does not say
        return None


def compiled_kernels(module: str, use, size: int, minimum: int):
    """The optional Numba kernel module ``module`` for work of ``size`` elements, or None.

    ``use`` is a module's USE_NUMBA switch: "auto" (the kernels for work of at least
    ``minimum`` elements: importing Numba and loading cached kernels costs about half
    a second once), True (always) or False (never). None also where Numba (the
    ``fast`` extra) does not import; the caller then runs its NumPy code.
    """
    if use is False or (use == "auto" and size < minimum):
        return None
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        return None
