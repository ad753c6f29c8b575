"""``SequenceRetriever``: gather candidate lists from generators, score them all with the evaluator, serve the best.

Examples
--------
>>> from mixrank.synthetic.slates import SlateEnv, SlateConfig
>>> from mixrank.rerank import Evaluator, SequenceRetriever
>>> env = SlateEnv(SlateConfig(n_items=6, list_len=3))
>>> ev = Evaluator(dim=8, epochs=1, progress=False).fit(env.log(100, seed=0))
>>> b = env.sample(1, seed=1)
>>> ranked = SequenceRetriever(ev).rank(b.items[0], 3, context=b.context[0])
>>> ranked.order.shape, ranked.generator in ("greedy", "beam")
((3,), True)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mixrank.errors import ProblemError, SolverError
from mixrank.rerank._arrays import as_lists
from mixrank.rerank.generators import Beam, Generator, Greedy, list_scores_t

__all__ = ["SequenceRetriever", "Ranking", "BatchRanking", "Candidate", "GENERATORS"]

#: built-in generators by name (``ptrnet`` needs a trained PointerNet: pass a PtrNetGenerator)
GENERATORS = {"greedy": Greedy, "beam": Beam}


@dataclass(frozen=True)
class Candidate:
    """One scored candidate list and the generator that proposed it."""

    order: np.ndarray  #: (K,) candidate indices in order
    score: float
    generator: str


@dataclass(frozen=True)
class Ranking:
    """The served list of one request.

    Attributes
    ----------
    order : ndarray (K,)
        Candidate indices of the served list, in order.
    score : float
        Its evaluator score (predicted expected clicks, or the weighted sum).
    generator : str
        Which generator proposed it (first among equals).
    candidates : tuple of Candidate
        Every scored candidate list, best first.
    """

    order: np.ndarray
    score: float
    generator: str
    candidates: tuple[Candidate, ...]

    def __str__(self) -> str:
        return (f"Ranking(order={self.order.tolist()}, score {self.score:.4f} from {self.generator}; "
                f"{len(self.candidates)} candidates)")


@dataclass(frozen=True)
class BatchRanking:
    """Served lists of ``R`` requests: ``orders`` (R, K), ``scores`` (R,), ``generators`` (R,) names."""

    orders: np.ndarray
    scores: np.ndarray
    generators: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.orders)

    def shares(self) -> dict[str, float]:
        """Each generator's share of the served lists."""
        c = Counter(self.generators)
        return {g: c[g] / len(self.generators) for g in sorted(c)}


def _as_generator(g: Any) -> Any:
    if isinstance(g, str):
        if g not in GENERATORS:
            hint = " (ptrnet needs a trained PointerNet: pass PtrNetGenerator(net))" if g == "ptrnet" else ""
            raise SolverError(f"generator must be one of {', '.join(GENERATORS)} or a generator object; got {g!r}{hint}")
        return GENERATORS[g]()
    if not callable(getattr(g, "generate", None)) or not isinstance(getattr(g, "name", None), str):
        raise SolverError(f"a generator must have a name and a generate(evaluator, requests, k) method; got {type(g).__name__}")
    return g


