"""Work on a NumPy batch split across a few worker threads: the two-core helpers.

NumPy releases the GIL in copies, ufuncs and matrix products, so pieces of a
batch run in parallel in plain threads. Matrix products inside those pieces use
one BLAS thread each, or the two levels of threading would fight over the
cores. ``training_threads(xp)`` is the policy for a whole CPU training run
(every trainer, every backend asks it); on CuPy every helper here does the
whole batch in one call. Nothing here runs at import time.

The number of threads is ``$CVTOOL_THREADS``, else the CPU count (at most 8).
"""

from __future__ import annotations

import contextlib
import functools
import os
import platform
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from cvtool.backend import backend_name, compiled_kernels

# Elementwise work on fewer elements than this runs in the calling thread: below it
# handing pieces to threads costs more than it saves.
SPLIT_SIZE = 2**17
# The layers' compiled kernels (pool_numba, norm_numba) when Numba imports: "auto" for
# arrays of at least NUMBA_MIN values (importing Numba and loading the kernels costs
# about half a second once, more than the NumPy code takes on a few images), True
# always, False never. Either way the numbers are the same, bit for bit.
USE_NUMBA = "auto"
NUMBA_MIN = 2**18


def column_sums(a, out):
    """out = a.sum(axis=0) for a 2-D array, the same bits, faster on NumPy.

    NumPy's ``sum(axis=0)`` of a C-contiguous (m, k) array and ``einsum('ij->j')``
    both add the rows one after another, so they give equal bits for k >= 2;
    einsum runs 3-4x faster on the few columns of a bias gradient (8192 x 16:
    0.03 against 0.15 ms). One column is a contiguous vector, which ``sum``
    adds pairwise: it stays ``sum``, as do device arrays.
    """
    if isinstance(a, np.ndarray) and a.ndim == 2 and a.shape[1] >= 2 and a.flags.c_contiguous:
        return np.einsum("ij->j", a, out=out)
    return a.sum(axis=0, out=out)


# Subnormal floats flushed to zero during training (cvtool.nn.fpmode; Numba, x86-64):
# "auto" where Numba imports, False never. Results change only where a value would
# have been subnormal (below 1.2e-38 in float32).
FLUSH_SUBNORMALS = "auto"


@contextlib.contextmanager
def flushed_subnormals(xp=np):
    """A training run with FTZ/DAZ set in this thread and the worker threads (NumPy, x86-64).

    At the end the workers' bits are cleared and the caller's register is put
    back as it was. Does nothing where Numba does not import, on other
    processors or devices, or with FLUSH_SUBNORMALS False.
    """
    fp = None
    if FLUSH_SUBNORMALS and backend_name(xp) == "numpy":
        if platform.machine().lower() in ("x86_64", "amd64"):
            fp = compiled_kernels("cvtool.nn.fpmode", True, 0, 0)
    if fp is None:
        yield
        return

    def on_every_thread(change):  # change(register) -> register, in this and each pool thread
        change_here = lambda: fp.set_mxcsr(change(fp.get_mxcsr()))  # noqa: E731
        change_here()
        workers = max(threads(), _POOL_WORKERS)
        if workers > 1:  # one task per pool thread: each waits until all are running
            barrier = threading.Barrier(workers)

            def task():
                change_here()
                barrier.wait(timeout=10)

            for fut in [worker_pool(workers).submit(task) for _ in range(workers)]:
                fut.result()

    try:
        caller = fp.get_mxcsr()
        on_every_thread(lambda r: r | fp.FTZ_DAZ)
    except Exception:  # noqa: BLE001  (a Numba that cannot compile the intrinsics: train as is)
        yield
        return
    try:
        yield
    finally:  # IEEE subnormals again in the workers (a result never depends on the thread)
        on_every_thread(lambda r: r & (0xFFFFFFFF ^ fp.FTZ_DAZ))
        fp.set_mxcsr(caller)  # and the caller's own register as it was


def layer_kernels(module: str, size: int):
    """The compiled kernel module ``module`` for an array of ``size`` values, or None."""
    return compiled_kernels(module, USE_NUMBA, size, NUMBA_MIN)


_POOL: ThreadPoolExecutor | None = None
_POOL_WORKERS = 0  # the size _POOL was made with (not read back from the executor)
_BLAS = None


def threads() -> int:
    """Worker threads for the pieces of a batch: $CVTOOL_THREADS, else the CPU count (<= 8)."""
    env = os.environ.get("CVTOOL_THREADS", "")
    return max(1, int(env) if env.isdigit() else min(8, _cpu_count()))


@functools.cache
def _cpu_count() -> int:
    return os.cpu_count() or 1


