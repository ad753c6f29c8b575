"""The exact reference solver: an OR-Tools CP-SAT model of the mixing problem.

Model
-----
One Boolean ``x[c, s]`` per allowed (card, slot) pair — pairs that the history's
gaps already rule out are never created. Each card is used at most once and each
slot holds at most one card. Dispersion is modelled, as the field notes advise,
with at-most-one rows over the placement literals of every window of ``min_gap``
consecutive slots (per type, and over all cards for ``min_gap_any``).
``max_count`` and the two share rows are linear constraints. The model is written
straight into CP-SAT's protocol buffer from numpy arrays (no Python object per
variable), and the clock is read while it is built.

Integer scaling, and why every claim still holds
------------------------------------------------
CP-SAT needs integer coefficients. Both scales are powers of two, so that
scaling is exact in floating point and every rounding error is known exactly.

* Values are scaled by ``2**e`` (the largest plan's value then stays below
  ``2**50``) and rounded *up*. Every plan's scaled value is then at least its
  real value, so CP-SAT's bound, scaled back, is a proven upper bound on the real
  optimum (and is never above the trivial bound ``sum_s max(0, max_c values)``,
  which is reported instead when smaller).
* PV weights are scaled by ``2**f`` and rounded. A share row is first solved
  *relaxed*, its capacity widened by the largest rounding error any plan can
  carry, so it keeps every plan that the real rule keeps: its INFEASIBLE and its
  bound hold for the problem as given. The plan it returns is re-checked with
  :meth:`MixProblem.check`; in the rare case that it sits within rounding error
  of a share limit and fails, the rows are *tightened* by the same amount (every
  plan they keep is feasible) and the model is solved again for a feasible plan,
  while the bound stays the relaxed one.

Tolerance. ``OPTIMAL`` is reported only when the proven bound is within the
relative tolerance :data:`RTOL` (``1e-9``) of the plan's real value:
``bound - objective <= 1e-9 * |objective|``. When the scaling cannot guarantee
it (values spanning many orders of magnitude, e.g. one card worth ``-1e12``
among cards worth ``1``), the solver says ``FEASIBLE`` with the proven bound.
A bound is reported only when CP-SAT has proven one (a search stopped before it
began, e.g. by a tiny time limit, reports ``inf``).

Time limit and Ctrl-C. ``time_limit`` covers building and search; the build
stops (``UNKNOWN``) when the limit runs out, CP-SAT gets what is left and is
stopped by a watchdog if it overruns. CP-SAT runs in a helper thread, so Ctrl-C
(``KeyboardInterrupt``) stops the search at once and is raised again: an
interrupted solve never comes back as a result.
"""

from __future__ import annotations

import math
import time
from typing import Any, NamedTuple

import numpy as np

from mixrank.errors import SolverError
from mixrank.solution import Solution, Status, make_solution
from solvers._common import check_int_option, run_in_thread

__all__ = ["solve_cpsat", "RTOL", "MAX_WORKERS", "MAX_SEED"]

#: Relative tolerance of an OPTIMAL claim: ``bound - objective <= RTOL * |objective|``.
RTOL = 1e-9
#: Most CP-SAT workers one solve may ask for.
MAX_WORKERS = 256
#: Largest ``seed`` (CP-SAT's ``random_seed`` is a 32-bit int).
MAX_SEED = 2**31 - 1

_VALUE_BITS = 50  # the largest plan's scaled value stays below 2**50
_ROW_BITS = 61  # sum of |coefficients| of one row or of the objective stays below 2**61
_PV_BITS = 52  # the scaled share denominator stays below 2**52
_CLOCK_EVERY = 32  # rows written between two looks at the clock
_POLL = 0.02  # seconds between two looks at a running search
_STOP_MARGIN = 0.01  # seconds kept back from CP-SAT for reading its answer
# CP-SAT's presolve does not look at the clock inside its longest steps (8-15x our build time on a large
# model): with less time than this many build times left, the search runs without presolve.
_PRESOLVE_BUILDS = 25
# Loading the model into CP-SAT does not look at the clock either (2-3x our build time): with less time than
# this left, the search is not started at all (UNKNOWN, nothing claimed) rather than overrun the limit.
_LOAD_BUILDS = 3


class _OutOfTime(Exception):
    """The time limit ran out while the model was being built."""


class _Clock:
    """The deadline of one solve; ``tick`` raises :class:`_OutOfTime` once it has passed."""

    def __init__(self, start: float, time_limit: float | None):
        self.deadline = math.inf if time_limit is None else start + float(time_limit)

    def left(self) -> float:
        return self.deadline - time.perf_counter()

    def tick(self) -> None:
        if time.perf_counter() > self.deadline:
            raise _OutOfTime


