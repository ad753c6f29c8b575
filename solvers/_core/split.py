"""The split relaxation: the gap DP and one knapsack per capped type, linked by type-slot prices.

Plain Lagrangian relaxation prices a share cap per unit of PV, and pays for
fractions of a card where the cap admits only a few: the bound then sits well
above the optimum. Here every capped type ``t`` gets a copy ``y[t, s]`` of "a
type-t card at slot s" that must keep the cap integrally (a knapsack with the
type's own gap, :mod:`solvers._core.knapsack`), and prices ``lam[t, s]`` on
``x = y`` link the copy to the gap DP (:mod:`solvers._core.dp`), which drops
the cap. For any ``lam``, card prices ``mu >= 0``, floor prices ``beta >= 0`` and
count prices ``gamma >= 0``:

    bound = H[0, 0] + sum(mu) + sum_t (gamma[t] m[t] - beta[t] lo[t]) + sum_t KN_t[0, d0_t, q0_t]

with ``H`` the DP of ``max_c (v[c, s] - mu[c]) + beta[t] pv[s] - gamma[t] - lam[t, s]``.
With ``lam[t, s] = alpha[t] pv[s]`` it is never above the plain bound, and the
subgradient steps (:func:`improve_split`) move every price at once.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from solvers._clock import now
from solvers._core.dp import backward_dp, best_reduced
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
from solvers._core.prices import Prices, Steps, copy_into, record_step, step_length, step_prices, steps_done

__all__ = ["FloorSacks", "SplitTables", "SplitView", "new_floor_sacks", "need_left", "new_split_tables", "split_reduced",
           "split_bound", "improve_split"]

NEG = -np.inf



class FloorSacks(NamedTuple):
    """The knapsacks of the floored types (F of them): share floor and count cap kept integral.

    Such a type's floor and count rows leave the DP (their prices are zero
    there) for its knapsack (:func:`~solvers._core.knapsack.floor_table`),
    linked like the caps' by ``lam[t, s]``.
    """

    of_type: np.ndarray  #: (T,) int64: the knapsack of type t, or -1
    gap: np.ndarray  #: (F,) int64: the type's own gap
    d0: np.ndarray  #: (F,) int64: distance - 1 to its last card before slot 0
    avail: np.ndarray  #: (F, K) bool
    units: np.ndarray  #: (F, K) int64: each slot's PV in units, rounded up
    delta: np.ndarray  #: (F,) float64: PV of one unit
    lo: np.ndarray  #: (F,) float64: the PV floor (the relaxation's lowered one)
    need: np.ndarray  #: (F,) int64: units the floor needs from slot 0
    count: np.ndarray  #: (F,) int64: most cards of the type
    tables: np.ndarray  #: (F, K + 1, max gap, max need + 1, max count + 1) float64
    take: np.ndarray  #: (F, K) float64: scratch, the slots a knapsack takes


_SLACK = 1e-9  # relative: units grow and the need shrinks by this much, past rounding


def new_floor_sacks(pv, lo, count, tracked, levels, min_gap, init_dist, avail_by_type, n_slots: int,
                    n_types: int) -> FloorSacks:
    """Knapsacks of the types ``tracked``: floor ``lo[t]`` in ``levels[j]`` units (0: no floor), ``count[t]`` cards."""
    f = len(tracked)
    of_type = np.full(n_types, -1, dtype=np.int64)
    units = np.zeros((f, n_slots), dtype=np.int64)
    delta = np.ones(f)
    los = np.zeros(f)
    need = np.zeros(f, dtype=np.int64)
    for j, (t, q) in enumerate(zip(tracked, levels)):
        of_type[t] = j
        los[j] = lo[t]
        if q > 0 and lo[t] > 0.0:
            delta[j] = lo[t] / q
            units[j] = np.ceil(pv / delta[j] * (1.0 + _SLACK)).astype(np.int64)
            need[j] = need_left(lo[t], delta[j], q, 0.0)
    gap = np.array([min_gap[t] for t in tracked], dtype=np.int64)
    cnt = np.array([count[t] for t in tracked], dtype=np.int64)
    g_max = int(gap.max()) if f else 1
    tables = np.zeros((f, n_slots + 1, g_max, int(need.max()) + 1 if f else 1, int(cnt.max()) + 1 if f else 1))
    return FloorSacks(of_type, gap, np.array([init_dist[t] - 1 for t in tracked], dtype=np.int64),
                      np.array([avail_by_type[t] for t in tracked], dtype=bool).reshape(f, n_slots), units, delta,
                      los, need, cnt, tables, np.zeros((f, n_slots)))


def no_floor_sacks(n_types: int, n_slots: int) -> FloorSacks:
    """No floored type: what :func:`new_floor_sacks` builds for none, built directly (every solve builds one)."""
    return FloorSacks(np.full(n_types, -1, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64),
                      np.zeros((0, n_slots), dtype=bool), np.zeros((0, n_slots), dtype=np.int64), np.ones(0),
                      np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64),
                      np.zeros((0, n_slots + 1, 1, 1, 1)), np.zeros((0, n_slots)))


@njit(cache=True)
def need_left(lo, delta, most, pv_used):
    """Units (of ``delta`` PV) a floor ``lo`` still needs with ``pv_used`` PV placed: rounded down, in [0, most]."""
    x = (lo - pv_used) / delta
    r = np.floor(x * (1.0 - _SLACK) - _SLACK) if x > 0.0 else 0.0
    if r <= 0.0:
        return 0
    return most if r > most else np.int64(r)


class SplitTables(NamedTuple):
    """The knapsacks of the capped types (R of them, resource ``j`` of :class:`~solvers._core.resources.Resources`)."""

    gap: np.ndarray  #: (R,) int64: the type's own gap
    d0: np.ndarray  #: (R,) int64: distance - 1 to its last card before slot 0
    avail: np.ndarray  #: (R, K) bool: some card of the type may stand at the slot
    tables: np.ndarray  #: (R, K + 1, max gap, max Q + 1) float64: KN of each type (padded; read by knapsack_at)
    take: np.ndarray  #: (R, K) float64: scratch, the slots a knapsack takes
    floors: FloorSacks  #: the floored types' knapsacks


def new_split_tables(res, min_gap, init_dist, avail_by_type, n_slots: int, floors=None) -> SplitTables:
    """Work arrays of the knapsacks of the types ``res`` tracks."""
    tracked = [t for t in range(res.of_type.shape[0]) if res.of_type[t] >= 0]
    tracked.sort(key=lambda t: res.of_type[t])
    gap = np.array([min_gap[t] for t in tracked], dtype=np.int64)
    d0 = np.array([init_dist[t] - 1 for t in tracked], dtype=np.int64)
    avail = np.array([avail_by_type[t] for t in tracked], dtype=bool).reshape(len(tracked), n_slots)
    g_max = int(gap.max()) if gap.size else 1
    q_max = int(res.cap.max()) if res.cap.size else 0
    tables = np.zeros((len(tracked), n_slots + 1, g_max, q_max + 1))
    if floors is None:
        floors = no_floor_sacks(res.of_type.shape[0], n_slots)
    if np.any((floors.of_type >= 0) & (res.of_type >= 0)):
        raise ValueError("a type may have a cap knapsack or a floor knapsack, not both (one price links each)")
    return SplitTables(gap, d0, avail, tables, np.zeros((len(tracked), n_slots)), floors)


@njit(cache=True)
def split_reduced(rows, prices, lam, res, r, arg):
    """``r[t, s]`` of the split DP: ``max_c (v - mu) + beta[t] pv[s] - gamma[t] - lam[t, s]``."""
    best_reduced(rows.vmask, rows.types, prices.mu, -prices.beta, prices.gamma, rows.pv, r, arg)
    for t in range(r.shape[0]):
        for s in range(r.shape[1]):
            if r[t, s] != NEG:
                r[t, s] -= lam[t, s]  # zero where no knapsack tracks the type


def split_bound(rows, trans, plain, res, kn, prices, lam, r, arg, H, choice, full: bool = True) -> float:
    """The split relaxation's value; fills the DP tables, the knapsack tables ``kn.tables`` (every row;
    with ``full`` False only the rows :func:`~solvers._core.knapsack.knapsack_at` reads, for readers that
    read through it) and the floor knapsacks' (every row)."""
    # (Plain Python: a compiled wrapper would be one more compile of the whole split relaxation, ~1.5 s.)
    return _split_bound(rows, trans, plain, res, kn, prices, lam, r, arg, H, choice, np.bool_(full), np.bool_(True))


