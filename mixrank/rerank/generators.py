"""Generators: each proposes candidate ordered lists for a batch of requests.

A generator is any object with a ``name`` and
``generate(evaluator, requests, k) -> ndarray (R, M, k)`` (``M`` lists per
request, candidate indices in order). Built in:

* :class:`Greedy` — sort by the evaluator's point-wise model (trained on the same
  log); the baseline, one list.
* :class:`Beam` — beam search over positions: each step extends every kept
  prefix by every unused candidate, completes each extension with the best
  remaining candidates in point-wise order, scores all completed lists with the
  evaluator in one batch, and keeps the ``width`` best prefixes (by default as
  wide as a budget of about 1,200 scored lists per request allows). With a width at
  least the number of prefixes it scores every ordered list (exhaustive search).
  Then a local search polishes the best list: every swap of two positions and
  every replacement of one item by one of the 8 best unused candidates (point-wise
  order) is scored in one batch,
  and the best move is taken while it improves the score (``local_search``
  rounds at most).
* :class:`~mixrank.rerank.ptrnet.PtrNetGenerator` — a Pointer Network (see there).

Examples
--------
>>> from mixrank.synthetic.slates import SlateEnv, SlateConfig
>>> env = SlateEnv(SlateConfig(n_items=6, list_len=3))
>>> from mixrank.rerank.evaluator import Evaluator
>>> ev = Evaluator(dim=8, epochs=1, progress=False).fit(env.log(100, seed=0))
>>> req = ev.requests(env.sample(2, seed=1).items, env.sample(2, seed=1).context)
>>> Beam(width=3).generate(ev, req, 3).shape
(2, 3, 3)
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import torch

from mixrank.errors import ProblemError, SolverError
from mixrank.rerank._arrays import Requests

__all__ = ["Generator", "Greedy", "Beam", "list_scores_t", "polish"]


class Generator(Protocol):
    """What the retriever needs of a generator."""

    name: str

    def generate(self, evaluator: Any, requests: Requests, k: int) -> np.ndarray:
        """Candidate lists (R, M, k) for the checked ``requests``."""
        ...


def list_scores_t(evaluator: Any, req: Requests, lists: torch.Tensor, encoded: torch.Tensor | None = None,
                  weights: torch.Tensor | None = None) -> torch.Tensor:
    """Evaluator scores (R, L) of ``lists`` (R, L, K): summed (or ``weights``-weighted) click probabilities."""
    p = torch.sigmoid(evaluator.logits_t(req, lists, encoded))
    return (p if weights is None else p * weights).sum(dim=-1)


def _check_k(req: Requests, k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ProblemError(f"k must be an int >= 1; got {k!r}")
    if k > req.n_items.min():
        raise ProblemError(f"k must be <= the candidates of every request (min n_items {req.n_items.min()}); got {k}")
    return int(k)


def pointwise_order(evaluator: Any, req: Requests) -> torch.Tensor:
    """Candidates by descending point-wise appeal, padding last: (R, N) int64."""
    s = evaluator.pointwise.item_logits(torch.from_numpy(req.items), torch.from_numpy(req.context))
    s = torch.where(torch.arange(s.shape[1]) < torch.from_numpy(req.n_items)[:, None], s, torch.tensor(-torch.inf))
    return torch.argsort(s, dim=1, descending=True, stable=True)


class Greedy:
    """The baseline: the top ``k`` candidates by the point-wise model, best first (one list)."""

    name = "greedy"

    def generate(self, evaluator: Any, requests: Requests, k: int) -> np.ndarray:
        k = _check_k(requests, k)
        with torch.inference_mode():
            return pointwise_order(evaluator, requests)[:, None, :k].numpy()


def _completions(order: torch.Tensor, used: torch.Tensor, m: int) -> torch.Tensor:
    """For each beam b and next item j: the first ``m`` items of ``order`` not used by b and not j.

    order (R, N), used (R, B, N) bool → (R, B, N, m).
    """
    r, b, n = used.shape
    ar = torch.arange(n)
    avail = ~torch.gather(used, 2, order[:, None, :].expand(r, b, n))  # by rank
    key = torch.where(avail, ar, ar + n)
    first = torch.gather(order[:, None, :].expand(r, b, n), 2, torch.argsort(key, dim=2)[..., : m + 1])  # (R, B, m+1)
    hit = first[:, :, None, :] == ar[None, None, :, None]  # (R, B, N, m+1): j among them?
    drop = torch.where(hit.any(dim=3), hit.float().argmax(dim=3), torch.tensor(m))  # (R, B, N)
    pos = torch.arange(m)[None, None, None, :]
    pos = pos + (pos >= drop[..., None]).long()
    return torch.gather(first[:, :, None, :].expand(r, b, n, m + 1), 3, pos)


class Beam:
    """Beam search over positions; prefixes are completed in point-wise order and scored by the evaluator.

    Parameters
    ----------
    width : int >= 1, optional
        Prefixes kept per step; the final ``width`` lists are the candidates. By
        default it follows from ``budget``.
    budget : int >= 1
        With no ``width``: about this many lists scored per request, so the width is
        ``max(4, budget // (N * K))`` — 4 for N 30, K 10, and 30 for N 8, K 5, where a
        width of 4 found the evaluator's best list in 37 % of the requests and a
        width of 16 in 76 % (``bench/bench_rerank.py``'s world, before the local
        search); width 30 and the local search serve 98.6 % of the optimum's true
        clicks against 98.7 % for the evaluator's exhaustive pick, at a fifth of
        the exhaustive cost.
    complete : bool
        Complete each prefix with the best remaining candidates (point-wise order)
        before scoring (default); ``False`` scores the prefix alone.
    weights : array (K,), optional
        Position weights of the score (default: expected clicks).
    local_search : int >= 0
        Rounds of local search on the best final list (swap two positions, or
        replace one item by one of the 8 best unused candidates in point-wise
        order; the best improving move per round); the polished list replaces the
        beam's best. 0 turns it off.
    """

    name = "beam"

    def __init__(self, width: int | None = None, complete: bool = True, weights: Any = None, local_search: int = 2,
                 budget: int = 1200) -> None:
        if width is not None and (isinstance(width, bool) or not isinstance(width, (int, np.integer)) or width < 1):
            raise SolverError(f"width must be an int >= 1 or None; got {width!r}")
        if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 1:
            raise SolverError(f"budget must be an int >= 1; got {budget!r}")
        self.budget = int(budget)
        if isinstance(local_search, bool) or not isinstance(local_search, (int, np.integer)) or local_search < 0:
            raise SolverError(f"local_search must be an int >= 0; got {local_search!r}")
        self.width = None if width is None else int(width)
        self.complete, self.local_search = bool(complete), int(local_search)
        self.weights = None if weights is None else torch.as_tensor(np.asarray(weights, dtype=np.float32))

    def __repr__(self) -> str:
        width = f"{self.width}" if self.width is not None else f"None, budget={self.budget}"
        return f"Beam(width={width}, complete={self.complete}, local_search={self.local_search})"

    def width_for(self, n: int, k: int) -> int:
        """The beam's width for ``n`` candidates and lists of ``k``: ``width``, or ``max(4, budget // (n * k))``."""
        return self.width if self.width is not None else max(4, self.budget // max(n * k, 1))

    def generate(self, evaluator: Any, requests: Requests, k: int) -> np.ndarray:
        k = _check_k(requests, k)
        with torch.inference_mode():
            beams, scores = self._search(evaluator, requests, k)
            if self.local_search:
                beams = beams.clone()
                beams[:, 0] = polish(evaluator, requests, beams[:, 0], scores[:, 0], self.local_search, self.weights)
            return beams.numpy()

    def _search(self, ev: Any, req: Requests, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        r, n = req.items.shape[:2]
        width = self.width_for(int(req.n_items.max()), k)
        encoded = ev.encode_t(req)
        valid = torch.arange(n)[None, :] < torch.from_numpy(req.n_items)[:, None]
        order = pointwise_order(ev, req) if self.complete else None
        beams = torch.zeros((r, 1, 0), dtype=torch.long)
        alive = torch.ones((r, 1), dtype=torch.bool)
        scores = torch.zeros((r, 1))
        for t in range(k):
            b = beams.shape[1]
            used = torch.zeros((r, b, n), dtype=torch.bool)
            if t:
                used.scatter_(2, beams, True)
            allowed = ~used & valid[:, None, :] & alive[:, :, None]  # (R, B, N)
            ext = torch.cat([beams[:, :, None, :].expand(r, b, n, t), torch.arange(n).expand(r, b, n)[..., None]], dim=3)
            m = k - t - 1
            if self.complete and m:
                ext = torch.cat([ext, _completions(order, used, m)], dim=3)
            w = None if self.weights is None else self.weights[: ext.shape[3]]
            s = list_scores_t(ev, req, ext.reshape(r, b * n, -1), encoded, w)  # (R, B*N)
            s = torch.where(allowed.reshape(r, b * n), s, torch.tensor(-torch.inf))
            keep = min(width, b * n)
            top_s, top_i = torch.topk(s, keep, dim=1)
            alive = torch.isfinite(top_s)
            beams = torch.gather(ext[..., : t + 1].reshape(r, b * n, t + 1), 1, top_i[..., None].expand(-1, -1, t + 1))
            scores = top_s
        # dead beams (fewer prefixes than the width) repeat the best list
        beams = torch.where(alive[..., None], beams, beams[:, :1])
        return beams, scores


def _swaps(k: int) -> torch.Tensor:
    """(k(k-1)/2, k): the position permutations that swap two positions of a list of ``k``."""
    out = []
    for i in range(k):
        for j in range(i + 1, k):
            p = torch.arange(k)
            p[i], p[j] = j, i
            out.append(p)
    return torch.stack(out) if out else torch.zeros((0, k), dtype=torch.long)


def polish(evaluator: Any, req: Requests, lists: torch.Tensor, scores: torch.Tensor, rounds: int,
           weights: torch.Tensor | None = None, replacements: int = 8) -> torch.Tensor:
    """Local search from ``lists`` (R, K) with evaluator ``scores`` (R,): best-improvement swaps and replacements.

    The neighbours of a list: every swap of two positions, and every replacement of
    one position by one of the ``replacements`` best unused candidates in point-wise
    order (all unused ones when fewer). Each round scores every neighbour of every
    request in one batch and moves to the best one if it beats the current score;
    stops early when no request improves. Returns the polished lists (R, K).
    """
    r, k = lists.shape
    n = req.items.shape[1]
    m = max(0, min(replacements, n - k))
    swaps = _swaps(k)
    encoded = evaluator.encode_t(req)
    valid = torch.arange(n)[None, :] < torch.from_numpy(req.n_items)[:, None]  # (R, N)
    order = pointwise_order(evaluator, req)  # (R, N), padding last
    ranks = torch.arange(n)
    w = None if weights is None else weights[:k]
    cur, best = lists.clone(), scores.clone()
    for _ in range(rounds):
        swapped = cur[:, swaps]  # (R, S, K)
        used = torch.zeros((r, n), dtype=torch.bool).scatter_(1, cur, True)
        avail = ~used.gather(1, order) & valid.gather(1, order)  # by point-wise rank
        first = torch.argsort(torch.where(avail, ranks, ranks + n), dim=1)[:, :m]  # ranks of the m best unused
        new = order.gather(1, first)  # (R, m) candidates
        new_ok = avail.gather(1, first)  # False where a request has fewer than m unused
        replaced = cur[:, None, None, :].repeat(1, k, m, 1)  # (R, K positions, m candidates, K)
        replaced[:, torch.arange(k), :, torch.arange(k)] = new[None].expand(k, r, m)
        nb = torch.cat([swapped, replaced.reshape(r, k * m, k)], dim=1)
        ok = torch.cat([torch.ones((r, len(swaps)), dtype=torch.bool), new_ok[:, None, :].expand(r, k, m).reshape(r, k * m)], 1)
        s = list_scores_t(evaluator, req, nb, encoded, w)
        s = torch.where(ok, s, torch.tensor(-torch.inf))
        top, arg = s.max(dim=1)
        better = top > best + 1e-7
        if not bool(better.any()):
            break
        cur = torch.where(better[:, None], nb[torch.arange(r), arg], cur)
        best = torch.where(better, top, best)
    return cur
