"""A CPU stand-in for CuPy that refuses what CuPy refuses and counts transfers.

No GPU has been at hand for cvtool's development, so the CuPy side of the
backend switch is exercised on this module instead. Its arrays
(:class:`StrictArray`) hold a NumPy array but behave like ``cupy.ndarray``
wherever CuPy differs from NumPy in a way that breaks code:

- ``np.asarray(x)``, ``np.array(x)`` and every NumPy function or ufunc called
  on one raise ``TypeError`` (``__array__``, ``__array_function__``,
  ``__array_ufunc__``); CuPy raises on the conversion and dispatches the rest,
  which library code must not rely on either: it uses ``xp.*``.
- Arithmetic, comparison and assignment with a NumPy array raise ``TypeError``
  (Python and NumPy scalars are fine, as on CuPy). NumPy index arrays are
  accepted, as CuPy accepts them, and counted as an upload.
- Reductions and scalar indexing give 0-d arrays, not Python numbers.
- Every device-to-host transfer is counted: ``.get()``, ``xp.asnumpy``,
  ``float``/``int``/``bool``/``complex``/``operator.index``, ``.item()``,
  ``.tolist()``, ``repr``/``str``/``format``, iteration, and the functions
  CuPy implements with a hidden synchronising copy (``nonzero``, ``bincount``,
  ``unique``, boolean-mask indexing, ...). Host-to-device uploads
  (``xp.asarray`` of host data, NumPy index arrays) and kernel launches are
  counted too.

The namespace :data:`xp` offers only names CuPy offers (the allow-list in
:mod:`cvtool.testing.cupy_names`, read from CuPy's sources); a NumPy name CuPy
lacks raises ``AttributeError``. ``xp.random.default_rng`` gives a Generator
with CuPy's methods only, ``xp.cuda.Device().synchronize()`` is a no-op,
``xp.fuse`` and ``xp.ElementwiseKernel`` are emulated (one launch per call; the
kernel body, a C statement list, is run as Python over NumPy arrays).

Use :func:`counting` to count within a block::

    with counting() as c:
        model.train_step(x, y)
    assert c.downloads == 0, c.report()

Left out: streams, memory pools, raw kernels, CuPy's different random streams
(the strict generator draws NumPy's numbers), the wrap-around of out-of-bounds
integer indices.
"""

from __future__ import annotations

import contextlib
import re
import traceback
import types
from dataclasses import dataclass, field

import numpy as np

from cvtool.testing import cupy_names

NDARRAY_METHODS = frozenset(
    """all any argmax argmin argpartition argsort astype choose clip compress conj conjugate
    copy cumprod cumsum diagonal dot fill flatten max mean min partition prod ptp put ravel
    repeat reshape round searchsorted sort squeeze std sum swapaxes take trace transpose var
    view""".split()
)  # cupy/_core/core.pyx, the methods of _ndarray_base that return arrays (or None)
NDARRAY_PROPERTIES = frozenset(
    "T mT base dtype flags imag itemsize nbytes ndim real shape size strides".split()
)  # cupy/_core/core.pyx and core.pxd
UPLOADERS = frozenset({"asarray", "array", "asanyarray"})  # accept host data (an upload)
SYNCING = frozenset({"nonzero", "flatnonzero", "argwhere", "bincount", "unique", "compress"})
# ^ CuPy copies a count to the host to size the result ("synchronize!" in their sources)


# ----------------------------------------------------------------------------- counters


@dataclass
class Counts:
    """Transfers and launches seen while a :func:`counting` block ran."""

    downloads: int = 0  # device -> host
    uploads: int = 0  # host -> device
    launches: int = 0  # namespace calls, operators and methods that compute
    where: list = field(default_factory=list)  # (kind, what, caller) per download/upload

    def report(self) -> str:
        lines = [f"{self.downloads} downloads, {self.uploads} uploads, {self.launches} launches"]
        lines += [f"  {kind}: {what} at {caller}" for kind, what, caller in self.where[:20]]
        return "\n".join(lines)


_ACTIVE: list[Counts] = []
TOTAL = Counts()  # since import; never reset


@contextlib.contextmanager
def counting():
    """Count the strict backend's transfers and launches inside the block."""
    counts = Counts()
    _ACTIVE.append(counts)
    try:
        yield counts
    finally:
        _ACTIVE.remove(counts)


def _caller() -> str:
    for frame in reversed(traceback.extract_stack()[:-3]):
        if "cvtool/testing" not in frame.filename:
            return f"{frame.filename.rsplit('/', 2)[-1]}:{frame.lineno} {frame.name}"
    return "?"


