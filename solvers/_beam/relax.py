"""What the beam ranks by: the relaxation engine's prices, DP table and knapsacks (:mod:`solvers._core`).

:func:`improve` sets Lagrangian prices by subgradient steps on the plain relaxation
(:func:`solvers._core.prices.improve_prices`); :func:`split_ranking` then, when a
share cap is priced, takes steps on the split relaxation
(:func:`solvers._core.split.improve_split`), which keeps
each priced cap as an integral knapsack and so closes the gap a price on a tight
cap leaves. The beam reads the result as a :class:`Ranking`: a state's rank is
its priced value so far plus the relaxation's best completion from its slot, gap
state and the PV units its capped types have left (:func:`solvers._beam.search.completion`).
:func:`floor_reach` builds the min-share look-ahead from the shared reach tables.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from solvers._core.dp import backward_dp, best_reduced
from solvers._core.gaps import gap_states
from solvers._core.prices import Prices, Rows, improve_prices, new_rows
from solvers._core.reach import pv_reach, type_avail
from solvers._core.resources import no_resources, pv_resources
from solvers._core.split import improve_split, new_split_tables

__all__ = ["Ranking", "FloorReach", "Relaxation", "relaxation", "improve", "plain_ranking", "split_ranking", "floor_reach", "MAX_STATES", "SPLIT_LEVELS", "DEFLECT"]

#: Most gap states the DP tracks (rules beyond them are left to the beam, which keeps every gap exactly).
MAX_STATES = 4096
#: Units of a capped type's PV in its knapsack (the split relaxation's resolution).
SPLIT_LEVELS = 32
#: Most entries of the knapsack tables together.
MAX_SPLIT = 400_000
#: Deflection of the subgradient direction (Camerini-Fratta-Maffioli).
DEFLECT = 0.6
#: A price step's stall limit: steps without a better bound before the step halves.
STALL = 8


class Ranking(NamedTuple):
    """Prices and tables of the relaxation (N cards, K slots, T types, S gap states, R capped types)."""

    trans: np.ndarray  #: (S, T + 1) int64: the gap machine (:func:`solvers._core.gaps.gap_states`)
    H: np.ndarray  #: (K + 1, S) float64: the DP's best priced completion from each slot and gap state
    H0: np.ndarray  #: (K + 1, S) float64: the same without floor prices (``H`` itself when none is set)
    mu: np.ndarray  #: (N,) card prices
    alpha: np.ndarray  #: (T,) share-cap price per unit of PV a type's card pays (0 for a knapsack's type)
    beta: np.ndarray  #: (T,) share-floor price per unit of PV, paid up to the floor ``lo`` only
    lo: np.ndarray  #: (T,) the relaxation's PV floor of each type
    gamma: np.ndarray  #: (T,) price per card of a type (count caps)
    kn: np.ndarray  #: (R, K + 1, max gap, max Q + 1): each capped type's knapsack (:mod:`solvers._core.knapsack`)
    kn_of: np.ndarray  #: (T,) int64: the knapsack of type t, or -1 (its cap is not tracked)
    kn_gap: np.ndarray  #: (R,) int64: the type's own gap in its knapsack
    kn_units: np.ndarray  #: (R, K) int64: PV units a type-t card at slot s takes (rounded down)
    kn_cap: np.ndarray  #: (R,) int64: units of the cap at the start
    lam: np.ndarray  #: (T, K): the split's prices on "a type-t card at slot s" (zero in the plain ranking)
    choice: np.ndarray  #: (K + 1, S, 1) int8: the DP's choices (its path: :func:`solvers._beam.plan.path_plan`)


class FloorReach(NamedTuple):
    """The min-share look-ahead: most PV a floored type can still collect (:func:`solvers._core.reach.pv_reach`)."""

    of_type: np.ndarray  #: (T,) int64: the table of type t, or -1 (no floor)
    tables: np.ndarray  #: (F, K + 1, max gap, any-card gap, max cards + 1), padded
    kdim: np.ndarray  #: (F,) int64: cards dimension of each table
    tol: float  #: PV below the floor that still counts as reaching it (rounding)


def _rows(inp, margin: float) -> Rows:
    n_of_type = np.diff(inp.tstart)
    return new_rows(inp.vmask, inp.types, inp.pv, inp.share_hi + margin, inp.share_lo - margin,
                    inp.caps.astype(np.float64), inp.share_hi < inp.pv.sum(), inp.share_lo > 0.0, inp.caps < n_of_type)


class Relaxation(NamedTuple):
    """The plain relaxation's fixed parts and its work tables (:mod:`solvers._core.prices`)."""

    trans: np.ndarray  #: (S, T + 1) int64: the gap machine
    rows: Rows  #: the relaxed rows
    plain: object  #: no tracked resource (:func:`~solvers._core.resources.no_resources`)
    scale: float  #: least magnitude a step's target is measured in
    H: np.ndarray  #: (K + 1, S, 1): the DP's table of the last prices priced
    choice: np.ndarray  #: (K + 1, S, 1) int8


