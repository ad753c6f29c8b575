"""Beam search over slots in Numba: the fast, on-device planner (``solver="beam"``).

How it plans
------------
The relaxation comes from the engine bnb uses (:mod:`solvers._core`); the beam's own
kernels are in :mod:`solvers._beam` (``search``: the beam; ``match``: re-matching;
``local``: local search; ``plan``: the three in one compiled call).

1. **Gap machine.** The gap rules of all types and of any card become a small
   state machine over the capped distances since the last card of each
   (:func:`solvers._core.gaps.gap_states`; rules beyond ``MAX_STATES`` states are
   left to the beam, which keeps every gap exactly).
2. **Prices.** A Lagrangian relaxation prices what a slot-by-slot program cannot
   see — each card used once (a price per card), the share caps and floors (a
   price per type and unit of PV), the count caps (a price per type and card) —
   and solves the rest exactly: a dynamic program over (slot, machine state)
   (:mod:`solvers._core.prices`). ``price_iters // 8`` subgradient steps without a
   target; then a pilot beam (width ``PILOT_WIDTH``, step 3-4) finds a plan whose
   value aims ``price_iters`` more steps (Polyak steps aimed at a plan converge in a
   few dozen steps; without one they need hundreds); then ``price_iters // 2`` steps on
   the **split relaxation** (:mod:`solvers._core.split`), which keeps every priced
   share cap as an integral knapsack (``SPLIT_LEVELS`` units of PV): a price on a cap
   that admits only a few cards pays for fractions of a card, the knapsack does not.
   The beam ranks by the split relaxation where its bound is below the plain one.
   The least relaxation value seen is a proven upper bound on the optimum and is
   returned as ``Solution.bound``.
3. **Beam.** Slots are filled top to bottom. A state holds the cards used (a
   ``uint64`` bitmask per 64 cards), the distances, the machine state, the PV, PV
   units and count per type, and the value so far. Children are the organic item or
   one of the ``cards_per_type`` best unused allowed cards of each type (by priced
   value) that the gaps, the count and the share cap allow. Where every card of a
   type allowed at the slot is used, the type may still take it when its cards can
   be re-matched to its slots and this one (a small assignment problem): without
   it, slot patterns that need such a swap are never reached, at any width. States
   are ranked by the **split bound** of their completions — the priced value so far,
   plus the DP's table at the slot and machine state, plus each capped type's
   knapsack from its distance and the PV units it has left, with floor prices paid
   only up to the floor, past and ahead (the DP's part is the least of its table and
   a floor-free table plus the floor prices of the PV still missing: both bound every
   completion, and the first alone over-rates states whose floors are nearly met) —
   plus a tenth of the plain value so far, and the best
   ``width`` distinct ones are kept (equal states merge, the better kept; ties go to
   the first generated). Over the first third of the slots the beam keeps half as
   many. A look-ahead (:func:`solvers._core.reach.pv_reach`) drops children that can
   no longer reach a min-share floor.
4. **Re-matching.** Each plan of the final beam keeps the slots it gives each type,
   and the type's cards are re-assigned to those slots optimally (Hungarian
   method): gaps, shares and counts depend on the slots only, so the plan stays
   feasible and can only gain. Plans whose bound cannot beat the ones kept are
   skipped. The pilot's plan joins them.
5. **Local search** (option ``local_search``, 1 by default; 0 turns it off). From the best
   ``local_search`` re-matched plans, a first-improvement search on *where each type
   goes*: re-type a slot (add, drop or change a card), move a card slot to an organic
   slot, swap the types of two card slots — each move kept feasible and valued
   exactly by re-matching the changed types, after a bound from the last matchings'
   dual prices has screened out the moves that cannot gain (most of them). It stops
   at a local optimum, after ``LS_MAX_SOLVES`` (200) assignment problems, or at the
   deadline.
6. **Second effort.** Where the best plan is still more than ``SECOND_GAP`` (3 %) below the
   bound, the prices have misled the beam, or the bound is loose: the plan may sit in the wrong
   basin (which one the beam finds flips as the prices move slightly). Three more tries, each
   seeded with every plan found so far: a beam ``SECOND_WIDTH`` (2) times wider ranked by the
   relaxation at zero prices (:func:`free_ranking`: each type worth its best allowed card at
   each slot, the gaps kept; not the prices' basin); ``price_iters`` more price steps from the
   prices reached, now aimed at the best plan (a higher target than the pilot's: smaller, surer
   steps), and half as many split steps; a beam as wide from their ranking, its local search
   started from ``SECOND_LS`` (4) times as many plans. The best plan wins, so the result never
   gets worse, and the bound is the least of all steps. About a fifth of the stress-device
   instances take it and few ``device`` ones, so the median time moves little while the worst
   gaps shrink. The best ``n_solutions`` distinct plans are returned.

Statuses
--------
FEASIBLE with the Lagrangian bound (a heuristic plan, not proven optimal);
UNKNOWN when the final beam holds no plan that meets every floor, even after two
retries 8x and 64x wider; INFEASIBLE only when a floor is out of reach (or a cap
exceeded) before the first slot — a proof, since the look-ahead is a relaxation.

Cost
----
About ``1.6 * price_iters`` relaxation steps (each a DP over slots x machine states x types,
the split ones a knapsack per capped type too), two beams (``PILOT_WIDTH`` and
``width`` states, ``width * K * (1 + T * cards_per_type)`` children), ``width + 1``
small assignment problems and, for the local search, at most ``LS_MAX_SOLVES`` more; where
the second effort runs, ``1.5 * price_iters`` more steps, two beams of ``2 * width`` and up to
``4 * local_search`` more local searches (the whole solve takes 2-4x as long). With a
``time_limit`` it starts only while twice the time spent so far is left.
With a ``time_limit`` the price steps read the clock every 16 steps, the beam once a
slot (past the deadline it finishes at width 1), the local search every 16 assignment
problems. The kernels release the GIL (``nogil``). Compilation happens once per machine
(``cache=True``); call :func:`warm_up` at start-up so that the first real call does not
pay the cache load.

Figures
-------
The second effort (step 6), against steps 1-5 alone (commit dd46679), on the instances bnb proves
(a shared 2-core VM, load 1.7-2.6; the two alternated instance by instance in one process, median
of 3 end-to-end ``mixrank.solve`` calls each; ``bench/bench_stress.py --solvers beam,bnb`` on each
commit gives the same gaps). Tuned on stress-device seeds 0-19; seeds 40-79 and the other
families chose nothing:

===================  ===================================  ===================================
beam                 with the second effort:              steps 1-5 alone:
                     mean / max gap, optimal, median/p95  mean / max gap, optimal, median/p95
===================  ===================================  ===================================
stress-device 0-39   0.154 % / 2.95 %, 100/157, 1.61/5.6  0.287 % / 7.37 %, 96/157, 1.53/2.3
stress-device 40-79  0.212 % / 2.28 %, 96/160, 1.57/5.1   0.293 % / 6.50 %, 93/160, 1.48/2.2
tight-device 0-19    0.284 % / 2.30 %, 33/80, 1.84/4.8    0.452 % / 8.89 %, 28/80, 1.74/2.2
noisy-device 0-19    0.160 % / 2.39 %, 53/79, 1.39/4.5    0.229 % / 3.25 %, 48/79, 1.38/2.1
device 0-19          0.055 % / 0.79 %, 61/80, 1.67/2.2    0.076 % / 1.33 %, 61/80, 1.66/2.1
stress-small 0-19    0.002 % / 0.20 %, 79/80, 0.75/2.3    0.023 % / 1.08 %, 77/80, 0.68/1.0
===================  ===================================  ===================================

It runs on 17, 13, 8, 4 and 13 of the 80 instances of stress-, tight-, noisy-device, device and
stress-small (seeds 0-19); those take 2-4x as long, so the p95 grows and the median moves up
5-10 % where they cross it. Its parts, added one at a time on stress-device 0-39 (mean / max,
optimal): the price-free beam and the priced one again with 4 local search starts, both 2x wide:
0.178 % / 3.36 %, 98; the price steps aimed at the best plan before the second priced beam: 0.154 %
/ 2.95 %, 100 (seeds 40-79: 0.244 % / 6.50 % -> 0.212 % / 2.28 %). The price-free beam is what
moves the plans that the prices lead astray (stress-device 13 ``both``: 7.4 % -> 0.3 %; at width 2048
the priced beam stays at 6.4 %). 4x wide beams instead of 2x: stress-device 0.157 % / 3.36 %, 99
and 0.198 % / 2.28 %, 97 (40-79), noisy-device 0.132 %, tight-device 0.279 %, p95 +24 %. Before the
re-pricing, a 2 % trigger instead of 3 %: 0.178 -> 0.151 %, median +16 %; ``cards_per_type`` 2 in
the second priced beam: worse on tight- and noisy-device.

Adaptive effort the other way (tried, not kept): a cheap pass that stops where its plan meets
its own bound. The bound is what is loose, not the plan: with steps 1-5 only 40 of 79 plans of
stress-device 0-19 are within 1 % of their own bound (31 of them optimal), 14 within 0.2 %, so the
median instance cannot be told apart from a bad one. A cheap first pass (5 / 40 / 20 steps, width
16) gives 1.09 %, 22 optimal, 1.35 against 1.62 ms, and a bound so loose that 2 of 79 plans come
within 1 % of it. Steps 1-2 in full, then width 16 and the width-32 beam only past a 1.5 % gap
(local search after each): 0.366 %, 49 optimal (before 0.336 %, 51), 1.71 against 1.58 ms. Local search only past
a 0.5 % gap: 0.338 %, 49, -2 % time (its price screen already makes it cheap where the gap is
small). The repaired relaxation path as the aim instead of the pilot's plan: -7 % time, but
device 0.076 -> 0.098 %, 61 -> 58 optimal and stress-small max 1.08 -> 3.78 %. Where the time goes
at the median (stress-device, kernels alone, best of 5): prices and pilot ~0.6 ms, the width-32
beam 0.28 ms and its re-matching 0.09 ms, the local search 0.14-0.28 ms (a median 47 assignment
problems, no accepted move), of 1.5 ms end to end; ``perf``: beam_search 13 %, the DP 12 %, the
Hungarian method 9 %, Numba's reference counting (NRT_incref / NRT_decref) 11 %.

Before the second effort: ``python bench/bench_stress.py --families stress-device,tight-device,device,stress-small --seeds 0-19
--solvers beam,bnb --skip-limit-check`` (80 instances per family, bnb's optima; a shared 2-core VM,
load 4-5), against the settings before (``price_iters`` 40 as 10 untargeted, 40 aimed and 25 split
steps, no floor-free table; commit 16e5c75) on the same instances:

==============  ===============================  ===============================
beam            80 now (10/80/40 steps):         40 before (10/40/25 steps):
                mean / max gap, optimal, median  mean / max gap, optimal
==============  ===============================  ===============================
stress-device   0.334 % / 7.37 %, 51, 1.9 ms     0.659 % / 6.45 %, 31
tight-device    0.452 % / 8.89 %, 28, 2.1 ms     0.756 % / 8.34 %, 23
device          0.076 % / 1.33 %, 61, 2.0 ms     0.090 % / 1.18 %, 51
stress-small    0.023 % / 1.08 %, 77, 0.85 ms    0.068 % / 3.78 %, 77
==============  ===============================  ===============================

On seeds 0-39 (160 per family): stress-device 0.299 %, 96 optimal (before 0.543 %, 58),
tight-device 0.551 %, 55 (0.796 %, 43), device 0.148 %, 108 (0.181 %, 87); on seeds 40-79,
which chose nothing: stress-device 0.293 % / 6.50 %, 93 (0.465 % / 14.63 %, 70), tight-device
0.471 %, 65 (0.543 %, 51); noisy-device seeds 0-39: 0.330 % / 4.89 %, 85 (0.749 % / 13.98 %, 54).
The median end-to-end time grew about 6 % on stress-device and 14 % on device (old and new
alternated, same load), after the plain DP got its own path (:func:`solvers._core.dp.backward_dp`,
1.6x faster; it is still ~24 % of a device solve). Fewer aimed steps lose optimal plans first
(60: 78 on stress-device), a narrower beam the mean (width 16: 0.489 %, width 24: 0.328 %); the
price steps are what buys quality here, and they set the time: the beam is far from the 1 ms of
issue 15. The worst gaps (7-9 %) are instances where a floor or a cap price dominates the rank and
the final plan flips between two basins as the prices move slightly (stress-device 20 with
min_share: 8.3 % at 80 and 160 steps, 1.3 % at 120, 0.1 % at 400).
"""