class _ShareRow(NamedTuple):
    """One share row of the model: its constraint and its relaxed and tightened domains."""

    constraint: Any
    relaxed: tuple[int, int]
    tight: tuple[int, int]


class _Model(NamedTuple):
    """What the built model's caller reads back."""

    model: Any  # cp_model.CpModel
    pairs: np.ndarray  # (P, 2) card, slot of each variable
    share_rows: list[_ShareRow]
    value_exp: int  # values scaled by 2**value_exp (rounded up)
    trivial_bound: float  # sum_s max(0, max_c values): a proven upper bound
    offset: int  # added to the objective so that any proven bound is >= 1
    stats: dict[str, Any]


def _exp_below(total: float, bits: int) -> int:
    """The largest ``e`` with ``total * 2**e < 2**bits`` (``total`` >= 0, finite)."""
    if total <= 0:
        return 0
    return bits - math.frexp(total)[1]


def _usable_pairs(arrays) -> np.ndarray:
    """(card, slot) pairs a plan may use: allowed, not closed by the history's gaps, count cap > 0."""
    t_count = arrays.n_types
    usable = arrays.allowed.copy()
    first_slot = arrays.min_gap - arrays.init_dist  # slots 0..first_slot-1 are closed
    for t in range(t_count):
        usable[arrays.types == t, : max(0, int(first_slot[t]))] = False
    usable[:, : max(0, int(first_slot[t_count]))] = False
    usable &= (arrays.max_count[arrays.types] > 0)[:, None]
    return np.argwhere(usable)


def _add_bool_vars(proto, count: int, clock: _Clock) -> None:
    if count == 0:
        return
    proto.variables.add().domain.extend([0, 1])
    first = proto.variables[0]
    done = 1
    while done < count:
        clock.tick()
        step = min(count - done, 8192)
        proto.variables.extend([first] * step)
        done += step


def _add_at_most_one_rows(proto, rows, clock: _Clock) -> int:
    added = 0
    for row in rows:
        if row.size > 1:
            proto.constraints.add().at_most_one.literals.extend(row.tolist())
            added += 1
            if added % _CLOCK_EVERY == 0:
                clock.tick()
    return added


def _window_rows(index: np.ndarray, cards: np.ndarray, gap: int):
    """Variable ids of ``cards`` in every window of ``gap`` consecutive slots."""
    if gap <= 1 or cards.size == 0:
        return
    k = index.shape[1]
    sub = index[cards]
    for start in range(0, max(1, k - gap + 1)):
        window = sub[:, start : start + gap].ravel()
        yield window[window >= 0]


def _scaled_pv(arrays, n_cards_per_type: int) -> tuple[np.ndarray, np.ndarray, int]:
    """PV weights as integers: ``rint(pv * 2**f)``, their exact rounding errors, and ``f``."""
    denom = max(float(arrays.pv_denominator), float(arrays.pv.sum()))
    f = min(_exp_below(denom, _PV_BITS), _exp_below(denom * max(1, n_cards_per_type), _ROW_BITS))
    scaled = np.ldexp(arrays.pv, f)
    ints = np.rint(scaled)
    return ints.astype(np.int64), ints - scaled, f


def _share_domains(lo_real: float, hi_real: float, f: int, up: float, down: float, margin: float):
    """Integer (lo, hi) of one share row, relaxed (keeps every feasible plan) and tightened (keeps only those)."""
    lo_s, hi_s = math.ldexp(lo_real, f), math.ldexp(hi_real, f)
    limit = float(2**62)

    def clip(x: float) -> int:
        return int(min(max(x, -limit), limit))

    relaxed = (clip(math.ceil(lo_s - down - margin)), clip(math.floor(hi_s + up + margin)))
    tight = (clip(math.ceil(lo_s + up + margin)), clip(math.floor(hi_s - down - margin)))
    return relaxed, tight


