"""The beam's kernels (``solvers/_beam``) against plain Python references, and its ranking against the
relaxation engine's bounds: the beam ranks by the same bound bnb prunes by, from the same prices."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import mixrank
from mixrank.synthetic import instance
from solvers._beam.plan import _best_at, _plan_bound, card_order, path_plan
from solvers._beam.relax import floor_reach, improve, plain_ranking, relaxation, split_ranking
from solvers._beam.search import _floor_terms, completion, floor_ok
from solvers._core.assign import hungarian, match_type, price_bound, rematch_duals, rematch_plan
from solvers._core.instance import beam_input, types_feasible
from solvers._core.prices import Prices, dual_bound, new_prices
from solvers._core.reach import type_avail
from solvers._core.resources import pv_resources
from solvers._core.split import new_split_tables, split_bound


def _brute_assignment(value):
    """Best total over injective row -> column maps avoiding -inf (-inf when none)."""
    m, n = value.shape
    best = -np.inf
    for cols in itertools.permutations(range(n), m):
        v = sum(value[i, c] for i, c in enumerate(cols))
        best = max(best, v)
    return best


@pytest.mark.parametrize("seed", range(40))
def test_hungarian_is_the_brute_force_optimum_and_its_prices_bound_every_pair(seed):
    rng = np.random.default_rng(seed)
    m, n = int(rng.integers(0, 5)), int(rng.integers(4, 7))
    value = rng.normal(size=(m, n))
    value[rng.random((m, n)) < 0.3] = -np.inf
    total, col, price = hungarian(value)
    want = _brute_assignment(value)
    if want == -np.inf:
        assert total == -np.inf
        return
    assert total == pytest.approx(want, abs=1e-9)
    assert len(set(col.tolist())) == m and sum(value[i, col[i]] for i in range(m)) == pytest.approx(total)
    assert (price >= 0).all()


@pytest.mark.parametrize("seed", range(20))
def test_price_bound_holds_for_every_slot_set_and_is_tight_on_its_own(seed):
    p = instance("small", seed, history=bool(seed % 2))
    inp = beam_input(p.arrays)
    rng = np.random.default_rng(seed)
    k = inp.pv.shape[0]
    for t in range(inp.caps.shape[0]):
        t0, t1 = inp.tstart[t], inp.tstart[t + 1]
        slots = np.sort(rng.choice(k, size=min(3, t1 - t0), replace=False)).astype(np.int64)
        mt = match_type(inp.vmask, inp.tcards, t0, t1, slots)
        if mt.value == -np.inf:
            continue
        own = np.zeros(k, dtype=bool)
        own[slots] = True
        assert price_bound(inp.vmask, inp.tcards, t0, t1, mt.prices, own) == pytest.approx(mt.value, abs=1e-9)
        for _ in range(5):
            other = np.zeros(k, dtype=bool)
            other[rng.choice(k, size=len(slots), replace=False)] = True
            exact = match_type(inp.vmask, inp.tcards, t0, t1, np.flatnonzero(other).astype(np.int64)).value
            assert price_bound(inp.vmask, inp.tcards, t0, t1, mt.prices, other) >= exact - 1e-9


@pytest.mark.parametrize("seed", range(10))
def test_rematching_keeps_the_slots_and_never_loses(seed):
    p = instance("small", seed)
    sol = mixrank.solve(p, solver="greedy")
    inp = beam_input(p.arrays)
    v, plan = rematch_plan(inp.vmask, inp.types, inp.tcards, inp.tstart, np.asarray(sol.assignment))
    assert p.check(plan) == [] and v == pytest.approx(p.objective(plan)) and v >= sol.objective - 1e-9
    assert ((plan >= 0) == (np.asarray(sol.assignment) >= 0)).all()


@pytest.mark.parametrize("seed", range(10))
def test_card_order_sorts_each_slot_by_priced_value_then_index(seed):
    p = instance("small", seed)
    inp = beam_input(p.arrays)
    mu = np.random.default_rng(seed).uniform(0, 0.3, size=inp.types.shape[0])
    order = card_order(inp, mu)
    for t in range(inp.caps.shape[0]):
        cards = inp.tcards[inp.tstart[t]:inp.tstart[t + 1]]
        for s in range(inp.pv.shape[0]):
            ok = [c for c in cards.tolist() if np.isfinite(inp.vmask[c, s])]
            want = sorted(ok, key=lambda c: (mu[c] - inp.vmask[c, s], c))
            got = [c for c in order[t, s].tolist() if c >= 0]
            assert got == want


@pytest.mark.parametrize("seed", range(30))
def test_types_feasible_is_the_plan_check_on_the_type_sequence(seed):
    p = instance("tiny", seed % 10, history=seed % 2 == 1, min_share=seed % 3 == 0)
    inp = beam_input(p.arrays)
    rng = np.random.default_rng(seed)
    for _ in range(30):
        ptype = rng.integers(-1, inp.caps.shape[0], size=inp.pv.shape[0]).astype(np.int64)
        ptype[rng.random(ptype.shape) < 0.5] = -1
        v, plan = rematch_plan(inp.vmask, inp.types, inp.tcards, inp.tstart,
                               np.array([inp.tcards[inp.tstart[t]] if t >= 0 else -1 for t in ptype]))
        if v == -np.inf:
            continue  # no allowed cards for those slots: the check would fail on "allowed", not on the rules
        assert types_feasible(inp, ptype) == (p.check(plan) == [])


@pytest.mark.parametrize("family, seed", [("stress-device", 0), ("stress-device", 3), ("device", 1), ("tight-tiny", 0)])
def test_the_beams_root_rank_is_the_relaxations_bound_from_the_same_prices(family, seed):
    # The beam ranks a state by its priced value so far + completion(); at the root that is the bound
    # _core's dual_bound (plain) and split_bound (split relaxation) give for the same prices: the very
    # functions bnb bounds its nodes with.
    p = instance(family, seed)
    inp = beam_input(p.arrays)
    rel = relaxation(inp, 1e-12)
    t_count, k = inp.caps.shape[0], inp.pv.shape[0]
    prices = new_prices(inp.types.shape[0], t_count)
    improve(rel, prices, 20, -np.inf, np.inf)
    rk = plain_ranking(rel, prices)
    rows = rel.rows
    const = prices.mu.sum() + (prices.alpha * rows.hi - prices.beta * rows.lo + prices.gamma * rows.count).sum()
    r = np.empty((t_count, k))
    arg = np.empty((t_count, k), dtype=np.int64)
    H, ch = np.empty_like(rel.H), np.empty_like(rel.choice)
    plain = dual_bound(rows, prices, rel.trans, rel.plain, r, arg, H, ch)
    units0 = np.zeros(t_count, dtype=np.int64)
    root = completion(rk.H, rk.H0, 0.0, rk.kn, rk.kn_of, rk.kn_gap, 0, 0, inp.dist0[None], units0[None], 0)
    assert root + const == pytest.approx(plain, rel=1e-12)
    rk2, b2, _ = split_ranking(inp, rel, prices, 10, -np.inf, np.inf)
    if rk2 is None:
        assert family != "tight-tiny"  # its cap admits one card: the split relaxation is built
        return
    # The split relaxation rebuilt at rk2's prices (same knapsacks, same units): its bound is the root rank.
    capped = [t for t in range(t_count) if rk2.kn_of[t] >= 0]
    res = pv_resources(inp.pv, rows.hi, capped, [int(rk2.kn_cap[rk2.kn_of[t]]) for t in capped])
    kn = new_split_tables(res, inp.gap, inp.dist0, type_avail(inp.types, inp.vmask, inp.caps.shape[0]), k)
    split = split_bound(rows, rel.trans, rel.plain, res, kn, Prices(rk2.mu, np.zeros(t_count), rk2.beta, rk2.gamma),
                        rk2.lam, r, arg, H, ch)
    units = np.array([rk2.kn_cap[rk2.kn_of[t]] if rk2.kn_of[t] >= 0 else 0 for t in range(t_count)])
    root2 = completion(rk2.H, rk2.H0, 0.0, rk2.kn, rk2.kn_of, rk2.kn_gap, 0, 0, inp.dist0[None], units[None], 0)
    const2 = rk2.mu.sum() + (rk2.gamma * rows.count - rk2.beta * rows.lo).sum()
    assert root2 + const2 == pytest.approx(split, rel=1e-12)
    assert b2 <= split * (1 + 1e-12) + 1e-12  # the least bound seen, and the last prices are the best seen


@pytest.mark.parametrize("family, seed, tighter", [("tiny", 0, False), ("tiny", 1, True), ("tiny", 7, True),
                                                   ("small", 2, True), ("small", 8, True), ("device", 1, True),
                                                   ("device", 2, True), ("stress-device", 4, False)])
def test_the_rank_of_every_prefix_of_the_optimum_bounds_the_optimum_with_floor_prices(family, seed, tighter):
    # With floor prices the completion is the least of H (every floored card paid its floor price) and
    # H0 + the prices of the PV still missing: both bound every completion, so the rank of each prefix of
    # an optimal plan (priced value so far + floor credit + completion, plus the relaxation's constant)
    # must stay at or above the optimum; at the root the least of the two is no looser than H alone (and on
    # these instances, ``tighter``, strictly tighter).
    p = instance(family, seed, history=seed % 2 == 1, min_share=True)
    best = mixrank.solve(p, solver="bnb")
    inp = beam_input(p.arrays)
    rel = relaxation(inp, 1e-12)
    t_count = inp.caps.shape[0]
    prices = new_prices(inp.types.shape[0], t_count)
    improve(rel, prices, 30, -np.inf, np.inf)
    rk = plain_ranking(rel, prices)
    assert np.any(rk.beta > 0)  # (else H0 is H and there is nothing to test)
    rows = rel.rows
    const = prices.mu.sum() + (prices.alpha * rows.hi - prices.beta * rows.lo + prices.gamma * rows.count).sum()
    units = np.zeros((1, t_count), dtype=np.int64)
    dist, pv_used = inp.dist0.copy(), np.zeros((1, t_count))
    acc, g = 0.0, 0
    for s, c in enumerate(list(np.asarray(best.assignment)) + [None]):
        credit, need = _floor_terms(rk.beta, rk.lo, pv_used, 0)
        rank = acc + credit + completion(rk.H, rk.H0, need, rk.kn, rk.kn_of, rk.kn_gap, s, g, dist[None], units, 0)
        assert rank + const >= best.objective - 1e-9 * max(1.0, abs(best.objective))
        if s == 0:
            assert rank <= rk.H[0, 0] + credit + 1e-12 * max(1.0, abs(rank))
            assert (rank < rk.H[0, 0] + credit - 1e-9 * max(1.0, abs(rank))) == tighter
        if c is None:
            break
        t = inp.types[c] if c >= 0 else -1
        g = rk.trans[g, 1 + t]
        dist = np.minimum(dist + 1, inp.gap)
        if c >= 0:
            dist[t] = dist[t_count] = 1
            pv_used[0, t] += inp.pv[s]
            acc += inp.values[c, s] - rk.mu[c] - rk.alpha[t] * inp.pv[s] - rk.gamma[t]


@pytest.mark.parametrize("seed", range(12))
def test_floor_look_ahead_never_drops_a_state_the_optimum_passes_through(seed):
    p = instance("tiny", seed, min_share=True, history=seed % 2 == 1)
    best = mixrank.solve(p, solver="bnb")
    if not best.has_plan:
        return
    inp = beam_input(p.arrays)
    fl = floor_reach(inp)
    t_count = inp.caps.shape[0]
    dist = inp.dist0.copy()
    pv_used = np.zeros(t_count)
    count = np.zeros(t_count, dtype=np.int64)
    for s, c in enumerate(np.asarray(best.assignment).tolist()):
        assert floor_ok(fl.of_type, fl.tables, fl.kdim, fl.tol, inp.share_lo, inp.gap, inp.caps, s, dist[None],
                        pv_used[None], count[None], 0)
        dist = np.minimum(dist + 1, inp.gap)
        if c >= 0:
            t = inp.types[c]
            dist[t] = dist[t_count] = 1
            pv_used[t] += inp.pv[s]
            count[t] += 1


@pytest.mark.parametrize("family, seed", [("device", 0), ("stress-device", 1), ("tight-tiny", 0), ("small", 3)])
def test_path_plans_keep_every_rule_and_are_valued_exactly(family, seed):
    # The relaxation's path repaired into a plan (dropping the cheapest slots of a type over its caps): when
    # it is returned, it keeps every rule and its value is its objective (no floors here: a floor the path
    # misses leaves no plan, which is allowed).
    p = instance(family, seed)
    inp = beam_input(p.arrays)
    rel = relaxation(inp, 1e-12)
    prices = new_prices(inp.types.shape[0], inp.caps.shape[0])
    found = 0
    for iters in (0, 5, 25):
        improve(rel, prices, iters, -np.inf, np.inf)
        rk = plain_ranking(rel, prices)
        v, plan = path_plan(inp, rk.trans, rk.choice)
        if v > -np.inf:
            found += 1
            assert p.check(plan) == [] and v == pytest.approx(p.objective(plan), rel=1e-12)
    assert found >= 1


@pytest.mark.parametrize("seed", range(20))
def test_plan_bound_at_any_matchings_duals_bounds_the_rematched_value(seed):
    # Step 4 skips a plan whose _plan_bound (at the duals of another plan's matchings) cannot beat the best
    # kept: the bound must hold for every plan and every source of duals, and with its own duals be exact
    # up to rounding (so the plan itself, and its card permutations, are skipped once kept).
    p = instance("small", seed % 10, history=seed % 2 == 1, min_share=seed % 3 == 0)
    inp = beam_input(p.arrays)
    t_count, k = inp.caps.shape[0], inp.pv.shape[0]
    n_t = max(1, int(np.diff(inp.tstart).max()))
    best_at = _best_at(inp)
    rng = np.random.default_rng(seed)
    plans = []
    for _ in range(80):
        ptype = rng.integers(-1, t_count, size=k).astype(np.int64)
        ptype[rng.random(k) < 0.5] = -1
        plan = np.array([inp.tcards[inp.tstart[t]] if t >= 0 else -1 for t in ptype], dtype=np.int64)
        duals = np.zeros((t_count, n_t))
        v, p2 = rematch_duals(inp.vmask, inp.types, inp.tcards, inp.tstart, plan, duals)
        if v > -np.inf:
            assert v == rematch_plan(inp.vmask, inp.types, inp.tcards, inp.tstart, plan)[0]
            assert _plan_bound(inp, p2, best_at, duals) == pytest.approx(v, rel=1e-9, abs=1e-9)
            plans.append((v, p2, duals))
    assert len(plans) >= 2
    for v, p2, _ in plans:
        for _, _, duals in plans:
            assert _plan_bound(inp, p2, best_at, duals) >= v - 1e-9 * (1.0 + abs(v))
