"""Local search on *where each type goes*, each move valued exactly by re-matching the types it changes.

From a plan, a first-improvement search over three kinds of move, each kept feasible
(gaps, shares, counts: :func:`~solvers._core.instance.types_feasible`):

* re-type one slot (organic to a type: add a card; a type to organic: drop one;
  one type to another);
* move a card slot of a type to an organic slot;
* swap the types of two card slots.

A move changes the slot sets of one or two types; their best assignments
(:func:`~solvers._core.assign.match_type`) value it exactly. Before that, the dual
prices of each type's current matching bound what its new slot set can be worth
(:func:`~solvers._core.assign.price_bound`, kept per slot in a table): a move whose
bound cannot gain is skipped without solving anything, and most are. The search
stops at a local optimum, after ``max_solves`` assignment problems, or at the deadline.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from solvers._clock import now
from solvers._core.assign import match_type
from solvers._core.instance import types_feasible

__all__ = ["LocalResult", "local_search", "MIN_GAIN", "CLOCK_SOLVES"]

NEG = -np.inf
#: Least relative gain that counts as an improvement.
MIN_GAIN = 1e-9
#: The search reads the clock every this many assignment problems.
CLOCK_SOLVES = 16


class LocalResult(NamedTuple):
    """What :func:`local_search` returns."""

    value: float  #: the final plan's value
    plan: np.ndarray  #: (K,) int64
    moves: int  #: moves accepted
    solves: int  #: assignment problems solved
    local_opt: bool  #: False when stopped by ``max_solves`` or the deadline


class _TypeTables(NamedTuple):
    """Per type: its matched value and the price bound's table (the duals of its last matching)."""

    value: np.ndarray  #: (T,) the type's matched value on its slots
    pmax: np.ndarray  #: (T, K): max over the type's cards of (value - dual price); -inf where none may stand
    ub: np.ndarray  #: (T,) sum of pmax over the type's slots + its prices' sum (= value, up to rounding)


@njit(cache=True)
def _slots_of(ptype, t):
    m = 0
    for s in range(ptype.shape[0]):
        m += ptype[s] == t
    out = np.empty(m, dtype=np.int64)
    m = 0
    for s in range(ptype.shape[0]):
        if ptype[s] == t:
            out[m] = s
            m += 1
    return out


@njit(cache=True)
def _solve_type(inp, ptype, t, plan, tab):
    """Match type ``t`` to its slots in ``ptype``, write its cards into ``plan`` and its row of ``tab``."""
    slots = _slots_of(ptype, t)
    t0, t1 = inp.tstart[t], inp.tstart[t + 1]
    mt = match_type(inp.vmask, inp.tcards, t0, t1, slots)
    for i in range(slots.shape[0]):
        plan[slots[i]] = mt.cards[i]
    tab.value[t] = mt.value if slots.shape[0] > 0 else 0.0
    total = mt.prices.sum()
    for s in range(ptype.shape[0]):
        best = NEG
        for j in range(t1 - t0):
            x = inp.vmask[inp.tcards[t0 + j], s] - mt.prices[j]
            if x > best:
                best = x
        tab.pmax[t, s] = best
        if ptype[s] == t:
            total += best
    tab.ub[t] = total


@njit(cache=True)
def _trial_value(inp, ptype, t_a, t_b):
    """The exact value of types ``t_a`` and ``t_b`` (-1: none) on their slots in ``ptype``."""
    v = 0.0
    for t in (t_a, t_b):
        if t >= 0:
            slots = _slots_of(ptype, t)
            if slots.shape[0] > 0:
                v += match_type(inp.vmask, inp.tcards, inp.tstart[t], inp.tstart[t + 1], slots).value
    return v


@njit(cache=True)
def _gain_bound(value, pmax, ub, t, drop, add):
    """Upper bound of type ``t``'s gain when it loses slot ``drop`` and gains ``add`` (-1: none); ``t`` -1: 0.

    Takes :class:`_TypeTables`' arrays (a named tuple passed per candidate costs more than the test).
    """
    if t < 0:
        return 0.0
    b = ub[t] - value[t]
    if drop >= 0:
        b -= pmax[t, drop]
    if add >= 0:
        b += pmax[t, add]
    return b