def _note(kind: str, what: str) -> None:
    caller = _caller() if _ACTIVE else ""
    for counts in (TOTAL, *_ACTIVE):
        if kind == "download":
            counts.downloads += 1
        else:
            counts.uploads += 1
        if counts is not TOTAL:
            counts.where.append((kind, what, caller))


def _launch() -> None:
    TOTAL.launches += 1
    for counts in _ACTIVE:
        counts.launches += 1


def download(what: str) -> None:
    """Count one device-to-host transfer."""
    _note("download", what)


def upload(what: str) -> None:
    """Count one host-to-device transfer."""
    _note("upload", what)


# ----------------------------------------------------------------------------- wrapping


def _refuse_host(what: str):
    return TypeError(
        f"A NumPy array was passed to {what} on the strict (CuPy-like) backend: "
        "move it to the device explicitly with xp.asarray."
    )


def _unwrap(obj, what: str):
    """StrictArray -> its NumPy array; NumPy arrays refused; containers recursed."""
    if isinstance(obj, StrictArray):
        return obj._a
    if isinstance(obj, np.ndarray):
        raise _refuse_host(what)
    if isinstance(obj, (list, tuple)):
        return type(obj)(_unwrap(o, what) for o in obj)
    return obj


def _wrap(obj):
    if isinstance(obj, (np.ndarray, np.generic)) and not isinstance(obj, np.dtype):
        return StrictArray(np.asarray(obj))
    if isinstance(obj, tuple):
        return tuple(_wrap(o) for o in obj)
    if isinstance(obj, list):
        return [_wrap(o) for o in obj]
    return obj


def _call(fn, name: str, args, kwargs):
    what = f"xp.{name}"
    a = [_unwrap(x, what) for x in args]
    k = {key: _unwrap(v, what) for key, v in kwargs.items()}
    if name in ("sort", "argsort"):  # CuPy's sorts are stable and take no other kind
        if k.get("kind") not in (None, "stable"):
            raise ValueError("kind can only be None or 'stable'")
        k["kind"] = "stable"
    _launch()
    if name in SYNCING:
        download(f"{what} (sizes its result on the host)")
    out = fn(*a, **k)
    if "out" in kwargs and isinstance(kwargs["out"], StrictArray) and out is kwargs["out"]._a:
        return kwargs["out"]
    return _wrap(out)


def _operand(other, op: str):
    if isinstance(other, StrictArray):
        return other._a
    if isinstance(other, np.ndarray):
        raise TypeError(
            f"Unsupported type {type(other)} for '{op}' with a strict (CuPy-like) array: "
            "mixing device and host arrays; move it with xp.asarray first."
        )
    if isinstance(other, (bool, int, float, complex, np.generic)) or other is None:
        return other
    raise TypeError(f"Unsupported type {type(other)} for '{op}' with a strict array.")


def _index(key):
    """Index: StrictArrays unwrapped, NumPy index arrays uploaded (as CuPy does)."""
    if isinstance(key, tuple):
        return tuple(_index(k) for k in key)
    if isinstance(key, StrictArray):
        return key._a
    if isinstance(key, (np.ndarray, list)):
        upload("a host index array")
        return np.asarray(key)
    return key


def _has_mask(key) -> bool:
    keys = key if isinstance(key, tuple) else (key,)
    return any(isinstance(k, np.ndarray) and k.dtype == bool for k in keys)


def _binary(op: str):
    fn = getattr(np.ndarray, op)

    def method(self, other):
        _launch()
        return _wrap(fn(self._a, _operand(other, op)))

    method.__name__ = op
    return method


def _inplace(op: str):
    fn = getattr(np.ndarray, op)

    def method(self, other):
        _launch()
        fn(self._a, _operand(other, op))
        return self

    method.__name__ = op
    return method


def _unary(op: str):
    fn = getattr(np.ndarray, op)

    def method(self):
        _launch()
        return _wrap(fn(self._a))

    method.__name__ = op
    return method


