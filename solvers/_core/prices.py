"""Lagrange multipliers of the relaxation, improved by deflected subgradient steps.

The relaxed rows: "each card once" (card prices ``mu``), the share caps and
floors (``alpha``, ``beta``, per type, on PV) and the count caps (``gamma``).
For any non-negative multipliers the relaxation's value

    H[0, 0, z0] + sum(mu) + sum_t alpha[t] hi[t] - beta[t] lo[t] + gamma[t] m[t]

is an upper bound of the optimum (:func:`dual_bound`); :func:`improve_prices`
looks for multipliers that make it small (Polyak steps aimed at a known plan's
value, with Camerini-Fratta-Maffioli deflection).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from solvers._clock import now
from solvers._core.dp import backward_dp, best_reduced, walk_path
from solvers._core.resources import code_left

__all__ = ["Rows", "Prices", "Steps", "new_rows", "new_prices", "copy_prices", "copy_into", "dual_bound", "improve_prices", "record_step",
           "steps_done", "step_length", "step_prices"]

NEG = -np.inf



class Rows(NamedTuple):
    """What the relaxed rows read."""

    vmask: np.ndarray  #: (N, K) values, -inf where a card may not stand (or its type may not be placed)
    types: np.ndarray  #: (N,) int64
    pv: np.ndarray  #: (K,) PV weights
    hi: np.ndarray  #: (T,) PV cap of each type (widened past rounding)
    lo: np.ndarray  #: (T,) PV floor of each type (lowered past rounding)
    count: np.ndarray  #: (T,) float64: count cap of each type
    use_alpha: np.ndarray  #: (T,) bool: the cap can bind
    use_beta: np.ndarray  #: (T,) bool: the floor is set
    use_gamma: np.ndarray  #: (T,) bool: the count cap can bind


def new_rows(vmask, types, pv, hi, lo, count, use_alpha, use_beta, use_gamma) -> Rows:
    """A :class:`Rows` whose arrays are C-contiguous, writable and of the dtypes above, copied only where needed.

    Numba types an array by its dtype, layout *and* writability: a read-only
    ``types`` or ``pv`` (``MixProblem.arrays`` are frozen) would compile every kernel
    that takes the rows a second time (about 10 s of a first warm-up). Both solvers
    build their rows here, so that they share one compile of each kernel.
    """
    return Rows(*map(_kernel_array, (vmask, types, pv, hi, lo, count, use_alpha, use_beta, use_gamma), _ROW_DTYPES))


_ROW_DTYPES = tuple(map(np.dtype, (np.float64, np.int64, np.float64, np.float64, np.float64, np.float64, np.bool_,
                                   np.bool_, np.bool_)))


def _kernel_array(a, dtype: np.dtype) -> np.ndarray:
    """``a`` itself when it is a C-contiguous writable ndarray of ``dtype``, else such a copy (~0.4 us;
    ``np.require`` takes ~3 us)."""
    if type(a) is np.ndarray and a.dtype == dtype:
        flags = a.flags
        if flags.writeable and flags.c_contiguous:
            return a
    return np.array(a, dtype=dtype, order="C")


class Prices(NamedTuple):
    """Non-negative multipliers of the relaxed rows."""

    mu: np.ndarray  #: (N,) card prices
    alpha: np.ndarray  #: (T,) share-cap prices (per unit of PV)
    beta: np.ndarray  #: (T,) share-floor prices
    gamma: np.ndarray  #: (T,) count-cap prices


def new_prices(n_cards: int, n_types: int) -> Prices:
    """All multipliers zero."""
    return Prices(np.zeros(n_cards), np.zeros(n_types), np.zeros(n_types), np.zeros(n_types))


@njit(cache=True)
def copy_prices(src, dst):
    """Copy ``src`` into ``dst`` (both :class:`Prices`)."""
    copy_into(dst.mu, src.mu)
    copy_into(dst.alpha, src.alpha)
    copy_into(dst.beta, src.beta)
    copy_into(dst.gamma, src.gamma)


@njit(cache=True)
def copy_into(dst, src):
    """``dst[i] = src[i]`` for two 1-D arrays of one length: ``dst[:] = src`` would compile Numba's
    shape-mismatch error path (string formatting) into every kernel that copies."""
    for i in range(src.shape[0]):
        dst[i] = src[i]


@njit(cache=True)
def dual_bound(rows, prices, trans, res, r, arg, H, choice):
    """The relaxation's value for ``prices``; fills ``r``/``arg`` (:func:`best_reduced`) and ``H``/``choice``."""
    return _dual_bound(rows, prices, trans, res, r, arg, H, choice, code_left(res, np.zeros(rows.hi.shape[0])),
                       np.empty(rows.hi.shape[0]))


@njit(cache=True)
def _dual_bound(rows, prices, trans, res, r, arg, H, choice, z0, price):
    """:func:`dual_bound` from the code ``z0`` of the empty prefix, with ``price`` (T,) as scratch: a
    subgradient step allocates nothing (two small arrays a step were a tenth of a step on ``stress-small``)."""
    for t in range(price.shape[0]):
        price[t] = prices.alpha[t] - prices.beta[t]
    best_reduced(rows.vmask, rows.types, prices.mu, price, prices.gamma, rows.pv, r, arg)
    backward_dp(r, trans, res, H, choice)
    bound = H[0, 0, z0] + prices.mu.sum()
    for t in range(rows.hi.shape[0]):
        bound += prices.alpha[t] * rows.hi[t] - prices.beta[t] * rows.lo[t] + prices.gamma[t] * rows.count[t]
    return bound


@njit(cache=True)
def _project(g, x):
    """A direction component held at zero where the multiplier sits at 0 and the step would push it below."""
    return 0.0 if x <= 0.0 and g > 0.0 else g