def _add_objective(proto, arrays, pairs: np.ndarray, stats: dict[str, Any]) -> tuple[int, float, int]:
    """Write the objective: values scaled by ``2**e`` and rounded up, maximised as "minimise the negation".

    Values far below every plan's reach (a card worth -1e12 among cards worth 1) are raised to a floor
    first, so that they do not set the scale: raising values only raises every plan's modelled value, so
    CP-SAT's bound stays an upper bound on the real optimum. Returns ``e``, the trivial bound
    ``sum_s max(0, max_c values)`` (rounded up) and the objective's offset (every plan's scaled value plus
    it is >= 1, so a bound below 1 is one CP-SAT has not proven).
    """
    k = arrays.values.shape[1]
    vals = arrays.values[pairs[:, 0], pairs[:, 1]] if len(pairs) else np.zeros(0)
    positive = np.zeros(k)
    np.maximum.at(positive, pairs[:, 1], np.maximum(vals, 0.0))
    trivial = math.fsum(positive.tolist())  # correctly rounded: one step up makes it an upper bound
    trivial = math.nextafter(trivial, math.inf) if trivial > 0 else trivial
    negatives = -vals[vals < 0]
    if negatives.size:
        floor = -4.0 * (trivial + k * float(np.median(negatives)))
        stats["raised_values"] = int((vals < floor).sum())
        vals = np.maximum(vals, floor)
    top = float(np.abs(vals).max()) if vals.size else 0.0
    e = 0
    if top > 0:
        p_top = math.frexp(top)[1]
        normal = np.ldexp(np.abs(vals), -p_top)  # in [0, 1): sums cannot overflow
        slot_best = np.zeros(k)
        np.maximum.at(slot_best, pairs[:, 1], normal)
        e = min(_exp_below(float(slot_best.sum()), _VALUE_BITS), _exp_below(float(normal.sum()), _ROW_BITS)) - p_top
    coefs = np.ceil(np.ldexp(vals, e)).astype(np.int64)
    negative = np.zeros(k, dtype=np.int64)
    np.minimum.at(negative, pairs[:, 1], np.minimum(coefs, 0))
    offset = 1 - int(negative.sum())
    obj = proto.objective
    obj.vars.extend(range(len(pairs)))
    obj.coeffs.extend((-coefs).tolist())
    obj.offset = float(-offset)
    obj.scaling_factor = -1.0
    stats["value_scale_log2"] = e  # values were scaled by 2**e
    return e, trivial, offset


def _build(problem, clock: _Clock, hint_plan: np.ndarray | None) -> _Model:
    from ortools.sat.python import cp_model

    arrays = problem.arrays
    n, k = arrays.values.shape
    t_count = arrays.n_types
    model = cp_model.CpModel()
    proto = model.proto
    pairs = _usable_pairs(arrays)
    n_vars = len(pairs)
    _add_bool_vars(proto, n_vars, clock)
    index = np.full((n, k), -1, dtype=np.int64)
    index[pairs[:, 0], pairs[:, 1]] = np.arange(n_vars)
    stats: dict[str, Any] = {"variables": n_vars}

    # Each card once, each slot one card, and the dispersion windows.
    stats["assignment_rows"] = _add_at_most_one_rows(proto, (index[c][index[c] >= 0] for c in range(n)), clock)
    stats["assignment_rows"] += _add_at_most_one_rows(
        proto, (index[:, s][index[:, s] >= 0] for s in range(k)), clock)
    stats["window_rows"] = _add_at_most_one_rows(
        proto, _window_rows(index, np.arange(n), int(arrays.min_gap[t_count])), clock)
    per_type = [np.flatnonzero(arrays.types == t) for t in range(t_count)]
    for t in range(t_count):
        stats["window_rows"] += _add_at_most_one_rows(
            proto, _window_rows(index, per_type[t], int(arrays.min_gap[t])), clock)

    # Count and share rows.
    pv_int, pv_err, f = _scaled_pv(arrays, max((c.size for c in per_type), default=1))
    up, down = float(np.clip(pv_err, 0, None).sum()), float(np.clip(-pv_err, 0, None).sum())
    margin = 2.0 + (k + 2) * math.ldexp(max(float(arrays.pv_denominator), 0.0), f - 50)
    share_rows: list[_ShareRow] = []
    stats.update(count_rows=0, share_rows=0)
    infeasible = False
    for t in range(t_count):
        clock.tick()
        ids = index[per_type[t]].ravel()
        ids = ids[ids >= 0]
        if arrays.max_count[t] < per_type[t].size and ids.size > arrays.max_count[t]:
            row = proto.constraints.add().linear
            row.vars.extend(ids.tolist())
            row.coeffs.extend([1] * ids.size)
            row.domain.extend([0, int(arrays.max_count[t])])
            stats["count_rows"] += 1
        relaxed, tight = _share_domains(float(arrays.share_lo[t]), float(arrays.share_hi[t]), f, up, down, margin)
        coefs = pv_int[pairs[ids, 1]]
        reach = int(coefs.sum())
        if relaxed[1] < 0 or relaxed[0] > reach or relaxed[0] > relaxed[1]:
            infeasible = True  # no plan can keep this share rule, even with every rounding in its favour
            continue
        if relaxed[1] >= reach and relaxed[0] <= 0 and tight[1] >= reach and tight[0] <= 0:
            continue  # both sides hold for every plan
        ct = proto.constraints.add()
        ct.linear.vars.extend(ids.tolist())
        ct.linear.coeffs.extend(coefs.tolist())
        ct.linear.domain.extend([max(relaxed[0], 0), min(relaxed[1], reach)])
        share_rows.append(_ShareRow(ct, relaxed, tight))
        stats["share_rows"] += 1
    if infeasible:
        proto.constraints.add().bool_or.literals.extend([])  # an empty clause: no plan at all
    stats["pv_scale_log2"] = f  # PV weights were scaled by 2**f

    clock.tick()
    value_exp, trivial, offset = _add_objective(proto, arrays, pairs, stats)
    if hint_plan is not None:
        chosen = np.zeros(n_vars, dtype=np.int64)
        slots = np.flatnonzero(hint_plan >= 0)
        ids = index[hint_plan[slots], slots]
        chosen[ids[ids >= 0]] = 1
        proto.solution_hint.vars.extend(range(n_vars))
        proto.solution_hint.values.extend(chosen.tolist())
    return _Model(model, pairs, share_rows, value_exp, trivial, offset, stats)