class StrictArray:
    """A device array on the strict backend (see the module docstring)."""

    __slots__ = ("_a",)
    __array_priority__ = 1000

    def __init__(self, a: np.ndarray):
        self._a = a

    # -- refusing NumPy ---------------------------------------------------------
    def __array__(self, dtype=None, copy=None):
        raise TypeError(
            "Implicit conversion to a NumPy array is not allowed. "
            "Please use `.get()` to construct a NumPy array explicitly."
        )

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        raise TypeError(
            f"NumPy's {ufunc.__name__} was called on a strict (CuPy-like) array: use xp.*"
        )

    def __array_function__(self, func, types, args, kwargs):
        raise TypeError(
            f"NumPy's {func.__name__} was called on a strict (CuPy-like) array: use xp.*"
        )

    # -- transfers --------------------------------------------------------------
    def get(self, stream=None, order="C", out=None, blocking=True):
        download(".get()")
        a = np.array(self._a, order=order)
        if out is not None:
            out[...] = a
            return out
        return a

    def set(self, arr, stream=None):
        upload(".set()")
        self._a[...] = arr

    def item(self):
        download(".item()")
        return self._a.item()

    def tolist(self):
        download(".tolist()")
        return self._a.tolist()

    def __float__(self):
        download("float()")
        return float(self._a)

    def __int__(self):
        download("int()")
        return int(self._a)

    def __complex__(self):
        download("complex()")
        return complex(self._a)

    def __index__(self):
        if self._a.dtype.kind not in "iub":
            raise TypeError("only integer arrays can be used as an index")
        download("operator.index()")
        return self._a.__index__()

    def __bool__(self):
        download("bool()")
        return bool(self._a)

    def __repr__(self):
        download("repr()")
        return repr(self._a).replace("array(", "strict_array(", 1)

    def __str__(self):
        download("str()")
        return str(self._a)

    def __format__(self, spec):
        download("format()")
        return format(self._a.item() if self._a.ndim == 0 else self._a, spec)

    def __iter__(self):
        if self._a.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        download("iteration (one launch per row on CuPy)")
        return (self[i] for i in range(self._a.shape[0]))

    def __len__(self):
        if self._a.ndim == 0:
            raise TypeError("len() of unsized object")
        return self._a.shape[0]

    __hash__ = None

    # -- indexing ---------------------------------------------------------------
    def __getitem__(self, key):
        key = _index(key)
        if _has_mask(key):
            download("boolean-mask indexing (sizes its result on the host)")
        out = self._a[key]
        if isinstance(out, np.ndarray) and out.base is None and out.size:
            _launch()  # a gather, not a view
        return _wrap(out)

    def __setitem__(self, key, value):
        _launch()
        self._a[_index(key)] = _operand(value, "[]=")

    # -- attributes -------------------------------------------------------------
    def __getattr__(self, name):
        if name in NDARRAY_PROPERTIES:
            return _wrap(getattr(self._a, name))
        if name in NDARRAY_METHODS:
            method = getattr(self._a, name)
            return lambda *args, **kwargs: _call(method, name, args, kwargs)
        if name == "nonzero":
            return lambda: _call(self._a.nonzero, "nonzero", (), {})
        raise AttributeError(f"cupy.ndarray has no attribute {name!r} (strict backend)")

    @property
    def shape(self):
        return self._a.shape

    @property
    def dtype(self):
        return self._a.dtype

    @property
    def ndim(self):
        return self._a.ndim

    @property
    def size(self):
        return self._a.size

    @property
    def device(self):
        return _Device(0)

    def __copy__(self):
        return StrictArray(self._a.copy())

    def __deepcopy__(self, memo):
        return StrictArray(self._a.copy())

    def __reduce__(self):  # pickling copies to the host (as CuPy's does)
        download("pickle")
        return (StrictArray, (self._a.copy(),))

    def __neg__(self):
        _launch()
        return _wrap(-self._a)

    def __pos__(self):
        return _wrap(+self._a)

    def __abs__(self):
        _launch()
        return _wrap(abs(self._a))

    def __invert__(self):
        _launch()
        return _wrap(~self._a)


for _op in """add sub mul truediv floordiv mod pow matmul and or xor lshift rshift
    lt le eq ne gt ge""".split():
    setattr(StrictArray, f"__{_op}__", _binary(f"__{_op}__"))
    if _op not in ("lt", "le", "eq", "ne", "gt", "ge"):
        setattr(StrictArray, f"__r{_op}__", _binary(f"__r{_op}__"))
        if _op != "matmul":
            setattr(StrictArray, f"__i{_op}__", _inplace(f"__i{_op}__"))
StrictArray.__hash__ = None


# ----------------------------------------------------------------------------- namespace


class _Ufunc:
    """A ufunc of the namespace: call, and .at/.reduce/.outer/.accumulate/.reduceat."""

    def __init__(self, ufunc, name):
        self._u, self.__name__ = ufunc, name

    def __call__(self, *args, **kwargs):
        return _call(self._u, self.__name__, args, kwargs)

    def __getattr__(self, method):
        if method in ("at", "reduce", "outer", "accumulate", "reduceat"):
            fn = getattr(self._u, method)
            return lambda *a, **k: _call(fn, f"{self.__name__}.{method}", a, k)
        return getattr(self._u, method)


