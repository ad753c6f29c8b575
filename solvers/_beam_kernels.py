"""Numba kernels of the beam solver (:mod:`solvers.beam`): arrays in, arrays out.

Everything a plan needs runs inside one call of :func:`plan_kernel`, so that a
solve pays Numba's argument unboxing once (keep its arguments explicit: a call
that leaves a defaulted argument out goes through a dispatch path ~170 us slower).
The solver calls :func:`plan_and_check`, which also runs the library's plan check
(:mod:`mixrank._fastcheck`, the one every solver's plan goes through) on the best
plan in the same call. The pieces, in the order plan_kernel runs them:

* :func:`gap_machine` — the joint gap rules as a small state machine: a state is
  the vector of capped distances since the last card of each type and of any
  card (see :mod:`mixrank.arrays`), only the states reachable from the history
  are enumerated (about 20 on ``device`` where the product of the gaps is ~140),
  and each state knows its successor after an organic slot and after a card of
  each type (-1 where a gap forbids it). :func:`machine_tables` keeps only the
  *free* states (where a card may come): after a card, the any-card gap forces
  organic slots, so a card at slot s leads straight to slot s + min_gap_any.
* :func:`lagrange_prices` — the Lagrangian relaxation that ranks the beam: card
  uniqueness, the share caps and floors and the count caps are priced (``pi`` per
  card, ``lam``/``nu`` per type and unit of PV, ``mu`` per type and card), and the
  rest — every gap rule and every allowed pair — is solved exactly by a dynamic
  program over (slot, free state) (:func:`gap_dp`). Deflected Polyak subgradient
  steps move the prices; each step also turns the program's path into a plan
  (:func:`path_incumbent`: distinct cards greedily, then the caps repaired), and the
  best such plan aims the next step and joins the final plans. The best dual value
  found is a proven upper bound on the optimum, and the program's table ``H`` (the
  priced value the slots from s on can still add) is the beam's look-ahead estimate.
* :func:`beam_search` — the search over slots: children are the organic item or
  the ``cards_per_type`` best unused allowed cards of each type (by priced value),
  ranked by priced value so far + ``H`` + a tenth of the plain value so far; equal
  states are merged; a reach table keeps min-share floors reachable. A type whose
  cards allowed at a slot are all used takes it by re-matching its cards
  (:func:`rematched_child`), so every slot pattern the cards can fill is reachable.
* :func:`rematch_plan` — the final beam's plans are re-matched: the slots each
  plan gives a type stay, and the type's cards are assigned to them optimally
  (Hungarian method, :func:`hungarian_min`). Shares, gaps and counts depend only
  on the slots, so the plan stays feasible and can only gain.
* :func:`local_search` — optional (``ls_starts`` > 0): from the best ``ls_starts`` re-matched
  plans, a first-improvement search on which slots hold a card of which type (remove, re-type,
  shift, swap, insert one card slot), each move valued exactly by re-matching the changed types
  and screened first by a dual bound (most moves cost no assignment problem). Each type's
  assignment problem is kept solved (a square problem with dummy rows, assignment and potentials),
  so a move, which replaces one row of a type's problem, is re-matched by one augmentation from a
  copy of that state, stopped early once its dual bound shows the move cannot gain. The solver's
  default runs it from one start after a width-12 beam: about the plan quality of a width-32 beam
  alone, at ~0.85 of its time on ``device`` (see :mod:`solvers.beam`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from mixrank._fastcheck import _check_plan  # the library's compiled plan check (make_solution's)
from solvers._clock import now  # time.perf_counter() inside a kernel (used only when a deadline is set)

NEG = -1e300
#: Relative margin that plan_and_check adds to the Lagrangian bound against rounding (it stays a proven bound).
BOUND_MARGIN = 1e-9
#: Most states of the gap machine; above it, type rules with the largest gaps are left out of the estimate.
MAX_MACHINE_STATES = 4096
#: Share of the plain value so far added to the ranking key (breaks the relaxation's optimism in favour of value banked).
VALUE_TIE = 0.1
#: Deflection of the subgradient direction (d = g + DEFLECTION * d_prev).
DEFLECTION = 0.45
#: Subgradient steps without a better dual value before the step size is halved.
PATIENCE = 2
#: Step scale of the share multipliers (lam, nu; per unit of PV) against the card and count ones (per card): the
#: steps run in the variables lam / sqrt(scale), a change of units, so each stays a Polyak step. A share slack is
#: a sum of PV (slot weights ~0.2-1, mean ~0.4 on ``device``), far smaller than the card and count slacks, so at
#: scale 1 the share prices crawl. Chosen by the bound alone: on ``device`` seeds 0-99 (400 instances) the mean
#: gap of the bound after 25 steps to the optimum falls from 2.35 % at scale 1 to 1.91, 1.71, 1.69 and 1.79 % at
#: 8, 10, 12 and 16. The plans' quality moves by chance with the prices (mean gap 0.25-0.30 % at every scale
#: from 1 to 16, no trend), so it was not used to choose.
SHARE_STEP_SCALE = 12.0
#: The beam keeps half its width on the first ``k // EARLY_SLOTS_DIVISOR`` slots (on ``device``: the same plan
#: quality as the full width throughout, for 17 % less beam work; a narrow *late* beam loses quality).
EARLY_SLOTS_DIVISOR = 3
#: Width factor of a retry when no state of the beam could meet the min-share floors (at most two retries).
RETRY_GROWTH = 8
#: Most assignment problems one local search run solves (a cap on its work; it stops earlier at a local optimum).
#: A "solve" there: a type's problem solved at the start (counted twice, with its bound tables), a move's
#: changed type valued (one augmentation from the kept state), or an accepted type's tables refreshed.
LS_MAX_SOLVES = 200
#: Least relative gain (of the plan value) that a move's bound must promise before the move is valued exactly:
#: moves that can gain less are not worth an assignment problem each.
LS_MIN_GAIN = 1e-9
#: Assignment problems the local search solves between two looks at the clock when a deadline is set.
LS_CLOCK_SOLVES = 16
#: Work units (roughly inner-loop steps) between two looks at the clock when a deadline is set.
CLOCK_STRIDE = 40_000


# --------------------------------------------------------------------- problem tables
@njit(cache=True)
def type_caps(types, max_count, n_types):
    """Most cards of each type a plan can hold: min(max_count, cards of the type)."""
    caps = np.zeros(n_types, np.int64)
    for c in range(types.shape[0]):
        caps[types[c]] += 1
    for t in range(n_types):
        caps[t] = min(caps[t], max_count[t])
    return caps


@njit(cache=True)
def cards_by_type(types, n_types):
    """Card indices grouped by type (stable): ``tcards[tstart[t]:tstart[t + 1]]`` are type t's cards."""
    n = types.shape[0]
    tstart = np.zeros(n_types + 1, np.int64)
    for c in range(n):
        tstart[types[c] + 1] += 1
    for t in range(n_types):
        tstart[t + 1] += tstart[t]
    fill = tstart[:n_types].copy()
    tcards = np.empty(n, np.int64)
    for c in range(n):
        tcards[fill[types[c]]] = c
        fill[types[c]] += 1
    return tcards, tstart


@njit(cache=True)
def masked_values(values, allowed, tcards):
    """(N, K) values with cards in type-grouped order, ``NEG`` where the pair is not allowed."""
    n, k = values.shape
    out = np.empty((n, k))
    ku = np.uint64(k)
    for j in range(n):
        c = tcards[j]
        row = values[c]
        ok = allowed[c]
        orow = out[j]
        for s in range(ku):  # row views and unsigned slots: a plain select, vectorised
            orow[s] = row[s] if ok[s] else NEG
    return out


@njit(cache=True)
def reach_table(types, pv, allowed, min_gap, caps, n_types):
    """reach[t, f, m]: most PV type t can collect in slots >= f with at most m more cards.

    Cards of type t are spaced by max(min_gap[t], min_gap_any) and only stand where
    one of them is allowed; other types and card identities are ignored, so this is
    an upper bound on what a real plan can reach.
    """
    n, k = allowed.shape
    m_max = 0
    for t in range(n_types):
        m_max = max(m_max, caps[t])
    reach = np.zeros((n_types, k + 1, m_max + 1))
    g_any = min_gap[n_types]
    usable = np.zeros(k, np.bool_)
    ku = np.uint64(k)
    one = np.uint64(1)
    # (Indexed in full rather than through row views: a view made in a loop costs an atomic reference count
    # pair per iteration.)
    for t in range(n_types):
        spacing = max(min_gap[t], g_any)
        for s in range(ku):
            usable[s] = False
        for c in range(n):
            if types[c] == t:
                for s in range(ku):  # branch-free (and vectorised): a slot is usable if any card of t is allowed
                    usable[s] |= allowed[c, s]
        ct = np.uint64(caps[t])
        for s in range(k - 1, -1, -1):  # each best is take if take > best else best, as a select
            after = s + spacing
            if usable[s] and after <= k:
                p = pv[s]
                for m in range(one, ct + one):
                    take = p + reach[t, after, m - one]
                    best = reach[t, s + 1, m]
                    reach[t, s, m] = take if take > best else best
            elif usable[s]:
                take = pv[s] + 0.0
                for m in range(one, ct + one):
                    best = reach[t, s + 1, m]
                    reach[t, s, m] = take if take > best else best
            else:
                for m in range(one, ct + one):
                    reach[t, s, m] = reach[t, s + 1, m]
            last = reach[t, s, ct]
            for m in range(ct + one, np.uint64(m_max) + one):
                reach[t, s, m] = last
    return reach


@njit(cache=True)
def floor_out_of_reach(t, need, left, f, reach):
    """True when type t still needs ``need`` PV for its floor but can no longer collect it from slot f on
    with at most ``left`` more cards (``reach`` is :func:`reach_table`'s bound).

    Written without branches (the beam's look-ahead sums it over the floors for every move, and its
    outcome is data-dependent); the table read is in bounds even when the other terms decide.
    """
    k = reach.shape[1] - 1
    return (need > 0.0) & ((left <= 0) | (need > reach[t, min(f, k), max(left, 0)]))


@njit(cache=True)
def short_of_share(t, s_next, pv_have, count, dist, min_gap, caps, share_lo, reach):
    """True when type t can no longer reach its min share from slot s_next on (``dist``: distances there)."""
    n_types = caps.shape[0]
    wait = max(0, max(min_gap[t] - dist[t], min_gap[n_types] - dist[n_types]))
    return floor_out_of_reach(t, share_lo[t] - pv_have, caps[t] - count, s_next + wait, reach)


# --------------------------------------------------------------------- gap machine
@njit(cache=True)
def _enumerate_states(min_gap, init_dist, tracked, max_states):
    """Breadth-first enumeration of the capped-distance states of the tracked rules (root = state 0).

    Returns (skip, place, dists, n_states); n_states is -1 when there are more than
    ``max_states`` (or the distance space is too large to index). Untracked rules are
    held at 1 (always satisfied), so the machine is then a relaxation of the rules.
    A state is found by its mixed-radix code: in a dense table when the distance
    space is small, else in a hash table. One row of ``st`` per state holds its
    distances, its successors (organic, then each type) and its code; the three
    results are views of one buffer (a few allocations instead of a dozen).
    """
    nd = min_gap.shape[0]
    T = nd - 1
    aux = np.empty(3 * nd, np.int64)
    space = 1
    for i in range(nd):
        gi = min_gap[i] if tracked[i] else 1
        aux[i] = gi
        aux[nd + i] = space
        if space > (1 << 40) // gi:
            return np.empty(0, np.int64), np.empty((T, 0), np.int64), np.empty((0, nd), np.int64), -1
        space *= gi
    dense = space <= 4096
    # Rows for 64 states first; a machine with more is enumerated again with twice the rows (the same
    # states in the same order: the search is deterministic), so that the search never swaps its arrays.
    cap = 64
    while True:
        st = np.empty((cap, 2 * nd + 1), np.int64)  # distances | successors (organic, type 0..T-1) | code
        index = np.full(space if dense else 4 * cap, -1, np.int64)  # code -> state (dense) or the hash table
        n = _bfs_states(aux, nd, dense, st, index, init_dist, max_states)
        if n != -2:
            break
        cap *= 2
    if n < 0:
        return np.empty(0, np.int64), np.empty((T, 0), np.int64), np.empty((0, nd), np.int64), -1
    out = np.empty(n * (1 + T + nd), np.int64)
    for q in range(n):
        out[q] = st[q, nd]
        for t in range(T):
            out[n + t * n + q] = st[q, nd + 1 + t]
        for i in range(nd):
            out[n + T * n + q * nd + i] = st[q, i]
    return out[:n], out[n:n + T * n].reshape((T, n)), out[n + T * n:].reshape((n, nd)), n


@njit(cache=True)
def _bfs_states(aux, nd, dense, st, index, init_dist, max_states):
    """The search of :func:`_enumerate_states` into rows ``st`` and table ``index``: the number of states,
    -1 past ``max_states``, or -2 when ``st`` has too few rows. ``aux`` holds the gaps, the radix strides and
    a row of scratch distances."""
    T = nd - 1
    cap = st.shape[0]
    hmask = index.shape[0] - 1
    code = 0
    for i in range(nd):
        aux[2 * nd + i] = min(init_dist[i], aux[i])
        code += (aux[2 * nd + i] - 1) * aux[nd + i]
    if dense:
        index[code] = 0
    else:
        index[(code * 0x9E3779B1) & hmask] = 0
    for i in range(nd):
        st[0, i] = aux[2 * nd + i]
        st[0, nd + i] = -1
    st[0, 2 * nd] = code
    n = 1
    q = 0
    while q < n:
        # The organic successor's distances and code; a type-t card's successor differs only in rules t and
        # any-card (both back to 1, which adds 0 to the code), so its code is the organic one less two terms.
        code_org = 0
        for i in range(nd):
            aux[2 * nd + i] = min(st[q, i] + 1, aux[i])
            code_org += (aux[2 * nd + i] - 1) * aux[nd + i]
        for action in range(-1, T):
            if action >= 0 and (st[q, T] < aux[T] or st[q, action] < aux[action]):
                continue
            if action < 0:
                code = code_org
            else:
                code = (code_org - (aux[2 * nd + action] - 1) * aux[nd + action]
                        - (aux[2 * nd + T] - 1) * aux[nd + T])
            slot = 0
            if dense:
                j = index[code]
            else:
                j = -1
                slot = (code * 0x9E3779B1) & hmask
                while index[slot] >= 0:
                    if st[index[slot], 2 * nd] == code:
                        j = index[slot]
                        break
                    slot = (slot + 1) & hmask
            if j < 0:
                if n >= max_states:
                    return -1
                if n == cap:
                    return -2
                j = n
                if dense:
                    index[code] = j
                else:
                    index[slot] = j
                for i in range(nd):
                    st[j, i] = aux[2 * nd + i]
                    st[j, nd + i] = -1
                if action >= 0:
                    st[j, action] = 1
                    st[j, T] = 1
                st[j, 2 * nd] = code
                n += 1
            st[q, nd + 1 + action] = j
        q += 1
    return n


@njit(cache=True)
def gap_machine(min_gap, init_dist, max_states):
    """The joint gap rules as a state machine (root = state 0).

    Returns (skip, place, dists, g_any, n_tracked): successor after an organic slot,
    after a type-t card (-1 where a gap forbids it), each state's capped distances,
    the any-card gap the machine keeps (1 when untracked), and the number of rules
    tracked. Every rule with a gap above 1 is tracked while the machine stays within
    ``max_states`` states; otherwise the type rule with the largest gap is dropped
    (the any-card rule last) until it fits: the machine then relaxes the rules it
    leaves out, and stays an optimistic model of the rest.
    """
    nd = min_gap.shape[0]
    tracked = np.zeros(nd, np.bool_)
    n_tracked = 0
    for i in range(nd):
        if min_gap[i] > 1:
            tracked[i] = True
            n_tracked += 1
    while True:
        skip, place, dists, n = _enumerate_states(min_gap, init_dist, tracked, max_states)
        if n > 0:
            return skip, place, dists, (min_gap[nd - 1] if tracked[nd - 1] else 1), n_tracked
        drop = -1
        for i in range(nd - 1):
            if tracked[i] and (drop < 0 or min_gap[i] > min_gap[drop]):
                drop = i
        if drop < 0:
            drop = nd - 1
        tracked[drop] = False
        n_tracked -= 1


