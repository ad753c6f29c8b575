"""The list-wise evaluator: a learned simulator of the user that scores whole ordered lists.

:class:`Evaluator` holds two small PyTorch models trained on one :class:`ListLog`:

* the **list model** (:class:`ListModel`) — each item of a list is encoded with
  the request's context (``MLP([item features, context])``); every position
  sees its neighbours on both sides through learned bilinear pair features
  (per offset, and over all pairs weighted by distance), a summary of the list
  and its position (optionally also Transformer layers); a small MLP gives each
  position's click logit. It predicts the
  probability that the item at each position is clicked, reaching included, so
  a list's score is the sum over positions (expected clicks) or a weighted sum;
* the **point-wise model** (:class:`PointwiseModel`) — ``MLP([item, context])``
  plus a learned bias per position; its item logits order the candidates for the
  greedy baseline and for completing prefixes in beam search.

Training minimises binary cross-entropy on the logged clicks, with a held-out
validation split, early stopping on its loss (best weights kept), Adam with the
rate halved on a plateau, seeded, with a tqdm progress bar. Checkpoints
(:meth:`Evaluator.save` / :meth:`Evaluator.load`) are written atomically and
carry a format, a version and a SHA-256 digest of the weights.

Examples
--------
>>> from mixrank.synthetic.slates import SlateEnv, SlateConfig
>>> env = SlateEnv(SlateConfig(n_items=6, list_len=3))
>>> ev = Evaluator(dim=8, epochs=2, progress=False).fit(env.log(200, seed=0))
>>> b = env.sample(1, seed=5)
>>> ev.predict(b.items[0], [[0, 1, 2], [2, 1, 0]], context=b.context[0]).shape
(2, 3)
>>> ev.score(b.items[0], [[0, 1, 2], [2, 1, 0]], context=b.context[0]).shape
(2,)
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from mixrank._io import atomic_write
from mixrank.errors import CheckpointError, ProblemError, SolverError
from mixrank.listlog import ListLog
from mixrank.rerank._arrays import Requests, as_lists, as_requests

__all__ = ["Evaluator", "EvaluatorConfig", "FitResult", "ListModel", "PointwiseModel"]

CHECKPOINT_FORMAT = "mixrank.rerank.evaluator"
CHECKPOINT_VERSION = 3  #: 2: the item encoder has item-context interactions (version 1 files do not fit); 3: config.context_mlp
CHECKPOINT_MIN_VERSION = 2


@dataclass(frozen=True)
class EvaluatorConfig:
    """Sizes of the evaluator's models (fixed at :meth:`Evaluator.fit` from the log and the settings)."""

    n_features: int
    context_dim: int
    max_len: int  #: the longest list (positions) the model knows
    dim: int = 32
    heads: int = 4
    layers: int = 0
    mixer: str = "gru"  #: what runs over the list when ``layers > 0``: 'gru' (bidirectional) or 'transformer'
    neighbours: int = 3  #: explicit pairwise features with items up to this far away
    pair_heads: int = 4
    members: int = 1  #: list models trained from different seeds whose logits are averaged
    context_mlp: bool = True  #: the item MLP also sees the context (see :class:`ItemEncoder`)

    def __post_init__(self) -> None:
        for name in ("n_features", "max_len", "dim", "heads", "neighbours", "pair_heads", "members"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise SolverError(f"EvaluatorConfig.{name} must be an int >= 1; got {v!r}")
        if self.mixer not in ("gru", "transformer"):
            raise SolverError(f"EvaluatorConfig.mixer must be 'gru' or 'transformer'; got {self.mixer!r}")
        if self.mixer == "gru" and self.dim % 2:
            raise SolverError(f"dim must be even for the bidirectional GRU; got {self.dim}")
        if isinstance(self.layers, bool) or not isinstance(self.layers, int) or self.layers < 0:
            raise SolverError(f"EvaluatorConfig.layers must be an int >= 0; got {self.layers!r}")
        if isinstance(self.context_dim, bool) or not isinstance(self.context_dim, int) or self.context_dim < 0:
            raise SolverError(f"EvaluatorConfig.context_dim must be an int >= 0; got {self.context_dim!r}")
        if self.dim % self.heads:
            raise SolverError(f"dim must be a multiple of heads ({self.heads}); got {self.dim}")


class ItemEncoder(nn.Module):
    """Each candidate seen by this request's user: encodings and a bilinear appeal.

    The element-wise products of a low-rank item embedding ``U item`` and a user
    embedding ``V context`` are item–context interactions (a user's taste for an
    item's category, or for an item known only by a one-hot ID); their sum is the
    bilinear appeal term (zero when there is no context). The encodings are
    ``MLP([item, context, interactions])`` (any item–context function), or with
    ``context_mlp=False`` ``MLP(item)``, so that the context reaches the logit only
    through the bilinear term (a lower-variance form).
    """

    def __init__(self, n_features: int, context_dim: int, dim: int, context_mlp: bool = True) -> None:
        super().__init__()
        self.rank = dim if context_dim else 0
        self.context_mlp = context_mlp
        self.item_emb = nn.Linear(n_features, self.rank, bias=False)
        self.user_emb = nn.Linear(context_dim, self.rank)
        n_in = n_features + (context_dim + self.rank if context_mlp else 0)
        self.net = nn.Sequential(nn.Linear(n_in, 2 * dim), nn.ReLU(), nn.Linear(2 * dim, dim))

    def forward(self, items: torch.Tensor, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """items (R, N, F), context (R, C) → encodings (R, N, dim) and bilinear appeal (R, N)."""
        inter = self.item_emb(items) * self.user_emb(context)[:, None, :]
        bilinear = inter.sum(-1) / math.sqrt(max(self.rank, 1))
        if not self.context_mlp:
            return self.net(items), bilinear
        ctx = context[:, None, :].expand(-1, items.shape[1], -1)
        return self.net(torch.cat([items, ctx, inter], dim=2)), bilinear


class ListModel(nn.Module):
    """Click logit of every position of ordered lists (see the module docstring).

    For the items of a list, ``e_s`` encoded with the context and ``x_s`` raw:

    * the point-wise part: the item's appeal ``a(e_s)``, a bias per position and an
      item-specific position effect ``<P e_s, position_s>`` (low rank);
    * pair scores ``S[h, s, t] = <Q_h x_s, K_h x_t>`` of the raw item features
      (``pair_heads`` low-rank bilinear forms);
    * near-neighbour features: ``S[h, s, s + d]`` for ``d = +-1 .. +-neighbours``
      (zero past the ends), one per head and offset;
    * an all-pairs feature per head: ``sum_t w_h(t - s) * S[h, s, t]`` with a learned
      weight per relative offset, so a pair's effect may depend on its distance;
    * optionally ``layers`` of a bidirectional GRU or a Transformer over the list
      (0 by default: the features above are cheaper at serving time, learn pair
      effects directly and overfit less).

    The logit is the point-wise part plus a list correction, a small MLP on the
    pair features (and the sequence model's output, when there is one) whose
    output layer starts at zero: the model starts as a point-wise model and learns
    list effects as far as the log supports them. The correction does not see the
    context encodings, which keeps it from memorising requests.
    """

    def __init__(self, config: EvaluatorConfig) -> None:
        super().__init__()
        d, h = config.dim, config.pair_heads
        self.max_len = config.max_len
        self.offsets = [o for o in range(-config.neighbours, config.neighbours + 1) if o]
        self.pair_heads, self.pair_dim = h, max(4, d // 2)
        self.encoder = ItemEncoder(config.n_features, config.context_dim, d, config.context_mlp)
        self.position = nn.Embedding(config.max_len, 8)
        self.position_proj = nn.Linear(d, 8, bias=False)
        self.mixer: nn.Module | None = None
        if config.layers and config.mixer == "gru":
            self.mixer = nn.GRU(d, d // 2, num_layers=config.layers, batch_first=True, bidirectional=True)
        elif config.layers:
            layer = nn.TransformerEncoderLayer(d, config.heads, 2 * d, dropout=0.0, batch_first=True, norm_first=True)
            self.mixer = nn.TransformerEncoder(layer, config.layers, enable_nested_tensor=False)
        self.mixer_in = nn.Linear(8, d) if self.mixer is not None else None
        self.dim = d
        # pair scores are low-rank bilinear forms of the raw item features (not of the context)
        self.pair_q = nn.Linear(config.n_features, h * self.pair_dim, bias=False)
        self.pair_k = nn.Linear(config.n_features, h * self.pair_dim, bias=False)
        self.relative = nn.Parameter(torch.zeros(h, 2 * config.max_len - 1))
        self.item = nn.Linear(d, 1)  # the point-wise part: item appeal ...
        self.position_bias = nn.Parameter(torch.zeros(config.max_len))  # ... plus a bias per position
        n_in = h * (len(self.offsets) + 1) + (d if self.mixer is not None else 0)
        self.head = nn.Sequential(nn.Linear(n_in, 2 * d), nn.ReLU(), nn.Linear(2 * d, 1))
        nn.init.zeros_(self.head[2].weight)  # the list part starts at zero: a point-wise model until data says more
        nn.init.zeros_(self.head[2].bias)

    def _relative_weights(self, k: int) -> torch.Tensor:
        """(H, K, K): the learned weight of the offset t - s, zero on the diagonal."""
        idx = torch.arange(k)[None, :] - torch.arange(k)[:, None] + self.max_len - 1
        return self.relative[:, idx] * (1.0 - torch.eye(k))

    def encode(self, items: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """items (R, N, F), context (R, C) → (R, N, dim + 1 + 2 pair_heads pair_dim): encodings, bilinear appeal, pair queries and keys."""
        x, bilinear = self.encoder(items, context)
        return torch.cat([x, bilinear[..., None], self.pair_q(items), self.pair_k(items)], dim=2)

    def pair_features(self, q: torch.Tensor, kk: torch.Tensor) -> torch.Tensor:
        """Pair queries and keys (B, K, pair_heads * pair_dim) → (B, K, pair_heads * (offsets + 1)) pair features."""
        b, k, _ = q.shape
        q = q.reshape(b, k, self.pair_heads, -1)
        kk = kk.reshape(b, k, self.pair_heads, -1)
        scores = torch.einsum("bshe,bthe->bhst", q, kk) / math.sqrt(self.pair_dim)  # (B, H, K, K)
        feats = []
        for o in self.offsets:
            if abs(o) >= k:
                feats.append(q.new_zeros((b, self.pair_heads, k)))
                continue
            diag = torch.diagonal(scores, offset=o, dim1=2, dim2=3)  # (B, H, K - |o|): pairs (s, s + o)
            feats.append(F.pad(diag, (0, o) if o > 0 else (-o, 0)))
        feats.append(torch.einsum("bhst,hst->bhs", scores, self._relative_weights(k)))
        return torch.cat(feats, dim=1).transpose(1, 2)

    def forward(self, encoded: torch.Tensor, lists: torch.Tensor) -> torch.Tensor:
        """encoded (R, N, ...) from :meth:`encode`, lists (R, L, K) int → logits (R, L, K)."""
        r, n_lists, k = lists.shape
        gathered = torch.gather(encoded, 1, lists.reshape(r, n_lists * k, 1).expand(-1, -1, encoded.shape[2]))
        gathered = gathered.reshape(r * n_lists, k, -1)
        d, hp = self.dim, self.pair_heads * self.pair_dim
        x, bilinear = gathered[..., :d], gathered[..., d]
        q, kk = gathered[..., d + 1:d + 1 + hp], gathered[..., d + 1 + hp:]
        pos = self.position.weight[:k]
        pointwise = (self.item(torch.relu(x))[..., 0] + bilinear + self.position_bias[:k]
                     + (self.position_proj(x) * pos).sum(-1))
        parts = [self.pair_features(q, kk)]
        if isinstance(self.mixer, nn.GRU):
            parts.append(self.mixer(x + self.mixer_in(pos))[0])
        elif self.mixer is not None:
            parts.append(self.mixer(x + self.mixer_in(pos)))
        correction = self.head(torch.cat(parts, dim=2))[..., 0]
        return (pointwise + correction).reshape(r, n_lists, k)


class PointwiseModel(nn.Module):
    """Item logit ``MLP([item, context])`` plus a position bias; the greedy baseline's scorer."""

    def __init__(self, config: EvaluatorConfig) -> None:
        super().__init__()
        self.encoder = ItemEncoder(config.n_features, config.context_dim, config.dim, config.context_mlp)
        self.out = nn.Linear(config.dim, 1)
        self.position = nn.Parameter(torch.zeros(config.max_len))

    def item_logits(self, items: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """(R, N, F), (R, C) → (R, N): the position-free appeal of each candidate."""
        x, bilinear = self.encoder(items, context)
        return self.out(torch.relu(x))[..., 0] + bilinear

    def forward(self, items: torch.Tensor, context: torch.Tensor, lists: torch.Tensor) -> torch.Tensor:
        """Logits (R, L, K) of the items of ``lists`` (R, L, K) at their positions."""
        r, n_lists, k = lists.shape
        logit = torch.gather(self.item_logits(items, context), 1, lists.reshape(r, -1)).reshape(r, n_lists, k)
        return logit + self.position[:k]


@dataclass(frozen=True)
class FitResult:
    """What one model's training did: per-epoch history, the epoch kept, its validation loss."""

    history: tuple[dict[str, float], ...]
    best_epoch: int
    best_val_loss: float
    stopped_early: bool
    wall_time: float

    def __str__(self) -> str:
        stop = ", stopped early" if self.stopped_early else ""
        return (f"FitResult({len(self.history)} epochs{stop}, best epoch {self.best_epoch}: "
                f"val loss {self.best_val_loss:.5f}, {self.wall_time:.1f} s)")


def _check_int(name: str, v: Any, low: int) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
        raise SolverError(f"{name} must be an int >= {low}; got {v!r}")
    return int(v)


def _check_pos(name: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
        raise SolverError(f"{name} must be a finite number > 0; got {v!r}")
    return float(v)


def _tensors(log: ListLog, idx: np.ndarray) -> tuple[torch.Tensor, ...]:
    ctx = log.context[idx] if log.context is not None else np.zeros((len(idx), 0), np.float32)
    return (torch.from_numpy(log.items[idx]), torch.from_numpy(ctx),
            torch.from_numpy(log.shown[idx])[:, None, :], torch.from_numpy(log.clicks[idx].astype(np.float32))[:, None])


def _fit_model(model: nn.Module, logits_fn: Any, train: ListLog, val: ListLog, settings: dict[str, Any],
               desc: str) -> FitResult:
    """Mini-batch BCE on the logged clicks; validation, early stopping, best weights kept."""
    from tqdm.auto import tqdm

    start = time.perf_counter()
    rng = np.random.default_rng([0x5E7, settings["seed"]])
    opt = torch.optim.Adam(model.parameters(), lr=settings["lr"], weight_decay=settings["weight_decay"])
    bs = settings["batch_size"]
    history: list[dict[str, float]] = []
    best, best_epoch, best_state, bad, stopped = math.inf, 0, None, 0, False
    # Polyak averaging: validation and the kept weights use an exponential moving average of the
    # weights over steps, which damps the noise that single-step weights pick up from 0/1 clicks
    params = list(model.parameters())
    ema = [p.detach().clone() for p in params] if settings["ema"] > 0 else None
    raw: list[torch.Tensor] = []  # the raw weights while the averaged ones are loaded for validation
    bar = tqdm(range(1, settings["epochs"] + 1), desc=desc, disable=not settings["progress"], leave=False)
    for epoch in bar:
        model.train()
        if raw:  # continue training from the raw weights
            with torch.no_grad():
                for p, r in zip(params, raw):
                    p.copy_(r)
        order = rng.permutation(len(train))
        total = 0.0
        for a in range(0, len(train), bs):
            items, ctx, lists, clicks = _tensors(train, np.sort(order[a:a + bs]))
            loss = F.binary_cross_entropy_with_logits(logits_fn(items, ctx, lists), clicks)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if ema is not None:
                with torch.no_grad():
                    torch._foreach_lerp_(ema, [p.detach() for p in params], 1.0 - settings["ema"])
            total += float(loss.detach()) * len(items)
        if ema is not None:  # validate (and keep) the averaged weights
            with torch.no_grad():
                raw = [p.detach().clone() for p in params]
                for p, e in zip(params, ema):
                    p.copy_(e)
        model.eval()
        with torch.inference_mode():
            vl = 0.0
            for a in range(0, len(val), 4 * bs):
                items, ctx, lists, clicks = _tensors(val, np.arange(a, min(a + 4 * bs, len(val))))
                vl += float(F.binary_cross_entropy_with_logits(logits_fn(items, ctx, lists), clicks)) * len(items)
            vl /= len(val)
        history.append({"epoch": epoch, "train_loss": total / len(train), "val_loss": vl, "lr": opt.param_groups[0]["lr"]})
        bar.set_postfix(train=f"{total / len(train):.4f}", val=f"{vl:.4f}")
        if vl < best - 1e-5:
            best, best_epoch, bad = vl, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            bad += 1
            if bad % 2 == 0:  # halve the rate after two epochs in a row without progress
                for g in opt.param_groups:
                    g["lr"] *= 0.5
            if bad >= settings["patience"]:
                stopped = True
                break
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return FitResult(tuple(history), best_epoch, best, stopped, time.perf_counter() - start)


def _digest(states: dict[str, dict[str, torch.Tensor]]) -> str:
    h = hashlib.sha256()
    for part in sorted(states):
        for name in sorted(states[part]):
            t = states[part][name].detach().cpu().contiguous()
            h.update(f"{part}.{name}|{t.dtype}|{tuple(t.shape)}".encode())
            h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


class Evaluator:
    """A learned list-wise simulator: per-position click probabilities of whole ordered lists.

    Parameters
    ----------
    dim : int
        Width of the models.
    heads, layers : int
        Attention heads, and layers of the sequence model over the list (``layers=0``
        uses only the pair features; see :class:`ListModel`).
    mixer : {'gru', 'transformer'}
        The sequence model when ``layers > 0``: a bidirectional GRU or a Transformer.
    epochs : int
        At most this many passes over the training log.
    batch_size : int
        Logged requests per step.
    lr, weight_decay : float
        Adam's settings; the rate halves after an epoch without a better validation loss.
    patience : int
        Epochs without a better validation loss before stopping.
    members : int
        List models trained from seeds ``seed, seed + 1, ...`` (same split) whose logits
        are averaged: an ensemble that lowers the variance 0/1 clicks put into one
        model, at ``members`` times the list model's training and scoring cost.
    ema : float in [0, 1)
        Decay of the exponential moving average of the weights over training steps
        (Polyak averaging); validation, early stopping and the kept weights use the
        average; 0 (the default) turns it off. On the N 8, K 5 slate world 0.99 moved
        the evaluator's exhaustive pick within seed noise, and it cut the pool figure of
        ``bench/bench_rerank.py`` (mixing pages) from +0.52 % to +0.05 %.
    context_mlp : bool
        Feed the context to the item MLP too (default; see :class:`ItemEncoder`).
        ``False``: the context acts through the bilinear item–context term only, a
        lower-variance form. Measured with ``bench/bench_rerank.py``: on the N 8, K 5
        slate world it moved the evaluator's exhaustive pick within seed noise
        (93.4 % / 94.2 % of the optimum against 92.5 % / 94.1 %, two seeds, 20,000
        lists; 97.6 % against 97.1 % with 100,000), while on the one-hot world it
        lowered fidelity (τ 0.690 against 0.701) and the gain over greedy (+4.7 %
        against +5.7 %).
    val_fraction : float in (0, 1)
        Share of the log held out for validation (the split is seeded).
    seed : int
        Seeds initialisation, the split and the batch order.
    progress : bool
        Show tqdm progress bars.
    threads : int, optional
        ``torch.set_num_threads`` while fitting and predicting (restored after).
    """

    def __init__(self, dim: int = 32, heads: int = 4, layers: int = 0, mixer: str = "gru", epochs: int = 40, batch_size: int = 128,
                 lr: float = 5e-3, weight_decay: float = 1e-5, patience: int = 4, val_fraction: float = 0.1,
                 seed: int = 0, progress: bool = True, threads: int | None = None, ema: float = 0.0,
                 members: int = 1, context_mlp: bool = True) -> None:
        self.dim, self.heads = _check_int("dim", dim, 1), _check_int("heads", heads, 1)
        self.layers = _check_int("layers", layers, 0)
        self.members = _check_int("members", members, 1)
        if not isinstance(context_mlp, (bool, np.bool_)):
            raise SolverError(f"context_mlp must be True or False; got {context_mlp!r}")
        self.context_mlp = bool(context_mlp)
        if mixer not in ("gru", "transformer"):
            raise SolverError(f"mixer must be 'gru' or 'transformer'; got {mixer!r}")
        self.mixer = mixer
        if dim % heads:
            raise SolverError(f"dim must be a multiple of heads ({heads}); got {dim}")
        self.settings = {
            "epochs": _check_int("epochs", epochs, 1),
            "batch_size": _check_int("batch_size", batch_size, 1),
            "lr": _check_pos("lr", lr),
            "weight_decay": float(weight_decay) if isinstance(weight_decay, (int, float)) and weight_decay >= 0 else None,
            "patience": _check_int("patience", patience, 1),
            "seed": _check_int("seed", seed, 0),
            "progress": bool(progress),
            "ema": float(ema) if isinstance(ema, (int, float)) and not isinstance(ema, bool) and 0 <= ema < 1 else None,
        }
        if self.settings["ema"] is None:
            raise SolverError(f"ema must be a number in [0, 1); got {ema!r}")
        if self.settings["weight_decay"] is None:
            raise SolverError(f"weight_decay must be a number >= 0; got {weight_decay!r}")
        if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float)) or not 0 < val_fraction < 1:
            raise SolverError(f"val_fraction must be in (0, 1); got {val_fraction!r}")
        self.val_fraction = float(val_fraction)
        self.threads = None if threads is None else _check_int("threads", threads, 1)
        self.config: EvaluatorConfig | None = None
        self.list_model: ListModel | None = None  #: the first member
        self.list_models: list[ListModel] = []
        self.pointwise: PointwiseModel | None = None
        self.fit_results: dict[str, FitResult] = {}

    def __repr__(self) -> str:
        state = "unfitted" if self.config is None else f"fitted on F={self.config.n_features}, C={self.config.context_dim}, K<={self.config.max_len}"
        return f"Evaluator(dim={self.dim}, heads={self.heads}, layers={self.layers}; {state})"

    # ------------------------------------------------------------ threads
    def _threads(self) -> Any:
        ev = self

        class _Scope:
            def __enter__(self) -> None:
                self.old = torch.get_num_threads()
                if ev.threads is not None:
                    torch.set_num_threads(ev.threads)

            def __exit__(self, *exc: Any) -> None:
                if ev.threads is not None:
                    torch.set_num_threads(self.old)

        return _Scope()

    # ------------------------------------------------------------ training
    def fit(self, log: ListLog) -> Evaluator:
        """Train the list model and the point-wise model on ``log``; returns ``self``.

        ``self.fit_results`` holds a :class:`FitResult` per model.
        """
        if not isinstance(log, ListLog):
            raise ProblemError(f"log must be a ListLog; got {type(log).__name__}")
        if len(log) < 2:
            raise ProblemError(f"log must hold at least 2 requests (one for validation); got {len(log)}")
        train, val = log.split(self.val_fraction, seed=self.settings["seed"])
        self.config = EvaluatorConfig(log.n_features, log.context_dim, log.list_len, self.dim, self.heads, self.layers,
                                      self.mixer, members=self.members,
                                      context_mlp=self.context_mlp)
        with self._threads():
            torch.manual_seed(self.settings["seed"])
            self.pointwise = PointwiseModel(self.config)
            self.list_models, results = [], {}
            for i in range(self.members):
                torch.manual_seed(self.settings["seed"] + i)
                lm = ListModel(self.config)
                settings = {**self.settings, "seed": self.settings["seed"] + i}
                desc = "evaluator" if self.members == 1 else f"evaluator {i + 1}/{self.members}"
                results["list" if i == 0 else f"list{i}"] = _fit_model(
                    lm, lambda x, c, li, lm=lm: lm(lm.encode(x, c), li), train, val, settings, desc)
                self.list_models.append(lm)
            self.list_model = self.list_models[0]
            pw = self.pointwise
            results["pointwise"] = _fit_model(pw, pw, train, val, self.settings, "point-wise")
            self.fit_results = results
        return self

    def _require_fit(self) -> EvaluatorConfig:
        if self.config is None or self.list_model is None:
            raise SolverError("this Evaluator is not fitted: call fit(log) or Evaluator.load(path) first")
        return self.config

    def requests(self, items: Any, context: Any = None, n_items: Any = None) -> Requests:
        """Check one request (items (N, F), context (C,)) or a batch ((R, N, F), (R, C)) against the fitted sizes."""
        cfg = self._require_fit()
        return as_requests(items, context, n_items, cfg.n_features, cfg.context_dim)

    # ------------------------------------------------------------ scoring
    def logits_t(self, req: Requests, lists: torch.Tensor, encoded: torch.Tensor | None = None) -> torch.Tensor:
        """Unchecked fast path for generators: logits (R, L, K) of ``lists`` (R, L, K) (a tensor), no grad.

        With several members, their logits are averaged.
        """
        if encoded is None:
            encoded = self.encode_t(req)
        parts = encoded.chunk(len(self.list_models), dim=2)
        out = self.list_models[0](parts[0], lists)
        for lm, enc in zip(self.list_models[1:], parts[1:]):
            out = out + lm(enc, lists)
        return out / len(self.list_models) if len(self.list_models) > 1 else out

    def encode_t(self, req: Requests) -> torch.Tensor:
        """The list models' item encodings (R, N, ...) of a checked request batch (reuse across many lists)."""
        x, c = torch.from_numpy(req.items), torch.from_numpy(req.context)
        return torch.cat([lm.encode(x, c) for lm in self.list_models], dim=2)

    def item_scores(self, items: Any, context: Any = None, n_items: Any = None) -> np.ndarray:
        """The point-wise model's appeal of each candidate, (N,) or (R, N); padding gets -inf."""
        req = self.requests(items, context, n_items)
        with self._threads(), torch.inference_mode():
            s = self.pointwise.item_logits(torch.from_numpy(req.items), torch.from_numpy(req.context)).numpy()
        s = np.where(np.arange(s.shape[1]) < req.n_items[:, None], s, -np.inf)
        return s[0] if req.single else s

    def predict(self, items: Any, lists: Any, context: Any = None, n_items: Any = None) -> np.ndarray:
        """Click probability at each position of each list.

        Parameters
        ----------
        items : array (N, F), or (R, N, F) for a batch of requests
        lists : int array (L, K), or (R, L, K): candidate indices in order
        context : array (C,) or (R, C); required when the log had a context
        n_items : int or (R,) ints, optional: real candidates (the rest is padding)

        Returns
        -------
        ndarray (L, K), or (R, L, K)
        """
        cfg = self._require_fit()
        req = self.requests(items, context, n_items)
        li = as_lists(lists, req, cfg.max_len)
        with self._threads(), torch.inference_mode():
            p = torch.sigmoid(self.logits_t(req, torch.from_numpy(li))).numpy()
        return p[0] if req.single else p

    def score(self, items: Any, lists: Any, context: Any = None, n_items: Any = None, weights: Any = None) -> np.ndarray:
        """A list's value: predicted expected clicks (sum over positions), or ``sum_s weights[s] * p[s]``.

        ``weights``: (K,) per position, or the shape of the lists (per list and position).
        Returns (L,) or (R, L).
        """
        p = self.predict(items, lists, context, n_items)
        if weights is None:
            return p.sum(axis=-1)
        w = np.asarray(weights, dtype=np.float64)
        try:
            w = np.broadcast_to(w, p.shape)
        except ValueError:
            raise ProblemError(f"weights must broadcast to the lists' shape {p.shape}; got {w.shape}") from None
        if not np.isfinite(w).all():
            raise ProblemError("weights must be finite")
        return (p * w).sum(axis=-1)

    # ------------------------------------------------------------ checkpoints
    def save(self, path: str | os.PathLike[str], extra: dict[str, Any] | None = None) -> Path:
        """Write the fitted evaluator to ``path`` atomically (format, version, config, weights, SHA-256 digest)."""
        cfg = self._require_fit()
        path = Path(path)
        if not path.parent.is_dir():
            raise CheckpointError(f"cannot write checkpoint {path}: directory {path.parent} does not exist")
        try:
            extra_json = json.dumps(extra if extra is not None else {})
        except (TypeError, ValueError) as exc:
            raise ProblemError(f"extra must be JSON-serialisable; got {exc}") from None
        models = [("list" if i == 0 else f"list{i}", lm) for i, lm in enumerate(self.list_models)]
        states = {name: {k: v.detach().cpu().clone() for k, v in m.state_dict().items()}
                  for name, m in [*models, ("pointwise", self.pointwise)]}
        payload = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "config": asdict(cfg),
                   "states": states, "digest": _digest(states), "extra": extra_json}
        with atomic_write(path) as fh:
            torch.save(payload, fh)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str], threads: int | None = None) -> Evaluator:
        """Read a checkpoint written by :meth:`save`; a missing, corrupt, foreign or newer file raises ``CheckpointError``."""
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"checkpoint {path} does not exist or is not a file")
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # damaged files raise many kinds of errors
            raise CheckpointError(f"checkpoint {path} is corrupt or truncated ({str(exc).strip()[:150]})") from None
        if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
            got = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
            raise CheckpointError(f"checkpoint {path} is not an evaluator checkpoint (format must be {CHECKPOINT_FORMAT!r}; got {got!r})")
        version = payload.get("version")
        if not isinstance(version, int) or not CHECKPOINT_MIN_VERSION <= version <= CHECKPOINT_VERSION:
            raise CheckpointError(f"checkpoint {path}: version must be an int in [{CHECKPOINT_MIN_VERSION}, "
                                  f"{CHECKPOINT_VERSION}] (older files predate the current layout); got {version!r}")
        try:
            cfg = EvaluatorConfig(**payload["config"])
        except (KeyError, TypeError, SolverError) as exc:
            raise CheckpointError(f"checkpoint {path} has an invalid config ({exc})") from None
        states = payload.get("states")
        names = ["list"] + [f"list{i}" for i in range(1, cfg.members)]
        if not isinstance(states, dict) or set(states) != {*names, "pointwise"}:
            raise CheckpointError(f"checkpoint {path} has no valid weights")
        if payload.get("digest") != _digest(states):
            raise CheckpointError(f"checkpoint {path} is corrupt: its weights do not match their SHA-256 digest")
        ev = cls(dim=cfg.dim, heads=cfg.heads, layers=cfg.layers, mixer=cfg.mixer, threads=threads, progress=False,
                 members=cfg.members, context_mlp=cfg.context_mlp)
        ev.config, ev.list_models, ev.pointwise = cfg, [ListModel(cfg) for _ in names], PointwiseModel(cfg)
        ev.list_model = ev.list_models[0]
        try:
            for name, lm in zip(names, ev.list_models):
                lm.load_state_dict(states[name], strict=True)
                lm.eval()
            ev.pointwise.load_state_dict(states["pointwise"], strict=True)
        except RuntimeError as exc:
            raise CheckpointError(f"checkpoint {path}: weights do not fit its config ({str(exc)[:200]})") from None
        ev.pointwise.eval()
        return ev
