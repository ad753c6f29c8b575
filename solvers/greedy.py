"""The online baseline: fill slots top to bottom with the best card that keeps every rule.

This is what most online systems do today. It looks ahead only as far as it must
so that min-share rules do not trap it: before it takes an option (a card, or the
organic item) it checks, for every type still short of its minimum share, that an
optimistic estimate of the PV that type can still reach in the slots below covers
the shortfall. The estimate spaces the type's remaining cards by its gap over the
slots where one of them is allowed, and keeps its count limit; when no option
passes, the plan is abandoned and the solver says UNKNOWN rather than serve an
infeasible plan.
"""

from __future__ import annotations

import math
import time

import numpy as np

from mixrank.solution import Solution, Status, make_solution

__all__ = ["solve_greedy"]


def _reach(pv: np.ndarray, avail: np.ndarray, start: int, spacing: int, picks: int) -> float:
    """Most PV one type can still collect from ``start`` on: at most ``picks`` cards, spaced by ``spacing``.

    An exact DP over (slot, cards left), vectorised over the card count; an upper bound on what
    the type can reach in a real plan (other types and the cards' identities are ignored).
    """
    k = pv.shape[0]
    picks = min(picks, (k - start + spacing - 1) // spacing)
    if picks <= 0 or start >= k:
        return 0.0
    gain = np.where(avail[start:], pv[start:], 0.0)
    m = k - start
    best = np.zeros((m + spacing, picks + 1))  # best[i, j]: from slot start+i on, with j cards left
    for i in range(m - 1, -1, -1):
        best[i] = best[i + 1]
        take = gain[i] + best[i + spacing, :-1]
        np.maximum(best[i, 1:], take, out=best[i, 1:])
    return float(best[0, picks])


def solve_greedy(problem, *, time_limit: float | None = None, seed: int = 0) -> Solution:
    """Greedy slot-by-slot plan (the online baseline).

    Parameters
    ----------
    problem : MixProblem
    time_limit, seed
        Accepted for a uniform interface; greedy is deterministic and fast.

    Returns
    -------
    Solution
        FEASIBLE with the plan (``bound`` is inf: greedy proves nothing), or UNKNOWN
        when its look-ahead could not keep a min-share rule.

    Examples
    --------
    >>> import mixrank
    >>> sol = solve_greedy(mixrank.synthetic.instance("tiny", seed=0))
    >>> sol.status, len(sol.assignment)
    (<Status.FEASIBLE: 'FEASIBLE'>, 8)
    """
    start_time = time.perf_counter()
    ar = problem.arrays
    n, k = ar.values.shape
    t_count = ar.n_types
    types, pv, allowed, gap = ar.types, ar.pv, ar.allowed, ar.min_gap
    used = np.zeros(n, dtype=bool)
    last = -ar.init_dist.copy()  # slot of the last card per type (index T: any card)
    count = np.zeros(t_count, dtype=np.int64)
    pv_used = np.zeros(t_count)
    plan = np.full(k, -1, dtype=np.int64)
    stats = {"lookahead_vetoes": 0, "forced": 0}
    trapped = False

    def short_types() -> list[int]:
        return [u for u in range(t_count) if pv_used[u] < ar.share_lo[u]]

    def lookahead_ok(s: int, placed_type: int) -> bool:
        """After filling slot s (placed_type -1 = organic), can every short type still reach its floor?"""
        for u in short_types():
            got = pv_used[u] + (pv[s] if placed_type == u else 0.0)
            need = ar.share_lo[u] - got
            if need <= 0:
                continue
            last_u = s if placed_type == u else last[u]
            last_any = s if placed_type >= 0 else last[t_count]
            nxt = max(s + 1, last_u + gap[u], last_any + gap[t_count])
            mask = (~used) & (types == u)
            picks = int(min(ar.max_count[u] - count[u] - (placed_type == u), mask.sum() - (placed_type == u)))
            avail = allowed[mask].any(axis=0) if mask.any() else np.zeros(k, dtype=bool)
            if _reach(pv, avail, nxt, int(max(gap[u], gap[t_count])), picks) < need:
                return False
        return True

    for s in range(k):
        if s - last[t_count] >= gap[t_count]:
            ok_type = (s - last[:t_count] >= gap[:t_count]) & (count < ar.max_count) & (pv_used + pv[s] <= ar.share_hi)
            cand = np.flatnonzero((~used) & allowed[:, s] & ok_type[types])
        else:
            cand = np.zeros(0, dtype=np.int64)
        # Options best first: cards by value (ties: lower index), organic at value 0.
        order = cand[np.argsort(-ar.values[cand, s], kind="stable")]
        options = [int(c) for c in order if ar.values[c, s] > 0] + [-1] + [int(c) for c in order if ar.values[c, s] <= 0]
        verdict: dict[int, bool] = {}
        chosen = None
        for c in options:
            t = -1 if c < 0 else int(types[c])
            if t not in verdict:
                verdict[t] = lookahead_ok(s, t) if short_types() else True
            if verdict[t]:
                chosen = c
                break
            stats["lookahead_vetoes"] += 1
        if chosen is None:
            trapped = True  # no option keeps the floors reachable: take the plain greedy choice
            chosen = options[0]
        elif options and chosen != options[0]:
            stats["forced"] += 1
        if chosen >= 0:
            t = int(types[chosen])
            plan[s] = chosen
            used[chosen] = True
            last[t] = s
            last[t_count] = s
            count[t] += 1
            pv_used[t] += pv[s]
    stats["trapped"] = trapped
    feasible = not problem.check(plan)
    status = Status.FEASIBLE if feasible else Status.UNKNOWN
    return make_solution(
        problem, "greedy", status, plan if feasible else None, math.inf, time.perf_counter() - start_time, stats
    )