def relaxation(inp, margin: float) -> Relaxation:
    """The plain relaxation of ``inp``; share rows widened by ``margin`` (PV) against rounding."""
    t_count, k, n = inp.caps.shape[0], inp.pv.shape[0], inp.types.shape[0]
    trans, n_states = gap_states(inp.gap, inp.dist0, t_count, max_states=MAX_STATES)
    finite = np.where(np.isfinite(inp.vmask), np.abs(inp.values), 0.0)
    scale = max(1e-3 * float(finite.max(axis=0).sum()) if n else 0.0, 1e-300)
    return Relaxation(trans, _rows(inp, margin), no_resources(t_count, k), scale, np.empty((k + 1, n_states, 1)),
                      np.empty((k + 1, n_states, 1), dtype=np.int8))


def improve(rel: Relaxation, prices: Prices, iters: int, lower: float, deadline: float):
    """``(bound, iterations)`` of subgradient steps on the plain relaxation from ``prices`` (changed in place),
    aimed at ``lower`` (a plan's value, or -inf); the DP's table of the best prices is left in ``rel.H``."""
    if iters <= 0:
        t_count, k = prices.alpha.shape[0], rel.H.shape[0] - 1
        r = np.empty((t_count, k))
        best_reduced(rel.rows.vmask, rel.rows.types, prices.mu, prices.alpha - prices.beta, prices.gamma,
                     rel.rows.pv, r, np.empty((t_count, k), dtype=np.int64))
        backward_dp(r, rel.trans, rel.plain, rel.H, rel.choice)
        return np.inf, 0
    return improve_prices(rel.rows, rel.trans, rel.plain, prices, lower, iters, deadline, rel.scale, rel.H,
                          rel.choice, STALL, DEFLECT)


def plain_ranking(rel: Relaxation, prices: Prices) -> Ranking:
    """The :class:`Ranking` of the plain relaxation at ``prices`` (the last ones :func:`improve` left)."""
    t_count, k = prices.alpha.shape[0], rel.H.shape[0] - 1
    none = np.zeros(0, dtype=np.int64)
    H = np.ascontiguousarray(rel.H[:, :, 0])
    return Ranking(rel.trans, H, _floorless(rel, prices, np.zeros((t_count, k)), H), prices.mu.copy(), prices.alpha.copy(),
                   prices.beta.copy(), rel.rows.lo, prices.gamma.copy(), np.zeros((0, 1, 1, 1)),
                   np.full(t_count, -1, dtype=np.int64), none, np.zeros((0, k), dtype=np.int64), none,
                   np.zeros((t_count, k)), rel.choice.copy())