def _search(built: _Model, clock: _Clock, seed: int, num_workers: int, log: bool, build_time: float):
    """Run CP-SAT in a helper thread until it ends, the deadline passes or Ctrl-C; returns the solver and code."""
    from ortools.sat.python import cp_model

    solver = cp_model.CpSolver()
    params = solver.parameters
    params.num_workers = num_workers
    params.random_seed = seed
    params.log_search_progress = log
    params.relative_gap_limit = 0.0
    params.absolute_gap_limit = 0.0
    params.catch_sigint_signal = False  # Ctrl-C reaches Python, which stops the search (below)
    if math.isfinite(clock.deadline):
        params.max_time_in_seconds = max(1e-3, clock.left() - _STOP_MARGIN)
        if clock.left() < _PRESOLVE_BUILDS * build_time:  # short of time for a large model
            params.cp_model_presolve = False
            params.cp_model_probing_level = 0  # probing at the search start reads only a deterministic clock

    def watchdog() -> None:
        if clock.left() < 0:  # CP-SAT overran its own limit (presolve can): stop it
            solver.stop_search()

    code = run_in_thread(lambda: solver.solve(built.model), stop=solver.stop_search, tick=watchdog, poll=_POLL)
    if code == cp_model.MODEL_INVALID:
        raise RuntimeError(f"CP-SAT rejected the model: {built.model.validate()}")
    return solver, code


def _scaled_bound(built: _Model, solver) -> float:
    """CP-SAT's proven bound on the real objective, or inf when it has proven none."""
    raw = solver.best_objective_bound
    # Every plan's objective is >= 1 (the offset); a search stopped before it began reports 0.
    if not math.isfinite(raw) or raw < 1:
        return math.inf
    # The bound is an integer in the model's units, but CP-SAT reports it through its float objective
    # scaling: 427449588482663.06 for 427449588482663 (one unit above an optimum of 0 made it FEASIBLE).
    # Such noise is far below half a unit: take the nearest integer; anything else is rounded up.
    nearest = round(raw)
    scaled = (nearest if abs(raw - nearest) <= 0.25 else math.ceil(raw)) - built.offset  # below 2**52: exact
    bound = math.ldexp(scaled, -built.value_exp)
    return bound if math.ldexp(bound, built.value_exp) == scaled else math.nextafter(bound, math.inf)


def _plan(built: _Model, solver, k: int) -> np.ndarray:
    values = np.array(solver.response_proto.solution, dtype=np.int64)
    chosen = built.pairs[values[: len(built.pairs)] == 1]
    plan = np.full(k, -1, dtype=np.int64)
    plan[chosen[:, 1]] = chosen[:, 0]
    return plan


