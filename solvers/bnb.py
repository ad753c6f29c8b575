"""Exact memoized branch and bound (``solver="bnb"``).

The search walks the slots top to bottom, depth first: a node has decided slots
``0..s-1`` and its children put the organic item or an unused card in slot
``s``, best bound first. Everything a rule needs is carried exactly along the
path (distances since the last card of each type and of any type, capped at the
gap; PV and count per type; the cards used), so every plan it accepts passes
:meth:`~mixrank.MixProblem.check`: the share rule is compared with the very
floating-point sums ``check`` makes, and PV weights are never rounded.

Bound. The relaxation moves "each card once", the share rows and the count rows
into the objective with Lagrange multipliers and keeps dispersion exact: a
dynamic program over (slot, distance state) gives the best relaxed value of
every suffix in one table, so a node's bound is its prefix value plus a look-up.
The multipliers come from a deflected subgradient method at the root, with
Polyak steps aimed at the best plan known. Each node then tightens its own bound
without solving anything again: unused cards give up the part of their price
that the slots left can no longer earn back; share and count multipliers drop
out where the slots left cannot reach their rows; and a small grid of tables,
each with one type's share or count multiplier moved (or every share cap
scaled), lets every node pick the one that suits its remaining capacity. Share
floors are checked ahead with an optimistic reach table, so dead ends are cut
early.

Where a share cap admits only a few cards, a price on it pays for fractions of
a card and the bound sits far above the optimum (18 % on ``stress-device`` seed
6). The split relaxation of :mod:`solvers._core.split` closes that gap: every
priced cap becomes a knapsack of its own (the type's PV in units, its own gap),
linked to the DP by prices on "a card of type t at slot s". Its prices start at
the plain ones and improve by subgradient steps; the search reads its DP and
knapsack tables (the knapsack at the units the node has left) and takes, for
each child, the smaller of the two bounds. A share floor that a few cards must
reach (``stress-device`` seed 0 with history and floors: 4.8 PV with at most 10
cards; the plain bound 7 % high, no proof in 20 s) gets the same treatment when
the first search round does not finish: the type's floor and count rows move
into a knapsack over (slot, PV units still needed, cards left), its PV rounded
up in 512-1024 units (coarser units let the knapsack gain more from rounding
than the price loses), and the bound drops to 3 % (proof in ~2 s).

Memo. Two nodes at the same slot with the same distances and the same set of
cards used have the same completions but for the share rules; the one with at
least the value dominates, and the other is pruned (a hash table of the nodes
seen), when its PV compares per type as that type's rules need: no more where
a cap may bind, no less where a floor is set and no plan can reach the cap,
equal where both bind, and not at all where neither does.

Plans. A beam search ranked by the same node bound gives a first plan
(``width``). Where the bound is more than 0.5 % above it, the local search of
:mod:`solvers._core.local` (a type's slots moved, each type's cards re-matched
exactly) improves it first (on ``stress-device`` seed 8 with history and floors
that halves the search, 196k nodes to 83k); the subgradient then runs again aiming at it, and the beam again
(as wide) ranked by the split bound too. Where the bound already meets a plan
(within the tolerance below), that plan is optimal and no search runs; where the
plain bound is within 0.5 % of it, a search of a few hundred nodes under that
bound comes before the split relaxation, which is built only if it does not
finish (on small instances the split costs more than such a search). A search
that does not finish within its node budget pauses while a 4x wider beam, the local search (from the
beam's plan and from the best plan) and a neighbourhood search (windows of the plan re-planned exactly,
the rest held fixed) look for a better plan, then restarts from the root with a 4x budget: better plans prune more, and
a better plan is also a better target for the subgradient steps, which run
again. When they found none and the prices stayed, it goes on where it paused
instead (starting again would walk the same nodes again).

Anytime. With ``time_limit`` (or ``node_limit``) the search stops early and
returns its best plan as FEASIBLE with a proven bound: the best bound among the
nodes left open (never above the root's bound, never below the plan). The
clock is read every 1024 nodes inside the kernels and every 16 subgradient
steps; ``stats["overrun"]`` says how far past the limit the solver returned.
Ctrl-C stops a kernel as promptly (they run in a helper thread and read a stop flag
where they read the clock, :func:`solvers._common.run_stoppable`) and is raised
again as ``KeyboardInterrupt``: an interrupted solve returns nothing. Short runs
(a search's first 2000 nodes, a small beam: milliseconds) run in the calling
thread instead, which Ctrl-C interrupts once they return: on a busy machine each
hand-off to a helper thread waits milliseconds for the scheduler.

Optimality is up to a relative tolerance of ``1e-9``: a node is pruned when its
bound does not beat the plan's value ``v`` by more than ``1e-9 * |v|`` (plus
``1e-14`` times the largest value a plan could have, the bounds' round-off), so
scaling every value by any factor gives the same plan. The solver is deterministic
without a time limit; ``seed`` is accepted for a uniform interface and unused.
Kernels are compiled on first use and cached (:func:`warm_up`).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from mixrank.errors import SolverError
from mixrank.solution import Solution, Status, make_solution
from solvers._bnb_relax import Relaxation
from solvers._common import MAX_BNB_WIDTH, check_int_option, run_stoppable, share_margin, warm_up_problem
from solvers._core.instance import beam_input
from solvers._core.local import local_search

__all__ = ["solve_bnb"]

_TOL_REL = 1e-9
_MAX_REACH = 4_000_000  # entries of one type's PV-reach table
_FIRST_SHARE = 0.5  # of the subgradient steps, before the first plan
_ROUND_NODES = 20_000  # nodes of the first search round
_MAX_WIDTH = 256  # widest beam of the later rounds
_SPLIT_SHARE = 0.5  # subgradient steps of the split relaxation, relative to `lagrange_iters`
_PROBE_NODES = 256  # nodes of a search under the plain bound before the split relaxation is built ...
_PROBE_GAP = 0.005  # ... where that bound is at most this far above the plan (relative)
_SPLIT_BEAM = 1  # the beam ranked by the split bound too: this many times `width`
_LNS_WINDOW = 12  # slots re-planned at once by the neighbourhood search
_LNS_NODES = 4000  # nodes per window
_LS_SOLVES = 200  # assignment problems per local search (as the beam's)
_MEMO_LOG2 = 16  # most memo entries: 2 ** _MEMO_LOG2
_MEMO_MIN_LOG2 = 10  # fewest memo entries
_INLINE_NODES = 2000  # a search's first nodes run in the calling thread (no hand-off to a helper)
_INLINE_WORK = 100_000  # width * K * (N + 1) up to which a beam runs in the calling thread
_NO_LIMIT = 2**63 - 1  # nodes without node_limit (the kernels' int64)


def _reach_tables(lay):
    """Per type: the most PV (and cards) it can still place from each slot and distance state."""
    from solvers._core.reach import all_reach

    k, t_count, gap = lay.k, lay.t_count, lay.gap
    rg = np.ones((3, t_count), dtype=np.int64)
    ga = int(gap[t_count])
    for t in range(t_count):
        g = int(gap[t])
        if (k + 1) * g * ga > _MAX_REACH:
            g, ga_t = 1, 1  # ignore spacing: a looser, still optimistic reach
        else:
            ga_t = ga
        kd = int(lay.kmax[t]) + 1
        if (k + 1) * g * ga_t * kd > _MAX_REACH:
            kd = 1  # no count dimension
        rg[:, t] = (g, ga_t, kd)
    reach, off, creach, coff = all_reach(np.array(lay.pv, dtype=np.float64), np.array(lay.allowed, dtype=np.bool_),
                                         lay.types, rg)
    return reach, off, creach, coff, rg, lay.kmax.astype(np.int64)


def solve_bnb(
    problem,
    *,
    time_limit: float | None = None,
    seed: int = 0,
    node_limit: int | None = None,
    width: int = 8,
    lagrange_iters: int = 200,
    memo: bool = True,
) -> Solution:
    """Solve exactly by memoized branch and bound.

    Parameters
    ----------
    problem : MixProblem
    time_limit : float or None
        Seconds for everything; when it runs out the best plan is returned as
        FEASIBLE with a proven bound (UNKNOWN without a plan).
    seed : int
        Accepted for a uniform interface; the solver is deterministic.
    node_limit : int >= 1 or None
        Stop the search after this many nodes (anytime, like ``time_limit``).
    width : int in [0, 4096], default 8
        Beam width of the first plan (0: start the search without one).
    lagrange_iters : int >= 0, default 200
        Subgradient steps for the bound's multipliers (0: plain DP bound).
    memo : bool, default True
        Merge dominated nodes through the hash memo.

    Returns
    -------
    Solution
        OPTIMAL or INFEASIBLE when the search finished; FEASIBLE or UNKNOWN when
        a limit stopped it. ``stats``: ``nodes``, ``memo_hits``, ``bound_prunes``,
        ``floor_prunes`` (share floor out of reach), ``leaves``, ``improvements``,
        ``root_bound``, ``lagrange_iters``, ``split_iters``, ``floor_knapsacks`` (types whose
        floor and count rows have a knapsack of their own), ``dp_states``, ``beam_value``,
        ``rounds``, ``resumed`` (rounds that went on where the last one paused), ``neighbourhood_nodes``,
        ``ls_improved`` (plans the local search improved past the best one), phase times, and ``overrun``
        (seconds past ``time_limit``; 0 without one).

    Examples
    --------
    >>> import mixrank
    >>> p = mixrank.synthetic.instance("tiny", seed=1)
    >>> sol = solve_bnb(p)
    >>> sol.status, round(sol.objective, 4)
    (<Status.OPTIMAL: 'OPTIMAL'>, 13.2011)
    """
    start = time.perf_counter()
    from mixrank.problem import MixProblem

    if not isinstance(problem, MixProblem):
        raise SolverError(f"problem must be a MixProblem; got {type(problem).__name__}")
    if time_limit is not None and (isinstance(time_limit, bool) or not isinstance(time_limit, (int, float))
                                   or not math.isfinite(time_limit) or time_limit <= 0):
        raise SolverError(f"time_limit must be a positive number of seconds or None; got {time_limit!r}")
    check_int_option("node_limit", node_limit, 1, allow_none=True)
    check_int_option("width", width, 0, high=MAX_BNB_WIDTH)
    check_int_option("lagrange_iters", lagrange_iters, 0)
    if not isinstance(memo, (bool, np.bool_)):
        raise SolverError(f"memo must be True or False; got {memo!r}")
    return _solve(problem, start, time_limit, node_limit, int(width), int(lagrange_iters), bool(memo))


class _Layout:
    """The arrays every phase reads, derived once from ``problem.arrays``."""

    def __init__(self, problem):
        ar = problem.arrays
        self.n, self.k = ar.values.shape
        self.t_count = t_count = ar.n_types
        self.types, self.values, self.pv, self.allowed = ar.types, ar.values, ar.pv, ar.allowed
        # (Whole-array numpy calls on arrays of a few dozen entries: each costs a microsecond or two, and a
        # stress-small solve takes a millisecond, so this builds with as few as it can.)
        self.card_list = np.argsort(self.types, kind="stable").astype(np.int64, copy=False)
        self.n_of_type = np.bincount(self.types, minlength=t_count).astype(np.int64, copy=False)
        self.card_start = np.zeros(t_count + 1, dtype=np.int64)
        np.cumsum(self.n_of_type, out=self.card_start[1:])
        self.gap = ar.min_gap.astype(np.int64)
        self.dist0 = ar.init_dist.astype(np.int64)
        self.mcount = ar.max_count.astype(np.int64)
        self.mcount_f = self.mcount.astype(np.float64)
        self.kmax = np.minimum(self.mcount, self.n_of_type)
        self.pv_shown = np.asarray(ar.pv_shown, dtype=np.float64)
        # The share rule exactly as check() compares it: pv_shown + (PV used) against these.
        self.hi_cmp = ar.share_hi + self.pv_shown
        self.lo_cmp = ar.share_lo + self.pv_shown
        self.margin = share_margin(ar.pv_denominator, self.pv_shown)
        self.use_beta = self.lo_cmp > self.pv_shown
        self.floor_types = self.use_beta.nonzero()[0].astype(np.int64, copy=False)
        # The relaxation's share rows, widened past rounding so that they stay valid.
        self.hi_b = ar.share_hi + self.margin
        self.lo_b = ar.share_lo - self.margin
        self.use_alpha = ar.share_hi < self.pv.sum()
        self.use_gamma = self.mcount < self.n_of_type
        self.blocked = self.mcount <= 0
        self.vmask = np.where(self.allowed & ~self.blocked[self.types][:, None], self.values, -np.inf)
        # Values' magnitude: a plan is worth at most ``scale`` in absolute value. Round-off of the bounds
        # is relative to it; the optimality tolerance is relative to the plan's value (module docstring).
        finite = np.where(np.isfinite(self.vmask), np.abs(self.values), 0.0)
        self.scale = float(finite.max(axis=0).sum()) if finite.size else 0.0
        self.tol_abs = 1e-14 * self.scale
        self.empty_ok = bool((self.pv_shown >= self.lo_cmp).all() and (self.pv_shown <= self.hi_cmp).all())
        self.P = (self.values, self.allowed, self.card_start, self.card_list, self.types, self.pv, self.gap,
                  self.mcount, self.pv_shown, self.hi_cmp, self.lo_cmp, self.floor_types, self.margin)


class _Memo:
    """The memo's hash tables, each sized to the nodes of the searches that use it, and the bit layout of the
    key (slot and capped distances).

    Most searches end within a few hundred nodes: a table of ``2 ** _MEMO_LOG2`` entries (megabytes) would
    cost more to allocate and free than such a search takes, so a search gets the smallest table of at
    least ``2 ** _MEMO_MIN_LOG2`` entries that holds twice its node budget, cleared (key 0 marks an empty
    entry; a key holds the node's slot, >= 1).
    """

    def __init__(self, lay: _Layout, on: bool):
        bits = (lay.k + 1).bit_length()
        self.dshift = np.zeros(lay.t_count + 1, dtype=np.int64)
        for r in range(lay.t_count + 1):
            self.dshift[r] = bits
            bits += max(1, int(lay.gap[r] - 1).bit_length())
        self.on = on and bits <= 62  # else the distances do not pack into one key: no memo
        self.n_words = max(1, (lay.n + 63) // 64)
        self.t_count = lay.t_count
        self._tables: dict[int, tuple] = {}

    def table(self, nodes: int, own: bool = False):
        """A cleared table ``(keys, cards used, PV per type, value)`` for a search of up to ``nodes`` nodes:
        shared with the next search of its size, or (``own``) a new one that no other search clears or fills
        (a paused search's: a restricted search's nodes would prune wrongly in it)."""
        size = 1
        if self.on:
            size = 1 << min(_MEMO_LOG2, max(_MEMO_MIN_LOG2, (2 * max(nodes, 1) - 1).bit_length()))
        table = None if own else self._tables.get(size)
        if table is None:  # only the keys need clearing: an entry's other fields are read once its key is set
            table = (np.zeros(size, dtype=np.int64), np.empty((size, self.n_words), dtype=np.uint64),
                     np.empty((size, self.t_count)), np.empty(size))
            if not own:
                self._tables[size] = table
        else:
            table[0][:] = 0
        return table


def _beam(lay: _Layout, L, R, f0: float, width: int, inc_val: float, deadline: float):
    """The beam of the kernels at ``width``: ``(value, plan)``, -inf when it finds nothing above ``inc_val``.

    A small beam (``width * K * (N + 1)`` up to ``_INLINE_WORK``, a few milliseconds) runs in this thread:
    a helper thread (:func:`~solvers._common.run_stoppable`) costs two scheduler hand-offs, milliseconds
    each on a busy machine, and Ctrl-C is heard as soon as it returns.
    """
    from solvers import _bnb_kernels as kern

    plan = np.full(lay.k, -1, dtype=np.int64)
    args = (lay.P, L, R, lay.dist0, f0, width, inc_val, _TOL_REL, lay.tol_abs, deadline, plan)
    if width * lay.k * (lay.n + 1) <= _INLINE_WORK:
        return kern.beam(*args, np.zeros(1, dtype=np.int64)), plan
    return run_stoppable(kern.beam, *args), plan


class _Tree:
    """The search's tree across rounds: a round starts from the root, or goes on where the last one paused.

    A round's first ``_INLINE_NODES`` nodes run in this thread (most searches end there; see :func:`_beam`);
    the rest in a helper thread, from the node where they paused, with a memo table sized to the round's
    budget. A round that finds nothing changed since the last one paused (the same plan, the same prices)
    goes on from there too: starting again would walk the same nodes again.
    """

    def __init__(self, lay: _Layout, memo: _Memo):
        self.lay, self.memo = lay, memo
        self.path = self.at = self.table = None  # the paused search: its path, depth, memo table
        self.resumed = 0  # rounds that went on where the last one paused

    def run(self, L, R, f0: float, plan, inc_val: float, cap: int, deadline: float, counters, resume: bool):
        """Up to ``cap`` nodes, from the root or (``resume``, and paused) where the last round paused:
        ``(inc_val, bound, complete)``; ``plan`` updated in place."""
        from solvers import _bnb_kernels as kern

        lay, memo = self.lay, self.memo
        free = np.full(lay.k, -2, dtype=np.int64)
        if not (resume and self.table is not None):
            self.path = kern.new_path(lay.n, lay.k, lay.t_count, memo.n_words, lay.dist0, f0)
            self.at = np.full(1, -1, dtype=np.int64)  # -1: at the root
            self.table = None
            first = min(cap, _INLINE_NODES)
            before = int(counters[0])
            inc_val, bound, complete = kern.search(lay.P, L, R, self.path, self.at, memo.table(first), memo.dshift,
                                                   plan, inc_val, first, deadline, _TOL_REL, lay.tol_abs, counters,
                                                   free, np.zeros(1, dtype=np.int64))
            cap -= int(counters[0]) - before
            if complete or cap <= 0 or time.perf_counter() >= deadline:
                return inc_val, bound, complete
            self.table = memo.table(max(cap, _ROUND_NODES), own=True)
        else:
            self.resumed += 1
        return run_stoppable(kern.search, lay.P, L, R, self.path, self.at, self.table, memo.dshift, plan, inc_val,
                             cap, deadline, _TOL_REL, lay.tol_abs, counters, free)


def _search(lay: _Layout, L, R, f0: float, memo: _Memo, plan, inc_val: float, cap: int, deadline: float, counters,
            forced):
    """A search restricted by ``forced`` (:func:`_windows`), up to ``cap`` nodes, in this thread:
    ``(inc_val, bound, complete)``; ``plan`` updated in place."""
    from solvers import _bnb_kernels as kern

    path = kern.new_path(lay.n, lay.k, lay.t_count, memo.n_words, lay.dist0, f0)
    return kern.search(lay.P, L, R, path, np.full(1, -1, dtype=np.int64), memo.table(cap), memo.dshift, plan,
                       inc_val, cap, deadline, _TOL_REL, lay.tol_abs, counters, forced, np.zeros(1, dtype=np.int64))


def _windows(lay: _Layout, L, R, f0: float, memo: _Memo, inc_val: float, inc_plan, deadline: float, side):
    """The neighbourhood search: windows of ``_LNS_WINDOW`` slots of the plan re-planned exactly (up to
    ``_LNS_NODES`` nodes each), the rest held fixed; returns the better ``(inc_val, inc_plan)``."""
    if inc_val == -math.inf:
        return inc_val, inc_plan
    step = max(1, _LNS_WINDOW // 2)
    for lo in range(0, max(1, lay.k - step), step):
        if time.perf_counter() >= deadline:
            break
        forced = inc_plan.copy()
        forced[lo:lo + _LNS_WINDOW] = -2
        trial = inc_plan.copy()
        val, _, _ = _search(lay, L, R, f0, memo, trial, inc_val, _LNS_NODES, deadline, side, forced)
        if val > inc_val:
            inc_val, inc_plan = val, trial
    return inc_val, inc_plan


class _Local:
    """The local search of :mod:`solvers._core.local` on bnb's plans; its input is built on first use."""

    def __init__(self, problem, lay: _Layout):
        self.problem, self.lay, self.inp = problem, lay, None
        self.improved = 0  # plans it improved past the incumbent
        self.seconds = 0.0

    def improve(self, inc_val: float, inc_plan, start, deadline: float):
        """The local search from ``start`` (a feasible plan): its plan where it beats ``inc_val`` (by more than
        the tolerance), else ``(inc_val, inc_plan)``."""
        t0 = time.perf_counter()
        if self.inp is None:
            self.inp = beam_input(self.problem.arrays)
        plan = local_search(self.inp, start, _LS_SOLVES, deadline).plan
        self.seconds += time.perf_counter() - t0
        val, values = 0.0, self.lay.values
        for s in range(plan.shape[0]):  # summed slot by slot, as the search values a plan
            if plan[s] >= 0:
                val += values[plan[s], s]
        if val > inc_val + _TOL_REL * abs(inc_val) + self.lay.tol_abs:
            self.improved += 1
            return val, plan
        return inc_val, inc_plan


def _solve(problem, start, time_limit, node_limit, width, lagrange_iters, memo, initial=None) -> Solution:
    deadline = math.inf if time_limit is None else start + float(time_limit)
    lay = _Layout(problem)
    k = lay.k
    timing: dict[str, float] = {}
    inc_val = 0.0 if lay.empty_ok else -math.inf  # the all-organic plan
    inc_plan = np.full(k, -1, dtype=np.int64)
    if initial is not None:  # a known plan (value, assignment), for experiments
        inc_val, inc_plan = float(initial[0]), np.array(initial[1], dtype=np.int64)

    # --- the bound, then a first plan, then the bound again aiming at that plan
    t0 = time.perf_counter()
    rel = Relaxation(lay, deadline)
    first = max(1, int(lagrange_iters * _FIRST_SHARE))
    rel.improve(first, inc_val)
    R = _reach_tables(lay)
    timing["lagrange_time"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    beam_val = -math.inf
    if width > 0 and time.perf_counter() < deadline:
        L, f0 = rel.tables()
        beam_val, beam_plan = _beam(lay, L, R, f0, width, inc_val, deadline)
        if beam_val > inc_val:
            inc_val, inc_plan = beam_val, beam_plan
    ls = _Local(problem, lay)
    if inc_val > -math.inf and rel.bound - inc_val > _PROBE_GAP * abs(inc_val) and time.perf_counter() < deadline:
        # the bound is far above the plan: the local search first, so the steps below aim at a better plan
        inc_val, inc_plan = ls.improve(inc_val, inc_plan, inc_plan, deadline)
    timing["beam_time"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    if lagrange_iters > first and time.perf_counter() < deadline:
        rel.improve(lagrange_iters - first, inc_val)
    # the plain bound already meets the plan (the search will only confirm it): no split relaxation, no beam
    closed = inc_val > -math.inf and rel.bound <= inc_val + _TOL_REL * abs(inc_val) + lay.tol_abs
    memo_tables = _Memo(lay, memo)
    counters = np.zeros(6, dtype=np.int64)
    limit = _NO_LIMIT if node_limit is None else int(node_limit)
    tree, complete, bound = _Tree(lay, memo_tables), False, rel.bound
    near = inc_val > -math.inf and rel.bound - inc_val <= _PROBE_GAP * abs(inc_val)
    if not closed and near and np.any((rel.prices.alpha > 0) & (lay.hi_b > 0)) and width > 0:
        # the plain bound nearly meets the plan: a short search under it may finish before the split relaxation
        # would be built (which costs as much as hundreds of nodes)
        L, f0 = rel.tables()
        t1 = time.perf_counter()
        inc_val, bound, complete = tree.run(L, R, f0, inc_plan, inc_val, min(_PROBE_NODES, limit), deadline,
                                            counters, False)
        timing["search_time"] = time.perf_counter() - t1
        t0 += timing["search_time"]  # (not the relaxation's time)
    if not closed and not complete and time.perf_counter() < deadline:
        rel.improve_split(int(lagrange_iters * _SPLIT_SHARE), inc_val)
        closed = inc_val > -math.inf and rel.bound <= inc_val + _TOL_REL * abs(inc_val) + lay.tol_abs
    # a closed bound proves the plan optimal (the search would prune its root): no tables, no search
    complete = complete or closed
    L, f0 = rel.tables() if not complete else (None, 0.0)
    priced = inc_val  # the plan value the prices were aimed at
    timing["lagrange_time"] += time.perf_counter() - t0
    if rel.split.on and width > 0 and not complete and time.perf_counter() < deadline:
        # the beam again, ranked by the split bound too: a better first plan prunes more
        t0 = time.perf_counter()
        val, beam_plan = _beam(lay, L, R, f0, width * _SPLIT_BEAM, inc_val, deadline)
        if val > inc_val:
            inc_val, inc_plan = val, beam_plan
        beam_val = max(beam_val, val)
        timing["beam_time"] += time.perf_counter() - t0

    # --- the search, in rounds
    t0 = time.perf_counter()
    side = np.zeros(6, dtype=np.int64)  # nodes of the neighbourhood searches
    rounds = int(counters[0] > 0)
    bound = bound if counters[0] > 0 else rel.bound
    budget, beam_width = _ROUND_NODES, width
    changed, windowed = True, None
    while not complete and time.perf_counter() < deadline and counters[0] < limit:
        # A round that does not finish within its node budget restarts after a
        # wider beam and a neighbourhood search have looked for a better plan
        # (a better plan prunes more), or goes on where it paused when they
        # found none and the prices stayed; budgets grow 4x.
        rounds += 1
        left = limit - int(counters[0])
        cap = min(left, budget) if width > 0 else left
        inc_val, bound, complete = tree.run(L, R, f0, inc_plan, inc_val, cap, deadline, counters, not changed)
        if complete or cap == left:
            break
        paused_at, L_paused = inc_val, L
        beam_width, budget = min(beam_width * 4, _MAX_WIDTH), budget * 4
        val, beam_plan = _beam(lay, L, R, f0, beam_width, -math.inf, deadline)  # its plan even when not better
        if val > -math.inf:
            inc_val, inc_plan = ls.improve(inc_val, inc_plan, beam_plan, deadline)
            if val > inc_val:
                inc_val, inc_plan = val, beam_plan
        if inc_val > -math.inf and time.perf_counter() < deadline:
            inc_val, inc_plan = ls.improve(inc_val, inc_plan, inc_plan, deadline)
        if windowed is None or windowed[0] is not L or not np.array_equal(windowed[1], inc_plan):
            inc_val, inc_plan = _windows(lay, L, R, f0, memo_tables, inc_val, inc_plan, deadline, side)
            windowed = (L, inc_plan.copy())  # the windows of this plan under these prices: nothing better
        if not rel.floors_tried and time.perf_counter() < deadline:
            # a hard instance: floors that a few cards must reach get knapsacks of their own
            rel.improve_split(lagrange_iters, inc_val, floors=True)
            priced = inc_val
            if rel.floors_on:
                L, f0 = rel.tables()
        if inc_val > priced + _TOL_REL * abs(inc_val) + lay.tol_abs and time.perf_counter() < deadline:
            # a better plan: the subgradient steps again, aimed at it (Polyak steps want the optimum)
            rel.improve(lagrange_iters, inc_val)
            rel.improve_split(lagrange_iters, inc_val, floors=rel.floors_on)
            priced = inc_val
            L, f0 = rel.tables()
        changed = inc_val != paused_at or L is not L_paused
    if not complete:
        if inc_val > -math.inf:  # children within the tolerance of the incumbent were dropped
            bound = max(bound, inc_val + _TOL_REL * abs(inc_val) + lay.tol_abs)
        bound = min(bound, rel.bound)
    timing["search_time"] = time.perf_counter() - t0 + timing.get("search_time", 0.0)

    extra = {"beam_value": float(beam_val), "rounds": rounds, "resumed": tree.resumed,
             "neighbourhood_nodes": int(side[0]), "ls_improved": ls.improved, "local_search_time": ls.seconds, **timing}
    return _result(problem, start, time_limit, complete, inc_val, inc_plan, bound, rel, counters, extra)


def _result(problem, start: float, time_limit, complete: bool, inc_val: float, inc_plan, bound: float,
            rel: Relaxation, counters, extra: dict) -> Solution:
    """The :class:`Solution` of a search that ended (``complete``) or stopped, with its stats."""
    has_plan = inc_val > -math.inf
    if complete:
        status = Status.OPTIMAL if has_plan else Status.INFEASIBLE
    else:
        status = Status.FEASIBLE if has_plan else Status.UNKNOWN
    stats: dict[str, Any] = {
        "nodes": int(counters[0]),
        "memo_hits": int(counters[1]),
        "bound_prunes": int(counters[2]),
        "floor_prunes": int(counters[3]),
        "leaves": int(counters[4]),
        "improvements": int(counters[5]),
        "root_bound": float(rel.bound),
        "lagrange_iters": int(rel.iters),
        "split_iters": int(rel.split_iters),
        "floor_knapsacks": int(np.count_nonzero(rel.split.floors.of_type >= 0)),
        "dp_states": rel.n_states,
        **extra,
    }
    end = time.perf_counter()
    stats["overrun"] = 0.0 if time_limit is None else max(0.0, end - start - float(time_limit))
    return make_solution(problem, "bnb", status, inc_plan if has_plan else None, bound, end - start, stats)


def warm_up() -> float:
    """Compile (or load from the cache) the solver's kernels; returns the seconds it took.

    Call it once at start-up so that the first real plan does not pay for it.

    Examples
    --------
    >>> warm_up() >= 0.0
    True
    """
    start = time.perf_counter()
    from mixrank.synthetic import instance

    p = warm_up_problem()
    solve_bnb(p)
    solve_bnb(p, time_limit=60.0, node_limit=2)
    solve_bnb(instance("tight-tiny", 0))  # a cap that admits one card: the split relaxation's kernels
    solve_bnb(instance("stress-device", 0, min_share=True))  # binding floors: the floor knapsacks
    return time.perf_counter() - start