def _function(fn, name: str):
    def call(*args, **kwargs):
        return _call(fn, name, args, kwargs)

    call.__name__ = call.__qualname__ = name
    return call


def _asarray(name):
    def call(obj, dtype=None, *args, **kwargs):
        if isinstance(obj, StrictArray):
            _launch()
            a = np.asarray(obj._a, dtype=dtype) if name == "asarray" else np.array(obj._a, dtype)
            return obj if a is obj._a else StrictArray(a)
        if _contains_strict(obj):  # a list of device arrays: stacked on the device
            return _call(np.array, name, (obj, dtype), {})
        upload(f"xp.{name} of host data")
        return StrictArray(np.array(obj, dtype, *args, **kwargs))  # a copy, as on a device

    call.__name__ = name
    return call


def _contains_strict(obj) -> bool:
    if isinstance(obj, StrictArray):
        return True
    return isinstance(obj, (list, tuple)) and any(_contains_strict(o) for o in obj)


def _lexsort(keys):
    if not isinstance(keys, StrictArray):  # cupy.lexsort reads keys.ndim
        raise AttributeError(
            f"'{type(keys).__name__}' object has no attribute 'ndim' (cupy.lexsort takes one "
            "(k, N) array, not a sequence of keys: use xp.stack(keys))"
        )
    if keys.ndim > 2:
        raise NotImplementedError("Keys with the rank of three or more is not supported")
    return _call(np.lexsort, "lexsort", (keys,), {})


def asnumpy(a, stream=None, order="C", out=None, blocking=True):
    """cupy.asnumpy: a host copy (one download for a device array)."""
    if isinstance(a, StrictArray):
        return a.get(order=order, out=out)
    return np.asarray(a, order=order)


def get_array_module(*args):
    return xp if any(isinstance(a, StrictArray) for a in args) else np


def fuse(*args, **kwargs):
    """cupy.fuse: the function runs as written, counted as one launch per call."""

    def decorate(fn):
        def fused(*a, **k):
            _launch()
            with _suspended():
                return fn(*a, **k)

        fused.__name__ = getattr(fn, "__name__", "fused")
        return fused

    if len(args) == 1 and callable(args[0]) and not kwargs:
        return decorate(args[0])
    return decorate


@contextlib.contextmanager
def _suspended():
    """Inside one emulated kernel, operations are not separate launches."""
    saved = [(c, c.launches) for c in (TOTAL, *_ACTIVE)]
    try:
        yield
    finally:
        for c, n in saved:
            c.launches = n


_DECL = re.compile(r"^(?:const\s+)?\w+\s+(\w+)\s*=(?!=)")
_PARAM = re.compile(r"^\s*(raw\s+)?(\w+)\s+(\w+)\s*$")
_C_MATH = {f: getattr(np, f) for f in ("sqrt", "exp", "log", "abs", "tanh", "fabs", "fmax")}
_C_MATH.update(max=np.maximum, min=np.minimum, fmin=np.minimum, fmax=np.maximum, fabs=np.abs)


class ElementwiseKernel:
    """cupy.ElementwiseKernel emulated: one launch per call, the body run as Python.

    The body must be a list of C statements that are also Python statements
    (``x = a * b + c;``, ``p -= lr * m / (sqrt(v) + eps);``): each is run over
    NumPy arrays, with scalars cast to the type placeholder's array dtype, and
    the output parameters written back in place. Enough for cvtool's fused
    optimiser updates; anything else (``if``, casts, ``raw``, ``i``) raises.
    """

    def __init__(self, in_params, out_params, operation, name="kernel", **kwargs):
        self.ins = [self._param(p) for p in in_params.split(",") if p.strip()]
        self.outs = [self._param(p) for p in out_params.split(",") if p.strip()]
        self.name = name
        body = [s.strip() for s in operation.strip().split(";") if s.strip()]
        body = [_DECL.sub(r"\1 =", s) for s in body]  # 'T g = ...' declares g: 'g = ...'
        self.code = [compile(s, f"<{name}>", "exec") for s in body]

    @staticmethod
    def _param(text):
        m = _PARAM.match(text)
        if not m or m.group(1):
            raise NotImplementedError(f"The strict ElementwiseKernel cannot emulate {text!r}.")
        return m.group(2), m.group(3)

    def __call__(self, *args):
        params = self.ins + self.outs
        if len(args) != len(params):
            raise TypeError(f"Wrong number of arguments for {self.name!r}")
        types_ = {}
        for (typ, _), a in zip(params, args, strict=True):
            if isinstance(a, np.ndarray):
                raise _refuse_host(self.name)
            if isinstance(a, StrictArray):
                types_.setdefault(typ, a.dtype)
        ns = dict(_C_MATH)
        for (typ, name), a in zip(params, args, strict=True):
            dtype = types_.get(typ) or np.dtype(typ)
            ns[name] = a._a if isinstance(a, StrictArray) else dtype.type(a)
        outs = [a for (_, _), a in zip(self.outs, args[len(self.ins) :], strict=True)]
        if not all(isinstance(o, StrictArray) for o in outs):
            raise NotImplementedError("The strict ElementwiseKernel needs its outputs passed in.")
        _launch()
        for code in self.code:
            exec(code, ns)  # noqa: S102 - the kernel body, from cvtool's own sources
        for (_, name), o in zip(self.outs, outs, strict=True):
            if ns[name] is not o._a:
                o._a[...] = ns[name]
        return outs[0] if len(outs) == 1 else tuple(outs)


