"""The gap state machine: distance states of the dispersion rules and their transitions.

A *distance* ``d[r]`` is how far the current slot stands from the last card rule
``r`` governs (rules ``0..T-1`` per type, ``T`` the any-card rule), capped at the
gap: a type-``t`` card may stand at the current slot iff ``d[t] == gap[t]`` and
``d[T] == gap[T]``. The DP tracks a subset of the rules (a rule left out only
loosens the relaxation); :func:`gap_states` picks that subset and enumerates the
reachable states.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

__all__ = ["GapStates", "gap_states", "build_states"]


class GapStates(NamedTuple):
    """Reachable distance states: state 0 is the page's start."""

    trans: np.ndarray  #: (S, T + 1) int64: next state after organic (column 0) or a type-t card (1 + t); -1 forbidden
    n_states: int  #: S


@njit(cache=True)
def _encode(d, mult):
    code = 0
    for r in range(d.shape[0]):
        code += (d[r] - 1) * mult[r]
    return code


@njit(cache=True)
def _step(d, col, gaps, type_rule, any_rule, nd):
    """Distances after column ``col`` (0 organic, 1 + t a type-t card) into ``nd``; False when a gap forbids it."""
    for r in range(d.shape[0]):
        v = d[r] + 1
        nd[r] = gaps[r] if v > gaps[r] else v
    if col > 0:
        r = type_rule[col - 1]
        if r >= 0:
            if d[r] != gaps[r]:
                return False
            nd[r] = 1
        if any_rule >= 0:
            if d[any_rule] != gaps[any_rule]:
                return False
            nd[any_rule] = 1
    return True


@njit(cache=True)
def build_states(gaps, init, type_rule, any_rule, n_types, max_states):
    """Reachable distance states of the tracked rules, breadth first from ``init``.

    ``gaps``/``init`` (R,): gap and initial distance of each tracked rule;
    ``type_rule[t]``: the tracked rule of type ``t`` or -1; ``any_rule``: the
    tracked any-card rule or -1. Returns ``(trans, n_states)``; ``n_states`` is
    -1 when more than ``max_states`` are reachable.
    """
    r_count = gaps.shape[0]
    mult = np.ones(max(r_count, 1), dtype=np.int64)
    total = 1
    for r in range(r_count):
        mult[r] = total
        total *= gaps[r]
    id_of = np.full(total, -1, dtype=np.int64)
    room = min(max_states, total)  # (no more states than codes: small work arrays where the gaps are small)
    codes = np.empty(room, dtype=np.int64)
    trans = np.full((room, n_types + 1), -1, dtype=np.int64)
    codes[0] = _encode(init, mult[:r_count])
    id_of[codes[0]] = 0
    n = 1
    d = np.empty(r_count, dtype=np.int64)
    nd = np.empty(r_count, dtype=np.int64)
    for head in range(room):
        if head >= n:
            break
        rem = codes[head]
        for r in range(r_count):
            d[r] = rem % gaps[r] + 1
            rem //= gaps[r]
        for col in range(n_types + 1):
            if not _step(d, col, gaps, type_rule, any_rule, nd):
                continue
            nxt = _encode(nd, mult[:r_count])
            if id_of[nxt] < 0:
                if n >= max_states:
                    return trans[:1].copy(), -1
                id_of[nxt] = n
                codes[n] = nxt
                n += 1
            trans[head, col] = id_of[nxt]
    return trans[:n].copy(), n


def gap_states(min_gap: np.ndarray, init_dist: np.ndarray, n_types: int, *, max_product: int = 1 << 20,
               max_states: int = 5_000) -> GapStates:
    """Pick the gap rules the DP tracks and enumerate its states.

    Every rule with a gap above 1 is tracked while the state space stays within
    ``max_product`` codes and ``max_states`` reachable states (the any-card rule
    first, then small gaps); a rule left out only loosens the relaxation.

    Examples
    --------
    >>> import numpy as np
    >>> g = gap_states(np.array([2, 1]), np.array([2, 1]), 1)
    >>> g.n_states, g.trans.tolist()
    (2, [[0, 1], [0, -1]])
    """
    candidates = [r for r in range(n_types + 1) if min_gap[r] > 1]
    candidates.sort(key=lambda r: (r != n_types, int(min_gap[r]), r))
    chosen: list[int] = []
    product = 1
    for r in candidates:
        if product * int(min_gap[r]) <= max_product:
            chosen.append(r)
            product *= int(min_gap[r])
    while True:
        type_rule = np.full(n_types, -1, dtype=np.int64)
        any_rule = -1
        for i, r in enumerate(chosen):
            if r == n_types:
                any_rule = i
            else:
                type_rule[r] = i
        trans, n_states = build_states(
            np.array([min_gap[r] for r in chosen], dtype=np.int64),
            np.array([init_dist[r] for r in chosen], dtype=np.int64),
            type_rule, any_rule, n_types, max_states,
        )
        if n_states > 0:
            return GapStates(trans, int(n_states))
        chosen.pop()  # too many states: the largest-gap rule is left to the search