class SequenceRetriever:
    """Serve, per request, the best of the lists that the generators propose, as judged by the evaluator.

    Parameters
    ----------
    evaluator : Evaluator
        Fitted.
    generators : sequence of names or generator objects, optional
        Default ``("greedy", "beam")``: the point-wise baseline and a beam search
        under the evaluator (its width set by a budget of scored lists: 4 for N 30, K 10),
        its best list polished by local search. Add a
        :class:`~mixrank.rerank.ptrnet.PtrNetGenerator` for a Pointer Network.
    weights : array (K,), optional
        Position weights of the score (default: expected clicks, all 1).
    """

    def __init__(self, evaluator: Any, generators: Sequence[Any] | None = None, weights: Any = None) -> None:
        evaluator._require_fit()
        self.evaluator = evaluator
        if generators is None:
            generators = ("greedy", "beam")
        if isinstance(generators, (str, bytes)) or not isinstance(generators, Sequence):
            raise SolverError(f"generators must be a sequence of names or generator objects; got {generators!r}")
        self.generators: tuple[Generator, ...] = tuple(_as_generator(g) for g in generators)
        names = [g.name for g in self.generators]
        if len(set(names)) != len(names):
            raise SolverError(f"generators must have distinct names; got {names}")
        self.weights = None if weights is None else np.asarray(weights, dtype=np.float32)
        if self.weights is not None and (self.weights.ndim != 1 or not np.isfinite(self.weights).all()):
            raise ProblemError(f"weights must be a finite (K,) array; got {weights!r}")

    def __repr__(self) -> str:
        return f"SequenceRetriever({self.evaluator!r}, generators={[g.name for g in self.generators]})"

    def _score_all(self, items: Any, k: int, context: Any, n_items: Any, extra: Any):
        ev = self.evaluator
        req = ev.requests(items, context, n_items)
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= ev.config.max_len:
            raise ProblemError(f"k must be an int in [1, {ev.config.max_len}] (the longest list the evaluator knows); got {k!r}")
        if k > req.n_items.min():
            raise ProblemError(f"k must be <= the candidates of every request (min n_items {req.n_items.min()}); got {k}")
        if self.weights is not None and len(self.weights) < k:
            raise ProblemError(f"weights must have at least k={k} entries; got {len(self.weights)}")
        blocks, labels = [], []
        with ev._threads(), torch.inference_mode():
            for g in self.generators:
                lists = np.asarray(g.generate(ev, req, int(k)), dtype=np.int64)
                blocks.append(lists)
                labels += [g.name] * lists.shape[1]
            if extra is not None:
                named = extra if isinstance(extra, Mapping) else {"extra": extra}
                for name, lists in named.items():
                    li = as_lists(lists, req, ev.config.max_len)
                    if li.shape[2] != k:
                        raise ProblemError(f"extra lists ({name}) must have k={k} positions; got {li.shape[2]}")
                    blocks.append(li)
                    labels += [str(name)] * li.shape[1]
            if not blocks:
                raise SolverError("no candidate lists: give generators or extra lists")
            lists = np.concatenate(blocks, axis=1)
            w = None if self.weights is None else torch.from_numpy(self.weights[:k])
            scores = list_scores_t(ev, req, torch.from_numpy(lists), None, w).numpy()
        return req, lists, scores, labels

    def rank(self, items: Any, k: int, context: Any = None, n_items: int | None = None,
             extra: Any = None) -> Ranking:
        """Serve one request.

        Parameters
        ----------
        items : array (N, F)
            Candidate features.
        k : int
            Length of the served list.
        context : array (C,), optional
            Required when the evaluator was trained with a context.
        n_items : int, optional
            Real candidates (rows past it are padding).
        extra : array (M, k) of ints, or a mapping name -> such array, optional
            More candidate lists to score (e.g. a mixing solver's pool as pages),
            labelled ``"extra"`` or by their names.

        Returns
        -------
        Ranking
        """
        if np.ndim(items) != 2:
            raise ProblemError(f"items must have shape (N, F) for one request (rank_many takes a batch); got {np.shape(items)}")
        _, lists, scores, labels = self._score_all(items, k, context, n_items, extra)
        s, li = scores[0], lists[0]
        idx = np.argsort(-s, kind="stable")
        cands = tuple(Candidate(li[i].copy(), float(s[i]), labels[i]) for i in idx)
        return Ranking(cands[0].order, cands[0].score, cands[0].generator, cands)

    def rank_many(self, items: Any, k: int, context: Any = None, n_items: Any = None, extra: Any = None,
                  batch_size: int = 64) -> BatchRanking:
        """Serve ``R`` requests (items (R, N, F), context (R, C)); ``extra`` as in :meth:`rank` with a leading R."""
        x = np.asarray(items)
        if x.ndim != 3:
            raise ProblemError(f"items must have shape (R, N, F); got {x.shape}")
        orders, best, gens = [], [], []
        for a in range(0, x.shape[0], batch_size):
            sl = slice(a, a + batch_size)
            ctx = None if context is None else np.asarray(context)[sl]
            m = None if n_items is None else np.asarray(n_items)[sl]
            ex = None
            if extra is not None:
                ex = {n: np.asarray(v)[sl] for n, v in extra.items()} if isinstance(extra, Mapping) else np.asarray(extra)[sl]
            _, lists, scores, labels = self._score_all(x[sl], k, ctx, m, ex)
            i = scores.argmax(axis=1)
            orders.append(lists[np.arange(len(i)), i])
            best.append(scores[np.arange(len(i)), i])
            gens += [labels[j] for j in i]
        return BatchRanking(np.concatenate(orders), np.concatenate(best), tuple(gens))
