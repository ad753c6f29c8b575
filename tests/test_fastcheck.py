"""The compiled re-check (mixrank._fastcheck) against problem.check and problem.objective.

make_solution trusts the kernel's verdict and objective, so they must be exactly those of
``check`` and ``objective``: same verdict on every plan, bit-equal objective on feasible ones.
"""

import math
import pickle

import numpy as np
import pytest
from bruteforce import brute_force
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import problems, random_problem

import mixrank
from mixrank import MixProblem, ProblemError, Status, TypeRule
from mixrank import solution as solution_module
from mixrank._fastcheck import _check_plan, _pairwise_sum, check_plan
from mixrank.solution import make_solution
from mixrank.synthetic import instance


def _bits(x: float) -> int:
    return int(np.float64(x).view(np.int64))


def _assert_agrees(p: MixProblem, plan) -> bool:
    plan = np.array(plan, dtype=np.int64)
    ok, obj = check_plan(p, plan)
    assert ok == (p.check(plan) == []), (plan.tolist(), p.check(plan))
    if ok:
        assert _bits(obj) == _bits(p.objective(plan)), (obj, p.objective(plan))
    else:
        assert math.isnan(obj)
    return ok


def _mutants(p: MixProblem, plan: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """Plans near ``plan``: a card swapped, a card moved a slot, a card duplicated, a slot emptied or
    filled, cards of one type packed together (gaps, shares, counts), and a random plan."""
    n, k = p.n_cards, p.n_slots
    out = []
    filled = np.flatnonzero(plan >= 0)
    if n:
        a = plan.copy()
        a[rng.integers(k)] = rng.integers(n)  # swap in another card (or a duplicate)
        out.append(a)
        a = plan.copy()
        a[rng.integers(k)] = rng.integers(-1, n)
        out.append(a)
    if filled.size:
        s = int(rng.choice(filled))
        for step in (-1, 1):  # shift one card a slot up or down
            if 0 <= s + step < k:
                a = plan.copy()
                a[s], a[s + step] = a[s + step], a[s]
                out.append(a)
        a = plan.copy()
        a[rng.integers(k)] = plan[s]  # duplicate a card
        out.append(a)
        a = plan.copy()
        a[s] = -1  # empty a slot (may break a min-share floor)
        out.append(a)
    if n:
        t = int(rng.integers(p.n_types))
        cards = np.flatnonzero(p.types == t)
        if cards.size:  # pack one type's cards into consecutive slots: gaps, shares and counts break
            a = np.full(k, -1, dtype=np.int64)
            start = int(rng.integers(k))
            for i, c in enumerate(cards[: k - start]):
                a[start + i] = c
            out.append(a)
        out.append(np.where(rng.random(k) < 0.5, rng.integers(0, n, size=k), -1))
    return out


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems(max_cards=6, max_slots=8), st.integers(0, 2**32 - 1))
def test_verdict_and_objective_equal_check_and_objective(p, seed):
    rng = np.random.default_rng(seed)
    plans = [np.full(p.n_slots, -1, dtype=np.int64)]
    plans += [np.array(a, dtype=np.int64) for a in brute_force(p).optimal_plans[:3]]
    for name in ("greedy", "beam"):
        sol = mixrank.solve(p, solver=name, **({"n_solutions": 4} if name == "beam" else {}))
        if sol.has_plan:
            plans.append(np.array(sol.assignment))
        plans += [np.array(pl.assignment) for pl in sol.pool]
    for plan in list(plans):
        plans += _mutants(p, plan, rng)
    verdicts = [_assert_agrees(p, plan) for plan in plans]
    assert len(verdicts) == len(plans)


def test_many_seeded_problems_and_near_feasible_plans():
    rng = np.random.default_rng(7)
    n_ok = n_bad = 0
    for _ in range(300):
        p = random_problem(rng)
        sol = mixrank.solve(p, solver="beam", n_solutions=5)
        plans = [np.array(pl.assignment) for pl in sol.pool] or [np.full(p.n_slots, -1, dtype=np.int64)]
        for plan in plans:
            for a in [plan, *_mutants(p, plan, rng)]:
                if _assert_agrees(p, a):
                    n_ok += 1
                else:
                    n_bad += 1
    assert n_ok > 300 and n_bad > 300  # both verdicts are exercised


