"""Flush-to-zero for subnormal floats on x86-64 (the optional ``fast`` extra, Numba).

A float below the smallest normal number (1.2e-38 in float32) is subnormal, and
on x86 every product that reads or makes one takes a slow microcode path: a
float32 matrix product whose inputs are 2 % subnormal ran 5.6x slower here, one
whose products underflow 29x slower. Training makes them: a softmax that all but
rules a class out gives gradients of 1e-40. With the MXCSR register's FTZ
(results) and DAZ (inputs) bits set, such values count as zero and every product
runs at full speed; frameworks set the same bits (TensorFlow by default).

NumPy has no switch for it; Numba can write the register (LLVM's
``llvm.x86.sse.stmxcsr``/``ldmxcsr``). The register belongs to a thread:
:func:`cvtool.nn._parallel.flushed_subnormals` sets it in the calling thread and
the worker threads for a training run and puts the caller's back afterwards.
"""

from __future__ import annotations

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

FTZ_DAZ = 0x8040  # MXCSR bit 15 (flush to zero) and bit 6 (denormals are zero)


def _mxcsr_call(builder, name, ptr):
    fnty = ir.FunctionType(ir.VoidType(), [ir.IntType(8).as_pointer()])
    fn = cgutils.get_or_insert_function(builder.module, fnty, name)
    builder.call(fn, [builder.bitcast(ptr, ir.IntType(8).as_pointer())])


@intrinsic
def _stmxcsr(typingctx):
    def codegen(context, builder, signature, args):
        ptr = cgutils.alloca_once(builder, ir.IntType(32))
        _mxcsr_call(builder, "llvm.x86.sse.stmxcsr", ptr)
        return builder.load(ptr)

    return types.uint32(), codegen


@intrinsic
def _ldmxcsr(typingctx, value):
    def codegen(context, builder, signature, args):
        ptr = cgutils.alloca_once(builder, ir.IntType(32))
        builder.store(args[0], ptr)
        _mxcsr_call(builder, "llvm.x86.sse.ldmxcsr", ptr)
        return context.get_dummy_value()

    return types.void(types.uint32), codegen


@njit(cache=True, nogil=True)
def get_mxcsr():
    """The calling thread's MXCSR register."""
    return _stmxcsr()


@njit(cache=True, nogil=True)
def set_mxcsr(value):
    """Load ``value`` into the calling thread's MXCSR register."""
    _ldmxcsr(value)
