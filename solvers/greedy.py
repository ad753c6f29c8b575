"""The online baseline: greedy plans that keep every rule, with a min-share look-ahead.

Two orders (the ``order`` option):

``"pair"`` (the default) — what a competent engineer ships online: each step takes the
best remaining (card, slot) pair that keeps every rule with the cards already placed
(gaps on both sides, share caps, counts, allowed pairs), as long as its value beats the
organic item's (> 0). Cards of a type still short of its minimum share are then taken
best first even at a loss, until every floor is met.

``"slot"`` — fill the slots top to bottom, each with the best card that keeps every rule
(or the organic item when no card beats it): what many feeds did first.

Both look ahead only as far as min-share rules need: before a step they check, for every
type still short of its floor, that an optimistic estimate of the PV the type can still
collect covers the shortfall (its remaining cards spaced by its gap over the slots still
open to one of them, within its count limit and share cap; :func:`_reach`, answered from
reach tables for every slot at once where they decide it, :class:`_Lookahead`). A step that
fails the check is skipped. When no step passes and a floor is still short, greedy says UNKNOWN rather
than serve an infeasible plan. With a time limit, the clock is read at every step; when it
runs out greedy returns the plan built so far if it keeps every rule (floors included),
UNKNOWN otherwise.
"""

from __future__ import annotations

import math
import time
from typing import NamedTuple

import numpy as np

from mixrank.errors import SolverError
from mixrank.solution import Solution, Status, make_solution

__all__ = ["solve_greedy"]

#: The orders greedy knows (the ``order`` option).
ORDERS = ("pair", "slot")


class _State(NamedTuple):
    """What is placed so far (arrays updated in place by :func:`_place`)."""

    plan: np.ndarray  # (K,) card per slot, -1 organic
    used: np.ndarray  # (N,) bool
    last: np.ndarray  # (T + 1,) slot of the last card per type, index T: any card (slot order only)
    count: np.ndarray  # (T,) cards placed per type
    pv_used: np.ndarray  # (T,) PV given to each type on this page


def _new_state(ar) -> _State:
    n, k = ar.values.shape
    t_count = ar.n_types
    return _State(np.full(k, -1, dtype=np.int64), np.zeros(n, dtype=bool), -ar.init_dist.astype(np.int64),
                  np.zeros(t_count, dtype=np.int64), np.zeros(t_count))


def _place(ar, state: _State, card: int, slot: int) -> None:
    t = int(ar.types[card])
    state.plan[slot] = card
    state.used[card] = True
    state.last[t] = max(state.last[t], slot)
    state.last[-1] = max(state.last[-1], slot)
    state.count[t] += 1
    state.pv_used[t] += ar.pv[slot]


def _short_types(ar, state: _State) -> np.ndarray:
    return np.flatnonzero(state.pv_used < ar.share_lo)


def _levels(gain: np.ndarray, spacing: int, picks: int, need: float = math.inf) -> list[np.ndarray]:
    """``[best_0, best_1, ...]``: ``best_j[i]``, the most gain from slots ``>= i`` with at most ``j`` picks.

    Picks stand ``spacing`` apart. ``best_j`` is a suffix maximum of ``gain[i] + best_{j-1}[i + spacing]``:
    one vectorised pass per pick. Each level has ``len(gain) + spacing`` entries (zeros past the end).
    Stops early once ``best_j[0] >= need`` or a level adds nothing.
    """
    m = gain.shape[0]
    levels = [np.zeros(m + spacing)]
    for _ in range(picks):
        best = levels[-1]
        nxt = np.zeros(m + spacing)
        nxt[:m] = np.maximum.accumulate((gain + best[spacing:spacing + m])[::-1])[::-1]
        levels.append(nxt)
        if nxt[0] >= need or nxt[0] == best[0] and np.array_equal(nxt, best):
            break
    return levels


