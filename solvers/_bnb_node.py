"""Node-local bounds of the branch-and-bound search (:mod:`solvers._bnb_kernels` describes the bound).

:func:`_expand` lists a node's children with their bounds, best first: the plain
relaxation's, tightened for the node (unused cards' prices, multipliers whose
rows the suffix cannot reach, a grid of tables with one multiplier moved), and
the split relaxation's (:mod:`solvers._core.split`); the smaller of the two.
Argument bundles ``P``, ``L``, ``R``, ``W`` as in :mod:`solvers._bnb_kernels`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from solvers._core.dp import backward_dp
from solvers._core.knapsack import knapsack_at
from solvers._core.prices import copy_into
from solvers._core.resources import left_units
from solvers._core.split import need_left

NEG = -np.inf


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
        for t in range(n_types):
            copy_into(rr[t], r[t])
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
        for s in range(k + 1):
            for q in range(n_states):
                out[s, q, j] = tab[s, q, 0]
    return out


@njit(cache=True)
def type_slack(red, types, card_start, card_list):
    """:func:`solvers._bnb_relax.slack_table`'s kernel: ``(rmax, slack)``, ``rmax[t, s]`` the best reduced
    value of a type-``t`` card at slot ``s`` (-inf: none), ``slack[c, s]`` the least ``rmax - red`` of card
    ``c`` from slot ``s`` on (``inf`` where ``red`` is not finite, and at ``s = K``)."""
    n, k = red.shape
    t_count = card_start.shape[0] - 1
    rmax = np.full((t_count, k), NEG)
    for t in range(t_count):
        for i in range(card_start[t], card_start[t + 1]):
            c = card_list[i]
            for s in range(k):
                if red[c, s] > rmax[t, s]:
                    rmax[t, s] = red[c, s]
    slack = np.full((n, k + 1), np.inf)
    for c in range(n):
        t = types[c]
        for s in range(k - 1, -1, -1):
            d = rmax[t, s] - red[c, s] if np.isfinite(red[c, s]) else np.inf
            slack[c, s] = d if d < slack[c, s + 1] else slack[c, s + 1]
    return rmax, slack


# ------------------------------------------------------------- node-local bounds
@njit(cache=True, inline="always")
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


@njit(cache=True, inline="always")
def _credit_without(u, i, ex, tmin):
    """:func:`_credit` (same ``most``) with the card at sorted position ``i`` left out."""
    a = tmin[1, i]
    b = tmin[2, i] - ex[u, i]
    return a if a < b else b


@njit(cache=True, inline="always")
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


@njit(cache=True, inline="always")
def _grid_gain(Hg, s1, nst, h_base, grid_kind, grid_type, grid_delta, V, placed, alpha):
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
            gain = Hg[s1, nst, j] - h_base + grid_delta[j] * all_caps
        else:
            u = grid_type[j]
            v = 0 if placed < 0 else (2 if u == placed else 1)
            gain = Hg[s1, nst, j] - h_base + grid_delta[j] * V[v, 3 + kind, u]
        if gain < best:
            best = gain
    return best


@njit(cache=True, inline="always")
def _floors_reachable(floor_types, V, placed):
    """Whether every share floor stays reachable for a child (``placed``: its card type, -1 the organic
    item), by :func:`_type_terms` row 6."""
    for j in range(floor_types.shape[0]):
        u = floor_types[j]
        if V[0 if placed < 0 else (2 if u == placed else 1), 6, u] == 0.0:
            return False
    return True


@njit(cache=True, inline="always")
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


@njit(cache=True, inline="always")
def _split_terms(s, dist_s, pvu_s, cnt_s, pv, gap, split, Sp):
    """What each type adds to the split relaxation's bound of a node's children, less the DP's suffix.

    ``Sp[v, :, u]``: type ``u``'s floor and count terms, its cap's knapsack from the units it has left
    (-inf when the cap is already broken) and its floor's knapsack (0 where it has none), for a child
    that places no type-``u`` card (``v = 0``: the organic item or another type's card) or one
    (``v = 1``). Computed once per node, not once per child (:func:`_split_child`).
    """
    res, fl = split.res, split.floors
    beta, gamma, count, lo, tables = split.beta, split.gamma, split.count, split.lo, split.tables
    res_of, fl_of, fl_count, fl_tables = res.of_type, fl.of_type, fl.count, fl.tables
    s1 = s + 1
    for u in range(beta.shape[0]):
        for v in range(2):
            p = pvu_s[u] + (pv[s] if v == 1 else 0.0)
            n = cnt_s[u] + v
            d = 0 if v == 1 else min(dist_s[u] + 1, gap[u]) - 1
            Sp[v, 0, u] = gamma[u] * (count[u] - n) - beta[u] * (lo[u] - p)
            Sp[v, 1, u] = 0.0
            Sp[v, 2, u] = 0.0
            j = res_of[u]
            if j >= 0:
                q = left_units(res, j, p)
                Sp[v, 1, u] = NEG if q < 0 else knapsack_at(tables[j], s1, d, q, gap[u])
            j = fl_of[u]
            if j >= 0:
                left = fl_count[j] - n
                Sp[v, 2, u] = NEG if left < 0 else fl_tables[j, s1, d, need_left(fl.lo[j], fl.delta[j], fl.need[j],
                                                                                 p), left]


@njit(cache=True, inline="always")
def _split_child(h, placed, Sp):
    """The split relaxation's bound of a child (type ``placed`` at the slot, -1 the organic item), less its
    prefix value and unused cards' prices: the DP's suffix ``h`` plus every type's terms (:func:`_split_terms`)."""
    b = h
    for u in range(Sp.shape[2]):
        v = 1 if u == placed else 0
        b += Sp[v, 0, u]
        b += Sp[v, 1, u]
        b += Sp[v, 2, u]
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
    node) and the split relaxation's (:func:`_split_child`), both valid. Writes
    cards (``-1``: organic) and bounds to ``out_card``/``out_bound`` and returns
    ``(count, bound_prunes, floor_prunes)``. ``W`` holds scratch arrays.
    """
    any_idx = dist_s.shape[0] - 1
    if dist_s[any_idx] < P[6][any_idx] and only < 0:
        if own > thr:
            out_card[0] = -1
            out_bound[0] = own
            return 1, 0, 0
        return 0, 1, 0
    # (Tuples read once, here: each read of an array from a tuple costs a reference count increment and
    # decrement, which inside the loops below took ~40 % of a node's time on stress-device.)
    values, allowed, card_start, card_list, types, pv, gap, mcount, pv_shown, hi_cmp, lo_cmp, floor_types, margin = P
    red, mu, slack, H, trans = L[0]
    alpha, Hg, grid_kind, grid_type, grid_delta, split = L[1], L[7], L[8], L[9], L[10], L[11]
    split_mu, split_slack, split_H = split.mu, split.slack, split.H
    ex, ex_card, ex_pos, n_ex, tmin, V, credit, ex2, ex_card2, ex_pos2, tmin2, credit2, Sp = W
    n_types = card_start.shape[0] - 1
    s1 = s + 1
    organic = np.int64(-1)  # a typed variable, not a literal: one compile of each callee
    m = 0
    bound_prunes = 0
    floor_prunes = 0
    # unused cards' prices: per type, their excesses over what the suffix can earn back
    tot_mu = 0.0
    for t in range(n_types):
        n_ex[t], part = _sort_excess(t, mu, slack, s1, used, card_start, card_list, ex, ex_card, ex_pos)
        tot_mu += part
        if split.on:
            _sort_excess(t, split_mu, split_slack, s1, used, card_start, card_list, ex2, ex_card2, ex_pos2)
    _type_terms(s, dist_s, pvu_s, cnt_s, L, R, pv, pv_shown, lo_cmp, margin, V)
    for u in range(n_types):
        credit[0, u] = _credit(u, V[0, 2, u], ex, n_ex, tmin)
        credit[1, u] = _credit(u, V[1, 2, u], ex, n_ex, tmin)
        if split.on:
            credit2[0, u] = _credit(u, V[0, 2, u], ex2, n_ex, tmin2)
            credit2[1, u] = _credit(u, V[1, 2, u], ex2, n_ex, tmin2)
    credit2_other = 0.0
    if split.on:
        _split_terms(s, dist_s, pvu_s, cnt_s, pv, gap, split, Sp)
        credit2_other = credit2[1].sum()
    # the organic child
    nst = trans[st_s, 0]
    b = f_s + H[s1, nst] - tot_mu
    for u in range(n_types):
        b += credit[0, u] - V[0, 0, u]
    if b > thr:
        b += _grid_gain(Hg, s1, nst, H[s1, nst], grid_kind, grid_type, grid_delta, V, organic, alpha)
    if b > thr and split.on:
        b = min(b, g_s + credit2[0].sum() + _split_child(split_H[s1, nst], organic, Sp))
    if only >= 0:
        pass
    elif b <= thr:
        bound_prunes += 1
    elif not _floors_reachable(floor_types, V, organic):
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
        if not _floors_reachable(floor_types, V, t):
            floor_prunes += 1
            continue
        base = f_s + H[s1, nst] - tot_mu
        for u in range(n_types):
            if u == t:
                base -= V[2, 0, u]
            else:
                base += credit[1, u] - V[1, 0, u]
        base += _grid_gain(Hg, s1, nst, H[s1, nst], grid_kind, grid_type, grid_delta, V, t, alpha)
        _credit(t, V[2, 2, t], ex, n_ex, tmin)
        split_base = NEG
        if split.on:
            _credit(t, V[2, 2, t], ex2, n_ex, tmin2)
            split_base = g_s + credit2_other - credit2[1, t] + _split_child(split_H[s1, nst], t, Sp)
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
    # the same for the split relaxation's card prices, and its per-type terms (:func:`_split_terms`)
    return (ex, ex_card, ex_pos, n_ex, tmin, V, credit, ex.copy(), ex_card.copy(), ex_pos.copy(), tmin.copy(),
            credit.copy(), np.zeros((2, 3, n_types)))


@njit(cache=True)
def _leaf_ok(pvu_row, pv_shown, lo_cmp, hi_cmp):
    """The share rules exactly as :meth:`MixProblem.check` compares them."""
    for t in range(pv_shown.shape[0]):
        share = pv_shown[t] + pvu_row[t]
        if share < lo_cmp[t] or share > hi_cmp[t]:
            return False
    return True