@njit(cache=True)
def _split_bound(rows, trans, plain, res, kn, prices, lam, r, arg, H, choice, full, floors_full):
    """:func:`split_bound`; with ``full`` False the cap knapsacks get only the rows :func:`knapsack_at` reads
    (:func:`~solvers._core.knapsack.knapsack_rows`: the subgradient steps' own tables), with ``floors_full``
    False the floor knapsacks only those :func:`~solvers._core.knapsack.floor_at` reads."""
    split_reduced(rows, prices, lam, res, r, arg)
    backward_dp(r, trans, plain, H, choice)
    bound = H[0, 0, 0] + prices.mu.sum()
    for t in range(r.shape[0]):
        bound += prices.gamma[t] * rows.count[t] - prices.beta[t] * rows.lo[t]
        j = res.of_type[t]
        if j >= 0:
            g = kn.gap[j]
            table = kn.tables[j]  # C order (a slice to (gap, cap + 1) would be strided: 3.5x slower knapsacks)
            if full:
                knapsack_table(lam[t], kn.avail[j], res.units[j], g, res.cap[j] + 1, table)
            else:
                knapsack_rows(lam[t], kn.avail[j], res.units[j], g, res.cap[j] + 1, table)
            bound += knapsack_at(table, 0, kn.d0[j], res.cap[j], g)
        fl = kn.floors
        j = fl.of_type[t]
        if j >= 0:
            g = fl.gap[j]
            ftab = fl.tables[j]  # C order, as the cap knapsacks' tables
            if floors_full:
                floor_table(lam[t], fl.avail[j], fl.units[j], g, fl.need[j] + 1, fl.count[j] + 1, ftab)
            else:
                floor_rows(lam[t], fl.avail[j], fl.units[j], g, fl.need[j] + 1, fl.count[j] + 1, ftab)
            bound += floor_at(ftab, 0, fl.d0[j], fl.need[j], fl.count[j], g)
    return bound


