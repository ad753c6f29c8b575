"""Greedy (both orders): always feasible, never above the optimum, min-share look-ahead, time limit."""

import itertools

import numpy as np
import pytest
from bruteforce import brute_force
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import problems

import mixrank
from mixrank import SolverError, Status
from mixrank.synthetic import FAMILIES, instance

ORDERS = ("pair", "slot")


@pytest.mark.parametrize("order", ORDERS)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(p=problems(max_cards=6, max_slots=8))
def test_greedy_plans_are_feasible_and_not_above_the_optimum(order, p):
    sol = mixrank.solve(p, solver="greedy", order=order)
    r = brute_force(p)
    if sol.status is Status.FEASIBLE:
        assert p.check(sol.assignment) == []
        assert sol.objective <= r.optimum + 1e-9
    else:
        assert sol.status is Status.UNKNOWN and (sol.assignment == -1).all()


@st.composite
def one_floor(draw):
    """Problems where the look-ahead is exact: one floored type, no caps, every pair allowed.

    The look-ahead's reach DP is then the exact best PV the floored type can still collect,
    so greedy must find a plan whenever one exists.
    """
    n = draw(st.integers(1, 6))
    k = draw(st.integers(1, 8))
    t_count = draw(st.integers(1, 2))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    types = rng.integers(0, t_count, size=n)
    types[0] = 0
    rules = [mixrank.TypeRule(min_gap=draw(st.integers(1, 4)), min_share=draw(st.sampled_from([0.1, 0.3, 0.5, 0.7])),
                              max_count=draw(st.one_of(st.none(), st.integers(1, 3))))]
    rules += [mixrank.TypeRule(min_gap=draw(st.integers(1, 3))) for _ in range(t_count - 1)]
    history = None
    if draw(st.booleans()):
        history = mixrank.History(last_gap=[draw(st.one_of(st.none(), st.integers(1, 4))) for _ in range(t_count)],
                                  pv_shown=[0.0] * t_count, pv_total_shown=float(draw(st.sampled_from([0.0, 1.0]))))
    pv = np.ones(k) if draw(st.booleans()) else np.round(rng.uniform(0.1, 1.0, size=k), 3)
    return mixrank.MixProblem(values=np.round(rng.normal(0.5, 2.0, size=(n, k)), 3), types=types, pv_weights=pv,
                              rules=rules, min_gap_any=draw(st.integers(1, 2)), history=history)


@pytest.mark.parametrize("order", ORDERS)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(p=one_floor())
def test_greedy_finds_a_plan_whenever_the_lookahead_is_exact(order, p):
    r = brute_force(p)
    sol = mixrank.solve(p, solver="greedy", order=order)
    if r.optimum == -np.inf:
        assert sol.status is Status.UNKNOWN
    else:
        assert sol.status is Status.FEASIBLE, "greedy was trapped on a feasible problem"
        assert sol.objective <= r.optimum + 1e-9


@pytest.mark.parametrize("order", ORDERS)
def test_greedy_on_every_family(order):
    found = total = 0
    for family in FAMILIES:
        for seed in range(2):
            for history, min_share in itertools.product((False, True), repeat=2):
                p = instance(family, seed, history=history, min_share=min_share)
                sol = mixrank.solve(p, solver="greedy", order=order)
                assert sol.status in (Status.FEASIBLE, Status.UNKNOWN)
                if sol.has_plan:
                    assert p.check(sol.assignment) == []
                found += sol.has_plan
                total += 1
    assert found >= 0.97 * total, f"greedy found a plan for {found} of {total} feasible instances"


def test_greedy_is_not_above_the_optimum_on_small_families():
    for family in ("small", "stress-small", "tight-small", "noisy-small"):
        for seed in range(2):
            p = instance(family, seed, history=True, min_share=True)
            ref = mixrank.solve(p, solver="cpsat", time_limit=20)
            assert ref.status is Status.OPTIMAL
            for order in ORDERS:
                sol = mixrank.solve(p, solver="greedy", order=order)
                assert not sol.has_plan or sol.objective <= ref.objective + 1e-6 * max(1.0, abs(ref.objective))