@njit(cache=True)
def _direction(rows, prices, use, pv_sum, count, d, deflect):
    """Deflected, projected subgradient of the relaxed rows into ``d``; returns its squared norm.

    ``use``/``pv_sum``/``count``: what the relaxation's path takes (:func:`walk_path`).
    A row's subgradient is its slack along the path (e.g. ``1 - use[c]``).
    """
    norm = 0.0
    for c in range(prices.mu.shape[0]):
        d.mu[c] = _project(1.0 - use[c] + deflect * d.mu[c], prices.mu[c])
        norm += d.mu[c] ** 2
    for t in range(prices.alpha.shape[0]):
        ga = (rows.hi[t] - pv_sum[t]) if rows.use_alpha[t] else 0.0
        gb = (pv_sum[t] - rows.lo[t]) if rows.use_beta[t] else 0.0
        gg = (rows.count[t] - count[t]) if rows.use_gamma[t] else 0.0
        d.alpha[t] = _project(ga + deflect * d.alpha[t], prices.alpha[t])
        d.beta[t] = _project(gb + deflect * d.beta[t], prices.beta[t])
        d.gamma[t] = _project(gg + deflect * d.gamma[t], prices.gamma[t])
        norm += d.alpha[t] ** 2 + d.beta[t] ** 2 + d.gamma[t] ** 2
    return norm


@njit(cache=True)
def _step_down(x, d, step):
    """``x -= step * d`` in place, held at zero or above."""
    for i in range(x.shape[0]):
        v = x[i] - step * d[i]
        x[i] = v if v > 0.0 else 0.0


@njit(cache=True)
def step_prices(prices, d, step):
    """``prices -= step * d``, projected on the non-negative orthant (in place: no work arrays per step)."""
    _step_down(prices.mu, d.mu, step)
    _step_down(prices.alpha, d.alpha, step)
    _step_down(prices.beta, d.beta, step)
    _step_down(prices.gamma, d.gamma, step)


class Steps(NamedTuple):
    """Where a run of subgradient steps stands (:func:`record_step`, :func:`steps_done`, :func:`step_length`)."""

    best: float  #: the least bound seen
    theta: float  #: the step's scale: 1, halved after ``stall_limit`` steps without a better bound
    stall: int  #: steps since the bound last improved
    size: float  #: the magnitude targets are measured in: ``max(|best|, scale)``


@njit(cache=True)
def record_step(steps, bound, stall_limit, scale):
    """``(steps, improved)`` after a step whose relaxation is worth ``bound``."""
    size = max(abs(steps.best) if steps.best < np.inf else abs(bound), scale)
    if bound < steps.best - 1e-12 * size:
        return Steps(bound, steps.theta, 0, size), True
    if steps.stall + 1 >= stall_limit:
        return Steps(steps.best, steps.theta * 0.5, 0, size), False
    return Steps(steps.best, steps.theta, steps.stall + 1, size), False


@njit(cache=True)
def steps_done(steps, lower, scale):
    """Whether to stop: the steps have shrunk away, or the best bound meets ``lower`` (a plan's value)."""
    return steps.theta < 1e-3 or (lower > NEG and steps.best - lower <= 1e-9 * max(abs(lower), scale))


@njit(cache=True)
def step_length(steps, bound, lower, norm):
    """Polyak's step along a direction of squared norm ``norm``, aimed at ``lower`` (else 5 % below the best)."""
    target = lower if lower > NEG else steps.best - 0.05 * steps.size
    if bound - target <= 0.0:
        target = steps.best - 0.01 * steps.size
    return steps.theta * (bound - target) / norm


@njit(cache=True, nogil=True)
def improve_prices(rows, trans, res, prices, lower, iters, deadline, scale, H, choice, stall_limit, deflect):
    """Subgradient steps from ``prices`` aimed at ``lower`` (a plan's value, or -inf).

    Leaves the best multipliers found in ``prices`` and their tables in
    ``H``/``choice``; returns ``(best_bound, iterations)``. ``scale`` (> 0): the
    least magnitude a step's target is measured in (the bound's own when larger),
    so that steps keep their size on problems whose values are tiny or huge.
    """
    n_types, k = rows.hi.shape[0], rows.pv.shape[0]
    r = np.empty((n_types, k))
    arg = np.empty((n_types, k), dtype=np.int64)
    best_prices = Prices(prices.mu.copy(), prices.alpha.copy(), prices.beta.copy(), prices.gamma.copy())
    d = Prices(np.zeros_like(prices.mu), np.zeros(n_types), np.zeros(n_types), np.zeros(n_types))
    use = np.zeros(prices.mu.shape[0])
    pv_sum = np.zeros(n_types)
    count = np.zeros(n_types)
    z0 = code_left(res, np.zeros(n_types))
    price = np.empty(n_types)
    steps, it = Steps(np.inf, 1.0, 0, scale), 0
    while it < iters:
        it += 1
        bound = _dual_bound(rows, prices, trans, res, r, arg, H, choice, z0, price)
        steps, improved = record_step(steps, bound, stall_limit, scale)
        if improved:
            copy_prices(prices, best_prices)
        if steps_done(steps, lower, scale) or ((it & 15) == 0 and now() > deadline):
            break
        walk_path(choice, trans, res, z0, arg, rows.pv, use, pv_sum, count)
        norm = _direction(rows, prices, use, pv_sum, count, d, deflect)
        if norm <= 0.0:
            break  # the path keeps every relaxed row with complementary slackness
        step_prices(prices, d, step_length(steps, bound, lower, norm))
    copy_prices(best_prices, prices)
    _dual_bound(rows, prices, trans, res, r, arg, H, choice, z0, price)
    return steps.best, it
