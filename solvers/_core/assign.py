"""Which card of a type goes to which of its slots: one small assignment problem per type.

Gaps, shares and counts depend on the slots a plan gives each type, not on which of
the type's cards stand there. So the cards of a type can be re-assigned to its slots
optimally (Hungarian method) without breaking a rule: the beam chooses *where* each
type goes, the matching *which* card. The matching's dual prices also bound what
other slot sets of the type are worth (:func:`price_bound`), which lets the local
search skip moves that cannot gain.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

__all__ = ["Match", "hungarian", "match_type", "price_bound", "rematch_plan", "rematch_duals"]

NEG = -np.inf


class Match(NamedTuple):
    """An optimal assignment of one type's cards to its slots."""

    value: float  #: total value (-inf: no assignment puts an allowed card on every slot)
    cards: np.ndarray  #: (m,) int64: the card at each slot, in the order of the slots given
    prices: np.ndarray  #: (n_t,) float64 >= 0: a dual price per card of the type (see :func:`price_bound`)


@njit(cache=True)
def hungarian(value):
    """Max-value assignment of every row of ``value`` (m, n), m <= n, to a distinct column.

    ``-inf`` marks a forbidden pair. Returns ``(total, col_of_row, col_price)``:
    ``total`` is ``-inf`` when no assignment avoids a forbidden pair; ``col_price``
    (n,) are non-negative dual prices (``value[i, j] <= row_i + col_price[j]`` at the optimum).
    Shortest augmenting paths with potentials, O(m^2 n).
    """
    m, n = value.shape
    big = 1.0
    for i in range(m):
        for j in range(n):
            if value[i, j] != NEG:
                big += abs(value[i, j])
    big *= 4.0
    u = np.zeros(m + 1)
    v = np.zeros(n + 1)
    row_of = np.zeros(n + 1, dtype=np.int64)  # 1-based row on column j (0: free); column 0 is the root
    way = np.zeros(n + 1, dtype=np.int64)
    minv = np.empty(n + 1)
    done = np.empty(n + 1, dtype=np.bool_)
    for i in range(1, m + 1):
        row_of[0] = i
        j0 = 0
        minv[:] = np.inf
        done[:] = False
        while True:
            done[j0] = True
            i0 = row_of[j0]
            delta = np.inf
            j1 = 0
            for j in range(1, n + 1):
                if not done[j]:
                    x = value[i0 - 1, j - 1]
                    cur = (big if x == NEG else -x) - u[i0] - v[j]
                    if cur < minv[j]:
                        minv[j] = cur
                        way[j] = j0
                    if minv[j] < delta:
                        delta = minv[j]
                        j1 = j
            for j in range(n + 1):
                if done[j]:
                    u[row_of[j]] += delta
                    v[j] -= delta
                else:
                    minv[j] -= delta
            j0 = j1
            if row_of[j0] == 0:
                break
        while j0 != 0:
            j1 = way[j0]
            row_of[j0] = row_of[j1]
            j0 = j1
    col_of_row = np.empty(m, dtype=np.int64)
    total = 0.0
    for j in range(1, n + 1):
        if row_of[j] > 0:
            col_of_row[row_of[j] - 1] = j - 1
    for i in range(m):
        x = value[i, col_of_row[i]]
        if x == NEG:
            total = NEG
            break
        total += x
    price = np.empty(n)
    for j in range(n):
        price[j] = max(0.0, -v[j + 1])
    return total, col_of_row, price


@njit(cache=True)
def match_type(vmask, tcards, t0, t1, slots):
    """:class:`Match` of the cards ``tcards[t0:t1]`` (one type's) to ``slots``; ``vmask`` has -inf where not allowed."""
    m = slots.shape[0]
    nt = t1 - t0
    if m > nt:
        return Match(NEG, np.full(m, -1, dtype=np.int64), np.zeros(nt))
    value = np.empty((m, nt))
    for i in range(m):
        for j in range(nt):
            value[i, j] = vmask[tcards[t0 + j], slots[i]]
    total, col, price = hungarian(value)
    cards = np.empty(m, dtype=np.int64)
    for i in range(m):
        cards[i] = tcards[t0 + col[i]]
    return Match(total, cards, price)


@njit(cache=True)
def price_bound(vmask, tcards, t0, t1, prices, slots_mask):
    """An upper bound of a type's best assignment to the slots where ``slots_mask`` is True.

    For any prices ``p >= 0`` and any assignment, ``sum_s v[c(s), s] <= sum_s max_c (v[c, s] - p_c) + sum_c p_c``
    (LP duality); with a matching's own duals it is exact on that matching's slots.
    """
    total = 0.0
    for j in range(t1 - t0):
        total += prices[j]
    for s in range(slots_mask.shape[0]):
        if slots_mask[s]:
            best = NEG
            for j in range(t1 - t0):
                x = vmask[tcards[t0 + j], s] - prices[j]
                if x > best:
                    best = x
            if best == NEG:
                return NEG
            total += best
    return total


@njit(cache=True)
def rematch_plan(vmask, types, tcards, tstart, plan):
    """Re-assign every type's cards to the slots ``plan`` gives it; returns ``(value, new plan)``.

    The plan keeps every rule (only which card stands where changes). ``value`` is
    ``-inf`` if some type's slots have no assignment (never for a plan that has one).
    """
    return rematch_duals(vmask, types, tcards, tstart, plan, np.zeros((0, 0)))


@njit(cache=True)
def rematch_duals(vmask, types, tcards, tstart, plan, duals):
    """:func:`rematch_plan`, and each matching's dual prices into row t of ``duals`` (T, most cards of a type;
    the types the plan does not place keep their row); ``duals`` with no rows: none kept."""
    k = plan.shape[0]
    out = plan.copy()
    total = 0.0
    for t in range(tstart.shape[0] - 1):
        m = 0
        for s in range(k):
            if plan[s] >= 0 and types[plan[s]] == t:
                m += 1
        if m == 0:
            continue
        slots = np.empty(m, dtype=np.int64)
        m = 0
        for s in range(k):
            if plan[s] >= 0 and types[plan[s]] == t:
                slots[m] = s
                m += 1
        mt = match_type(vmask, tcards, tstart[t], tstart[t + 1], slots)
        if mt.value == NEG:
            return NEG, plan.copy()
        total += mt.value
        if duals.shape[0] > 0:
            for j in range(mt.prices.shape[0]):
                duals[t, j] = mt.prices[j]
        for i in range(m):
            out[slots[i]] = mt.cards[i]
    return total, out