from __future__ import annotations

import math
import time
from typing import NamedTuple

import numpy as np

from mixrank.solution import Counters, Solution, Status, make_solution
from solvers._beam.plan import Plans, path_plan, plan, root_infeasible
from solvers._beam.relax import (
    FloorReach,
    Ranking,
    Relaxation,
    floor_reach,
    improve,
    plain_ranking,
    relaxation,
    split_ranking,
)
from solvers._common import MAX_BEAM_WIDTH, binding_caps_problem, check_int_option, share_margin, warm_up_problem
from solvers._core.instance import BeamInput, beam_input
from solvers._core.prices import Prices, new_prices

__all__ = ["solve_beam", "warm_up", "prepare"]

#: Default beam width.
DEFAULT_WIDTH = 32
#: Default number of cards tried per type at each slot (the best unused allowed ones by priced value).
DEFAULT_CARDS_PER_TYPE = 1
#: Default number of subgradient steps aimed at the pilot's plan (an eighth as many before, half on the split).
DEFAULT_PRICE_ITERS = 80
#: Default number of final plans improved by the local search (step 5).
DEFAULT_LOCAL_SEARCH = 1
#: Relative margin added to the Lagrangian bound against rounding (it stays a proven bound).
BOUND_MARGIN = 1e-9
#: Width of the pilot beam whose plan aims the price steps.
PILOT_WIDTH = 2
#: Weight of the plain value so far in a state's rank (breaks ties between equally priced states).
VALUE_TIE = 0.1
#: The second effort (step 6) runs where the best plan is further than this below the bound (relative).
SECOND_GAP = 0.03
#: Width of the second effort's beams, in multiples of ``width``.
SECOND_WIDTH = 2
#: Local search starts of the second effort, in multiples of ``local_search``.
SECOND_LS = 4
#: Aimed price steps of the second effort, in multiples of ``price_iters`` (half as many split steps after them).
SECOND_PRICE = 1

