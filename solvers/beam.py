"""Beam search over slots in Numba: the fast, on-device planner (``solver="beam"``).

How it searches
---------------
Slots are filled top to bottom. A partial plan is a state of arrays only: a
``uint64`` bitmask of the cards used (one word per 64 cards), the distance since
the last card of each type and of any card (capped at the gap, as in
:mod:`mixrank.arrays`), the PV and the number of cards used per type, and the value
so far. From each state of the beam the next slot either keeps its organic item or
takes one of the ``cards_per_type`` best unused allowed cards of each type whose
gap, count and share cap still allow it.

Ranking
-------
Children are ranked by their value plus an optimistic estimate of what the slots
below can still add, read from a table ``H[s, d]`` computed once per problem by a
dynamic program over the slots and the joint distance vector ``d`` (every type's
gap and the any-card gap together): the best a type pattern from slot ``s`` on can
collect when a type-``t`` card at slot ``s`` is worth the mean value there of the
type's ``min(max_count, n_cards)`` best cards. The table respects every gap
exactly, so it tells apart states that differ only in how soon each type may come
back; the card term keeps it from assuming the one best card fills every slot.
When the joint distance space is too large (more than :data:`MAX_TABLE_STATES`
states) the table is dropped and children are ranked by value alone.

Not wasting the beam
--------------------
Children that reach the same state (same cards used, same capped distances, same
PV and counts per type) are merged, keeping the one of higher value. Ties are
broken deterministically by the order in which children are generated (parent
rank, then organic item before cards, then types, then cards by value).

Feasibility
-----------
Every rule is enforced as slots are filled; a min-share rule is guarded by a
look-ahead: a child is dropped when the most PV its short type can still collect
below (an exact table over slots and cards left, spacing the type by its gap and
the any-card gap over the slots where one of its cards is allowed) cannot cover the
shortfall. The final beam is filtered on the share rules; when nothing feasible is
left the solver answers UNKNOWN, and INFEASIBLE only when the same look-ahead
already fails at the root (a proof: it is a relaxation).

Cost
----
Compilation happens once per machine (``cache=True``); call :func:`warm_up` at
start-up so that the first real call does not pay the cache load.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
from numba import njit

from mixrank.errors import SolverError
from mixrank.solution import Solution, Status, make_solution

__all__ = ["solve_beam"]

#: Default beam width.
DEFAULT_WIDTH = 32
#: Default number of cards tried per type at each slot (by value, unused and allowed).
DEFAULT_CARDS_PER_TYPE = 2
#: Largest joint distance space (product of the gaps) for which the estimate table is built.
MAX_TABLE_STATES = 1 << 14

_NEG = -1e300


# --------------------------------------------------------------------- tables
@njit(cache=True)
def _card_order(values, types, allowed, n_types):
    """Cards of each type at each slot, allowed only, best value first (ties: lower index): (order, length)."""
    n, k = values.shape
    per_type = np.zeros(n_types, np.int64)
    for c in range(n):
        per_type[types[c]] += 1
    width = 1
    for t in range(n_types):
        width = max(width, per_type[t])
    order = np.full((n_types, k, width), -1, np.int64)
    length = np.zeros((n_types, k), np.int64)
    for s in range(k):
        for c in range(n):
            if not allowed[c, s]:
                continue
            t = types[c]
            v = values[c, s]
            j = length[t, s]
            while j > 0 and values[order[t, s, j - 1], s] < v:  # insertion sort, stable
                order[t, s, j] = order[t, s, j - 1]
                j -= 1
            order[t, s, j] = c
            length[t, s] += 1
    return order, length


@njit(cache=True)
def _type_caps(types, max_count, n_types):
    caps = np.zeros(n_types, np.int64)
    for c in range(types.shape[0]):
        caps[types[c]] += 1
    for t in range(n_types):
        caps[t] = min(caps[t], max_count[t])
    return caps


@njit(cache=True)
def _reach_table(types, pv, allowed, min_gap, caps, n_types):
    """reach[t, f, m]: most PV type t can collect in slots >= f with at most m more cards.

    Cards of type t are spaced by max(min_gap[t], min_gap_any) and only stand where
    one of them is allowed; other types and card identities are ignored, so this is
    an upper bound on what a real plan can reach.
    """
    n, k = allowed.shape
    m_max = 0
    for t in range(n_types):
        m_max = max(m_max, caps[t])
    reach = np.zeros((n_types, k + 1, m_max + 1))
    g_any = min_gap[n_types]
    usable = np.zeros(k, np.bool_)
    for t in range(n_types):
        spacing = max(min_gap[t], g_any)
        usable[:] = False
        for c in range(n):
            if types[c] == t:
                for s in range(k):
                    if allowed[c, s]:
                        usable[s] = True
        for s in range(k - 1, -1, -1):
            for m in range(1, caps[t] + 1):
                best = reach[t, s + 1, m]
                if usable[s]:
                    after = s + spacing
                    take = pv[s] + (reach[t, after, m - 1] if after <= k else 0.0)
                    if take > best:
                        best = take
                reach[t, s, m] = best
            for m in range(caps[t] + 1, m_max + 1):
                reach[t, s, m] = reach[t, s, caps[t]]
    return reach


@njit(cache=True)
def _type_values(values, order, order_len, caps):
    """r[t, s]: mean value at slot s of the type's caps[t] best cards allowed there (-inf if none)."""
    n_types, k, _ = order.shape
    r = np.full((n_types, k), _NEG)
    for t in range(n_types):
        for s in range(k):
            q = min(order_len[t, s], caps[t])
            if q == 0:
                continue
            total = 0.0
            for j in range(q):
                total += values[order[t, s, j], s]
            r[t, s] = total / q
    return r


