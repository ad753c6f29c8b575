"""Numba kernels of the branch-and-bound solver (:mod:`solvers.bnb`).

Every function here is a module-level ``@njit(cache=True)`` kernel over arrays
(and tuples of arrays) only; :mod:`solvers.bnb` validates and prepares the
arrays once and calls these unchecked. Nothing here is public API.

Notation: ``K`` slots, ``N`` cards, ``T`` types. Gap rules are indexed ``0..T``,
index ``T`` being the any-card rule (``min_gap_any``), as in
:mod:`mixrank.arrays`. A *distance* ``d[r]`` is how far the current slot stands
from the last card rule ``r`` governs, capped at the gap: a type-``t`` card may
stand at the current slot iff ``d[t] == gap[t]`` and ``d[T] == gap[T]``.

The bound
---------
Relax "each card once" (multipliers ``mu``), the share cap and floor
(``alpha``, ``beta``) and the count cap (``gamma``); keep dispersion exact. What
is left is a longest path over (slot, distance state) whose arc for a type-t
card at slot s is worth ``r[t, s] = max_c (values[c, s] - mu[c]) - (alpha[t] -
beta[t]) * pv[s] - gamma[t]``. ``H[s, i]`` is the best path value from slot ``s``
in state ``i``. A node (slots ``< s`` decided, prefix value ``g``, cards ``U``
used, PV ``P_t``, counts ``n_t``) is bounded by

    g + H[s, i] + sum_{c not in U} mu[c]
      + sum_t alpha[t] (hi[t] - P_t) - beta[t] (lo[t] - P_t) + gamma[t] (m[t] - n_t)

and the search keeps ``f = g + (the constant)`` incrementally. Node-local
tightenings, each a valid change of multipliers for the node's suffix only:
unused cards whose price the suffix cannot earn back give part of it up
(:func:`solvers._bnb_node._credit`), multipliers whose rows the suffix can no longer reach drop
out (:func:`solvers._bnb_node._type_terms`), and a grid of tables with one multiplier moved picks
the best for the node (:func:`solvers._bnb_node._grid_gain`).

Argument bundles (tuples, so that the kernels' signatures stay readable)
-----------------------------------------------------------------------
``P`` the problem: ``(values, allowed, card_start, card_list, types, pv, gap,
mcount, pv_shown, hi_cmp, lo_cmp, floor_types, margin)``; cards are grouped by
type, ``card_list[card_start[t]:card_start[t + 1]]`` being type ``t``'s.
``L`` the relaxation: ``((red, mu, slack, H, trans), alpha, beta, gamma, hi_b,
lo_b, mcount_f, Hg, grid_kind, grid_type, grid_delta)``; ``red[c, s]`` is the
reduced value of card ``c`` at slot ``s`` (``-inf`` where it may not stand).
``R`` the reach tables: ``(pv_reach, offsets, count_reach, offsets, dims,
kmax)``. ``W`` scratch arrays from :func:`solvers._bnb_node._scratch`.

Kernels: :func:`beam` (a first plan) and :func:`search` (the branch and bound),
each a short loop over helpers that move one node's state to a child
(:func:`_child_state`), keep a beam's layer (:class:`Layer`) or the search's
path (:class:`Path`), and probe the memo (:func:`_memo_seen`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from solvers._bnb_node import _expand, _leaf_ok, _scratch
from solvers._clock import now  # time.perf_counter() inside a kernel
from solvers._core.prices import copy_into

NEG = -np.inf


# ------------------------------------------------------------ a node's state
@njit(cache=True, inline="always")
def _child_state(c, s, i, j, dist, st, f, g, pvu, cnt, o_dist, o_st, o_f, o_g, o_pvu, o_cnt, P, L):
    """Row ``j`` of the ``o_*`` arrays := row ``i`` of the others after card ``c`` (-1: organic) at slot ``s``.

    Distances grow by one (capped at the gap; the card's type and any-card rule
    restart at 1), the card's type gains its PV and one count, the gap state
    moves, ``f`` (priced) and ``g`` (plain) gain the card's reduced and plain value.
    """
    values, types, pv, gap = P[0], P[4], P[5], P[6]
    red, trans = L[0][0], L[0][4]
    n_types = pvu.shape[1]
    for r in range(n_types + 1):
        v = dist[i, r] + 1
        o_dist[j, r] = gap[r] if v > gap[r] else v
    copy_into(o_pvu[j], pvu[i])
    copy_into(o_cnt[j], cnt[i])
    if c >= 0:
        t = types[c]
        o_dist[j, t] = 1
        o_dist[j, n_types] = 1
        o_pvu[j, t] += pv[s]
        o_cnt[j, t] += 1
        o_st[j] = trans[st[i], 1 + t]
        o_f[j] = f[i] + red[c, s]
        o_g[j] = g[i] + values[c, s]
    else:
        o_st[j] = trans[st[i], 0]
        o_f[j] = f[i]
        o_g[j] = g[i]


# ---------------------------------------------------------------------- the beam
class Layer(NamedTuple):
    """The states of one slot of the beam (W rows: N cards, K slots, T types)."""

    dist: np.ndarray  #: (W, T + 1) int64: capped distances to the last card of each type, then of any card
    st: np.ndarray  #: (W,) int64: gap state of the bound's DP
    f: np.ndarray  #: (W,) priced value so far plus the bound's constant
    bound: np.ndarray  #: (W,) the state's bound
    g: np.ndarray  #: (W,) value so far
    pvu: np.ndarray  #: (W, T) PV used per type
    cnt: np.ndarray  #: (W, T) int64 cards per type
    used: np.ndarray  #: (W, N) bool
    plan: np.ndarray  #: (W, K) int64: the slots decided (-1 organic)


@njit(cache=True)
def _new_layer(width, n, k, n_types):
    return Layer(np.zeros((width, n_types + 1), dtype=np.int64), np.zeros(width, dtype=np.int64), np.zeros(width),
                 np.full(width, np.inf), np.zeros(width), np.zeros((width, n_types)),
                 np.zeros((width, n_types), dtype=np.int64), np.zeros((width, max(n, 1)), dtype=np.bool_),
                 np.full((width, k), -1, dtype=np.int64))


@njit(cache=True)
def _same_pattern(b, i, i2, n_types):
    """Whether states ``i`` and ``i2`` of layer ``b`` have the same distances and PV per type."""
    for r in range(n_types + 1):
        if b.dist[i, r] != b.dist[i2, r]:
            return False
    for u in range(n_types):
        if b.pvu[i, u] != b.pvu[i2, u]:
            return False
    return True


@njit(cache=True)
def _select(b, m, c_par, c_card, c_bound, types, width, sel_par, sel_card, sel_bound):
    """The best ``width`` of ``m`` children (parents in ``b``), one per pattern; returns how many.

    Keeps the best child of each pattern (the parent's distances and PV per
    type, and the child's card type): card swaps within one pattern would
    otherwise fill the beam.
    """
    n_types = b.pvu.shape[1]
    order = np.argsort(-c_bound[:m], kind="mergesort")
    size = 0
    for jo in range(m):
        if size == width:
            break
        q = order[jo]
        i = c_par[q]
        t_new = types[c_card[q]] if c_card[q] >= 0 else -1
        dup = False
        for jj in range(size):
            t2 = types[sel_card[jj]] if sel_card[jj] >= 0 else -1
            if t2 == t_new and _same_pattern(b, i, sel_par[jj], n_types):
                dup = True
                break
        if not dup:
            sel_par[size] = i
            sel_card[size] = c_card[q]
            sel_bound[size] = c_bound[q]
            size += 1
    return size


@njit(cache=True)
def _advance(b, nl, size, s, sel_par, sel_card, sel_bound, P, L):
    """Layer ``nl`` := the ``size`` selected children of layer ``b`` at slot ``s``."""
    for j in range(size):
        i = sel_par[j]
        c = sel_card[j]
        nl.bound[j] = sel_bound[j]
        _child_state(c, s, i, j, b.dist, b.st, b.f, b.g, b.pvu, b.cnt, nl.dist, nl.st, nl.f, nl.g, nl.pvu, nl.cnt,
                     P, L)
        copy_into(nl.used[j], b.used[i])
        copy_into(nl.plan[j, :s], b.plan[i, :s])
        nl.plan[j, s] = c
        if c >= 0:
            nl.used[j, c] = True


@njit(cache=True, nogil=True)
def beam(P, L, R, dist0, f0, width, inc_val, tol_rel, tol_abs, deadline, out_plan, stop):
    """Beam search over slots ranked by the node bound; returns the best plan value found.

    Keeps every rule exactly (the plan it writes to ``out_plan`` passes
    ``check``), drops children whose bound cannot beat ``inc_val``, and keeps
    the best child of each pattern (distances and PV per type) only, so that
    card swaps do not fill the beam. Returns -inf when no leaf is feasible,
    time ran out or ``stop[0]`` was set (Ctrl-C, :func:`solvers._common.run_stoppable`).
    """
    values, types, pv_shown, hi_cmp, lo_cmp = P[0], P[4], P[8], P[9], P[10]
    n, k = values.shape
    n_types = P[2].shape[0] - 1
    W = _scratch(n, n_types)
    b = _new_layer(width, n, k, n_types)
    nl = _new_layer(width, n, k, n_types)
    cap = width * (n + 1)
    c_par = np.empty(cap, dtype=np.int64)
    c_card = np.empty(cap, dtype=np.int64)
    c_bound = np.empty(cap)
    kid_card = np.empty(n + 1, dtype=np.int64)
    kid_bound = np.empty(n + 1)
    sel_par = np.empty(width, dtype=np.int64)
    sel_card = np.empty(width, dtype=np.int64)
    sel_bound = np.empty(width)
    copy_into(b.dist[0], dist0)
    b.f[0] = f0
    size = 1
    free = np.int64(-2)  # every child (a typed variable, not a literal: one compile of _expand serves all calls)
    for s in range(k):
        if stop[0] != 0 or ((s & 7) == 7 and now() > deadline):
            return NEG
        thr = inc_val + tol_rel * abs(inc_val) + tol_abs if inc_val > NEG else NEG
        m = np.int64(0)  # (typed, not a literal: one compile of _select)
        for i in range(size):
            got, _, _ = _expand(s, b.dist[i], b.st[i], b.f[i], b.g[i], b.pvu[i], b.cnt[i], b.used[i], thr, free,
                                b.bound[i], P, L, R, W, kid_card, kid_bound)
            for j in range(got):
                c_par[m] = i
                c_card[m] = kid_card[j]
                c_bound[m] = kid_bound[j]
                m += 1
        if m == 0:
            return NEG
        size = _select(b, m, c_par, c_card, c_bound, types, width, sel_par, sel_card, sel_bound)
        _advance(b, nl, size, s, sel_par, sel_card, sel_bound, P, L)
        b, nl = nl, b
    best = NEG
    for i in range(size):
        if b.g[i] > best and _leaf_ok(b.pvu[i], pv_shown, lo_cmp, hi_cmp):
            best = b.g[i]
            copy_into(out_plan, b.plan[i])
    return best


# -------------------------------------------------------------------- the search
class Path(NamedTuple):
    """The search's stack: row ``s`` is the node at depth ``s`` (slots ``0..s-1`` decided) and its children."""

    cand: np.ndarray  #: (K, N + 1) int64: the node's children (-1 organic), best bound first
    cb: np.ndarray  #: (K, N + 1) their bounds
    ncand: np.ndarray  #: (K + 1,) int64: how many children
    pos: np.ndarray  #: (K + 1,) int64: the next child to try
    cur: np.ndarray  #: (K + 1,) int64: the child taken (-2: none yet)
    dist: np.ndarray  #: (K + 1, T + 1) int64: capped distances
    st: np.ndarray  #: (K + 1,) int64: gap state of the bound's DP
    f: np.ndarray  #: (K + 1,) priced value so far plus the bound's constant
    nb: np.ndarray  #: (K + 1,) the node's own bound
    g: np.ndarray  #: (K + 1,) value so far
    pvu: np.ndarray  #: (K + 1, T) PV used per type
    cnt: np.ndarray  #: (K + 1, T) int64 cards per type
    used: np.ndarray  #: (N,) bool: the cards on the path
    words: np.ndarray  #: (ceil(N / 64),) uint64: the same as bits (the memo's key)


@njit(cache=True)
def new_path(n, k, n_types, n_words, dist0, f0):
    """A :class:`Path` at the root (distances ``dist0``, the bound's constant ``f0``; ``n_words`` memo words)."""
    path = Path(np.empty((k, n + 1), dtype=np.int64), np.empty((k, n + 1)), np.zeros(k + 1, dtype=np.int64),
                np.zeros(k + 1, dtype=np.int64), np.full(k + 1, -2, dtype=np.int64),
                np.empty((k + 1, n_types + 1), dtype=np.int64), np.zeros(k + 1, dtype=np.int64), np.zeros(k + 1),
                np.full(k + 1, np.inf), np.zeros(k + 1), np.zeros((k + 1, n_types)),
                np.zeros((k + 1, n_types), dtype=np.int64), np.zeros(max(n, 1), dtype=np.bool_),
                np.zeros(n_words, dtype=np.uint64))
    copy_into(path.dist[0], dist0)
    path.f[0] = f0
    return path


@njit(cache=True, inline="always")
def _set_used(path, c, on):
    """Card ``c`` on (or off) the path."""
    path.used[c] = on
    path.words[c >> 6] ^= np.uint64(1) << np.uint64(c & 63)


@njit(cache=True, inline="always")
def _set_child(path, s, c):
    """The node at depth ``s`` takes child ``c`` (-2: none): the card it took before leaves the path."""
    if path.cur[s] >= 0:
        _set_used(path, path.cur[s], False)
    path.cur[s] = c
    if c >= 0:
        _set_used(path, c, True)


@njit(cache=True)
def _same_words(a, b):
    for w in range(a.shape[0]):
        if a[w] != b[w]:
            return False
    return True


# How the memo compares two nodes' PV of a type (:func:`_pv_rules`)
_PV_LESS = 0  # the dominating node has no more PV (a cap that may bind, no floor)
_PV_MORE = 1  # ... no less (a floor, a cap no plan can reach)
_PV_SAME = 2  # ... the same (a floor and a cap that may bind)
_PV_ANY = 3  # PV does not matter (no floor, a cap no plan can reach)


@njit(cache=True)
def _pv_rules(P):
    """Per type, how the memo compares PV (``_PV_*``): a cap binds no plan when the type's share
    already shown plus its ``min(count cap, cards)`` largest PV weights among the slots its cards may take
    (gaps ignored: an overestimate) stays below the cap (less a margin past the sums' round-off)."""
    allowed, card_start, card_list, pv, mcount, pv_shown, hi_cmp, lo_cmp, margin = (P[1], P[2], P[3], P[5], P[7],
                                                                                    P[8], P[9], P[10], P[12])
    k = pv.shape[0]
    n_types = card_start.shape[0] - 1
    rule = np.empty(n_types, dtype=np.int64)
    open_pv = np.empty(k)
    for t in range(n_types):
        m = 0
        for s in range(k):
            for jj in range(card_start[t], card_start[t + 1]):
                if allowed[card_list[jj], s]:
                    open_pv[m] = pv[s]
                    m += 1
                    break
        most = min(mcount[t], card_start[t + 1] - card_start[t], m)
        top = np.sort(open_pv[:m])[::-1]
        reach = pv_shown[t]
        for i in range(max(most, 0)):
            reach += top[i]
        cap_free = reach <= hi_cmp[t] - 4.0 * margin
        floor = lo_cmp[t] > pv_shown[t]
        if floor:
            rule[t] = _PV_MORE if cap_free else _PV_SAME
        else:
            rule[t] = _PV_ANY if cap_free else _PV_LESS
    return rule


@njit(cache=True, inline="always")
def _memo_seen(memo, dshift, s1, path, pv_rule, nodes):
    """Whether the memo holds a node that dominates the one at depth ``s1``; else the node is stored.

    Key: the slot, the exact distances and the cards used. A stored node
    dominates when its value is at least this one's and its PV per type compares
    as ``pv_rule`` (:func:`_pv_rules`) says; a stored node this one dominates
    gives up its entry; else, when the probed entries are all taken, one of them
    chosen by ``nodes`` (the nodes visited so far).
    """
    memo_key, memo_used, memo_pv, memo_g = memo
    mask = memo_key.shape[0] - 1
    n_types = path.pvu.shape[1]
    words, g, pvu = path.words, path.g[s1], path.pvu[s1]
    code = np.int64(s1)
    for r in range(n_types + 1):
        code |= (path.dist[s1, r] - 1) << dshift[r]
    h = np.uint64(code) * np.uint64(0x9E3779B97F4A7C15)
    for w in range(words.shape[0]):
        h = (h ^ words[w]) * np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(31)
    home = np.int64(h & np.uint64(mask))
    slot = -1
    for probe in range(4):
        e = (home + probe) & mask
        if memo_key[e] == 0:  # empty (a key holds its slot, >= 1)
            if slot < 0:
                slot = e
            break
        if memo_key[e] != code or not _same_words(memo_used[e], words):
            continue
        stored_dom = memo_g[e] >= g
        new_dom = g >= memo_g[e]
        for t in range(n_types):
            a = memo_pv[e, t]
            rule = pv_rule[t]
            if (rule == _PV_LESS and a > pvu[t]) or (rule == _PV_MORE and a < pvu[t]) or (rule == _PV_SAME
                                                                                          and a != pvu[t]):
                stored_dom = False
            if (rule == _PV_LESS and pvu[t] > a) or (rule == _PV_MORE and pvu[t] < a) or (rule == _PV_SAME
                                                                                          and a != pvu[t]):
                new_dom = False
        if stored_dom:
            return True
        if new_dom:
            slot = e
    if slot < 0:
        slot = (home + (nodes & 3)) & mask
    memo_key[slot] = code
    copy_into(memo_used[slot], words)
    copy_into(memo_pv[slot], pvu)
    memo_g[slot] = g
    return False


@njit(cache=True)
def _open_bound(path, depth, bound):
    """The best bound among the children not yet tried on the path (at least ``bound``)."""
    for d in range(depth + 1):
        if path.pos[d] < path.ncand[d] and path.cb[d, path.pos[d]] > bound:
            bound = path.cb[d, path.pos[d]]
    return bound


@njit(cache=True, nogil=True)
def search(P, L, R, path, at, memo, dshift, inc_plan, inc_val, node_limit, deadline, tol_rel, tol_abs, stats,
           forced, stop):
    """Depth-first branch and bound over slots, children best bound first.

    A node at depth ``s`` has decided slots ``0..s-1``; its children are the
    organic item and every unused allowed card that keeps the rules at slot
    ``s``. A child is pruned when its bound does not beat the incumbent by more
    than ``tol_rel * |inc_val| + tol_abs`` (``tol_abs``: round-off of the problem's
    magnitudes), when a share floor can no longer be met, or when
    the memo holds a node with the same slot, distances and cards used that
    dominates it (:func:`_memo_seen`).

    ``forced[s]`` (-2: free) restricts slot ``s`` to one child, for the
    neighbourhood searches that improve the plan; ``complete`` and ``bound``
    then speak of the restricted space only, and the memo must be cleared
    before an unrestricted search uses it again. The search stops, incomplete, at
    ``node_limit`` nodes, at ``deadline`` or once ``stop[0]`` is set (Ctrl-C,
    :func:`solvers._common.run_stoppable`), all read every 1024 nodes.

    The search walks ``path`` (:func:`new_path`) from depth ``at[0]`` (-1: the
    root, not yet expanded) and leaves in ``at[0]`` the depth where it stopped
    (-1 when complete): a later call on the same path, memo and prices goes on
    from there.

    Returns ``(inc_val, bound, complete)``: ``inc_plan`` is updated in place;
    ``bound`` is proven (the incumbent when complete, else the best open node).
    ``stats`` (int64) accumulates nodes, memo hits, bound prunes, floor prunes,
    leaves, improvements.
    """
    values, pv_shown, hi_cmp, lo_cmp = P[0], P[8], P[9], P[10]
    n, k = values.shape
    n_types = P[2].shape[0] - 1
    memo_on = memo[0].shape[0] > 1
    W = _scratch(n, n_types)
    pv_rule = _pv_rules(P)
    nodes = memo_hits = bound_prunes = floor_prunes = leaves = improvements = 0
    complete = True
    tol = tol_rel * abs(inc_val) + tol_abs if inc_val > NEG else 0.0
    next_check = min(1024, node_limit)
    expand = at[0] < 0
    depth = 0 if expand else at[0]
    while True:
        if expand:
            s = np.int64(depth)  # int64, never the literal 0: one compile of _expand
            m, bp, fp = _expand(s, path.dist[s], path.st[s], path.f[s], path.g[s], path.pvu[s], path.cnt[s],
                                path.used, inc_val + tol, forced[s], path.nb[s], P, L, R, W, path.cand[s],
                                path.cb[s])
            bound_prunes += bp
            floor_prunes += fp
            path.ncand[s] = m
            path.pos[s] = 0
            path.cur[s] = -2
            expand = False
        if nodes >= next_check:  # checked where the open list is consistent
            if nodes >= node_limit or stop[0] != 0 or now() > deadline:
                complete = False
                break
            next_check = min(nodes + 1024, node_limit)
        s = depth
        j = path.pos[s]
        if j >= path.ncand[s]:  # every child tried: back up
            _set_child(path, s, -2)
            if depth == 0:
                break
            depth -= 1
            continue
        path.pos[s] = j + 1
        if path.cb[s, j] <= inc_val + tol:  # so are the children after it
            bound_prunes += path.ncand[s] - j
            path.pos[s] = path.ncand[s]
            continue
        c = path.cand[s, j]
        path.nb[s + 1] = path.cb[s, j]
        _set_child(path, s, c)
        nodes += 1
        s1 = s + 1
        _child_state(c, s, s, s1, path.dist, path.st, path.f, path.g, path.pvu, path.cnt, path.dist, path.st, path.f,
                     path.g, path.pvu, path.cnt, P, L)
        if s1 == k:
            leaves += 1
            if path.g[s1] > inc_val and _leaf_ok(path.pvu[s1], pv_shown, lo_cmp, hi_cmp):
                inc_val = path.g[s1]
                tol = tol_rel * abs(inc_val) + tol_abs
                improvements += 1
                copy_into(inc_plan, path.cur[:k])
        elif memo_on and _memo_seen(memo, dshift, s1, path, pv_rule, stats[0] + nodes):
            memo_hits += 1
        else:
            depth = s1
            expand = True

    bound = inc_val if complete else _open_bound(path, depth, inc_val)
    at[0] = -1 if complete else depth
    stats[0] += nodes
    stats[1] += memo_hits
    stats[2] += bound_prunes
    stats[3] += floor_prunes
    stats[4] += leaves
    stats[5] += improvements
    return inc_val, bound, complete