@njit(cache=True)
def _split_direction(rows, trans, res, kn, prices, lam, arg, choice, d, d_lam, deflect):
    """Deflected, projected subgradient of every price into ``d``/``d_lam``; returns its squared norm."""
    n_types, k = lam.shape
    use = np.zeros(prices.mu.shape[0])
    pv_sum = np.zeros(n_types)
    count = np.zeros(n_types)
    x = np.zeros((n_types, k))
    i = 0
    for s in range(k):
        ch = choice[s, i, 0]
        if ch > 0:
            t = ch - 1
            use[arg[t, s]] += 1.0
            pv_sum[t] += rows.pv[s]
            count[t] += 1.0
            x[t, s] = 1.0
        i = trans[i, ch]
    norm = 0.0
    for c in range(use.shape[0]):
        g = 1.0 - use[c] + deflect * d.mu[c]
        d.mu[c] = 0.0 if prices.mu[c] <= 0.0 and g > 0.0 else g
        norm += d.mu[c] ** 2
    for t in range(n_types):
        gb = ((pv_sum[t] - rows.lo[t]) if rows.use_beta[t] else 0.0) + deflect * d.beta[t]
        gg = ((rows.count[t] - count[t]) if rows.use_gamma[t] else 0.0) + deflect * d.gamma[t]
        d.beta[t] = 0.0 if prices.beta[t] <= 0.0 and gb > 0.0 else gb
        d.gamma[t] = 0.0 if prices.gamma[t] <= 0.0 and gg > 0.0 else gg
        norm += d.beta[t] ** 2 + d.gamma[t] ** 2
        j = res.of_type[t]
        fl = kn.floors
        jf = fl.of_type[t]
        if j >= 0:
            g = kn.gap[j]
            knapsack_path(kn.tables[j], lam[t], kn.avail[j], res.units[j], g, kn.d0[j],
                          res.cap[j], kn.take[j])
            take = kn.take[j]
        elif jf >= 0:
            g = fl.gap[jf]
            floor_path(fl.tables[jf], lam[t], fl.avail[jf],
                       fl.units[jf], g, fl.d0[jf], fl.need[jf], fl.count[jf], fl.take[jf])
            take = fl.take[jf]
        else:
            continue
        for s in range(k):
            d_lam[t, s] = take[s] - x[t, s] + deflect * d_lam[t, s]
            norm += d_lam[t, s] ** 2
    return norm