def _floorless(rel: Relaxation, prices: Prices, lam: np.ndarray, H: np.ndarray) -> np.ndarray:
    """The DP's table at ``prices`` (and type-slot prices ``lam``) with the floor prices left out; ``H`` (the
    table with them) when no floor is priced."""
    if not np.any(prices.beta > 0.0):
        return H
    t_count, k = lam.shape
    r = np.empty((t_count, k))
    best_reduced(rel.rows.vmask, rel.rows.types, prices.mu, prices.alpha, prices.gamma, rel.rows.pv, r,
                 np.empty((t_count, k), dtype=np.int64))
    r -= np.where(np.isfinite(r), lam, 0.0)
    H0, choice = np.empty_like(rel.H), np.empty_like(rel.choice)
    backward_dp(r, rel.trans, rel.plain, H0, choice)
    return np.ascontiguousarray(H0[:, :, 0])


def split_ranking(inp, rel: Relaxation, prices: Prices, iters: int, lower: float, deadline: float):
    """``(Ranking, bound, iterations)`` of the split relaxation after ``iters`` steps from the plain ``prices``.

    Every type whose share cap is priced keeps it as an integral knapsack of
    ``SPLIT_LEVELS`` units. ``(None, inf, 0)`` when no cap is priced (the plain
    ranking is then the split one) or the tables would be too large.
    """
    t_count, k = inp.caps.shape[0], inp.pv.shape[0]
    capped = [t for t in range(t_count) if prices.alpha[t] > 0.0 and rel.rows.hi[t] > 0.0]
    if iters <= 0 or not capped:
        return None, np.inf, 0
    g_max = max(int(inp.gap[t]) for t in capped)
    levels = min(SPLIT_LEVELS, MAX_SPLIT // (len(capped) * (k + 1) * g_max) - 1)
    if levels < 4:
        return None, np.inf, 0
    res = pv_resources(inp.pv, rel.rows.hi, capped, [levels] * len(capped))
    kn = new_split_tables(res, inp.gap, inp.dist0, type_avail(inp.types, inp.vmask, t_count), k)
    lam = np.where(res.of_type[:, None] >= 0, prices.alpha[:, None] * inp.pv[None, :], 0.0)
    split = Prices(prices.mu.copy(), np.zeros(t_count), prices.beta.copy(), prices.gamma.copy())
    H, choice = np.empty_like(rel.H), np.empty_like(rel.choice)
    bound, it = improve_split(rel.rows, rel.trans, rel.plain, res, kn, split, lam, lower, iters, deadline, rel.scale,
                              H, choice, STALL, DEFLECT)
    H = np.ascontiguousarray(H[:, :, 0])
    rk = Ranking(rel.trans, H, _floorless(rel, split, lam, H), split.mu, split.alpha, split.beta, rel.rows.lo,
                 split.gamma, kn.tables, res.of_type, kn.gap, res.units, res.cap, lam, choice)
    return rk, bound, it


def floor_reach(inp) -> FloorReach:
    """The look-ahead tables of the types with a share floor."""
    t_count, k = inp.caps.shape[0], inp.pv.shape[0]
    floored = [t for t in range(t_count) if inp.share_lo[t] > 0.0]
    of_type = np.full(t_count, -1, dtype=np.int64)
    g_any = int(inp.gap[t_count])
    avail = type_avail(inp.types, inp.vmask, t_count) if floored else None  # (~10 us: only where it is read)
    parts = []
    for j, t in enumerate(floored):
        of_type[t] = j
        kdim = min(max(int(inp.caps[t]), 1), k) + 1  # (kdim 1 would mean "no count limit")
        parts.append(pv_reach(inp.pv, avail[t], int(inp.gap[t]), g_any, kdim))
    g_max = max([p.shape[1] for p in parts], default=1)
    kd_max = max([p.shape[3] for p in parts], default=1)
    tables = np.zeros((len(parts), k + 1, g_max, g_any, kd_max))
    for j, p in enumerate(parts):
        tables[j, :, :p.shape[1], :, :p.shape[3]] = p
    kdim = np.array([p.shape[3] for p in parts], dtype=np.int64)
    return FloorReach(of_type, tables, kdim, 1e-9 * (1.0 + float(inp.pv.sum())))