def _reach(pv: np.ndarray, avail: np.ndarray, start: int, spacing: int, picks: int,
           need: float = math.inf) -> float:
    """Most PV one type can still collect from ``start`` on: at most ``picks`` cards, ``spacing`` apart.

    Exact over the slots ``avail`` marks (an upper bound on what the type can reach in a real plan:
    other types and the cards' identities are ignored); stops once the PV reaches ``need``.
    """
    k = pv.shape[0]
    picks = min(picks, (k - start + spacing - 1) // spacing)
    if picks <= 0 or start >= k:
        return 0.0
    return float(_levels(np.where(avail[start:], pv[start:], 0.0), spacing, picks, need)[-1][0])


class _Short(NamedTuple):
    """One type short of its floor, at one step: what it still needs and where its cards may go."""

    type: int
    need: float  # PV still missing
    picks: int  # cards it may still place
    spacing: int  # least distance between two of its cards
    open_count: np.ndarray  # (K,) free cards of the type that may still take each slot


class _Lookahead:
    """Answers, for one step of a greedy, whether a move keeps every min-share floor reachable.

    ``shorts`` describe the types short of their floor before the move; ``card_open(card)``
    gives the (K,) slots that ``card`` itself may still take (to leave it out of its type's
    count when it is the one placed). A move closes a window of slots of each short type
    (and, by one of its own cards, takes a pick and some PV). Two tables per short type,
    the most PV before and after every slot with j cards (:func:`_levels`), bracket the
    reach without that window; the exact DP runs only when the bracket straddles the need,
    or when the type's share cap or the placed card's identity could change the answer.
    """

    def __init__(self, ar, state: _State, shorts: list[_Short], card_open):
        self.ar, self.state, self.shorts, self.card_open = ar, state, shorts, card_open
        self._tables: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def ok(self, card: int, slot: int) -> bool:
        """Can every short type still reach its floor after ``card`` (-1: the organic item) at ``slot``?"""
        t = int(self.ar.types[card]) if card >= 0 else -1
        return all(self._mine_ok(u, card, slot) if u.type == t else self._other_ok(u, slot, card >= 0)
                   for u in self.shorts)

    def _tables_of(self, u: _Short) -> tuple[np.ndarray, np.ndarray]:
        """``(before, after)``: (picks + 1, K + spacing) most PV with j of u's cards before / from each slot."""
        if u.type not in self._tables:
            gain = np.where(u.open_count > 0, self.ar.pv, 0.0)
            after = _stack(_levels(gain, u.spacing, u.picks), u.picks)
            before = _stack(_levels(gain[::-1].copy(), u.spacing, u.picks), u.picks)
            self._tables[u.type] = before, after
        return self._tables[u.type]

    def _bracket(self, u: _Short, low: int, high: int, picks: int) -> tuple[float, float]:
        """(lower, upper) bounds on the most PV of ``picks`` type-u cards outside slots ``low..high``.

        The upper bound ignores the spacing between the last card before the window and the
        first after it; the lower bound keeps it by starting after the window late enough.
        """
        if picks <= 0:
            return 0.0, 0.0
        k = self.ar.pv.shape[0]
        before, after = self._tables_of(u)
        # before[j, k - i]: most PV with j cards in slots < i; after[j, i]: in slots >= i.
        left = before[:picks + 1, k - low]
        upper = float(np.max(left + after[picks::-1, high + 1]))
        lower = float(np.max(left + after[picks::-1, min(max(high + 1, low - 1 + u.spacing), k)]))
        return lower, upper

    def sure_failures(self, u: _Short) -> tuple[np.ndarray, np.ndarray]:
        """(K,) masks of the slots where a move fails for ``u`` whatever the card: by one of its own, by any other.

        Every slot's bracket at once (upper bounds only): what the individual checks would say
        "no" to, for every card alike.
        """
        k = self.ar.pv.shape[0]
        slots = np.arange(k)

        def upper(half: int, picks: int) -> np.ndarray:
            if picks <= 0:
                return np.zeros(k)
            before, after = self._tables_of(u)
            low, high = np.maximum(slots - half, 0), np.minimum(slots + half, k - 1)
            return (before[:picks + 1][:, k - low] + after[picks::-1][:, high + 1]).max(axis=0)

        need_mine = u.need - self.ar.pv
        mine = (need_mine > 0) & (upper(u.spacing - 1, u.picks - 1) < need_mine)
        other = upper(int(self.ar.min_gap[-1]) - 1, u.picks) < u.need
        return mine, other

    def _mine_ok(self, u: _Short, card: int, slot: int) -> bool:
        ar = self.ar
        need = u.need - ar.pv[slot]
        if need <= 0:
            return True
        k = ar.pv.shape[0]
        low, high = max(slot - u.spacing + 1, 0), min(slot + u.spacing - 1, k - 1)  # its own gap and min_gap_any
        _, upper = self._bracket(u, low, high, u.picks - 1)  # exact, but for the cap and the card's identity
        if upper < need:
            return False
        mine = self.card_open(card)
        room = ar.share_hi[u.type] - self.state.pv_used[u.type] - ar.pv[slot]
        capped = bool(np.any((u.open_count > 0) & (ar.pv > room)))
        if not capped and not np.any((mine > 0) & (u.open_count - mine <= 0)):
            return True
        avail = (u.open_count - mine) > 0
        avail[low:high + 1] = False
        avail &= ar.pv <= room
        return _reach(ar.pv, avail, 0, u.spacing, u.picks - 1, need) >= need

    def _other_ok(self, u: _Short, slot: int, is_card: bool) -> bool:
        k = self.ar.pv.shape[0]
        half = int(self.ar.min_gap[-1]) - 1 if is_card else 0  # a card closes slot +- (min_gap_any - 1)
        low, high = max(slot - half, 0), min(slot + half, k - 1)
        lower, upper = self._bracket(u, low, high, u.picks)
        if upper < u.need:
            return False
        if lower >= u.need:
            return True
        avail = u.open_count > 0
        avail[low:high + 1] = False
        return _reach(self.ar.pv, avail, 0, u.spacing, u.picks, u.need) >= u.need


def _stack(levels: list[np.ndarray], picks: int) -> np.ndarray:
    """Levels 0..picks as one (picks + 1, width) array; levels past an early stop repeat the last."""
    return np.stack(levels + [levels[-1]] * (picks + 1 - len(levels)))


def _shorts(ar, state: _State, open_count) -> list[_Short]:
    """The types short of their floor, with ``open_count(u)``: (K,) free type-u cards that may take each slot."""
    out = []
    gap_any = int(ar.min_gap[-1])
    for u in np.flatnonzero(state.pv_used < ar.share_lo):
        u = int(u)
        free = int(np.count_nonzero(~state.used & (ar.types == u)))
        picks = max(min(int(ar.max_count[u] - state.count[u]), free), 0)
        out.append(_Short(u, float(ar.share_lo[u] - state.pv_used[u]), picks, int(max(ar.min_gap[u], gap_any)),
                          open_count(u)))
    return out


class _Pairs(NamedTuple):
    """The (card, slot) steps of pair order; rows are the cards sorted by type."""

    by_type: np.ndarray  # (N,) card of each row
    row_of: np.ndarray  # (N,) row of each card
    row_type: np.ndarray  # (N,) type of each row
    rows: np.ndarray  # (T + 1,) type t's rows are rows[t]:rows[t + 1]
    values: np.ndarray  # (N, K) values by row
    closed: np.ndarray  # (N, K) steps that break a rule with the cards placed
    vetoed: np.ndarray  # (N, K) steps that would leave a floor out of reach (lifted when a short type gains)
    score: np.ndarray  # (N, K) the value of each step neither closed nor vetoed, else -inf


def _open_pairs(ar, state: _State) -> _Pairs:
    k = ar.values.shape[1]
    by_type = np.argsort(ar.types, kind="stable")
    row_type = ar.types[by_type]
    rows = np.searchsorted(row_type, np.arange(ar.n_types + 1))
    slots = np.arange(k)
    gap = ar.min_gap
    ok = ar.allowed[by_type] & (slots[None, :] - state.last[row_type][:, None] >= gap[row_type][:, None])
    ok &= slots[None, :] - state.last[-1] >= gap[-1]
    ok &= ar.pv[None, :] <= ar.share_hi[row_type][:, None]
    ok &= (ar.max_count[row_type] > 0)[:, None]
    values = ar.values[by_type]
    return _Pairs(by_type, np.argsort(by_type), row_type, rows, values, ~ok, np.zeros(ok.shape, dtype=bool),
                  np.where(ok, values, -np.inf))


def _close(ar, pairs: _Pairs, state: _State, row: int, s: int) -> None:
    """Close the steps that the card of ``row``, just placed at ``s``, rules out."""
    t, gap, rows = int(pairs.row_type[row]), ar.min_gap, pairs.rows
    for mask, closed in ((pairs.closed, True), (pairs.score, -np.inf)):
        mask[row] = closed
        mask[:, max(s - gap[-1] + 1, 0):s + gap[-1]] = closed
        mask[:, s] = closed
        block = mask[rows[t]:rows[t + 1]]
        block[:, max(s - gap[t] + 1, 0):s + gap[t]] = closed
        block[:, ar.pv > ar.share_hi[t] - state.pv_used[t]] = closed
        if state.count[t] >= ar.max_count[t]:
            block[:] = closed


def _next_pair(ar, pairs: _Pairs, state: _State, deadline: float, stats: dict) -> int | None:
    """The flat index (row * K + slot) of the next step; None when there is none; -1 when the time ran out."""
    k = ar.values.shape[1]
    score, rows = pairs.score, pairs.rows
    plain = int(np.argmax(score))
    if not (state.pv_used < ar.share_lo).any():
        return plain if score.flat[plain] > 0 else None
    look = _Lookahead(ar, state, _shorts(ar, state, lambda u: (~pairs.closed[rows[u]:rows[u + 1]]).sum(axis=0)),
                      lambda card: ~pairs.closed[pairs.row_of[card]])
    short = [u.type for u in look.shorts]
    others = [u for u in range(ar.n_types) if u not in short]
    for u in look.shorts:  # veto at once the moves every card would fail alike
        mine, other = look.sure_failures(u)
        for v in range(ar.n_types):
            cols = mine if v == u.type else other
            pairs.vetoed[rows[v]:rows[v + 1], cols] = True
            score[rows[v]:rows[v + 1], cols] = -np.inf
    while True:
        flat = int(np.argmax(score))
        if score.flat[flat] <= 0:  # at a loss, only the short types are worth a card
            flat = max((rows[u] * k + int(np.argmax(score[rows[u]:rows[u + 1]])) for u in short
                        if rows[u + 1] > rows[u]), key=lambda f: score.flat[f], default=flat)
        if score.flat[flat] == -np.inf:
            return None  # trapped: no step keeps the floors reachable
        row, s = divmod(flat, k)
        if look.ok(int(pairs.by_type[row]), s):
            if flat != plain or score.flat[plain] <= 0:
                stats["forced"] += 1
            return flat
        # A card of a type that is not short closes the same slots of the short types whatever its type:
        # all such steps at s fail alike. Until a short type gains a card, every step only shrinks what
        # the short types can reach, so a veto holds until then.
        stats["lookahead_vetoes"] += 1
        vetoed = [(row, row + 1)] if int(pairs.row_type[row]) in short else [(rows[u], rows[u + 1]) for u in others]
        for a, b in vetoed:
            pairs.vetoed[a:b, s] = True
            score[a:b, s] = -np.inf
        if time.perf_counter() > deadline:
            return -1


def _pair_order(ar, state: _State, deadline: float, stats: dict) -> bool:
    """Fill ``state`` pair by pair; False when the clock ran out."""
    if ar.values.size == 0:
        return True
    pairs = _open_pairs(ar, state)
    k = ar.values.shape[1]
    while True:
        if time.perf_counter() > deadline:
            return False
        flat = _next_pair(ar, pairs, state, deadline, stats)
        if flat is None:
            return True
        if flat < 0:
            return False
        row, s = divmod(flat, k)
        t = int(pairs.row_type[row])
        was_short = state.pv_used[t] < ar.share_lo[t]
        _place(ar, state, int(pairs.by_type[row]), s)
        _close(ar, pairs, state, row, s)
        if was_short and pairs.vetoed.any():  # the short types' reach changed: vetoes are lifted
            pairs.vetoed[:] = False
            np.copyto(pairs.score, np.where(pairs.closed, -np.inf, pairs.values))


def _slot_order(ar, state: _State, deadline: float, stats: dict) -> bool:
    """Fill ``state`` slot by slot; False when the clock ran out."""
    k = ar.values.shape[1]
    t_count = ar.n_types
    types, pv, allowed, gap = ar.types, ar.pv, ar.allowed, ar.min_gap
    slots = np.arange(k)

    def open_below(s: int, u: int, counts: np.ndarray) -> np.ndarray:
        """``counts`` (K,) of type-u cards that may take each slot, zero above ``s`` and where the past rules out."""
        reach_from = max(s + 1, state.last[u] + gap[u], state.last[-1] + gap[-1])
        return np.where((slots >= reach_from) & (pv <= ar.share_hi[u] - state.pv_used[u]), counts, 0)

    for s in range(k):
        if time.perf_counter() > deadline:
            return False
        if s - state.last[-1] >= gap[-1]:
            ok_type = ((s - state.last[:t_count] >= gap[:t_count]) & (state.count < ar.max_count)
                       & (state.pv_used + pv[s] <= ar.share_hi))
            cand = np.flatnonzero((~state.used) & allowed[:, s] & ok_type[types])
        else:
            cand = np.zeros(0, dtype=np.int64)
        # Options best first: cards by value (ties: lower index), the organic item at value 0.
        order = cand[np.argsort(-ar.values[cand, s], kind="stable")]
        positive = ar.values[order, s] > 0
        options = [*order[positive].tolist(), -1, *order[~positive].tolist()]
        chosen = options[0]
        if (state.pv_used < ar.share_lo).any():
            shorts = _shorts(ar, state,
                             lambda u, s=s: open_below(s, u, allowed[~state.used & (types == u)].sum(axis=0)))
            look = _Lookahead(ar, state, shorts, lambda card, s=s: open_below(s, int(types[card]), allowed[card]))
            short = [u.type for u in shorts]
            verdict: dict[int, bool] = {}
            chosen = None
            for c in options:
                # A card of a type that is not short acts on the short types as any other of its type.
                key = c if c >= 0 and int(types[c]) in short else (-1 if c < 0 else -2 - int(types[c]))
                if key not in verdict:
                    verdict[key] = look.ok(c, s)
                if verdict[key]:
                    chosen = c
                    break
                stats["lookahead_vetoes"] += 1
            if chosen is None:
                chosen = options[0]  # no option keeps the floors reachable; the final check decides
            elif chosen != options[0]:
                stats["forced"] += 1
        if chosen >= 0:
            _place(ar, state, chosen, s)
    return True


#: order -> the function that fills a state: (arrays, state, deadline, stats) -> finished in time.
_FILL = {"pair": _pair_order, "slot": _slot_order}


def solve_greedy(problem, *, time_limit: float | None = None, seed: int = 0, order: str = "pair") -> Solution:
    """Greedy plan (the online baseline).

    Parameters
    ----------
    problem : MixProblem
    time_limit : float or None
        Seconds; read at every step. When it runs out, the plan built so far is returned
        if it keeps every rule, else UNKNOWN.
    seed
        Accepted for a uniform interface; greedy is deterministic.
    order : {'pair', 'slot'}
        ``'pair'``: each step the best remaining (card, slot) pair that keeps every rule;
        ``'slot'``: slot by slot from the top, each the best card that keeps every rule.

    Returns
    -------
    Solution
        FEASIBLE with the plan (``bound`` is inf: greedy proves nothing), or UNKNOWN when
        the look-ahead could not keep a min-share rule or the time ran out first. ``stats``:
        ``order``, ``lookahead_vetoes`` (steps skipped to keep a floor reachable), ``forced``
        (steps that were not the plain best), ``timed_out``, ``trapped`` (a floor left short).

    Examples
    --------
    >>> import mixrank
    >>> sol = solve_greedy(mixrank.synthetic.instance("tiny", seed=0))
    >>> sol.status, len(sol.assignment)
    (<Status.FEASIBLE: 'FEASIBLE'>, 8)
    >>> solve_greedy(mixrank.synthetic.instance("tiny", seed=0), order="best")
    Traceback (most recent call last):
    ...
    mixrank.errors.SolverError: order must be one of pair, slot; got 'best'
    """
    start_time = time.perf_counter()
    fill = _FILL.get(order) if isinstance(order, str) else None
    if fill is None:
        raise SolverError(f"order must be one of {', '.join(ORDERS)}; got {order!r}")
    deadline = math.inf if time_limit is None else start_time + time_limit
    ar = problem.arrays
    state = _new_state(ar)
    stats = {"order": order, "lookahead_vetoes": 0, "forced": 0}
    in_time = fill(ar, state, deadline, stats)
    stats["timed_out"] = not in_time
    stats["trapped"] = bool(in_time and _short_types(ar, state).size)
    feasible = not problem.check(state.plan)
    status = Status.FEASIBLE if feasible else Status.UNKNOWN
    return make_solution(problem, "greedy", status, state.plan if feasible else None, math.inf,
                         time.perf_counter() - start_time, stats)