#: Names of the work counters, in the order of :func:`solvers._beam.plan.plan`'s, then the relaxation's.
_COUNTER_NAMES = ("children", "lookahead_drops", "merged", "slots_past_deadline", "retries", "seeds",
                  "rematched", "ls_solves", "rematch_skipped", "ls_moves", "ls_cut", "price_iters", "machine_states",
                  "second_effort")

_ZKEYS = np.random.default_rng(12345).integers(0, 2**63, size=1 << 16, dtype=np.int64).astype(np.uint64)


def _zkeys(n: int) -> np.ndarray:
    """Zobrist keys of the cards (fixed: the search is deterministic)."""
    global _ZKEYS
    if n > _ZKEYS.shape[0]:
        _ZKEYS = np.random.default_rng(12345).integers(0, 2**63, size=n, dtype=np.int64).astype(np.uint64)
    return _ZKEYS


class Prepared(NamedTuple):
    """Steps 1-2 done: what :func:`solvers._beam.plan.plan` reads, the bound, and the prices to go on from."""

    inp: BeamInput
    rk: Ranking
    fl: FloorReach
    zkeys: np.ndarray  #: Zobrist keys of the cards
    seeds: np.ndarray  #: (m, K): the pilot beam's plan and the relaxation's repaired paths
    bound: float  #: the least relaxation value seen (inf without prices)
    iters: int  #: price steps taken
    rel: Relaxation  #: the plain relaxation (its work tables may back ``rk``)
    prices: Prices  #: the plain relaxation's best prices