@njit(cache=True)
def _transitions(min_gap, n_types):
    """Index arithmetic of the joint distance space (index T is the any-card gap).

    Returns strides, next index after an organic slot, next index after a type-t
    card (-1 where the gaps forbid one).
    """
    nd = n_types + 1
    strides = np.zeros(nd, np.int64)
    size = 1
    for i in range(nd):
        strides[i] = size
        size *= min_gap[i]
    skip_next = np.zeros(size, np.int64)
    place_next = np.full((n_types, size), -1, np.int64)
    d = np.zeros(nd, np.int64)
    for idx in range(size):
        rem = idx
        for i in range(nd - 1, -1, -1):
            d[i] = rem // strides[i] + 1
            rem = rem % strides[i]
        nxt = 0
        for i in range(nd):
            nxt += (min(d[i] + 1, min_gap[i]) - 1) * strides[i]
        skip_next[idx] = nxt
        if d[n_types] >= min_gap[n_types]:
            for t in range(n_types):
                if d[t] >= min_gap[t]:
                    nx = 0
                    for i in range(nd):
                        dd = 1 if (i == t or i == n_types) else min(d[i] + 1, min_gap[i])
                        nx += (dd - 1) * strides[i]
                    place_next[t, idx] = nx
    return strides, skip_next, place_next


@njit(cache=True)
def _future_table(r, skip_next, place_next):
    """H[s, idx]: best a gap-feasible type pattern can add from slot s, type t worth r[t, s] there."""
    n_types, k = r.shape
    size = skip_next.shape[0]
    H = np.zeros((k + 1, size))
    for s in range(k - 1, -1, -1):
        for idx in range(size):
            best = H[s + 1, skip_next[idx]]
            for t in range(n_types):
                nx = place_next[t, idx]
                if nx >= 0 and r[t, s] > 0.0:
                    v = r[t, s] + H[s + 1, nx]
                    if v > best:
                        best = v
            H[s, idx] = best
    return H


# --------------------------------------------------------------------- search
@njit(cache=True)
def _short_of_share(t, s_next, pv_have, count, dist, min_gap, caps, share_lo, reach):
    """True when type t can no longer reach its min share from slot s_next on."""
    need = share_lo[t] - pv_have
    if need <= 0.0:
        return False
    n_types = caps.shape[0]
    k = reach.shape[1] - 1
    f = s_next + max(0, max(min_gap[t] - dist[t], min_gap[n_types] - dist[n_types]))
    if f > k:
        f = k
    left = caps[t] - count
    if left <= 0:
        return True
    return need > reach[t, f, left]


