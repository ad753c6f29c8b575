"""Sequence retrieval: generators propose ordered lists, a learned list-wise evaluator scores them (SPEC §6).

From ``N`` candidates, serve an ordered list of ``K``:

* :class:`ListLog` — the list-wise exposure-log schema (numpy only; it lives in
  :mod:`mixrank.listlog`, next to ESAN's :mod:`mixrank.logs`);
* :class:`Evaluator` — a list-wise model of the user trained on a ``ListLog``;
  ``predict`` gives each position's click probability, ``score`` a list's value;
* generators — :class:`Greedy` (point-wise sort, the baseline), :class:`Beam`
  (beam search under the evaluator), :class:`PtrNetGenerator` over a
  :class:`PointerNet` (trained by REINFORCE against the evaluator);
* :class:`SequenceRetriever` — asks every generator, scores all lists in one
  batch, serves the best; also scores extra lists (e.g. a mixing solver's pool).

Importing this package is cheap: ``ListLog`` is numpy only, and the PyTorch
parts load on first use.

>>> from mixrank.rerank import ListLog
>>> ListLog.__module__
'mixrank.listlog'
"""

from __future__ import annotations

from mixrank._lazy import lazy_getattr
from mixrank.listlog import ListLog

__all__ = [
    "ListLog",
    "Evaluator",
    "EvaluatorConfig",
    "FitResult",
    "Greedy",
    "Beam",
    "PointerNet",
    "PtrNetGenerator",
    "train_ptrnet",
    "SequenceRetriever",
    "Ranking",
    "BatchRanking",
    "Candidate",
]

_LAZY = {
    "Evaluator": "mixrank.rerank.evaluator",
    "EvaluatorConfig": "mixrank.rerank.evaluator",
    "FitResult": "mixrank.rerank.evaluator",
    "Greedy": "mixrank.rerank.generators",
    "Beam": "mixrank.rerank.generators",
    "PointerNet": "mixrank.rerank.ptrnet",
    "PtrNetGenerator": "mixrank.rerank.ptrnet",
    "train_ptrnet": "mixrank.rerank.ptrnet",
    "SequenceRetriever": "mixrank.rerank.retriever",
    "Ranking": "mixrank.rerank.retriever",
    "BatchRanking": "mixrank.rerank.retriever",
    "Candidate": "mixrank.rerank.retriever",
}


__getattr__ = lazy_getattr(__name__, _LAZY)


def __dir__() -> list[str]:
    return sorted(__all__)