def worker_pool(workers: int) -> ThreadPoolExecutor:
    """The shared worker-thread pool, grown to at least `workers` threads."""
    global _POOL, _POOL_WORKERS
    if _POOL is None or _POOL_WORKERS < workers:
        old = _POOL
        _POOL = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cvtool-conv")
        _POOL_WORKERS = workers
        if old is not None:
            old.shutdown(wait=False)  # its queued work still runs; its threads then exit
    return _POOL


def run_rows(fn, n: int, size: int) -> None:
    """fn(start, stop) over rows 0..n-1: split across the worker threads when `size` is large.

    For elementwise NumPy work on a batch (an activation and its gradient, an
    optimiser update): the ufuncs release the GIL, so the pieces run on all
    cores. No BLAS inside, so BLAS threads are left alone.
    """
    workers = min(threads(), n)
    if workers <= 1 or size < SPLIT_SIZE:
        fn(0, n)
        return
    step = -(-n // workers)
    futures = [worker_pool(workers).submit(fn, s, min(s + step, n)) for s in range(step, n, step)]
    fn(0, step)  # the calling thread does the first piece
    for fut in futures:
        fut.result()


def run_plan(work, plan: list, args: list) -> None:
    """work(chunks, arg) for each worker's chunks, in threads; chunked work uses one BLAS thread.

    `plan` holds one list of (start, count) chunks per worker (see ``batch_plan``)
    and `args` one extra argument per worker (its scratch buffer, say).
    """
    if len(plan) == 1 and len(plan[0]) == 1:  # one product over the whole batch
        work(plan[0], args[0])
        return
    if len(plan) == 1:  # small chunks gain nothing from BLAS threads, and lose under load
        with blas_limit():
            work(plan[0], args[0])
        return
    pool = worker_pool(len(plan))
    with blas_limit():
        futures = [pool.submit(work, chunks, arg) for chunks, arg in zip(plan, args, strict=True)]
        for fut in futures:
            fut.result()


def run_chunks(work, chunks: list, workers: int) -> None:
    """work(start, count, worker) for each (start, count) chunk, taken in turn by `workers` threads.

    Each worker (the calling thread is worker 0) takes the next chunk not yet taken,
    so a worker slowed by other load on the machine takes fewer chunks rather than
    holding the others up at the end. Which worker runs a chunk varies from run to
    run: results that must not vary (sums over chunks) belong to the chunk, not to
    the worker. BLAS is held to one thread meanwhile; one worker (or one chunk) runs
    in the calling thread, with BLAS left alone for a single whole-batch chunk.
    """
    workers = max(1, min(workers, len(chunks)))
    if workers == 1:
        if len(chunks) == 1:  # one product over the whole batch: BLAS may use its threads
            work(*chunks[0], 0)
            return
        with blas_limit():  # small chunks gain nothing from BLAS threads, and lose under load
            for s, m in chunks:
                work(s, m, 0)
        return
    taken = iter(chunks)  # next() on a list iterator is atomic under the GIL
    lock = threading.Lock()

    def worker(i):
        while True:
            with lock:
                chunk = next(taken, None)
            if chunk is None:
                return
            work(*chunk, i)

    pool = worker_pool(workers - 1)
    with blas_limit():
        futures = [pool.submit(worker, i) for i in range(1, workers)]
        try:
            worker(0)
        finally:
            for fut in futures:
                fut.result()


def batch_plan(xp, n: int) -> list:
    """The batch split into one contiguous (start, count) piece per worker (NumPy), else whole."""
    workers = threads() if backend_name(xp) == "numpy" else 1
    if workers <= 1 or n < 2 * workers:
        return [[(0, n)]]
    step = -(-n // workers)
    return [[(s, min(step, n - s))] for s in range(0, n, step)]


def training_threads(xp=np):
    """A context for a training run on `xp`: conv chunks in threads, BLAS on one thread throughout.

    Between the chunked products, BLAS threads left over from an unchunked product
    (a dense layer) busy-wait and take the cores from the chunk workers; holding
    BLAS to one thread for the whole run avoids that (measured with
    benchmarks/bench_cnn.py: one Fashion-MNIST epoch of nielsen-ch6 went from about
    18 s to 12.5 s on 2 cores). Does nothing with one thread or on a non-NumPy `xp`.
    """
    if backend_name(xp) != "numpy" or threads() <= 1:
        return contextlib.nullcontext()
    return blas_limit()


def blas_limit():
    """A context that keeps BLAS to one thread (threadpoolctl), or nothing without it."""
    global _BLAS
    try:
        from threadpoolctl import ThreadpoolController  # optional, and slow to import
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return contextlib.nullcontext()
    if _BLAS is None:
        _BLAS = ThreadpoolController()
    return _BLAS.limit(limits=1, user_api="blas")
