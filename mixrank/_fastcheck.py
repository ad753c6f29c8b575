"""A compiled re-check of one plan, for :func:`mixrank.solution.make_solution`.

:meth:`MixProblem.check <mixrank.MixProblem.check>` lists every broken rule in
words; that costs ~18 us on a ``device`` plan, more than the rest of a beam solve's
Python wrapper. :func:`check_plan` gives the verdict and the objective in one
compiled pass instead, with the *same* float expressions as ``check`` (its fast path
``MixProblem._feasible_fast``) and as ``MixProblem.objective`` (numpy's pairwise
sum), so the two can never disagree; ``make_solution`` calls ``check`` only for the
words, when this kernel says no.

This module imports Numba, so it is imported lazily (on the first ``make_solution``
with a plan): ``import mixrank`` stays light. The first call in a process loads the
kernel from Numba's on-disk cache (compiling it once per machine).
"""

from __future__ import annotations

import math
import time

import numpy as np
from numba import njit

import mixrank._kernel_cache  # noqa: F401  (installs the cache locator before the kernel below)
from mixrank.errors import ProblemError

__all__ = ["check_plan"]

#: numpy's pairwise summation works on blocks of this many elements (``PW_BLOCKSIZE``).
_PW_BLOCK = 128


@njit(cache=True)
def _block_sum(x, lo, n):  # pragma: no cover - compiled
    """numpy's sum of ``x[lo:lo + n]`` for ``n <= 128`` (one block of its pairwise summation)."""
    if n < 8:
        res = 0.0
        for i in range(n):
            res += x[lo + i]
        return res
    r0 = x[lo]
    r1 = x[lo + 1]
    r2 = x[lo + 2]
    r3 = x[lo + 3]
    r4 = x[lo + 4]
    r5 = x[lo + 5]
    r6 = x[lo + 6]
    r7 = x[lo + 7]
    i = 8
    end = n - n % 8
    while i < end:
        r0 += x[lo + i]
        r1 += x[lo + i + 1]
        r2 += x[lo + i + 2]
        r3 += x[lo + i + 3]
        r4 += x[lo + i + 4]
        r5 += x[lo + i + 5]
        r6 += x[lo + i + 6]
        r7 += x[lo + i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += x[lo + i]
        i += 1
    return res


@njit(cache=True)
def _pairwise_sum(x, lo, n):  # pragma: no cover - compiled
    """``x[lo:lo + n].sum()`` exactly as numpy sums a contiguous float64 array.

    numpy (``@TYPE@_pairwise_sum`` in ``loops_utils.h.src``): fewer than 8 elements
    are summed in order from 0.0; up to 128 in 8 interleaved partial sums combined
    as ``((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))`` and then the rest in
    order; longer runs are split in two halves (the first a multiple of 8 long),
    summed alike, and added. The halving runs on an explicit stack, not by
    recursion: Numba segfaults loading a cached self-recursive function.
    """
    if n <= _PW_BLOCK:
        return _block_sum(x, lo, n)
    # Post-order walk of the halving tree: frames (start, length, children done), and partial sums.
    f_lo = np.empty(64, dtype=np.int64)
    f_n = np.empty(64, dtype=np.int64)
    f_done = np.empty(64, dtype=np.int64)
    sums = np.empty(64)
    f_lo[0] = lo
    f_n[0] = n
    f_done[0] = 0
    top = 1
    n_sums = 0
    while top > 0:
        i = top - 1
        m = f_n[i]
        if m <= _PW_BLOCK:
            sums[n_sums] = _block_sum(x, f_lo[i], m)
            n_sums += 1
            top -= 1
            continue
        half = m // 2
        half -= half % 8
        if f_done[i] == 0:
            f_done[i] = 1
            f_lo[top] = f_lo[i]
            f_n[top] = half
            f_done[top] = 0
            top += 1
        elif f_done[i] == 1:
            f_done[i] = 2
            f_lo[top] = f_lo[i] + half
            f_n[top] = m - half
            f_done[top] = 0
            top += 1
        else:
            sums[n_sums - 2] = sums[n_sums - 2] + sums[n_sums - 1]
            n_sums -= 1
            top -= 1
    return sums[0]


@njit(cache=True)
def _check_plan(values, types, pv, allowed, min_gap, init_dist, max_count, share_lo, share_hi, pv_shown,
                plan):  # pragma: no cover - compiled
    """(feasible, objective) of ``plan``; objective is nan when infeasible.

    Entries that are not -1 or a card index make the plan infeasible (``check``
    then raises for them). Comparisons mirror ``MixProblem._feasible_fast``:
    the slot of the previous card of type ``t`` starts at ``-init_dist[t]``,
    the PV per type is summed slot by slot from 0.0, and ``pv_shown`` is added on
    both sides of the share comparisons. ``max_count`` is the count cap capped at
    the type's number of cards, which is the same test once no card repeats.
    """
    n = values.shape[0]
    k = plan.shape[0]
    t_count = pv_shown.shape[0]
    last = np.empty(t_count + 1, dtype=np.int64)
    for t in range(t_count + 1):
        last[t] = -init_dist[t]
    pv_used = np.zeros(t_count)
    counts = np.zeros(t_count, dtype=np.int64)
    used = np.zeros(n, dtype=np.bool_)
    picked = np.empty(k)
    m = 0
    for s in range(k):
        c = plan[s]
        if c == -1:
            continue
        if c < -1 or c >= n:
            return False, math.nan
        t = types[c]
        if used[c] or not allowed[c, s] or s - last[t] < min_gap[t] or s - last[t_count] < min_gap[t_count]:
            return False, math.nan
        used[c] = True
        last[t] = s
        last[t_count] = s
        pv_used[t] += pv[s]
        counts[t] += 1
        picked[m] = values[c, s]
        m += 1
    for t in range(t_count):
        share = pv_shown[t] + pv_used[t]
        if share > share_hi[t] + pv_shown[t] or share < share_lo[t] + pv_shown[t] or counts[t] > max_count[t]:
            return False, math.nan
    # numpy's reduction starts from the identity 0.0 (so an all -0.0 sum is +0.0, as in numpy).
    # typed int64 arguments, never literals: one compile of _pairwise_sum and _block_sum, not one per literal
    return True, 0.0 + _pairwise_sum(picked, np.int64(0), np.int64(m))


def check_plan(problem, plan: np.ndarray) -> tuple[bool, float]:
    """Whether ``plan`` keeps every rule of ``problem``, and its objective, in one compiled pass.

    Parameters
    ----------
    problem : MixProblem
    plan : ndarray of int64
        Card per slot, -1 for organic. A plan of the wrong shape, or with an entry
        that is not -1 or a card index, gets the verdict False (``check`` raises
        a ProblemError for it).

    Returns
    -------
    (bool, float)
        ``(problem.check(plan) == [], problem.objective(plan))``, the objective
        being nan when the verdict is False.

    Raises
    ------
    ProblemError
        When ``plan`` is not an int64 array.

    Examples
    --------
    >>> import numpy as np, mixrank
    >>> p = mixrank.MixProblem(values=[[1.0, 0.5, 0.2], [0.9, 0.8, 0.1]], types=[0, 0],
    ...                        pv_weights=[1.0, 0.8, 0.6], rules=[mixrank.TypeRule(min_gap=2)])
    >>> check_plan(p, np.array([0, -1, 1]))
    (True, 1.1)
    >>> check_plan(p, np.array([0, 1, -1]))
    (False, nan)
    """
    args = problem.arrays.check_args
    if getattr(plan, "dtype", None) != np.int64:
        raise ProblemError(f"plan must be a numpy array of int64; got {type(plan).__name__} "
                           f"of dtype {getattr(plan, 'dtype', None)}")
    if plan.shape != (args[0].shape[1],):
        return False, math.nan
    return _check_plan(*args, plan)


def warm_up() -> float:
    """Compile (or load from the cache) the kernel; returns the seconds it took.

    Examples
    --------
    >>> warm_up() >= 0.0
    True
    """
    from mixrank.problem import MixProblem, TypeRule

    start = time.perf_counter()
    p = MixProblem(values=[[1.0, 0.5], [0.9, 0.8]], types=[0, 1], pv_weights=[1.0, 0.5], rules=[TypeRule()] * 2)
    check_plan(p, np.array([0, 1], dtype=np.int64))
    return time.perf_counter() - start
