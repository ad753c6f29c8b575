"""Beam option ``local_search``: feasible, never worse, locally optimal, deterministic, deadline-aware.

Local optimality is checked independently of the kernel: every shift / swap / change-type /
insert / remove neighbour of a plan's type sequence is built in Python, its changed types are
re-matched with scipy's assignment solver, and ``MixProblem.check`` decides its feasibility.
"""

import numpy as np
import pytest
from bruteforce import brute_force
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment
from strategies import problems, random_problem

import mixrank
from mixrank import SolverError, Status
from mixrank.synthetic import instance
from solvers._core.instance import beam_input
from solvers._core.local import local_search
from solvers.beam import solve_beam

VARIANTS = ((False, False), (True, False), (False, True), (True, True))


def _rematched(p, owner, plan, changed):
    """``plan`` with the slots of each type in ``changed`` given by ``owner`` and that type's cards matched
    to them optimally (allowed pairs only); None when some changed type cannot fill its slots."""
    ar = p.arrays
    new = plan.copy()
    for t in changed:
        new[np.isin(new, np.flatnonzero(ar.types == t))] = -1
    for t in changed:
        slots = np.flatnonzero(owner == t)
        cards = np.flatnonzero(ar.types == t)
        if slots.size == 0:
            continue
        if slots.size > cards.size:
            return None
        ok = ar.allowed[np.ix_(cards, slots)]
        cost = np.where(ok, -ar.values[np.ix_(cards, slots)], 1e9)
        rows, cols = linear_sum_assignment(cost)
        if not ok[rows, cols].all() or rows.size < slots.size:
            return None
        new[slots[cols]] = cards[rows]
    return new


def _neighbours(owner, n_types):
    """(type sequence, changed types) of every shift / swap / change-type / insert / remove move."""
    k = owner.size
    for s in range(k):
        a = owner[s]
        if a >= 0:
            o = owner.copy()
            o[s] = -1
            yield o, {a}  # remove
            for b in range(n_types):
                if b != a:
                    o = owner.copy()
                    o[s] = b
                    yield o, {a, b}  # change type
            for s2 in range(k):
                if owner[s2] < 0:
                    o = owner.copy()
                    o[s], o[s2] = -1, a
                    yield o, {a}  # shift
                elif s2 > s and owner[s2] != a:
                    o = owner.copy()
                    o[s], o[s2] = owner[s2], a
                    yield o, {a, owner[s2]}  # swap
        else:
            for b in range(n_types):
                o = owner.copy()
                o[s] = b
                yield o, {b}  # insert


def _best_neighbour_gain(p, plan):
    """Largest objective gain of a feasible neighbour of ``plan`` (-inf when none is feasible)."""
    ar = p.arrays
    plan = np.asarray(plan)
    owner = np.array([ar.types[c] if c >= 0 else -1 for c in plan.tolist()], np.int64)
    base = p.objective(plan)
    best = -np.inf
    for o, changed in _neighbours(owner, ar.n_types):
        new = _rematched(p, o, plan, changed)
        if new is not None and p.check(new) == []:
            best = max(best, p.objective(new) - base)
    return best


def _assert_local_optimum(p, sol):
    assert sol.stats["ls_cut"] == 0  # the run ended at a local optimum, not at the cap or a deadline
    gain = _best_neighbour_gain(p, sol.assignment)
    assert gain <= 1e-9 * (1.0 + abs(sol.objective)), gain


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems(max_cards=6, max_slots=8), st.integers(1, 3), st.integers(1, 4))
def test_plans_are_feasible_distinct_sorted_and_never_worse(p, ls, n_sol):
    off = solve_beam(p, width=4, n_solutions=n_sol, local_search=0)
    sol = solve_beam(p, width=4, n_solutions=n_sol, local_search=ls)
    assert sol.status is off.status
    if not sol.has_plan:
        return
    assert p.check(sol.assignment) == []
    assert sol.objective >= off.objective - 1e-9 * (1.0 + abs(off.objective))
    pool = sol.pool if n_sol > 1 else (sol,)
    assert 1 <= len(pool) <= n_sol
    assert np.array_equal(pool[0].assignment, sol.assignment)
    for plan in pool:
        assert p.check(plan.assignment) == []
    assert len({tuple(plan.assignment.tolist()) for plan in pool}) == len(pool)
    objectives = [plan.objective for plan in pool]
    assert objectives == sorted(objectives, reverse=True)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems(max_cards=6, max_slots=8))
def test_local_optimum_on_random_problems(p):
    sol = solve_beam(p, width=1, local_search=1)
    if sol.has_plan:
        _assert_local_optimum(p, sol)


@pytest.mark.parametrize("seed", range(6))
def test_local_optimum_on_small(seed):
    history, min_share = VARIANTS[seed % 4]
    p = instance("small", seed, history=history, min_share=min_share)
    for width in (1, 4):
        sol = solve_beam(p, width=width, local_search=1)
        assert sol.status is Status.FEASIBLE
        _assert_local_optimum(p, sol)


