"""The bound of the branch-and-bound solver (:mod:`solvers.bnb`): Lagrange prices, the split relaxation and
the tables its kernels read.

:class:`Relaxation` holds the prices of the plain relaxation (each card once, share and count rows priced,
dispersion exact in a DP over distance states; :mod:`solvers._core.prices`) and of the split relaxation
(capped types' PV, and on hard instances floored types' PV and count, in knapsacks of their own;
:mod:`solvers._core.split`); :meth:`Relaxation.tables` turns them into the argument bundle ``L`` of
:mod:`solvers._bnb_kernels`. Nothing here is public API.
"""

from __future__ import annotations

import math
from functools import cached_property

import numpy as np

from solvers._core.gaps import gap_states
from solvers._core.prices import new_prices, new_rows
from solvers._core.reach import type_avail
from solvers._core.resources import no_resources, pv_resources
from solvers._core.split import SplitView, new_floor_sacks, new_split_tables, no_floor_sacks

__all__ = ["Relaxation", "slack_table"]

_MAX_PRODUCT = 1 << 20  # distance-code space the bound's DP may index
_MAX_STATES = 5_000  # reachable distance states the bound's DP may track
_MAX_GRID = 8_000_000  # entries of the grid of tables
_GRID_CAP = (0.0, 0.25, 0.5, 0.75, 0.9, 1.15, 1.5, 2.0, 3.0, 5.0)  # share-cap multiplier, relative to the root's
_GRID_ALL_CAPS = (0.5, 0.8, 1.25, 2.0)  # every share cap at once
_GRID_FLOOR = (0.0, 0.5, 1.5, 2.5)
_GRID_COUNT = (0.0, 0.5, 1.5, 2.5)
_DEFLECT = 0.6  # deflection of the subgradient direction (Camerini-Fratta-Maffioli)
_SPLIT_LEVELS = 256  # units of a capped type's PV in its knapsack, while pricing
_SPLIT_FINE = 2048  # ... and in the tables the search reads
_MAX_SPLIT = 4_000_000  # entries of the knapsack tables
_FLOOR_LEVELS = 512  # units of a floored type's PV floor in its knapsack, while pricing
_FLOOR_FINE = 1024  # ... and in the tables the search reads
_MAX_FLOOR = 1_500_000  # entries of one floored type's knapsack table


def slack_table(red: np.ndarray, lay):
    """Per type its best reduced value at each slot, and ``slack[c, s]``: how far below its type's best card
    ``c`` stays from slot ``s`` on (``inf`` at ``s = K``; what :func:`solvers._bnb_node._credit` reads)."""
    from solvers._bnb_node import type_slack

    return type_slack(red, lay.types, lay.card_start, lay.card_list)