@njit(cache=True)
def machine_tables(skip, place, dists, g_any):
    """Index tables of the dynamic program over the machine's *free* states.

    With an any-card gap ``g_any > 1`` the slots right after a card can only stay
    organic, so the program keeps only the states where a card may come (numbered
    0..F-1), and a card at slot s leads straight to slot s + g_any. Machine state i
    is worth ``H[s + delay[i], fwd[i]]`` at slot s. Returns (delay, fwd, skip_f,
    e_start, e_type, e_jump): free state f goes to ``skip_f[f]`` after an organic
    slot and has placements ``e_type/e_jump[e_start[f]:e_start[f + 1]]``.
    """
    T, S = place.shape
    nd = dists.shape[1]
    # All the tables are views of one buffer (one allocation instead of eight); at most T placements per state.
    buf = np.empty(6 * S + 1 + 2 * T * S, np.int64)
    delay = buf[:S]
    target = buf[S:2 * S]
    free_of = buf[2 * S:3 * S]
    fwd = buf[3 * S:4 * S]
    n_free = 0
    for i in range(S):
        wait = max(0, g_any - dists[i, nd - 1])
        delay[i] = wait
        j = i
        for _ in range(wait):
            j = skip[j]
        target[i] = j
        free_of[i] = -1
        if wait == 0:
            free_of[i] = n_free
            n_free += 1
    for i in range(S):
        fwd[i] = free_of[target[i]]
    skip_f = buf[4 * S:4 * S + n_free]
    e_start = buf[4 * S + n_free:4 * S + 2 * n_free + 1]
    e_start[0] = 0
    for i in range(S):
        f = free_of[i]
        if f < 0:
            continue
        skip_f[f] = free_of[skip[i]]
        m = 0
        for t in range(T):
            if place[t, i] >= 0:
                m += 1
        e_start[f + 1] = m
    for f in range(n_free):
        e_start[f + 1] += e_start[f]
    n_e = e_start[n_free]
    base = 4 * S + 2 * n_free + 1
    e_type = buf[base:base + n_e]
    e_jump = buf[base + n_e:base + 2 * n_e]
    for i in range(S):
        f = free_of[i]
        if f < 0:
            continue
        e = e_start[f]
        for t in range(T):
            j = place[t, i]
            if j >= 0:
                e_type[e] = t
                e_jump[e] = fwd[j]
                e += 1
    return delay, fwd, skip_f, e_start, e_type, e_jump


# --------------------------------------------------------------------- the priced gap DP
@njit(cache=True, fastmath=True)
def slot_values(vm, tstart, offset, price, pv, r):
    """r[t, s] = max over type-t cards j of (vm[j, s] - offset[j]) - price[t] * pv[s] (about NEG if none allowed).

    The cards are folded into the row four (then two, one) at a time: one load and one
    plain store of ``r[t]`` per pass, so that the compiler vectorises the pass over the
    slots (an in-place ``max`` of one card per pass becomes a slow masked store). Each
    entry is still max(...max(max(NEG, card a), card a + 1)..., card b - 1), in card order.
    """
    T, k = r.shape
    half_neg = 0.5 * NEG
    for t in range(T):
        a = tstart[t]
        b = tstart[t + 1]
        rt = r[t]
        if a == b:
            for s in range(k):
                rt[s] = NEG
            continue
        row = vm[a]
        o = offset[a]
        if a + 4 < b:  # the first pass takes the first card and four more (one pass less over the row)
            r1 = vm[a + 1]
            r2 = vm[a + 2]
            r3 = vm[a + 3]
            r4 = vm[a + 4]
            o1 = offset[a + 1]
            o2 = offset[a + 2]
            o3 = offset[a + 3]
            o4 = offset[a + 4]
            for s in range(k):
                rt[s] = max(max(max(max(max(NEG, row[s] - o), r1[s] - o1), r2[s] - o2), r3[s] - o3), r4[s] - o4)
            j = a + 5
        else:
            for s in range(k):
                rt[s] = max(NEG, row[s] - o)
            j = a + 1
        while j + 3 < b:
            r1 = vm[j]
            r2 = vm[j + 1]
            r3 = vm[j + 2]
            r4 = vm[j + 3]
            o1 = offset[j]
            o2 = offset[j + 1]
            o3 = offset[j + 2]
            o4 = offset[j + 3]
            for s in range(k):
                rt[s] = max(max(max(max(rt[s], r1[s] - o1), r2[s] - o2), r3[s] - o3), r4[s] - o4)
            j += 4
        while j + 1 < b:
            r1 = vm[j]
            r2 = vm[j + 1]
            o1 = offset[j]
            o2 = offset[j + 1]
            for s in range(k):
                rt[s] = max(max(rt[s], r1[s] - o1), r2[s] - o2)
            j += 2
        p = price[t]
        if j < b:  # the last card, folded into the final pass
            r1 = vm[j]
            o1 = offset[j]
            for s in range(k):
                m = max(rt[s], r1[s] - o1)
                rt[s] = m - p * pv[s] if m > half_neg else NEG
        else:
            for s in range(k):
                m = rt[s]
                rt[s] = m - p * pv[s] if m > half_neg else NEG


@njit(cache=True)
def dense_jumps(e_start, e_type, e_jump, n_types):
    """jump[t, f]: free state after a type-t card from free state f, or F (a column that is always NEG)."""
    F = e_start.shape[0] - 1
    jump = np.full((n_types, F), F, np.int64)
    for f in range(F):
        for e in range(e_start[f], e_start[f + 1]):
            jump[e_type[e], f] = e_jump[e]
    return jump


@njit(cache=True)
def gap_dp_tables(skip_f, jump):
    """The move tables in the layout :func:`gap_dp_rows` reads: ``moves[f]`` packs 16-bit column indices (organic
    successor, then the successor after a card of type 0, 1, 2; F, the NEG column, for a type that does not
    exist), and ``jump_u = jump.T`` (free-state-major), both unsigned (an unsigned index needs no negative-index
    wrap-around in the hot loop; a negative index, which would wrap to the NEG column, is stored as F)."""
    T, F = jump.shape
    moves = np.empty(F, np.uint64)
    jump_u = np.empty((F, max(T, 1)), np.uint32)
    for f in range(F):
        c = skip_f[f] if skip_f[f] >= 0 else F
        word = np.uint64(c)
        for t in range(T):
            c = jump[t, f] if jump[t, f] >= 0 else F
            jump_u[f, t] = c
        for t in range(3):
            c = F if t >= T else (jump[t, f] if jump[t, f] >= 0 else F)
            word |= np.uint64(c) << np.uint64(16 * (t + 1))
        moves[f] = word
    return moves, jump_u


@njit(cache=True)
def gap_dp_init(H, k):
    """The rows of ``H`` that :func:`gap_dp_rows` reads but never writes: rows >= k are 0, the last column NEG."""
    rows, cols = H.shape
    F = cols - 1
    for s in range(k, rows):
        for f in range(F):
            H[s, f] = 0.0
    for s in range(rows):
        H[s, F] = NEG


@njit(cache=True, fastmath=True)
def gap_dp_rows(r, moves, jump_u, g_any, H):
    """Rows 0..K-1 of :func:`gap_dp`'s table (the rest set by :func:`gap_dp_init`), tables from :func:`gap_dp_tables`.

    One pass over the free states per slot, every move of a state folded in registers
    (organic first, then the types in order). Up to three types read the packed moves
    (a missing type adds 0.0 + NEG, which never wins: the organic move is worth >= 0).
    """
    T, k = r.shape
    F = H.shape[1] - 1
    mask = np.uint64(0xFFFF)
    if T <= 3:
        for s in range(k - 1, -1, -1):
            nxt = H[s + 1]
            far = H[s + g_any]
            cur = H[s]
            r0 = r[0, s]
            r1 = r[1, s] if T > 1 else 0.0
            r2 = r[2, s] if T > 2 else 0.0
            for f in range(F):
                w = moves[f]
                m = nxt[w & mask]
                m = max(m, r0 + far[(w >> np.uint64(16)) & mask])
                m = max(m, r1 + far[(w >> np.uint64(32)) & mask])
                m = max(m, r2 + far[w >> np.uint64(48)])
                cur[f] = m
    else:
        for s in range(k - 1, -1, -1):
            nxt = H[s + 1]
            far = H[s + g_any]
            cur = H[s]
            for f in range(F):
                m = nxt[moves[f] & mask]
                for t in range(T):
                    m = max(m, r[t, s] + far[jump_u[f, t]])
                cur[f] = m


@njit(cache=True)
def gap_dp(r, skip_f, jump, g_any, H):
    """H[s, f]: most priced value the slots s.. can add from free state f (rows >= K are 0).

    ``H`` has K + g_any rows and F + 1 columns (the last is NEG: "no such move");
    machine state i is worth H[s + delay[i], fwd[i]]. A hot loop (:func:`lagrange_prices`)
    makes the tables and the constant rows once and calls :func:`gap_dp_rows` itself.
    """
    moves, jump_u = gap_dp_tables(skip_f, jump)
    gap_dp_init(H, r.shape[1])
    gap_dp_rows(r, moves, jump_u, g_any, H)


@njit(cache=True)
def path_incumbent(vm, tstart, pv, share_lo, share_hi, caps, path_s, path_t, n_path, plan, taken):
    """A plan from the relaxed program's path: per type, distinct cards on its slots, then repaired.

    The path keeps every gap rule the machine tracks. Its slots, in order, each take
    the best allowed card of their type not taken yet (a slot with none left stays
    organic); then, per type, the lowest-value placements are dropped while the
    type's count cap or share cap is broken (dropping a card never breaks a gap).
    Writes ``plan`` (rows of ``vm`` per slot, -1 organic; only the path's slots are
    touched, the caller keeps the rest at -1) and returns (value, meets every rule):
    the second is False when a floor is missed. PV sums run over the slots in order,
    like ``MixProblem.check``'s.
    """
    T = share_lo.shape[0]
    cnt = np.zeros(T, np.int64)
    pvk = np.zeros(T)
    for j in range(taken.shape[0]):
        taken[j] = False
    total = 0.0
    for q in range(n_path):
        s = path_s[q]
        t = path_t[q]
        bj = -1
        bv = 0.5 * NEG
        for j in range(tstart[t], tstart[t + 1]):
            x = vm[j, s]
            c = (x > bv) & (not taken[j])
            bv = x if c else bv
            bj = j if c else bj
        plan[s] = bj
        if bj >= 0:
            taken[bj] = True
        kept = bj >= 0
        total += bv if kept else 0.0
        cnt[t] += kept
        pvk[t] += pv[s] if kept else 0.0
    return path_repair(vm, pv, share_lo, share_hi, caps, path_s, path_t, n_path, plan, cnt, pvk, total,
                       np.empty(n_path + 1, np.int64))


@njit(cache=True, inline="always")
def path_repair(vm, pv, share_lo, share_hi, caps, path_s, path_t, n_path, plan, cnt, pvk, total, slots):
    """The repair and check of :func:`path_incumbent`, given the greedy plan's cards (``cnt``), PV (``pvk``) per
    type and value (``total``), each summed over the path in order: a type within its caps keeps them; any other
    is repaired as the plain method does (its kept slots, listed once in ``slots``, are scanned again after each
    drop), and then the value is summed again."""
    T = share_lo.shape[0]
    ok = True
    repaired = False
    for t in range(T):
        pv_t = pvk[t]
        if cnt[t] > caps[t] or pv_t > share_hi[t]:
            repaired = True
            m = 0
            for q in range(n_path):  # the type's slots that hold a card, in path order
                s = path_s[q]
                slots[m] = s
                m += (path_t[q] == t) & (plan[s] >= 0)
            left = m  # cards still on the type's slots
            while True:  # repair the count and share caps of type t, lowest value first
                if left > caps[t] and left > 0:
                    # The count check fails whatever the PV: only the worst card is needed (the plain loop's
                    # scan would find the same one and drop it), without the serial PV sum.
                    worst = -1
                    worst_v = np.inf
                    for i in range(m):
                        s = slots[i]
                        j = plan[s]
                        v = vm[max(j, 0), s]
                        v = v if j >= 0 else np.inf
                        c = v < worst_v
                        worst = s if c else worst
                        worst_v = v if c else worst_v
                    plan[worst] = -1
                    left -= 1
                    continue
                # Branch-free scan (a dropped slot adds 0 to the count and 0.0 to the PV, which never starts at
                # -0.0, and is worth +inf, above every value): the first least value is dropped, as in a plain scan.
                count = 0
                pv_t = 0.0
                worst = -1
                worst_v = np.inf
                for i in range(m):
                    s = slots[i]
                    j = plan[s]
                    keep = j >= 0
                    count += keep
                    pv_t += pv[s] if keep else 0.0
                    v = vm[max(j, 0), s]
                    v = v if keep else np.inf
                    c = v < worst_v
                    worst = s if c else worst
                    worst_v = v if c else worst_v
                if count <= caps[t] and pv_t <= share_hi[t]:
                    break
                if worst < 0:  # nothing left to drop (a negative cap; plan_kernel refuses those first)
                    ok = False
                    break
                plan[worst] = -1
                left -= 1
        if pv_t < share_lo[t]:
            ok = False
    if repaired:
        total = 0.0
        for q in range(n_path):
            s = path_s[q]
            if plan[s] >= 0:
                total += vm[plan[s], s]
    return total, ok


