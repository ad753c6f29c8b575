"""Per-type knapsack tables: the share caps kept integral, for the split relaxation.

For one type ``t`` with prices ``lam[s]`` on "a type-t card at slot s", the table

    KN[s, d, q] = max sum(lam[s'] for the chosen slots s' >= s)

over slot sets that keep the type's own gap (``d``: distance - 1 to its last
card, capped at ``gap - 1``) and fit ``q`` units of its PV cap
(:mod:`solvers._core.resources`: weights rounded down, capacity up, so every
plan that keeps the cap fits). Slots where no card of the type may stand are
never chosen.
"""

from __future__ import annotations

from numba import njit

__all__ = ["knapsack_table", "knapsack_path"]


@njit(cache=True)
def knapsack_table(lam, avail, units, gap, out):
    """Fill ``out`` (K + 1, gap, Q + 1) backwards from slot K (see the module docstring)."""
    k = lam.shape[0]
    n_q = out.shape[2]
    out[k, :, :] = 0.0
    for s in range(k - 1, -1, -1):
        w = units[s]
        for d in range(gap):
            nd = d + 1 if d + 1 < gap else gap - 1
            open_ = avail[s] and d == gap - 1 and lam[s] > 0.0
            for q in range(n_q):
                best = out[s + 1, nd, q]
                if open_ and w <= q:
                    v = lam[s] + out[s + 1, 0, q - w]
                    if v > best:
                        best = v
                out[s, d, q] = best


@njit(cache=True)
def knapsack_path(table, lam, avail, units, gap, d0, q0, out_take):
    """The slots the table's best set takes from (slot 0, ``d0``, ``q0``): ``out_take[s]`` 1.0 or 0.0."""
    k = lam.shape[0]
    d, q = d0, q0
    for s in range(k):
        nd = d + 1 if d + 1 < gap else gap - 1
        w = units[s]
        out_take[s] = 0.0
        if avail[s] and d == gap - 1 and lam[s] > 0.0 and w <= q:
            if lam[s] + table[s + 1, 0, q - w] > table[s + 1, nd, q]:
                out_take[s] = 1.0
                d, q = 0, q - w
                continue
        d = nd
