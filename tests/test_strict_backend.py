"""The strict CuPy-like test backend itself, the backend registry and the ``auto`` rule."""

from __future__ import annotations

import numpy as np
import pytest

from cvtool import backend
from cvtool.errors import CvtoolError
from cvtool.testing import cupy_names, strict

sx = strict.xp


def test_implicit_conversion_to_numpy_is_refused():
    a = sx.arange(6.0)
    for convert in (np.asarray, np.array, np.ascontiguousarray):
        with pytest.raises(TypeError, match="Implicit conversion"):
            convert(a)


@pytest.mark.parametrize(
    "call",
    [np.sum, np.mean, np.isfinite, np.sqrt, np.concatenate, np.where, np.argmax, np.stack],
    ids=lambda f: f.__name__,
)
def test_numpy_functions_and_ufuncs_are_refused(call):
    a = sx.arange(6.0)
    args = ([a, a],) if call in (np.concatenate, np.stack) else (a,)
    if call is np.where:
        args = (a > 2, a, a)
    with pytest.raises(TypeError):
        call(*args)


def test_mixing_with_numpy_arrays_is_refused_but_scalars_are_fine():
    a, h = sx.arange(3.0), np.arange(3.0)
    for op in (
        lambda: a + h,
        lambda: h + a,
        lambda: a * h,
        lambda: a < h,
        lambda: sx.maximum(a, h),
        lambda: a.__setitem__(slice(None), h),
    ):
        with pytest.raises(TypeError):
            op()
    with pytest.raises(TypeError):
        a += h
    b = (a + 1) * np.float32(2.0) - 0.5
    assert isinstance(b, strict.StrictArray) and b.dtype == np.float64
    assert np.array_equal(b.get(), (np.arange(3.0) + 1) * 2 - 0.5)


def test_reductions_and_scalar_indexing_stay_on_the_device():
    a = sx.arange(6.0).reshape(2, 3)
    for r in (a.sum(), a[1, 2], sx.max(a), a.argmax(), sx.count_nonzero(a)):
        assert isinstance(r, strict.StrictArray) and r.ndim == 0


@pytest.mark.parametrize(
    "transfer",
    [
        lambda a: a.get(),
        lambda a: sx.asnumpy(a),
        lambda a: backend.to_numpy(a),
        lambda a: float(a.sum()),
        lambda a: int(a[1]),
        lambda a: bool(a[1] > 0),
        lambda a: a[2].item(),
        lambda a: a.tolist(),
        lambda a: repr(a),
        lambda a: str(a),
        lambda a: f"{a.sum():.3f}",
        lambda a: list(a),
        lambda a: range(10)[a.astype(sx.int64)[1]],
        lambda a: sx.nonzero(a > 1),
        lambda a: a[a > 1],
        lambda a: sx.bincount(a.astype(sx.int64)),
        lambda a: sx.unique(a),
    ],
)
def test_every_device_to_host_transfer_is_counted_once(transfer):
    a = sx.arange(4.0)
    with strict.counting() as c:
        transfer(a)
    assert c.downloads == 1, c.report()


def test_arithmetic_indexing_and_uploads_are_not_downloads():
    with strict.counting() as c:
        a = sx.asarray(np.arange(12.0).reshape(3, 4))  # an upload
        b = a[:, 1:] * 2 + a[np.array([0, 2, 1])][:, :3]  # a host index array: an upload
        a[0, 1:] = b[1]
        sx.matmul(a, a.T, out=sx.empty((3, 3)))
    assert (c.downloads, c.uploads) == (0, 2), c.report()
    assert c.launches >= 4


def test_asarray_copies_host_data_like_a_device_upload():
    h = np.zeros(3)
    a = sx.asarray(h)
    h[0] = 5
    assert a.get()[0] == 0
    assert sx.asarray(a) is a  # already on the device, same dtype: no copy


