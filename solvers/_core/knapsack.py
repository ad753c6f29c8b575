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
every row (for readers that index the table directly); :func:`floor_rows`,
:func:`floor_at` and :func:`floor_table` likewise for the floors.

Every table is one type's C-order block of a table padded to the largest type,
and the kernels loop over its contiguous rows: they vectorise (a strided slice
of the block does not, ~3.5x slower).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["knapsack_table", "knapsack_rows", "knapsack_at", "knapsack_path", "floor_table", "floor_rows", "floor_at",
           "floor_path"]

NEG = -np.inf


@njit(cache=True)
def knapsack_rows(lam, avail, units, gap, n_q, out):
    """Fill the rows ``d = gap - 1``, capacities ``q < n_q``, of ``out`` (K + 1, >= gap, >= n_q; C order)
    backwards from slot K; the other rows are left as they are (read entries with :func:`knapsack_at`; see
    the module docstring)."""
    k = lam.shape[0]
    last = gap - 1
    top = out[k, last]
    for q in range(n_q):
        top[q] = 0.0
    for s in range(k - 1, -1, -1):
        # (Two branch-free loops over contiguous rows, the capacities a slot's card does not fit and those
        # it does; the second reads and writes through slices from q = 0 (an index ``q - w`` is one that may
        # wrap around, and does not vectorise): ~3.5x less time than strided rows.)
        w = units[s] if avail[s] and lam[s] > 0.0 else n_q  # a closed slot fits no capacity
        w = min(w, n_q)
        after = min(s + gap, k)  # KN[s + 1, 0] is KN[after, gap - 1]
        dst, nxt, src = out[s, last], out[s + 1, last], out[after, last]
        for q in range(w):
            dst[q] = nxt[q]
        dst_w, nxt_w, val = dst[w:n_q], nxt[w:n_q], lam[s]
        for q in range(n_q - w):
            best = nxt_w[q]
            v = val + src[q]
            dst_w[q] = v if v > best else best


@njit(cache=True)
def knapsack_table(lam, avail, units, gap, n_q, out):
    """Fill every row ``d < gap``, capacities ``q < n_q``, of ``out`` (K + 1, >= gap, >= n_q; C order):
    :func:`knapsack_rows`, then the rows ``d < gap - 1``."""
    knapsack_rows(lam, avail, units, gap, n_q, out)
    k = lam.shape[0]
    for s in range(k + 1):
        for d in range(gap - 1):
            dst, src = out[s, d], out[min(s + gap - 1 - d, k), gap - 1]  # (rows: the copy vectorises)
            for q in range(n_q):
                dst[q] = src[q]


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
def floor_table(lam, avail, units, gap, n_r, n_n, out):
    """A type's share floor and count cap kept integral: fill ``out[:, :gap, :n_r, :n_n]`` from slot K
    (``out``: (K + 1, >= gap, >= R + 1, >= M + 1), C order, padded to the largest type).

    ``out[s, d, r, n]`` is the best ``sum(lam[s'])`` over slot sets from ``s`` on that keep
    the type's own gap (``d`` as in :func:`knapsack_table`), hold at most ``n`` slots and
    whose ``units`` (each slot's PV rounded *up*, so every plan that meets the floor
    meets ``r``) sum to at least ``r``; ``-inf`` when none does. ``lam`` may be negative:
    a floor may need slots that cost. :func:`floor_rows`, then the rows ``d < gap - 1``.
    """
    floor_rows(lam, avail, units, gap, n_r, n_n, out)
    k = lam.shape[0]
    for s in range(k + 1):
        for d in range(gap - 1):
            _copy_plane(out[s, d], out[min(s + gap - 1 - d, k), gap - 1], n_r, n_n)