@pytest.mark.parametrize("family", ["device", "stress-device"])
def test_pair_order_beats_slot_order_on_average(family):
    pair, slot = [], []
    for seed in range(6):
        for history, min_share in itertools.product((False, True), repeat=2):
            p = instance(family, seed, history=history, min_share=min_share)
            a, b = (mixrank.solve(p, solver="greedy", order=o) for o in ORDERS)
            if a.has_plan and b.has_plan:
                pair.append(a.objective)
                slot.append(b.objective)
    pair, slot = np.array(pair), np.array(slot)
    assert len(pair) >= 20
    assert pair.mean() > 1.05 * slot.mean()
    assert (pair > slot + 1e-9).sum() >= 3 * (pair < slot - 1e-9).sum()


def test_greedy_lookahead_keeps_a_min_share_floor():
    # Type 1 must hold half the PV but its card is worth less than type 0's everywhere.
    # Plain greedy would fill slot 0 with card 0 (type 0) and leave too little PV for type 1.
    values = np.array([[5.0, 4.0, 3.0], [1.0, 1.0, 1.0]])
    p = mixrank.MixProblem(values=values, types=[0, 1], pv_weights=[2.0, 1.0, 1.0],
                           rules=[mixrank.TypeRule(), mixrank.TypeRule(min_share=0.5)])
    for order in ORDERS:
        sol = mixrank.solve(p, solver="greedy", order=order)
        assert sol.status is Status.FEASIBLE
        assert sol.assignment.tolist() == [1, 0, -1]
        assert sol.stats["forced"] >= 1


def test_pair_order_places_out_of_slot_order():
    # The best pair is card 0 at slot 1; slot order would take card 0 at slot 0 (worth 3) and then
    # card 1 could not follow (gap 2): pair order gets 5 + 1, slot order 3 + 0.
    p = mixrank.MixProblem(values=[[3.0, 5.0, 0.5], [1.0, 0.1, 1.0]], types=[0, 0], pv_weights=[1.0, 1.0, 1.0],
                           rules=[mixrank.TypeRule(min_gap=2)])
    assert mixrank.solve(p, solver="greedy").assignment.tolist() == [-1, 0, -1]
    assert mixrank.solve(p, solver="greedy", order="slot").assignment.tolist() == [0, -1, 1]
    q = mixrank.MixProblem(values=[[3.0, 5.0, 0.5], [1.0, 0.1, 4.0]], types=[0, 0], pv_weights=[1.0, 1.0, 1.0],
                           rules=[mixrank.TypeRule(min_gap=2)])
    assert mixrank.solve(q, solver="greedy").assignment.tolist() == [-1, 0, -1]  # 5 beats 3 + 4: greedy, not exact


def test_greedy_is_deterministic():
    p = instance("stress-device", 7, history=True, min_share=True)
    for order in ORDERS:
        a, b = (mixrank.solve(p, solver="greedy", order=order) for _ in range(2))
        assert np.array_equal(a.assignment, b.assignment)


def test_greedy_refuses_unknown_orders():
    p = instance("tiny", 0)
    with pytest.raises(SolverError, match="order must be one of pair, slot; got 'best'"):
        mixrank.solve(p, solver="greedy", order="best")
    with pytest.raises(SolverError, match="order must be one of pair, slot; got 3"):
        mixrank.solve(p, solver="greedy", order=3)
    with pytest.raises(SolverError, match="valid options: order"):
        mixrank.solve(p, solver="greedy", width=3)


@pytest.mark.parametrize("order", ORDERS)
def test_greedy_keeps_its_time_limit(order):
    # A limit that has passed before the first step: the empty plan when it keeps every rule, else UNKNOWN.
    free = instance("device", 0)
    sol = mixrank.solve(free, solver="greedy", order=order, time_limit=1e-9)
    assert sol.stats["timed_out"] and sol.status is Status.FEASIBLE and sol.objective == 0.0
    floored = instance("device", 0, min_share=True)
    sol = mixrank.solve(floored, solver="greedy", order=order, time_limit=1e-9)
    assert sol.stats["timed_out"] and sol.status is Status.UNKNOWN
    assert not mixrank.solve(floored, solver="greedy", order=order, time_limit=60).stats["timed_out"]


