"""The arrays the beam's kernels and the local search (:mod:`solvers._core.local`, which bnb runs too) read,
derived once per solve from ``problem.arrays``."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

__all__ = ["BeamInput", "beam_input", "types_feasible"]


class BeamInput(NamedTuple):
    """One problem as the beam's kernels read it (N cards, K slots, T types)."""

    values: np.ndarray  #: (N, K) float64
    vmask: np.ndarray  #: (N, K) float64: the value where the card may stand (and its type may be placed), else -inf
    types: np.ndarray  #: (N,) int64
    pv: np.ndarray  #: (K,) float64
    gap: np.ndarray  #: (T + 1,) int64: min gap of each type, then of any card
    dist0: np.ndarray  #: (T + 1,) int64: distance to the last card before slot 0
    caps: np.ndarray  #: (T,) int64: most cards of each type, min(max_count, cards of the type)
    share_lo: np.ndarray  #: (T,) float64: least PV of each type (compared as the plan check does)
    share_hi: np.ndarray  #: (T,) float64: most PV of each type
    shown: np.ndarray  #: (T,) float64: history's PV of each type (added on both sides of a share test)
    tcards: np.ndarray  #: (N,) int64: cards grouped by type (stable)
    tstart: np.ndarray  #: (T + 1,) int64: type t's cards are ``tcards[tstart[t]:tstart[t + 1]]``


def beam_input(arrays) -> BeamInput:
    """The :class:`BeamInput` of a problem's :class:`~mixrank.arrays.ProblemArrays`."""
    t_count = arrays.n_types
    types = np.asarray(arrays.types, dtype=np.int64)
    n_of_type = np.bincount(types, minlength=t_count).astype(np.int64)
    caps = np.minimum(arrays.max_count.astype(np.int64), n_of_type)
    allowed = arrays.allowed & (caps > 0)[types][:, None]
    vmask = np.where(allowed, arrays.values, -np.inf)
    tcards = np.argsort(types, kind="stable").astype(np.int64)
    tstart = np.zeros(t_count + 1, dtype=np.int64)
    tstart[1:] = np.cumsum(n_of_type)
    return BeamInput(np.array(arrays.values, dtype=np.float64), vmask, types.copy(), np.array(arrays.pv, dtype=np.float64),
                     arrays.min_gap.astype(np.int64), arrays.init_dist.astype(np.int64), caps,
                     np.array(arrays.share_lo, dtype=np.float64), np.array(arrays.share_hi, dtype=np.float64),
                     np.array(arrays.pv_shown, dtype=np.float64), tcards, tstart)


@njit(cache=True)
def types_feasible(inp, ptype):
    """Whether a plan that puts a type-``ptype[s]`` card (-1: organic) at each slot keeps gaps, shares and counts.

    The comparisons are the plan check's (:func:`mixrank._fastcheck._check_plan`):
    PV summed slot by slot from 0.0, ``shown`` added on both sides of a share test.
    Which cards stand there (and whether they are allowed) is the matching's concern.
    """
    t_count = inp.caps.shape[0]
    last = -inp.dist0.copy()
    pv_used = np.zeros(t_count)
    counts = np.zeros(t_count, dtype=np.int64)
    for s in range(ptype.shape[0]):
        t = ptype[s]
        if t < 0:
            continue
        if s - last[t] < inp.gap[t] or s - last[t_count] < inp.gap[t_count]:
            return False
        last[t] = s
        last[t_count] = s
        pv_used[t] += inp.pv[s]
        counts[t] += 1
    for t in range(t_count):
        share = inp.shown[t] + pv_used[t]
        if share > inp.share_hi[t] + inp.shown[t] or share < inp.share_lo[t] + inp.shown[t] or counts[t] > inp.caps[t]:
            return False
    return True
