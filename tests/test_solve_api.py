"""mixrank.solve: registry, option checks, Solution contract."""

import dataclasses
import math

import numpy as np
import pytest

import mixrank
from mixrank import SolverError, Status
from mixrank.solution import make_solution
from mixrank.synthetic import instance


def test_unknown_solver_lists_the_valid_ones():
    with pytest.raises(SolverError, match=r"solver must be one of .*cpsat.*greedy.*; got 'nope'"):
        mixrank.solve(instance("tiny", 0), solver="nope")


def test_unknown_option_lists_the_valid_ones():
    with pytest.raises(SolverError, match=r"unknown option\(s\) width for solver 'cpsat'; valid options: hint"):
        mixrank.solve(instance("tiny", 0), solver="cpsat", width=3)
    with pytest.raises(SolverError, match="unknown option\\(s\\) width for solver 'greedy'; valid options: order"):
        mixrank.solve(instance("tiny", 0), solver="greedy", width=3)


@pytest.mark.parametrize("kw, match", [({"time_limit": 0}, "time_limit must be a positive number"),
                                       ({"time_limit": float("nan")}, "time_limit must be"),
                                       ({"seed": -1}, "seed must be an int >= 0"),
                                       ({"seed": 1.5}, "seed must be an int >= 0")])
def test_bad_common_arguments(kw, match):
    with pytest.raises(SolverError, match=match):
        mixrank.solve(instance("tiny", 0), solver="greedy", **kw)


def test_problem_must_be_a_mix_problem():
    with pytest.raises(SolverError, match="problem must be a MixProblem; got dict"):
        mixrank.solve({}, solver="greedy")


def test_solution_contract_and_str():
    p = instance("tiny", 0)
    sol = mixrank.solve(p, solver="cpsat")
    assert sol.status is Status.OPTIMAL and sol.gap == 0.0 and sol.solver == "cpsat"
    assert not sol.assignment.flags.writeable
    text = str(sol)
    assert "OPTIMAL" in text and "plan (slot:card)" in text
    d = sol.to_dict()
    assert d["status"] == "OPTIMAL" and d["assignment"] == sol.assignment.tolist()
    with pytest.raises(dataclasses.FrozenInstanceError):
        sol.status = Status.UNKNOWN


def test_make_solution_refuses_an_infeasible_plan():
    p = mixrank.MixProblem(values=np.ones((2, 2)), types=[0, 0], pv_weights=[1, 1],
                           rules=[mixrank.TypeRule(min_gap=2)])
    with pytest.raises(RuntimeError, match="infeasible plan"):
        make_solution(p, "x", Status.FEASIBLE, [0, 1], math.inf, 0.0)


def test_make_solution_gap_and_pool():
    p = mixrank.MixProblem(values=[[2.0, 1.0]], types=[0], pv_weights=[1, 1], rules=[mixrank.TypeRule()])
    sol = make_solution(p, "x", Status.FEASIBLE, [-1, 0], 3.0, 0.0, pool=[[-1, 0], [0, -1], [-1, 0]])
    assert sol.objective == 1.0 and sol.gap == pytest.approx(2.0)
    assert [pl.objective for pl in sol.pool] == [2.0, 1.0]
    none = make_solution(p, "x", Status.INFEASIBLE, None, 0.0, 0.0)
    assert none.bound == -math.inf and math.isnan(none.gap) and none.assignment.tolist() == [-1, -1]


def test_solution_pickles_read_only():
    import pickle

    p = instance("small", 1)
    sol = mixrank.solve(p, solver="cpsat")
    back = pickle.loads(pickle.dumps(sol))
    assert back.status is Status.OPTIMAL and np.array_equal(back.assignment, sol.assignment)
    assert not back.assignment.flags.writeable and dict(back.stats) == dict(sol.stats)
    with pytest.raises(TypeError):
        back.stats["x"] = 1


def test_wall_time_covers_the_whole_call():
    import time

    p = instance("device", 0)
    t0 = time.perf_counter()
    sol = mixrank.solve(p, solver="greedy")
    assert 0 < sol.wall_time <= time.perf_counter() - t0


def test_solution_with_a_pool_pickles_whole():
    import pickle

    p = instance("device", 4, True, True)
    sol = mixrank.solve(p, solver="beam", n_solutions=3)
    back = pickle.loads(pickle.dumps(sol))
    assert back.status is sol.status and back.objective == sol.objective and back.solver == "beam"
    assert np.array_equal(back.assignment, sol.assignment) and back.assignment.dtype == np.int64
    assert len(back.pool) == len(sol.pool) == 3
    for a, b in zip(back.pool, sol.pool):
        assert np.array_equal(a.assignment, b.assignment) and a.objective == b.objective
        assert not a.assignment.flags.writeable
    assert dict(back.stats) == dict(sol.stats) and (back.bound, back.wall_time) == (sol.bound, sol.wall_time)
