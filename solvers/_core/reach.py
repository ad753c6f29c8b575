"""Reach tables: how much PV, and how many cards, one type can still place from a slot on.

Optimistic (other types are ignored, and with ``gap == 1`` spacing too), so safe
for pruning: a node whose type cannot reach its share floor any more has no
feasible completion.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["type_avail", "pv_reach", "count_reach", "all_reach"]

NEG = -np.inf


def type_avail(types: np.ndarray, vmask: np.ndarray, n_types: int) -> np.ndarray:
    """(T, K) bool: some card of the type may stand at the slot (``vmask`` finite there)."""
    avail = np.zeros((n_types, vmask.shape[1]), dtype=bool)
    np.logical_or.at(avail, types, np.isfinite(vmask))
    return avail


def pv_reach(pv, avail, gap: int, gap_any: int, kdim: int) -> np.ndarray:
    """``out[s, d, da, k]``: most PV one type can still collect from slot ``s`` on.

    ``d``/``da`` (0-based: distance - 1) are the type's and the any-card
    distances, ``k`` the cards it may still place (``kdim == 1``: no count
    limit). Other types are ignored, so this over-estimates: safe for pruning.
    ``pv``/``avail`` are passed on as writable copies (a read-only ``pv`` would be a second compile).
    """
    return _pv_reach(np.array(pv, dtype=np.float64), np.array(avail, dtype=np.bool_), int(gap), int(gap_any),
                     int(kdim))


@njit(cache=True)
def _pv_reach(pv, avail, gap, gap_any, kdim):
    """:func:`pv_reach`'s kernel."""
    k = pv.shape[0]
    out = np.zeros((k + 1, gap, gap_any, kdim))
    for s in range(k - 1, -1, -1):
        for d in range(gap):
            nd = d + 1 if d + 1 < gap else gap - 1
            for da in range(gap_any):
                nda = da + 1 if da + 1 < gap_any else gap_any - 1
                open_ = avail[s] and d == gap - 1 and da == gap_any - 1
                for kk in range(kdim):
                    best = out[s + 1, nd, nda, kk]
                    if open_:
                        if kdim == 1:
                            v = pv[s] + out[s + 1, 0, 0, 0]
                        elif kk > 0:
                            v = pv[s] + out[s + 1, 0, 0, kk - 1]
                        else:
                            v = NEG
                        if v > best:
                            best = v
                    out[s, d, da, kk] = best
    return out


@njit(cache=True)
def count_reach(avail, gap, gap_any):
    """``out[s, d, da]``: most cards of one type that still fit from slot ``s`` on (gaps only)."""
    k = avail.shape[0]
    out = np.zeros((k + 1, gap, gap_any))
    for s in range(k - 1, -1, -1):
        for d in range(gap):
            nd = d + 1 if d + 1 < gap else gap - 1
            for da in range(gap_any):
                nda = da + 1 if da + 1 < gap_any else gap_any - 1
                best = out[s + 1, nd, nda]
                if avail[s] and d == gap - 1 and da == gap_any - 1:
                    v = 1.0 + out[s + 1, 0, 0]
                    if v > best:
                        best = v
                out[s, d, da] = best
    return out


@njit(cache=True)
def all_reach(pv, allowed, types, dims):
    """Every type's :func:`pv_reach` and :func:`count_reach` tables, each flattened and laid end to end.

    ``allowed`` (N, K): where each card may stand (a type may stand where any of its cards may); ``dims``
    (3, T): each type's ``(gap, gap_any, kdim)``. Returns ``(pv tables, offsets, count tables, offsets)``.
    """
    t_count, k = dims.shape[1], pv.shape[0]
    avail = np.zeros((t_count, k), dtype=np.bool_)
    for c in range(types.shape[0]):
        for s in range(k):
            if allowed[c, s]:
                avail[types[c], s] = True
    off = np.zeros(t_count, dtype=np.int64)
    coff = np.zeros(t_count, dtype=np.int64)
    o = co = 0
    for t in range(t_count):
        off[t], coff[t] = o, co
        o += (k + 1) * dims[0, t] * dims[1, t] * dims[2, t]
        co += (k + 1) * dims[0, t] * dims[1, t]
    reach = np.empty(o)
    creach = np.empty(co)
    for t in range(t_count):
        part = _pv_reach(pv, avail[t], dims[0, t], dims[1, t], dims[2, t]).ravel()
        for i in range(part.shape[0]):
            reach[off[t] + i] = part[i]
        cpart = count_reach(avail[t], dims[0, t], dims[1, t]).ravel()
        for i in range(cpart.shape[0]):
            creach[coff[t] + i] = cpart[i]
    return reach, off, creach, coff