def test_local_optimum_on_seeded_random_problems():
    rng = np.random.default_rng(5)
    solved = improvable = 0
    for i in range(120):
        p = random_problem(rng, n=8 + i % 5, k=10 + i % 7, t_count=2 + i % 2)
        sol = solve_beam(p, width=1, local_search=1, price_iters=0)
        if sol.has_plan:
            _assert_local_optimum(p, sol)
            solved += 1
            off = solve_beam(p, width=1, price_iters=0, local_search=0)
            improvable += _best_neighbour_gain(p, off.assignment) > 1e-9 * (1.0 + abs(off.objective))
    # The check has teeth: many plans of the plain beam are not local optima.
    assert solved >= 30 and improvable >= 15, (solved, improvable)


def test_kernel_local_search_from_the_organic_plan_and_its_stops():
    # From the all-organic plan (feasible without floors) the search has far to go: it must reach a local
    # optimum, stop early at a cap of one assignment problem, and do nothing past its deadline.
    p = instance("small", 2, history=True)
    inp = beam_input(p.arrays)
    k = inp.pv.shape[0]
    organic = np.full(k, -1, np.int64)
    res = local_search(inp, organic, 10_000, np.inf)
    assert res.local_opt and res.moves > 3 and res.solves > res.moves
    assert p.check(res.plan) == [] and res.value == pytest.approx(p.objective(res.plan), rel=1e-12)
    assert _best_neighbour_gain(p, res.plan) <= 1e-9 * (1.0 + abs(res.value))
    # The same with a finite deadline far away: the clock is read, nothing else changes.
    again = local_search(inp, organic, 10_000, 1e300)
    assert np.array_equal(again.plan, res.plan) and again[2:] == res[2:]
    capped = local_search(inp, organic, 1, np.inf)
    assert not capped.local_opt and p.check(capped.plan) == []
    late = local_search(inp, organic, 10_000, 0.0)
    assert (late.plan == -1).all() and late.value == 0.0 and late.moves == 0 and not late.local_opt


@pytest.mark.parametrize("seed", range(12))
def test_never_above_the_optimum_and_exact_where_the_plain_beam_is_on_tiny(seed):
    history, min_share = VARIANTS[seed % 4]
    p = instance("tiny", seed, history=history, min_share=min_share)
    r = brute_force(p)
    for width in (1, 2, 8, 64):
        off = solve_beam(p, width=width, local_search=0)
        on = solve_beam(p, width=width, local_search=1)
        assert on.objective <= r.optimum + 1e-9 * (1.0 + abs(r.optimum))
        assert on.objective >= off.objective
        if off.objective == pytest.approx(r.optimum, rel=1e-9, abs=1e-12):
            assert on.objective == pytest.approx(r.optimum, rel=1e-9, abs=1e-12)
    assert on.objective == pytest.approx(r.optimum, rel=1e-9, abs=1e-12)  # width 64 finds it


def test_a_past_deadline_skips_the_search():
    p = instance("device", 1, history=True)
    sol = mixrank.solve(p, solver="beam", local_search=1, time_limit=1e-9)
    assert sol.has_plan and p.check(sol.assignment) == []
    assert sol.stats["ls_moves"] == 0 and sol.stats["ls_cut"] == 0


def _same(a, b):
    return (a.status == b.status and np.array_equal(a.assignment, b.assignment) and a.objective == b.objective
            and a.bound == b.bound and [q.assignment.tolist() for q in a.pool] == [q.assignment.tolist() for q in b.pool]
            and {n: v for n, v in a.stats.items() if n != "kernel_time"}
            == {n: v for n, v in b.stats.items() if n != "kernel_time"})


def test_solve_many_equals_one_by_one_and_is_deterministic():
    batch = [instance(f, s, *VARIANTS[s % 4]) for f in ("tiny", "small", "device") for s in range(4)]
    opts = {"width": 8, "n_solutions": 2, "local_search": 2}
    got = mixrank.solve_many(batch, solver="beam", n_jobs=1, **opts)
    want = [mixrank.solve(p, solver="beam", **opts) for p in batch]
    again = [mixrank.solve(p, solver="beam", **opts) for p in batch]
    assert all(_same(a, b) for a, b in zip(got, want))
    assert all(_same(a, b) for a, b in zip(want, again))
    assert sum(s.stats["ls_moves"] for s in want) > 0  # the search did move somewhere


def test_one_is_the_default_and_zero_turns_it_off():
    p = instance("device", 4, history=True, min_share=True)
    a = mixrank.solve(p, solver="beam", n_solutions=3)
    b = mixrank.solve(p, solver="beam", n_solutions=3, local_search=1)
    off = mixrank.solve(p, solver="beam", n_solutions=3, local_search=0)
    assert _same(a, b) and off.stats["ls_moves"] == 0 and off.objective <= a.objective


@pytest.mark.parametrize("bad", [-1, True, 1.0, "1", None])
def test_bad_values_are_rejected_naming_the_option(bad):
    with pytest.raises(SolverError, match="local_search"):
        mixrank.solve(instance("tiny", 0), solver="beam", local_search=bad)
