"""An independent exhaustive enumerator for tiny problems (tests only).

It walks every plan slot by slot, pruning only on rules that can never be
repaired later (a card used twice, a disallowed pair, a gap or count broken, a
share cap exceeded); min-share rules are checked on complete plans. It shares
nothing with the solvers but the problem's own ``check``-level semantics, which
it re-implements from SPEC §1 directly on the problem's fields.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass
class BruteResult:
    optimum: float  # -inf when infeasible
    optimal_plans: list  # every plan reaching the optimum (within 1e-9 relative)
    n_feasible: int


def brute_force(problem, limit: int = 2_000_000) -> BruteResult:
    n, k, t_count = problem.n_cards, problem.n_slots, problem.n_types
    values = problem.values
    types = problem.types.tolist()
    pv = problem.pv_weights.tolist()
    allowed = np.ones((n, k), bool) if problem.allowed is None else problem.allowed
    gaps = [r.min_gap for r in problem.rules]
    hist = problem.history
    last_gap = list(hist.last_gap) if hist else [None] * t_count
    last_any = hist.last_gap_any if hist else None
    shown = list(hist.pv_shown) if hist and hist.pv_shown is not None else [0.0] * t_count
    denom = (hist.pv_total_shown if hist else 0.0) + sum(pv)
    eps = 1e-9 * denom
    hi = [r.max_share * denom + eps for r in problem.rules]
    lo = [r.min_share * denom - eps for r in problem.rules]
    maxc = [r.max_count if r.max_count is not None else n for r in problem.rules]
    # last position of each type / any card, as a (possibly negative) slot index
    last_pos0 = [(-g if g is not None else -10**6) for g in last_gap]
    last_any0 = -last_any if last_any is not None else -10**6

    best = [-math.inf]
    plans: list = []
    count = [0]
    plan = [-1] * k
    used = [False] * n

    def leaf(total, share):
        for t in range(t_count):
            if share[t] < lo[t] or share[t] > hi[t]:  # history alone may break a cap
                return
        count[0] += 1
        if count[0] > limit:
            raise RuntimeError("brute force limit reached")
        if total > best[0]:
            best[0] = total  # the exact maximum; plans within a relative 1e-9 of it tie (values may be 1e-300)
            plans[:] = [(v, a) for v, a in plans if v >= total - 1e-9 * abs(total)]
        if total >= best[0] - 1e-9 * abs(best[0]):
            plans.append((total, list(plan)))

    def rec(s, total, last_pos, last_a, share, cnt):
        if s == k:
            leaf(total, share)
            return
        plan[s] = -1
        rec(s + 1, total, last_pos, last_a, share, cnt)
        if s - last_a < problem.min_gap_any:
            return
        for c in range(n):
            if used[c] or not allowed[c, s]:
                continue
            t = types[c]
            if s - last_pos[t] < gaps[t] or cnt[t] >= maxc[t] or share[t] + pv[s] > hi[t]:
                continue
            used[c] = True
            plan[s] = c
            lp = list(last_pos)
            lp[t] = s
            sh = list(share)
            sh[t] += pv[s]
            ct = list(cnt)
            ct[t] += 1
            rec(s + 1, total + values[c, s], lp, s, sh, ct)
            used[c] = False
            plan[s] = -1

    rec(0, 0.0, last_pos0, last_any0, list(shown), [0] * t_count)
    return BruteResult(best[0], [np.array(a) for _, a in plans], count[0])


def reference_violations(problem, plan) -> int:
    """Count broken rules by the SPEC's own words, over all pairs (independent of ``check``)."""
    plan = [int(c) for c in plan]
    n, k, t_count = problem.n_cards, problem.n_slots, problem.n_types
    allowed = np.ones((n, k), bool) if problem.allowed is None else problem.allowed
    hist = problem.history
    bad = 0
    filled = [(s, c) for s, c in enumerate(plan) if c >= 0]
    cards = [c for _, c in filled]
    bad += len(cards) - len(set(cards))
    bad += sum(not allowed[c, s] for s, c in filled)
    for i, (s1, c1) in enumerate(filled):
        for s2, c2 in filled[i + 1:]:
            t1, t2 = problem.types[c1], problem.types[c2]
            if t1 == t2 and s2 - s1 < problem.rules[t1].min_gap:
                bad += 1
            if s2 - s1 < problem.min_gap_any:
                bad += 1
    if hist is not None:
        for t in range(t_count):
            first = [s for s, c in filled if problem.types[c] == t]
            if first and hist.last_gap[t] is not None and first[0] + hist.last_gap[t] < problem.rules[t].min_gap:
                bad += 1
        if filled and hist.last_gap_any is not None and filled[0][0] + hist.last_gap_any < problem.min_gap_any:
            bad += 1
    shown = list(hist.pv_shown) if hist is not None and hist.pv_shown is not None else [0.0] * t_count
    denom = (hist.pv_total_shown if hist is not None else 0.0) + float(np.sum(problem.pv_weights))
    eps = 1e-9 * denom
    for t, rule in enumerate(problem.rules):
        share = shown[t] + sum(problem.pv_weights[s] for s, c in filled if problem.types[c] == t)
        if not rule.min_share * denom - eps <= share <= rule.max_share * denom + eps:
            bad += 1
        if rule.max_count is not None and sum(problem.types[c] == t for c in cards) > rule.max_count:
            bad += 1
    return bad
