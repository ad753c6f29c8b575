"""solvers._core: each kernel against a plain-Python reference, and the bounds against the brute force."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from bruteforce import brute_force
from strategies import random_problem

from solvers._core.dp import backward_dp, new_tables
from solvers._core.gaps import build_states, gap_states
from solvers._core.knapsack import (
    floor_at,
    floor_path,
    floor_rows,
    floor_table,
    knapsack_at,
    knapsack_path,
    knapsack_rows,
    knapsack_table,
)
from solvers._core.prices import (
    Steps,
    dual_bound,
    improve_prices,
    new_prices,
    new_rows,
    record_step,
    step_length,
    steps_done,
)
from solvers._core.resources import left_units, no_resources, pv_resources
from solvers._core.split import improve_split, need_left, new_floor_sacks, new_split_tables, no_floor_sacks, split_bound


def states_by_hand(gaps, init, n_types):
    """Distance tuples reachable from ``init`` (rules 0..T-1 per type, T any card), as a set."""
    seen, todo = {tuple(init)}, [tuple(init)]
    while todo:
        d = todo.pop()
        for col in range(n_types + 1):
            nd = [min(x + 1, g) for x, g in zip(d, gaps)]
            if col > 0:
                t = col - 1
                if d[t] != gaps[t] or d[n_types] != gaps[n_types]:
                    continue
                nd[t] = nd[n_types] = 1
            if tuple(nd) not in seen:
                seen.add(tuple(nd))
                todo.append(tuple(nd))
    return seen


@pytest.mark.parametrize("gaps, init", [([2, 3, 2], [1, 3, 2]), ([4, 1, 3], [4, 1, 1]), ([1, 1, 1], [1, 1, 1])])
def test_gap_states_are_the_reachable_distances(gaps, init):
    n_types = len(gaps) - 1
    g = gap_states(np.array(gaps), np.array(init), n_types)
    tracked = [r for r in range(n_types + 1) if gaps[r] > 1]
    want = {tuple(d[r] for r in tracked) for d in states_by_hand(gaps, init, n_types)}
    assert g.n_states == len(want)
    assert (g.trans[:, 0] >= 0).all()  # the organic item is always allowed


def test_build_states_refuses_too_many_states():
    _, n = build_states(np.array([5, 5]), np.array([5, 5]), np.array([0, -1]), 1, 2, 3)
    assert n == -1


def paths_by_hand(r, trans, res, s, i, z):
    """Best value of slots s.. from gap state i and resource code z, by recursion."""
    k = r.shape[1]
    if s == k:
        return 0.0
    best = paths_by_hand(r, trans, res, s + 1, trans[i, 0], z)
    for t in range(r.shape[0]):
        j = trans[i, 1 + t]
        if j < 0 or r[t, s] == -np.inf:
            continue
        z2 = z
        if res.of_type[t] >= 0:
            q = res.of_type[t]
            left = (z // res.mult[q]) % (res.cap[q] + 1)
            if left < res.units[q, s]:
                continue
            z2 = z - res.units[q, s] * res.mult[q]
        best = max(best, r[t, s] + paths_by_hand(r, trans, res, s + 1, j, z2))
    return best


@pytest.mark.parametrize("seed", range(6))
def test_backward_dp_equals_the_recursion(seed):
    rng = np.random.default_rng(seed)
    n_types, k = 2, 7
    g = gap_states(np.array([2, 3, 1 + seed % 2]), np.array([1, 3, 1]), n_types)
    r = rng.normal(size=(n_types, k))
    r[rng.random((n_types, k)) < 0.2] = -np.inf
    pv = rng.uniform(0.2, 1.0, k)
    for res in (no_resources(n_types, k), pv_resources(pv, np.array([1.3, 5.0]), [0], [5]),
                pv_resources(pv, np.array([1.3, 0.9]), [0, 1], [4, 3])):
        H, choice = new_tables(k, g.n_states, res.n_codes)
        backward_dp(r, g.trans, res, H, choice)
        for i in range(g.n_states):
            for z in range(res.n_codes):
                assert H[0, i, z] == pytest.approx(paths_by_hand(r, g.trans, res, 0, i, z))


@pytest.mark.parametrize("seed", range(4))
def test_plain_dp_breaks_ties_as_the_general_dp(seed):
    """The plain DP (one code, its own loop order) fills the same ``H`` and the same choices as the general DP
    (here with a tracked resource that never binds), ties included: integer values tie often, and both take
    organic first, then the types in order."""
    rng = np.random.default_rng(seed)
    n_types, k = 3, 9
    g = gap_states(np.array([2, 3, 1, 2]), np.array([1, 3, 1, 2]), n_types)
    r = rng.integers(-2, 3, size=(n_types, k)).astype(np.float64)
    r[rng.random((n_types, k)) < 0.2] = -np.inf
    H, choice = new_tables(k, g.n_states, 1)
    backward_dp(r, g.trans, no_resources(n_types, k), H, choice)
    free = pv_resources(np.zeros(k), np.ones(n_types), [1], [2])  # every slot weighs 0 units
    H2, choice2 = new_tables(k, g.n_states, free.n_codes)
    backward_dp(r, g.trans, free, H2, choice2)
    assert free.n_codes == 3 and np.any(choice > 0)
    for z in range(free.n_codes):
        np.testing.assert_array_equal(H2[:, :, z], H[:, :, 0])
        np.testing.assert_array_equal(choice2[:, :, z], choice[:, :, 0])


@pytest.mark.parametrize("seed", range(5))
def test_knapsack_table_equals_enumeration(seed):
    rng = np.random.default_rng(seed)
    k, gap, q = 8, 1 + seed % 3, 6
    lam = rng.normal(0.5, 1.0, k)
    avail = rng.random(k) < 0.8
    units = rng.integers(0, 4, k)
    padded = np.full((k + 1, gap + 1, q + 3), np.nan)  # as in SplitTables: padded to the widest type
    knapsack_table(lam, avail, units, gap, q + 1, padded)
    assert np.isnan(padded[:, gap:]).all() and np.isnan(padded[:, :, q + 1:]).all()  # the padding is left alone
    table = padded[:, :gap, :q + 1]
    rows_only = np.full_like(padded, np.nan)  # the rows knapsack_rows leaves alone stay NaN
    knapsack_rows(lam, avail, units, gap, q + 1, rows_only)
    for s, d, c in itertools.product(range(k + 1), range(gap), range(q + 1)):
        assert knapsack_at(rows_only, s, d, c, gap) == table[s, d, c]
    for d0 in range(gap):
        for cap in range(q + 1):
            best = 0.0
            for take in itertools.product((0, 1), repeat=k):
                slots = [s for s in range(k) if take[s]]
                if any(not avail[s] for s in slots) or sum(units[s] for s in slots) > cap:
                    continue
                if slots and slots[0] + d0 + 1 < gap:  # distance at slots[0] is d0 + 1 + slots[0]
                    continue
                if any(b - a < gap for a, b in zip(slots, slots[1:])):
                    continue
                best = max(best, sum(lam[s] for s in slots))
            assert table[0, d0, cap] == pytest.approx(best)
            take = np.zeros(k)
            knapsack_path(table, lam, avail, units, gap, d0, cap, take)
            assert lam[take > 0].sum() == pytest.approx(best)


@pytest.mark.parametrize("seed", range(5))
def test_floor_table_equals_enumeration(seed):
    rng = np.random.default_rng(20 + seed)
    k, gap, r_max, n_max = 8, 1 + seed % 3, 6, 3
    lam = rng.normal(0.0, 1.0, k)  # negative prices too: a floor may need them
    avail = rng.random(k) < 0.8
    units = rng.integers(0, 4, k)
    tables = []
    for pad_n in (0, 2):  # padded counts: a row at a time; unpadded: one flat loop per slot
        padded = np.full((k + 1, gap + 1, r_max + 2, n_max + 1 + pad_n), np.nan)
        floor_table(lam, avail, units, gap, r_max + 1, n_max + 1, padded)
        assert np.isnan(padded[:, gap:]).all() and np.isnan(padded[:, :, r_max + 1:]).all()
        assert np.isnan(padded[:, :, :, n_max + 1:]).all()
        tables.append(padded[:, :gap, :r_max + 1, :n_max + 1])
    np.testing.assert_array_equal(tables[0], tables[1])
    table = tables[0]
    rows_only = np.full((k + 1, gap, r_max + 1, n_max + 1), np.nan)  # the rows floor_rows leaves alone stay NaN
    floor_rows(lam, avail, units, gap, r_max + 1, n_max + 1, rows_only)
    for s, d in itertools.product(range(k + 1), range(gap)):
        for need, most in itertools.product(range(r_max + 1), range(n_max + 1)):
            assert floor_at(rows_only, s, d, need, most, gap) == table[s, d, need, most]
    for d0 in range(gap):
        for need in range(r_max + 1):
            for most in range(n_max + 1):
                best = -math.inf
                for take in itertools.product((0, 1), repeat=k):
                    slots = [s for s in range(k) if take[s]]
                    if any(not avail[s] for s in slots) or len(slots) > most or sum(units[slots]) < need:
                        continue
                    if slots and slots[0] + d0 + 1 < gap:
                        continue
                    if any(b - a < gap for a, b in zip(slots, slots[1:])):
                        continue
                    best = max(best, sum(lam[s] for s in slots))
                assert table[0, d0, need, most] == pytest.approx(best)
                if best > -math.inf:
                    take = np.zeros(k)
                    floor_path(table, lam, avail, units, gap, d0, need, most, take)
                    assert lam[take > 0].sum() == pytest.approx(best)
                    take_rows = np.zeros(k)
                    floor_path(rows_only, lam, avail, units, gap, d0, need, most, take_rows)
                    np.testing.assert_array_equal(take_rows, take)
                    assert take.sum() <= most and units[take > 0].sum() >= need


def test_floor_units_keep_every_plan_that_meets_the_floor():
    rng = np.random.default_rng(8)
    for _ in range(200):
        pv = rng.uniform(0.0, 1.0, 9)
        lo = float(rng.uniform(0.3, 3.0))
        fl = new_floor_sacks(pv, np.array([lo]), np.array([9]), [0], [int(rng.integers(2, 600))], np.ones(2, int),
                             np.ones(2, int), np.ones((1, 9), bool), 9, 1)
        used = float(rng.uniform(0.0, lo))
        for take in itertools.combinations(range(9), 3):
            if used + pv[list(take)].sum() >= lo:
                left = need_left(fl.lo[0], fl.delta[0], fl.need[0], used)
                assert fl.units[0, list(take)].sum() >= left >= 0


def test_units_keep_every_plan_that_keeps_the_cap():
    rng = np.random.default_rng(3)
    for _ in range(200):
        pv = rng.uniform(0.01, 1.0, 9)
        hi = float(rng.uniform(0.3, 3.0))
        res = pv_resources(pv, np.array([hi]), [0], [int(rng.integers(2, 300))])
        used = float(rng.uniform(0.0, hi))
        for take in itertools.combinations(range(9), 3):
            if used + pv[list(take)].sum() <= hi:
                assert res.units[0, list(take)].sum() <= left_units(res, 0, used)


def relaxation(p):
    ar = p.arrays
    margin = 1e-12 * (abs(ar.pv_denominator) + 1.0)
    n_of = np.bincount(ar.types, minlength=ar.n_types)
    vmask = np.where(ar.allowed & (ar.max_count > 0)[ar.types][:, None], ar.values, -np.inf)
    rows = new_rows(vmask, ar.types, ar.pv, ar.share_hi + margin, ar.share_lo - margin, ar.max_count.astype(float),
                    ar.share_hi < ar.pv.sum(), ar.share_lo > 0, ar.max_count < n_of)
    return ar, rows, gap_states(ar.min_gap, ar.init_dist, ar.n_types)


def split_of(p, ar, rows, prices, plain):
    capped = [t for t in range(ar.n_types) if rows.hi[t] > 0]
    res = pv_resources(ar.pv, rows.hi, capped, [64] * len(capped))
    avail = avail_by_type(ar, rows)
    kn = new_split_tables(res, ar.min_gap, ar.init_dist, avail, ar.n_slots)
    lam = np.where(res.of_type[:, None] >= 0, prices.alpha[:, None] * ar.pv[None, :], 0.0)
    return res, kn, lam


def avail_by_type(ar, rows):
    """``(T, K)``: whether a card of each type may take each slot."""
    return np.array([np.isfinite(rows.vmask[ar.types == t]).any(axis=0) for t in range(ar.n_types)])


def solvable_cases(seed, count, k, keep=None):
    """``count`` random feasible problems (5 cards, ``k`` slots, 2 types), each as ``(rng, p, opt, ar, rows, g)``.

    ``opt`` is the brute-force optimum; ``keep(ar, rows)`` can skip cases. The same ``rng`` is yielded, so that a
    test's own draws between cases follow the cases' draws.
    """
    rng = np.random.default_rng(seed)
    found = 0
    while found < count:
        p = random_problem(rng, n=5, k=k, t_count=2)
        opt = brute_force(p).optimum
        if opt == -math.inf:
            continue
        ar, rows, g = relaxation(p)
        if keep is not None and not keep(ar, rows):
            continue
        found += 1
        yield rng, p, opt, ar, rows, g


def test_plain_and_split_bounds_hold_for_any_prices():
    """Random non-negative prices: both relaxations stay above the brute-force optimum; at equal prices the split
    one is never above the plain one."""
    for rng, p, opt, ar, rows, g in solvable_cases(11, 40, k=7):
        plain = no_resources(ar.n_types, ar.n_slots)
        prices = new_prices(ar.n_cards, ar.n_types)
        for x in prices:
            x[:] = rng.exponential(0.5, x.shape)
        H, choice = new_tables(ar.n_slots, g.n_states, 1)
        r = np.empty((ar.n_types, ar.n_slots))
        arg = np.empty((ar.n_types, ar.n_slots), dtype=np.int64)
        b_plain = dual_bound(rows, prices, g.trans, plain, r, arg, H, choice)
        assert b_plain >= opt - 1e-9
        res, kn, lam = split_of(p, ar, rows, prices, plain)
        b_split = split_bound(rows, g.trans, plain, res, kn, prices, lam, r, arg, H, choice)
        # units round each slot's PV down by less than one unit: at most K units' worth of price more
        slack = sum(prices.alpha[t] * ar.n_slots * res.delta[res.of_type[t]] for t in range(ar.n_types)
                    if res.of_type[t] >= 0)
        assert opt - 1e-9 <= b_split <= b_plain + slack + 1e-9
        lam += rng.normal(0.0, 0.3, lam.shape)  # any lam is valid
        assert split_bound(rows, g.trans, plain, res, kn, prices, lam, r, arg, H, choice) >= opt - 1e-9


def test_split_bound_with_floor_knapsacks_holds_for_any_prices():
    """Floored types' floor and count rows moved to their knapsacks: valid for random prices and any lam; at the
    plain prices (lam = gamma - beta * pv) within the rounding of the floor's units of the plain bound."""
    def floored_types(ar, rows):
        return [t for t in range(ar.n_types) if rows.lo[t] > 0 or rows.use_gamma[t]]

    for rng, _p, opt, ar, rows, g in solvable_cases(13, 40, k=7, keep=floored_types):
        floored = floored_types(ar, rows)
        plain = no_resources(ar.n_types, ar.n_slots)
        prices = new_prices(ar.n_cards, ar.n_types)
        for x in prices:
            x[:] = rng.exponential(0.5, x.shape)
        prices.alpha[:] = 0.0
        H, choice = new_tables(ar.n_slots, g.n_states, 1)
        r = np.empty((ar.n_types, ar.n_slots))
        arg = np.empty((ar.n_types, ar.n_slots), dtype=np.int64)
        b_plain = dual_bound(rows, prices, g.trans, plain, r, arg, H, choice)
        n_of = np.bincount(ar.types, minlength=ar.n_types)
        cards = np.minimum(ar.max_count, n_of)
        avail = avail_by_type(ar, rows)
        fl = new_floor_sacks(ar.pv, rows.lo, cards, floored, [256] * len(floored), ar.min_gap, ar.init_dist, avail,
                             ar.n_slots, ar.n_types)
        kn = new_split_tables(plain, ar.min_gap, ar.init_dist, avail, ar.n_slots, fl)
        moved = fl.of_type >= 0
        lam = np.zeros((ar.n_types, ar.n_slots))
        lam[moved] = prices.gamma[moved, None] - prices.beta[moved, None] * ar.pv[None, :]
        split_prices = new_prices(ar.n_cards, ar.n_types)
        split_prices.mu[:] = prices.mu
        split_prices.beta[:] = np.where(moved, 0.0, prices.beta)
        split_prices.gamma[:] = np.where(moved, 0.0, prices.gamma)
        b = split_bound(rows, g.trans, plain, plain, kn, split_prices, lam, r, arg, H, choice)
        slack = sum(prices.beta[t] * cards[t] * fl.delta[fl.of_type[t]] for t in floored)  # units round PV up
        assert opt - 1e-9 <= b <= b_plain + slack + 1e-9
        lam += rng.normal(0.0, 0.5, lam.shape)
        assert split_bound(rows, g.trans, plain, plain, kn, split_prices, lam, r, arg, H, choice) >= opt - 1e-9


