"""The beam over slots: states, their children, their rank, and the best distinct ones kept.

A state (one row of a :class:`Layer`) holds the cards used (a ``uint64`` bitmask
per 64 cards), the distance to the last card of each gap rule, the gap machine's
state (:mod:`solvers._core.gaps`), the PV and count per type, the value of each
type's cards and the priced value so far. Its rank (:func:`completion`) is the
priced value so far plus the relaxation's best completion
(:class:`~solvers._beam.relax.Ranking`): the DP's table at its slot and gap state
and, for each capped type, the knapsack's best from the PV the type has left, plus
a tenth (``tie``) of the plain value so far.

Children of a state are the organic item and, for each type the gaps, the count
and the share cap allow, the ``cards_per_type`` best unused cards at the slot (by
priced value). Where every card of the type allowed at the slot is used, the type
may still take the slot when its cards can be re-matched to its slots and this one
(:func:`rematched_child`): without it, slot patterns that need such a swap are never
reached. A look-ahead (:func:`floor_ok`) drops children that can no longer reach a
min-share floor. The best ``width`` distinct children are kept (equal states merge,
the better one stays; ties go to the first generated); over the first third of
the slots the beam keeps half as many.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from solvers._clock import now
from solvers._core.assign import match_type
from solvers._core.prices import copy_into

__all__ = ["Layer", "Children", "BeamResult", "new_layer", "completion", "floor_ok", "rematched_child",
           "beam_search", "trace", "EARLY_SLOTS_DIVISOR"]

NEG = -np.inf
#: The first ``K // EARLY_SLOTS_DIVISOR`` slots keep half the width.
EARLY_SLOTS_DIVISOR = 3
_FNV = np.uint64(1099511628211)


class Layer(NamedTuple):
    """The states of one slot (W rows; N cards in ``nw`` words, T types)."""

    used: np.ndarray  #: (W, nw) uint64: the cards used, a bit each
    dist: np.ndarray  #: (W, T + 1) int64: distance to the last card of each type, then of any card (capped)
    gstate: np.ndarray  #: (W,) int64: the gap machine's state
    pv_used: np.ndarray  #: (W, T) float64: PV of each type, summed slot by slot
    units: np.ndarray  #: (W, T) int64: PV units a capped type has left in its knapsack (:class:`Ranking`)
    count: np.ndarray  #: (W, T) int64: cards of each type
    tval: np.ndarray  #: (W, T) float64: value of each type's cards
    value: np.ndarray  #: (W,) float64: value so far
    acc: np.ndarray  #: (W,) float64: priced value so far (less card, PV and count prices)
    zhash: np.ndarray  #: (W,) uint64: Zobrist hash of ``used``


class Children(NamedTuple):
    """The children of one slot (C rows), and the work space of the two steps of a slot (allocated once a beam)."""

    parent: np.ndarray  #: (C,) int64
    card: np.ndarray  #: (C,) int64: -1 organic
    key: np.ndarray  #: (C,) float64: the rank
    rematch: np.ndarray  #: (C,) int64: row of ``rm_used`` for a re-matched child, else -1
    rm_used: np.ndarray  #: (C, nw) uint64: a re-matched child's cards
    rm_tval: np.ndarray  #: (C,) float64: ... and its type's value
    nd: np.ndarray  #: (1, T + 1) int64: the child's distances (:func:`_expand`)
    pv2: np.ndarray  #: (1, T) float64: ... its PV per type
    cnt2: np.ndarray  #: (1, T) int64: ... its cards per type
    units2: np.ndarray  #: (1, T) int64: ... the PV units its capped types have left
    heap: np.ndarray  #: (C,) int64: the children in a heap by rank (:func:`_select`)
    table: np.ndarray  #: (H,) int64: the hash table of the states kept (row, -1 empty)
    codes: np.ndarray  #: (H,) uint64: ... and their hashes


class BeamResult(NamedTuple):
    """The final beam, traced back through ``parent``/``card`` (K, W)."""

    parent: np.ndarray
    card: np.ndarray
    size: int
    value: np.ndarray  #: (size,) value of each final state
    feasible: np.ndarray  #: (size,) bool: every share floor met
    stats: np.ndarray  #: [children, look-ahead drops, merged, slots past the deadline]


@njit(cache=True)
def new_layer(width, nw, t_count):
    return Layer(np.zeros((width, nw), dtype=np.uint64), np.zeros((width, t_count + 1), dtype=np.int64),
                 np.zeros(width, dtype=np.int64), np.zeros((width, t_count)), np.zeros((width, t_count), dtype=np.int64),
                 np.zeros((width, t_count), dtype=np.int64),
                 np.zeros((width, t_count)), np.zeros(width), np.zeros(width), np.zeros(width, dtype=np.uint64))


@njit(cache=True)
def _hash_size(want):
    """Entries of the hash table that keeps ``want`` states (a power of two, at least ``4 * want``)."""
    hsize = 16
    while hsize < 4 * want:
        hsize *= 2
    return hsize


@njit(cache=True)
def _new_children(size, nw, t_count, width):
    hsize = _hash_size(width)
    return Children(np.empty(size, dtype=np.int64), np.empty(size, dtype=np.int64), np.empty(size),
                    np.full(size, -1, dtype=np.int64), np.zeros((size, nw), dtype=np.uint64), np.zeros(size),
                    np.empty((1, t_count + 1), dtype=np.int64), np.empty((1, t_count)),
                    np.empty((1, t_count), dtype=np.int64), np.empty((1, t_count), dtype=np.int64),
                    np.empty(size, dtype=np.int64), np.empty(hsize, dtype=np.int64), np.empty(hsize, dtype=np.uint64))


# The helpers called once per child take arrays, not the named tuples: passing a tuple of arrays to a
# compiled call costs a reference count pair per array (~0.1-0.2 us a call), more than the work itself.
# They, and the two steps of a slot (:func:`_expand`, :func:`_select`, which take the tuples), are inlined
# into :func:`beam_search` (``inline="always"``): on stress-device the beam at width 24 took 0.40 ms a call
# without, 0.20 ms with (the same plans).
@njit(cache=True, inline="always")
def completion(H, H0, need, kn, kn_of, kn_gap, s, gstate, dist, units, row):
    """The relaxation's best priced completion from slot ``s`` (:class:`~solvers._beam.relax.Ranking`'s arrays).

    The DP's part is the least of two bounds of the same completions: ``H`` (every card of
    a floored type paid its floor price per unit of PV) and ``H0`` (no floor price) plus
    ``need``, the floor prices of the PV the state's floors still ask for
    (:func:`_floor_terms`): past its floor a type earns no more floor price, so ``H``
    alone over-rates a state whose floors are met or nearly met. Then each capped type's
    knapsack from the distance to its last card and the units it has left (``dist[row]``,
    ``units[row]``): the split relaxation with its copy of the plan so far fixed to the
    plan, so a valid bound of every completion.
    """
    v = min(H[s, gstate], H0[s, gstate] + need)
    for t in range(kn_of.shape[0]):
        j = kn_of[t]
        if j >= 0:
            if units[row, t] < 0:
                return NEG
            v += kn[j, s, min(dist[row, t], kn_gap[j]) - 1, units[row, t]]
    return v


@njit(cache=True, inline="always")
def _floor_terms(beta, lo, pv_used, row):
    """The floor prices' part of a state's rank, ``(credit, need)``: ``credit`` pays ``beta[t]`` per unit of
    PV up to the floor, none past it; ``need`` prices the PV still missing, ``beta[t] * max(0, lo - pv_used)``.

    The rows left for the slots ahead ask ``max(0, lo - pv_used)`` more PV; a floor met
    leaves a redundant row, so a state is not rewarded for PV beyond its floor (the bound
    stays valid, and tighter than ``beta * pv_used``), and its completion earns at most
    ``need`` of floor prices (:func:`completion`).
    """
    credit = 0.0
    need = 0.0
    for t in range(beta.shape[0]):
        if beta[t] > 0.0:
            credit += beta[t] * min(pv_used[row, t], lo[t])
            need += beta[t] * max(lo[t] - pv_used[row, t], 0.0)
    return credit, need


@njit(cache=True, inline="always")
def floor_ok(of_type, tables, kdim, tol, share_lo, gap, caps, s, dist, pv_used, count, row):
    """False when some floored type can no longer reach its floor from slot ``s`` (the state in ``row`` of
    ``dist``/``pv_used``/``count``; the look-ahead tables are :class:`~solvers._beam.relax.FloorReach`'s)."""
    t_count = caps.shape[0]
    g_any = gap[t_count]
    da = min(dist[row, t_count], g_any) - 1
    for t in range(t_count):
        j = of_type[t]
        if j < 0 or pv_used[row, t] >= share_lo[t]:
            continue
        d = min(dist[row, t], gap[t]) - 1
        left = min(caps[t] - count[row, t], kdim[j] - 1)
        if left <= 0 or pv_used[row, t] + tables[j, s, d, da, left] < share_lo[t] - tol:
            return False
    return True


@njit(cache=True, inline="always")
def _step_dist(gap, dist, p, t, out, row):
    """``out[row]`` := the distances at the next slot after ``dist[p]`` and organic (``t`` -1) or a type-``t`` card.

    (Rows are passed by index: a row view per child costs more than the loop.)
    """
    t_count = gap.shape[0] - 1
    for r in range(t_count + 1):
        out[row, r] = min(dist[p, r] + 1, gap[r])
    if t >= 0:
        out[row, t] = 1
        out[row, t_count] = 1


@njit(cache=True, inline="always")
def _copy_row(src, p, dst, row):
    """``dst[row] = src[p]`` element by element (no views)."""
    for x in range(src.shape[1]):
        dst[row, x] = src[p, x]


@njit(cache=True)
def _type_slots(tr, p, s, t, types):
    """Slots before ``s`` where the state ``p`` of slot ``s - 1``'s layer holds a type-``t`` card, traced back."""
    slots = np.empty(s + 1, dtype=np.int64)
    m = 0
    for s2 in range(s - 1, -1, -1):
        c = tr.card[s2, p]
        if c >= 0 and types[c] == t:
            slots[m] = s2
            m += 1
        p = tr.parent[s2, p]
    return slots[:m][::-1].copy()


@njit(cache=True)
def rematched_child(inp, tr, lay, p, s, t, ch, q):
    """Put a type-``t`` card at slot ``s`` of state ``p`` by re-matching the type's cards to its slots and ``s``.

    Writes the child's cards and its type's value into row ``q`` of ``ch``; returns
    ``(card at s, value gained)``, card -1 when no matching exists.
    """
    prev = _type_slots(tr, p, s, t, inp.types)
    slots = np.empty(prev.shape[0] + 1, dtype=np.int64)
    copy_into(slots[:-1], prev)
    slots[-1] = s
    mt = match_type(inp.vmask, inp.tcards, inp.tstart[t], inp.tstart[t + 1], slots)
    if mt.value == NEG:
        return -1, 0.0
    copy_into(ch.rm_used[q], lay.used[p])
    for j in range(inp.tstart[t], inp.tstart[t + 1]):  # clear the type's bits, then set the matched cards'
        c = inp.tcards[j]
        ch.rm_used[q, c >> 6] &= ~(np.uint64(1) << np.uint64(c & 63))
    for c in mt.cards:
        ch.rm_used[q, c >> 6] |= np.uint64(1) << np.uint64(c & 63)
    ch.rm_tval[q] = mt.value
    return mt.cards[-1], mt.value - lay.tval[p, t]


@njit(cache=True)
def _mu_of(used, mu):
    total = 0.0
    for c in range(mu.shape[0]):
        if (used[c >> 6] >> np.uint64(c & 63)) & np.uint64(1):
            total += mu[c]
    return total


@njit(cache=True)
def _is_used(used, c):
    return (used[c >> 6] >> np.uint64(c & 63)) & np.uint64(1) != np.uint64(0)


@njit(cache=True, inline="always")
def _expand(inp, rk, fl, has_floor, order, lay, size, s, tr, cards_per_type, tie, ch, stats):
    """Every child of the ``size`` states of ``lay`` at slot ``s`` into ``ch``; returns how many.

    ``has_floor``: some type has a share floor (the look-ahead runs)."""
    gap, caps, shown, hi, lo, values = inp.gap, inp.caps, inp.shown, inp.share_hi, inp.share_lo, inp.values
    H, H0, kn, kn_of, kn_gap, kn_units, trans, mu = rk.H, rk.H0, rk.kn, rk.kn_of, rk.kn_gap, rk.kn_units, rk.trans, rk.mu
    dist, used, pv_used, count, units = lay.dist, lay.used, lay.pv_used, lay.count, lay.units
    c_parent, c_card, c_key, c_rematch = ch.parent, ch.card, ch.key, ch.rematch
    gstate, acc, value, alpha, beta, gamma, rk_lo = lay.gstate, lay.acc, lay.value, rk.alpha, rk.beta, rk.gamma, rk.lo
    fl_of, fl_tables, fl_kdim = fl.of_type, fl.tables, fl.kdim
    t_count = caps.shape[0]
    nd, pv2, cnt2, units2 = ch.nd, ch.pv2, ch.cnt2, ch.units2
    zero = np.int64(0)  # the child's row in those (not a literal: one signature for the calls that take it)
    pv_s = inp.pv[s]
    nc = np.int64(0)  # (not a literal 0: one compiled signature for the calls that take it)
    for p in range(size):
        for t in range(-1, t_count):
            if t >= 0:
                if dist[p, t] < gap[t] or dist[p, t_count] < gap[t_count] or count[p, t] >= caps[t]:
                    continue
                if order[t, s, 0] < 0 or shown[t] + (pv_used[p, t] + pv_s) > hi[t] + shown[t]:
                    continue
            _step_dist(gap, dist, p, t, nd, zero)
            _copy_row(pv_used, p, pv2, zero)
            _copy_row(count, p, cnt2, zero)
            _copy_row(units, p, units2, zero)
            if t >= 0:
                pv2[0, t] += pv_s
                cnt2[0, t] += 1
                if kn_of[t] >= 0:
                    units2[0, t] -= kn_units[kn_of[t], s]
            if has_floor and not floor_ok(fl_of, fl_tables, fl_kdim, fl.tol, lo, gap, caps, s + 1, nd, pv2, cnt2, zero):
                stats[1] += 1
                continue
            g2 = trans[gstate[p], 1 + t]
            credit, need = _floor_terms(beta, rk_lo, pv2, zero)
            base = acc[p] + completion(H, H0, need, kn, kn_of, kn_gap, s + 1, g2, nd, units2, zero) + tie * value[p]
            base += credit
            if t < 0:
                c_parent[nc], c_card[nc], c_key[nc], c_rematch[nc] = p, -1, base, -1
                nc += 1
                continue
            base -= alpha[t] * pv_s + gamma[t]
            taken = 0
            for j in range(order.shape[2]):
                c = order[t, s, j]
                if c < 0 or taken == cards_per_type:
                    break
                if (used[p, c >> 6] >> np.uint64(c & 63)) & np.uint64(1):
                    continue
                c_parent[nc], c_card[nc], c_rematch[nc] = p, c, -1
                c_key[nc] = base + (1.0 + tie) * values[c, s] - mu[c]
                nc += 1
                taken += 1
            if taken == 0 and count[p, t] < inp.tstart[t + 1] - inp.tstart[t]:
                c, gain = rematched_child(inp, tr, lay, p, s, t, ch, nc)
                if c >= 0:
                    d_mu = _mu_of(ch.rm_used[nc], mu) - _mu_of(used[p], mu)
                    c_parent[nc], c_card[nc], c_rematch[nc] = p, c, nc
                    c_key[nc] = base + (1.0 + tie) * gain - d_mu
                    nc += 1
    stats[0] += nc
    return nc


@njit(cache=True)
def _state_hash(zhash, dist, pv_used, row):
    """A hash of the state in ``row``: its cards' Zobrist hash, its distances and PV (equal states, equal hash)."""
    h = zhash[row]
    for r in range(dist.shape[1]):
        h = (h ^ np.uint64(dist[row, r])) * _FNV
    for t in range(pv_used.shape[1]):
        h = (h ^ np.uint64(np.int64(pv_used[row, t] * 1e9))) * _FNV
    return h


@njit(cache=True)
def _same_row(x, a, b):
    for j in range(x.shape[1]):
        if x[a, j] != x[b, j]:
            return False
    return True


@njit(cache=True)
def _same_state(used, dist, pv_used, a, b):
    """Same cards, distances and PV per type (the counts follow from the cards)."""
    return _same_row(used, a, b) and _same_row(dist, a, b) and _same_row(pv_used, a, b)


@njit(cache=True)
def _take_rematched(inp, rk, lay, ch, q, s, zkeys, out, row):
    """Row ``row`` of ``out`` (written as for a plain child) takes the cards, value and hash of re-matched child ``q``."""
    p, t = ch.parent[q], inp.types[ch.card[q]]
    gain = ch.rm_tval[q] - lay.tval[p, t]
    copy_into(out.used[row], ch.rm_used[q])
    out.tval[row, t] = ch.rm_tval[q]
    out.value[row] = lay.value[p] + gain
    d_mu = _mu_of(ch.rm_used[q], rk.mu) - _mu_of(lay.used[p], rk.mu)
    out.acc[row] = lay.acc[p] - rk.alpha[t] * inp.pv[s] - rk.gamma[t] + gain - d_mu
    h = np.uint64(0)
    for c in range(inp.types.shape[0]):
        if _is_used(out.used[row], c):
            h ^= zkeys[c]
    out.zhash[row] = h


@njit(cache=True)
def _before(key, a, b):
    """Whether child ``a`` ranks before child ``b``: the higher key, then the first generated (NaN keys last)."""
    ka, kb = key[a], key[b]
    if ka > kb:
        return True
    if ka == kb:
        return a < b
    return kb != kb and (ka == ka or a < b)


@njit(cache=True)
def _sift_down(key, heap, i, n):
    """Restore the heap order of ``heap[:n]`` (by :func:`_before`, best at 0) below entry ``i``."""
    while True:
        c = 2 * i + 1
        if c >= n:
            return
        if c + 1 < n and _before(key, heap[c + 1], heap[c]):
            c += 1
        if not _before(key, heap[c], heap[i]):
            return
        heap[i], heap[c] = heap[c], heap[i]
        i = c


@njit(cache=True, inline="always")
def _select(inp, rk, lay, ch, nc, s, want, zkeys, out, tr, stats):
    """Keep the best ``want`` distinct children (by key; ties: generation order) as ``out``; returns how many.

    Children are written in rank order (taken from a heap: only the first few of them are
    needed); a child equal to one kept already (whose key is at least as high) is merged
    into it, that is dropped.
    """
    gap, types, values, pv_s = inp.gap, inp.types, inp.values, inp.pv[s]
    trans, kn_of, kn_units = rk.trans, rk.kn_of, rk.kn_units
    l_used, l_dist, l_pv, l_units, l_count, l_tval = lay.used, lay.dist, lay.pv_used, lay.units, lay.count, lay.tval
    used, dist, pv_used, units, count, tval = out.used, out.dist, out.pv_used, out.units, out.count, out.tval
    value, acc, zhash = out.value, out.acc, out.zhash
    key, heap, table, codes = ch.key, ch.heap, ch.table, ch.codes
    hsize = _hash_size(want)
    for i in range(hsize):
        table[i] = -1
    mask = np.uint64(hsize - 1)
    for i in range(nc):
        heap[i] = i
    for i in range(nc // 2 - 1, -1, -1):
        _sift_down(key, heap, i, nc)
    n_heap = nc
    kept = np.int64(0)  # (not a literal 0: one compiled signature for the calls that take it)
    while kept < want and n_heap > 0:
        q = heap[0]  # the best child left (rank, then generation order: a stable sort's order)
        n_heap -= 1
        heap[0] = heap[n_heap]
        _sift_down(key, heap, 0, n_heap)
        p, c, r = ch.parent[q], ch.card[q], kept
        t = types[c] if c >= 0 else -1
        _step_dist(gap, l_dist, p, t, dist, r)
        out.gstate[r] = trans[lay.gstate[p], 1 + t]
        _copy_row(l_pv, p, pv_used, r)
        _copy_row(l_units, p, units, r)
        _copy_row(l_count, p, count, r)
        _copy_row(l_tval, p, tval, r)
        _copy_row(l_used, p, used, r)
        value[r], acc[r], zhash[r] = lay.value[p], lay.acc[p], lay.zhash[p]
        if t >= 0:
            pv_used[r, t] += pv_s
            count[r, t] += 1
            if kn_of[t] >= 0:
                units[r, t] -= kn_units[kn_of[t], s]
            if ch.rematch[q] >= 0:
                _take_rematched(inp, rk, lay, ch, q, s, zkeys, out, r)
            else:
                used[r, c >> 6] |= np.uint64(1) << np.uint64(c & 63)
                zhash[r] ^= zkeys[c]
                tval[r, t] += values[c, s]
                value[r] += values[c, s]
                acc[r] += values[c, s] - rk.mu[c] - rk.alpha[t] * pv_s - rk.gamma[t]
        h = _state_hash(zhash, dist, pv_used, r)
        slot = (h >> np.uint64(17)) & mask
        dup = False
        while table[slot] >= 0:
            if codes[slot] == h and _same_state(used, dist, pv_used, table[slot], r):
                dup = True
                break
            slot = (slot + np.uint64(1)) & mask
        if dup:
            stats[2] += 1
            continue
        table[slot] = r
        codes[slot] = h
        tr.parent[s, r] = p
        tr.card[s, r] = c
        kept += 1
    return kept


@njit(cache=True)
def beam_search(inp, rk, fl, order, width, cards_per_type, tie, zkeys, deadline):
    """The beam over every slot (module docstring); ``order[t, s]``: type t's cards allowed at s, best first (-1 pads)."""
    n, k = inp.values.shape
    t_count = inp.caps.shape[0]
    nw = max(1, (n + 63) // 64)
    lay = new_layer(width, nw, t_count)
    nxt = new_layer(width, nw, t_count)
    copy_into(lay.dist[0], inp.dist0)
    for t in range(t_count):
        if rk.kn_of[t] >= 0:
            lay.units[0, t] = rk.kn_cap[rk.kn_of[t]]
    ch = _new_children(width * (1 + t_count * cards_per_type), nw, t_count, width)
    has_floor = np.any(fl.of_type >= 0)
    tr = BeamResult(np.zeros((k, width), dtype=np.int64), np.full((k, width), -1, dtype=np.int64), 0, np.zeros(0),
                    np.zeros(0, dtype=np.bool_), np.zeros(4, dtype=np.int64))
    stats = tr.stats
    size = np.int64(1)  # (not a literal 1: one compiled signature for the calls that take it)
    late = False
    for s in range(k):
        if deadline < np.inf and not late and now() > deadline:
            late = True
        if late:
            stats[3] += 1
        nc = _expand(inp, rk, fl, has_floor, order, lay, size, s, tr, cards_per_type, tie, ch, stats)
        want = 1 if late else ((width + 1) // 2 if s < k // EARLY_SLOTS_DIVISOR else width)
        size = _select(inp, rk, lay, ch, nc, s, want, zkeys, nxt, tr, stats)
        lay, nxt = nxt, lay
        if size == 0:
            break
    feasible = np.ones(size, dtype=np.bool_)
    for i in range(size):
        for t in range(t_count):
            share = inp.shown[t] + lay.pv_used[i, t]
            if share < inp.share_lo[t] + inp.shown[t] or share > inp.share_hi[t] + inp.shown[t]:
                feasible[i] = False
    return BeamResult(tr.parent, tr.card, size, lay.value[:size].copy(), feasible, stats)


@njit(cache=True)
def trace(res, i):
    """The plan of final state ``i`` (its cards may repeat after a re-matched child: re-match it)."""
    k = res.card.shape[0]
    plan = np.empty(k, dtype=np.int64)
    for s in range(k - 1, -1, -1):
        plan[s] = res.card[s, i]
        i = res.parent[s, i]
    return plan