@njit(cache=True)
def floor_rows(lam, avail, units, gap, n_r, n_n, out):
    """:func:`floor_table`'s rows ``d = gap - 1`` only (as :func:`knapsack_rows`; read with :func:`floor_at`)."""
    k = lam.shape[0]
    last = gap - 1
    for r in range(n_r):
        for n in range(n_n):
            out[k, last, r, n] = 0.0 if r == 0 else NEG
    for s in range(k - 1, -1, -1):
        if avail[s]:
            _floor_take(out[s, last], out[s + 1, last], out[min(s + gap, k), last], lam[s], units[s], n_r, n_n)
        else:
            _copy_plane(out[s, last], out[s + 1, last], n_r, n_n)


@njit(cache=True, inline="always")
def floor_at(table, s, d, r, n, gap):
    """``out[s, d, r, n]`` of a table that :func:`floor_table` (or :func:`floor_rows`) filled (see
    :func:`knapsack_at`)."""
    return table[min(s + gap - 1 - d, table.shape[0] - 1), gap - 1, r, n]


@njit(cache=True)
def _copy_plane(dst, src, n_r, n_n):
    """``dst[r, n] = src[r, n]`` for ``r < n_r``, ``n < n_n`` (2-D rows of one padded table)."""
    for r in range(n_r):
        dst_r, src_r = dst[r], src[r]
        for n in range(n_n):
            dst_r[n] = src_r[n]


@njit(cache=True)
def _floor_take(dst, nxt, fresh, val, w, n_r, n_n):
    """One open row of :func:`floor_table`: ``dst[r, n] = max(nxt[r, n], val + fresh[max(r - w, 0), n - 1])``
    (``n > 0``; ``dst[r, 0] = nxt[r, 0]``); ``fresh`` is the next slot's row ``d = 0``."""
    # (Every row r > w reads fresh[r - w]: with no padding after n_n, (r, n) -> (r - w, n - 1) is one fixed
    # offset in the flat plane, one loop that vectorises over all of them; the n = 0 column is put right
    # after. ~5x less time than an entry at a time.)
    width = dst.shape[1]
    low = min(w + 1, n_r)  # the rows r <= w read fresh[0]
    flat = n_n == width and low < n_r
    for r in range(low if flat else n_r):
        _floor_take_row(dst[r], nxt[r], fresh[max(r - w, 0)], val, n_n)
    if flat:
        start, stop = low * width, n_r * width
        flat_dst = dst.reshape(-1)[start:stop]
        flat_nxt = nxt.reshape(-1)[start:stop]
        flat_src = fresh.reshape(-1)[start - w * width - 1:stop - w * width - 1]
        for i in range(stop - start):
            best = flat_nxt[i]
            v = val + flat_src[i]
            flat_dst[i] = v if v > best else best
        for r in range(low, n_r):
            dst[r, 0] = nxt[r, 0]


@njit(cache=True, inline="always")
def _floor_take_row(dst_r, nxt_r, src, val, n_n):
    """``dst_r[n] = max(nxt_r[n], val + src[n - 1])`` for ``0 < n < n_n``, and ``dst_r[0] = nxt_r[0]``."""
    dst_r[0] = nxt_r[0]
    for n in range(1, n_n):
        best = nxt_r[n]
        v = val + src[n - 1]
        dst_r[n] = v if v > best else best


@njit(cache=True)
def floor_path(table, lam, avail, units, gap, d0, r0, n0, out_take):
    """The slots :func:`floor_table`'s (or :func:`floor_rows`') best set takes from (slot 0, ``d0``, ``r0``,
    ``n0``) into ``out_take``."""
    k = lam.shape[0]
    d, r, n = d0, r0, n0
    for s in range(k):
        nd = d + 1 if d + 1 < gap else gap - 1
        w = units[s]
        out_take[s] = 0.0
        if avail[s] and d == gap - 1 and n > 0:
            r2 = r - w if r > w else 0
            if lam[s] + floor_at(table, s + 1, 0, r2, n - 1, gap) > floor_at(table, s + 1, nd, r, n, gap):
                out_take[s] = 1.0
                d, r, n = 0, r2, n - 1
                continue
        d = nd
