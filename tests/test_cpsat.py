"""CP-SAT, the reference: equal to the brute force, statuses, options."""

import math

import numpy as np
import pytest
from bruteforce import brute_force
from hypothesis import HealthCheck, given, settings
from strategies import problems, random_problem

import mixrank
from mixrank import SolverError, Status
from mixrank.synthetic import instance

TINY = [(seed, h, m) for seed in range(80) for h in (False, True) for m in (False, True)]  # 320 instances


def agrees_with_brute_force(p):
    r = brute_force(p)
    sol = mixrank.solve(p, solver="cpsat")
    if r.optimum == -math.inf:
        assert sol.status is Status.INFEASIBLE, f"brute force finds no plan; cpsat says {sol.status}"
        assert sol.bound == -math.inf and math.isnan(sol.objective)
        assert (sol.assignment == -1).all()
        return "infeasible"
    assert sol.status is Status.OPTIMAL
    assert sol.objective == pytest.approx(r.optimum, rel=1e-6, abs=1e-6)
    assert sol.bound == sol.objective and sol.gap == 0.0
    assert p.check(sol.assignment) == []
    return "optimal"


def test_cpsat_equals_brute_force_on_320_tiny_instances():
    outcomes = [agrees_with_brute_force(instance("tiny", s, history=h, min_share=m)) for s, h, m in TINY]
    assert outcomes.count("optimal") == len(TINY)  # the families are feasible by construction


def test_cpsat_agrees_with_brute_force_on_infeasible_problems():
    rng = np.random.default_rng(2026)
    outcomes = [agrees_with_brute_force(random_problem(rng)) for _ in range(120)]
    # The sample must exercise both verdicts, or the test proves little.
    assert outcomes.count("infeasible") >= 20 and outcomes.count("optimal") >= 20


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems(max_cards=5, max_slots=6))
def test_cpsat_equals_brute_force_on_random_problems(p):
    agrees_with_brute_force(p)


def test_cpsat_proves_an_all_organic_optimum_through_float_noise():
    # CP-SAT reported this bound as 427449588482663.06 for the integer 427449588482663: read as is,
    # one unit (1.1e-16) above the optimum 0, which made the proven optimum FEASIBLE (found by hypothesis).
    p = mixrank.MixProblem(values=np.array([[1.966425], [-0.759303]]), types=np.array([1, 2]),
                           pv_weights=np.array([0.3958]),
                           rules=(mixrank.TypeRule(min_gap=1, max_share=1.0), mixrank.TypeRule(min_gap=1, max_share=0.5),
                                  mixrank.TypeRule(min_gap=1, max_share=1.0)), min_gap_any=1)
    sol = mixrank.solve(p, solver="cpsat")
    assert sol.status is Status.OPTIMAL and sol.objective == 0.0 and sol.bound == 0.0
    assert agrees_with_brute_force(p) == "optimal"


def test_cpsat_device_instance_is_optimal_and_feasible():
    p = instance("device", 0, history=True, min_share=True)
    sol = mixrank.solve(p, solver="cpsat")
    assert sol.status is Status.OPTIMAL and p.check(sol.assignment) == []
    assert sol.stats["variables"] > 0 and sol.stats["window_rows"] > 0


def test_cpsat_hint_and_workers_give_the_same_optimum():
    p = instance("small", 3, history=True)
    a = mixrank.solve(p, solver="cpsat")
    b = mixrank.solve(p, solver="cpsat", hint=a.assignment, num_workers=2)
    assert b.status is Status.OPTIMAL and b.objective == pytest.approx(a.objective, rel=1e-9)


def test_cpsat_is_deterministic_with_one_worker():
    p = instance("small", 5, min_share=True)
    a, b = (mixrank.solve(p, solver="cpsat", seed=3) for _ in range(2))
    assert np.array_equal(a.assignment, b.assignment)


def test_cpsat_time_limit_gives_a_bound():
    p = instance("large", 2, history=True, min_share=True)
    sol = mixrank.solve(p, solver="cpsat", time_limit=0.5)
    assert sol.wall_time < 5.0  # generous: the limit is kept up to presolve and model building
    assert sol.status in (Status.OPTIMAL, Status.FEASIBLE, Status.UNKNOWN)
    if sol.status is Status.FEASIBLE:
        assert sol.bound >= sol.objective and math.isfinite(sol.gap)


def test_cpsat_share_exactly_on_the_cap_is_kept():
    # 2 of 8 equal slots is a share of exactly 0.25: allowed (the rule is <=).
    p = mixrank.MixProblem(values=np.ones((3, 8)), types=[0, 0, 0], pv_weights=np.ones(8),
                           rules=[mixrank.TypeRule(max_share=0.25)])
    sol = mixrank.solve(p, solver="cpsat")
    assert sol.status is Status.OPTIMAL and sol.objective == 2.0


def test_cpsat_history_over_the_cap_is_infeasible():
    p = mixrank.MixProblem(values=np.ones((1, 2)), types=[0], pv_weights=[1.0, 1.0],
                           rules=[mixrank.TypeRule(max_share=0.2)],
                           history=mixrank.History(last_gap=[None], pv_shown=[5.0], pv_total_shown=5.0))
    assert mixrank.solve(p, solver="cpsat").status is Status.INFEASIBLE


@pytest.mark.parametrize("opts, match", [({"num_workers": 0}, "num_workers must be an int >= 1"),
                                         ({"hint": [0, 1]}, r"hint must be an int array of shape \(8,\)"),
                                         ({"log": "yes"}, "log must be True or False")])
def test_cpsat_refuses_bad_options(opts, match):
    with pytest.raises(SolverError, match=match):
        mixrank.solve(instance("tiny", 0), solver="cpsat", **opts)