@njit(cache=True)
def _beam_search(values, types, pv, min_gap, init_dist, caps, share_lo, share_hi,
                 order, order_len, reach, H, strides, width, cards_per_type, n_out):
    """The beam search proper. Returns (plans, objectives, n_found, stats, root_infeasible).

    ``plans[i]`` for ``i < n_found`` are distinct feasible plans, best first.
    ``stats`` = [children generated, dropped by the min-share look-ahead, merged duplicates].
    """
    n, k = values.shape
    T = caps.shape[0]
    nd = T + 1
    nw = max(1, (n + 63) // 64)
    W = width
    used = np.zeros((2, W, nw), np.uint64)
    dist = np.zeros((2, W, nd), np.int64)
    pv_used = np.zeros((2, W, T))
    count = np.zeros((2, W, T), np.int64)
    value = np.zeros((2, W))
    parent_of = np.zeros((k, W), np.int64)
    card_of = np.zeros((k, W), np.int64)
    stats = np.zeros(3, np.int64)
    out = np.full((n_out, k), -1, np.int64)
    out_value = np.zeros(n_out)

    for i in range(nd):
        dist[0, 0, i] = init_dist[i]
    # Root: a share cap already exceeded, or a floor out of reach, is a proof of infeasibility.
    for t in range(T):
        if share_hi[t] < 0.0 or _short_of_share(t, 0, 0.0, 0, dist[0, 0], min_gap, caps, share_lo, reach):
            return out, out_value, 0, stats, True

    max_children = W * (1 + T * cards_per_type)
    ch_parent = np.zeros(max_children, np.int64)
    ch_card = np.zeros(max_children, np.int64)
    ch_key = np.zeros(max_children)
    child_dist = np.zeros(nd, np.int64)
    hsize = 1
    while hsize < 4 * W:
        hsize *= 2
    htab = np.full(hsize, -1, np.int64)
    hcode = np.zeros(hsize, np.uint64)
    fnv = np.uint64(1099511628211)
    mask = np.int64(hsize - 1)

    size = 1
    cur = 0
    for s in range(k):
        nc = 0
        for p in range(size):
            for ty in range(-1, T):
                if ty >= 0:
                    if dist[cur, p, T] < min_gap[T] or dist[cur, p, ty] < min_gap[ty]:
                        continue
                    if count[cur, p, ty] >= caps[ty] or pv_used[cur, p, ty] + pv[s] > share_hi[ty]:
                        continue
                taken = 0
                j = 0
                while True:
                    c = -1
                    if ty >= 0:
                        if taken >= cards_per_type or j >= order_len[ty, s]:
                            break
                        c = order[ty, s, j]
                        j += 1
                        if (used[cur, p, c >> 6] >> np.uint64(c & 63)) & np.uint64(1):
                            continue
                    for i in range(nd):
                        if c >= 0 and (i == ty or i == T):
                            child_dist[i] = 1
                        else:
                            child_dist[i] = min(dist[cur, p, i] + 1, min_gap[i])
                    stats[0] += 1
                    ok = True
                    for t in range(T):
                        have = pv_used[cur, p, t]
                        cnt = count[cur, p, t]
                        if t == ty:
                            have += pv[s]
                            cnt += 1
                        if _short_of_share(t, s + 1, have, cnt, child_dist, min_gap, caps, share_lo, reach):
                            ok = False
                            break
                    if ok:
                        idx = 0
                        for i in range(nd):
                            idx += (child_dist[i] - 1) * strides[i]
                        key = value[cur, p] + H[s + 1, idx]
                        if c >= 0:
                            key += values[c, s]
                        ch_parent[nc] = p
                        ch_card[nc] = c
                        ch_key[nc] = key
                        nc += 1
                    else:
                        stats[1] += 1
                    if ty < 0:
                        break
                    if ok:
                        taken += 1
        # Keep the best W distinct children (stable sort: ties keep generation order).
        nxt = 1 - cur
        rank = np.argsort(-ch_key[:nc], kind="mergesort")
        htab[:] = -1
        kept = 0
        for q in range(nc):
            if kept >= W:
                break
            ci = rank[q]
            p = ch_parent[ci]
            c = ch_card[ci]
            ty = types[c] if c >= 0 else -1
            for w in range(nw):
                used[nxt, kept, w] = used[cur, p, w]
            if c >= 0:
                used[nxt, kept, c >> 6] |= np.uint64(1) << np.uint64(c & 63)
            for i in range(nd):
                if c >= 0 and (i == ty or i == T):
                    dist[nxt, kept, i] = 1
                else:
                    dist[nxt, kept, i] = min(dist[cur, p, i] + 1, min_gap[i])
            for t in range(T):
                pv_used[nxt, kept, t] = pv_used[cur, p, t]
                count[nxt, kept, t] = count[cur, p, t]
            value[nxt, kept] = value[cur, p]
            if c >= 0:
                pv_used[nxt, kept, ty] += pv[s]
                count[nxt, kept, ty] += 1
                value[nxt, kept] += values[c, s]
            # Merge duplicates: same cards, distances, PV and counts (the first seen has the higher key).
            h = np.uint64(1469598103934665603)
            for w in range(nw):
                h = (h ^ used[nxt, kept, w]) * fnv
            for i in range(nd):
                h = (h ^ np.uint64(dist[nxt, kept, i])) * fnv
            for t in range(T):
                h = (h ^ np.uint64(count[nxt, kept, t])) * fnv
            slot = np.int64(h >> np.uint64(20)) & mask
            dup = False
            while htab[slot] >= 0:
                o = htab[slot]
                if hcode[slot] == h:
                    same = True
                    for w in range(nw):
                        same = same and used[nxt, o, w] == used[nxt, kept, w]
                    for i in range(nd):
                        same = same and dist[nxt, o, i] == dist[nxt, kept, i]
                    for t in range(T):
                        same = same and pv_used[nxt, o, t] == pv_used[nxt, kept, t]
                        same = same and count[nxt, o, t] == count[nxt, kept, t]
                    if same:
                        dup = True
                        break
                slot = (slot + np.int64(1)) & mask
            if dup:
                stats[2] += 1
                continue
            htab[slot] = kept
            hcode[slot] = h
            parent_of[s, kept] = p
            card_of[s, kept] = c
            kept += 1
        size = kept
        cur = nxt
        if size == 0:
            break

    n_found = 0
    if size > 0:
        final = np.empty(size)
        for i in range(size):
            ok = True
            for t in range(T):
                if pv_used[cur, i, t] < share_lo[t] or pv_used[cur, i, t] > share_hi[t]:
                    ok = False
            final[i] = value[cur, i] if ok else -np.inf
        rank = np.argsort(-final, kind="mergesort")
        for q in range(size):
            i = rank[q]
            if final[i] == -np.inf or n_found >= n_out:
                break
            j = i
            for s in range(k - 1, -1, -1):
                out[n_found, s] = card_of[s, j]
                j = parent_of[s, j]
            out_value[n_found] = final[i]
            n_found += 1
    return out, out_value, n_found, stats, False


# --------------------------------------------------------------------- Python face
def _estimate_table(arrays, caps, order, order_len):
    """The ranking table H and its strides; a zero table when the distance space is too large."""
    t_count = arrays.n_types
    states = 1
    for g in arrays.min_gap.tolist():
        states *= g
    if states > MAX_TABLE_STATES:
        return np.zeros((arrays.n_slots + 1, 1)), np.zeros(t_count + 1, np.int64)
    strides, skip_next, place_next = _transitions(arrays.min_gap, t_count)
    r = _type_values(arrays.values, order, order_len, caps)
    return _future_table(r, skip_next, place_next), strides


def _frozen_arrays(ar):
    """The problem's arrays, all read-only, so that the kernels are compiled for one signature.

    (Arrays of an unpickled problem, e.g. in a worker process, come back writable; a
    writable array is another Numba type and would trigger a fresh compilation.)
    """
    fields = {}
    for name in ("values", "types", "pv", "allowed", "min_gap", "init_dist", "max_count", "share_lo", "share_hi"):
        a = getattr(ar, name)
        if a.flags.writeable:
            a = a.view()
            a.setflags(write=False)
        fields[name] = a
    return ar._replace(**fields)


def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise SolverError(f"{name} must be an int >= {low}; got {value!r}")
    return int(value)


def solve_beam(
    problem,
    *,
    time_limit: float | None = None,
    seed: int = 0,
    width: int = DEFAULT_WIDTH,
    n_solutions: int = 1,
    cards_per_type: int = DEFAULT_CARDS_PER_TYPE,
) -> Solution:
    """Plan with a deterministic beam search over slots (Numba).

    Parameters
    ----------
    problem : MixProblem
    time_limit : float or None
        Accepted for a uniform interface. The search is not interrupted: its work is
        bounded by ``width * K * (1 + T * cards_per_type)`` children.
    seed : int
        Unused: the search is deterministic (ties are broken by generation order).
    width : int >= 1, default 32
        States kept after each slot.
    n_solutions : int >= 1, default 1
        Put the best ``n_solutions`` distinct feasible plans of the final beam into
        ``Solution.pool``.
    cards_per_type : int >= 1, default 2
        Cards of each type tried at each slot (the best unused allowed ones by value).

    Returns
    -------
    Solution
        FEASIBLE with ``bound = inf`` (a heuristic proves nothing), UNKNOWN when the
        final beam holds no feasible plan, INFEASIBLE only when a min-share floor is
        out of reach (or a share cap exceeded) before the first slot.

    Examples
    --------
    >>> import mixrank
    >>> p = mixrank.synthetic.instance("tiny", seed=1)
    >>> sol = solve_beam(p, width=16, n_solutions=3)
    >>> sol.status, p.check(sol.assignment), len(sol.pool)
    (<Status.FEASIBLE: 'FEASIBLE'>, [], 3)
    """
    start = time.perf_counter()
    width = _check_int("width", width, 1)
    n_solutions = _check_int("n_solutions", n_solutions, 1)
    cards_per_type = _check_int("cards_per_type", cards_per_type, 1)
    ar = _frozen_arrays(problem.arrays)
    caps = _type_caps(ar.types, ar.max_count, ar.n_types)
    order, order_len, reach, H, strides = _tables(ar, caps)
    t_kernel = time.perf_counter()
    plans, objectives, n_found, counters, infeasible = _beam_search(
        ar.values, ar.types, ar.pv, ar.min_gap, ar.init_dist, caps, ar.share_lo, ar.share_hi,
        order, order_len, reach, H, strides, width, cards_per_type, n_solutions,
    )
    end_kernel = time.perf_counter()
    stats = {
        "width": width,
        "children": int(counters[0]),
        "lookahead_drops": int(counters[1]),
        "merged": int(counters[2]),
        "tables_time": t_kernel - start,
        "kernel_time": end_kernel - t_kernel,
    }
    if n_found == 0:
        status = Status.INFEASIBLE if infeasible else Status.UNKNOWN
        return make_solution(problem, "beam", status, None, math.nan, time.perf_counter() - start, stats)
    pool = [plans[i] for i in range(n_found)] if n_solutions > 1 else ()
    return make_solution(problem, "beam", Status.FEASIBLE, plans[0], math.inf, time.perf_counter() - start,
                         stats, pool=pool)


def _tables(ar, caps):
    """Per-problem tables (rebuilt on every call: they are part of the plan's cost)."""
    order, order_len = _card_order(ar.values, ar.types, ar.allowed, ar.n_types)
    reach = _reach_table(ar.types, ar.pv, ar.allowed, ar.min_gap, caps, ar.n_types)
    H, strides = _estimate_table(ar, caps, order, order_len)
    return order, order_len, reach, H, strides


def warm_up() -> float:
    """Compile (or load from the cache) every kernel of the beam solver; returns the seconds it took.

    Call it once at start-up so that the first real plan does not pay for it.

    Examples
    --------
    >>> warm_up() >= 0.0
    True
    """
    from mixrank.problem import History, MixProblem, TypeRule

    start = time.perf_counter()
    p = MixProblem(values=[[1.0, 0.5, 0.2], [0.9, 0.8, 0.1]], types=[0, 1], pv_weights=[1.0, 0.8, 0.6],
                   rules=[TypeRule(min_gap=2, max_share=0.6), TypeRule(min_share=0.1)], min_gap_any=1,
                   history=History(last_gap=[1, None], pv_shown=[0.1, 0.0], pv_total_shown=1.0))
    solve_beam(p, width=2, n_solutions=2)
    return time.perf_counter() - start