def test_share_exactly_on_its_bound():
    # Two slots of PV 1: a card in one gives its type exactly half the page, the cap and the floor.
    p = MixProblem(values=[[0.1, 0.2], [0.3, 0.4]], types=[0, 1], pv_weights=[1.0, 1.0],
                   rules=[TypeRule(max_share=0.5, min_share=0.5), TypeRule(max_share=0.5, min_share=0.5)])
    assert _assert_agrees(p, [0, 1]) and _assert_agrees(p, [1, 0])
    assert not _assert_agrees(p, [0, -1]) and not _assert_agrees(p, [-1, -1])


def test_comparisons_at_exact_equality():
    # White box: bounds that the page's PV meets exactly (share_hi, share_lo) or a count that meets its cap,
    # set on the compiled arrays that both check() and the kernel read. Equal is allowed, on both sides.
    p = MixProblem(values=[[0.1, 0.2, 0.3], [0.3, 0.4, 0.5]], types=[0, 0], pv_weights=[0.1, 0.2, 0.7],
                   rules=[TypeRule(min_gap=2)], history=mixrank.History(last_gap=[2], pv_shown=[0.3],
                                                                         pv_total_shown=1.0))
    shown, pv_used = 0.3, 0.0 + 0.1 + 0.7  # cards at slots 0 and 2, summed in slot order as check does
    share = shown + pv_used
    below, above = pv_used, pv_used  # the nearest bounds that the share, pv_shown added, falls outside
    while below + shown >= share:
        below = np.nextafter(below, -np.inf)
    while above + shown <= share:
        above = np.nextafter(above, np.inf)
    for lo, hi, cap, ok in ((pv_used, pv_used, 2, True), (pv_used, below, 2, False), (above, 9.0, 2, False),
                            (0.0, 9.0, 1, False)):
        p.__dict__.pop("_share_lists", None)
        p.__dict__.pop("_count_caps", None)
        ar = p.__dict__.pop("arrays", None) or p.arrays
        p.__dict__["arrays"] = ar._replace(share_lo=np.array([lo]), share_hi=np.array([hi]),
                                           max_count=np.array([cap]))
        if cap < 2:
            object.__setattr__(p, "rules", (TypeRule(min_gap=2, max_count=cap),))
        assert _assert_agrees(p, [0, -1, 1]) is ok
        assert _assert_agrees(p, [1, -1, 0]) is ok


def test_objective_is_numpys_sum_bit_for_bit_on_long_pages():
    # Past 8 and 128 filled slots numpy sums pairwise; the kernel must follow it exactly.
    rng = np.random.default_rng(3)
    for k in (1, 7, 8, 9, 127, 128, 129, 200, 300, 1031):
        values = rng.normal(size=(k, k)) * 10.0 ** rng.integers(-8, 12, size=(k, k))
        p = MixProblem(values=values, types=np.zeros(k, dtype=int), pv_weights=np.ones(k), rules=[TypeRule()])
        plan = rng.permutation(k)
        assert _assert_agrees(p, plan)
        plan[rng.random(k) < 0.3] = -1
        assert _assert_agrees(p, plan)


def test_pairwise_sum_matches_numpy():
    rng = np.random.default_rng(11)
    for n in list(range(0, 300)) + [511, 512, 513, 1000, 4096, 5003]:
        x = rng.normal(size=n) * 10.0 ** rng.integers(-10, 17, size=n)
        assert _bits(0.0 + _pairwise_sum(x, 0, n)) == _bits(x.sum()), n
    assert _bits(0.0 + _pairwise_sum(np.full(16, -0.0), 0, 16)) == _bits(np.full(16, -0.0).sum())


def test_not_a_plan_gets_false():
    p = instance("tiny", 0)
    k, n = p.n_slots, p.n_cards
    assert check_plan(p, np.full(k + 1, -1, dtype=np.int64))[0] is False
    assert check_plan(p, np.full((1, k), -1, dtype=np.int64))[0] is False
    for bad in (-2, n):
        plan = np.full(k, -1, dtype=np.int64)
        plan[1] = bad
        assert check_plan(p, plan)[0] is False
    with pytest.raises(ProblemError, match="plan must be a numpy array of int64; got list"):
        check_plan(p, [-1] * k)


