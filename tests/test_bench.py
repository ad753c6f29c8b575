"""mixrank.bench: the performance profile, the seeds parser's limits, every family benchable."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mixrank import SolverError
from mixrank.bench import MAX_INSTANCES, BenchRecord, family_instances, parse_seeds, performance_profile, run_bench
from mixrank.synthetic import FAMILIES


def rec(solver, inst, status, objective, wall):
    return BenchRecord(solver, None, None, None, status, objective, math.inf, wall, instance=inst)


def test_profile_counts_infeasible_proofs_failures_and_unsolved_instances():
    records = [
        rec("greedy", "a", "FEASIBLE", 9.0, 0.001), rec("cpsat", "a", "OPTIMAL", 10.0, 0.1),
        rec("greedy", "b", "UNKNOWN", math.nan, 0.001), rec("cpsat", "b", "INFEASIBLE", math.nan, 0.2),
        rec("greedy", "c", "FEASIBLE", 5.0, 0.001), rec("cpsat", "c", "FAILED", math.nan, math.nan),
        rec("greedy", "d", "UNKNOWN", math.nan, 0.001), rec("cpsat", "d", "FAILED", math.nan, math.nan),
    ]
    taus, shares = performance_profile(records, ["greedy", "cpsat"])
    # a: only cpsat's plan is within 1e-4 of the best; b: proven infeasible, only cpsat says so; c: greedy's plan
    # is the best found; d: nobody solved it, and it stays in the denominator.
    assert taus[0] == 1.0
    assert shares["cpsat"].tolist() == [0.5] * len(taus)
    assert shares["greedy"].tolist() == [0.25] * len(taus)


def test_profile_ratios_to_the_fastest_solver():
    records = [rec("a", "p", "FEASIBLE", 1.0, 0.01), rec("b", "p", "FEASIBLE", 1.0, 0.04),
               rec("a", "q", "FEASIBLE", 1.0, 0.03), rec("b", "q", "FEASIBLE", 1.0, 0.01)]
    taus, shares = performance_profile(records, ["a", "b"])
    assert taus.tolist()[:3] == [1.0, 3.0, 4.0]
    assert shares["a"].tolist()[:3] == [0.5, 1.0, 1.0]
    assert shares["b"].tolist()[:3] == [0.5, 0.5, 1.0]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("xyz"), st.sampled_from(["OPTIMAL", "FEASIBLE", "UNKNOWN", "FAILED"]),
                          st.integers(0, 3), st.floats(1e-4, 1.0)), min_size=3, max_size=3).map(tuple),
       st.integers(1, 6))
def test_profile_properties(per_instance, n_instances):
    # Each instance: three solvers' outcomes (the same pattern repeated, shifted in time).
    records = []
    for i in range(n_instances):
        for solver, (_, status, obj, wall) in zip("xyz", per_instance):
            has_plan = status in ("OPTIMAL", "FEASIBLE")
            records.append(rec(solver, f"i{i}", status, float(obj) if has_plan else math.nan, wall * (i + 1)))
    taus, shares = performance_profile(records, list("xyz"))
    assert np.all(np.diff(taus) > 0) and taus[0] == 1.0
    for s in shares.values():
        assert np.all(np.diff(s) >= 0) and np.all((0 <= s) & (s <= 1))
    best = max((o for _, st_, o, _ in per_instance if st_ in ("OPTIMAL", "FEASIBLE")), default=None)
    solved_by_someone = best is not None
    # On every solved instance, the fastest solver that solved it has ratio 1.
    assert max(s[0] for s in shares.values()) == (1.0 if solved_by_someone else 0.0)
    for solver, (_, status, obj, _) in zip("xyz", per_instance):
        solved = status in ("OPTIMAL", "FEASIBLE") and obj >= best
        assert shares[solver][-1] == (1.0 if solved else 0.0)


def test_parse_seeds_limits_a_range_before_building_it():
    assert parse_seeds("0-4,9") == [0, 1, 2, 3, 4, 9]
    assert len(parse_seeds(f"0-{MAX_INSTANCES - 1}")) == MAX_INSTANCES
    for text in (f"0-{MAX_INSTANCES}", "0-10**12", "0-999999999999999999999", "5-50000,60000-160000"):
        with pytest.raises(SolverError, match="seeds must"):
            parse_seeds(text)
    with pytest.raises(SolverError, match="variants must name at least one"):
        family_instances("tiny", [0], [])


@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_family_can_be_benched(family):
    # New families (mixrank.synthetic.FAMILIES) are covered without a change here or in the CLI.
    res = run_bench(family, [0], ["greedy"], variants=["both"], progress=False)
    assert [(r.instance, r.solver) for r in res.records] == [(f"{family}-0-both", "greedy")]
    assert res.records[0].status in ("FEASIBLE", "UNKNOWN")