def test_namespace_offers_only_cupys_names():
    for name in ("nanpercentile", "insert", "geomspace", "errstate", "einsum_path", "block"):
        assert name not in cupy_names.TOP_LEVEL
        with pytest.raises(AttributeError):
            getattr(sx, name)
    assert sx.float32 is np.float32 and sx.newaxis is None and sx.pi == np.pi
    with pytest.raises(AttributeError):
        sx.random.default_rng(0).permutation  # noqa: B018 - CuPy's Generator has none
    g = sx.random.default_rng(0).random((2, 3), dtype=sx.float32)
    assert isinstance(g, strict.StrictArray) and g.dtype == np.float32
    with pytest.raises(AttributeError):
        sx.arange(3).tobytes_nonexistent  # noqa: B018


def test_lexsort_takes_one_array_as_cupy_does():
    k = sx.asarray(np.array([[1, 0, 1], [0, 0, 1]]))
    assert k.ndim == 2 and sx.lexsort(k).get().tolist() == [1, 0, 2]
    with pytest.raises(AttributeError, match="stack"):
        sx.lexsort((k[0], k[1]))


def test_elementwise_kernel_emulation_follows_cupys_docs():
    # The type-generic example of CuPy's kernel user guide, with a declaration.
    kern = sx.ElementwiseKernel(
        "T x, T y", "T z", "T diff = x - y; z = diff * diff;", "squared_diff_generic"
    )
    x = sx.arange(10, dtype=sx.float32).reshape(2, 5)
    y = sx.arange(5, dtype=sx.float32)
    z = sx.empty((2, 5), dtype=sx.float32)
    with strict.counting() as c:
        kern(x, y, z)
        kern(x, 5, z)  # a Python scalar takes T's dtype
    assert c.launches == 2
    np.testing.assert_array_equal(z.get(), (np.arange(10.0).reshape(2, 5) - 5) ** 2)
    assert z.dtype == np.float32
    with pytest.raises(NotImplementedError):
        sx.ElementwiseKernel("raw T x", "T z", "z = x[i]", "raw")


def test_fuse_is_one_launch():
    @sx.fuse()
    def axpy(a, x, y):
        return a * x + y

    x = sx.arange(4.0)
    with strict.counting() as c:
        out = axpy(2.0, x, x)
    assert c.launches == 1 and out.get().tolist() == [0.0, 3.0, 6.0, 9.0]


def test_registry_knows_the_strict_backend():
    assert backend.get_xp("strict") is sx
    assert backend.get_xp(" Strict ") is sx
    assert backend.backend_name(sx) == "strict"
    assert backend.array_module(sx.zeros(2)) is sx
    assert backend.array_module(np.zeros(2)) is np
    assert backend.is_device(sx) and not backend.is_device(np)
    backend.synchronize(sx)  # no-op, as cuda.Device().synchronize() on the strict backend
    assert "strict" not in backend.BACKENDS
    with pytest.raises(CvtoolError, match="'backend'"):
        backend.get_xp("nosuch")


def test_auto_keeps_launch_bound_steps_on_numpy(monkeypatch):
    monkeypatch.setattr(backend, "gpu_available", lambda: True)
    mlp_step = 10 * (784 * 30 + 30 * 10)  # Nielsen's 784-30-10 at mini-batch 10
    small = backend.choose("auto", macs_per_step=mlp_step)
    assert small.name == "numpy" and "launch-bound" in small.reason
    big = backend.choose("auto", macs_per_step=backend.GPU_MIN_MACS)
    assert big.name == "cupy" and "GPU" in big.reason
    assert backend.choose("auto").name == "cupy"  # work of unknown size: the GPU
    assert backend.choose("numpy", macs_per_step=1e12).name == "numpy"
    line = backend.describe("auto", macs_per_step=mlp_step)
    assert line.startswith("numpy: auto") and "0.238 M" in line


def test_auto_without_a_gpu_says_why(monkeypatch):
    monkeypatch.setattr(backend, "gpu_available", lambda: False)
    c = backend.choose("auto", macs_per_step=1e12)
    assert c.name == "numpy" and c.reason.startswith("auto, no GPU")
    monkeypatch.setenv(backend.ENV_VAR, "numpy")
    assert backend.describe() == "numpy: asked for"


def test_sorts_are_stable_and_take_no_other_kind():
    a = sx.asarray(np.array([1, 0, 1, 0, 1] * 20))
    assert sx.argsort(a).get().tolist() == np.argsort(a.get(), kind="stable").tolist()
    with pytest.raises(ValueError, match="stable"):
        a.argsort(kind="quicksort")