@njit(cache=True)
def lagrange_prices(vm, vmt, tstart, pv, delay, fwd, skip_f, jump, g_any, share_lo, share_hi, caps, iters, deadline):
    """Deflected Polyak subgradient on the Lagrangian dual; returns the best point found.

    Each step solves the priced program, follows its path and turns the path into a
    plan (:func:`path_incumbent`); the best plan's value aims the Polyak step (the
    best plan that misses a floor when none meets them all), capped at the best dual
    value. ``vmt`` is ``vm`` transposed, (k, N + 1), its last column 0.0 (read for
    "no card"). Returns (bound, pi, lam, nu, mu, H, iterations_run, incumbent_value,
    incumbent_plan): ``pi`` is indexed like the rows of ``vm`` (type-grouped cards),
    ``bound`` is the least dual value seen (an upper bound on the optimum; inf when
    no iteration ran), the incumbent plan holds rows of ``vm`` (-inf value when no
    path plan met every rule).
    """
    n, k = vm.shape
    T = share_lo.shape[0]
    F = skip_f.shape[0]
    # Every work array is a view of one float and one int buffer (two allocations instead of some thirty;
    # the returned ones keep their buffer alive).
    rows = k + g_any
    fbuf = np.zeros(6 * n + 1 + 14 * T + 2 + T * k + 2 * rows * (F + 1))
    o = 0
    pi = fbuf[o:o + n]
    o += n
    best_pi = fbuf[o:o + n]
    o += n
    dpi = fbuf[o:o + n]
    o += n
    offset = fbuf[o:o + n]
    o += n
    use = fbuf[o:o + n]
    o += n
    pen = fbuf[o:o + n + 1]  # -inf once a card is taken in this step's plan; a spare last entry for 'no card'
    o += n + 1
    capf = fbuf[o:o + T]
    o += T
    for t in range(T):
        capf[t] = caps[t]
    lam = fbuf[o:o + T]
    o += T
    nu = fbuf[o:o + T]
    o += T
    mu = fbuf[o:o + T]
    o += T
    best_lam = fbuf[o:o + T]
    o += T
    best_nu = fbuf[o:o + T]
    o += T
    best_mu = fbuf[o:o + T]
    o += T
    dlam = fbuf[o:o + T]
    o += T
    dnu = fbuf[o:o + T]
    o += T
    dmu = fbuf[o:o + T]
    o += T
    price = fbuf[o:o + T]
    o += T
    pvk = fbuf[o:o + T]
    o += T
    pvt = fbuf[o:o + T + 1]  # a spare last entry for organic slots
    o += T + 1
    cnt = fbuf[o:o + T + 1]
    o += T + 1
    r = fbuf[o:o + T * k].reshape((T, k))
    o += T * k
    H = fbuf[o:o + rows * (F + 1)].reshape((rows, F + 1))
    o += rows * (F + 1)
    best_H = fbuf[o:o + rows * (F + 1)].reshape((rows, F + 1))
    o += rows * (F + 1)
    gap_dp_init(H, k)
    gap_dp_init(best_H, k)
    moves, jump_u = gap_dp_tables(skip_f, jump)
    ibuf = np.empty(T + 5 * k, np.int64)
    kept = ibuf[:T]
    path_s = ibuf[T:T + k]
    path_t = ibuf[T + k:T + 2 * k]
    slots = ibuf[T + 2 * k:T + 3 * k]
    plan = ibuf[T + 3 * k:T + 4 * k]
    inc_plan = ibuf[T + 4 * k:]
    for s in range(k):
        plan[s] = -1
        inc_plan[s] = -1
    tstart_u = tstart.astype(np.uint64)
    none_u = np.uint64(n)
    one_u = np.uint64(1)
    inc = -np.inf
    inc_any = -np.inf
    best_L = np.inf
    alpha = 1.0
    stall = 0
    work = 0
    step_work = k * F * (T + 1) + 2 * k * n
    ran = 0
    half_neg = 0.5 * NEG
    for it in range(iters):
        if deadline < np.inf:
            work += step_work
            if work >= CLOCK_STRIDE or it == 0:
                work = 0
                if now() > deadline:
                    break
        ran += 1
        for t in range(T):
            price[t] = lam[t] - nu[t]
            for j in range(tstart[t], tstart[t + 1]):
                offset[j] = pi[j] + mu[t]
        slot_values(vm, tstart, offset, price, pv, r)
        gap_dp_rows(r, moves, jump_u, g_any, H)
        L = H[delay[0], fwd[0]]
        for j in range(n):
            L += pi[j]
        for t in range(T):
            L += lam[t] * share_hi[t] - nu[t] * share_lo[t] + mu[t] * capf[t]
        if L < best_L:
            best_L = L
            for j in range(n):
                best_pi[j] = pi[j]
            for t in range(T):
                best_lam[t] = lam[t]
                best_nu[t] = nu[t]
                best_mu[t] = mu[t]
            H, best_H = best_H, H  # keep this table; the next program writes over the other buffer
            cur_H = best_H
            stall = 0
        else:
            cur_H = H
            stall += 1
            if stall >= PATIENCE:
                alpha *= 0.5
                stall = 0
        # The relaxed plan: follow the table from the root (each move the first best, organic before the types
        # in order, by branch-free selects), recording the slots that take a card and their PV and count per
        # type. The step to the next slot is a branch: predicted, it lets the next slot start early.
        for t in range(T + 1):
            pvt[t] = 0.0
            cnt[t] = 0.0
        f = np.uint64(fwd[0])
        s = delay[0]
        n_path = 0
        mask = np.uint64(0xFFFF)
        while s < k:
            far = cur_H[s + g_any]
            w = moves[f]
            nx = w & mask
            best = cur_H[s + 1, nx]
            choice = -1
            if T <= 3:  # the packed moves (a missing type: 0.0 + NEG, never above the organic move)
                jt = (w >> np.uint64(16)) & mask
                v = r[0, s] + far[jt]
                c = v > best
                choice = 0 if c else choice
                nx = jt if c else nx
                best = max(best, v)
                jt = (w >> np.uint64(32)) & mask
                v = (r[1, s] if T > 1 else 0.0) + far[jt]
                c = v > best
                choice = 1 if c else choice
                nx = jt if c else nx
                best = max(best, v)
                jt = w >> np.uint64(48)
                v = (r[2, s] if T > 2 else 0.0) + far[jt]
                c = v > best
                choice = 2 if c else choice
                nx = jt if c else nx
            else:
                for t in range(T):
                    jt = np.uint64(jump_u[f, t])
                    v = r[t, s] + far[jt]
                    c = v > best
                    choice = t if c else choice
                    nx = jt if c else nx
                    best = max(best, v)
            f = nx
            if choice < 0:
                s += 1
                continue
            path_s[n_path] = s
            path_t[n_path] = choice
            pvt[choice] += pv[s]
            cnt[choice] += 1.0
            n_path += 1
            s += g_any
        # Each placement: the type's best priced card (its use) and the best card not taken yet (the plan of
        # path_incumbent), in one branch-free pass over the type's cards (a taken card's pen is -inf; x > bv
        # then fails as `not taken` did). Each keeps the first best card, as the plain scans do.
        for j in range(n):
            use[j] = 0.0
            pen[j] = 0.0
        total = 0.0
        all_kept = True
        for q in range(n_path):
            s = path_s[q]
            t = path_t[q]
            top = NEG
            arg = none_u - one_u  # as a plain -1 would: the last card
            bv = half_neg
            bj = none_u
            for j in range(tstart_u[t], tstart_u[t + 1]):
                x = vmt[s, j]
                y = x - offset[j]
                arg = j if y > top else arg
                top = max(top, y)
                x += pen[j]
                bj = j if x > bv else bj
                bv = max(bv, x)
            use[arg] += 1.0
            ok_card = bj < none_u
            all_kept &= ok_card
            plan[s] = np.int64(bj) if ok_card else -1
            pen[bj] = -np.inf  # no card: the spare last entry
            total += vmt[s, bj]  # no card: the spare last column, 0.0
        # Cards and PV per type of the plan (the path's own unless a slot found no card left), summed in order.
        for t in range(T):
            kept[t] = np.int64(cnt[t])
            pvk[t] = pvt[t]
        if not all_kept:
            for t in range(T):
                kept[t] = 0
                pvk[t] = 0.0
            for q in range(n_path):
                s = path_s[q]
                if plan[s] >= 0:
                    kept[path_t[q]] += 1
                    pvk[path_t[q]] += pv[s]
        value, meets = path_repair(vm, pv, share_lo, share_hi, caps, path_s, path_t, n_path, plan, kept, pvk,
                                   total, slots)
        if meets and value > inc:
            inc = value
            for q in range(k):
                inc_plan[q] = plan[q]
        inc_any = max(inc_any, value)
        for q in range(n_path):
            plan[path_s[q]] = -1
        if it == iters - 1:
            break
        # Deflected direction of the slacks (rhs - activity), projected on the multipliers at 0.
        norm = 0.0
        for j in range(n):
            g = 1.0 - use[j] + DEFLECTION * dpi[j]
            g = 0.0 if (pi[j] <= 0.0) & (g > 0.0) else g
            dpi[j] = g
            norm += g * g
        for t in range(T):
            g = share_hi[t] - pvt[t] + DEFLECTION * dlam[t]
            g = 0.0 if (lam[t] <= 0.0) & (g > 0.0) else g
            dlam[t] = g
            norm += SHARE_STEP_SCALE * g * g
            g = 0.0
            if share_lo[t] > 0.0:
                g = pvt[t] - share_lo[t] + DEFLECTION * dnu[t]
                g = 0.0 if (nu[t] <= 0.0) & (g > 0.0) else g
            dnu[t] = g
            norm += SHARE_STEP_SCALE * g * g
            g = capf[t] - cnt[t] + DEFLECTION * dmu[t]
            g = 0.0 if (mu[t] <= 0.0) & (g > 0.0) else g
            dmu[t] = g
            norm += g * g
        if norm < 1e-18:
            break
        target = min(inc if inc > -np.inf else inc_any, best_L)
        step = alpha * max(L - target, 0.0) / norm
        if step <= 0.0:
            break
        for j in range(n):
            pi[j] = max(0.0, pi[j] - step * dpi[j])
        for t in range(T):
            lam[t] = max(0.0, lam[t] - step * SHARE_STEP_SCALE * dlam[t])
            nu[t] = max(0.0, nu[t] - step * SHARE_STEP_SCALE * dnu[t])
            mu[t] = max(0.0, mu[t] - step * dmu[t])
    if ran == 0:
        best_H = np.zeros((k + g_any, F + 1))  # no program ran (as the plain method returns it)
    return best_L, best_pi, best_lam, best_nu, best_mu, best_H, ran, inc, inc_plan


@njit(cache=True)
def mean_top_table(vm, tstart, caps, skip_f, jump, g_any):
    """A price-free estimate table: a type-t card at slot s is worth the mean value there of the type's
    ``caps[t]`` best cards (best by their total value over the slots where they are allowed)."""
    n, k = vm.shape
    T = caps.shape[0]
    total = np.zeros(n)
    for j in range(n):
        for s in range(k):
            if vm[j, s] > NEG:
                total[j] += vm[j, s]
    r = np.full((T, k), NEG)
    for t in range(T):
        q = min(caps[t], tstart[t + 1] - tstart[t])
        if q <= 0:
            continue
        idx = tstart[t] + np.argsort(-total[tstart[t]:tstart[t + 1]], kind="mergesort")[:q]
        for s in range(k):
            acc = 0.0
            m = 0
            for j in idx:
                if vm[j, s] > NEG:
                    acc += vm[j, s]
                    m += 1
            if m > 0:
                r[t, s] = acc / m
    H = np.zeros((k + g_any, skip_f.shape[0] + 1))
    gap_dp(r, skip_f, jump, g_any, H)
    return H


# --------------------------------------------------------------------- search
@njit(cache=True)
def card_order(vm, tstart, tcards, pi_sorted, n_types):
    """order[t, s, :len[t, s]]: type t's allowed cards at slot s, best priced value first (ties: lower index).

    Each short list is sorted by counting, for every card, the cards that go before
    it: branch-free comparisons, so the cost does not depend on how well the
    processor guesses the data (an insertion sort here spent most of its time on
    mispredicted branches). All slots of a type are ranked together (inner loops run
    over the slots, contiguous and vectorised); a disallowed card ranks after every
    allowed one, so it lands in ``order[t, s, len[t, s]:]`` (unused).
    """
    n, k = vm.shape
    width = 1
    for t in range(n_types):
        width = max(width, tstart[t + 1] - tstart[t])
    order = np.empty((n_types, k, width), np.int64)
    length = np.zeros((n_types, k), np.int64)
    key = np.empty((width, k))
    rank = np.empty((width, k), np.uint64)  # unsigned: the scatter below needs no negative-index wrap-around
    ku = np.uint64(k)
    one = np.uint64(1)
    for t in range(n_types):
        base = np.uint64(tstart[t])
        nt = np.uint64(tstart[t + 1]) - base
        lt = length[t]
        for a in range(nt):
            row = vm[base + a]
            p = pi_sorted[base + a]
            ka = key[a]
            for s in range(ku):
                x = row[s]
                ok = x > NEG
                ka[s] = x - p if ok else -np.inf
                lt[s] += ok
        ot = order[t]
        for a in range(nt):
            ra = rank[a]
            for s in range(ku):
                ra[s] = 0
        # Each pair (a < b) is compared once: b goes before a when kb > ka, else a goes before b (keys are
        # never NaN, so ka >= kb is the negation); a's rank counts kb > ka, b's counts ka >= kb.
        for a in range(nt):
            ra = rank[a]
            ka = key[a]
            for b in range(a + one, nt):
                kb = key[b]
                rb = rank[b]
                for s in range(ku):
                    c = np.uint64(kb[s] > ka[s])
                    ra[s] += c
                    rb[s] += one - c
        for a in range(nt):
            ra = rank[a]
            c = tcards[base + a]
            for s in range(ku):
                ot[s, ra[s]] = c
    return order, length


@njit(cache=True)
def _kth_largest(sc, m, kth):
    """The kth largest (0-based) of sc[0, :m]; overwrites sc[0, :m] and sc[1, :m] (``sc``: 2 rows of scratch).

    Three-way partitions around a median-of-three pivot, written so that no branch
    depends on how an element compares (the comparisons become arithmetic on the
    write positions); short ranges are finished by counting. The passes alternate
    between the two rows of ``sc``, picked by index (a swap of two array variables
    would cost atomic reference counts on every pass). Positions are unsigned, so
    that Numba adds no negative-index wraparound to the partition loop.
    """
    one = np.uint64(1)
    b = np.uint64(0)
    lo = np.uint64(0)
    n = np.uint64(m)
    kk = np.uint64(kth)
    while n > np.uint64(12):
        x = sc[b, lo]
        y = sc[b, lo + (n >> one)]
        z = sc[b, lo + n - one]
        pivot = max(min(x, y), min(max(x, y), z))
        d = b ^ one
        g = lo
        r = lo + n
        for i in range(lo, lo + n):
            v = sc[b, i]
            sc[d, g] = v
            g += np.uint64(v > pivot)
            sc[d, r - one] = v
            r -= np.uint64(v < pivot)
        n_gt = g - lo
        n_lt = lo + n - r
        if kk < n_gt:
            n = n_gt
        elif kk < n - n_lt:
            return pivot
        else:
            kk -= n - n_lt
            lo = r
            n = n_lt
        b = d
    for i in range(lo, lo + n):
        v = sc[b, i]
        above = np.uint64(0)
        at_least = np.uint64(0)
        for j in range(lo, lo + n):
            w = sc[b, j]
            above += np.uint64(w > v)
            at_least += np.uint64(w >= v)
        if above <= kk and kk < at_least:
            return v
    return sc[b, lo]


@njit(cache=True)
def zobrist_keys(n, n_states, seed):
    """Fixed pseudo-random 64-bit keys for cards and machine states (splitmix64), for incremental state hashes."""
    keys = np.empty(n + n_states, np.uint64)
    x = np.uint64(seed)
    for i in range(n + n_states):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        z = x
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        keys[i] = z ^ (z >> np.uint64(31))
    return keys


@njit(cache=True)
def rematched_child(t, s, p, used_row, types, parent_of, card_of, vmT, tstart, tcards, pi, work, slots, new_used):
    """A type-t card at slot s for beam state ``p`` (of the layer before s) when every type-t card allowed at s
    is already used: possible when the type's cards can be re-matched so that its slots and s each hold one.

    A state's cards are only one matching of its type slots: the beam gives each slot the best free card, and a
    slot a card takes may be the only one where that card can stand while another card could stand there too.
    Without this move such a slot pattern is never reached (on ``tiny`` this lost up to 30 % of the optimum),
    though the final re-matching (step 4) would fill it. The type's slots are traced up the state's parent
    links; the best assignment of the type's cards to them and to s decides. Returns (card at s, value gained,
    card prices gained), card -1 when no assignment exists; ``new_used`` (the state's used-card bits with the
    type's replaced by the assignment's) then holds the child's cards. The value gained is the assignment's
    gain from s (its value on the slots and s less its value on the slots), an estimate like the beam's own
    values; the plan's slots keep every rule whichever cards fill them, and step 4 re-matches them exactly.
    """
    m = 0
    q = np.int64(p)
    for s2 in range(s - 1, -1, -1):
        c = card_of[s2, q]
        if c >= 0 and types[c] == t:
            slots[m] = s2
            m += 1
        q = parent_of[s2, q]
    base = tstart[t]
    nt = tstart[t + 1] - base
    before = _solve_slots(vmT, base, nt, slots, m, work)
    slots[m] = s
    after = _solve_slots(vmT, base, nt, slots, m + 1, work)
    if not after > NEG:
        return -1, 0.0, 0.0
    assign = work[7]
    for w in range(new_used.shape[0]):
        new_used[w] = used_row[w]
    d_pi = 0.0
    one = np.uint64(1)
    for j in range(base, base + nt):  # the type's bits cleared, its old cards' prices given back
        c = tcards[j]
        bit = one << np.uint64(c & 63)
        if used_row[c >> 6] & bit:
            d_pi -= pi[c]
        new_used[c >> 6] &= ~bit
    for x in range(m + 1):
        c = tcards[base + assign[x]]
        new_used[c >> 6] |= one << np.uint64(c & 63)
        d_pi += pi[c]
    return tcards[base + assign[m]], after - before, d_pi


