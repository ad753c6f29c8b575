"""Branch and bound: exact against the brute force and CP-SAT, honest statuses and bounds, anytime, options."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
from bruteforce import brute_force
from hypothesis import HealthCheck, given, settings
from strategies import problems, random_problem

import mixrank
from mixrank import History, MixProblem, SolverError, Status, TypeRule
from mixrank.synthetic import instance
from solvers.bnb import solve_bnb

VARIANTS = [(h, m) for h in (False, True) for m in (False, True)]
DEVICE_OPTIMA = Path(__file__).parent / "data" / "bnb_device_optima.json"


def same_optimum(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-6 * max(1.0, abs(a), abs(b))


def brute_force_check(p, **options):
    """Solve ``p`` with bnb (``options``) and assert it agrees with brute force; the solution."""
    r = brute_force(p)
    sol = solve_bnb(p, **options)
    if r.optimum == -math.inf:
        assert sol.status is Status.INFEASIBLE, f"brute force finds no plan; bnb says {sol.status}"
        assert sol.bound == -math.inf and math.isnan(sol.objective) and (sol.assignment == -1).all()
        return sol
    assert sol.status is Status.OPTIMAL, f"brute force optimum {r.optimum}; bnb says {sol.status}"
    assert same_optimum(sol.objective, r.optimum), (sol.objective, r.optimum)
    assert sol.bound == sol.objective and sol.gap == 0.0
    assert p.check(sol.assignment) == []
    return sol


def agrees_with_brute_force(p) -> str:
    return "optimal" if brute_force_check(p).status is Status.OPTIMAL else "infeasible"


def agrees_with_cpsat(p) -> str:
    ref = mixrank.solve(p, solver="cpsat")
    sol = solve_bnb(p)
    assert ref.status in (Status.OPTIMAL, Status.INFEASIBLE)
    assert sol.status is ref.status, f"cpsat says {ref.status}, bnb says {sol.status}"
    if ref.status is Status.OPTIMAL:
        assert same_optimum(sol.objective, ref.objective), (sol.objective, ref.objective)
        assert sol.objective <= ref.bound + 1e-9 * max(1.0, abs(ref.bound))
        return "optimal"
    return "infeasible"


# ----------------------------------------------------------------- exactness
def test_bnb_equals_brute_force_on_320_tiny_instances():
    outcomes = [agrees_with_brute_force(instance("tiny", s, history=h, min_share=m))
                for s in range(80) for h, m in VARIANTS]
    assert outcomes.count("optimal") == 320


def test_bnb_agrees_with_brute_force_on_infeasible_problems():
    rng = np.random.default_rng(2026)
    outcomes = [agrees_with_brute_force(random_problem(rng)) for _ in range(150)]
    assert outcomes.count("infeasible") >= 20 and outcomes.count("optimal") >= 20


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems(max_cards=6, max_slots=7))
def test_bnb_properties_on_random_problems(p):
    """The plan passes check, the objective never exceeds the bound, and it equals the brute force."""
    sol = solve_bnb(p)
    if sol.has_plan:
        assert p.check(sol.assignment) == []
        assert sol.objective <= sol.bound
    agrees_with_brute_force(p)


def test_bnb_equals_cpsat_on_tiny_and_small_instances():
    """284 live comparisons: tiny seeds 0-39 and small seeds 0-29, four variants each, and four device ones."""
    cases = [("tiny", s) for s in range(40)] + [("small", s) for s in range(30)]
    outcomes = [agrees_with_cpsat(instance(fam, s, history=h, min_share=m)) for fam, s in cases for h, m in VARIANTS]
    outcomes += [agrees_with_cpsat(instance("device", 0, history=h, min_share=m)) for h, m in VARIANTS]
    assert len(outcomes) == 284 and outcomes.count("optimal") == 284


def test_bnb_proves_every_device_instance_optimal_as_cpsat_does():
    """Seeds 0-19 x history x min-share, against CP-SAT optima cached by tests/data/make_bnb_device_optima.py."""
    rows = json.loads(DEVICE_OPTIMA.read_text())["instances"]
    assert len(rows) == 80
    for row in rows:
        p = instance("device", row["seed"], history=row["history"], min_share=row["min_share"])
        sol = solve_bnb(p)
        assert sol.status.value == row["status"], row
        if row["status"] == "OPTIMAL":
            assert same_optimum(sol.objective, row["objective"]), (row, sol.objective)
            assert p.check(sol.assignment) == []


def test_bnb_agrees_with_cpsat_on_infeasible_problems():
    rng = np.random.default_rng(7)
    outcomes = [agrees_with_cpsat(random_problem(rng, n=6, k=9, t_count=3)) for _ in range(80)]
    assert outcomes.count("infeasible") >= 10 and outcomes.count("optimal") >= 10


# --------------------------------------------------------------- edge cases
def test_bnb_without_cards_keeps_the_page_organic():
    p = MixProblem(values=np.zeros((0, 4)), types=[], pv_weights=[1, 1, 1, 1], rules=[TypeRule()])
    sol = solve_bnb(p)
    assert sol.status is Status.OPTIMAL and sol.objective == 0.0 and (sol.assignment == -1).all()


def test_bnb_history_over_the_cap_is_infeasible():
    p = MixProblem(values=[[1.0, 1.0]], types=[0], pv_weights=[1.0, 1.0], rules=[TypeRule(max_share=0.2)],
                   history=History(last_gap=[None], pv_shown=[3.0], pv_total_shown=4.0))
    sol = solve_bnb(p)
    assert sol.status is Status.INFEASIBLE and sol.bound == -math.inf


def test_bnb_share_exactly_on_the_cap_is_kept():
    # 2 of 8 equal slots is a share of exactly 0.25: allowed (the rule is <=).
    p = MixProblem(values=np.ones((3, 8)), types=[0, 0, 0], pv_weights=np.full(8, 0.1), rules=[TypeRule(max_share=0.25)])
    sol = solve_bnb(p)
    assert sol.status is Status.OPTIMAL and sol.objective == 2.0


def test_bnb_takes_negative_values_only_when_a_floor_needs_them():
    rules = [TypeRule(min_gap=2, min_share=0.3)]
    p = MixProblem(values=-np.ones((2, 4)), types=[0, 0], pv_weights=[1.0, 1.0, 1.0, 1.0], rules=rules)
    sol = solve_bnb(p)
    assert sol.status is Status.OPTIMAL and sol.objective == -2.0  # 2 of 4 slots: 0.5 >= 0.3; 1 is 0.25 < 0.3
    free = MixProblem(values=-np.ones((2, 4)), types=[0, 0], pv_weights=[1.0] * 4, rules=[TypeRule(min_gap=2)])
    assert solve_bnb(free).objective == 0.0


def test_memo_compares_pv_as_each_types_rules_need():
    # A floor whose cap no plan reaches: more PV is better (1); floor and a reachable cap: equal PV (2);
    # a reachable cap alone: less is better (0); neither: PV does not matter (3).
    from solvers import _bnb_kernels as kern
    from solvers.bnb import _Layout

    rules = [TypeRule(min_share=0.1, max_share=0.9, max_count=1), TypeRule(min_share=0.1, max_share=0.3),
             TypeRule(max_share=0.3), TypeRule()]
    rng = np.random.default_rng(3)
    p = MixProblem(values=rng.normal(1.0, 1.0, (6, 6)), types=[0, 1, 1, 2, 2, 3],
                   pv_weights=[1.0, 0.9, 0.8, 0.7, 0.6, 0.5], rules=rules)
    assert list(kern._pv_rules(_Layout(p).P)) == [1, 2, 0, 3]
    brute_force_check(p)
    brute_force_check(p, width=0)


def test_bnb_real_valued_pv_weights_are_not_rounded():
    # The cap sits on the float sum of two slots: only the sums check() makes decide which pairs fit.
    pv = np.array([0.1, 0.2, 0.30000000000000004, 0.1 + 1e-15])
    cap_share = (0.1 + 0.2) / pv.sum()
    p = MixProblem(values=np.ones((4, 4)), types=[0, 0, 0, 0], pv_weights=pv, rules=[TypeRule(max_share=cap_share)])
    sol = solve_bnb(p)
    r = brute_force(p)
    assert sol.status is Status.OPTIMAL and same_optimum(sol.objective, r.optimum)
    assert p.check(sol.assignment) == []


# ---------------------------------------------------------------- anytime
def test_node_limit_gives_a_feasible_plan_and_a_proven_bound():
    for seed in range(6):
        p = instance("small", seed, history=True, min_share=True)
        opt = solve_bnb(p)
        assert opt.status is Status.OPTIMAL
        cut = solve_bnb(p, node_limit=3)
        assert cut.status in (Status.FEASIBLE, Status.OPTIMAL)
        assert p.check(cut.assignment) == []
        assert cut.objective <= opt.objective + 1e-9
        assert cut.bound >= opt.objective - 1e-9 * max(1.0, abs(opt.objective))
        assert cut.gap >= 0.0 and math.isfinite(cut.gap)


def test_no_plan_within_the_limit_is_unknown():
    p = instance("device", 0, history=True, min_share=True)  # its floor rules out the all-organic plan
    assert p.check(np.full(p.n_slots, -1)) != []
    sol = solve_bnb(p, node_limit=1, width=0)
    assert sol.status is Status.UNKNOWN and math.isnan(sol.objective) and (sol.assignment == -1).all()
    assert math.isfinite(sol.bound) and sol.bound >= solve_bnb(p).objective


def test_time_limit_is_honoured_on_a_large_instance():
    """Behaviour, not speed: the solver stops near its limit and says how far past it it returned."""
    p = instance("large", 7)  # neither bnb nor CP-SAT proves this one within 10 s
    solve_bnb(p, node_limit=1)  # compile outside the limit
    sol = solve_bnb(p, time_limit=0.5)
    assert sol.status is Status.FEASIBLE
    assert p.check(sol.assignment) == []
    assert sol.objective <= sol.bound and math.isfinite(sol.bound)
    assert 0.0 <= sol.stats["overrun"] < 0.5  # the kernel reads the clock every 1024 nodes
    assert sol.wall_time < 0.5 + 1.0  # generous: a loaded CI machine


def test_the_bound_of_a_cut_search_is_an_upper_bound_of_the_optimum():
    for seed in range(4):
        p = instance("device", seed, min_share=True)
        ref = mixrank.solve(p, solver="cpsat") if seed == 0 else solve_bnb(p)
        cut = solve_bnb(p, node_limit=200)
        assert cut.bound >= ref.objective - 1e-9 * abs(ref.objective)
        assert cut.stats["root_bound"] >= ref.objective - 1e-9 * abs(ref.objective)


# ------------------------------------------------------ determinism, options
def test_bnb_is_deterministic():
    p = instance("device", 3, history=True, min_share=True)
    a, b = solve_bnb(p), solve_bnb(p, seed=5)
    assert (a.assignment == b.assignment).all() and a.objective == b.objective
    assert a.stats["nodes"] == b.stats["nodes"] and a.stats["memo_hits"] == b.stats["memo_hits"]


def test_options_change_the_work_not_the_answer():
    p = instance("small", 4, history=True, min_share=True)
    ref = solve_bnb(p)
    for opts in ({"memo": False}, {"width": 0}, {"lagrange_iters": 20}, {"width": 64, "lagrange_iters": 400}):
        sol = solve_bnb(p, **opts)
        assert sol.status is Status.OPTIMAL and same_optimum(sol.objective, ref.objective), opts


def test_stats_report_the_search():
    sol = mixrank.solve(instance("small", 1, history=True), solver="bnb")
    for key in ("nodes", "memo_hits", "bound_prunes", "floor_prunes", "root_bound", "lagrange_iters", "overrun"):
        assert key in sol.stats
    assert sol.stats["root_bound"] >= sol.objective
    assert sol.solver == "bnb"


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [("node_limit", 0, "node_limit must be an int >= 1 or None"),
     ("node_limit", 2.5, "node_limit must be an int >= 1 or None"),
     ("width", -1, r"width must be an int in \[0, 4096\]"),
     ("lagrange_iters", True, "lagrange_iters must be an int >= 0"),
     ("memo", "yes", "memo must be True or False")],
)
def test_bad_options_are_rejected_before_any_work(option, value, message):
    with pytest.raises(SolverError, match=message):
        mixrank.solve(instance("tiny", 0), solver="bnb", **{option: value})


def test_direct_calls_check_their_arguments():
    with pytest.raises(SolverError, match="time_limit must be a positive number"):
        solve_bnb(instance("tiny", 0), time_limit=0)
    with pytest.raises(SolverError, match="problem must be a MixProblem"):
        solve_bnb({"values": [[1.0]]})


def test_registry_lists_bnb_as_exact_with_its_options():
    info = mixrank.SOLVERS["bnb"]
    assert info.exact and set(info.options) == {"node_limit", "width", "lagrange_iters", "memo"}
    with pytest.raises(SolverError, match="valid options: lagrange_iters, memo, node_limit, width"):
        mixrank.solve(instance("tiny", 0), solver="bnb", beam_width=3)


# ------------------------------------------------- tolerance, ranges (issue 16)
def scaled(p, factor):
    return MixProblem(values=p.values * factor, types=p.types, pv_weights=p.pv_weights, rules=p.rules,
                      min_gap_any=p.min_gap_any, allowed=p.allowed, history=p.history)


@pytest.mark.parametrize("factor", [1e-9, 1e-12, 1e9])
def test_optimality_tolerance_is_relative_to_the_objective(factor):
    """small seed 1 scaled by 1e-9 was called OPTIMAL at 3.1198e-8 (the optimum is 3.1428e-8); by 1e-12, 0."""
    p = instance("small", 1)
    ref = solve_bnb(p)
    sol = solve_bnb(scaled(p, factor))
    assert sol.status is Status.OPTIMAL
    assert abs(sol.objective - ref.objective * factor) <= 1e-9 * abs(ref.objective * factor)
    assert sol.bound >= sol.objective


@pytest.mark.parametrize("width", [4097, 10**9, 2**63])
def test_huge_widths_are_refused_before_any_work(width):
    with pytest.raises(SolverError, match=rf"width must be an int in \[0, 4096\]; got {width}"):
        mixrank.solve(instance("tiny", 0), solver="bnb", width=width)


# ---------------------------------------------------- the stress families
@pytest.mark.parametrize("family", ["tight-small", "stress-small", "noisy-small"])
def test_bnb_equals_cpsat_on_the_stress_families(family):
    outcomes = [agrees_with_cpsat(instance(family, s)) for s in range(8)]
    assert outcomes.count("optimal") + outcomes.count("infeasible") == 8


def test_the_split_bound_closes_a_tight_cap_gap():
    """stress-device seed 6: three share caps that admit about one card each; the plain bound is ~18 % high.

    (The split bound is 0.3 % high aimed at the beam's plan, 1.5 % aimed at the local search's better one:
    Polyak steps are a heuristic.)"""
    p = instance("stress-device", 6)
    sol = solve_bnb(p)
    assert sol.status is Status.OPTIMAL and sol.stats["split_iters"] > 0
    assert sol.stats["root_bound"] <= sol.objective * 1.02


# ------------------------------------------------------------ the first plan
def test_bnb_finds_its_plans_without_another_solver():
    """bnb's plans come from its own engine (beam, neighbourhood search): solving a hard instance, restarts
    included, must not import the heuristic beam (a solver importing a sibling, and compiling its kernels)."""
    import subprocess
    import sys

    code = ("import sys, mixrank\n"
            "from solvers.bnb import solve_bnb\n"
            "sol = solve_bnb(mixrank.synthetic.instance('tight-device', 6, min_share=True), node_limit=30000)\n"
            "assert sol.stats['rounds'] >= 2, sol.stats\n"
            "assert not [m for m in sys.modules if m.startswith(('solvers.beam', 'solvers._beam'))]\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_local_search_improves_the_first_plan_and_the_optimum_stays_exact():
    """device seed 5 with history and floors: the local search improves the beam's first plan (the search then
    takes ~14k nodes, 123k without it); the optimum is still CP-SAT's."""
    p = instance("device", 5, history=True, min_share=True)
    assert agrees_with_cpsat(p) == "optimal"
    assert solve_bnb(p).stats["ls_improved"] >= 1