def _aimed(inp, rel: Relaxation, prices: Prices, price_iters: int, lower: float, deadline: float):
    """``price_iters`` plain steps aimed at ``lower``, then half as many on the split relaxation: ``(ranking,
    bound, steps, plans)``, the split ranking where its bound is the lower, ``plans`` the relaxation's paths
    repaired into plans (:func:`solvers._beam.plan.path_plan`)."""
    b2, it2 = improve(rel, prices, price_iters, lower, deadline)
    rk = plain_ranking(rel, prices)
    paths = [path_plan(inp, rk.trans, rk.choice)]
    rk2, b3, it3 = split_ranking(inp, rel, prices, price_iters // 2, lower, deadline)
    if rk2 is not None and b3 < b2:  # (where the split bound is no better, its ranking was no better)
        rk = rk2
        paths.append(path_plan(inp, rk.trans, rk.choice))
    return rk, min(b2, b3), it2 + it3, [p for v, p in paths if v > -np.inf]


def _prepare(inp, fl, ar, price_iters: int, deadline: float) -> Prepared:
    """Prices and ranking (steps 1-2): plain steps without a target, a pilot beam's plan, plain steps aimed at
    it, then the split relaxation's steps (module docstring)."""
    n, k = inp.values.shape
    zkeys = _zkeys(n)
    rel = relaxation(inp, share_margin(ar.pv_denominator, inp.shown))
    prices = new_prices(n, inp.caps.shape[0])
    # Prices without a target first; a narrow pilot beam's plan then aims the steps that follow (Polyak steps
    # aimed at a plan's value converge in a few dozen steps, and without one they need hundreds).
    bound, iters = improve(rel, prices, price_iters // 8, -np.inf, deadline)
    rk = plain_ranking(rel, prices)
    seeds = np.zeros((0, k), dtype=np.int64)
    if price_iters > 0:
        pilot = plan(inp, rk, fl, PILOT_WIDTH, 1, 1, 0, VALUE_TIE, zkeys, deadline, seeds)
        lower = -np.inf
        if pilot.n_found:
            lower, seeds = pilot.values[0], pilot.plans[:1]
        rk, b2, it2, found = _aimed(inp, rel, prices, price_iters, lower, deadline)
        bound, iters = min(bound, b2), iters + it2
        if found:
            seeds = np.concatenate([seeds, np.array(found)])
    return Prepared(inp, rk, fl, zkeys, seeds, bound, iters, rel, prices)


def free_ranking(inp, ar) -> Ranking:
    """The ranking at zero prices (the one ``price_iters=0`` uses): each type worth its best allowed card at each
    slot, the gaps kept; card uses, shares and counts are left to the beam."""
    rel = relaxation(inp, share_margin(ar.pv_denominator, inp.shown))
    prices = new_prices(inp.values.shape[0], inp.caps.shape[0])
    improve(rel, prices, 0, -np.inf, math.inf)
    return plain_ranking(rel, prices)


def _second_effort(inp, ar, pre: Prepared, first: Plans, width: int, cards_per_type: int, n_solutions: int,
                   local_search: int, price_iters: int, deadline: float):
    """Step 6 (module docstring): a wider beam from the price-free ranking; more price steps, aimed at the best
    plan so far; a wider beam from their ranking, its local search started from more plans. Each beam is seeded
    with every plan found before. Returns ``(plans, work counters, bound, price steps)``; the plain relaxation's
    prices in ``pre`` go on from where they were (``pre.rk`` may share its tables: it is not read after)."""
    wide = min(width * SECOND_WIDTH, MAX_BEAM_WIDTH)
    seeds = np.concatenate([first.plans[:first.n_found], pre.seeds])
    free = plan(inp, free_ranking(inp, ar), pre.fl, wide, cards_per_type, n_solutions, 0, VALUE_TIE, pre.zkeys,
                deadline, seeds)
    seeds = np.concatenate([free.plans[:free.n_found], pre.seeds])
    rk, bound, iters, found = _aimed(inp, pre.rel, pre.prices, price_iters * SECOND_PRICE, free.values[0], deadline)
    if found:
        seeds = np.concatenate([seeds, np.array(found)])
    out = plan(inp, rk, pre.fl, wide, cards_per_type, n_solutions, local_search * SECOND_LS, VALUE_TIE, pre.zkeys,
               deadline, seeds)
    return out, free.stats + out.stats, min(bound, pre.bound), iters


def prepare(problem, price_iters: int = DEFAULT_PRICE_ITERS, deadline: float = math.inf) -> Prepared:
    """Steps 1-2 for ``problem`` (for profiling the beam alone: ``bench/profile_kernels.py --kernel-only``)."""
    inp = beam_input(problem.arrays)
    return _prepare(inp, floor_reach(inp), problem.arrays, price_iters, deadline)


def solve_beam(
    problem,
    *,
    time_limit: float | None = None,
    seed: int = 0,
    width: int = DEFAULT_WIDTH,
    n_solutions: int = 1,
    cards_per_type: int = DEFAULT_CARDS_PER_TYPE,
    price_iters: int = DEFAULT_PRICE_ITERS,
    local_search: int = DEFAULT_LOCAL_SEARCH,
) -> Solution:
    """Plan with a deterministic, Lagrangian-priced beam search over slots (Numba).

    Parameters
    ----------
    problem : MixProblem
    time_limit : float or None
        Seconds. Past it the kernel stops pricing, finishes the beam at width 1 and
        returns what it has (it looks at the clock only every few tens of thousands
        of steps, :mod:`solvers._clock`; expect an overrun of that order).
    seed : int
        Unused: the search is deterministic (ties are broken by generation order).
    width : int in [1, 2**20], default 32
        States kept after each slot (half as many, rounded up, over the first third of the slots);
        the second effort's beams keep twice as many.
    n_solutions : int >= 1, default 1
        Put the best ``n_solutions`` distinct feasible plans of the final beam
        (after re-matching; of every beam where the second effort ran) into ``Solution.pool``.
    cards_per_type : int >= 1, default 1
        Cards of each type tried at each slot (the best unused allowed ones by priced value).
    price_iters : int >= 0, default 80
        Subgradient steps aimed at the pilot's plan (an eighth as many before it, half as many on
        the split relaxation after it); 0 ranks by the relaxation at zero prices (:func:`free_ranking`:
        each type worth its best allowed card at a slot) and gives no bound, nor a second effort.
    local_search : int >= 0, default 1
        Improve the best ``local_search`` plans of the final beam by local search on
        where each type goes (step 5 above; ~40-45 us a start on ``device``), and
        ``4 * local_search`` in the second effort (step 6). 0 (off) gives exactly the plans
        of the beams alone.

    Returns
    -------
    Solution
        FEASIBLE with ``bound`` = the Lagrangian bound (inf when ``price_iters`` is 0);
        UNKNOWN when the final beam holds no feasible plan; INFEASIBLE only when a
        min-share floor is out of reach (or a share cap exceeded) before the first slot.
        ``stats`` holds the work counters (summed over every beam) and the time spent in the kernel;
        ``rematched`` counts the local search's assignment problems too, ``ls_moves`` its accepted moves,
        ``ls_cut`` its runs stopped (at 200 assignment problems or the deadline) before a local optimum,
        ``second_effort`` is 1 where step 6 ran (the plan was more than 3 % below the bound), and
        ``price_iters`` counts its steps too.

    Examples
    --------
    >>> import mixrank
    >>> p = mixrank.synthetic.instance("tiny", seed=1)
    >>> sol = solve_beam(p, width=16, n_solutions=3, local_search=0)
    >>> sol.status, p.check(sol.assignment), len(sol.pool)
    (<Status.FEASIBLE: 'FEASIBLE'>, [], 3)
    >>> sol.bound >= sol.objective
    True
    >>> solve_beam(p, width=16, local_search=1).objective >= sol.objective
    True
    """
    start = time.perf_counter()
    # Plain ints >= the floor pass straight through (the common case costs no call); anything else
    # goes to check_int_option, which converts numpy ints and words the error.
    if type(width) is not int or not 1 <= width <= MAX_BEAM_WIDTH:
        width = check_int_option("width", width, 1, high=MAX_BEAM_WIDTH)
    if type(n_solutions) is not int or n_solutions < 1:
        n_solutions = check_int_option("n_solutions", n_solutions, 1)
    if type(cards_per_type) is not int or cards_per_type < 1:
        cards_per_type = check_int_option("cards_per_type", cards_per_type, 1)
    if type(price_iters) is not int or price_iters < 0:
        price_iters = check_int_option("price_iters", price_iters, 0)
    if type(local_search) is not int or local_search < 0:
        local_search = check_int_option("local_search", local_search, 0)
    deadline = math.inf if time_limit is None else start + float(time_limit)
    ar = problem.arrays
    inp = beam_input(ar)
    fl = floor_reach(inp)
    n, k = inp.values.shape
    stats = Counters({"width": width}, _COUNTER_NAMES, np.zeros(len(_COUNTER_NAMES), dtype=np.int64), {})
    if root_infeasible(inp, fl):
        return make_solution(problem, "beam", Status.INFEASIBLE, None, math.nan, time.perf_counter() - start, stats)
    if n == 0:  # no cards: the all-organic plan is the only one, and it keeps every rule checked above
        organic = np.full(k, -1, dtype=np.int64)
        return make_solution(problem, "beam", Status.FEASIBLE, organic, 0.0 if price_iters > 0 else math.inf,
                             time.perf_counter() - start, stats, pool=[organic] if n_solutions > 1 else ())
    pre = _prepare(inp, fl, ar, price_iters, deadline)
    out = plan(inp, pre.rk, fl, width, cards_per_type, n_solutions, local_search, VALUE_TIE, pre.zkeys, deadline,
               pre.seeds)
    rk, bound, iters = pre.rk, pre.bound, pre.iters
    work, second = out.stats, 0
    elapsed = time.perf_counter() - start  # the second effort takes 1-3x as long as the first: it starts only
    if (out.n_found and math.isfinite(bound) and bound - out.values[0] > SECOND_GAP * abs(out.values[0])
            and deadline - start - elapsed >= 2.0 * elapsed):  # with twice that left before the deadline
        out, more, bound, more_iters = _second_effort(inp, ar, pre, out, width, cards_per_type, n_solutions,
                                                      local_search, price_iters, deadline)
        work, second, iters = work + more, 1, iters + more_iters
    counters = np.concatenate([work, [iters, rk.trans.shape[0], second]])
    stats = Counters({"width": width}, _COUNTER_NAMES, counters, {"kernel_time": time.perf_counter() - start})
    if out.n_found == 0:
        return make_solution(problem, "beam", Status.UNKNOWN, None, math.nan, time.perf_counter() - start, stats)
    if math.isfinite(bound):  # past the DP's round-off, and a relative margin (it stays a proven bound)
        bound += BOUND_MARGIN * max(1.0, abs(bound))
    pool = [out.plans[i] for i in range(out.n_found)] if n_solutions > 1 else ()
    return make_solution(problem, "beam", Status.FEASIBLE, out.plans[0], bound, time.perf_counter() - start,
                         stats, pool=pool)


def _floor_problem():
    """A tiny problem whose share floor binds (a low-value type asked for 30 % of the page): its ranking
    prices the floor, so the floor-free DP table (:class:`~solvers._beam.relax.Ranking`'s ``H0``) is built."""
    from mixrank.problem import MixProblem, TypeRule

    return MixProblem(values=[[1.0, 0.9, 0.8, 0.7, 0.6, 0.5]] * 3 + [[0.2] * 6] * 2, types=[0, 0, 0, 1, 1],
                      pv_weights=[1.0] * 6, rules=[TypeRule(), TypeRule(min_share=0.3)], min_gap_any=1)


def warm_up() -> float:
    """Compile (or load from the cache) the beam solver's kernel; returns the seconds it took.

    Call it once at start-up so that the first real plan does not pay for it.

    Examples
    --------
    >>> warm_up() >= 0.0
    True
    """
    start = time.perf_counter()
    p = warm_up_problem()
    solve_beam(p, width=2, n_solutions=2)
    solve_beam(p, width=2, time_limit=60.0)
    solve_beam(p, width=2, local_search=1)
    solve_beam(p, width=2, time_limit=60.0, local_search=1)
    solve_beam(binding_caps_problem())  # binding caps: the split relaxation's kernels
    solve_beam(_floor_problem())  # a priced floor: the floor-free DP table
    return time.perf_counter() - start