@njit(cache=True)
def _copy_rows(dst, src):
    """``dst[t, s] = src[t, s]`` (2-D, one shape), without a slice copy's error path (:func:`copy_into`)."""
    for t in range(src.shape[0]):
        copy_into(dst[t], src[t])


@njit(cache=True, nogil=True)
def improve_split(rows, trans, plain, res, kn, prices, lam, lower, iters, deadline, scale, H, choice,
                  stall_limit, deflect):
    """Subgradient steps on the split relaxation from ``prices``/``lam``, aimed at ``lower``.

    Leaves the best prices found in ``prices``/``lam`` and their tables in
    ``H``/``choice``/``kn.tables``; returns ``(best_bound, iterations)``. ``plain``:
    a :class:`~solvers._core.resources.Resources` tracking nothing (the DP's own).
    """
    n_types, k = lam.shape
    r = np.empty((n_types, k))
    arg = np.empty((n_types, k), dtype=np.int64)
    best_mu, best_beta, best_gamma, best_lam = prices.mu.copy(), prices.beta.copy(), prices.gamma.copy(), lam.copy()
    d = Prices(np.zeros_like(prices.mu), np.zeros(n_types), np.zeros(n_types), np.zeros(n_types))
    d_lam = np.zeros_like(lam)
    steps, it = Steps(np.inf, 1.0, 0, scale), 0
    rows_only = np.bool_(False)  # a typed flag, not a literal: one compile of _split_bound (also from Python)
    while it < iters:
        it += 1
        bound = _split_bound(rows, trans, plain, res, kn, prices, lam, r, arg, H, choice, rows_only, rows_only)
        if bound == NEG:  # a floor no plan can meet: nothing is feasible
            steps = Steps(bound, steps.theta, 0, scale)
            copy_into(best_mu, prices.mu)
            _copy_rows(best_lam, lam)
            break
        steps, improved = record_step(steps, bound, stall_limit, scale)
        if improved:
            copy_into(best_mu, prices.mu)
            copy_into(best_beta, prices.beta)
            copy_into(best_gamma, prices.gamma)
            _copy_rows(best_lam, lam)
        if steps_done(steps, lower, scale) or ((it & 15) == 0 and now() > deadline):
            break
        norm = _split_direction(rows, trans, res, kn, prices, lam, arg, choice, d, d_lam, deflect)
        if norm <= 0.0:
            break
        step = step_length(steps, bound, lower, norm)
        step_prices(prices, d, step)  # its alpha and d.alpha stay zero
        lam -= step * d_lam
    copy_into(prices.mu, best_mu)
    copy_into(prices.beta, best_beta)
    copy_into(prices.gamma, best_gamma)
    _copy_rows(lam, best_lam)
    _split_bound(rows, trans, plain, res, kn, prices, lam, r, arg, H, choice, np.bool_(True), np.bool_(True))
    return steps.best, it


class SplitView(NamedTuple):
    """What a node reads of the split relaxation (``on`` False: not built, nothing to read)."""

    on: bool
    H: np.ndarray  #: (K + 1, S): the DP's best suffix from each slot and gap state
    mu: np.ndarray  #: (N,) card prices
    slack: np.ndarray  #: (N, K + 1): how far below its type's best card c stays from slot s on
    beta: np.ndarray  #: (T,) floor prices
    gamma: np.ndarray  #: (T,) count prices
    count: np.ndarray  #: (T,) float64 count caps
    lo: np.ndarray  #: (T,) PV floors
    res: object  #: the tracked caps (:class:`~solvers._core.resources.Resources`)
    tables: np.ndarray  #: (R, K + 1, max gap, max Q + 1): the knapsacks (:class:`SplitTables`; read by knapsack_at)
    floors: FloorSacks  #: the floored types' knapsacks