@pytest.mark.parametrize("seed", range(4))
def test_bnb_local_search_returns_feasible_plans_valued_as_the_problem_values_them(seed):
    """From the all-organic plan (feasible without floors) it adds cards: a plan that passes the check, valued as
    :meth:`~mixrank.MixProblem.objective` values it; a plan no better than the incumbent is not taken."""
    import solvers.bnb as bnb

    p = instance("stress-device", seed, history=True)
    lay = bnb._Layout(p)
    assert lay.empty_ok
    local, organic = bnb._Local(p, lay), np.full(lay.k, -1, dtype=np.int64)
    val, plan = local.improve(0.0, organic, organic, math.inf)
    assert local.improved == 1 and val > 0.0 and p.check(plan) == []
    assert abs(val - p.objective(plan)) <= 1e-12 * abs(val)
    assert local.improve(val, plan, organic, math.inf)[1] is plan  # the same local optimum: nothing better
    assert local.improved == 1


@pytest.mark.parametrize("seed", range(3))
def test_seeded_search_still_equals_brute_force_with_floors(seed):
    rng = np.random.default_rng(100 + seed)
    checked = 0
    while checked < 15:
        brute_force_check(random_problem(rng, n=5, k=7, t_count=2), width=4)
        checked += 1


@pytest.mark.parametrize("seed", range(3))
def test_floor_knapsacks_keep_the_search_exact(seed, monkeypatch):
    """A one-node first round makes every search take the floor knapsacks (the hard-instance path): still the
    brute-force optimum, or INFEASIBLE exactly when it is."""
    import solvers._bnb_relax as relax_module
    import solvers.bnb as bnb_module

    monkeypatch.setattr(bnb_module, "_ROUND_NODES", 1)
    monkeypatch.setattr(relax_module, "_FLOOR_LEVELS", 64)  # small tables: the path, not the resolution, is tested
    rng = np.random.default_rng(200 + seed)
    checked = taken = 0
    while checked < 15:
        sol = brute_force_check(random_problem(rng, n=5, k=7, t_count=2))
        taken += sol.stats["floor_knapsacks"] > 0
        checked += 1
    assert taken >= 3  # the path was taken