def test_make_solution_raises_for_an_infeasible_plan():
    p = MixProblem(values=np.ones((3, 3)), types=[0, 0, 1], pv_weights=[1, 1, 1],
                   rules=[TypeRule(min_gap=2), TypeRule(max_count=0)])
    with pytest.raises(RuntimeError, match=r"solver 'x' returned an infeasible plan: \['type 0 cards at slots 0 and 1"):
        make_solution(p, "x", Status.FEASIBLE, [0, 1, -1], math.inf, 0.0)
    with pytest.raises(RuntimeError, match="returned an infeasible plan: .*card 0 is used twice"):
        make_solution(p, "x", Status.OPTIMAL, [0, -1, 0], math.inf, 0.0)
    with pytest.raises(RuntimeError, match="returned an infeasible plan: .*type 1 has 1 cards; max_count is 0"):
        make_solution(p, "x", Status.FEASIBLE, [2, -1, -1], math.inf, 0.0)
    with pytest.raises(RuntimeError, match="put an infeasible plan in its pool"):
        make_solution(p, "x", Status.FEASIBLE, [0, -1, 1], math.inf, 0.0, pool=[[0, -1, 1], [0, 1, -1]])
    # Not a plan at all: problem.check's own ProblemError, as before.
    with pytest.raises(ProblemError, match="assignment entries must be -1 or a card in"):
        make_solution(p, "x", Status.FEASIBLE, [0, 7, -1], math.inf, 0.0)
    with pytest.raises(ProblemError, match=r"assignment must have shape \(3,\)"):
        make_solution(p, "x", Status.FEASIBLE, [0, -1], math.inf, 0.0)
    sol = make_solution(p, "x", Status.FEASIBLE, [0, -1, 1], math.inf, 0.0)
    assert sol.objective == 2.0 and sol.bound == math.inf and not sol.assignment.flags.writeable


def test_make_solution_raises_when_the_kernel_and_check_disagree(monkeypatch):
    p = instance("tiny", 0)
    plan = mixrank.solve(p, solver="greedy").assignment
    monkeypatch.setattr(solution_module, "_check_plan", lambda problem, a: (False, math.nan))
    with pytest.raises(RuntimeError, match="compiled re-check rejects a plan of solver 'x' that problem.check accepts"):
        make_solution(p, "x", Status.FEASIBLE, plan, math.inf, 0.0)


def test_make_solution_copies_the_plan_and_raises_on_an_infeasible_one():
    p = MixProblem(values=np.ones((3, 3)), types=[0, 0, 1], pv_weights=[1, 1, 1],
                   rules=[TypeRule(min_gap=2), TypeRule(max_count=0)])
    with pytest.raises(RuntimeError, match=r"solver 'x' returned an infeasible plan: \['type 0 cards at slots 0 and 1"):
        make_solution(p, "x", Status.FEASIBLE, np.array([0, 1, -1]), math.inf, 0.0)
    good = np.array([0, -1, -1])
    sol = make_solution(p, "x", Status.FEASIBLE, good, math.inf, 0.0)
    assert sol.objective == 1.0 and sol.assignment is not good and good.flags.writeable
    with pytest.raises(TypeError):
        make_solution(p, "x", Status.FEASIBLE, good, math.inf, 0.0, verdict=(True, 1.0))  # the fast path is gone


@pytest.mark.parametrize("family", ["tiny", "small", "device"])
def test_the_beams_plans_pass_the_compiled_check(family):
    from solvers.beam import solve_beam

    for seed in range(6):
        p = instance(family, seed, history=seed % 2 == 1, min_share=seed % 3 == 0)
        sol = solve_beam(p, width=4, n_solutions=2, price_iters=5, local_search=seed % 2)
        if not sol.has_plan:
            continue
        for plan in [sol.assignment, *(q.assignment for q in sol.pool)]:
            feasible, objective = check_plan(p, np.array(plan))
            assert feasible and objective == p.objective(plan)


def test_unpickled_problems_compile_nothing_new():
    p = instance("device", 2)
    first = mixrank.solve(p, solver="beam")
    n_sigs = len(_check_plan.signatures)
    back = pickle.loads(pickle.dumps(p))
    assert "kernel_args" not in back.arrays.__dict__  # the cached tuples are not pickled
    assert all(not a.flags.writeable for a in back.arrays.check_args)
    again = mixrank.solve(back, solver="beam")
    assert np.array_equal(first.assignment, again.assignment) and first.objective == again.objective
    assert len(_check_plan.signatures) == n_sigs
    assert all(a is b for a, b in zip(back.arrays.kernel_args, back.arrays.check_args[:9]))
