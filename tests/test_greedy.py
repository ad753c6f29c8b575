"""Greedy: always feasible, never above the optimum, min-share look-ahead."""

import numpy as np
from bruteforce import brute_force
from hypothesis import HealthCheck, given, settings
from strategies import problems

import mixrank
from mixrank import Status
from mixrank.synthetic import instance


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems(max_cards=6, max_slots=8))
def test_greedy_plans_are_feasible_and_not_above_the_optimum(p):
    sol = mixrank.solve(p, solver="greedy")
    r = brute_force(p)
    if sol.status is Status.FEASIBLE:
        assert p.check(sol.assignment) == []
        assert sol.objective <= r.optimum + 1e-9
    else:
        assert sol.status is Status.UNKNOWN and (sol.assignment == -1).all()


def test_greedy_on_families():
    for family in ("tiny", "small", "device", "large"):
        for seed in range(3):
            p = instance(family, seed, history=True, min_share=True)
            sol = mixrank.solve(p, solver="greedy")
            assert sol.status in (Status.FEASIBLE, Status.UNKNOWN)
            if sol.has_plan:
                assert p.check(sol.assignment) == []


def test_greedy_lookahead_keeps_a_min_share_floor():
    # Type 1 must hold half the PV but its card is worth less than type 0's everywhere.
    # Plain greedy would fill slot 0 with card 0 (type 0) and leave too little PV for type 1.
    values = np.array([[5.0, 4.0, 3.0], [1.0, 1.0, 1.0]])
    p = mixrank.MixProblem(values=values, types=[0, 1], pv_weights=[2.0, 1.0, 1.0],
                           rules=[mixrank.TypeRule(), mixrank.TypeRule(min_share=0.5)])
    sol = mixrank.solve(p, solver="greedy")
    assert sol.status is Status.FEASIBLE
    assert sol.assignment.tolist() == [1, 0, -1]
    assert sol.stats["forced"] >= 1


def test_greedy_is_deterministic():
    p = instance("device", 7, history=True, min_share=True)
    assert np.array_equal(mixrank.solve(p, solver="greedy").assignment, mixrank.solve(p, solver="greedy").assignment)


def test_greedy_is_rarely_trapped_by_min_share_floors():
    """Every family instance is feasible; the look-ahead must find a plan for nearly all of them."""
    found = total = 0
    for family, seeds in (("tiny", range(40)), ("small", range(20))):
        for seed in seeds:
            for history in (False, True):
                p = instance(family, seed, history=history, min_share=True)
                found += mixrank.solve(p, solver="greedy").has_plan
                total += 1
    assert found >= 0.95 * total, f"greedy found a plan for {found} of {total} feasible instances"


def test_reach_is_exact_on_a_small_case():
    from solvers.greedy import _reach

    pv = np.array([5.0, 4.0, 3.0, 2.0, 1.0])
    avail = np.array([True, True, False, True, True])
    # two cards spaced by 2 from slot 0: slots 0 and 3 (slot 2 is unavailable) -> 7
    assert _reach(pv, avail, 0, 2, 2) == 7.0
    assert _reach(pv, avail, 1, 2, 2) == 6.0  # slots 1 and 3
    assert _reach(pv, avail, 0, 2, 9) == 7.0  # more cards cannot fit better