@njit(cache=True)
def beam_search(values, types, pv, min_gap, init_dist, caps, share_lo, share_hi, order, order_len, reach,
                skip, place, mdist, delay, fwd, exact, H, pi, price, mu, tie, width, cards_per_type, zkeys, deadline,
                vmT, tstart, tcards, match_work):
    """The beam over slots. Returns (parent_of, card_of, final value, final feasible flag, n_final, stats).

    ``exact`` says that the gap machine tracks every rule: its state then stands for
    the distance vector (feasibility is ``place >= 0``, the distances are ``mdist[state]``);
    otherwise the distances are carried and checked as well. ``stats`` = [children generated, dropped by the
    min-share look-ahead, merged duplicates, slots cut by the deadline].
    A type with no free card allowed at a slot may still take the slot by re-matching its cards
    (:func:`rematched_child`; ``vmT``, ``tstart``, ``tcards`` and the :func:`assignment_work` arrays ``match_work``
    serve it). Such a child's traced plan may name a card twice: its slots are right, its cards are chosen by
    the re-matching of :func:`plan_kernel`'s step 4.
    """
    n, k = values.shape
    T = caps.shape[0]
    nd = T + 1
    nw = max(1, (n + 63) // 64)
    W = width
    S = skip.shape[0]
    n_floors = 0
    for t in range(T):
        n_floors += share_lo[t] > 0.0
    nf1 = max(1, n_floors)
    carry_dist = not exact
    # The first third of the slots keeps half the width: decisions there are cheap to revisit later (the
    # estimate H sees most of the page ahead), and the work is better spent on the slots after them.
    early_slots = k // EARLY_SLOTS_DIVISOR
    w_early = (W + 1) // 2
    n_children = 0
    n_drops = 0
    max_children = W * (1 + T * cards_per_type)
    # A sparse table (at most 1/16 full up to 4096 slots, 1/4 beyond): an occupied first probe is a
    # mispredicted branch, and it costs more than the larger stamp array to clear.
    hsize = 1
    while hsize < max(4 * W, min(16 * W, 4096)):
        hsize *= 2
    # Every work array is a view of one zeroed float and one zeroed int buffer (three allocations with the
    # flags instead of some forty); the unsigned ones are int views. The returned parent_of and card_of keep
    # the int buffer alive.
    fb = np.zeros(2 * W * T + 5 * W + 3 * max_children + 2 * T + 2 * nf1)
    ib = np.zeros(2 * W * nw + 2 * W * nd + 4 * W + 2 * W * T + 2 * k * W + 4 + 3 * max_children + T
                  + 2 * (T + 1) * S + S * (T + 1) + S + S * nf1 + nf1 + 3 * hsize, np.int64)
    ch_taken = np.zeros(max_children, np.bool_)
    # Children made by re-matching (rematched_child): their flag (set for the rm_list[:n_rm] of this slot only),
    # cards, value and priced value gained.
    ch_rematched = np.zeros(max_children, np.bool_)
    rm_list = np.empty(max_children, np.int64)
    n_rm = 0
    ch_used = np.zeros((max_children, nw), np.uint64)
    ch_gain = np.zeros((max_children, 2))
    rm_slots = np.empty(k + 1, np.int64)
    fo = 0
    pv_used = fb[fo:fo + W * T].reshape((W, T))
    fo += W * T
    pv_used_n = fb[fo:fo + W * T].reshape((W, T))
    fo += W * T
    value = fb[fo:fo + W]
    fo += W
    value_n = fb[fo:fo + W]
    fo += W
    acc = fb[fo:fo + W]
    fo += W
    acc_n = fb[fo:fo + W]
    fo += W
    key_n = fb[fo:fo + W]
    fo += W
    ch_key = fb[fo:fo + max_children]
    fo += max_children
    sc = fb[fo:fo + 2 * max_children].reshape((2, max_children))  # the key selection's scratch (_kth_largest)
    fo += 2 * max_children
    fbits = fb[fo:fo + T]
    fo += T
    pp = fb[fo:fo + T]
    fo += T
    need0 = fb[fo:fo + nf1]
    fo += nf1
    need1 = fb[fo:fo + nf1]
    io = 0
    used = ib[io:io + W * nw].view(np.uint64).reshape((W, nw))
    io += W * nw
    used_n = ib[io:io + W * nw].view(np.uint64).reshape((W, nw))
    io += W * nw
    dist = ib[io:io + W * nd].reshape((W, nd))
    io += W * nd
    dist_n = ib[io:io + W * nd].reshape((W, nd))
    io += W * nd
    state = ib[io:io + W].view(np.uint64)
    io += W
    state_n = ib[io:io + W].view(np.uint64)
    io += W
    zhash = ib[io:io + W].view(np.uint64)
    io += W
    zhash_n = ib[io:io + W].view(np.uint64)
    io += W
    count = ib[io:io + W * T].reshape((W, T))
    io += W * T
    count_n = ib[io:io + W * T].reshape((W, T))
    io += W * T
    parent_of = ib[io:io + k * W].reshape((k, W))
    io += k * W
    card_of = ib[io:io + k * W].reshape((k, W))
    io += k * W
    stats = ib[io:io + 4]
    io += 4
    ch_parent = ib[io:io + max_children].view(np.uint64)
    io += max_children
    ch_card = ib[io:io + max_children]
    io += max_children
    pick = ib[io:io + max_children].view(np.uint64)
    io += max_children
    floor_types = ib[io:io + T]
    io += T
    mv_next = ib[io:io + (T + 1) * S].reshape((T + 1, S))
    io += (T + 1) * S
    mv_hoff = ib[io:io + (T + 1) * S].view(np.uint64).reshape((T + 1, S))
    io += (T + 1) * S
    mv_list = ib[io:io + S * (T + 1)].reshape((S, T + 1))
    io += S * (T + 1)
    mv_cnt = ib[io:io + S]
    io += S
    gofs = ib[io:io + S * nf1].reshape((S, nf1))
    io += S * nf1
    left0 = ib[io:io + nf1]
    io += nf1
    hstamp = ib[io:io + hsize]  # a slot holds an entry of this layer when hstamp == s + 1
    io += hsize
    # Row and hash code of a slot (read only where hstamp says it is set).
    htab = ib[io:io + 2 * hsize].view(np.uint64)
    hcode = htab[hsize:]
    n_floors = 0
    for t in range(T):
        if share_lo[t] > 0.0:
            floor_types[n_floors] = t
            n_floors += 1
    ubits = fbits.view(np.uint64)
    # Per move (organic = row 0, type ty = row ty + 1) and machine state: the next state (-1: forbidden) and
    # the flat offset of its estimate in H relative to slot s (H[s + 1 + delay[nst], fwd[nst]]).
    Hc = np.ascontiguousarray(H)
    F1 = Hc.shape[1]
    Hf = Hc.reshape(Hc.size)
    for st in range(S):
        for r in range(T + 1):
            nst = skip[st] if r == 0 else place[r - 1, st]
            mv_next[r, st] = nst
            if nst >= 0:
                mv_hoff[r, st] = (1 + delay[nst]) * F1 + fwd[nst]
    # The moves each state allows, in move order: the loop below runs over them (one loop exit per parent
    # instead of one branch per forbidden move).
    for st in range(S):
        for r in range(T + 1):
            if mv_next[r, st] >= 0:
                mv_list[st, mv_cnt[st]] = r
                mv_cnt[st] += 1
    # Min-share look-ahead: in an exact machine the gap offset to a type's next card depends only on the state.
    if exact:
        for st in range(S):
            for x in range(n_floors):
                t = floor_types[x]
                gofs[st, x] = max(0, max(min_gap[t] - mdist[st, t], min_gap[T] - mdist[st, T]))
    mask = np.uint64(hsize - 1)
    u0, u1, u6, u20, u63 = np.uint64(0), np.uint64(1), np.uint64(6), np.uint64(20), np.uint64(63)
    uT = np.uint64(T)
    un = np.uint64(n)
    olast = order.shape[2] - 1
    for i in range(nd):
        dist[0, i] = init_dist[i]
    size = 1
    work = 0
    late = False
    for s in range(k):
        if deadline < np.inf and not late:
            work += size * (1 + T * cards_per_type) * (4 + T)
            if work >= CLOCK_STRIDE:
                work = 0
                if now() > deadline:
                    late = True
        if late:
            stats[3] += 1
        nc = 0
        for x in range(n_rm):
            ch_rematched[rm_list[x]] = False
        n_rm = 0
        hbase = np.uint64(s * F1)
        pvs = pv[s]
        for t in range(T):
            pp[t] = price[t] * pvs
        for p in range(np.uint64(size)):
            st = state[p]
            accp = acc[p]
            tvp = tie * value[p]
            short = False  # does a floor still need PV from this state?
            for x in range(n_floors):
                t = floor_types[x]
                if pv_used[p, t] < share_lo[t]:
                    short = True
                need0[x] = share_lo[t] - pv_used[p, t]
                need1[x] = share_lo[t] - (pv_used[p, t] + pvs)
                left0[x] = caps[t] - count[p, t]
            for mi in range(mv_cnt[st]):
                r = mv_list[st, mi]
                ty = r - 1
                nst = mv_next[r, st]
                if ty >= 0:
                    if not exact and (dist[p, T] < min_gap[T] or dist[p, ty] < min_gap[ty]):
                        continue
                    if count[p, ty] >= caps[ty] or pv_used[p, ty] + pvs > share_hi[ty]:
                        continue
                    base = accp - pp[ty] - mu[ty] + Hf[hbase + mv_hoff[r, st]] + tvp
                else:
                    base = accp + Hf[hbase + mv_hoff[r, st]] + tvp
                if short:
                    # The look-ahead depends on the move (organic or a type), not on which card makes it.
                    out = False  # summed over the floors without a branch
                    for x in range(n_floors):
                        t = floor_types[x]
                        sel = t == ty
                        need = need1[x] if sel else need0[x]
                        left = left0[x] - sel
                        if exact:
                            g = gofs[nst, x]
                        else:
                            dt = 1 if sel else min(dist[p, t] + 1, min_gap[t])
                            da = 1 if ty >= 0 else min(dist[p, T] + 1, min_gap[T])
                            g = max(0, max(min_gap[t] - dt, min_gap[T] - da))
                        out = out | floor_out_of_reach(t, need, left, s + 1 + g, reach)
                    ok = not out
                    if not ok:
                        n_drops += 1
                        continue
                if ty < 0:
                    n_children += 1
                    ch_parent[nc] = p
                    ch_card[nc] = -1
                    ch_key[nc] = base
                    nc += 1
                    continue
                ol = order_len[ty, s]
                if cards_per_type == 1:
                    # The first unused card of the list, on the used bits alone, then one child: the first three
                    # entries by selects (on `device` they hold it 94 % of the time; a loop whose trip count
                    # follows the used bits mispredicts its exit), a loop only past them.
                    orow = order[ty, s]
                    in0 = ol > 0
                    in1 = ol > 1
                    in2 = ol > 2
                    c0 = np.uint64(orow[0]) if in0 else u0
                    c1 = np.uint64(orow[min(1, olast)]) if in1 else u0
                    c2 = np.uint64(orow[min(2, olast)]) if in2 else u0
                    f0 = np.uint64(in0) & (((used[p, c0 >> u6] >> (c0 & u63)) & u1) ^ u1)
                    f1 = np.uint64(in1) & (((used[p, c1 >> u6] >> (c1 & u63)) & u1) ^ u1)
                    f2 = np.uint64(in2) & (((used[p, c2 >> u6] >> (c2 & u63)) & u1) ^ u1)
                    c = c0 if f0 != u0 else (c1 if f1 != u0 else c2)
                    free = f0 | f1 | f2
                    j = 3
                    while free == u0 and j < ol:
                        c = np.uint64(orow[j])
                        j += 1
                        free = ((used[p, c >> u6] >> (c & u63)) & u1) ^ u1
                    if free != u0:
                        ch_parent[nc] = p
                        ch_card[nc] = np.int64(c)
                        ch_key[nc] = base + (1.0 + tie) * values[c, s] - pi[c]
                        nc += 1
                        n_children += 1
                        continue
                    taken = 0
                else:
                    # The best unused cards of the type, written without a branch on the used bit (the slot
                    # written for a used card is written again by the next one).
                    taken = 0
                    j = 0
                    while taken < cards_per_type and j < ol:
                        c = np.uint64(order[ty, s, j])
                        j += 1
                        is_free = np.int64(((used[p, c >> u6] >> (c & u63)) & u1) ^ u1)
                        ch_parent[nc] = p
                        ch_card[nc] = np.int64(c)
                        ch_key[nc] = base + (1.0 + tie) * values[c, s] - pi[c]
                        nc += is_free
                        taken += is_free
                    n_children += taken
                if taken == 0 and ol > 0 and count[p, ty] < tstart[ty + 1] - tstart[ty]:
                    # Every card allowed here is used: re-match the type's cards to make room (rematched_child).
                    rc, gain, d_pi = rematched_child(ty, s, p, used[p], types, parent_of, card_of, vmT, tstart,
                                                     tcards, pi, match_work, rm_slots, ch_used[nc])
                    if rc >= 0:
                        ch_parent[nc] = p
                        ch_card[nc] = rc
                        ch_key[nc] = base + (1.0 + tie) * gain - d_pi
                        ch_rematched[nc] = True
                        rm_list[n_rm] = nc
                        n_rm += 1
                        ch_gain[nc, 0] = gain
                        ch_gain[nc, 1] = gain - d_pi
                        nc += 1
                        n_children += 1
        # Keep the best distinct children: rank by key (ties: generation order), merge equal states.
        # Selection and copying are written without data-dependent branches where it matters: keys
        # are close to random around the threshold, and mispredicted branches cost more than the work.
        want = 1 if late else (w_early if s < early_slots else W)
        stamp = s + 1
        kept = 0
        left = nc
        first_round = True
        while kept < want and left > 0:
            need = want - kept
            partial = left > need
            n_pick = 0
            if not partial:
                # Every candidate is taken (first round: all children).
                for q in range(np.uint64(nc)):
                    cand = first_round | (not ch_taken[q])
                    pick[n_pick] = q
                    n_pick += cand
                    ch_taken[q] = True
            elif first_round:
                for q in range(np.uint64(nc)):
                    sc[0, q] = ch_key[q]
                thr = _kth_largest(sc, nc, need - 1)
                # Usually no tie at the threshold is left out: take every key >= thr in one pass, and
                # redo the pass with the exact tie count only when that took too many.
                for q in range(np.uint64(nc)):
                    take = ch_key[q] >= thr
                    pick[n_pick] = q
                    n_pick += take
                    ch_taken[q] = take
                if n_pick != need:
                    n_above = 0
                    for q in range(nc):
                        n_above += ch_key[q] > thr
                    n_at_thr = need - n_above
                    n_pick = 0
                    eq_seen = 0
                    for q in range(np.uint64(nc)):
                        kq = ch_key[q]
                        is_eq = kq == thr
                        take = (kq > thr) | (is_eq & (eq_seen < n_at_thr))
                        eq_seen += is_eq
                        pick[n_pick] = q
                        n_pick += take
                        ch_taken[q] = take
            else:
                m = 0
                for q in range(nc):
                    sc[0, m] = ch_key[q]
                    m += not ch_taken[q]
                thr = _kth_largest(sc, m, need - 1)
                n_above = 0
                for q in range(nc):
                    n_above += (ch_key[q] > thr) and not ch_taken[q]
                n_at_thr = need - n_above
                eq_seen = 0
                for q in range(np.uint64(nc)):
                    cand = not ch_taken[q]
                    kq = ch_key[q]
                    is_eq = kq == thr
                    take = cand & ((kq > thr) | (is_eq & (eq_seen < n_at_thr)))
                    eq_seen += cand & is_eq
                    pick[n_pick] = q
                    n_pick += take
                    ch_taken[q] = take | (not cand)
            left -= n_pick
            for x in range(n_pick):
                q = pick[x]
                kq = ch_key[q]
                p = ch_parent[q]
                c = ch_card[q]
                isc = c >= 0
                cc = np.uint64(c) if isc else u0
                ty = types[cc]
                tyu = np.uint64(ty) if isc else uT
                st = state[p]
                ku = np.uint64(kept)
                if nw == 1:
                    used_n[ku, 0] = used[p, 0] | (np.uint64(isc) << (cc & u63))
                else:
                    for w in range(nw):
                        used_n[ku, w] = used[p, w]
                    used_n[ku, cc >> u6] |= np.uint64(isc) << (cc & u63)
                nst = np.uint64(mv_next[tyu + u1 if isc else u0, st])
                vp = value[p]
                ap = acc[p]
                vcs = values[cc, s]
                v_card = vp + vcs
                value_n[ku] = v_card if isc else vp
                a_card = ap + vcs - pi[cc] - pp[tyu if isc else u0] - mu[tyu if isc else u0]
                acc_n[ku] = a_card if isc else ap
                h = zhash[p] ^ (zkeys[cc] if isc else u0)
                if ch_rematched[q]:  # its cards and gains come from the re-matching
                    h = zhash[p]
                    for w in range(nw):
                        used_n[ku, w] = ch_used[q, w]
                        flips = used[p, w] ^ ch_used[q, w]
                        for b in range(64):
                            if (flips >> np.uint64(b)) & u1:
                                h ^= zkeys[w * 64 + b]
                    value_n[ku] = vp + ch_gain[q, 0]
                    acc_n[ku] = ap + ch_gain[q, 1] - pp[tyu] - mu[tyu]
                state_n[ku] = nst
                zhash_n[ku] = h
                # The hash covers the cards, the gap state and the PV per type (as bits): states that share
                # their cards but not their slots must not collide.
                hs = h ^ zkeys[un + nst]
                for t in range(uT):
                    sel = t == tyu
                    pvo = pv_used[p, t]
                    pva = pvo + pvs
                    pvt = pva if sel else pvo
                    pv_used_n[ku, t] = pvt
                    count_n[ku, t] = count[p, t] + sel
                    fbits[t] = pvt
                    hs = (hs ^ ubits[t]) * np.uint64(1099511628211)
                if carry_dist:
                    for i in range(nd):
                        d = min(dist[p, i] + 1, min_gap[i])
                        dist_n[ku, i] = 1 if isc and (i == ty or i == T) else d
                        hs = (hs ^ np.uint64(dist_n[ku, i])) * np.uint64(1099511628211)
                # Equal states (same cards, gap state, PV; counts follow from the cards) merge; the higher key
                # (for equal states, the higher value) stays.
                slot = (hs >> u20) & mask
                found = False
                dup = u0
                while hstamp[slot] == stamp:
                    o = htab[slot]
                    if hcode[slot] == hs and state_n[o] == nst:
                        same = True
                        for w in range(nw):
                            same = same and used_n[o, w] == used_n[ku, w]
                        for t in range(T):
                            same = same and pv_used_n[o, t] == pv_used_n[ku, t]
                        if carry_dist:
                            for i in range(nd):
                                same = same and dist_n[o, i] == dist_n[ku, i]
                        if same:
                            dup = o
                            found = True
                            break
                    slot = (slot + u1) & mask
                if found:
                    stats[2] += 1
                    if kq > key_n[dup]:
                        key_n[dup] = kq
                        value_n[dup] = value_n[ku]
                        acc_n[dup] = acc_n[ku]
                        parent_of[s, dup] = p
                        card_of[s, dup] = c
                    continue
                hstamp[slot] = stamp
                htab[slot] = ku
                hcode[slot] = hs
                key_n[ku] = kq
                parent_of[s, ku] = p
                card_of[s, ku] = c
                kept += 1
            first_round = False
        size = kept
        used, used_n = used_n, used
        dist, dist_n = dist_n, dist
        state, state_n = state_n, state
        zhash, zhash_n = zhash_n, zhash
        pv_used, pv_used_n = pv_used_n, pv_used
        count, count_n = count_n, count
        value, value_n = value_n, value
        acc, acc_n = acc_n, acc
        if size == 0:
            break
    stats[0] = n_children
    stats[1] = n_drops
    final_value = value[:size].copy()
    feasible = np.ones(size, np.bool_)
    for i in range(size):
        for t in range(T):
            if pv_used[i, t] < share_lo[t] or pv_used[i, t] > share_hi[t]:
                feasible[i] = False
    return parent_of, card_of, final_value, feasible, size, stats


# --------------------------------------------------------------------- re-matching
@njit(cache=True, inline="always")
def _relax_column(cur, j, j0, minv, dprev, free, way, delta, j1):
    """One column of a step of the Hungarian method (potentials form): a free column's least reduced cost
    ``minv[j]`` (kept relative to the previous step, hence ``- dprev``) falls to ``cur`` (reached from
    column ``j0``: ``way[j]``) when that is lower; returns the least (delta, column) over the free columns
    so far. Branch-free selects: the outcome follows the data, and mispredicted branches cost more."""
    mj = minv[j] - dprev
    fj = free[j]
    better = (cur < mj) & fj
    mj = cur if better else mj
    minv[j] = mj
    way[j] = j0 if better else way[j]
    take = (mj < delta) & fj
    return (mj if take else delta), (j if take else j1)


@njit(cache=True, inline="always")
def hungarian_min(cost, n_rows, n_cols, u, v, p, way, minv, usedc, assign, free):
    """Minimum-cost assignment of every row to a distinct column (n_rows <= n_cols), potentials method.

    ``cost`` is (n_rows + 1, n_cols + 1), 1-based (row 0 and column 0 are not read); the
    work arrays have n_cols + 1 entries (u: n_rows + 1; p, way, usedc: uint64; free: bool).
    Writes the column of each row into ``assign``. Same steps (and ties) as the e-maxx
    form, with the column scan branch-free (select on a used mask) and the potential
    updates over the list of used columns only.
    """
    inf = np.inf
    nr = np.uint64(n_rows)
    nc = np.uint64(n_cols)
    one = np.uint64(1)
    zero = np.uint64(0)
    for i in range(nr + one):
        u[i] = 0.0
    for j in range(nc + one):
        v[j] = 0.0
        p[j] = zero
        way[j] = zero
    for i in range(one, nr + one):
        p[0] = i
        j0 = zero
        for j in range(nc + one):
            minv[j] = inf
            free[j] = True
        nused = zero
        dprev = 0.0
        while True:
            free[j0] = False
            usedc[nused] = j0
            nused += one
            i0 = p[j0]
            crow = cost[i0]
            ui = u[i0]
            # minv -= delta of the previous step (free columns; a used one is never read again) is folded in here.
            delta = inf
            j1 = zero
            for j in range(one, nc + one):
                delta, j1 = _relax_column(crow[j] - ui - v[j], j, j0, minv, dprev, free, way, delta, j1)
            for x in range(nused):
                j = usedc[x]
                u[p[j]] += delta
                v[j] -= delta
            dprev = delta
            j0 = j1
            if p[j0] == 0:
                break
        while True:
            j1 = way[j0]
            p[j0] = p[j1]
            j0 = j1
            if j0 == zero:
                break
    for j in range(one, nc + one):
        if p[j] > 0:
            assign[p[j] - one] = j - one


@njit(cache=True)
def assignment_work(n, k):
    """Work arrays of :func:`rematch_type` for up to k slots and n cards of a type."""
    w = max(n, 1)
    # Views of one float and one int buffer (three allocations instead of nine).
    f = np.empty((k + 1) * (w + 1) + (k + 1) + 2 * (w + 1))
    i = np.empty(3 * (w + 1) + k, np.int64)
    o = (k + 1) * (w + 1)
    return (f[:o].reshape((k + 1, w + 1)), f[o:o + k + 1], f[o + k + 1:o + k + 1 + w + 1],
            i[:w + 1].view(np.uint64), i[w + 1:2 * (w + 1)].view(np.uint64), f[o + k + 1 + w + 1:],
            i[2 * (w + 1):3 * (w + 1)].view(np.uint64), i[3 * (w + 1):], np.empty(w + 1, np.bool_))


@njit(cache=True)
def rematch_type(values, allowed, cards, slots, m, current, out, work):
    """Best assignment of ``cards`` to ``slots[:m]`` (each slot gets a distinct card); writes ``out[:m]``.

    ``current[:m]`` is a valid assignment (allowed, distinct): the optimum never
    uses a pair that is not allowed, whose cost exceeds that of any assignment of
    allowed pairs; if rounding ever picked one, ``out`` is ``current``.
    """
    cost, u, v, p, way, minv, usedc, assign, free = work
    nt = cards.shape[0]
    vmax = 0.0
    for x in range(m):
        s = slots[x]
        for j in range(nt):
            if allowed[cards[j], s]:
                vmax = max(vmax, abs(values[cards[j], s]))
    penalty = 1.0 + 2.0 * m * vmax
    for x in range(m):
        s = slots[x]
        for j in range(nt):
            c = cards[j]
            cost[x + 1, j + 1] = -values[c, s] if allowed[c, s] else penalty
    hungarian_min(cost, m, nt, u, v, p, way, minv, usedc, assign, free)
    for x in range(m):
        if not allowed[cards[assign[x]], slots[x]]:
            out[:m] = current[:m]
            return
    for x in range(m):
        out[x] = cards[assign[x]]


@njit(cache=True, inline="always")
def _assign_slots(vmT, base, nt, slots, m, work):
    """Hungarian method on the type's cards ``base .. base + nt - 1`` (type-grouped rows of the transposed
    masked values ``vmT``) and ``slots[:m]``, maximising value; leaves the assignment (``work[7]``, card row
    minus ``base`` per slot) and the column potentials (``work[2]``) behind. A disallowed pair (``NEG``)
    costs more than any assignment of allowed pairs: the optimum uses one only when no assignment of allowed
    pairs exists, which the callers check."""
    cost, u, v, p, way, minv, usedc, assign, free = work
    one = np.uint64(1)
    mu_ = np.uint64(m)
    ntu = np.uint64(nt)
    bu = np.uint64(base)
    vmax = 0.0
    for x in range(mu_):
        row = vmT[np.uint64(slots[x])]
        for j in range(ntu):
            y = row[bu + j]
            a = abs(y) if y > NEG else 0.0
            vmax = max(vmax, a)
    penalty = 1.0 + 2.0 * m * vmax
    for x in range(mu_):
        row = vmT[np.uint64(slots[x])]
        crow = cost[x + one]
        for j in range(ntu):
            y = row[bu + j]
            crow[j + one] = -y if y > NEG else penalty
    hungarian_min(cost, m, nt, u, v, p, way, minv, usedc, assign, free)


@njit(cache=True, inline="always")
def _rematch_rows(vmT, base, nt, slots, m, current, out, work):
    """:func:`rematch_type` on the transposed masked values ``vmT`` (k, N; ``NEG`` where not allowed) for
    the type's cards ``base .. base + nt - 1`` (type-grouped rows); writes the card rows ``out[:m]``."""
    _assign_slots(vmT, base, nt, slots, m, work)
    assign = work[7]
    mu_ = np.uint64(m)
    bu = np.uint64(base)
    for x in range(mu_):
        if not vmT[np.uint64(slots[x]), bu + np.uint64(assign[x])] > NEG:
            for y in range(mu_):
                out[y] = current[y]
            return
    for x in range(mu_):
        out[x] = base + assign[x]


@njit(cache=True, inline="always")
def _same_prefix(a, b, m):
    """Whether a[:m] and b[:m] hold the same entries."""
    for x in range(m):
        if a[x] != b[x]:
            return False
    return True


@njit(cache=True, inline="always")
def _cache_probe(cache_table, cache_code, cache_len, cache_slots, h, sl, m, hmask):
    """(entry, position) of the re-match cache's entry for the slots ``sl[:m]`` under hash ``h``, by linear
    probing from ``h >> 16``; (-1, the free position where it would go) when there is none."""
    pos = np.int64(h >> np.uint64(16)) & hmask
    while cache_table[pos] >= 0:
        c = cache_table[pos]
        if cache_code[c] == h and cache_len[c] == m and _same_prefix(cache_slots[c], sl, m):
            return c, pos
        pos = (pos + 1) & hmask
    return -1, pos


@njit(cache=True, inline="always")
def rematch_plan(values, vmT, types, tcards, tstart, plan, work, cache_slots, cache_cards, cache_len,
                 cache_code, cache_table, cache_used, buf, duals, dual_state, kept):
    """Re-match each type's cards to the slots ``plan`` gives the type (in place); returns the plan's value.

    ``vmT`` is (k, N): the values with cards in type-grouped order, ``NEG`` where the pair is not allowed.
    Results are cached by (type, slots): the plans of one beam share most of them.
    ``cache_used[0]`` counts the entries; when the cache is full, new results are not stored.
    When ``kept`` has a row per entry (else it has none), each stored entry e also keeps its solved problem
    for :func:`local_search`, which starts from it: ``kept[e]`` holds the row potentials u_1..u_m, the
    column (card row minus the type's first) of each slot and the column potentials v_1..v_nt of
    :func:`hungarian_min`, at offsets 0, mk and 2 mk (mk = ``cache_slots.shape[1]``, the most slots).
    Each assignment problem solved for a type t leaves its card prices ``duals[j] = max(0, -v_j)``
    (v: the column potentials of :func:`hungarian_min`, type-grouped rows j) and sets
    ``dual_state[t] = 1``; they are the prices of the re-match bound in :func:`plan_kernel`.
    Returns (value, assignment problems solved).
    """
    k = plan.shape[0]
    T = tstart.shape[0] - 1
    slots, cur, out, cnt, hs, rowof = buf
    capacity = cache_slots.shape[0]
    hmask = cache_table.shape[0] - 1
    solved = 0
    prime = np.uint64(1099511628211)
    for t in range(T):
        cnt[t] = 0
        hs[t] = np.uint64(1469598103934665603) ^ np.uint64(t)
    # One pass over the plan collects every type's slots (and hashes them).
    for s in range(k):
        c = plan[s]
        if c >= 0:
            t = types[c]
            m = cnt[t]
            slots[t, m] = s
            cur[t, m] = rowof[c]
            cnt[t] = m + 1
            hs[t] = (hs[t] ^ np.uint64(s + 1)) * prime
    for t in range(T):
        nt = tstart[t + 1] - tstart[t]
        m = cnt[t]
        if nt <= 1 or m == 0:
            continue
        h = hs[t]
        sl = slots[t]
        hit, pos = _cache_probe(cache_table, cache_code, cache_len, cache_slots, h, sl, m, hmask)
        if hit >= 0:
            for x in range(m):
                plan[sl[x]] = cache_cards[hit, x]
            continue
        _rematch_rows(vmT, tstart[t], nt, sl, m, cur[t], out, work)
        solved += 1
        # Column potentials of a minimisation never rise above 0 (they only ever lose a delta >= 0, and a
        # column no row took keeps 0); max(0, .) keeps the prices >= 0 even if rounding made one positive.
        vpot = work[2]
        base = tstart[t]
        for j in range(nt):
            duals[base + j] = max(0.0, -vpot[j + 1])
        dual_state[t] = 1
        for x in range(m):
            plan[sl[x]] = tcards[out[x]]
        e = cache_used[0]
        if e < capacity:
            cache_used[0] = e + 1
            cache_table[pos] = e
            cache_code[e] = h
            cache_len[e] = m
            for x in range(m):
                cache_slots[e, x] = sl[x]
                cache_cards[e, x] = tcards[out[x]]
            if e < kept.shape[0]:
                mk = cache_slots.shape[1]
                u = work[1]
                asg = work[7]
                for x in range(m):
                    kept[e, x] = u[x + 1]
                    kept[e, mk + x] = asg[x]  # (a small integer: exact as a float)
                for j in range(nt):
                    kept[e, 2 * mk + j] = vpot[j + 1]
    total = 0.0
    for s in range(k):
        if plan[s] >= 0:
            total += values[plan[s], s]
    return total, solved


@njit(cache=True)
def rematch_cache(entries, m_max):
    """An empty (type, slots) -> cards cache for :func:`rematch_plan` (at most m_max slots per type)."""
    size = 1
    while size < 2 * entries:
        size *= 2
    m_max = max(m_max, 1)
    # Views of one int32 and one int64 buffer (two allocations instead of six).
    c = np.empty(2 * entries * m_max, np.int32)
    i = np.zeros(2 * entries + size + 1, np.int64)
    i[2 * entries:2 * entries + size] = -1
    return (c[:entries * m_max].reshape((entries, m_max)), c[entries * m_max:].reshape((entries, m_max)),
            i[:entries], i[entries:2 * entries].view(np.uint64), i[2 * entries:2 * entries + size],
            i[2 * entries + size:])


# --------------------------------------------------------------------- local search after re-matching
@njit(cache=True)
def _solve_slots(vmT, base, nt, slots, m, work):
    """Best value of the type's cards ``base .. base + nt - 1`` (type-grouped rows) on ``slots[:m]``, each slot
    a distinct allowed card; NEG when no such assignment exists. Leaves the assignment (``work[7]``, card row
    minus ``base`` per slot) and the column potentials (``work[2]``) of :func:`hungarian_min` behind."""
    if m == 0:
        return 0.0
    if m > nt:
        return NEG
    _assign_slots(vmT, base, nt, slots, m, work)
    assign = work[7]
    bu = np.uint64(base)
    total = 0.0
    for x in range(np.uint64(m)):
        y = vmT[np.uint64(slots[x]), bu + np.uint64(assign[x])]
        if not y > NEG:
            return NEG
        total += y
    return total


@njit(cache=True, inline="always")
def _gap_free(owner, s, t, g, init, skip):
    """Whether a type-t card (t = -2: any card) may stand at slot s given the cards of ``owner`` (slot ``skip``
    ignored, as if emptied): no card of the kind closer than ``g``, nor the history's last one (``init``
    slots before slot 0, see :mod:`mixrank.arrays`)."""
    if g <= 1:
        return True
    if s + init < g:
        return False
    k = owner.shape[0]
    for x in range(max(0, s - g + 1), min(k, s + g)):
        if x != s and x != skip:
            o = owner[x]
            if o == t or (t == -2 and o >= 0):
                return False
    return True


@njit(cache=True, inline="always")
def _edit_slots(src, row, m, drop, add, dst):
    """``dst`` = sorted ``src[row, :m]`` without slot ``drop`` and with slot ``add`` (-1: none); returns its
    length. (``src`` is read in 2-D, not through a row view: the views cost reference counting.)"""
    q = 0
    placed = add < 0
    for x in range(m):
        s = src[row, x]
        if s == drop:
            continue
        if not placed and add < s:
            dst[q] = add
            q += 1
            placed = True
        dst[q] = s
        q += 1
    if not placed:
        dst[q] = add
        q += 1
    return q


@njit(cache=True, inline="always")
def _pv_sum(pv, slots, m):
    """PV of ``slots[:m]``, summed in slot order (as :meth:`MixProblem.check` sums it)."""
    total = 0.0
    for x in range(m):
        total += pv[slots[x]]
    return total


# The local search keeps each type's assignment problem SOLVED for the current plan, as a square problem:
# the type's nt cards are the columns, and its nt rows are its m card slots plus nt - m dummy rows that cost
# 0 with every card (their optimum is the slots' optimum + 0: some card is always left for each dummy). A
# disallowed pair costs the type's fixed penalty (see :func:`_ls_tables`). A state is one row of each of four
# (T + 2, nt_max + 1) tables, 1-based like :func:`hungarian_min` (index 0: its virtual row and column): row
# potentials ``u``, column potentials ``v``, the row of each column ``p`` (every column has one) and the slot
# of each row ``r`` (-1: a dummy row). Rows 0..T-1 of the tables are the types' current states; rows T and
# T + 1 are scratch states, where a move's new slot sets are valued without touching the current ones.
# Every move replaces one row of a type's problem by another (shift: a slot by a slot; remove: a slot by a
# dummy; insert: a dummy by a slot; a swap or re-type does this for each of its two types). From an optimal
# state, the new optimum after one row changes is ONE augmentation (:func:`_sq_set_row`): unassign the row,
# give it its new costs, and run one phase of the Hungarian method (a Dijkstra over reduced costs) from it.
@njit(cache=True)
def _sq_from_rect(vmT, base, nt, slots, m, b, U, V, P, R, work):
    """Solve type problem ``slots[:m]`` (m <= nt) from scratch with :func:`_solve_slots` (the rectangular
    problem, rows = slots) and store it as the square state ``b``: row x + 1 holds slot ``slots[x]``, the
    dummy rows m + 1 .. nt take the free columns with potential 0. That is optimal and dual feasible: the
    rectangular column potentials are <= 0 and 0 on the free columns (a column the method ever scanned is
    assigned), so a dummy row's reduced costs, -v, are >= 0 and 0 where it stands; and every disallowed pair
    of the state costs at least the rectangular penalty (the state's, :func:`_ls_tables`, is as large or
    larger). Returns the problem's value (NEG when no assignment of allowed pairs exists)."""
    value = _solve_slots(vmT, base, nt, slots, m, work)
    u = work[1]
    v = work[2]
    p = work[3]
    U[b, 0] = 0.0
    V[b, 0] = 0.0
    P[b, 0] = 0
    R[b, 0] = -1
    for x in range(m):
        U[b, x + 1] = u[x + 1]
        R[b, x + 1] = slots[x]
    d = m
    for j in range(1, nt + 1):
        if m > 0:
            V[b, j] = v[j]
            i = np.int64(p[j])
        else:
            V[b, j] = 0.0
            i = 0
        if i == 0:
            d += 1
            i = d
            U[b, i] = 0.0
            R[b, i] = -1
        P[b, j] = i
    return value


@njit(cache=True)
def _sq_from_kept(vmT, base, nt, slots, m, b, ke, mk, U, V, P, R):
    """:func:`_sq_from_rect` from a problem :func:`rematch_plan` solved and kept (``ke``, see there) for these
    slots ``slots[:m]`` (m > 0): the same Hungarian method on the same problem, so the same state and value."""
    U[b, 0] = 0.0
    V[b, 0] = 0.0
    P[b, 0] = 0
    R[b, 0] = -1
    for j in range(1, nt + 1):
        V[b, j] = ke[2 * mk + j - 1]
        P[b, j] = 0
    bu = np.uint64(base)
    total = 0.0
    ok = True
    for x in range(m):
        U[b, x + 1] = ke[x]
        R[b, x + 1] = slots[x]
        j = np.int64(ke[mk + x])
        P[b, j + 1] = x + 1
        y = vmT[np.uint64(slots[x]), bu + np.uint64(j)]
        ok = ok and y > NEG
        total += y
    d = m
    for j in range(1, nt + 1):
        if P[b, j] == 0:
            d += 1
            U[b, d] = 0.0
            R[b, d] = -1
            P[b, j] = d
    return total if ok else NEG


@njit(cache=True, inline="always")
def _sq_augment(vmT, base, nt, pen, i, jf, b, U, V, P, R, way, minv, free, usedc, stop):
    """One phase of the Hungarian method (potentials form, as in :func:`hungarian_min`) on the square type
    state ``b`` (row b of the tables U, V, P, R) whose only unassigned row is ``i`` and only free column
    ``jf``: a Dijkstra over the reduced costs from row i to column jf, potentials kept feasible and tight
    on the assignment, then the augmentation along the path. Among columns at the least reduced cost the
    free one is taken (it ends the phase; the dummy rows make ties common). Row i's potential needs no care:
    the first step sets it to min over j of (cost[i, j] - v[j]). Costs are read from ``vmT`` (row x's slot
    ``R[b, x]``; 0 for a dummy row). Column scans branch-free, as in :func:`hungarian_min`.

    Early stop: after each step the potentials are dual feasible for the new problem, and their objective is
    the old optimum's cost plus the deltas so far (each step adds its delta: one more row than real column
    is used), a lower bound on the new optimum's cost that only grows. When the deltas so far reach
    ``stop`` (np.inf: never), the phase stops there, the state left half-done, and True is returned: the new
    cost is at least the old one + ``stop``. Else the phase completes and False is returned."""
    inf = np.inf
    one = np.uint64(1)
    ntu = np.uint64(nt)
    bu = np.uint64(base)
    for j in range(ntu + one):
        minv[j] = inf
        free[j] = True
    P[b, 0] = i
    j0 = np.uint64(0)
    nused = 0
    dprev = 0.0
    total = 0.0
    while True:
        free[j0] = False
        usedc[nused] = j0
        nused += 1
        i0 = P[b, j0]
        s = R[b, i0]
        ui = U[b, i0]
        delta = inf
        j1 = np.uint64(0)
        real = s >= 0  # a slot row; else a dummy row (cost 0 everywhere; slot 0's values are read, not used)
        su = np.uint64(s if real else 0)
        for j in range(one, ntu + one):
            y = vmT[su, bu + j - one]
            cost = (-y if y > NEG else pen) if real else 0.0
            delta, j1 = _relax_column(cost - ui - V[b, j], j, j0, minv, dprev, free, way, delta, j1)
        if minv[jf] <= delta:
            j1 = np.uint64(jf)
        for x in range(nused):
            j = usedc[x]
            U[b, P[b, j]] += delta
            V[b, j] -= delta
        dprev = delta
        total += delta
        j0 = j1
        if P[b, j0] == 0:
            break
        if total >= stop:
            return True
        if s < 0:
            # A dummy row was scanned: every dummy row has the same costs (0) and, the state being optimal,
            # the same potential, so the other dummy rows' columns are at this same least distance and their
            # scans would add nothing: they are taken now, all at once (each would be a step of delta 0).
            for j in range(one, ntu + one):
                if free[j] and j != j1 and minv[j] <= delta and R[b, P[b, j]] < 0:
                    free[j] = False
                    usedc[nused] = j
                    nused += 1
    while True:
        j1 = way[j0]
        P[b, j0] = P[b, j1]
        j0 = j1
        if j0 == 0:
            break
    P[b, 0] = 0
    return False


@njit(cache=True, inline="always")
def _sq_set_row(vmT, base, nt, pen, i, slot, b, U, V, P, R, way, minv, free, usedc, stop):
    """Give row i of the optimal square type state ``b`` the slot ``slot`` (-1: make it a dummy row) and
    restore optimality with one augmentation (:func:`_sq_augment`; its early ``stop``, returned)."""
    jf = 0
    for j in range(1, nt + 1):
        if P[b, j] == i:
            jf = j
    P[b, jf] = 0
    R[b, i] = slot
    return _sq_augment(vmT, base, nt, pen, i, jf, b, U, V, P, R, way, minv, free, usedc, stop)


@njit(cache=True, inline="always")
def _sq_value(vmT, base, nt, b, P, R):
    """Value of the solved square type state ``b``: the sum over its slot rows of the assigned card's value;
    NEG when one holds a disallowed pair (then no assignment of allowed pairs exists, see
    :func:`_ls_tables`)."""
    total = 0.0
    for j in range(1, nt + 1):
        s = R[b, P[b, j]]
        if s >= 0:
            y = vmT[s, base + j - 1]
            if not y > NEG:
                return NEG
            total += y
    return total


@njit(cache=True, inline="always")
def _sq_copy(src, dst, nt, U, V, P, R):
    """Copy state row ``src`` of the tables to row ``dst`` (the first nt + 1 entries)."""
    for x in range(nt + 1):
        U[dst, x] = U[src, x]
        V[dst, x] = V[src, x]
        P[dst, x] = P[src, x]
        R[dst, x] = R[src, x]


@njit(cache=True)
def _sq_try(vmT, tstart, pen, t, bank, i, slot, U, V, P, R, way, minv, free, usedc, cur, need):
    """Value type t's slot set with row ``i`` of its current state given slot ``slot`` (-1: dropped; i = 0: a
    dummy row takes ``slot``, an added slot), solved in the scratch state ``bank`` from a copy of the current
    one by one augmentation. ``cur`` is the current state's value (not NEG: the early stop's bound needs a
    current assignment of allowed pairs, as the local search's always is); a move is only of use when the new value
    exceeds ``need`` (-np.inf: always wanted): the augmentation stops as soon as its dual bound proves the new
    value at most need - 1e-12 (1 + |cur| + |need|) (see :func:`_sq_augment`), and NEG is returned for it.
    Returns (value: the exact optimum, or NEG when no assignment of allowed pairs exists or the early stop
    came; the row used)."""
    base = tstart[t]
    nt = tstart[t + 1] - base
    _sq_copy(t, bank, nt, U, V, P, R)
    if i == 0:
        for x in range(1, nt + 1):
            if R[bank, x] < 0:
                i = x
                break
        if i == 0:  # no dummy row left: more slots than cards
            return NEG, 0
    # new value <= cur - (deltas so far); stop once that is at most need less the slack.
    stop = cur - need + 1e-12 * (1.0 + abs(cur) + abs(need))
    if _sq_set_row(vmT, base, nt, pen[t], i, slot, bank, U, V, P, R, way, minv, free, usedc, stop):
        return NEG, i
    return _sq_value(vmT, base, nt, bank, P, R), i


@njit(cache=True)
def _ls_tables(vm, tstart, t, m, V, wtab, psum, price, acc):
    """Table type t's move bound from its solved state's column potentials ``V[t]``: ``wtab[t, s]`` = max over
    the type's allowed cards of (value at s - card price), the prices p_j = max_j' v_j' - v_j >= 0 (with the
    dummy rows, exactly the optimal duals of the rectangular problem on the type's m slots), and ``psum[t]``
    their sum. For any slot set S' of the type, value(S') <= sum over S' of wtab[t] + psum[t] (LP duality,
    see step 4 of :func:`plan_kernel`; it holds for any prices >= 0), with equality on the current slots: a
    move's gain is bounded by the wtab entries of the slots it adds minus those of the slots it drops, before
    any assignment is solved. With m = 0 the prices are 0 (the plain bound: the best allowed value at s).
    ``vm`` is (N, k): the masked values with cards in type-grouped rows (``NEG`` where not allowed), read
    row by row (card by card, every slot at once: the slot loop has no dependency chain).

    With ``acc`` of k entries (scratch), also returns the type's largest |allowed value| over all slots, vmax
    (else 0.0): the local search sets the type's penalty (the cost of a disallowed pair) to 1 + 2 nt vmax
    once, at its start, and keeps it while the slots change. With m <= nt slot rows, an assignment of allowed
    pairs costs at most m vmax and one that uses a disallowed pair at least pen - (m - 1) vmax, more by over
    1 + vmax: the optimum uses a disallowed pair only when no assignment of allowed pairs exists."""
    base = tstart[t]
    nt = tstart[t + 1] - base
    k = wtab.shape[1]
    wt = wtab[t]
    ps = 0.0
    if m == 0:
        for j in range(nt):
            price[j] = 0.0
    else:
        vtop = NEG
        for j in range(1, nt + 1):
            vtop = max(vtop, V[t, j])
        for j in range(nt):
            price[j] = vtop - V[t, j + 1]
            ps += price[j]
    psum[t] = ps
    for s in range(k):
        wt[s] = NEG
    # A disallowed pair (NEG) stays far below any allowed one: NEG - price rounds to NEG (and - 0 is exact).
    # (vm is indexed in 2-D, not through a row view per card: the views cost reference counting.)
    if acc.shape[0] < k:
        for j in range(nt):
            r = base + j
            pj = price[j]
            for s in range(k):
                y = vm[r, s] - pj
                w0 = wt[s]
                wt[s] = y if y > w0 else w0
        return 0.0
    for s in range(k):
        acc[s] = 0.0
    for j in range(nt):  # (the same pass also takes the largest |allowed value| per slot)
        r = base + j
        pj = price[j]
        for s in range(k):
            y0 = vm[r, s]
            y = y0 - pj
            w0 = wt[s]
            wt[s] = y if y > w0 else w0
            a = abs(y0) if y0 > NEG else 0.0
            a0 = acc[s]
            acc[s] = a if a > a0 else a0
    vmax = 0.0
    for s in range(k):
        vmax = max(vmax, acc[s])
    return vmax


@njit(cache=True)
def _ls_accept(vm, tstart, t, bank, cand, m, value, slots, cnt, val, U, V, P, R, wtab, psum, price):
    """Make scratch state ``bank`` type t's current state (an accepted move: its slots ``cand[:m]``, its value
    ``value``) and re-table its move bound. Returns 1 when the type has slots: the refresh counts as one
    assignment problem, as when it was solved afresh (the counters and ``LS_MAX_SOLVES`` keep their meaning)."""
    _sq_copy(bank, t, tstart[t + 1] - tstart[t], U, V, P, R)
    cnt[t] = m
    slots[t, :m] = cand[:m]
    val[t] = value
    _ls_tables(vm, tstart, t, m, V, wtab, psum, price, price[:0])
    return 1 if m > 0 else 0


@njit(cache=True, inline="always")
def _ls_with_slot(owner, s, b, slots, cnt, min_gap, init_dist, pv, share_hi, cand):
    """Type b's card slots with slot s added, written to ``cand``, and their number; -1 when a type-b card
    may not stand at s (the type's gap rule, with the history) or the type's PV would pass its share cap.
    The any-card gap and the count cap are the caller's to check."""
    if not _gap_free(owner, s, b, min_gap[b], init_dist[b], -1):
        return -1
    nb = _edit_slots(slots, b, cnt[b], -1, s, cand)
    if _pv_sum(pv, cand, nb) > share_hi[b]:
        return -1
    return nb


@njit(cache=True)
def _ls_maxima(owner, wtab, org_max, swap_max):
    """Per type a, the best move bound at any organic slot (``org_max[a]``) and, per types a != b, the best
    of wtab[a, s2] - wtab[b, s2] over type-b slots s2 (``swap_max[a, b]``): a shift or swap from a slot whose
    own terms cannot beat these is skipped without a scan of the slots (recomputed after each move)."""
    T, k = wtab.shape
    org_max[:] = NEG
    swap_max[:] = NEG
    for s in range(k):
        b = owner[s]
        if b < 0:
            for a in range(T):
                org_max[a] = max(org_max[a], wtab[a, s])
        else:
            for a in range(T):
                swap_max[a, b] = max(swap_max[a, b], wtab[a, s] - wtab[b, s])


@njit(cache=True, inline="always")
def _ls_layout(owner, g_any, i_any, near, zl, cs, cpos):
    """Where the scans look (recomputed after each move): ``cs[:ncs]`` the card slots in slot order
    (``cpos[s]``: the place of card slot s there); for each organic slot s, ``near[s]`` the card slots
    within ``g_any - 1`` of it, plus 2 when the history alone keeps a card from s (s + i_any < g_any), so
    that :func:`_gap_free` for any card at s, with card slot ``skip`` ignored, holds exactly when
    near[s] == 0, or near[s] == 1 and skip is within g_any - 1 of s; ``zl[:nz]`` the organic slots with
    near 0, in slot order. With g_any <= 1 every organic slot has near 0. Returns (nz, ncs)."""
    k = owner.shape[0]
    r = g_any - 1
    nz = 0
    ncs = 0
    for s in range(k):
        if owner[s] >= 0:
            cpos[s] = ncs
            cs[ncs] = s
            ncs += 1
            continue
        c = 0
        if g_any > 1:
            c = 2 if s + i_any < g_any else 0
            for x in range(max(0, s - r), min(k, s + r + 1)):
                c += owner[x] >= 0
        near[s] = c
        zl[nz] = s
        nz += c == 0
    return nz, ncs


@njit(cache=True)
def local_search(values, vm, vmT, types, tcards, tstart, pv, min_gap, init_dist, caps, share_lo, share_hi, plan,
                 work, cache_slots, cache_len, cache_code, cache_table, kept, max_solves, deadline):
    """First-improvement local search on which slots hold a card of which type; improves ``plan`` in place.

    Moves (scanned slot by slot, each accepted as soon as it gains): remove a card; change a card slot's
    type; shift a card slot of a type to an organic slot; swap the types of two card slots; put a card of a
    type at an organic slot. A move keeps the plan feasible (gaps of each type and of any card, with the
    history; share floors and caps; count caps) and is valued exactly: each type's assignment problem is
    kept solved for the current plan (see the note above :func:`_sq_from_rect`), and a move's changed
    type is re-solved from a copy of that state by one augmentation (:func:`_sq_try`), which gives the
    exact optimum of the new slot set, or stops early once the augmentation's own dual bound shows that the
    move cannot gain (the move is then rejected, as the exact value would have it). Before that, the dual
    bound of :func:`_ls_tables` screens it: most moves cannot gain and cost no assignment problem. A
    "solve" in the counts is one type's slot set valued (one augmentation from the current state, stopped
    early or not; at the start, the type's problem solved or taken as kept), or the refresh of an accepted
    type's tables. The search stops at a local optimum, after ``max_solves`` solves, or at the
    ``deadline`` (when finite, the clock is read at the first slot and then every ``LS_CLOCK_SOLVES``
    solves). Returns (plan value, moves accepted, solves, local optimum reached: a whole pass over the slots
    found no gaining move).

    ``vm`` (N, k) and ``vmT`` (k, N): the masked values, cards in type-grouped rows, and their transpose.
    At the start each type's problem is taken from the re-matching's cache when it kept the problem solved
    for the type's slots (``cache_*`` and ``kept`` of :func:`rematch_plan`; with no row in ``kept``, never)
    and else solved from scratch with the :func:`assignment_work` arrays ``work``: the same problem solved
    the same way, so the same start either way.
    """
    k = plan.shape[0]
    T = tstart.shape[0] - 1
    g_any = min_gap[T]
    i_any = init_dist[T]
    w = 1
    for t in range(T):
        w = max(w, tstart[t + 1] - tstart[t])
    A = T  # scratch states: the move's first type (a) and its second (b)
    B = T + 1
    # The work arrays, carved from four allocations (cold allocations cost more than the views).
    ns = (T + 2) * (w + 1)
    fb = np.empty(4 * T + T * k + T * T + 2 * ns + (w + 1) + k)
    val = fb[:T]
    psum = fb[T:2 * T]
    pen = fb[2 * T:3 * T]
    o = 3 * T
    wtab = fb[o:o + T * k].reshape((T, k))
    o += T * k
    swap_max = fb[o:o + T * T].reshape((T, T))
    o += T * T
    U = fb[o:o + ns].reshape((T + 2, w + 1))
    o += ns
    V = fb[o:o + ns].reshape((T + 2, w + 1))
    o += ns
    minv = fb[o:o + w + 1]
    o += w + 1
    acc = fb[o:o + k]
    o += k
    org_max = fb[o:o + T]
    ib = np.empty(9 * k + T + T * k + 2 * ns, np.int64)
    owner = ib[:k]
    srow = ib[k:2 * k]  # row of a card slot in its type's state
    cand_a = ib[2 * k:3 * k]
    cand_b = ib[3 * k:4 * k]
    lst = ib[4 * k:5 * k]
    near = ib[5 * k:6 * k]  # (the scans' layout, see _ls_layout)
    zl = ib[6 * k:7 * k]
    cs = ib[7 * k:8 * k]
    cpos = ib[8 * k:9 * k]
    o = 9 * k
    cnt = ib[o:o + T]
    o += T
    slots = ib[o:o + T * k].reshape((T, k))
    o += T * k
    P = ib[o:o + ns].reshape((T + 2, w + 1))
    o += ns
    R = ib[o:o + ns].reshape((T + 2, w + 1))
    ub = np.empty(2 * (w + 1), np.uint64)
    way = ub[:w + 1]
    usedc = ub[w + 1:]
    used = np.empty(w + 1, np.bool_)
    owner[:] = -1
    cnt[:] = 0
    srow[:] = 0
    for s in range(k):
        c = plan[s]
        if c >= 0:
            t = types[c]
            owner[s] = t
            slots[t, cnt[t]] = s
            cnt[t] += 1
    solves = 0
    hmask = cache_table.shape[0] - 1
    prime = np.uint64(1099511628211)
    for t in range(T):
        base = tstart[t]
        nt = tstart[t + 1] - base
        m = cnt[t]
        sl = slots[t]
        # The re-matching's solved problem on these slots, when it kept one (its cache's hash and probe).
        e = -1
        if m > 0 and kept.shape[0] > 0:
            h = np.uint64(1469598103934665603) ^ np.uint64(t)
            for x in range(m):
                h = (h ^ np.uint64(sl[x] + 1)) * prime
            e, _ = _cache_probe(cache_table, cache_code, cache_len, cache_slots, h, sl, m, hmask)
        if e >= 0:
            val[t] = _sq_from_kept(vmT, base, nt, sl, m, t, kept[e], cache_slots.shape[1], U, V, P, R)
        else:
            val[t] = _sq_from_rect(vmT, base, nt, sl, m, t, U, V, P, R, work)
        for x in range(m):
            srow[slots[t, x]] = x + 1
        pen[t] = 1.0 + 2.0 * nt * _ls_tables(vm, tstart, t, m, V, wtab, psum, minv, acc)
        solves += 2 if m > 0 else 0  # (the solve, from scratch or kept, and the tables, counted as before)
    total = 0.0
    for t in range(T):
        total += val[t]
    _ls_maxima(owner, wtab, org_max, swap_max)
    nz, ncs = _ls_layout(owner, g_any, i_any, near, zl, cs, cpos)
    r_any = g_any - 1
    moves = 0
    improved = True
    cut = False
    next_clock = 0
    while improved and not cut:
        improved = False
        for s in range(k):
            if solves >= max_solves:
                cut = True
                break
            if deadline < np.inf and solves >= next_clock:
                next_clock = solves + LS_CLOCK_SOLVES
                if now() > deadline:
                    cut = True
                    break
            tol = LS_MIN_GAIN * (1.0 + abs(total))
            a = owner[s]
            done = False
            if a >= 0:
                ma = cnt[a]
                ia = srow[s]
                wa = wtab[a, s]
                # Remove the card at s (the any-card and type gaps only loosen), or change its type to b (the
                # any-card gap is unchanged). Both need type a's value without s: solved once (in state A),
                # when a bound says one of them may gain, and then it sharpens the bound of every change.
                # Both also need type a's PV without s to keep its floor: summed only when a bound lets one
                # of them through.
                may = -wa > tol
                for b in range(T):
                    may = may or (b != a and cnt[b] < caps[b] and wtab[b, s] - wa > tol)
                na = 0
                lo_ok = False
                if may:
                    na = _edit_slots(slots, a, ma, s, -1, cand_a)
                    lo_ok = _pv_sum(pv, cand_a, na) >= share_lo[a]
                va = NEG
                have_va = False
                if lo_ok and -wtab[a, s] > tol:
                    va, _ = _sq_try(vmT, tstart, pen, a, A, ia, -1, U, V, P, R, way, minv, used, usedc, val[a], -np.inf)
                    have_va = True
                    solves += 1
                    if va - val[a] > tol:
                        owner[s] = -1
                        solves += _ls_accept(vm, tstart, a, A, cand_a, na, va, slots, cnt, val, U, V, P, R,
                                             wtab, psum, minv)
                        done = True
                if not done and lo_ok:
                    for b in range(T):
                        if b == a or cnt[b] >= caps[b] or wtab[b, s] - wtab[a, s] <= tol:
                            continue
                        nb = _ls_with_slot(owner, s, b, slots, cnt, min_gap, init_dist, pv, share_hi, cand_b)
                        if nb < 0:
                            continue
                        if not have_va:
                            va, _ = _sq_try(vmT, tstart, pen, a, A, ia, -1, U, V, P, R, way, minv, used, usedc, val[a], -np.inf)
                            have_va = True
                            solves += 1
                        if va - val[a] + wtab[b, s] <= tol:  # (exact loss of a + bound of b's gain)
                            continue
                        vb, ib = _sq_try(vmT, tstart, pen, b, B, 0, s, U, V, P, R, way, minv, used, usedc, val[b],
                                         val[a] + val[b] + tol - va)
                        solves += 1
                        if va > NEG and vb > NEG and va + vb - val[a] - val[b] > tol:
                            owner[s] = b
                            srow[s] = ib
                            solves += _ls_accept(vm, tstart, a, A, cand_a, na, va, slots, cnt, val, U, V, P, R,
                                                 wtab, psum, minv)
                            solves += _ls_accept(vm, tstart, b, B, cand_b, nb, vb, slots, cnt, val, U, V, P, R,
                                                 wtab, psum, minv)
                            done = True
                            break
                # Shift the card slot at s to an organic slot s2 (same type).
                if not done and org_max[a] - wa > tol:
                    # The organic slots where a card may stand once s is emptied (the any-card gap, from the
                    # layout: those with no card near, and those near s whose only near card is s) and whose
                    # bound may gain, listed in slot order first, branch-free: the tests mostly fail.
                    n_l = 0
                    lo = s - r_any
                    hi = s + r_any
                    x = 0
                    while x < nz and zl[x] < lo:
                        s2 = zl[x]
                        lst[n_l] = s2
                        n_l += wtab[a, s2] - wa > tol
                        x += 1
                    for s2 in range(max(0, lo), min(k, hi + 1)):
                        lst[n_l] = s2
                        n_l += (owner[s2] < 0) & (near[s2] == 1) & (wtab[a, s2] - wa > tol)
                    for y in range(x, nz):  # (none in the window: s is near each of its slots)
                        s2 = zl[y]
                        lst[n_l] = s2
                        n_l += wtab[a, s2] - wa > tol
                    for x in range(n_l):
                        s2 = lst[x]
                        if not _gap_free(owner, s2, a, min_gap[a], init_dist[a], s):
                            continue
                        na2 = _edit_slots(slots, a, ma, s, s2, cand_b)
                        pa = _pv_sum(pv, cand_b, na2)
                        if pa > share_hi[a] or pa < share_lo[a]:
                            continue
                        va, _ = _sq_try(vmT, tstart, pen, a, A, ia, s2, U, V, P, R, way, minv, used, usedc, val[a],
                                        val[a] + tol)
                        solves += 1
                        if va - val[a] > tol:
                            owner[s] = -1
                            owner[s2] = a
                            srow[s2] = ia
                            solves += _ls_accept(vm, tstart, a, A, cand_b, na2, va, slots, cnt, val, U, V, P, R,
                                                 wtab, psum, minv)
                            done = True
                            break
                # Swap the types of the cards at s and s2 (the any-card gap is unchanged).
                may_swap = False
                for b in range(T):
                    may_swap = may_swap or (b != a and swap_max[a, b] + wtab[b, s] - wtab[a, s] > tol)
                if not done and may_swap:
                    n_l = 0
                    for y in range(cpos[s] + 1, ncs):  # (the card slots after s, listed as for the shift)
                        s2 = cs[y]
                        b = owner[s2]
                        lst[n_l] = s2
                        n_l += (b != a) & (wtab[a, s2] - wa + wtab[b, s] - wtab[b, s2] > tol)
                    for x in range(n_l):
                        s2 = lst[x]
                        b = owner[s2]
                        if not (_gap_free(owner, s2, a, min_gap[a], init_dist[a], s)
                                and _gap_free(owner, s, b, min_gap[b], init_dist[b], s2)):
                            continue
                        na2 = _edit_slots(slots, a, ma, s, s2, cand_a)
                        nb = _edit_slots(slots, b, cnt[b], s2, s, cand_b)
                        pa = _pv_sum(pv, cand_a, na2)
                        pb = _pv_sum(pv, cand_b, nb)
                        if pa > share_hi[a] or pa < share_lo[a] or pb > share_hi[b] or pb < share_lo[b]:
                            continue
                        va, _ = _sq_try(vmT, tstart, pen, a, A, ia, s2, U, V, P, R, way, minv, used, usedc, val[a],
                                        val[a] + tol - (wtab[b, s] - wtab[b, s2]))
                        solves += 1
                        if va - val[a] + wtab[b, s] - wtab[b, s2] <= tol:  # (exact change of a + bound of b's)
                            continue
                        ib = srow[s2]
                        vb, _ = _sq_try(vmT, tstart, pen, b, B, ib, s, U, V, P, R, way, minv, used, usedc, val[b],
                                        val[a] + val[b] + tol - va)
                        solves += 1
                        if va > NEG and vb > NEG and va + vb - val[a] - val[b] > tol:
                            owner[s] = b
                            owner[s2] = a
                            srow[s] = ib
                            srow[s2] = ia
                            solves += _ls_accept(vm, tstart, a, A, cand_a, na2, va, slots, cnt, val, U, V, P, R,
                                                 wtab, psum, minv)
                            solves += _ls_accept(vm, tstart, b, B, cand_b, nb, vb, slots, cnt, val, U, V, P, R,
                                                 wtab, psum, minv)
                            done = True
                            break
            else:
                # Put a card of type b at the organic slot s.
                if near[s] == 0:  # (the any-card gap, from the layout)
                    for b in range(T):
                        if cnt[b] >= caps[b] or wtab[b, s] <= tol:
                            continue
                        nb = _ls_with_slot(owner, s, b, slots, cnt, min_gap, init_dist, pv, share_hi, cand_b)
                        if nb < 0:
                            continue
                        vb, ib = _sq_try(vmT, tstart, pen, b, B, 0, s, U, V, P, R, way, minv, used, usedc, val[b],
                                         val[b] + tol)
                        solves += 1
                        if vb - val[b] > tol:
                            owner[s] = b
                            srow[s] = ib
                            solves += _ls_accept(vm, tstart, b, B, cand_b, nb, vb, slots, cnt, val, U, V, P, R,
                                                 wtab, psum, minv)
                            done = True
                            break
            if done:
                moves += 1
                improved = True
                _ls_maxima(owner, wtab, org_max, swap_max)
                nz, ncs = _ls_layout(owner, g_any, i_any, near, zl, cs, cpos)
                total = 0.0
                for t in range(T):
                    total += val[t]
    # Write the plan back from each type's current (solved) state.
    for s in range(k):
        plan[s] = -1
    total = 0.0
    for t in range(T):
        base = tstart[t]
        for j in range(1, tstart[t + 1] - base + 1):
            s = R[t, P[t, j]]
            if s >= 0:
                c = tcards[base + j - 1]
                plan[s] = c
    for s in range(k):  # (summed in slot order)
        c = plan[s]
        if c >= 0:
            total += values[c, s]
    return total, moves, solves, not cut


# --------------------------------------------------------------------- the whole plan
@njit(cache=True, inline="always")
def _bound_terms(t, s, best_at, best_priced, best_first, ub_rows, ub_priced, ub_first, has_type):
    """Add slot s of a type-t card to the plan's per-type re-match bounds (:func:`plan_kernel`, step 4);
    returns the terms' magnitude, for the rounding slack of the skip test."""
    ub_rows[t] += best_at[t, s]
    ub_priced[t] += best_priced[t, s]
    ub_first[t] += best_first[t, s]
    has_type[t] = True
    return abs(best_at[t, s]) + abs(best_priced[t, s]) + abs(best_first[t, s])


@njit(cache=True, nogil=True)
def plan_kernel(values, types, pv, allowed, min_gap, init_dist, max_count, share_lo, share_hi,
                width, cards_per_type, n_out, price_iters, deadline, ls_starts):
    """Plan one problem. Returns (plans, objectives, n_found, stats, bound, root_infeasible).

    ``plans[:n_found]`` are distinct feasible plans, best first. ``bound`` is the
    Lagrangian dual value (an upper bound on the optimum; inf when none was computed).
    ``stats`` = [children, look-ahead drops, merged, slots past the deadline, machine states,
    tracked gap rules, price iterations, assignment problems solved (re-matching and local search), wider
    retries, final plans not re-matched because their bound could not beat the best, local search moves,
    local search runs cut short (by ``LS_MAX_SOLVES`` or the deadline) before a local optimum].
    ``ls_starts`` (>= 0) final plans are improved by :func:`local_search` (step 5); 0 skips the step.
    """
    n, k = values.shape
    T = max_count.shape[0]
    stats = np.zeros(12, np.int64)
    # Step 4 keeps the best n_keep plans: the n_out asked for, and at least the local search's starts.
    n_keep = max(n_out, ls_starts)
    out = np.full((n_keep, k), -1, np.int64)
    out_value = np.zeros(n_keep)
    caps = type_caps(types, max_count, T)
    floors = False
    for t in range(T):
        if share_lo[t] > 0.0:
            floors = True
    reach = reach_table(types, pv, allowed, min_gap, caps, T) if floors else np.zeros((T, k + 1, 1))
    # Root: a share cap already exceeded, or a floor out of reach, is a proof of infeasibility.
    for t in range(T):
        if share_hi[t] < 0.0 or short_of_share(t, 0, 0.0, 0, init_dist, min_gap, caps, share_lo, reach):
            return out[:n_out], out_value[:n_out], 0, stats, -np.inf, True
    if n == 0:
        # No cards: the all-organic plan is the only one, and it keeps every rule checked above.
        return out[:n_out], out_value[:n_out], 1, stats, (0.0 if price_iters > 0 else np.inf), False
    tcards, tstart = cards_by_type(types, T)
    vm = masked_values(values, allowed, tcards)
    skip, place, mdist, g_any, n_tracked = gap_machine(min_gap, init_dist, MAX_MACHINE_STATES)
    n_rules = 0
    for i in range(T + 1):
        if min_gap[i] > 1:
            n_rules += 1
    exact = n_tracked == n_rules
    S = skip.shape[0]
    delay, fwd, skip_f, e_start, e_type, e_jump = machine_tables(skip, place, mdist, g_any)
    F = skip_f.shape[0]
    jump = dense_jumps(e_start, e_type, e_jump, T)
    stats[4] = S
    stats[5] = n_tracked
    zkeys = zobrist_keys(n, S, 12345)
    work = assignment_work(n, k)
    m_max = 0
    for t in range(T):
        m_max = max(m_max, caps[t])
    cache = rematch_cache(T * (min(width, 64) + 1) + T, m_max)
    cache_slots, cache_cards, cache_len, cache_code, cache_table, cache_used = cache
    zero_n = np.zeros(n)
    # The re-matching's solved problems, kept for the local search's start (a row per cache entry; none, and
    # no allocation, without the local search).
    nt_max = 1
    for t in range(T):
        nt_max = max(nt_max, tstart[t + 1] - tstart[t])
    kept = (np.empty((cache_slots.shape[0], 2 * cache_slots.shape[1] + nt_max)) if ls_starts > 0
            else zero_n[:0].reshape((0, 1)))
    zero_t = np.zeros(T)
    plan_buf = np.empty(k, np.int64)

    # vmT[s, j] = vm[j, s], with a spare last column 0.0 (the price steps read it for 'no card'): the price
    # steps, the re-matching and the local search read the values slot by slot.
    vmT = np.zeros((k, n + 1))
    for j in range(n):
        for s in range(k):
            vmT[s, j] = vm[j, s]

    # 1. Prices and the estimate table (the priced program's value from each slot and free state on).
    #    The price steps also turn each relaxed path into a plan; the best one aims the steps and joins
    #    the final plans below (only when the machine tracks every gap rule: the path keeps them all then).
    bound = np.inf
    pi_s = zero_n
    lam = zero_t
    nu = zero_t
    mu = zero_t
    inc_value = -np.inf
    inc_rows = np.full(k, -1, np.int64)
    ran = 0
    if price_iters > 0:
        bound, pi_s, lam, nu, mu, H, ran, inc_value, inc_rows = lagrange_prices(
            vm, vmT, tstart, pv, delay, fwd, skip_f, jump, g_any, share_lo, share_hi, caps, price_iters, deadline)
        stats[6] = ran
    if price_iters == 0:
        H = mean_top_table(vm, tstart, caps, skip_f, jump, g_any)
    elif ran == 0:  # the deadline came first: rank by the unpriced program
        pi_s = zero_n
        r = np.empty((T, k))
        slot_values(vm, tstart, zero_n, zero_t, pv, r)
        H = np.zeros((k + g_any, F + 1))
        gap_dp(r, skip_f, jump, g_any, H)
    pi = np.zeros(n)
    for j in range(n):
        pi[tcards[j]] = pi_s[j]
    price = lam - nu

    # 3. The beam. Tight min-share floors can starve it (every state it kept turns out unable to reach a
    #    floor); it then tries again, wider, before it gives up.
    order, order_len = card_order(vm, tstart, tcards, pi_s, T)
    w = width
    while True:
        parent_of, card_of, final_value, feasible, size, bstats = beam_search(
            values, types, pv, min_gap, init_dist, caps, share_lo, share_hi, order, order_len, reach,
            skip, place, mdist, delay, fwd, exact, H, pi, price, mu, VALUE_TIE, w, cards_per_type, zkeys, deadline,
            vmT, tstart, tcards, work)
        for x in range(4):
            stats[x] += bstats[x]
        found = False
        for i in range(size):
            if feasible[i]:
                found = True
                break
        if found or not floors or bstats[3] > 0 or w >= width * RETRY_GROWTH * RETRY_GROWTH:
            break
        w *= RETRY_GROWTH
        stats[8] += 1

    # 4. Re-match the final plans, best first; skip plans that cannot beat the n_keep-th best even re-matched.
    #    Bound of a type's re-matched value on its slots S: the least of sum over S of the best value there,
    #    and (LP duality, any card prices p >= 0) sum over S of max(value - p) + the type's prices, for three
    #    price vectors: the Lagrangian card prices pi; the optimal duals of the type's first solved
    #    assignment problem (tabled once, as best_first, like best_priced for pi); and the duals of the
    #    type's latest solved problem (computed per plan, only when the first three terms cannot skip it).
    #    Proof of the price bound: for any assignment sigma of distinct allowed cards to S,
    #      sum_s v[sigma(s), s] = sum_s (v[sigma(s), s] - p_sigma(s)) + sum_{j used} p_j
    #                          <= sum_s max_j (v[j, s] - p_j) + sum_j p_j        (p_j >= 0, j over allowed cards),
    #    so it holds for any p >= 0, whatever solved problem p came from; duals of a slot set much like S
    #    (the final beam's plans share most slots) make it nearly tight: it equals the optimum on that set.
    #    Floating point: the skip test leaves 1e-9 * (1 + |ub|) plus 1e-12 * (sum of the |terms|) of slack,
    #    far above the rounding of sums of some 100 terms.
    # The step's arrays are views of one float and one int buffer (three allocations with the flags instead
    # of some twenty-five).
    sz = max(size, 1)
    fb = np.zeros(3 * T * k + n + 8 * T)
    ib = np.empty(n + 2 * T * k + k + 2 * T + 2 * T + 2 * sz + k * sz, np.int64)
    best_at = fb[:T * k].reshape((T, k))
    best_priced = fb[T * k:2 * T * k].reshape((T, k))
    best_first = fb[2 * T * k:3 * T * k].reshape((T, k))  # (0 until tabled, which keeps the |terms| sum finite)
    fo = 3 * T * k
    best_at[:] = NEG
    best_priced[:] = NEG
    # Dual prices per type-grouped card row (of the latest solved problem of the type); dual_state[t]:
    # 0 none yet, 1 just solved, 2 summed in dual_sum; n_duals[t]: problems of the type solved so far.
    duals = fb[fo:fo + n]
    fo += n
    pi_sum = fb[fo:fo + T]
    ub_rows = fb[fo + T:fo + 2 * T]
    ub_priced = fb[fo + 2 * T:fo + 3 * T]
    ub_first = fb[fo + 3 * T:fo + 4 * T]
    ub_dual = fb[fo + 4 * T:fo + 5 * T]
    dual_sum = fb[fo + 5 * T:fo + 6 * T]
    first_sum = fb[fo + 6 * T:fo + 7 * T]  # inf until the type's first problem is solved: the term then never wins
    first_sum[:] = np.inf
    io = 0
    rowof = ib[io:io + n]
    io += n
    buf = (ib[io:io + T * k].reshape((T, k)), ib[io + T * k:io + 2 * T * k].reshape((T, k)),
           ib[io + 2 * T * k:io + 2 * T * k + k], ib[io + 2 * T * k + k:io + 2 * T * k + k + T],
           ib[io + 2 * T * k + k + T:io + 2 * T * k + k + 2 * T].view(np.uint64), rowof)
    io += 2 * T * k + k + 2 * T
    dual_state = ib[io:io + T]
    n_duals = ib[io + T:io + 2 * T]
    dual_state[:] = 0
    n_duals[:] = 0
    io += 2 * T
    rank_buf = ib[io:io + sz]
    at = ib[io + sz:io + 2 * sz]
    io += 2 * sz
    traced = ib[io:io + k * sz].reshape((k, sz))
    has_type = np.zeros(T, np.bool_)
    ku = np.uint64(k)
    for t in range(T):
        ba = best_at[t]
        bp = best_priced[t]
        for j in range(np.uint64(tstart[t]), np.uint64(tstart[t + 1])):
            c = tcards[j]
            rowof[c] = j
            pc = pi[c]
            pi_sum[t] += pc
            row = vm[j]
            for s in range(ku):
                x = row[s]
                ba[s] = max(ba[s], x)
                bp[s] = max(bp[s], x - pc if x > NEG else NEG)
    if size <= 64:
        # The stable order of -final_value (as a mergesort argsort gives it) by counting, for each plan, the
        # plans that go before it: branch-free comparisons instead of a sort's data-dependent branches.
        ranking = rank_buf[:size]  # (final_value holds the size final plans)
        for x in range(size):
            fx = -final_value[x]
            before = 0
            for y in range(size):
                fy = -final_value[y]
                before += (fy < fx) | ((fy == fx) & (y < x))
            ranking[before] = x
    else:
        ranking = np.argsort(-final_value, kind="mergesort")
    # Trace every final plan back from its final state at once, slot by slot: the walks up the parent links
    # are independent, so interleaved they overlap instead of each waiting on its own chain of loads.
    at[:size] = ranking[:size]
    for s in range(k - 1, -1, -1):
        crow = card_of[s]
        prow = parent_of[s]
        trow = traced[s]
        for x in range(size):
            i = at[x]
            trow[x] = crow[i]
            at[x] = prow[i]
    n_found = 0
    for q in range(size + 1):
        full = n_found == n_keep
        mag = 0.0
        if full:
            for t in range(T):
                ub_rows[t] = 0.0
                ub_priced[t] = pi_sum[t]
                ub_first[t] = first_sum[t]
                has_type[t] = False
        if q < size:
            i = ranking[q]
            if not feasible[i]:
                continue
            if deadline < np.inf and n_found > 0 and q % 8 == 0 and now() > deadline:
                break
            # The traced plan; the sums of the first three bounds, from the last slot to the first.
            for s in range(k - 1, -1, -1):
                c = traced[s, q]
                plan_buf[s] = c
                if full and c >= 0:
                    mag += _bound_terms(types[c], s, best_at, best_priced, best_first, ub_rows, ub_priced,
                                        ub_first, has_type)
        else:  # the price steps' best path plan
            if not exact or inc_value == -np.inf:
                continue
            for s in range(k):
                c = tcards[inc_rows[s]] if inc_rows[s] >= 0 else -1
                plan_buf[s] = c
                if full and c >= 0:
                    mag += _bound_terms(types[c], s, best_at, best_priced, best_first, ub_rows, ub_priced,
                                        ub_first, has_type)
        if full:
            ub = 0.0
            later = False
            for t in range(T):
                if has_type[t]:
                    ub += min(ub_rows[t], ub_priced[t], ub_first[t])
                    mag += 2.0 * pi_sum[t] + (2.0 * first_sum[t] if n_duals[t] > 0 else 0.0)
                    later = later or n_duals[t] > 1
            if ub + 1e-9 * (1.0 + abs(ub)) + 1e-12 * mag <= out_value[n_keep - 1]:
                stats[9] += 1
                continue
            if later:  # (else the latest duals are the first ones for every type of the plan)
                # Sharper: the same bound with the duals of each type's latest solved problem as prices.
                for t in range(T):
                    ub_dual[t] = dual_sum[t] if n_duals[t] > 1 else np.inf
                for s in range(k):
                    c = plan_buf[s]
                    if c >= 0:
                        t = types[c]
                        if n_duals[t] > 1:
                            row = vmT[s]
                            top = NEG
                            for j in range(np.uint64(tstart[t]), np.uint64(tstart[t + 1])):
                                x = row[j]
                                top = max(top, x - duals[j] if x > NEG else NEG)
                            ub_dual[t] += top
                            mag += abs(top)
                ub = 0.0
                for t in range(T):
                    if has_type[t]:
                        ub += min(ub_rows[t], ub_priced[t], ub_first[t], ub_dual[t])
                        if n_duals[t] > 1:
                            mag += 2.0 * dual_sum[t]
                if ub + 1e-9 * (1.0 + abs(ub)) + 1e-12 * mag <= out_value[n_keep - 1]:
                    stats[9] += 1
                    continue
        v, solved = rematch_plan(values, vmT, types, tcards, tstart, plan_buf, work, cache_slots, cache_cards,
                                 cache_len, cache_code, cache_table, cache_used, buf, duals, dual_state, kept)
        stats[7] += solved
        for t in range(T):
            if dual_state[t] == 1:
                dual_sum[t] = 0.0
                for j in range(tstart[t], tstart[t + 1]):
                    dual_sum[t] += duals[j]
                dual_state[t] = 2
                n_duals[t] += 1
                if n_duals[t] == 1:
                    # Table the first prices: best_first[t, s] = max over the type's allowed cards of (value - price).
                    bf = best_first[t]
                    bf[:] = NEG
                    for j in range(np.uint64(tstart[t]), np.uint64(tstart[t + 1])):
                        pj = duals[j]
                        row = vm[j]
                        for s in range(ku):
                            x = row[s]
                            bf[s] = max(bf[s], x - pj if x > NEG else NEG)
                    first_sum[t] = dual_sum[t]
        # Insert among the distinct plans kept so far (re-matching can make two plans equal).
        dup = False
        for x in range(n_found):
            if _same_prefix(out[x], plan_buf, k):
                dup = True
                break
        if dup:
            continue
        if n_found == n_keep and v <= out_value[n_keep - 1]:
            continue
        pos = n_found if n_found < n_keep else n_keep - 1
        while pos > 0 and out_value[pos - 1] < v:
            out[pos] = out[pos - 1]
            out_value[pos] = out_value[pos - 1]
            pos -= 1
        out[pos] = plan_buf
        out_value[pos] = v
        if n_found < n_keep:
            n_found += 1

    # 5. Local search on the type sequence from the best few plans (see local_search): the beam and the
    #    re-matching leave plans where moving, adding, dropping or re-typing one card slot still gains.
    #    Its plans join the kept ones; the best n_out distinct plans are returned.
    n_ls = min(n_found, ls_starts)
    if n_ls > 0 and deadline < np.inf and now() > deadline:
        n_ls = 0
    if n_ls == 0 and n_keep == n_out:
        return out, out_value, n_found, stats, bound, False
    pool = np.empty((n_found + n_ls, k), np.int64)
    pool_value = np.empty(n_found + n_ls)
    for x in range(n_found):
        pool[x] = out[x]
        pool_value[x] = out_value[x]
    for x in range(n_ls):
        y = n_found + x
        pool[y] = out[x]
        v, moves, solved, local_opt = local_search(values, vm, vmT, types, tcards, tstart, pv, min_gap, init_dist,
                                                   caps, share_lo, share_hi, pool[y], work, cache_slots, cache_len,
                                                   cache_code, cache_table, kept, LS_MAX_SOLVES, deadline)
        pool_value[y] = v
        stats[7] += solved
        stats[10] += moves
        stats[11] += not local_opt
    # Best first; among equal values the earlier pool entry first (deterministic).
    rank = np.argsort(-pool_value, kind="mergesort")
    res = np.full((n_out, k), -1, np.int64)
    res_value = np.zeros(n_out)
    n_res = 0
    for x in range(n_found + n_ls):
        if n_res == n_out:
            break
        i = rank[x]
        dup = False
        for y in range(n_res):
            if _same_prefix(res[y], pool[i], k):
                dup = True
                break
        if not dup:
            res[n_res] = pool[i]
            res_value[n_res] = pool_value[i]
            n_res += 1
    return res, res_value, n_res, stats, bound, False


@njit(cache=True, nogil=True)
def plan_and_check(values, types, pv, allowed, min_gap, init_dist, max_count, share_lo, share_hi, pv_shown,
                   width, cards_per_type, n_out, price_iters, deadline, ls_starts):
    """:func:`plan_kernel`, then the library's plan check (:func:`mixrank._fastcheck._check_plan`, the one
    :func:`mixrank.solution.make_solution` runs) on the best plan, in the same call.

    Returns plan_kernel's six results, its bound raised by ``BOUND_MARGIN`` (relative) when a plan was found,
    and the check's (feasible, objective) of ``plans[0]`` ((False, nan) without a plan). Checked here, the plan costs no second dispatch from Python (~8 us a solve on ``device``,
    most of it the re-check's argument handling on caches the kernel has just cooled); ``make_solution``
    takes the verdict as it is, and raises as before when it says no.
    """
    plans, objectives, n_found, stats, bound, infeasible = plan_kernel(
        values, types, pv, allowed, min_gap, init_dist, max_count, share_lo, share_hi, width, cards_per_type,
        n_out, price_iters, deadline, ls_starts)
    feasible = False
    objective = np.nan
    if n_found > 0:
        feasible, objective = _check_plan(values, types, pv, allowed, min_gap, init_dist, max_count, share_lo,
                                          share_hi, pv_shown, plans[0])
        if np.isfinite(bound):  # a relative margin against rounding (it stays a proven bound)
            bound += BOUND_MARGIN * max(1.0, abs(bound))
    return plans, objectives, n_found, stats, bound, infeasible, feasible, objective
