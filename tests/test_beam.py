"""Beam: every plan feasible, exact with a wide enough beam, deterministic, honest statuses and bound.

The kernels are tested against reference implementations: the gap machine against plain
distance arithmetic, the compressed dynamic program against an uncompressed one, the
re-matching against scipy's assignment solver.
"""

import itertools
import math

import numpy as np
import pytest
from bruteforce import brute_force
from hypothesis import HealthCheck, given, settings
from strategies import problems

import mixrank
import solvers.beam as beam_module
from mixrank import SolverError, Status
from mixrank.synthetic import instance
from solvers._beam.relax import MAX_STATES
from solvers.beam import solve_beam, warm_up

EXHAUSTIVE = {"width": 1 << 15, "cards_per_type": 8}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems(max_cards=6, max_slots=8))
def test_beam_plans_are_feasible_and_not_above_the_optimum(p):
    r = brute_force(p)
    for width, cards, iters in ((1, 1, 25), (3, 2, 25), (32, 1, 25), (8, 1, 0), (4, 3, 3)):
        sol = mixrank.solve(p, solver="beam", width=width, n_solutions=3, cards_per_type=cards, price_iters=iters)
        if sol.has_plan:
            assert sol.status is Status.FEASIBLE
            assert p.check(sol.assignment) == []
            assert sol.objective <= r.optimum + 1e-9
            # The Lagrangian bound is a proven upper bound on the optimum (inf without prices).
            assert sol.bound >= r.optimum - 1e-9
            assert sol.bound == np.inf if iters == 0 else np.isfinite(sol.bound)
            for plan in sol.pool:
                assert p.check(plan.assignment) == []
        else:
            assert (sol.assignment == -1).all()
            if sol.status is Status.INFEASIBLE:  # only ever claimed with a proof
                assert r.optimum == -np.inf
            else:
                assert sol.status is Status.UNKNOWN


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems(max_cards=6, max_slots=8))
def test_a_wide_beam_is_exact(p):
    # With room for every distinct state and every card tried, merging and the look-ahead are the
    # only filters left, and both are exact: the beam becomes a dynamic program.
    r = brute_force(p)
    sol = mixrank.solve(p, solver="beam", **EXHAUSTIVE)
    if r.optimum == -np.inf:
        assert not sol.has_plan
    else:
        assert sol.has_plan
        assert sol.objective == pytest.approx(r.optimum, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("history", [False, True])
def test_wide_beam_finds_the_brute_force_optimum_on_tiny(seed, history):
    p = instance("tiny", seed, history=history, min_share=seed % 2 == 1)
    r = brute_force(p)
    sol = solve_beam(p, **EXHAUSTIVE)
    assert sol.objective == pytest.approx(r.optimum, rel=1e-9)
    assert any(np.array_equal(sol.assignment, plan) for plan in r.optimal_plans)


def test_beam_on_families_is_feasible():
    for family in ("small", "device", "large"):
        for seed in range(2):
            for history in (False, True):
                p = instance(family, seed, history=history, min_share=True)
                sol = mixrank.solve(p, solver="beam")
                assert sol.status is Status.FEASIBLE
                assert p.check(sol.assignment) == []


def test_beam_is_deterministic():
    p = instance("device", 5, history=True, min_share=True)
    a = mixrank.solve(p, solver="beam", n_solutions=5)
    b = mixrank.solve(p, solver="beam", n_solutions=5, seed=3)
    assert np.array_equal(a.assignment, b.assignment)
    assert [x.assignment.tolist() for x in a.pool] == [x.assignment.tolist() for x in b.pool]
    assert dict(a.stats, tables_time=0, kernel_time=0) == dict(b.stats, tables_time=0, kernel_time=0)


def test_pool_holds_the_best_distinct_plans_of_the_final_beam():
    p = instance("small", 2, history=True)
    sol = mixrank.solve(p, solver="beam", width=16, n_solutions=6)
    assert len(sol.pool) == 6
    plans = {x.assignment.tobytes() for x in sol.pool}
    assert len(plans) == 6
    objectives = [x.objective for x in sol.pool]
    assert objectives == sorted(objectives, reverse=True)
    assert np.array_equal(sol.pool[0].assignment, sol.assignment)
    assert mixrank.solve(p, solver="beam").pool == ()


def test_a_wider_beam_is_never_worse_here():
    # Not a theorem for beam search, but it holds on these fixed instances; a regression in the ranking shows here.
    for seed in range(3):
        p = instance("small", seed, min_share=True)
        narrow = mixrank.solve(p, solver="beam", width=2).objective
        wide = mixrank.solve(p, solver="beam", **EXHAUSTIVE).objective
        assert wide >= narrow - 1e-9


def test_min_share_floor_is_kept_by_the_look_ahead():
    # Type 1 must hold half the PV but its card is worth less than type 0's everywhere:
    # a value-only beam of width 1 would fill slot 0 with card 0 and miss the floor.
    values = np.array([[5.0, 4.0, 3.0], [1.0, 1.0, 1.0]])
    p = mixrank.MixProblem(values=values, types=[0, 1], pv_weights=[2.0, 1.0, 1.0],
                           rules=[mixrank.TypeRule(), mixrank.TypeRule(min_share=0.5)])
    sol = mixrank.solve(p, solver="beam", width=1)
    assert sol.status is Status.FEASIBLE
    assert sol.assignment.tolist() == [1, 0, -1]
    assert sol.stats["lookahead_drops"] >= 1


def test_infeasible_only_with_a_proof():
    # A floor that one card cannot reach: proven at the root.
    p = mixrank.MixProblem(values=[[1.0, 1.0, 1.0]], types=[0], pv_weights=[1.0, 1.0, 1.0],
                           rules=[mixrank.TypeRule(min_share=0.5)])
    sol = mixrank.solve(p, solver="beam")
    assert sol.status is Status.INFEASIBLE and np.isnan(sol.objective)
    assert brute_force(p).optimum == -np.inf


def test_more_than_64_cards_use_every_word_of_the_bitmask():
    rng = np.random.default_rng(0)
    n, k = 70, 12
    values = rng.uniform(0, 1, size=(n, k))
    values[65:, :] += 10.0  # the best cards sit in the second 64-bit word
    p = mixrank.MixProblem(values=values, types=rng.integers(0, 2, size=n), pv_weights=np.ones(k),
                           rules=[mixrank.TypeRule(min_gap=2), mixrank.TypeRule(min_gap=2)])
    sol = mixrank.solve(p, solver="beam", width=8)
    assert p.check(sol.assignment) == []
    assert set(sol.assignment[sol.assignment >= 0].tolist()) >= {65, 66, 67, 68, 69}


def test_no_cards_gives_the_all_organic_plan():
    p = mixrank.MixProblem(values=np.zeros((0, 4)), types=[], pv_weights=[1, 1, 1, 1], rules=[mixrank.TypeRule()])
    sol = mixrank.solve(p, solver="beam")
    assert sol.status is Status.FEASIBLE and sol.assignment.tolist() == [-1] * 4


@pytest.mark.parametrize("option, bad", [("width", 0), ("width", True), ("width", 2.5), ("n_solutions", 0),
                                         ("cards_per_type", -1), ("price_iters", -1), ("price_iters", 1.0)])
def test_bad_options_are_rejected_naming_the_option(option, bad):
    p = instance("tiny", 0)
    with pytest.raises(SolverError, match=option):
        mixrank.solve(p, solver="beam", **{option: bad})


def test_unknown_option_lists_the_valid_ones():
    with pytest.raises(SolverError, match="cards_per_type, local_search, n_solutions, price_iters, width"):
        mixrank.solve(instance("tiny", 0), solver="beam", beam_width=3)


def test_warm_up_runs():
    assert warm_up() >= 0.0


def test_default_beam_is_near_the_optimum_on_device():
    # A quality regression guard (the benchmark measures it on 80 instances): against CP-SAT's optimum.
    gaps = []
    for seed, (history, min_share) in itertools.product(range(2), [(False, False), (True, False), (False, True),
                                                                  (True, True)]):
        p = instance("device", seed, history=history, min_share=min_share)
        ref = mixrank.solve(p, solver="cpsat")
        sol = mixrank.solve(p, solver="beam")
        assert ref.status is Status.OPTIMAL and sol.has_plan
        assert sol.objective <= ref.objective + 1e-6 <= sol.bound + 2e-6
        gaps.append((ref.objective - sol.objective) / ref.objective)
    assert np.mean(gaps) < 0.01
    assert max(gaps) < 0.05


def test_time_limit_stops_the_work_and_still_returns_a_feasible_plan():
    p = instance("large", 0, history=True, min_share=True)
    full = solve_beam(p)
    cut = solve_beam(p, time_limit=1e-6)
    assert full.stats["slots_past_deadline"] == 0 and full.stats["price_iters"] >= 25
    assert cut.stats["price_iters"] < full.stats["price_iters"] or cut.stats["slots_past_deadline"] > 0
    assert cut.has_plan and p.check(cut.assignment) == []


def test_many_types_with_large_gaps_relax_the_estimate_but_keep_every_rule():
    # The joint gap machine would need far more than MAX_MACHINE_STATES states: the estimate drops the
    # largest gaps, the search still keeps every gap exactly.
    rng = np.random.default_rng(7)
    n, k, t_count = 40, 40, 6
    p = mixrank.MixProblem(values=rng.uniform(-0.2, 1.0, size=(n, k)), types=rng.integers(0, t_count, size=n),
                           pv_weights=np.linspace(1.0, 0.3, k),
                           rules=[mixrank.TypeRule(min_gap=g, max_share=0.3) for g in (7, 8, 9, 10, 11, 12)],
                           min_gap_any=1)
    sol = mixrank.solve(p, solver="beam", width=8)
    assert sol.stats["machine_states"] <= MAX_STATES
    assert sol.status is Status.FEASIBLE and p.check(sol.assignment) == []
    assert np.array_equal(sol.assignment, mixrank.solve(p, solver="beam", width=8).assignment)


def test_narrow_beams_that_starve_on_floors_retry_wider_and_stay_feasible():
    # A width-1 beam loses every way to a floor now and then (4 of these 800 small instances at the time of
    # writing; on device none of 600 since the beam re-matches a type's cards to free a slot, 6 before);
    # the retry must then find a plan, and every plan must keep the rules.
    retries = 0
    for seed in range(400):
        for history in (False, True):
            p = instance("small", seed, history=history, min_share=True)
            sol = solve_beam(p, width=1)
            assert sol.status is Status.FEASIBLE and p.check(sol.assignment) == []
            retries += sol.stats["retries"]
    assert retries >= 1


# Found among small seeds 0-399 x history (they move when the prices change; re-find them with a loop over
# instance("small", seed, history=h, min_share=True) and stats["retries"]). The device seeds that starved a
# width-32 beam before (2862, 4256, 8206) starved for want of a re-matched card, and no longer do.
@pytest.mark.parametrize("seed, width", [(360, 4), (388, 4), (4, 1)])
def test_tight_floors_that_starve_a_beam_are_met_by_a_wider_retry(seed, width):
    # Every state the beam kept lost its way to the floor.
    p = instance("small", seed, min_share=True)
    sol = solve_beam(p, width=width, local_search=0)
    assert sol.status is Status.FEASIBLE and p.check(sol.assignment) == []
    # (1 or 2 for the first beam; the counters add up the second effort's two beams where it ran)
    assert 1 <= sol.stats["retries"] <= 2 * (1 + 2 * sol.stats["second_effort"])


@pytest.mark.parametrize("width", [2**20 + 1, 2**63])
def test_huge_widths_are_refused_before_any_work(width):
    """``width=2**63`` raised an OverflowError from inside the kernel call (issue 16)."""
    with pytest.raises(SolverError, match=rf"width must be an int in \[1, 1048576\]; got {width}"):
        mixrank.solve(instance("tiny", 0), solver="beam", width=width)


@pytest.mark.parametrize("history", [False, True])
def test_a_type_whose_slots_need_its_cards_re_matched_is_still_placed(history):
    # tiny seed 0 with a min-share floor: the optimum puts type 1 at slots 4 and 7, and only card 5 of its two
    # cards may stand at slot 7. The beam gives slot 4 its best free card, card 5; slot 7 then had no free card,
    # the pattern was never reached at any width, and the beam lost 30 % (24 % with history). Re-matching the
    # type's cards (card 2 to slot 4) reaches it; the re-matching of the final plans then gives the optimum.
    p = instance("tiny", 0, history=history, min_share=True)
    r = brute_force(p)
    sol = solve_beam(p)
    assert p.check(sol.assignment) == []
    assert sol.objective == pytest.approx(r.optimum, rel=1e-9)
    assert p.types[sol.assignment[[4, 7]]].tolist() == [1, 1]


def test_default_beam_is_near_the_optimum_on_tiny():
    # Against brute force on 200 instances (seeds 0-49, all four variants). Measured with the re-matched children:
    # mean gap 0.021 %, max 2.4 %, 198 optimal (two ranking losses, seeds 6 and 37, that a width-48 beam closes);
    # without them 0.29 %, max 29.8 %, 196 optimal. The bounds leave room for ranking changes, not for lost slots.
    gaps = []
    for seed, (history, min_share) in itertools.product(range(50), [(False, False), (True, False), (False, True),
                                                                   (True, True)]):
        p = instance("tiny", seed, history=history, min_share=min_share)
        r = brute_force(p)
        sol = solve_beam(p)
        assert p.check(sol.assignment) == [] and sol.objective <= r.optimum + 1e-9
        gaps.append((r.optimum - sol.objective) / abs(r.optimum))
    assert np.mean(gaps) < 0.001
    assert max(gaps) < 0.05
    assert sum(g < 1e-9 for g in gaps) >= 195


def test_the_registry_lists_the_beams_own_defaults():
    # SOLVERS["beam"].options documents each option with its default (mixrank cannot import solvers to read them)
    import inspect

    from mixrank.solve import SOLVERS

    sig = inspect.signature(solve_beam)
    assert {k: sig.parameters[k].default for k in SOLVERS["beam"].options} == SOLVERS["beam"].options


@pytest.mark.parametrize("seed, history, min_share", [(13, True, True), (0, False, True)])
def test_the_second_effort_lifts_plans_far_below_their_bound(seed, history, min_share, monkeypatch):
    # stress-device plans 7.4 % and 4.3 % below the optimum after the first effort, 18 % and 6 % below its bound.
    p = instance("stress-device", seed, history=history, min_share=min_share)
    sol = solve_beam(p)
    monkeypatch.setattr(beam_module, "SECOND_GAP", math.inf)
    first = solve_beam(p)
    assert (first.stats["second_effort"], sol.stats["second_effort"]) == (0, 1)
    assert sol.objective > first.objective * 1.01 and sol.objective <= sol.bound <= first.bound  # (more steps)
    assert p.check(sol.assignment) == []


def test_the_second_effort_starts_only_with_twice_the_time_spent_left():
    p = instance("stress-device", 13, history=True, min_share=True)
    assert solve_beam(p, time_limit=60.0).stats["second_effort"] == 1
    sol = solve_beam(p, time_limit=1e-6)
    assert sol.status is Status.FEASIBLE and sol.stats["second_effort"] == 0
