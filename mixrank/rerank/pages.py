"""Mixing plans as ordered lists, so a list-wise evaluator can judge a mixing solver's pool.

A mixing request has ``K`` slots holding organic items and ``N`` candidate
cards. As a slate, its candidates are the ``K`` organic items (indices
``0 .. K-1``, the organic item of slot ``s`` is ``s``) followed by the ``N``
cards (indices ``K .. K+N-1``), and a plan ``assignment`` (card per slot, -1
for organic) is the list ``[K + a[s] if a[s] >= 0 else s for s in slots]``.
Feed the lists of ``Solution.pool`` to
:meth:`mixrank.rerank.SequenceRetriever.rank` as ``extra`` (with
``generators=[]``) and the evaluator picks the page it expects to do best,
seeing interactions (neighbouring cards, cards next to organic items) that a
per-slot CTR matrix cannot.

Examples
--------
>>> plan_list([-1, 2, -1, 0])
array([0, 6, 2, 4])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mixrank.errors import ProblemError

__all__ = ["plan_list", "pool_lists"]


def plan_list(assignment: Any) -> np.ndarray:
    """The ordered list (K,) over ``[organic items, cards]`` of one plan (card per slot, -1 organic)."""
    a = np.asarray(assignment)
    if a.ndim != 1 or not np.issubdtype(a.dtype, np.integer) or (a < -1).any():
        raise ProblemError(f"assignment must be a 1-D int array of cards or -1; got {a!r}")
    k = a.shape[0]
    return np.where(a >= 0, k + a, np.arange(k)).astype(np.int64)


def pool_lists(solution: Any) -> np.ndarray:
    """The lists (M, K) of a :class:`mixrank.Solution`'s pool, best plan first (the assignment alone without a pool)."""
    plans = [p.assignment for p in getattr(solution, "pool", ())] or [getattr(solution, "assignment", None)]
    if plans[0] is None:
        raise ProblemError(f"solution must be a mixrank.Solution; got {type(solution).__name__}")
    return np.stack([plan_list(a) for a in plans])
