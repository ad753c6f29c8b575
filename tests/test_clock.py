"""The kernels' clock (solvers._clock.now) reads time.perf_counter()'s clock: deadlines set in Python hold in Numba."""

from __future__ import annotations

import sys
import time

import pytest

from solvers._clock import NATIVE, now


def test_now_reads_perf_counters_clock():
    now()  # compiled or loaded first
    for _ in range(200):
        before = time.perf_counter()
        t = now()
        after = time.perf_counter()
        assert before <= t <= after


def test_now_moves_with_perf_counter():
    t0, p0 = now(), time.perf_counter()
    time.sleep(0.05)
    t1, p1 = now(), time.perf_counter()
    assert abs((t1 - t0) - (p1 - p0)) < 0.01


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the native clock is Linux's")
def test_linux_reads_the_clock_natively():
    assert NATIVE
