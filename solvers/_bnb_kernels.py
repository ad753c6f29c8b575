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
"""

from __future__ import annotations

import numpy as np
from numba import njit

from solvers._bnb_node import _expand, _leaf_ok, _scratch
from solvers._clock import now  # time.perf_counter() inside a kernel

NEG = -np.inf


# ---------------------------------------------------------------------- the beam
@njit(cache=True, nogil=True)
def beam(P, L, R, dist0, f0, width, inc_val, tol_rel, tol_abs, deadline, out_plan, stop):
    """Beam search over slots ranked by the node bound; returns the best plan value found.

    Keeps every rule exactly (the plan it writes to ``out_plan`` passes
    ``check``), drops children whose bound cannot beat ``inc_val``, and keeps
    the best child of each pattern (distances and PV per type) only, so that
    card swaps do not fill the beam. Returns -inf when no leaf is feasible,
    time ran out or ``stop[0]`` was set (Ctrl-C, :func:`solvers._common.run_stoppable`).
    """
    values, allowed, card_start, card_list, types, pv, gap, mcount, pv_shown, hi_cmp, lo_cmp, floor_types, margin = P
    trans = L[0][4]
    n, k = values.shape
    n_types = card_start.shape[0] - 1
    n_rules = n_types + 1
    any_idx = n_types
    W = _scratch(n, n_types)
    cap = width * (n + 1)
    b_dist = np.empty((width, n_rules), dtype=np.int64)
    b_st = np.zeros(width, dtype=np.int64)
    b_f = np.zeros(width)
    b_bound = np.full(width, np.inf)
    b_g = np.zeros(width)
    b_pvu = np.zeros((width, n_types))
    b_cnt = np.zeros((width, n_types), dtype=np.int64)
    b_used = np.zeros((width, max(n, 1)), dtype=np.bool_)
    b_plan = np.full((width, k), -1, dtype=np.int64)
    n_dist = np.empty_like(b_dist)
    n_st = np.zeros_like(b_st)
    n_f = np.zeros_like(b_f)
    n_bound = np.full(width, np.inf)
    n_g = np.zeros_like(b_g)
    n_pvu = np.zeros_like(b_pvu)
    n_cnt = np.zeros_like(b_cnt)
    n_used = np.zeros_like(b_used)
    n_plan = np.full((width, k), -1, dtype=np.int64)
    c_par = np.empty(cap, dtype=np.int64)
    c_card = np.empty(cap, dtype=np.int64)
    c_bound = np.empty(cap)
    kid_card = np.empty(n + 1, dtype=np.int64)
    kid_bound = np.empty(n + 1)
    sel_par = np.empty(width, dtype=np.int64)
    sel_card = np.empty(width, dtype=np.int64)
    sel_bound = np.empty(width)
    b_dist[0, :] = dist0
    b_f[0] = f0
    size = 1
    free = np.int64(-2)  # every child (a typed variable, not a literal: one compile of _expand serves all calls)
    for s in range(k):
        if stop[0] != 0 or ((s & 7) == 7 and now() > deadline):
            return NEG
        thr = inc_val + tol_rel * abs(inc_val) + tol_abs if inc_val > NEG else NEG
        m = 0
        for i in range(size):
            got, _, _ = _expand(s, b_dist[i], b_st[i], b_f[i], b_g[i], b_pvu[i], b_cnt[i], b_used[i], thr, free,
                                b_bound[i],
                                P, L, R, W, kid_card, kid_bound)
            for j in range(got):
                c_par[m] = i
                c_card[m] = kid_card[j]
                c_bound[m] = kid_bound[j]
                m += 1
        if m == 0:
            return NEG
        order = np.argsort(-c_bound[:m], kind="mergesort")
        # Keep the best child of each pattern (distances and PV per type): card
        # swaps within one pattern would otherwise fill the beam.
        size = 0
        for jo in range(m):
            if size == width:
                break
            q = order[jo]
            i = c_par[q]
            c = c_card[q]
            t_new = types[c] if c >= 0 else -1
            dup = False
            for jj in range(size):
                i2 = sel_par[jj]
                c2 = sel_card[jj]
                t2 = types[c2] if c2 >= 0 else -1
                if t2 != t_new:
                    continue
                same = True
                for r in range(n_rules):
                    if b_dist[i, r] != b_dist[i2, r]:
                        same = False
                        break
                if same:
                    for u in range(n_types):
                        if b_pvu[i, u] != b_pvu[i2, u]:
                            same = False
                            break
                if same:
                    dup = True
                    break
            if dup:
                continue
            sel_par[size] = i
            sel_card[size] = c
            sel_bound[size] = c_bound[q]
            size += 1
        for j in range(size):
            i = sel_par[j]
            c = sel_card[j]
            n_bound[j] = sel_bound[j]
            for r in range(n_rules):
                v = b_dist[i, r] + 1
                n_dist[j, r] = gap[r] if v > gap[r] else v
            n_pvu[j, :] = b_pvu[i]
            n_cnt[j, :] = b_cnt[i]
            n_used[j, :] = b_used[i]
            n_plan[j, :s] = b_plan[i, :s]
            n_plan[j, s] = c
            if c >= 0:
                t = types[c]
                n_dist[j, t] = 1
                n_dist[j, any_idx] = 1
                n_pvu[j, t] += pv[s]
                n_cnt[j, t] += 1
                n_used[j, c] = True
                n_st[j] = trans[b_st[i], 1 + t]
                n_f[j] = b_f[i] + L[0][0][c, s]
                n_g[j] = b_g[i] + values[c, s]
            else:
                n_st[j] = trans[b_st[i], 0]
                n_f[j] = b_f[i]
                n_g[j] = b_g[i]
        b_dist, n_dist = n_dist, b_dist
        b_st, n_st = n_st, b_st
        b_f, n_f = n_f, b_f
        b_bound, n_bound = n_bound, b_bound
        b_g, n_g = n_g, b_g
        b_pvu, n_pvu = n_pvu, b_pvu
        b_cnt, n_cnt = n_cnt, b_cnt
        b_used, n_used = n_used, b_used
        b_plan, n_plan = n_plan, b_plan
    best = NEG
    for i in range(size):
        if b_g[i] > best and _leaf_ok(b_pvu[i], pv_shown, lo_cmp, hi_cmp):
            best = b_g[i]
            out_plan[:] = b_plan[i]
    return best


# -------------------------------------------------------------------- the search
@njit(cache=True, nogil=True)
def search(P, L, R, dist0, f0, memo, dshift, inc_plan, inc_val, node_limit, deadline, tol_rel, tol_abs, stats,
           forced, stop):
    """Depth-first branch and bound over slots, children best bound first.

    A node at depth ``s`` has decided slots ``0..s-1``; its children are the
    organic item and every unused allowed card that keeps the rules at slot
    ``s``. A child is pruned when its bound does not beat the incumbent by more
    than ``tol_rel * |inc_val| + tol_abs`` (``tol_abs``: round-off of the problem's
    magnitudes), when a share floor can no longer be met, or when
    the memo holds a node with the same slot, distances and cards used that
    dominates it (at least its value, no more PV on capped types, equal PV on
    types with a floor).

    ``forced[s]`` (-2: free) restricts slot ``s`` to one child, for the
    neighbourhood searches that improve the plan; ``complete`` and ``bound``
    then speak of the restricted space only, and the memo must be cleared
    before an unrestricted search uses it again. The search stops, incomplete, at
    ``node_limit`` nodes, at ``deadline`` or once ``stop[0]`` is set (Ctrl-C,
    :func:`solvers._common.run_stoppable`), all read every 1024 nodes.

    Returns ``(inc_val, bound, complete)``: ``inc_plan`` is updated in place;
    ``bound`` is proven (the incumbent when complete, else the best open node).
    ``stats`` (int64) accumulates nodes, memo hits, bound prunes, floor prunes,
    leaves, improvements.
    """
    values, allowed, card_start, card_list, types, pv, gap, mcount, pv_shown, hi_cmp, lo_cmp, floor_types, margin = P
    red, trans = L[0][0], L[0][4]
    memo_key, memo_used, memo_pv, memo_g = memo
    n, k = values.shape
    n_types = card_start.shape[0] - 1
    n_rules = n_types + 1
    any_idx = n_types
    n_words = memo_used.shape[1]
    memo_on = memo_key.shape[0] > 1
    mask = memo_key.shape[0] - 1
    W = _scratch(n, n_types)

    cand = np.empty((k, n + 1), dtype=np.int64)
    cb = np.empty((k, n + 1))
    ncand = np.zeros(k + 1, dtype=np.int64)
    pos = np.zeros(k + 1, dtype=np.int64)
    cur = np.full(k + 1, -2, dtype=np.int64)
    dist = np.empty((k + 1, n_rules), dtype=np.int64)
    st = np.zeros(k + 1, dtype=np.int64)
    f = np.zeros(k + 1)
    nb = np.full(k + 1, np.inf)  # each node's own bound
    g = np.zeros(k + 1)
    pvu = np.zeros((k + 1, n_types))
    cnt = np.zeros((k + 1, n_types), dtype=np.int64)
    used = np.zeros(max(n, 1), dtype=np.bool_)
    words = np.zeros(n_words, dtype=np.uint64)
    two_sided = np.zeros(n_types, dtype=np.bool_)
    for j in range(floor_types.shape[0]):
        two_sided[floor_types[j]] = True

    nodes = 0
    memo_hits = 0
    bound_prunes = 0
    floor_prunes = 0
    leaves = 0
    improvements = 0
    complete = True
    dist[0, :] = dist0
    f[0] = f0
    tol = tol_rel * abs(inc_val) + tol_abs if inc_val > NEG else 0.0
    next_check = min(1024, node_limit)
    depth = 0
    expand = True
    while True:
        if expand:
            s = np.int64(depth)  # int64, never the literal 0: one compile of _expand
            m, bp, fp = _expand(s, dist[s], st[s], f[s], g[s], pvu[s], cnt[s], used, inc_val + tol, forced[s], nb[s],
                                P, L, R, W, cand[s], cb[s])
            bound_prunes += bp
            floor_prunes += fp
            ncand[s] = m
            pos[s] = 0
            cur[s] = -2
            expand = False
        if nodes >= next_check:  # checked where the open list is consistent
            if nodes >= node_limit or stop[0] != 0 or now() > deadline:
                complete = False
                break
            next_check = min(nodes + 1024, node_limit)
        s = depth
        if pos[s] >= ncand[s]:
            c_old = cur[s]
            if c_old >= 0:
                used[c_old] = False
                words[c_old >> 6] ^= np.uint64(1) << np.uint64(c_old & 63)
            cur[s] = -2
            if depth == 0:
                break
            depth -= 1
            continue
        j = pos[s]
        pos[s] = j + 1
        if cb[s, j] <= inc_val + tol:
            bound_prunes += ncand[s] - j
            pos[s] = ncand[s]
            continue
        c = cand[s, j]
        nb[s + 1] = cb[s, j]
        c_old = cur[s]
        if c_old >= 0:
            used[c_old] = False
            words[c_old >> 6] ^= np.uint64(1) << np.uint64(c_old & 63)
        cur[s] = c
        nodes += 1
        s1 = s + 1
        for r in range(n_rules):
            v = dist[s, r] + 1
            dist[s1, r] = gap[r] if v > gap[r] else v
        pvu[s1, :] = pvu[s]
        cnt[s1, :] = cnt[s]
        if c >= 0:
            t = types[c]
            used[c] = True
            words[c >> 6] ^= np.uint64(1) << np.uint64(c & 63)
            dist[s1, t] = 1
            dist[s1, any_idx] = 1
            pvu[s1, t] = pvu[s, t] + pv[s]
            cnt[s1, t] = cnt[s, t] + 1
            st[s1] = trans[st[s], 1 + t]
            f[s1] = f[s] + red[c, s]
            g[s1] = g[s] + values[c, s]
        else:
            st[s1] = trans[st[s], 0]
            f[s1] = f[s]
            g[s1] = g[s]
        if s1 == k:
            leaves += 1
            if g[s1] > inc_val and _leaf_ok(pvu[s1], pv_shown, lo_cmp, hi_cmp):
                inc_val = g[s1]
                tol = tol_rel * abs(inc_val) + tol_abs
                improvements += 1
                inc_plan[:] = cur[:k]
            continue
        if memo_on:
            # key: slot, exact distances, cards used; dominance on value and PV
            code = np.int64(s1)
            for r in range(n_rules):
                code |= (dist[s1, r] - 1) << dshift[r]
            h = np.uint64(code) * np.uint64(0x9E3779B97F4A7C15)
            for w in range(n_words):
                h = (h ^ words[w]) * np.uint64(0xBF58476D1CE4E5B9)
                h ^= h >> np.uint64(31)
            home = np.int64(h & np.uint64(mask))
            slot = -1
            pruned = False
            for probe in range(4):
                e = (home + probe) & mask
                if memo_key[e] == 0:  # empty (a key holds its slot, >= 1)
                    if slot < 0:
                        slot = e
                    break
                if memo_key[e] != code:
                    continue
                same = True
                for w in range(n_words):
                    if memo_used[e, w] != words[w]:
                        same = False
                        break
                if not same:
                    continue
                stored_dom = memo_g[e] >= g[s1]
                new_dom = g[s1] >= memo_g[e]
                for t in range(n_types):
                    a = memo_pv[e, t]
                    bb = pvu[s1, t]
                    if two_sided[t] and a != bb:
                        stored_dom = False
                        new_dom = False
                    if a > bb:
                        stored_dom = False
                    if bb > a:
                        new_dom = False
                if stored_dom:
                    pruned = True
                    break
                if new_dom:
                    slot = e
            if pruned:
                memo_hits += 1
                continue
            if slot < 0:
                slot = (home + (nodes & 3)) & mask
            memo_key[slot] = code
            memo_used[slot, :] = words
            memo_pv[slot, :] = pvu[s1]
            memo_g[slot] = g[s1]
        depth = s1
        expand = True

    bound = inc_val
    if not complete:
        for d in range(depth + 1):
            if pos[d] < ncand[d] and cb[d, pos[d]] > bound:
                bound = cb[d, pos[d]]
    stats[0] += nodes
    stats[1] += memo_hits
    stats[2] += bound_prunes
    stats[3] += floor_prunes
    stats[4] += leaves
    stats[5] += improvements
    return inc_val, bound, complete
