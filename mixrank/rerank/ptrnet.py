"""A Pointer Network that chooses ``K`` of ``N`` candidates in order, trained by REINFORCE against the evaluator.

The network (:class:`PointerNet`) encodes each candidate with the request's
context (``MLP([item, context])``) and one self-attention layer over the
candidate set (no positions: a set), then decodes a list: a GRU cell carries
the state, fed the encoding of the item chosen last; at each step the logits
over candidates are ``clip * tanh(<key_j, query(h)> / sqrt(d))``, with chosen
items and padding (past ``n_items``) masked out. So
``P(list) = prod_t softmax(logits_t)[list_t]`` is a proper distribution over
ordered lists of distinct real candidates (tested by enumeration).

Decoding (batched over requests): ``greedy`` (argmax per step), ``sample``
(``n`` lists per request), ``beam`` (the ``width`` most probable lists).

:func:`train_ptrnet` samples lists for batches of logged requests, rewards each
with the evaluator's score and follows the policy gradient with a baseline:
the mean reward of the request's samples (``"mean"``) or a learned value head
(``"learned"``). It can first be warm-started on the logged lists, each
weighted by its clicks.

Examples
--------
>>> import torch
>>> net = PointerNet(n_features=3, context_dim=0, dim=8)
>>> items = torch.randn(2, 5, 3)
>>> lists, logp = net.decode(items, None, None, k=3, mode="sample", n=4)
>>> lists.shape, logp.shape
(torch.Size([2, 4, 3]), torch.Size([2, 4]))
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from mixrank.errors import ProblemError, SolverError
from mixrank.listlog import ListLog
from mixrank.rerank._arrays import Requests
from mixrank.rerank.evaluator import ItemEncoder, _check_int, _check_pos
from mixrank.rerank.generators import _check_k, list_scores_t

__all__ = ["PointerNet", "PtrNetGenerator", "PtrNetResult", "train_ptrnet"]


class PointerNet(nn.Module):
    """Choose ``k`` of ``N`` candidates in order (see the module docstring).

    Parameters
    ----------
    n_features, context_dim : int
        F and C of the requests.
    dim, heads : int
        Width and attention heads.
    clip : float
        Logits are ``clip * tanh(.)``: bounded, so the policy keeps exploring.
    """

    def __init__(self, n_features: int, context_dim: int = 0, dim: int = 32, heads: int = 4, clip: float = 10.0) -> None:
        super().__init__()
        self.n_features, self.context_dim, self.dim, self.clip = int(n_features), int(context_dim), int(dim), float(clip)
        self.encoder = ItemEncoder(self.n_features, self.context_dim, dim)
        self.set_layer = nn.TransformerEncoderLayer(dim, heads, 2 * dim, dropout=0.0, batch_first=True, norm_first=True)
        self.init = nn.Linear(dim, dim)
        self.start = nn.Parameter(torch.zeros(dim))
        self.cell = nn.GRUCell(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.query = nn.Linear(dim, dim)
        self.value = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, 1))  # the learned baseline

    @classmethod
    def for_evaluator(cls, evaluator: Any, **kw: Any) -> PointerNet:
        """A network sized for the requests the fitted ``evaluator`` knows."""
        cfg = evaluator._require_fit()
        return cls(cfg.n_features, cfg.context_dim, **kw)

    # ------------------------------------------------------------ pieces
    def encode(self, items: torch.Tensor, context: torch.Tensor | None, n_items: torch.Tensor | None):
        """items (R, N, F), context (R, C), n_items (R,) → (encodings (R, N, d), keys (R, N, d), h0 (R, d), pad (R, N) bool)."""
        r, n, _ = items.shape
        if context is None:
            context = items.new_zeros((r, 0))
        pad = torch.zeros((r, n), dtype=torch.bool) if n_items is None else torch.arange(n)[None, :] >= n_items[:, None]
        enc = self.set_layer(self.encoder(items, context)[0], src_key_padding_mask=pad if pad.any() else None)
        real = (~pad).float()[..., None]
        pooled = (enc * real).sum(1) / real.sum(1)
        return enc, self.key(enc), torch.tanh(self.init(pooled)), pad

    def _logits(self, keys: torch.Tensor, h: torch.Tensor, banned: torch.Tensor) -> torch.Tensor:
        q = self.query(h)
        raw = torch.einsum("rnd,rd->rn", keys, q) / math.sqrt(self.dim)
        return (self.clip * torch.tanh(raw)).masked_fill(banned, -torch.inf)

    @staticmethod
    def _rep(x: torch.Tensor, m: int) -> torch.Tensor:
        return x.repeat_interleave(m, dim=0)

    # ------------------------------------------------------------ likelihood
    def log_prob(self, items: torch.Tensor, context: torch.Tensor | None, n_items: torch.Tensor | None,
                 lists: torch.Tensor) -> torch.Tensor:
        """Log-probability (R, L) of the given lists (R, L, k) under the network (teacher forcing)."""
        r, n_lists, k = lists.shape
        enc, keys, h, pad = self.encode(items, context, n_items)
        enc, keys, h, banned = (self._rep(x, n_lists) for x in (enc, keys, h, pad))
        flat = lists.reshape(r * n_lists, k)
        x = self.start.expand(r * n_lists, -1)
        total = torch.zeros(r * n_lists)
        for t in range(k):
            h = self.cell(x, h)
            logp = torch.log_softmax(self._logits(keys, h, banned), dim=1)
            pick = flat[:, t]
            total = total + logp.gather(1, pick[:, None])[:, 0]
            banned = banned.scatter(1, pick[:, None], True)
            x = enc.gather(1, pick[:, None, None].expand(-1, 1, enc.shape[2]))[:, 0]
        return total.reshape(r, n_lists)

    # ------------------------------------------------------------ decoding
    def decode(self, items: torch.Tensor, context: torch.Tensor | None, n_items: torch.Tensor | None, k: int,
               mode: str = "greedy", n: int = 1, width: int = 4,
               generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Lists (R, M, k) and their log-probabilities (R, M).

        ``mode``: ``greedy`` (M = 1), ``sample`` (M = ``n``), ``beam`` (M = ``width``).
        Gradients flow through the log-probabilities unless run under ``torch.no_grad``.
        """
        if mode not in ("greedy", "sample", "beam"):
            raise SolverError(f"mode must be 'greedy', 'sample' or 'beam'; got {mode!r}")
        enc, keys, h, pad = self.encode(items, context, n_items)
        if mode == "beam":
            return self._beam(enc, keys, h, pad, k, width)
        m = n if mode == "sample" else 1
        r = items.shape[0]
        enc, keys, h, banned = (self._rep(x, m) for x in (enc, keys, h, pad))
        x = self.start.expand(r * m, -1)
        picks, total = [], torch.zeros(r * m)
        for _ in range(k):
            h = self.cell(x, h)
            logp = torch.log_softmax(self._logits(keys, h, banned), dim=1)
            if mode == "sample":
                pick = torch.multinomial(logp.detach().exp(), 1, generator=generator)[:, 0]
            else:
                pick = logp.detach().argmax(dim=1)
            total = total + logp.gather(1, pick[:, None])[:, 0]
            banned = banned.scatter(1, pick[:, None], True)
            x = enc.gather(1, pick[:, None, None].expand(-1, 1, enc.shape[2]))[:, 0]
            picks.append(pick)
        return torch.stack(picks, dim=1).reshape(r, m, k), total.reshape(r, m)

    def _beam(self, enc, keys, h, pad, k: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
        r, n, d = enc.shape
        lists = torch.zeros((r, 1, 0), dtype=torch.long)
        score = torch.zeros((r, 1))
        hb, banned = h[:, None], pad[:, None]
        x = self.start.expand(r, 1, d)
        for t in range(k):
            b = lists.shape[1]
            hn = self.cell(x.reshape(r * b, d), hb.reshape(r * b, d))
            logp = torch.log_softmax(self._logits(self._rep(keys, b), hn, banned.reshape(r * b, n)), dim=1)
            cand = (score[..., None] + logp.reshape(r, b, n)).reshape(r, b * n)
            keep = min(width, b * n)
            score, idx = torch.topk(cand, keep, dim=1)
            src, pick = idx // n, idx % n
            lists = torch.cat([torch.gather(lists, 1, src[..., None].expand(-1, -1, t)), pick[..., None]], dim=2)
            hb = torch.gather(hn.reshape(r, b, d), 1, src[..., None].expand(-1, -1, d))
            banned = torch.gather(banned, 1, src[..., None].expand(-1, -1, n)).scatter(2, pick[..., None], True)
            x = torch.gather(enc, 1, pick[..., None].expand(-1, -1, d))
        # fewer than width lists exist: repeat the best one
        ok = torch.isfinite(score)
        return torch.where(ok[..., None], lists, lists[:, :1]), torch.where(ok, score, score[:, :1])


class PtrNetGenerator:
    """A retriever generator from a trained :class:`PointerNet`.

    Parameters
    ----------
    net : PointerNet
    mode : {'greedy', 'sample', 'beam'}
    n : int
        Lists sampled per request (``sample``).
    width : int
        Beam width (``beam``).
    seed : int
        Seeds sampling.
    """

    name = "ptrnet"

    def __init__(self, net: PointerNet, mode: str = "beam", n: int = 8, width: int = 4, seed: int = 0) -> None:
        if not isinstance(net, PointerNet):
            raise SolverError(f"net must be a PointerNet; got {type(net).__name__}")
        if mode not in ("greedy", "sample", "beam"):
            raise SolverError(f"mode must be 'greedy', 'sample' or 'beam'; got {mode!r}")
        self.net, self.mode = net, mode
        self.n, self.width, self.seed = _check_int("n", n, 1), _check_int("width", width, 1), _check_int("seed", seed, 0)

    def generate(self, evaluator: Any, requests: Requests, k: int) -> np.ndarray:
        k = _check_k(requests, k)
        if requests.items.shape[2] != self.net.n_features or requests.context.shape[1] != self.net.context_dim:
            raise ProblemError(f"requests must have F={self.net.n_features}, C={self.net.context_dim} (as the PointerNet); "
                               f"got F={requests.items.shape[2]}, C={requests.context.shape[1]}")
        self.net.eval()
        gen = torch.Generator().manual_seed(self.seed)
        with torch.inference_mode():
            lists, _ = self.net.decode(torch.from_numpy(requests.items), torch.from_numpy(requests.context),
                                       torch.from_numpy(requests.n_items), k, self.mode, self.n, self.width, gen)
        return lists.numpy()


@dataclass(frozen=True)
class PtrNetResult:
    """What :func:`train_ptrnet` did: per-step history (mean reward, loss), warm-start losses, wall time."""

    history: tuple[dict[str, float], ...]
    warm_losses: tuple[float, ...]
    wall_time: float

    def __str__(self) -> str:
        first = np.mean([h["reward"] for h in self.history[:10]]) if self.history else float("nan")
        last = np.mean([h["reward"] for h in self.history[-10:]]) if self.history else float("nan")
        return f"PtrNetResult({len(self.history)} steps, reward {first:.4f} -> {last:.4f}, {self.wall_time:.1f} s)"


def train_ptrnet(net: PointerNet, evaluator: Any, log: ListLog, k: int | None = None, steps: int = 300,
                 batch_size: int = 32, n_samples: int = 16, baseline: str = "mean", lr: float = 2e-3,
                 warm_start: bool = False, warm_epochs: int = 1, seed: int = 0, progress: bool = True) -> PtrNetResult:
    """Train ``net`` by REINFORCE on the requests of ``log``, rewarded by ``evaluator`` (in place).

    Parameters
    ----------
    net : PointerNet
    evaluator : Evaluator
        Fitted; its score of a sampled list is the reward.
    log : ListLog
        Supplies the requests (candidates, context); with ``warm_start`` also the
        logged lists, imitated in proportion to their clicks.
    k : int, optional
        List length (default: the log's).
    steps, batch_size, n_samples : int
        Policy-gradient steps; requests per step; lists sampled per request.
    baseline : {'mean', 'learned'}
        The mean reward of each request's samples, or a learned value head.
    lr : float
        Adam's rate.
    warm_start : bool
        First maximise the click-weighted likelihood of the logged lists for ``warm_epochs`` passes.
    seed : int
    progress : bool

    Returns
    -------
    PtrNetResult
    """
    from tqdm.auto import tqdm

    if not isinstance(net, PointerNet):
        raise SolverError(f"net must be a PointerNet; got {type(net).__name__}")
    if not isinstance(log, ListLog):
        raise ProblemError(f"log must be a ListLog; got {type(log).__name__}")
    if baseline not in ("mean", "learned"):
        raise SolverError(f"baseline must be 'mean' or 'learned'; got {baseline!r}")
    evaluator._require_fit()
    if log.n_features != net.n_features or log.context_dim != net.context_dim:
        raise ProblemError(f"log must have F={net.n_features}, C={net.context_dim} (as the PointerNet); "
                           f"got F={log.n_features}, C={log.context_dim}")
    k = log.list_len if k is None else _check_int("k", k, 1)
    if k > log.n_items.min():
        raise ProblemError(f"k must be <= every request's n_items (min {log.n_items.min()}); got {k}")
    steps, batch_size = _check_int("steps", steps, 0), _check_int("batch_size", batch_size, 1)
    n_samples = _check_int("n_samples", n_samples, 2 if baseline == "mean" else 1)
    lr = _check_pos("lr", lr)
    start = time.perf_counter()
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng([0x9712, seed])
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    ctx_all = log.context if log.context is not None else np.zeros((len(log), 0), np.float32)

    def batch(idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return torch.from_numpy(log.items[idx]), torch.from_numpy(ctx_all[idx]), torch.from_numpy(log.n_items[idx])

    warm: list[float] = []
    net.train()
    if warm_start:
        clicked = np.flatnonzero(log.clicks.sum(axis=1) > 0)
        for _ in range(_check_int("warm_epochs", warm_epochs, 1)):
            order = rng.permutation(clicked)
            for a in tqdm(range(0, len(order), batch_size * 4), desc="ptrnet warm start", disable=not progress, leave=False):
                idx = np.sort(order[a:a + batch_size * 4])
                x, c, m = batch(idx)
                lists = torch.from_numpy(log.shown[idx, :k])[:, None]
                w = torch.from_numpy(log.clicks[idx, :k].sum(axis=1).astype(np.float32))
                loss = -(net.log_prob(x, c, m, lists)[:, 0] * w).sum() / w.sum()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                warm.append(float(loss.detach()))
    history: list[dict[str, float]] = []
    bar = tqdm(range(steps), desc="ptrnet REINFORCE", disable=not progress, leave=False)
    for step in bar:
        idx = np.sort(rng.choice(len(log), size=min(batch_size, len(log)), replace=False))
        x, c, m = batch(idx)
        lists, logp = net.decode(x, c, m, k, "sample", n_samples, generator=gen)
        req = Requests(log.items[idx], ctx_all[idx], log.n_items[idx], False)
        with torch.no_grad():
            reward = list_scores_t(evaluator, req, lists)  # (B, S)
        if baseline == "mean":
            base = reward.mean(dim=1, keepdim=True)
            value_loss = torch.zeros(())
        else:
            _, _, h0, _ = net.encode(x, c, m)
            v = net.value(h0)  # (B, 1)
            base = v.detach()
            value_loss = ((v - reward.mean(dim=1, keepdim=True)) ** 2).mean()
        adv = reward - base
        adv = adv / (adv.std() + 1e-6)
        loss = -(adv * logp).mean() + value_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        history.append({"step": step, "reward": float(reward.mean()), "loss": float(loss.detach())})
        if progress and step % 10 == 0:
            bar.set_postfix(reward=f"{history[-1]['reward']:.4f}")
    bar.close()
    net.eval()
    return PtrNetResult(tuple(history), tuple(warm), time.perf_counter() - start)