class _Device:
    def __init__(self, device=0):
        self.id = int(device)

    def synchronize(self):
        pass

    def use(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class _Stream:
    def synchronize(self):
        pass


class _Runtime:
    @staticmethod
    def getDeviceCount():  # noqa: N802 - CuPy's name
        return 1

    @staticmethod
    def runtimeGetVersion():  # noqa: N802 - CuPy's name
        return 12080


class _Generator:
    """default_rng()'s Generator with CuPy's methods only; draws NumPy's numbers."""

    def __init__(self, seed=None):
        self._g = np.random.default_rng(seed)

    def __getattr__(self, name):
        if name not in cupy_names.GENERATOR_METHODS:
            raise AttributeError(f"cupy.random.Generator has no attribute {name!r}")
        fn = getattr(self._g, name)
        return lambda *a, **k: _call(fn, f"random.{name}", a, k)


def _module(name: str, attrs: dict) -> types.ModuleType:
    mod = types.ModuleType(name)
    mod.__dict__.update(attrs)
    return mod


class _Namespace(types.ModuleType):
    """The strict array module: CuPy's names, resolved lazily against NumPy."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        if name not in cupy_names.TOP_LEVEL:
            raise AttributeError(f"module 'cupy' has no attribute {name!r} (strict backend)")
        if not hasattr(np, name):
            raise AttributeError(f"The strict backend does not emulate cupy.{name}.")
        obj = getattr(np, name)
        if isinstance(obj, np.ufunc):
            value = _Ufunc(obj, name)
        elif isinstance(obj, type) or not callable(obj) or name in _PASS_THROUGH:
            value = obj  # dtypes, constants, finfo: NumPy's own objects, as in CuPy
        elif name in UPLOADERS:
            value = _asarray(name)
        else:
            value = _function(obj, name)
        setattr(self, name, value)
        return value


_PASS_THROUGH = frozenset(
    "dtype finfo iinfo issubdtype isdtype promote_types result_type can_cast min_scalar_type "
    "common_type isscalar ndim shape broadcast_shapes mintypecode base_repr".split()
)

xp = _Namespace("cvtool.testing.strict.xp", "The strict (CuPy-like) array module.")
xp.ndarray = StrictArray
xp.asnumpy = asnumpy
xp.get_array_module = get_array_module
xp.fuse = fuse
xp.ElementwiseKernel = ElementwiseKernel
xp.lexsort = _lexsort
xp.cuda = _module(
    "cvtool.testing.strict.xp.cuda",
    {
        "Device": _Device,
        "runtime": _Runtime(),
        "Stream": type("Stream", (), {"null": _Stream()}),
        "is_available": lambda: True,
    },
)
xp.random = _module(
    "cvtool.testing.strict.xp.random",
    {"default_rng": _Generator, "Generator": _Generator},
)
xp.lib = _module(
    "cvtool.testing.strict.xp.lib",
    {
        "stride_tricks": _module(
            "cvtool.testing.strict.xp.lib.stride_tricks",
            {
                n: _function(getattr(np.lib.stride_tricks, n), f"lib.stride_tricks.{n}")
                for n in cupy_names.STRIDE_TRICKS
            },
        )
    },
)
xp.linalg = _module(
    "cvtool.testing.strict.xp.linalg",
    {
        n: _function(getattr(np.linalg, n), f"linalg.{n}")
        for n in cupy_names.LINALG
        if hasattr(np.linalg, n)
    },
)