def test_step_control_keeps_the_best_halves_on_stalls_and_aims_at_the_plan():
    """The one step control of both subgradient loops (plain and split prices)."""
    steps = Steps(math.inf, 1.0, 0, 1.0)
    steps, improved = record_step(steps, 10.0, 2, 1.0)
    assert improved and steps.best == 10.0 and steps.size == 10.0 and steps.stall == 0
    steps, improved = record_step(steps, 11.0, 2, 1.0)  # worse: a stall
    assert not improved and steps.best == 10.0 and steps.stall == 1 and steps.theta == 1.0
    steps, improved = record_step(steps, 10.0, 2, 1.0)  # not better either: the second stall halves the step
    assert not improved and steps.theta == 0.5 and steps.stall == 0
    # Polyak: theta * (bound - target) / norm, aimed at the plan, else 5 % below the best bound
    assert step_length(steps, 12.0, 8.0, 2.0) == pytest.approx(0.5 * 4.0 / 2.0)
    assert step_length(steps, 12.0, -math.inf, 2.0) == pytest.approx(0.5 * (12.0 - 9.5) / 2.0)
    assert step_length(steps, 9.0, 9.5, 1.0) == pytest.approx(0.5 * (9.0 - 9.9))  # target above: 1 % below
    assert not steps_done(steps, 9.0, 1.0) and steps_done(steps, 10.0 - 1e-12, 1.0)  # the bound meets the plan
    assert steps_done(Steps(10.0, 5e-4, 0, 10.0), -math.inf, 1.0)  # the steps have shrunk away


