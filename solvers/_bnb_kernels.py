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
(:func:`_credit`), multipliers whose rows the suffix can no longer reach drop
out (:func:`_type_terms`), and a grid of tables with one multiplier moved picks
the best for the node (:func:`_grid_gain`).

Argument bundles (tuples, so that the kernels' signatures stay readable)
-----------------------------------------------------------------------
``P`` the problem: ``(values, allowed, card_start, card_list, types, pv, gap,
mcount, pv_shown, hi_cmp, lo_cmp, floor_types, margin)``; cards are grouped by
type, ``card_list[card_start[t]:card_start[t + 1]]`` being type ``t``'s.
``L`` the relaxation: ``((red, mu, slack, H, trans), alpha, beta, gamma, hi_b,
lo_b, mcount_f, Hg, grid_kind, grid_type, grid_delta)``; ``red[c, s]`` is the
reduced value of card ``c`` at slot ``s`` (``-inf`` where it may not stand).
``R`` the reach tables: ``(pv_reach, offsets, count_reach, offsets, dims,
kmax)``. ``W`` scratch arrays from :func:`_scratch`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from solvers._clock import now  # time.perf_counter() inside a kernel
from solvers._core.dp import backward_dp
from solvers._core.resources import left_units

NEG = -np.inf


# ------------------------------------------------------------------ grid tables
@njit(cache=True)
def grid_tables(r, pv, alpha, trans, res, grid_kind, grid_type, grid_delta):
    """DP tables with share or count multipliers moved, one table per grid point.

    ``grid_kind[j]``: 0 share cap (``alpha``), 1 share floor (``beta``), 2 count
    cap (``gamma``) of type ``grid_type[j]``, moved by ``grid_delta[j]``; 3 every
    share cap at once, scaled by ``1 + grid_delta[j]``. Returns the tables as
    ``(K + 1, S, J)`` (a node reads all ``J`` at once). ``res`` tracks no resource.
    """
    n_types, k = r.shape
    n_states = trans.shape[0]
    n_grid = grid_type.shape[0]
    out = np.empty((k + 1, n_states, n_grid))
    tab = np.empty((k + 1, n_states, 1))
    rr = np.empty((n_types, k))
    choice = np.empty((k + 1, n_states, 1), dtype=np.int8)
    for j in range(n_grid):
        rr[:, :] = r
        d = grid_delta[j]
        kind = grid_kind[j]
        for t in range(n_types):
            if kind != 3 and t != grid_type[j]:
                continue
            for s in range(k):
                if rr[t, s] != NEG:
                    if kind == 0:
                        rr[t, s] -= d * pv[s]
                    elif kind == 1:
                        rr[t, s] += d * pv[s]
                    elif kind == 2:
                        rr[t, s] -= d
                    else:
                        rr[t, s] -= d * alpha[t] * pv[s]
        backward_dp(rr, trans, res, tab, choice)
        out[:, :, j] = tab[:, :, 0]
    return out


# ------------------------------------------------------------------ reach tables
@njit(cache=True)
def pv_reach(pv, avail, gap, gap_any, kdim):
    """``out[s, d, da, k]``: most PV one type can still collect from slot ``s`` on.

    ``d``/``da`` (0-based: distance - 1) are the type's and the any-card
    distances, ``k`` the cards it may still place (``kdim == 1``: no count
    limit). Other types are ignored, so this over-estimates: safe for pruning.
    """
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


# ------------------------------------------------------------- node-local bounds
@njit(cache=True)
def _credit(u, most, ex, n_ex, tmin):
    """The part of type ``u``'s unused-card prices that a suffix may still need.

    The suffix holds at most ``most`` more type-``u`` cards. Card ``c`` keeps
    price ``e_c = max(0, mu_c - slack_c)`` without raising any slot above the
    table (``slack_c``: how far ``c`` stays below its type's best from here on);
    dropping the prices of a set Z instead raises each type-``u`` slot by at most
    ``max_Z e``. With ``e`` sorted descending the best is ``min_j T_j`` with
    ``T_j = sum(e[:j]) + most * e[j]`` (``e[len] = 0``). Fills ``tmin`` so that
    :func:`_credit_without` can leave one card out in O(1); returns the minimum.
    """
    ne = n_ex[u]
    run = 0.0
    for j in range(ne):
        tmin[0, j] = run + most * ex[u, j]
        run += ex[u, j]
    tmin[0, ne] = run
    # tmin[1, j]: min of T over 0..j-1; tmin[2, j]: min of T over j+1..ne
    lo = np.inf
    for j in range(ne + 1):
        tmin[1, j] = lo
        if tmin[0, j] < lo:
            lo = tmin[0, j]
    hi = np.inf
    for j in range(ne, -1, -1):
        tmin[2, j] = hi
        if tmin[0, j] < hi:
            hi = tmin[0, j]
    return lo


@njit(cache=True)
def _credit_without(u, i, ex, tmin):
    """:func:`_credit` (same ``most``) with the card at sorted position ``i`` left out."""
    a = tmin[1, i]
    b = tmin[2, i] - ex[u, i]
    return a if a < b else b


@njit(cache=True)
def _type_terms(s, dist_s, pvu_s, cnt_s, L, R, pv, pv_shown, lo_cmp, margin, V):
    """What a child's bound needs of each type, for each way the child changes it.

    Variant ``v`` of type ``u``: 0 an organic child, 1 a card of another type
    (the any-card distance restarts), 2 a card of type ``u``. Rows of
    ``V[v, :, u]``: 0 what the constant may drop, 1 the most PV and 2 the most
    cards the suffix can still give ``u``, 3-5 the grid quantities (PV cap the
    suffix can use, minus the PV still needed, count it can use), 6 whether the
    share floor is still reachable (1.0 or 0.0). Computing these once per node,
    not once per child, is what keeps a node cheap.

    The constant charges ``alpha[u] * (PV cap left)``, ``gamma[u] * (count
    left)`` and ``-beta[u] * (PV still needed)``. Dropping ``alpha[u]`` (or
    ``gamma[u]``) for the suffix raises its path by at most ``alpha[u]`` times the
    PV (count) the suffix can still hold, so only the smaller of the two need be
    charged; dropping ``beta[u]`` once the floor is met only lowers the path.
    """
    alpha, beta, gamma, hi_b, lo_b, mcount = L[1], L[2], L[3], L[4], L[5], L[6]
    reach, reach_off, creach, creach_off, rg, kmax = R
    n_types = alpha.shape[0]
    s1 = s + 1
    for u in range(n_types):
        g = rg[0, u]
        ga = rg[1, u]
        kd = rg[2, u]
        cells = g * ga
        du0 = dist_s[u] + 1
        if du0 > g:
            du0 = g
        da0 = dist_s[n_types] + 1
        if da0 > ga:
            da0 = ga
        for v in range(3):
            if v == 0:
                cell = (du0 - 1) * ga + (da0 - 1)
                npv = pvu_s[u]
                ncnt = cnt_s[u]
            elif v == 1:
                cell = (du0 - 1) * ga
                npv = pvu_s[u]
                ncnt = cnt_s[u]
            else:
                cell = 0
                npv = pvu_s[u] + pv[s]
                ncnt = cnt_s[u] + 1
            kk = 0
            if kd > 1:
                kk = kmax[u] - ncnt
                if kk < 0:
                    kk = 0
                if kk >= kd:
                    kk = kd - 1
            most_pv = reach[reach_off[u] + (s1 * cells + cell) * kd + kk]
            most = creach[creach_off[u] + s1 * cells + cell]
            cap = hi_b[u] - npv
            left = mcount[u] - ncnt
            need = lo_b[u] - npv
            drop = 0.0
            if alpha[u] > 0.0 and cap > most_pv:
                drop += alpha[u] * (cap - most_pv)
            if beta[u] > 0.0 and need < 0.0:
                drop -= beta[u] * need
            if gamma[u] > 0.0 and left > most:
                drop += gamma[u] * (left - most)
            V[v, 0, u] = drop
            V[v, 1, u] = most_pv
            V[v, 2, u] = most
            use = cap if cap < most_pv else most_pv
            V[v, 3, u] = use if use > 0.0 else 0.0
            V[v, 4, u] = -need if need > 0.0 else 0.0
            V[v, 5, u] = left if left < most else most
            V[v, 6, u] = 1.0 if pv_shown[u] + npv + most_pv >= lo_cmp[u] - margin else 0.0


@njit(cache=True)
def _grid_gain(hg_row, h_base, grid_kind, grid_type, grid_delta, V, placed, alpha):
    """How much lower the best table of the grid puts a child's bound (``<= 0``).

    Table ``j`` moves one multiplier by ``delta``; the child's bound changes by
    ``Hg[j] - H`` plus ``delta`` times what that multiplier charges for, capped by
    what the suffix can use (:func:`_type_terms` rows 3-5); a table that scales
    every share cap at once sums that over the types. ``placed``: the child's
    card type, or -1 for the organic item.
    """
    all_caps = 0.0
    for u in range(alpha.shape[0]):
        v = 0 if placed < 0 else (2 if u == placed else 1)
        all_caps += alpha[u] * V[v, 3, u]
    best = 0.0
    for j in range(grid_type.shape[0]):
        kind = grid_kind[j]
        if kind == 3:
            gain = hg_row[j] - h_base + grid_delta[j] * all_caps
        else:
            u = grid_type[j]
            v = 0 if placed < 0 else (2 if u == placed else 1)
            gain = hg_row[j] - h_base + grid_delta[j] * V[v, 3 + kind, u]
        if gain < best:
            best = gain
    return best


@njit(cache=True)
def _sort_excess(t, mu, slack, s1, used, card_start, card_list, ex, ex_card, ex_pos):
    """Type ``t``'s unused cards by price excess over their slack from slot ``s1`` on, largest first.

    Fills ``ex[t]``/``ex_card[t]`` (and ``ex_pos``: each card's place) for
    :func:`_credit`; returns ``(count, sum of their prices)``.
    """
    ne = 0
    total = 0.0
    for jj in range(card_start[t], card_start[t + 1]):
        c = card_list[jj]
        if used[c]:
            continue
        total += mu[c]
        e = mu[c] - slack[c, s1]
        if e < 0.0:
            e = 0.0
        i = ne
        while i > 0 and ex[t, i - 1] < e:
            ex[t, i] = ex[t, i - 1]
            ex_card[t, i] = ex_card[t, i - 1]
            i -= 1
        ex[t, i] = e
        ex_card[t, i] = c
        ne += 1
    for i in range(ne):
        ex_pos[ex_card[t, i]] = i
    return ne, total


@njit(cache=True)
def _split_part(s, nst, placed, dist_s, pvu_s, cnt_s, pv, gap, split):
    """The split relaxation's bound of a child, less its prefix value and unused cards' prices.

    ``placed``: the child's card type at slot ``s``, or -1 for the organic item;
    ``nst`` its gap state. Sums the DP's suffix, the floor and count terms and
    each capped type's knapsack from the units its cap has left (-inf when a
    cap is already broken).
    """
    res = split.res
    s1 = s + 1
    b = split.H[s1, nst]
    for u in range(split.beta.shape[0]):
        p = pvu_s[u] + (pv[s] if u == placed else 0.0)
        n = cnt_s[u] + (1 if u == placed else 0)
        b += split.gamma[u] * (split.count[u] - n) - split.beta[u] * (split.lo[u] - p)
        j = res.of_type[u]
        if j >= 0:
            d = 0 if u == placed else min(dist_s[u] + 1, gap[u]) - 1
            q = left_units(res, j, p)
            if q < 0:
                return NEG
            b += split.tables[j, s1, d, q]
    return b


@njit(cache=True)
def _expand(s, dist_s, st_s, f_s, g_s, pvu_s, cnt_s, used, thr, only, own, P, L, R, W, out_card, out_bound):
    """Children of a node at slot ``s`` with bound above ``thr``, best bound first.

    ``only``: -2 for every child, else the one child allowed (-1 organic, or a
    card). ``own``: the node's own bound; a node whose slot the any-card gap
    keeps organic passes it on to its one child unchanged (a valid bound, and
    the next slot tightens it again), which saves half the work when cards must
    stand apart.

    A child's bound is the smaller of the plain relaxation's (tightened for the
    node) and the split relaxation's (:func:`_split_part`), both valid. Writes
    cards (``-1``: organic) and bounds to ``out_card``/``out_bound`` and returns
    ``(count, bound_prunes, floor_prunes)``. ``W`` holds scratch arrays.
    """
    values, allowed, card_start, card_list, types, pv, gap, mcount, pv_shown, hi_cmp, lo_cmp, floor_types, margin = P
    red, mu, slack, H, trans = L[0]
    Hg, grid_kind, grid_type, grid_delta, split = L[7], L[8], L[9], L[10], L[11]
    ex, ex_card, ex_pos, n_ex, tmin, V, credit, ex2, ex_card2, ex_pos2, tmin2, credit2 = W
    n_types = card_start.shape[0] - 1
    any_idx = n_types
    s1 = s + 1
    m = 0
    bound_prunes = 0
    floor_prunes = 0
    if dist_s[any_idx] < gap[any_idx] and only < 0:
        if own > thr:
            out_card[0] = -1
            out_bound[0] = own
            return 1, 0, 0
        return 0, 1, 0
    # unused cards' prices: per type, their excesses over what the suffix can earn back
    tot_mu = 0.0
    for t in range(n_types):
        n_ex[t], part = _sort_excess(t, mu, slack, s1, used, card_start, card_list, ex, ex_card, ex_pos)
        tot_mu += part
        if split.on:
            _sort_excess(t, split.mu, split.slack, s1, used, card_start, card_list, ex2, ex_card2, ex_pos2)
    _type_terms(s, dist_s, pvu_s, cnt_s, L, R, pv, pv_shown, lo_cmp, margin, V)
    for u in range(n_types):
        credit[0, u] = _credit(u, V[0, 2, u], ex, n_ex, tmin)
        credit[1, u] = _credit(u, V[1, 2, u], ex, n_ex, tmin)
        if split.on:
            credit2[0, u] = _credit(u, V[0, 2, u], ex2, n_ex, tmin2)
            credit2[1, u] = _credit(u, V[1, 2, u], ex2, n_ex, tmin2)
    # the organic child
    nst = trans[st_s, 0]
    b = f_s + H[s1, nst] - tot_mu
    floors = True
    for u in range(n_types):
        b += credit[0, u] - V[0, 0, u]
    for j in range(floor_types.shape[0]):
        if V[0, 6, floor_types[j]] == 0.0:
            floors = False
    if b > thr:
        b += _grid_gain(Hg[s1, nst], H[s1, nst], grid_kind, grid_type, grid_delta, V, -1, L[1])
    if b > thr and split.on:
        b = min(b, g_s + credit2[0].sum() + _split_part(s, nst, -1, dist_s, pvu_s, cnt_s, pv, gap, split))
    if only >= 0:
        pass
    elif b <= thr:
        bound_prunes += 1
    elif not floors:
        floor_prunes += 1
    else:
        out_card[0] = -1
        out_bound[0] = b
        m = 1
    if dist_s[any_idx] < gap[any_idx] or only == -1:
        return m, bound_prunes, floor_prunes
    # cards, type by type
    for t in range(n_types):
        if dist_s[t] < gap[t] or cnt_s[t] >= mcount[t] or (only >= 0 and types[only] != t):
            continue
        if pv_shown[t] + (pvu_s[t] + pv[s]) > hi_cmp[t]:
            continue
        nst = trans[st_s, 1 + t]
        if nst < 0:
            continue
        floors = True
        for j in range(floor_types.shape[0]):
            u = floor_types[j]
            if V[2 if u == t else 1, 6, u] == 0.0:
                floors = False
        if not floors:
            floor_prunes += 1
            continue
        base = f_s + H[s1, nst] - tot_mu
        for u in range(n_types):
            if u == t:
                base -= V[2, 0, u]
            else:
                base += credit[1, u] - V[1, 0, u]
        base += _grid_gain(Hg[s1, nst], H[s1, nst], grid_kind, grid_type, grid_delta, V, t, L[1])
        _credit(t, V[2, 2, t], ex, n_ex, tmin)
        split_base = NEG
        if split.on:
            _credit(t, V[2, 2, t], ex2, n_ex, tmin2)
            split_base = g_s + credit2[1].sum() - credit2[1, t] + _split_part(s, nst, t, dist_s, pvu_s, cnt_s, pv,
                                                                              gap, split)
        for jj in range(card_start[t], card_start[t + 1]):
            c = card_list[jj]
            if used[c] or not allowed[c, s] or (only >= 0 and c != only):
                continue
            bc = base + red[c, s] + mu[c] + _credit_without(t, ex_pos[c], ex, tmin)
            if split.on and bc > thr:
                bc = min(bc, split_base + values[c, s] + _credit_without(t, ex_pos2[c], ex2, tmin2))
            if bc <= thr:
                bound_prunes += 1
                continue
            i = m
            while i > 0 and out_bound[i - 1] < bc:
                out_card[i] = out_card[i - 1]
                out_bound[i] = out_bound[i - 1]
                i -= 1
            out_card[i] = c
            out_bound[i] = bc
            m += 1
    return m, bound_prunes, floor_prunes


@njit(cache=True)
def _scratch(n, n_types):
    """Work arrays of :func:`_expand`: sorted price excesses per type and the per-type bound terms."""
    ex = np.zeros((n_types, n + 1))
    ex_card = np.zeros((n_types, n + 1), dtype=np.int64)
    ex_pos = np.zeros(max(n, 1), dtype=np.int64)
    n_ex = np.zeros(n_types, dtype=np.int64)
    tmin = np.zeros((3, n + 2))
    V = np.zeros((3, 7, n_types))
    credit = np.zeros((2, n_types))
    # the same for the split relaxation's card prices
    return (ex, ex_card, ex_pos, n_ex, tmin, V, credit, ex.copy(), ex_card.copy(), ex_pos.copy(), tmin.copy(),
            credit.copy())


@njit(cache=True)
def _leaf_ok(pvu_row, pv_shown, lo_cmp, hi_cmp):
    """The share rules exactly as :meth:`MixProblem.check` compares them."""
    for t in range(pv_shown.shape[0]):
        share = pv_shown[t] + pvu_row[t]
        if share < lo_cmp[t] or share > hi_cmp[t]:
            return False
    return True


# ---------------------------------------------------------------------- the beam
@njit(cache=True)
def beam(P, L, R, dist0, f0, width, inc_val, tol_rel, tol_abs, deadline, out_plan):
    """Beam search over slots ranked by the node bound; returns the best plan value found.

    Keeps every rule exactly (the plan it writes to ``out_plan`` passes
    ``check``), drops children whose bound cannot beat ``inc_val``, and keeps
    the best child of each pattern (distances and PV per type) only, so that
    card swaps do not fill the beam. Returns -inf when no leaf is feasible or
    time ran out.
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
    for s in range(k):
        if (s & 7) == 7 and now() > deadline:
            return NEG
        thr = inc_val + tol_rel * abs(inc_val) + tol_abs if inc_val > NEG else NEG
        m = 0
        for i in range(size):
            got, _, _ = _expand(s, b_dist[i], b_st[i], b_f[i], b_g[i], b_pvu[i], b_cnt[i], b_used[i], thr, -2,
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
@njit(cache=True)
def search(P, L, R, dist0, f0, memo, dshift, inc_plan, inc_val, node_limit, deadline, tol_rel, tol_abs, stats,
           forced):
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
    before an unrestricted search uses it again.

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
            s = depth
            m, bp, fp = _expand(s, dist[s], st[s], f[s], g[s], pvu[s], cnt[s], used, inc_val + tol, forced[s], nb[s],
                                P, L, R, W, cand[s], cb[s])
            bound_prunes += bp
            floor_prunes += fp
            ncand[s] = m
            pos[s] = 0
            cur[s] = -2
            expand = False
        if nodes >= next_check:  # checked where the open list is consistent
            if nodes >= node_limit or now() > deadline:
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
                if memo_key[e] == -1:
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