def test_floor_knapsacks_prove_a_floor_that_few_cards_must_reach():
    """stress-device seed 0 (history, floors): type 0 must reach 4.83 PV with at most 10 cards; the plain bound
    stays ~7 % above the optimum (no proof in 20 s), the floor knapsack brings it to ~3 % and the proof."""
    p = instance("stress-device", 0, history=True, min_share=True)
    sol = solve_bnb(p)
    assert sol.status is Status.OPTIMAL and sol.stats["floor_knapsacks"] >= 1
    assert sol.stats["root_bound"] <= sol.objective * 1.04
    assert same_optimum(sol.objective, mixrank.solve(p, solver="cpsat").objective)


# ------------------------------------------------------------ pausing and resuming the search
def _kernel_inputs(p, target):
    """What the search kernel reads for ``p``, with prices aimed at ``target``."""
    import solvers.bnb as bnb_module
    from solvers._bnb_relax import Relaxation

    lay = bnb_module._Layout(p)
    rel = Relaxation(lay, math.inf)
    rel.improve(100, target)
    L, f0 = rel.tables()
    return lay, L, bnb_module._reach_tables(lay), f0, bnb_module._Memo(lay, True)


@pytest.mark.parametrize("family,seed", [("stress-device", 3), ("tight-device", 2), ("device", 1)])
def test_a_search_paused_every_few_nodes_walks_the_same_tree(family, seed):
    """The kernel stops at a node limit and goes on from the depth it paused at: paused every 37 nodes, it
    visits exactly the nodes, prunes exactly the children and ends with exactly the plan of one run."""
    from solvers import _bnb_kernels as kern

    p = instance(family, seed, min_share=True)
    optimum = solve_bnb(p).objective
    lay, L, R, f0, memo = _kernel_inputs(p, optimum)
    free = np.full(lay.k, -2, dtype=np.int64)
    runs = []
    for step in (10**9, 37):
        path = kern.new_path(lay.n, lay.k, lay.t_count, memo.n_words, lay.dist0, f0)
        at, table = np.full(1, -1, dtype=np.int64), memo.table(10**5)
        plan, stats = np.full(lay.k, -1, dtype=np.int64), np.zeros(6, dtype=np.int64)
        val, calls, complete = optimum - 1e-3 * abs(optimum), 0, False  # the search must find the optimum
        while not complete:
            val, bound, complete = kern.search(lay.P, L, R, path, at, table, memo.dshift, plan, val, step, math.inf,
                                               1e-9, lay.tol_abs, stats, free, np.zeros(1, dtype=np.int64))
            assert complete or bound >= val
            calls += 1
        runs.append((val, plan.tolist(), stats.tolist(), calls))
    (val1, plan1, stats1, _), (val2, plan2, stats2, calls2) = runs
    assert calls2 > 3 and stats1[0] > 100  # it did pause, on a search of some size
    assert (val2, plan2, stats2) == (val1, plan1, stats1)
    assert not p.check(np.array(plan1)) and same_optimum(val1, optimum)


@pytest.mark.parametrize("seed", range(3))
def test_resumed_rounds_keep_the_search_exact(seed, monkeypatch):
    """Rounds of two nodes, many of them going on where the last one paused (the first node of each round
    in this thread, the rest in a helper): still the brute-force optimum, or INFEASIBLE exactly when it is."""
    import solvers.bnb as bnb_module

    monkeypatch.setattr(bnb_module, "_ROUND_NODES", 2)
    monkeypatch.setattr(bnb_module, "_INLINE_NODES", 1)
    # no beam: the plans come from the search itself, so that a round that walked the wrong nodes shows
    monkeypatch.setattr(bnb_module, "_beam", lambda lay, *args: (-math.inf, np.full(lay.k, -1, dtype=np.int64)))
    rng = np.random.default_rng(300 + seed)
    resumed = 0
    for _ in range(15):
        sol = brute_force_check(random_problem(rng, n=6, k=9, t_count=2), width=1)
        resumed += sol.stats["resumed"]
    assert resumed >= 3  # the path was taken