def test_subgradient_steps_only_lower_the_bounds_and_keep_them_valid():
    for _rng, p, opt, ar, rows, g in solvable_cases(5, 25, k=8):
        plain = no_resources(ar.n_types, ar.n_slots)
        prices = new_prices(ar.n_cards, ar.n_types)
        H, choice = new_tables(ar.n_slots, g.n_states, 1)
        b0, _ = improve_prices(rows, g.trans, plain, prices, -np.inf, 1, math.inf, 1e-3, H, choice, 8, 0.6)
        b1, _ = improve_prices(rows, g.trans, plain, prices, opt, 100, math.inf, 1e-3, H, choice, 8, 0.6)
        assert opt - 1e-9 <= b1 <= b0 + 1e-12
        res, kn, lam = split_of(p, ar, rows, prices, plain)
        prices.alpha[:] = 0.0
        b2, _ = improve_split(rows, g.trans, plain, res, kn, prices, lam, opt, 100, math.inf, 1e-3, H, choice, 8, 0.6)
        assert b2 >= opt - 1e-9


def test_new_rows_gives_every_caller_the_same_array_types():
    """Read-only, strided or differently typed inputs are copied into the one type the kernels are compiled for;
    arrays that already have it are passed through (no copy per solve)."""
    vmask = np.zeros((3, 4))
    types = np.array([0, 1, 1])
    types.setflags(write=False)
    pv = np.ones(8)[::2]
    flags = np.array([True, False])
    rows = new_rows(vmask, types, pv, [1, 2], np.zeros(2, dtype=np.float32), np.array([1, 2]), flags, flags, flags)
    assert [a.dtype for a in rows] == [np.float64, np.int64] + [np.float64] * 4 + [np.bool_] * 3
    assert all(a.flags.writeable and a.flags.c_contiguous for a in rows)
    assert rows.vmask is vmask and rows.use_alpha is flags
    assert rows.types is not types and rows.types.tolist() == [0, 1, 1] and rows.pv.tolist() == [1.0] * 4


@pytest.mark.parametrize("n_types,n_slots", [(1, 1), (3, 12), (5, 50)])
def test_no_floor_sacks_is_new_floor_sacks_for_none(n_types, n_slots):
    """The direct build of "no floored type" equals :func:`new_floor_sacks` with nothing tracked, field by
    field (values, shapes and dtypes: the kernels are compiled for those types)."""
    ref = new_floor_sacks(np.zeros(n_slots), np.zeros(n_types), np.zeros(n_types, dtype=np.int64), [], [],
                          np.ones(n_types + 1, dtype=np.int64), np.ones(n_types + 1, dtype=np.int64),
                          np.zeros((n_types, n_slots), dtype=bool), n_slots, n_types)
    got = no_floor_sacks(n_types, n_slots)
    assert got._fields == ref._fields
    for name, a, b in zip(ref._fields, ref, got):
        assert a.dtype == b.dtype and a.shape == b.shape, name
        np.testing.assert_array_equal(a, b, err_msg=name)
