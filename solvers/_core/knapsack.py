"""Per-type knapsack tables: the share caps kept integral, for the split relaxation.

For one type ``t`` with prices ``lam[s]`` on "a type-t card at slot s", the table

    KN[s, d, q] = max sum(lam[s'] for the chosen slots s' >= s)

over slot sets that keep the type's own gap (``d``: distance - 1 to its last
card, capped at ``gap - 1``) and fit ``q`` units of its PV cap
(:mod:`solvers._core.resources`: weights rounded down, capacity up, so every
plan that keeps the cap fits). Slots where no card of the type may stand are
never chosen. :func:`floor_table` does the same for a share floor and a count
cap (PV rounded up, so that every plan that meets the floor meets it in units).

Until the type's own gap has passed, a slot cannot take a card, so ``KN[s, d, q]
= KN[s + 1, d + 1, q]`` for ``d < gap - 1``: :func:`knapsack_rows` fills only the
rows ``d = gap - 1`` (a factor ``gap`` less work in every subgradient step),
:func:`knapsack_at` reads any entry from them, and :func:`knapsack_table` fills
every row (for readers that index the table directly).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["knapsack_table", "knapsack_rows", "knapsack_at", "knapsack_path", "floor_table", "floor_path"]

NEG = -np.inf


@njit(cache=True)
def knapsack_rows(lam, avail, units, gap, out):
    """Fill the rows ``d = gap - 1`` of ``out`` (K + 1, >= gap, Q + 1) backwards from slot K; the other rows
    are left as they are (read entries with :func:`knapsack_at`; see the module docstring)."""
    k = lam.shape[0]
    n_q = out.shape[2]
    last = gap - 1
    out[k, last, :] = 0.0
    for s in range(k - 1, -1, -1):
        # (Two branch-free loops, the capacities a slot's card does not fit and those it does: the second
        # vectorises, ~45 % less time than one loop that tests both per entry.)
        w = units[s] if avail[s] and lam[s] > 0.0 else n_q  # a closed slot fits no capacity
        after = min(s + gap, k)  # KN[s + 1, 0] is KN[after, gap - 1]
        for q in range(min(w, n_q)):
            out[s, last, q] = out[s + 1, last, q]
        for q in range(w, n_q):
            best = out[s + 1, last, q]
            v = lam[s] + out[after, last, q - w]
            out[s, last, q] = v if v > best else best


@njit(cache=True)
def knapsack_table(lam, avail, units, gap, out):
    """Fill every row of ``out`` (K + 1, gap, Q + 1): :func:`knapsack_rows`, then the rows ``d < gap - 1``."""
    knapsack_rows(lam, avail, units, gap, out)
    k = lam.shape[0]
    for s in range(k + 1):
        for d in range(gap - 1):
            src = min(s + gap - 1 - d, k)
            for q in range(out.shape[2]):
                out[s, d, q] = out[src, gap - 1, q]


@njit(cache=True, inline="always")
def knapsack_at(table, s, d, q, gap):
    """``KN[s, d, q]`` of a table that :func:`knapsack_table` filled for a type of gap ``gap``.

    (Inlined: one index read, called with tables of either layout and literal indices; a compiled
    function would be one compile per such signature.)"""
    return table[min(s + gap - 1 - d, table.shape[0] - 1), gap - 1, q]


@njit(cache=True)
def knapsack_path(table, lam, avail, units, gap, d0, q0, out_take):
    """The slots the table's best set takes from (slot 0, ``d0``, ``q0``): ``out_take[s]`` 1.0 or 0.0."""
    k = lam.shape[0]
    d, q = d0, q0
    fresh = np.int64(0)  # d right after a card (typed, not a literal: one compile of knapsack_at)
    for s in range(k):
        nd = d + 1 if d + 1 < gap else gap - 1
        w = units[s]
        out_take[s] = 0.0
        if avail[s] and d == gap - 1 and lam[s] > 0.0 and w <= q:
            if lam[s] + knapsack_at(table, s + 1, fresh, q - w, gap) > knapsack_at(table, s + 1, nd, q, gap):
                out_take[s] = 1.0
                d, q = 0, q - w
                continue
        d = nd


@njit(cache=True)
def floor_table(lam, avail, units, gap, out):
    """A type's share floor and count cap kept integral: fill ``out`` (K + 1, gap, R + 1, M + 1) from slot K.

    ``out[s, d, r, n]`` is the best ``sum(lam[s'])`` over slot sets from ``s`` on that keep
    the type's own gap (``d`` as in :func:`knapsack_table`), hold at most ``n`` slots and
    whose ``units`` (each slot's PV rounded *up*, so every plan that meets the floor
    meets ``r``) sum to at least ``r``; ``-inf`` when none does. ``lam`` may be negative:
    a floor may need slots that cost.
    """
    k = lam.shape[0]
    n_r, n_n = out.shape[2], out.shape[3]
    out[k, :, :, :] = NEG
    out[k, :, 0, :] = 0.0
    for s in range(k - 1, -1, -1):
        w = units[s]
        for d in range(gap):
            nd = d + 1 if d + 1 < gap else gap - 1
            open_ = avail[s] and d == gap - 1
            for r in range(n_r):
                r2 = r - w if r > w else 0
                for n in range(n_n):
                    best = out[s + 1, nd, r, n]
                    if open_ and n > 0:
                        v = lam[s] + out[s + 1, 0, r2, n - 1]
                        if v > best:
                            best = v
                    out[s, d, r, n] = best


@njit(cache=True)
def floor_path(table, lam, avail, units, gap, d0, r0, n0, out_take):
    """The slots :func:`floor_table`'s best set takes from (slot 0, ``d0``, ``r0``, ``n0``) into ``out_take``."""
    k = lam.shape[0]
    d, r, n = d0, r0, n0
    for s in range(k):
        nd = d + 1 if d + 1 < gap else gap - 1
        w = units[s]
        out_take[s] = 0.0
        if avail[s] and d == gap - 1 and n > 0:
            r2 = r - w if r > w else 0
            if lam[s] + table[s + 1, 0, r2, n - 1] > table[s + 1, nd, r, n]:
                out_take[s] = 1.0
                d, r, n = 0, r2, n - 1
                continue
        d = nd
