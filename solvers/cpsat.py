"""The exact reference solver: an OR-Tools CP-SAT model of the mixing problem.

Model
-----
One Boolean ``x[c, s]`` per allowed (card, slot) pair — pairs that the history's
gaps already rule out are never created. Each card is used at most once and each
slot holds at most one card. Dispersion is modelled, as the field notes advise,
with ``add_at_most_one`` over the placement literals of every window of
``min_gap`` consecutive slots (per type, and over all cards for ``min_gap_any``).
``max_count`` and the two share rows are linear constraints.

Integer scaling (the resolution of this solver)
-----------------------------------------------
CP-SAT needs integer coefficients. PV weights are scaled by ``F = 1e12 / D``
(``D`` the share denominator) and rounded; each share capacity is then tightened
by ``K`` units, so that rounding can never admit a plan the real-valued rules
refuse. The only plans this can lose are those that keep a share rule by less
than ``K / F = K·1e-12·D`` inside its ``1e-9·D`` tolerance. Values are scaled by
``G = 1e9 / max|values|`` and rounded; the plan returned is optimal for the
scaled objective, hence within ``K / G`` (``K·1e-9·max|values|``) of the real
optimum, and the bound reported is widened by ``K / (2G)`` so it stays a proven
upper bound on the real objective. Every plan is re-checked with
:meth:`MixProblem.check` before it is returned.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from mixrank.errors import SolverError
from mixrank.solution import Solution, Status, make_solution
from solvers._common import check_int_option

__all__ = ["solve_cpsat"]

PV_RESOLUTION = 1e12
VALUE_RESOLUTION = 1e9


def _variables(model, arrays) -> tuple[np.ndarray, list, np.ndarray]:
    """Create x[c, s] for every pair a plan may use; returns (pairs, literals, var index grid)."""
    n, k = arrays.values.shape
    t_count = arrays.n_types
    usable = arrays.allowed.copy()
    # A card cannot stand before the gap to the last card shown has opened.
    first_slot = arrays.min_gap - arrays.init_dist  # slots 0..first_slot-1 are closed
    for t in range(t_count):
        usable[arrays.types == t, : max(0, int(first_slot[t]))] = False
    usable[:, : max(0, int(first_slot[t_count]))] = False
    usable &= (arrays.max_count[arrays.types] > 0)[:, None]
    pairs = np.argwhere(usable)
    lits = [model.new_bool_var(f"x_{c}_{s}") for c, s in pairs.tolist()]
    index = np.full((n, k), -1, dtype=np.int64)
    index[pairs[:, 0], pairs[:, 1]] = np.arange(len(pairs))
    return pairs, lits, index


def _window_constraints(model, lits, index, cards: np.ndarray, gap: int) -> int:
    """At most one of ``cards`` in every window of ``gap`` consecutive slots."""
    if gap <= 1 or cards.size == 0:
        return 0
    k = index.shape[1]
    sub = index[cards]  # (n_t, K)
    added = 0
    for start in range(0, max(1, k - gap + 1)):
        window = sub[:, start : start + gap].ravel()
        window = window[window >= 0]
        if window.size > 1:
            model.add_at_most_one([lits[i] for i in window.tolist()])
            added += 1
    return added


def _constraints(model, arrays, pairs, lits, index) -> dict[str, Any]:
    from ortools.sat.python import cp_model

    n, k = arrays.values.shape
    t_count = arrays.n_types
    stats = {"assignment_rows": 0, "window_rows": 0, "share_rows": 0, "count_rows": 0}
    for axis, size in ((0, n), (1, k)):  # each card once; each slot one card
        for i in range(size):
            row = index[i, :] if axis == 0 else index[:, i]
            row = row[row >= 0]
            if row.size > 1:
                model.add_at_most_one([lits[j] for j in row.tolist()])
                stats["assignment_rows"] += 1
    all_cards = np.arange(n)
    stats["window_rows"] += _window_constraints(model, lits, index, all_cards, int(arrays.min_gap[t_count]))
    denom = arrays.pv_denominator
    scale = PV_RESOLUTION / denom if denom > 0 else 1.0
    pv_int = np.rint(arrays.pv * scale).astype(np.int64)
    slack = k  # units of rounding error we refuse to gamble on
    infeasible = False
    for t in range(t_count):
        cards = np.flatnonzero(arrays.types == t)
        stats["window_rows"] += _window_constraints(model, lits, index, cards, int(arrays.min_gap[t]))
        ids = index[cards].ravel()
        ids = ids[ids >= 0]
        tl = [lits[i] for i in ids.tolist()]
        if arrays.max_count[t] < cards.size and len(tl) > arrays.max_count[t]:  # else implied by card rows
            model.add(cp_model.LinearExpr.sum(tl) <= int(arrays.max_count[t]))
            stats["count_rows"] += 1
        coefs = pv_int[pairs[ids, 1]].tolist()
        reach = int(sum(coefs))
        hi = math.floor(arrays.share_hi[t] * scale) - slack
        lo = math.ceil(arrays.share_lo[t] * scale) + slack
        if arrays.share_hi[t] < 0 or (arrays.share_lo[t] > 0 and lo > reach):
            infeasible = True
        if hi < reach and arrays.share_hi[t] >= 0:
            model.add(cp_model.LinearExpr.weighted_sum(tl, coefs) <= max(hi, 0))
            stats["share_rows"] += 1
        if arrays.share_lo[t] > 0:
            model.add(cp_model.LinearExpr.weighted_sum(tl, coefs) >= lo)
            stats["share_rows"] += 1
    if infeasible:
        model.add_bool_or([])  # a share rule no plan can keep: make that explicit
    stats["pv_scale"] = scale
    return stats


def _objective(model, arrays, pairs, lits) -> float:
    from ortools.sat.python import cp_model

    vals = arrays.values[pairs[:, 0], pairs[:, 1]] if len(pairs) else np.zeros(0)
    top = float(np.abs(vals).max()) if vals.size else 0.0
    scale = VALUE_RESOLUTION / top if top > 0 else 1.0
    coefs = np.rint(vals * scale).astype(np.int64).tolist()
    model.maximize(cp_model.LinearExpr.weighted_sum(lits, coefs))
    return scale


def _check_options(problem, num_workers: Any, hint: Any, log: Any) -> np.ndarray | None:
    check_int_option("num_workers", num_workers, 1)
    if not isinstance(log, bool):
        raise SolverError(f"log must be True or False; got {log!r}")
    if hint is None:
        return None
    a = np.asarray(hint)
    if a.shape != (problem.n_slots,) or a.dtype.kind not in "iu" or (a.size and (a.min() < -1 or a.max() >= problem.n_cards)):
        raise SolverError(
            f"hint must be an int array of shape ({problem.n_slots},) with entries in [-1, {problem.n_cards}); "
            f"got {hint!r:.80}"
        )
    return a.astype(np.int64)


def solve_cpsat(
    problem,
    *,
    time_limit: float | None = None,
    seed: int = 0,
    num_workers: int = 1,
    hint: Any = None,
    log: bool = False,
) -> Solution:
    """Solve exactly with OR-Tools CP-SAT (the reference solver).

    Parameters
    ----------
    problem : MixProblem
    time_limit : float or None
        Seconds for model building and search together. On time-out the best
        plan is returned as FEASIBLE with CP-SAT's proven bound.
    seed : int
        CP-SAT's ``random_seed``. Results are reproducible with one worker.
    num_workers : int >= 1, default 1
        CP-SAT search workers (one is fastest on small models and deterministic).
    hint : array (K,) of int or None
        A plan to start from (``assignment`` layout); it need not be feasible.
    log : bool
        Print CP-SAT's search log.

    Returns
    -------
    Solution
        ``stats`` holds the model size, the scales used, and CP-SAT's counters.

    Examples
    --------
    >>> import mixrank
    >>> p = mixrank.synthetic.instance("tiny", seed=1)
    >>> sol = solve_cpsat(p)
    >>> sol.status, round(sol.objective, 4)
    (<Status.OPTIMAL: 'OPTIMAL'>, 13.2011)
    """
    start = time.perf_counter()
    hint_plan = _check_options(problem, num_workers, hint, log)
    from ortools.sat.python import cp_model

    arrays = problem.arrays
    model = cp_model.CpModel()
    pairs, lits, index = _variables(model, arrays)
    stats: dict[str, Any] = {"variables": len(lits)}
    stats.update(_constraints(model, arrays, pairs, lits, index))
    value_scale = _objective(model, arrays, pairs, lits)
    stats["value_scale"] = value_scale
    if hint_plan is not None:
        for s, c in enumerate(hint_plan.tolist()):
            if c >= 0 and index[c, s] >= 0:
                model.add_hint(lits[index[c, s]], True)
        for (c, s), lit in zip(pairs.tolist(), lits):
            if hint_plan[s] != c:
                model.add_hint(lit, False)

    solver = cp_model.CpSolver()
    params = solver.parameters
    params.num_workers = int(num_workers)
    params.random_seed = int(seed)
    params.log_search_progress = log
    params.relative_gap_limit = 0.0
    params.absolute_gap_limit = 0.0
    build_time = time.perf_counter() - start
    if time_limit is not None:
        params.max_time_in_seconds = max(1e-3, float(time_limit) - build_time)
    code = solver.solve(model)

    stats.update(
        build_time=build_time,
        cpsat_wall_time=solver.wall_time,
        branches=solver.num_branches,
        conflicts=solver.num_conflicts,
        num_workers=int(num_workers),
    )
    status = {
        cp_model.OPTIMAL: Status.OPTIMAL,
        cp_model.FEASIBLE: Status.FEASIBLE,
        cp_model.INFEASIBLE: Status.INFEASIBLE,
        cp_model.UNKNOWN: Status.UNKNOWN,
    }.get(code)
    if status is None:
        raise RuntimeError(f"CP-SAT rejected the model ({solver.status_name(code)}): {model.validate()}")
    assignment = None
    bound = math.inf
    if status.has_plan:
        assignment = np.full(problem.n_slots, -1, dtype=np.int64)
        chosen = [i for i, lit in enumerate(lits) if solver.boolean_value(lit)]
        for i in chosen:
            c, s = pairs[i]
            assignment[s] = c
        bound = (solver.best_objective_bound + 0.5 * problem.n_slots) / value_scale
    elif status is Status.UNKNOWN and math.isfinite(solver.best_objective_bound):
        bound = (solver.best_objective_bound + 0.5 * problem.n_slots) / value_scale
    return make_solution(
        problem, "cpsat", status, assignment, bound, time.perf_counter() - start, stats
    )