def _check_options(problem, seed: Any, num_workers: Any, hint: Any, log: Any) -> np.ndarray | None:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= MAX_SEED:
        raise SolverError(f"seed must be an int in [0, {MAX_SEED}] for cpsat (CP-SAT's random_seed); got {seed!r}")
    check_int_option("num_workers", num_workers, 1)
    if num_workers > MAX_WORKERS:
        raise SolverError(f"num_workers must be an int in [1, {MAX_WORKERS}]; got {num_workers!r}")
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
        plan is returned as FEASIBLE with CP-SAT's proven bound (UNKNOWN, bound
        inf, when the limit runs out before the search has found or proven anything).
    seed : int in [0, 2**31 - 1]
        CP-SAT's ``random_seed``. Results are reproducible with one worker.
    num_workers : int in [1, 256], default 1
        CP-SAT search workers (one is fastest on small models and deterministic).
    hint : array (K,) of int or None
        A plan to start from (``assignment`` layout); it need not be feasible.
    log : bool
        Print CP-SAT's search log.

    Returns
    -------
    Solution
        ``stats`` holds the model size, the scales used, and CP-SAT's counters.

    Raises
    ------
    KeyboardInterrupt
        On Ctrl-C, once the search has stopped (never a result for an interrupted solve).

    Examples
    --------
    >>> import mixrank
    >>> p = mixrank.synthetic.instance("tiny", seed=1)
    >>> sol = solve_cpsat(p)
    >>> sol.status, round(sol.objective, 4)
    (<Status.OPTIMAL: 'OPTIMAL'>, 13.2011)
    """
    start = time.perf_counter()
    hint_plan = _check_options(problem, seed, num_workers, hint, log)
    clock = _Clock(start, time_limit)
    try:
        built = _build(problem, clock, hint_plan)
    except _OutOfTime:
        return make_solution(problem, "cpsat", Status.UNKNOWN, None, math.inf, time.perf_counter() - start,
                             {"build_time": time.perf_counter() - start, "stopped": "building"})
    stats = built.stats
    stats.update(build_time=time.perf_counter() - start, num_workers=int(num_workers), phases=1)
    if clock.left() < _LOAD_BUILDS * stats["build_time"]:
        stats["stopped"] = "before search"
        return make_solution(problem, "cpsat", Status.UNKNOWN, None, math.inf, time.perf_counter() - start, stats)
    solver, code = _search(built, clock, int(seed), int(num_workers), log, stats["build_time"])
    status, plan, bound = _read(problem, built, solver, code)
    if plan is not None and problem.check(plan):
        # The relaxed share rows let through a plan that misses a limit by rounding error: tighten them
        # (every plan they keep is feasible) and search again; the relaxed bound stays the proven one.
        stats["phases"] = 2
        status, plan = Status.UNKNOWN, None
        if _tighten(built) and clock.left() > _STOP_MARGIN:
            solver, code = _search(built, clock, int(seed), int(num_workers), log, stats["build_time"])
            plan = _read(problem, built, solver, code)[1]
            if plan is not None and problem.check(plan):
                plan = None
            status = Status.UNKNOWN if plan is None else Status.FEASIBLE
    if plan is not None:
        objective = problem.objective(plan)
        bound = max(bound, objective)
        proven = bound - objective <= RTOL * abs(objective)
        if status is Status.OPTIMAL and not proven:
            status = Status.FEASIBLE  # the scaling cannot prove this plan optimal to RTOL
        elif stats["phases"] == 2 and proven:
            status = Status.OPTIMAL  # the relaxed model's bound meets the tightened model's plan
    stats.update(cpsat_wall_time=solver.wall_time, branches=solver.num_branches, conflicts=solver.num_conflicts,
                 presolve=bool(solver.parameters.cp_model_presolve))
    return make_solution(problem, "cpsat", status, plan, bound, time.perf_counter() - start, stats)


def _tighten(built: _Model) -> bool:
    """Set every share row to its tightened domain; False when one of them is empty (no plan can keep it)."""
    domains = [(max(row.tight[0], 0), row.tight[1]) for row in built.share_rows]
    if any(lo > hi for lo, hi in domains):
        return False
    for row, (lo, hi) in zip(built.share_rows, domains):
        row.constraint.linear.domain[0] = lo
        row.constraint.linear.domain[1] = hi
    return True


def _read(problem, built: _Model, solver, code) -> tuple[Status, np.ndarray | None, float]:
    """The status, plan (or None) and proven bound of one CP-SAT run, in the problem's real terms."""
    from ortools.sat.python import cp_model

    if code == cp_model.INFEASIBLE:
        return Status.INFEASIBLE, None, -math.inf
    proven = _scaled_bound(built, solver)
    if code in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        bound = min(proven, built.trivial_bound)  # (the trivial bound holds whenever a plan exists)
        status = Status.OPTIMAL if code == cp_model.OPTIMAL else Status.FEASIBLE
        return status, _plan(built, solver, problem.n_slots), bound
    return Status.UNKNOWN, None, min(proven, built.trivial_bound) if math.isfinite(proven) else math.inf
