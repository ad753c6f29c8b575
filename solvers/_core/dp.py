"""The longest path over (slot, gap state, resource left): the relaxation's value and its path.

``r[t, s]`` is the best reduced value of a type-``t`` card at slot ``s`` (``-inf``
where none may stand). ``H[s, i, z]`` is the best value of slots ``s..K-1`` from
gap state ``i`` with resource code ``z`` left; ``H[K] = 0``. With no tracked
resource (one code) this is the plain DP over (slot, gap state).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["best_reduced", "backward_dp", "walk_path", "new_tables"]

NEG = -np.inf


def new_tables(n_slots: int, n_states: int, n_codes: int):
    """``(H, choice)`` work arrays of :func:`backward_dp`."""
    shape = (n_slots + 1, n_states, n_codes)
    return np.zeros(shape), np.zeros(shape, dtype=np.int8)


@njit(cache=True)
def best_reduced(vmask, types, mu, price, count_price, pv, out_r, out_arg):
    """``out_r[t, s] = max_c (vmask[c, s] - mu[c]) - price[t] * pv[s] - count_price[t]`` over type-t cards.

    ``vmask`` holds values with ``-inf`` where a card may not stand; ``out_arg``
    the maximising card (-1: none).
    """
    n, k = vmask.shape
    out_r[:, :] = NEG
    out_arg[:, :] = -1
    for c in range(n):
        t = types[c]
        for s in range(k):
            v = vmask[c, s] - mu[c]
            if v > out_r[t, s]:
                out_r[t, s] = v
                out_arg[t, s] = c
    for t in range(out_r.shape[0]):
        for s in range(k):
            if out_arg[t, s] >= 0:
                out_r[t, s] -= price[t] * pv[s] + count_price[t]


@njit(cache=True, inline="always")
def _after(res, t, s, z):
    """The code after a type-``t`` card at slot ``s`` from code ``z`` (-1: not enough left)."""
    # (Inlined: called per DP cell, a call that takes the Resources tuple costs its reference counts, a
    # quarter of a plain step and of a split one on stress-device.)
    j = res.of_type[t]
    if j < 0:
        return z
    w = res.units[j, s]
    left = (z // res.mult[j]) % (res.cap[j] + 1)
    if left < w:
        return -1
    return z - w * res.mult[j]


@njit(cache=True)
def _plain_dp(r, trans, H, choice):
    """:func:`backward_dp` with no tracked resource (one code): the same tables, without a code per cell.

    Per slot it takes the organic move for every state, then each type that may stand there
    over all states (types in order, a strict ``>``: the same ties as a loop over types per
    state), so that a type's ``-inf`` slots are skipped once, not once per state. The tables
    are read as (K + 1, S) rows (one code: the same memory), slot by slot: ~10 % faster than
    three indices per cell.
    """
    n_types, k = r.shape
    n_states = trans.shape[0]
    H2 = H.reshape((k + 1, n_states))
    choice2 = choice.reshape((k + 1, n_states))
    H2[k, :] = 0.0
    for s in range(k - 1, -1, -1):
        h, h1, ch = H2[s], H2[s + 1], choice2[s]
        for i in range(n_states):
            h[i] = h1[trans[i, 0]]
            ch[i] = 0
        for t in range(n_types):
            rt = r[t, s]
            if rt == NEG:
                continue
            for i in range(n_states):
                j = trans[i, 1 + t]
                if j >= 0:
                    v = rt + h1[j]
                    if v > h[i]:
                        h[i] = v
                        ch[i] = 1 + t


@njit(cache=True)
def backward_dp(r, trans, res, H, choice):
    """Fill ``H`` (K + 1, S, Z) and ``choice`` (0 organic, 1 + t a type-t card) backwards from slot K."""
    n_types, k = r.shape
    n_states = trans.shape[0]
    n_codes = H.shape[2]
    tracked = False
    for t in range(n_types):
        tracked |= res.of_type[t] >= 0
    if n_codes == 1 and not tracked:  # the plain DP (every price step of the plain relaxation): ~1.6x faster
        _plain_dp(r, trans, H, choice)
        return
    H[k, :, :] = 0.0
    for s in range(k - 1, -1, -1):
        for i in range(n_states):
            for z in range(n_codes):
                best = H[s + 1, trans[i, 0], z]
                arg = 0
                for t in range(n_types):
                    j = trans[i, 1 + t]
                    if j < 0 or r[t, s] == NEG:
                        continue
                    z2 = _after(res, t, s, z)
                    if z2 < 0:
                        continue
                    v = r[t, s] + H[s + 1, j, z2]
                    if v > best:
                        best = v
                        arg = 1 + t
                H[s, i, z] = best
                choice[s, i, z] = arg


@njit(cache=True)
def walk_path(choice, trans, res, z0, arg, pv, card_use, pv_sum, count):
    """Follow the DP's choices from (slot 0, state 0, code ``z0``); tally what the path uses.

    ``card_use[c]`` counts the slots card ``c`` takes (``arg`` of
    :func:`best_reduced`), ``pv_sum[t]``/``count[t]`` the PV and cards of each type.
    """
    card_use[:] = 0.0
    pv_sum[:] = 0.0
    count[:] = 0.0
    i = 0
    z = z0
    for s in range(choice.shape[0] - 1):
        ch = choice[s, i, z]
        if ch > 0:
            t = ch - 1
            card_use[arg[t, s]] += 1.0
            pv_sum[t] += pv[s]
            count[t] += 1.0
            z = _after(res, t, s, z)
        i = trans[i, ch]
