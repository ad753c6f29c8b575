"""One compiled call from the ranking to the plans: the beam (with its retries), re-matching, local search.

:func:`plan` runs steps 3-5 of :mod:`solvers.beam`: the beam
(:func:`~solvers._beam.search.beam_search`), retried 8x and 64x wider when tight
floors starve it; each final plan re-matched type by type
(:func:`~solvers._core.assign.rematch_plan`), best first, skipping plans whose
bound cannot beat the ones kept; the local search
(:func:`~solvers._core.local.local_search`) from the best few; and the best
``n_out`` distinct plans of all.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from solvers._beam.search import beam_search, floor_ok, trace
from solvers._clock import now
from solvers._core.assign import price_bound, rematch_duals, rematch_plan
from solvers._core.instance import types_feasible
from solvers._core.local import local_search
from solvers._core.prices import copy_into

__all__ = ["Plans", "plan", "card_order", "path_plan", "root_infeasible", "RETRY_GROWTH", "LS_MAX_SOLVES", "N_COUNTERS"]

NEG = -np.inf
#: A starved beam is retried this many times wider, twice.
RETRY_GROWTH = 8
#: Most assignment problems one local search solves.
LS_MAX_SOLVES = 200
#: Work counters (``solvers.beam._COUNTER_NAMES``).
N_COUNTERS = 11


class Plans(NamedTuple):
    """What :func:`plan` returns."""

    plans: np.ndarray  #: (n_out, K) int64, the first ``n_found`` distinct feasible plans, best first
    values: np.ndarray  #: (n_out,) their values
    n_found: int
    stats: np.ndarray  #: (N_COUNTERS,) int64 work counters


@njit(cache=True)
def root_infeasible(inp, fl):
    """True when a share cap is exceeded or a floor is out of reach before the first slot (a proof)."""
    t_count = inp.caps.shape[0]
    for t in range(t_count):
        if inp.share_hi[t] < 0.0:
            return True
    zero = np.int64(0)  # (not a literal: the signature the beam compiles)
    return not floor_ok(fl.of_type, fl.tables, fl.kdim, fl.tol, inp.share_lo, inp.gap, inp.caps, zero,
                        inp.dist0.reshape((1, t_count + 1)), np.zeros((1, t_count)),
                        np.zeros((1, t_count), dtype=np.int64), zero)


@njit(cache=True)
def card_order(inp, mu):
    """``order[t, s]``: type t's cards allowed at slot s, best priced value (``value - mu``) first, ties by
    index; -1 pads."""
    t_count, k = inp.caps.shape[0], inp.pv.shape[0]
    n_t = 1
    for t in range(t_count):
        n_t = max(n_t, inp.tstart[t + 1] - inp.tstart[t])
    order = np.full((t_count, k, n_t), -1, dtype=np.int64)
    for t in range(t_count):
        t0, m = inp.tstart[t], inp.tstart[t + 1] - inp.tstart[t]
        for s in range(k):
            row = order[t, s]
            n_ok = 0
            for j in range(m):  # insertion by priced value (small lists: no sort call per slot)
                c = inp.tcards[t0 + j]
                x = inp.vmask[c, s]
                if x == NEG:
                    continue
                key = x - mu[c]
                i = n_ok
                while i > 0 and inp.vmask[row[i - 1], s] - mu[row[i - 1]] < key:
                    row[i] = row[i - 1]
                    i -= 1
                row[i] = c
                n_ok += 1
    return order


@njit(cache=True)
def _best_at(inp):
    """(T, K): the best value of a type's card at each slot (-inf: none may stand)."""
    t_count, k = inp.caps.shape[0], inp.pv.shape[0]
    out = np.full((t_count, k), NEG)
    for c in range(inp.types.shape[0]):
        for s in range(k):
            out[inp.types[c], s] = max(out[inp.types[c], s], inp.vmask[c, s])
    return out


@njit(cache=True)
def path_plan(inp, trans, choice):
    """A plan from the relaxation's path: ``(value, plan)``, value -inf when its repair fails.

    The DP's choices (``choice`` (K + 1, S, 1) of :func:`solvers._core.dp.backward_dp`)
    give a type (or organic) per slot; where a type holds more slots than its count cap or
    more PV than its share cap, its slots of least value are dropped (dropping a card
    keeps every gap); the type sequence must then keep every rule
    (:func:`~solvers._core.instance.types_feasible`), and each type's cards are matched
    to its slots (:func:`~solvers._core.assign.rematch_plan`). With good prices the path
    is nearly a plan, and the repaired one is often better than a narrow beam's.
    """
    t_count, k = inp.caps.shape[0], inp.pv.shape[0]
    best_at = _best_at(inp)
    ptype = np.full(k, -1, dtype=np.int64)
    i = 0
    for s in range(k):
        ch = choice[s, i, 0]
        if ch > 0 and best_at[ch - 1, s] > NEG:
            ptype[s] = ch - 1
        i = trans[i, ch]
    for t in range(t_count):
        while True:
            pv_t, n_t, worst, at = 0.0, 0, np.inf, -1
            for s in range(k):
                if ptype[s] == t:
                    pv_t += inp.pv[s]
                    n_t += 1
                    if best_at[t, s] < worst:
                        worst, at = best_at[t, s], s
            if at < 0 or (n_t <= inp.caps[t] and inp.shown[t] + pv_t <= inp.share_hi[t] + inp.shown[t]):
                break
            ptype[at] = -1
    if not types_feasible(inp, ptype):
        return NEG, ptype
    plan = np.full(k, -1, dtype=np.int64)
    for s in range(k):
        if ptype[s] >= 0:
            plan[s] = inp.tcards[inp.tstart[ptype[s]]]  # any card of the type: the matching chooses
    return rematch_plan(inp.vmask, inp.types, inp.tcards, inp.tstart, plan)


