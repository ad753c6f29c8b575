"""Share caps as integer resources of the DP.

A type's PV cap ``hi`` is cut into ``Q`` units of ``delta = hi / Q``; slot ``s``
weighs ``floor(pv[s] / delta)`` units (rounded down) and a node with PV ``P``
already on the type has ``floor((hi - P) / delta)`` units left (rounded up past
floating-point noise). Any plan that keeps the cap keeps the units, so a DP that
respects them is still a relaxation, in real arithmetic. The resource state of
several tracked types is one mixed-radix code ``z = sum_j left_j * mult_j``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

__all__ = ["Resources", "no_resources", "pv_resources", "left_units", "code_left"]

_SLACK = 1e-9  # relative: weights shrink and capacities grow by this much, past rounding


class Resources(NamedTuple):
    """The tracked share caps: R types, ``n_codes`` resource states."""

    of_type: np.ndarray  #: (T,) int64: the resource index of type t, or -1 (untracked)
    units: np.ndarray  #: (R, K) int64: units slot s costs resource j
    cap: np.ndarray  #: (R,) int64: units of resource j at the start
    mult: np.ndarray  #: (R,) int64: place value of resource j in a code
    delta: np.ndarray  #: (R,) float64: PV of one unit
    hi: np.ndarray  #: (R,) float64: the PV cap it tracks (the relaxation's widened cap)
    n_codes: int  #: prod(cap + 1)


def no_resources(n_types: int, n_slots: int) -> Resources:
    """No tracked cap: the DP is the plain one (one resource state)."""
    z = np.zeros(0, dtype=np.int64)
    return Resources(np.full(n_types, -1, dtype=np.int64), np.zeros((0, n_slots), dtype=np.int64), z, z.copy(),
                     np.zeros(0), np.zeros(0), 1)


def pv_resources(pv: np.ndarray, hi: np.ndarray, tracked, levels) -> Resources:
    """Track the PV caps ``hi[t]`` of the types ``tracked``, each in ``levels[j]`` units.

    Examples
    --------
    >>> import numpy as np
    >>> r = pv_resources(np.array([1.0, 0.6, 0.3]), np.array([1.0, 5.0]), [0], [4])
    >>> r.units.tolist(), r.cap.tolist(), r.n_codes
    ([[3, 2, 1]], [4], 5)
    """
    n_types, k = hi.shape[0], pv.shape[0]
    of_type = np.full(n_types, -1, dtype=np.int64)
    r_count = len(tracked)
    units = np.zeros((r_count, k), dtype=np.int64)
    cap = np.zeros(r_count, dtype=np.int64)
    mult = np.zeros(r_count, dtype=np.int64)
    delta = np.zeros(r_count)
    his = np.zeros(r_count)
    place = 1
    for j, (t, q) in enumerate(zip(tracked, levels)):
        of_type[t] = j
        his[j] = hi[t]
        delta[j] = hi[t] / q
        units[j] = np.floor(pv / delta[j] * (1.0 - _SLACK)).astype(np.int64)
        cap[j] = q
        mult[j] = place
        place *= q + 1
    return Resources(of_type, units, cap, mult, delta, his, int(place))


@njit(cache=True)
def left_units(res, j, pv_used):
    """Units resource ``j`` has left with ``pv_used`` PV on its type (-1: the cap is already broken)."""
    x = (res.hi[j] - pv_used) / res.delta[j]
    left = np.floor(x * (1.0 + _SLACK) + _SLACK)
    if left < 0:
        return -1
    return res.cap[j] if left > res.cap[j] else np.int64(left)


@njit(cache=True)
def code_left(res, pv_used):
    """The resource code of a node with ``pv_used[t]`` PV on each type (-1: a cap is already broken)."""
    z = 0
    for t in range(res.of_type.shape[0]):
        j = res.of_type[t]
        if j < 0:
            continue
        q = left_units(res, j, pv_used[t])
        if q < 0:
            return -1
        z += q * res.mult[j]
    return z