class Relaxation:
    """Lagrange multipliers and the DP table of the bound over ``lay`` (:class:`solvers.bnb._Layout`);
    :meth:`tables` is the search's view of them."""

    def __init__(self, lay, deadline: float):
        self.lay, self.deadline = lay, deadline
        self.trans, self.n_states = gap_states(lay.gap, lay.dist0, lay.t_count, max_product=_MAX_PRODUCT,
                                               max_states=_MAX_STATES)
        self.res = no_resources(lay.t_count, lay.k)
        self.rows = new_rows(lay.vmask, lay.types, lay.pv, lay.hi_b, lay.lo_b, lay.mcount_f, lay.use_alpha,
                             lay.use_beta, lay.use_gamma)
        self.prices = new_prices(lay.n, lay.t_count)
        self.H3 = np.empty((lay.k + 1, self.n_states, 1))
        self.choice = np.empty((lay.k + 1, self.n_states, 1), dtype=np.int8)
        self.bound = math.inf
        self.iters = 0
        self.split_iters = 0
        self.floors_on = False  # the split relaxation has floor knapsacks
        self.floors_tried = False
        self.split = SplitView(False, np.zeros((lay.k + 1, self.n_states)), np.zeros(lay.n),
                               np.zeros((lay.n, lay.k + 1)), np.zeros(lay.t_count),
                               np.zeros(lay.t_count), lay.mcount_f, lay.lo_b, self.res, np.zeros((0, 1, 1, 1)),
                               no_floor_sacks(lay.t_count, lay.k))

    @cached_property
    def avail(self) -> np.ndarray:
        """(T, K) bool: a type's cards may stand at the slot (read by the knapsacks only: built on first use)."""
        return type_avail(self.lay.types, self.lay.vmask, self.lay.t_count)

    def improve_split(self, iters: int, lower: float, floors: bool = False) -> None:
        """Build the split relaxation (a knapsack per type whose cap is priced) from the plain prices.

        Its bound is never above the plain one at the start (the prices on
        the knapsacks begin as the share prices) and closes the gap that a
        price on a cap that admits only a few cards leaves. With ``floors``,
        every other type whose floor or count cap is priced gets a knapsack
        too (:class:`~solvers._core.split.FloorSacks`): a floor that a few
        cards must reach. Its PV is rounded up, so it needs fine units to beat
        the plain price (hundreds of levels; dearer, hence only for searches that
        did not finish quickly).
        """
        from solvers._core.split import improve_split, split_bound

        lay, k = self.lay, self.lay.k
        alpha, beta, gamma = self.prices.alpha, self.prices.beta, self.prices.gamma
        capped = [t for t in range(lay.t_count) if alpha[t] > 0.0 and lay.hi_b[t] > 0.0]
        floored = [t for t in range(lay.t_count) if floors and t not in capped and (beta[t] > 0.0 or gamma[t] > 0.0)]
        self.floors_tried = self.floors_tried or floors
        if not (capped or floored) or iters <= 0 or (floors and not floored):
            return
        fine = coarse = 0
        if capped:
            g_max = max(int(lay.gap[t]) for t in capped)
            fine = min(_SPLIT_FINE, _MAX_SPLIT // (len(capped) * (k + 1) * g_max) - 1)
            coarse = min(_SPLIT_LEVELS, fine)
            if coarse < 8:
                capped, fine, coarse = [], 0, 0
        floors = self._floors(floored, _FLOOR_LEVELS) if floored else None
        if not capped and floors is None:
            return
        res = pv_resources(lay.pv, lay.hi_b, capped, [coarse] * len(capped))
        kn = new_split_tables(res, lay.gap, lay.dist0, self.avail, k, floors)
        mu, alpha, beta, gamma = (x.copy() for x in self.prices)
        lam = np.where(res.of_type[:, None] >= 0, alpha[:, None] * lay.pv[None, :], 0.0)
        rows = self.rows
        if floors is not None:  # the floored types' floor and count rows move to their knapsacks
            moved = floors.of_type >= 0
            lam[moved] = gamma[moved, None] - beta[moved, None] * lay.pv[None, :]
            beta[moved] = gamma[moved] = 0.0
            rows = rows._replace(use_beta=rows.use_beta & ~moved, use_gamma=rows.use_gamma & ~moved)
        prices = type(self.prices)(mu, np.zeros(lay.t_count), beta, gamma)
        H = np.empty((k + 1, self.n_states, 1))
        choice = np.empty((k + 1, self.n_states, 1), dtype=np.int8)
        bound, it = improve_split(rows, self.trans, self.res, res, kn, prices, lam, lower, iters, self.deadline,
                                  max(1e-3 * lay.scale, 1e-300), H, choice, 8, _DEFLECT)
        if fine > coarse or floors is not None:  # the search reads knapsacks in finer units: less lost to rounding
            res = pv_resources(lay.pv, lay.hi_b, capped, [max(fine, coarse)] * len(capped))
            floors = self._floors(floored, _FLOOR_FINE) if floors is not None else None
            kn = new_split_tables(res, lay.gap, lay.dist0, self.avail, k, floors)
            r = np.empty((lay.t_count, k))
            arg = np.empty((lay.t_count, k), dtype=np.int64)
            # (The nodes read the cap knapsacks through knapsack_at: their rows d = gap - 1 are enough.)
            bound = min(bound, split_bound(rows, self.trans, self.res, res, kn, prices, lam, r, arg, H, choice,
                                           full=False))
        self.split_iters += it
        self.bound = min(self.bound, bound + lay.tol_abs)  # past the DP's round-off
        with np.errstate(invalid="ignore"):
            _, slack = slack_table(lay.vmask - prices.mu[:, None], lay)
        self.floors_on = self.floors_on or bool(np.any(kn.floors.of_type >= 0))
        self.split = SplitView(True, np.ascontiguousarray(H[:, :, 0]), prices.mu, slack, prices.beta, prices.gamma,
                               lay.mcount_f, lay.lo_b, res, kn.tables, kn.floors)

    def _floors(self, floored, levels):
        """Knapsacks of the ``floored`` types, each floor in ``levels`` units or fewer (None: none fits)."""
        lay, k = self.lay, self.lay.k
        keep, lv = [], []
        for t in floored:
            cards = int(min(lay.kmax[t], k))
            q = levels if lay.lo_b[t] > 0.0 else 0
            while q >= 8 and (k + 1) * int(lay.gap[t]) * (q + 1) * (cards + 1) > _MAX_FLOOR:
                q //= 2
            if (k + 1) * int(lay.gap[t]) * (q + 1) * (cards + 1) <= _MAX_FLOOR:
                keep.append(t)
                lv.append(q)
        if not keep:
            return None
        return new_floor_sacks(lay.pv, lay.lo_b, np.minimum(lay.kmax, k), keep, lv, lay.gap, lay.dist0, self.avail,
                               k, lay.t_count)

    def improve(self, iters: int, lower: float) -> None:
        """Subgradient steps aimed at ``lower`` (a plan's value, or -inf)."""
        from solvers._core.prices import improve_prices

        lay = self.lay
        bound, it = improve_prices(self.rows, self.trans, self.res, self.prices, lower, iters, self.deadline,
                                   max(1e-3 * lay.scale, 1e-300), self.H3, self.choice, 8, _DEFLECT)
        self.bound = min(self.bound, bound + lay.tol_abs)  # past the DP's round-off
        self.iters += it

    def tables(self):
        """``(L, f0)``: reduced values, prices, slacks, the DP table and its grid, and the root's constant."""
        from solvers._bnb_node import grid_tables

        lay = self.lay
        k, types = lay.k, lay.types
        mu, alpha, beta, gamma = (x.copy() for x in self.prices)
        price = alpha - beta
        with np.errstate(invalid="ignore"):
            red = lay.vmask - mu[:, None] - price[types][:, None] * lay.pv[None, :] - gamma[types][:, None]
        rmax, slack = slack_table(red, lay)
        gk, gt, gd = [], [], []
        caps = alpha.tolist()  # (Python floats: the same doubles as numpy's scalars, at a tenth of the cost)
        for kind, mult, facs in ((0, caps, _GRID_CAP), (1, beta.tolist(), _GRID_FLOOR),
                                 (2, gamma.tolist(), _GRID_COUNT)):
            for t, m in enumerate(mult):
                if m > 0:
                    gk += [kind] * len(facs)
                    gt += [t] * len(facs)
                    gd += [m * fac - m for fac in facs]
        if sum(m > 0 for m in caps) > 1:
            gk += [3] * len(_GRID_ALL_CAPS)
            gt += [-1] * len(_GRID_ALL_CAPS)
            gd += [fac - 1.0 for fac in _GRID_ALL_CAPS]
        keep = max(0, _MAX_GRID // ((k + 1) * self.n_states))  # big problems: a smaller grid
        grid = (np.array(gk[:keep], dtype=np.int64), np.array(gt[:keep], dtype=np.int64),
                np.array(gd[:keep], dtype=np.float64))
        Hg = grid_tables(rmax, lay.pv, alpha, self.trans, self.res, *grid)
        f0 = float(mu.sum() + (alpha * lay.hi_b - beta * lay.lo_b + gamma * lay.mcount_f).sum())
        L = ((red, mu, slack, np.ascontiguousarray(self.H3[:, :, 0]), self.trans), alpha, beta, gamma, lay.hi_b,
             lay.lo_b, lay.mcount_f, Hg, *grid, self.split)
        return L, f0
