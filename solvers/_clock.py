"""``time.perf_counter()`` for Numba kernels: :func:`now`, read without leaving compiled code where possible.

A kernel with a deadline compares :func:`now` against ``time.perf_counter() + time_limit``
computed in Python, so both must read the same clock. On Linux CPython's
``perf_counter`` is ``clock_gettime(CLOCK_MONOTONIC)``
(``time.get_clock_info("perf_counter")`` says so), and :func:`now` calls that C function
straight from the kernel: ~30 ns a read. Elsewhere (or if that ever changes) it falls
back to an object-mode block that calls ``time.perf_counter()`` itself: ~1 us a read, and
its first call in a process compiles the block (~80 ms, which ``warm_up`` pays).

Kernels of other files embed :func:`now`; :mod:`mixrank._kernel_cache` keys their Numba cache by
this file too, so an edit here recompiles them.
"""

from __future__ import annotations

import sys
import time

import numba
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["now", "NATIVE"]

#: CLOCK_MONOTONIC's id on Linux (<time.h>).
_CLOCK_MONOTONIC = 1

#: Whether :func:`now` reads the clock natively (Linux, where perf_counter is clock_gettime(CLOCK_MONOTONIC)).
NATIVE = (sys.platform.startswith("linux")
          and time.get_clock_info("perf_counter").implementation == "clock_gettime(CLOCK_MONOTONIC)")


@intrinsic
def _monotonic_ns(typingctx):
    """Nanoseconds of CLOCK_MONOTONIC, from ``clock_gettime`` (a struct timespec of two 64-bit fields on Linux)."""
    sig = types.int64()

    def codegen(context, builder, signature, args):
        i32 = ir.IntType(32)
        i64 = ir.IntType(64)
        timespec = ir.LiteralStructType([i64, i64])
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(i32, [i32, timespec.as_pointer()]),
                                            "clock_gettime")
        ts = cgutils.alloca_once(builder, timespec)
        builder.call(fn, [ir.Constant(i32, _CLOCK_MONOTONIC), ts])
        zero = ir.Constant(i32, 0)
        sec = builder.load(builder.gep(ts, [zero, zero]))
        nsec = builder.load(builder.gep(ts, [zero, ir.Constant(i32, 1)]))
        return builder.add(builder.mul(sec, ir.Constant(i64, 1_000_000_000)), nsec)

    return sig, codegen


if NATIVE:
    @njit(cache=True)
    def now():
        """``time.perf_counter()`` from inside a kernel (CLOCK_MONOTONIC, read natively)."""
        return _monotonic_ns() / 1e9  # as CPython turns its nanoseconds into seconds
else:  # pragma: no cover - not Linux
    @njit(cache=True)
    def now():
        """``time.perf_counter()`` from inside a kernel (through an object-mode block, ~1 us a read)."""
        with numba.objmode(t="float64"):
            t = time.perf_counter()
        return t