@njit(cache=True)
def _insert(out, out_value, n_found, plan, v):
    """Insert a plan among the distinct ones kept (best first); returns the new count."""
    n_keep = out.shape[0]
    for x in range(n_found):
        if np.array_equal(out[x], plan):
            return n_found
    if n_found == n_keep and v <= out_value[n_keep - 1]:
        return n_found
    pos = n_found if n_found < n_keep else n_keep - 1
    while pos > 0 and out_value[pos - 1] < v:
        copy_into(out[pos], out[pos - 1])
        out_value[pos] = out_value[pos - 1]
        pos -= 1
    copy_into(out[pos], plan)
    out_value[pos] = v
    return min(n_found + 1, n_keep)


@njit(cache=True)
def _plan_bound(inp, p, best_at, duals):
    """An upper bound of plan ``p``'s value re-matched: the least of two, each type's cards free to repeat
    (``best_at``) and each type's assignment bounded at the dual prices ``duals`` (T, n) of an earlier matching
    (:func:`~solvers._core.assign.price_bound`: any prices >= 0 give one)."""
    free, priced = 0.0, 0.0
    mask = np.empty(p.shape[0], dtype=np.bool_)  # the slots of one type
    for s in range(p.shape[0]):
        if p[s] >= 0:
            free += best_at[inp.types[p[s]], s]
    for t in range(duals.shape[0]):
        placed = False
        for s in range(p.shape[0]):
            mask[s] = p[s] >= 0 and inp.types[p[s]] == t
            placed = placed or mask[s]
        if placed:
            priced += price_bound(inp.vmask, inp.tcards, inp.tstart[t], inp.tstart[t + 1], duals[t], mask)
    return min(free, priced)


@njit(cache=True)
def _rematched(inp, res, n_keep, stats):
    """Step 4: the final plans re-matched, best first, distinct; plans whose bound (:func:`_plan_bound`, at the
    duals of the best plan's matchings) cannot gain are skipped."""
    k, t_count = inp.pv.shape[0], inp.caps.shape[0]
    out = np.full((n_keep, k), -1, dtype=np.int64)
    out_value = np.zeros(n_keep)
    best_at = _best_at(inp)
    n_t = 1
    for t in range(t_count):
        n_t = max(n_t, inp.tstart[t + 1] - inp.tstart[t])
    duals = np.zeros((t_count, n_t))  # (zero prices give a valid bound too, before any matching)
    scratch = np.zeros((t_count, n_t))
    n_found = np.int64(0)  # (not a literal 0: one compiled signature of _insert)
    for i in np.argsort(-res.value, kind="mergesort"):
        if not res.feasible[i]:
            continue
        p = trace(res, i)
        if n_found == n_keep:
            ub = _plan_bound(inp, p, best_at, duals)
            if ub <= out_value[n_keep - 1] + 1e-9 * (1.0 + abs(ub)):
                stats[8] += 1
                continue
        v, p2 = rematch_duals(inp.vmask, inp.types, inp.tcards, inp.tstart, p, scratch)
        stats[6] += 1
        if v == NEG:
            continue
        if n_found == 0 or v > out_value[0]:  # (rows the plan does not match hold older prices: still >= 0)
            for t in range(t_count):
                for j in range(n_t):
                    duals[t, j] = scratch[t, j]
        n_found = _insert(out, out_value, n_found, p2, v)
    return out, out_value, n_found


@njit(cache=True, nogil=True)
def plan(inp, rk, fl, width, cards_per_type, n_out, ls_starts, tie, zkeys, deadline, seeds):
    """Steps 3-5 (module docstring); ``seeds`` (m, K): feasible plans that join the beam's before step 5. ``stats``: children, look-ahead drops, merged, slots past the deadline,
    retries, seed plans, plans re-matched, assignment problems of the local search, plans not re-matched,
    local search moves, local searches cut short."""
    k = inp.pv.shape[0]
    stats = np.zeros(N_COUNTERS, dtype=np.int64)
    order = card_order(inp, rk.mu)
    has_floor = np.any(fl.of_type >= 0)
    w = width
    while True:
        res = beam_search(inp, rk, fl, order, w, cards_per_type, tie, zkeys, deadline)
        for x in range(res.stats.shape[0]):
            stats[x] += res.stats[x]
        if res.feasible.any() or not has_floor or res.stats[3] > 0 or w >= width * RETRY_GROWTH ** 2:
            break
        w *= RETRY_GROWTH
        stats[4] += 1
    n_keep = max(n_out, ls_starts)
    out, out_value, n_found = _rematched(inp, res, n_keep, stats)
    for x in range(seeds.shape[0]):  # plans found before (feasible): they compete with the beam's
        v, p2 = rematch_plan(inp.vmask, inp.types, inp.tcards, inp.tstart, seeds[x])
        if v > NEG:
            n_found = _insert(out, out_value, n_found, p2, v)
            stats[5] += 1
    n_ls = min(n_found, ls_starts)
    if deadline < np.inf and now() > deadline:
        n_ls = 0
    starts = out[:n_ls].copy()
    for x in range(n_ls):
        r = local_search(inp, starts[x], np.int64(LS_MAX_SOLVES), deadline)  # (int64: one compile, shared with bnb)
        stats[7] += r.solves
        stats[9] += r.moves
        stats[10] += not r.local_opt
        n_found = _insert(out, out_value, n_found, r.plan, r.value)
    plans = np.full((n_out, k), -1, dtype=np.int64)
    values = np.zeros(n_out)
    m = min(n_found, n_out)
    for x in range(m):
        copy_into(plans[x], out[x])
    copy_into(values[:m], out_value[:m])
    return Plans(plans, values, m, stats)