def _plain_reach(pv, avail, spacing, picks):
    """Exhaustive reference: the most PV of at most ``picks`` available slots, pairwise ``spacing`` apart."""
    slots = np.flatnonzero(avail)
    best = 0.0
    for r in range(1, picks + 1):
        for combo in itertools.combinations(slots, r):
            if all(b - a >= spacing for a, b in itertools.pairwise(combo)):
                best = max(best, float(pv[list(combo)].sum()))
    return best


@settings(max_examples=200, deadline=None)
@given(k=st.integers(1, 9), spacing=st.integers(1, 4), picks=st.integers(0, 4), seed=st.integers(0, 2**32 - 1))
def test_reach_is_exact(k, spacing, picks, seed):
    from solvers.greedy import _reach

    rng = np.random.default_rng(seed)
    pv = np.round(rng.uniform(0.0, 1.0, size=k), 3)
    avail = rng.random(k) < 0.7
    want = _plain_reach(pv, avail, spacing, picks)
    assert _reach(pv, avail, 0, spacing, picks) == pytest.approx(want)
    # Asked only whether it reaches `need`, it may stop early, but never below the need when it does.
    need = want * 0.6
    got = _reach(pv, avail, 0, spacing, picks, need)
    assert need <= got <= want + 1e-12


@settings(max_examples=200, deadline=None)
@given(k=st.integers(2, 12), spacing=st.integers(1, 4), gap_any=st.integers(1, 3), picks=st.integers(0, 4),
       seed=st.integers(0, 2**32 - 1))
def test_lookahead_tables_agree_with_the_plain_reach(k, spacing, gap_any, picks, seed):
    """A move of another type closes slot +- (min_gap_any - 1): the tables' verdict is the exact DP's."""
    from mixrank.arrays import ProblemArrays
    from solvers.greedy import _Lookahead, _new_state, _Short

    rng = np.random.default_rng(seed)
    pv = np.round(rng.uniform(0.0, 1.0, size=k), 3)
    open_count = rng.integers(0, 3, size=k)
    ar = ProblemArrays(values=np.zeros((1, k)), types=np.zeros(1, dtype=np.int64), pv=pv,
                       allowed=np.ones((1, k), bool), min_gap=np.array([spacing, gap_any]),
                       init_dist=np.array([spacing, gap_any]), max_count=np.array([1]), share_lo=np.zeros(1),
                       share_hi=np.full(1, 1e9), pv_shown=np.zeros(1), pv_denominator=float(pv.sum()), n_types=1)
    state = _new_state(ar)
    sep = max(spacing, gap_any)
    for slot in range(k):
        low, high = max(slot - gap_any + 1, 0), min(slot + gap_any - 1, k - 1)
        avail = open_count > 0
        avail[low:high + 1] = False
        exact = _plain_reach(pv, avail, sep, picks)
        # A card of the short type itself at the slot: its PV counts, one pick fewer, its own window closed.
        own = open_count > 0
        own[max(slot - sep + 1, 0):slot + sep] = False
        exact_own = pv[slot] + _plain_reach(pv, own, sep, picks - 1) if picks >= 1 else -1.0
        for need in (exact - 1e-9, exact + 1e-9, exact * 0.5, exact_own - 1e-9, exact_own + 1e-9):
            short = _Short(0, float(need), picks, sep, open_count)
            look = _Lookahead(ar, state, [short], None)
            assert look._other_ok(short, slot, True) == (exact >= need), (slot, need, exact)
            mine, other = look.sure_failures(short)  # every slot at once: only sure failures
            assert not other[slot] or exact < need
            assert not mine[slot] or exact_own < need
