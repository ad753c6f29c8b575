"""The compiled array layout of a :class:`~mixrank.MixProblem`: what every kernel reads.

Validation, defaults and conversions happen once, here; solver kernels (Numba or
otherwise) receive these arrays and never see Python objects.

Conventions shared by every solver
----------------------------------
* ``dist`` — the distance from a slot back to the last card of a type: a card of
  type ``t`` may stand at slot ``s`` only if ``s - last_slot_t >= min_gap[t]``. The
  distance before slot 0 is ``init_dist[t]`` (``last_gap[t]`` from the history, or
  ``min_gap[t]`` — "unconstrained" — when none is remembered), and distances are
  capped at the gap, so states that differ only beyond the gap merge. Gaps (and history
  gaps) larger than the page are clamped to ``K + 1`` with the same meaning. Index ``T``
  holds the rule for *any* inserted card (``min_gap_any``), so ``min_gap``,
  ``init_dist`` have length ``T + 1``.
* The share rule becomes a two-sided knapsack on this page's PV: the denominator
  ``D = pv_total_shown + sum(pv_weights)`` does not depend on the plan, so
  ``share_lo[t] <= sum(pv_weights[s] for slots holding type t) <= share_hi[t]``
  with the history's ``pv_shown`` and the tolerance ``eps = 1e-9 * D`` folded in.
"""

from __future__ import annotations

from functools import cached_property
from typing import NamedTuple

import numpy as np

__all__ = ["ProblemArrays", "compile_problem", "KERNEL_FIELDS"]


class _Fields(NamedTuple):
    values: np.ndarray  #: (N, K) float64, C-contiguous
    types: np.ndarray  #: (N,) int64 in [0, T)
    pv: np.ndarray  #: (K,) float64 >= 0
    allowed: np.ndarray  #: (N, K) bool (all True when the problem has no mask)
    min_gap: np.ndarray  #: (T + 1,) int64 >= 1; index T is min_gap_any
    init_dist: np.ndarray  #: (T + 1,) int64 in [1, min_gap]: distance to the last card before slot 0
    max_count: np.ndarray  #: (T,) int64 in [0, N]: None becomes the number of cards of the type
    share_lo: np.ndarray  #: (T,) float64: least PV this page must give type t
    share_hi: np.ndarray  #: (T,) float64: most PV this page may give type t
    pv_shown: np.ndarray  #: (T,) float64: history's PV per type
    pv_denominator: float  #: D = pv_total_shown + sum(pv)
    n_types: int  #: T


#: The arrays a planning kernel reads, in the order of :attr:`ProblemArrays.kernel_args`.
KERNEL_FIELDS = ("values", "types", "pv", "allowed", "min_gap", "init_dist", "max_count", "share_lo", "share_hi")


class ProblemArrays(_Fields):
    """Arrays of one problem (N cards, K slots, T types). All are read-only.

    A named tuple (fields ``values``, ``types``, ``pv``, ``allowed``, ``min_gap``,
    ``init_dist``, ``max_count``, ``share_lo``, ``share_hi``, ``pv_shown``,
    ``pv_denominator``, ``n_types``; see the module docstring) with two cached
    argument tuples for kernels. The caches are not pickled: arrays come back
    from a pickle writable, and the tuples are rebuilt read-only on first use.
    """

    # No __slots__: instances carry a __dict__ for the cached tuples below.

    @property
    def n_cards(self) -> int:
        return int(self.values.shape[0])

    @property
    def n_slots(self) -> int:
        return int(self.values.shape[1])

    @cached_property
    def kernel_args(self) -> tuple[np.ndarray, ...]:
        """The :data:`KERNEL_FIELDS` arrays, in that order, all read-only.

        Read-only matters: a writable array is another Numba type, and would make a
        kernel compile a second specialisation (arrays of an unpickled problem come
        back writable; they are handed out here as read-only views).
        """
        return tuple(_read_only(getattr(self, name)) for name in KERNEL_FIELDS)

    @cached_property
    def check_args(self) -> tuple[np.ndarray, ...]:
        """:attr:`kernel_args` followed by ``pv_shown``: what the plan re-check reads."""
        return self.kernel_args + (_read_only(self.pv_shown),)

    def __reduce__(self):
        # Plain fields only: the cached tuples are rebuilt (read-only) after unpickling.
        return (_rebuild_arrays, tuple(self))


def _rebuild_arrays(*fields) -> ProblemArrays:
    return ProblemArrays(*fields)


def _read_only(a: np.ndarray) -> np.ndarray:
    if a.flags.writeable:
        a = a.view()
        a.setflags(write=False)
    return a


def _ro(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


def compile_problem(problem) -> ProblemArrays:
    """Build the :class:`ProblemArrays` of a validated problem (use ``problem.arrays``).

    Every first solve of a problem pays for this, so the per-type rows (a handful of
    numbers) are worked out in plain Python floats, not as tiny numpy arrays (~3x
    cheaper; the arithmetic is the same IEEE double arithmetic, term by term).
    """
    n, k, t_count = problem.n_cards, problem.n_slots, problem.n_types
    hist = problem.history
    rules = problem.rules
    gaps = [r.min_gap for r in rules]
    gaps.append(problem.min_gap_any)
    if hist is None:
        init = gaps
    else:
        last = list(hist.last_gap)
        last.append(hist.last_gap_any)
        init = [g if lg is None else min(lg, g) for lg, g in zip(last, gaps)]
    # Gaps beyond the page mean the same as K + 1 (never two cards; the first one no earlier than the history
    # allows, or never): clamped here, so that a gap of 10**30 fits every kernel's int64 arithmetic.
    first_open = [min(g - d, k) for g, d in zip(gaps, init)]
    gaps = [min(g, k + 1) for g in gaps]
    init = [g - f for g, f in zip(gaps, first_open)]
    per_type = np.bincount(problem.types, minlength=t_count).tolist()
    max_count = [per_type[t] if r.max_count is None else min(r.max_count, per_type[t]) for t, r in enumerate(rules)]
    pv_shown = [0.0] * t_count if hist is None or hist.pv_shown is None else [float(x) for x in hist.pv_shown]
    total_shown = 0.0 if hist is None else hist.pv_total_shown
    denom = float(total_shown + problem.pv_weights.sum())
    eps = 1e-9 * denom
    share_hi = [r.max_share * denom + eps - x for r, x in zip(rules, pv_shown)]
    share_lo = [r.min_share * denom - eps - x for r, x in zip(rules, pv_shown)]
    allowed = np.ones((n, k), dtype=bool) if problem.allowed is None else problem.allowed
    return ProblemArrays(
        values=_ro(problem.values),
        types=_ro(problem.types),
        pv=_ro(problem.pv_weights),
        allowed=_ro(allowed),
        min_gap=_ro(np.array(gaps, dtype=np.int64)),
        init_dist=_ro(np.array(init, dtype=np.int64)),
        max_count=_ro(np.array(max_count, dtype=np.int64)),
        share_lo=_ro(np.array(share_lo, dtype=np.float64)),
        share_hi=_ro(np.array(share_hi, dtype=np.float64)),
        pv_shown=_ro(np.array(pv_shown, dtype=np.float64)),
        pv_denominator=denom,
        n_types=t_count,
    )