@njit(cache=True)
def _try(inp, ptype, s1, t1, s2, t2, tab):
    """The exact gain of setting slot ``s1`` to type ``t1`` and (``s2 >= 0``) slot ``s2`` to ``t2``: ``(gain, solves)``.

    ``gain`` is -inf when the move breaks a rule. ``ptype`` is left changed; the caller restores it.
    """
    a = ptype[s1]  # the types whose slots change: a loses s1 (and gains s2), b = t1 gains s1 (and loses s2)
    ptype[s1] = t1
    if s2 >= 0:
        ptype[s2] = t2
    if not types_feasible(inp, ptype):
        return NEG, 0
    before = (tab.value[a] if a >= 0 else 0.0) + (tab.value[t1] if t1 >= 0 else 0.0)
    return _trial_value(inp, ptype, a, t1) - before, (a >= 0) + (t1 >= 0)


@njit(cache=True)
def _restore(ptype, s1, t1, s2, t2):
    ptype[s1] = t1
    if s2 >= 0:
        ptype[s2] = t2


@njit(cache=True)
def _first_improving(inp, ptype, tab, total):
    """The first move that gains: ``(gain, s1, t1, s2, t2, solves)`` (gain -inf: none); ``ptype`` unchanged.

    Moves in a fixed order: every slot re-typed (organic first), then every card slot moved to
    an organic slot or swapped with a later card slot of another type. A move is valued exactly
    only when the price bound of the types it changes says it may gain.
    """
    k = ptype.shape[0]
    t_count = inp.caps.shape[0]
    value, pmax, ub = tab.value, tab.pmax, tab.ub
    least = MIN_GAIN * (1.0 + abs(total))
    solves = 0
    none = np.int64(-1)  # (not a literal -1: one compiled signature of _try and _restore)
    for s in range(k):  # re-type one slot
        old = ptype[s]
        for t in range(-1, t_count):
            if t == old or (t >= 0 and pmax[t, s] == NEG):
                continue
            if _gain_bound(value, pmax, ub, old, s, none) + _gain_bound(value, pmax, ub, t, none, s) <= least:
                continue
            g, n_solved = _try(inp, ptype, s, t, none, none, tab)
            _restore(ptype, s, old, none, none)
            solves += n_solved
            if g > least:
                return g, s, t, -1, -1, solves
    for s1 in range(k):  # move a card slot to an organic slot, or swap two card slots' types
        t1 = ptype[s1]
        if t1 < 0:
            continue
        for s2 in range(k):
            t2 = ptype[s2]
            if s2 == s1 or t2 == t1 or (t2 >= 0 and s2 < s1) or pmax[t1, s2] == NEG:
                continue
            if t2 >= 0 and pmax[t2, s1] == NEG:
                continue
            if _gain_bound(value, pmax, ub, t1, s1, s2) + _gain_bound(value, pmax, ub, t2, s2, s1) <= least:
                continue
            g, n_solved = _try(inp, ptype, s1, t2, s2, t1, tab)
            _restore(ptype, s1, t1, s2, t2)
            solves += n_solved
            if g > least:
                return g, s1, t2, s2, t1, solves
    return NEG, -1, -1, -1, -1, solves


@njit(cache=True)
def local_search(inp, plan, max_solves, deadline):
    """First-improvement local search from ``plan`` (a feasible plan); see the module docstring."""
    k = plan.shape[0]
    t_count = inp.caps.shape[0]
    plan = plan.copy()
    ptype = np.full(k, -1, dtype=np.int64)
    for s in range(k):
        if plan[s] >= 0:
            ptype[s] = inp.types[plan[s]]
    tab = _TypeTables(np.zeros(t_count), np.full((t_count, k), NEG), np.zeros(t_count))
    for t in range(t_count):
        _solve_type(inp, ptype, t, plan, tab)
    total = tab.value.sum()
    moves, solves, local_opt = 0, t_count, True
    while True:
        if solves >= max_solves or (deadline < np.inf and now() > deadline):
            local_opt = False
            break
        gain, s1, t1, s2, t2, tried = _first_improving(inp, ptype, tab, total)
        solves += tried
        if gain == NEG:
            break
        old1 = ptype[s1]
        old2 = ptype[s2] if s2 >= 0 else -1
        _restore(ptype, s1, t1, s2, t2)
        if s2 < 0:
            plan[s1] = -1
        else:
            plan[s1] = -1
            plan[s2] = -1
        for t in (old1, old2, t1, t2):
            if t >= 0:
                _solve_type(inp, ptype, t, plan, tab)
        moves += 1
        total = tab.value.sum()
    return LocalResult(total, plan, moves, solves, local_opt)
