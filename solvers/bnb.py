"""Exact memoized branch and bound (``solver="bnb"``).

The search walks the slots top to bottom, depth first: a node has decided slots
``0..s-1`` and its children put the organic item or an unused card in slot
``s``. Everything a rule needs is carried exactly along the path (distances
since the last card of each type and of any type, capped at the gap; PV and
count per type; the cards used), so every leaf it accepts passes
:meth:`~mixrank.MixProblem.check` — the share rule is compared with the very
floating-point sums ``check`` makes, so PV weights are never rounded.

Bounds. The relaxation drops "each card once", the share rows and the count
rows into the objective with Lagrange multipliers and keeps dispersion exact: a
dynamic program over (slot, distance state) gives the best relaxed value of
every suffix in one table, and a node's bound is its prefix value plus a table
look-up. The multipliers come from a subgradient method at the root (Polyak
steps toward the best plan known). Each node then tightens its own bound
without re-solving anything: unused cards give up the part of their price the
slots left can no longer earn back; share and count multipliers drop out where
the slots left cannot reach their rows; and a small grid of tables, each with
one type's multiplier moved, lets every node pick the one that suits it.

Memo. Two nodes at the same slot with the same distances and the same set of
cards used have the same feasible completions; the one with more value, no
more PV on capped types and equal PV on types with a floor dominates, and the
other is pruned (a hash table of the nodes seen).

First plan. A beam search ranked by the same node bound gives an incumbent
before the search starts (``width``); the subgradient runs again aiming at it.

Anytime. With ``time_limit`` (or ``node_limit``) the search stops early and
returns its best plan as FEASIBLE with a proven bound: the best bound among the
nodes left open (never below the incumbent). The clock is read every 1024
nodes inside the kernel and every 16 subgradient steps; ``stats["overrun"]``
says how far past the limit the solver returned.

Optimality is up to a relative tolerance of ``1e-9`` (a node is pruned when
its bound does not beat the incumbent by more than that). The solver is
deterministic: ``seed`` is accepted for a uniform interface and unused.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from mixrank.errors import SolverError
from mixrank.solution import Solution, Status, make_solution

__all__ = ["solve_bnb"]

_TOL_REL = 1e-9
_MAX_PRODUCT = 1 << 20  # distance-code space the bound's DP may index
_MAX_STATES = 20_000  # reachable distance states the bound's DP may track
_MAX_REACH = 4_000_000  # entries of one type's PV-reach table
_GRID_CAP = (0.0, 0.5, 0.75, 1.5, 2.5)  # share-cap multiplier, relative to the root's
_GRID_FLOOR = (0.0, 0.5, 1.5, 2.5)
_GRID_COUNT = (0.0, 0.5, 1.5, 2.5)


def _check_int(name: str, value: Any, low: int, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        what = f"an int >= {low}" + (" or None" if allow_none else "")
        raise SolverError(f"{name} must be {what}; got {value!r}")


def _bound_rules(gap: np.ndarray, init: np.ndarray, n_types: int):
    """Pick the gap rules the bound's DP tracks and enumerate its states.

    Every rule with a gap above 1 is tracked while the state space stays small;
    a rule left out only weakens the bound (the search keeps it exactly).
    """
    from solvers import _bnb_kernels as kern

    candidates = [r for r in range(n_types + 1) if gap[r] > 1]
    candidates.sort(key=lambda r: (r != n_types, int(gap[r]), r))  # any-card rule first, small gaps next
    chosen: list[int] = []
    product = 1
    for r in candidates:
        if product * int(gap[r]) <= _MAX_PRODUCT:
            chosen.append(r)
            product *= int(gap[r])
    while True:
        type_rule = np.full(n_types, -1, dtype=np.int64)
        any_rule = -1
        for i, r in enumerate(chosen):
            if r == n_types:
                any_rule = i
            else:
                type_rule[r] = i
        trans, n_states = kern.build_states(
            np.array([gap[r] for r in chosen], dtype=np.int64),
            np.array([init[r] for r in chosen], dtype=np.int64),
            type_rule, any_rule, n_types, _MAX_STATES,
        )
        if n_states > 0:
            return trans, int(n_states), chosen
        chosen.pop()  # too many states: the largest-gap rule is left to the search


def _reach_tables(ar, card_list, card_start, gap, kmax):
    """Per type: the most PV (and cards) it can still place from each slot and distance state."""
    from solvers import _bnb_kernels as kern

    k, t_count = ar.n_slots, ar.n_types
    rg = np.ones((3, t_count), dtype=np.int64)
    parts, cparts = [], []
    off = np.zeros(t_count, dtype=np.int64)
    coff = np.zeros(t_count, dtype=np.int64)
    o = co = 0
    for t in range(t_count):
        cards = card_list[card_start[t]:card_start[t + 1]]
        avail = ar.allowed[cards].any(axis=0) if cards.size else np.zeros(k, dtype=bool)
        g, ga = int(gap[t]), int(gap[t_count])
        if (k + 1) * g * ga > _MAX_REACH:
            g = ga = 1  # ignore spacing: a looser, still optimistic reach
        kd = int(kmax[t]) + 1
        if (k + 1) * g * ga * kd > _MAX_REACH:
            kd = 1  # no count dimension
        part = kern.pv_reach(ar.pv, avail, g, ga, kd).ravel()
        cpart = kern.count_reach(avail, g, ga).ravel()
        rg[:, t] = (g, ga, kd)
        off[t], coff[t] = o, co
        parts.append(part)
        cparts.append(cpart)
        o += part.size
        co += cpart.size
    return (np.concatenate(parts), off, np.concatenate(cparts), coff, rg, kmax.astype(np.int64))


def solve_bnb(
    problem,
    *,
    time_limit: float | None = None,
    seed: int = 0,
    node_limit: int | None = None,
    width: int = 16,
    lagrange_iters: int = 200,
    memo: bool = True,
) -> Solution:
    """Solve exactly by memoized branch and bound.

    Parameters
    ----------
    problem : MixProblem
    time_limit : float or None
        Seconds for everything; when it runs out the best plan is returned as
        FEASIBLE with a proven bound (UNKNOWN without a plan).
    seed : int
        Accepted for a uniform interface; the solver is deterministic.
    node_limit : int >= 1 or None
        Stop the search after this many nodes (anytime, like ``time_limit``).
    width : int >= 0, default 16
        Beam width of the first plan (0: start the search without one).
    lagrange_iters : int >= 0, default 200
        Subgradient steps for the bound's multipliers (0: plain DP bound).
    memo : bool, default True
        Merge dominated nodes through the hash memo.

    Returns
    -------
    Solution
        OPTIMAL or INFEASIBLE when the search finished; FEASIBLE or UNKNOWN when
        a limit stopped it. ``stats``: ``nodes``, ``memo_hits``, ``bound_prunes``,
        ``floor_prunes``, ``leaves``, ``improvements``, ``root_bound``,
        ``lagrange_iters``, ``dp_states``, ``beam_value``, phase times, and
        ``overrun`` (seconds past ``time_limit``, 0 without one).

    Examples
    --------
    >>> import mixrank
    >>> p = mixrank.synthetic.instance("tiny", seed=1)
    >>> sol = solve_bnb(p)
    >>> sol.status, round(sol.objective, 4)
    (<Status.OPTIMAL: 'OPTIMAL'>, 13.2011)
    """
    start = time.perf_counter()
    _check_int("node_limit", node_limit, 1, allow_none=True)
    _check_int("width", width, 0)
    _check_int("lagrange_iters", lagrange_iters, 0)
    if not isinstance(memo, (bool, np.bool_)):
        raise SolverError(f"memo must be True or False; got {memo!r}")
    return _solve(problem, start, time_limit, node_limit, int(width), int(lagrange_iters), bool(memo))


def _solve(problem, start, time_limit, node_limit, width, lagrange_iters, memo, initial=None) -> Solution:
    from solvers import _bnb_kernels as kern

    deadline = math.inf if time_limit is None else start + float(time_limit)
    ar = problem.arrays
    n, k = ar.values.shape
    t_count = ar.n_types
    types = ar.types
    values, pv, allowed = ar.values, ar.pv, ar.allowed
    card_list = np.argsort(types, kind="stable").astype(np.int64)
    card_start = np.searchsorted(types[card_list], np.arange(t_count + 1)).astype(np.int64)
    n_of_type = np.diff(card_start)
    gap = ar.min_gap.astype(np.int64)
    dist0 = ar.init_dist.astype(np.int64)
    mcount = ar.max_count.astype(np.int64)
    kmax = np.minimum(mcount, n_of_type)
    pv_shown = np.asarray(ar.pv_shown, dtype=np.float64)
    # the share rule exactly as check() compares it: pv_shown + used vs share +- ... + pv_shown
    hi_cmp = ar.share_hi + pv_shown
    lo_cmp = ar.share_lo + pv_shown
    margin = 1e-12 * (abs(ar.pv_denominator) + float(pv_shown.sum()) + 1.0)
    floor_types = np.flatnonzero(lo_cmp > pv_shown).astype(np.int64)
    hi_b = ar.share_hi + margin  # rows of the relaxation, widened past rounding
    lo_b = ar.share_lo - margin
    timing: dict[str, float] = {}

    # --- the relaxation: DP over distance states, Lagrange multipliers
    t0 = time.perf_counter()
    trans, n_states, _tracked = _bound_rules(gap, dist0, t_count)
    H = np.empty((k + 1, n_states))
    mu = np.zeros(n)
    alpha = np.zeros(t_count)
    beta = np.zeros(t_count)
    gamma = np.zeros(t_count)
    use_alpha = ar.share_hi < pv.sum()
    use_beta = lo_cmp > pv_shown
    use_gamma = mcount < n_of_type
    blocked = mcount <= 0
    vmask = np.where(allowed & ~blocked[types][:, None], values, -np.inf)
    mcount_f = mcount.astype(np.float64)
    empty_ok = bool(np.all(pv_shown + 0.0 >= lo_cmp) and np.all(pv_shown + 0.0 <= hi_cmp))
    inc_val = 0.0 if empty_ok else -math.inf  # the all-organic plan
    inc_plan = np.full(k, -1, dtype=np.int64)
    if initial is not None:
        inc_val, inc_plan = float(initial[0]), np.array(initial[1], dtype=np.int64)

    def relax(iters: int, lower: float) -> float:
        bnd, it = kern.lagrangian(
            vmask, types, t_count, pv, trans, n_states,
            hi_b, lo_b, mcount_f, use_alpha, use_beta, use_gamma,
            lower, iters, deadline, mu, alpha, beta, gamma, H, 8,
        )
        relax.iters += it
        return bnd

    relax.iters = 0
    root_bound = relax(max(1, lagrange_iters // 2), inc_val)
    timing["lagrange_time"] = time.perf_counter() - t0

    R = _reach_tables(ar, card_list, card_start, gap, kmax)
    floors = (floor_types, margin)
    P = (values, allowed, card_start, card_list, types, pv, gap, mcount, pv_shown, hi_cmp, lo_cmp, *floors)

    def tables():
        """The search's view of the relaxation at the current multipliers."""
        price = alpha - beta
        with np.errstate(invalid="ignore"):
            red = values - mu[:, None] - price[types][:, None] * pv[None, :] - gamma[types][:, None]
        red = np.where(allowed & ~blocked[types][:, None], red, -np.inf)
        rmax = np.full((t_count, k), -np.inf)
        for t in range(t_count):
            if n_of_type[t] > 0:
                rmax[t] = red[card_list[card_start[t]:card_start[t + 1]]].max(axis=0)
        # slack[c, s]: how far below its type's best card c stays from slot s on
        with np.errstate(invalid="ignore"):
            diff = rmax[types] - red
        diff[~np.isfinite(red)] = np.inf
        slack = np.full((n, k + 1), np.inf)
        if n:
            slack[:, :k] = np.minimum.accumulate(diff[:, ::-1], axis=1)[:, ::-1]
        gk, gt, gd = [], [], []
        for kind, mult, facs in ((0, alpha, _GRID_CAP), (1, beta, _GRID_FLOOR), (2, gamma, _GRID_COUNT)):
            for t in range(t_count):
                if mult[t] > 0:
                    for fac in facs:
                        gk.append(kind)
                        gt.append(t)
                        gd.append(mult[t] * fac - mult[t])
        grid = (np.array(gk, dtype=np.int64), np.array(gt, dtype=np.int64), np.array(gd, dtype=np.float64))
        Hg = kern.grid_tables(rmax, pv, trans, n_states, *grid)
        f0 = float(mu.sum() + (alpha * hi_b - beta * lo_b + gamma * mcount_f).sum())
        L = ((red, mu.copy(), slack, H.copy(), trans), alpha.copy(), beta.copy(), gamma.copy(), hi_b, lo_b,
             mcount_f, Hg, *grid)
        return L, f0

    # --- the first plan: a beam ranked by the node bound, then the multipliers again
    t0 = time.perf_counter()
    beam_val = -math.inf
    if width > 0 and time.perf_counter() < deadline:
        L, f0 = tables()
        beam_plan = np.full(k, -1, dtype=np.int64)
        beam_val = kern.beam(P, L, R, dist0, f0, width, inc_val, _TOL_REL, deadline, beam_plan)
        if beam_val > inc_val:
            inc_val, inc_plan = beam_val, beam_plan
    timing["beam_time"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    if lagrange_iters > 1 and time.perf_counter() < deadline:
        root_bound = min(root_bound, relax(lagrange_iters - lagrange_iters // 2, inc_val))
    L, f0 = tables()
    timing["lagrange_time"] += time.perf_counter() - t0

    # --- the search
    t0 = time.perf_counter()
    size = 1 << 16 if memo else 1
    bits = (k + 1).bit_length()
    dshift = np.zeros(t_count + 1, dtype=np.int64)
    for r in range(t_count + 1):
        dshift[r] = bits
        bits += max(1, int(gap[r] - 1).bit_length())
    if bits > 62:
        size = 1  # distances do not pack into one key: no memo
    n_words = max(1, (n + 63) // 64)
    memo_arrays = (np.full(size, -1, dtype=np.int64), np.zeros((size, n_words), dtype=np.uint64),
                   np.zeros((size, t_count)), np.zeros(size))
    counters = np.zeros(6, dtype=np.int64)
    limit = np.iinfo(np.int64).max if node_limit is None else int(node_limit)
    if time.perf_counter() < deadline:
        inc_val, bound, complete = kern.search(P, L, R, dist0, f0, memo_arrays, dshift, inc_plan, inc_val,
                                               limit, deadline, _TOL_REL, counters)
        if not complete:
            if inc_val > -math.inf:  # children within the tolerance of the incumbent were dropped
                bound = max(bound, inc_val + _TOL_REL * max(1.0, abs(inc_val)))
            bound = min(bound, root_bound)
    else:
        complete, bound = False, root_bound
    timing["search_time"] = time.perf_counter() - t0

    has_plan = inc_val > -math.inf
    if complete:
        status = Status.OPTIMAL if has_plan else Status.INFEASIBLE
    else:
        status = Status.FEASIBLE if has_plan else Status.UNKNOWN
    stats: dict[str, Any] = {
        "nodes": int(counters[0]),
        "memo_hits": int(counters[1]),
        "bound_prunes": int(counters[2]),
        "floor_prunes": int(counters[3]),
        "leaves": int(counters[4]),
        "improvements": int(counters[5]),
        "root_bound": float(root_bound),
        "lagrange_iters": int(relax.iters),
        "dp_states": n_states,
        "beam_value": float(beam_val),
        **timing,
    }
    end = time.perf_counter()
    stats["overrun"] = 0.0 if time_limit is None else max(0.0, end - deadline)
    return make_solution(problem, "bnb", status, inc_plan if has_plan else None, bound, end - start, stats)


def warm_up() -> float:
    """Compile (or load from the cache) the solver's kernels; returns the seconds it took.

    Call it once at start-up so that the first real plan does not pay for it.

    Examples
    --------
    >>> warm_up() >= 0.0
    True
    """
    from mixrank.problem import History, MixProblem, TypeRule

    start = time.perf_counter()
    p = MixProblem(values=[[1.0, 0.5, 0.2, 0.4], [0.9, 0.8, 0.1, 0.3]], types=[0, 1],
                   pv_weights=[1.0, 0.8, 0.6, 0.5],
                   rules=[TypeRule(min_gap=2, max_share=0.6, max_count=1), TypeRule(min_share=0.1)],
                   min_gap_any=1, history=History(last_gap=[1, None], pv_shown=[0.1, 0.0], pv_total_shown=1.0))
    solve_bnb(p)
    solve_bnb(p, time_limit=60.0, node_limit=2)
    return time.perf_counter() - start
