"""ESAN, the Edge Surrounding-Aware Network (SPEC §3), in PyTorch.

ESAN predicts the click probability (given exposure) of a card inserted at a
slot of a page, from three things:

* the user's real-time behaviour — an exposure sequence and a click sequence of
  ``<item, action>`` pairs. Each sequence has its own encoder (clicks are sparse
  and would be drowned in exposures); in each, item features and action
  features are encoded separately, then fused, with a recency embedding;
* the candidate card, which attends over each behaviour sequence: softmax
  attention (scores biased for entries of the candidate's own type and
  category, with a "null" key), a sigmoid-gated sum that keeps counts ("how
  many recent exposures of this type"), and a hard search in the style of
  Alibaba's SIM (the mean of the entries of the candidate's category, and of
  its type, with their counts);
* the slot's surroundings — the items in a window of ``window`` slots on each
  side, with their types and categories, each through its own relative-position
  map, plus depth features of the slot.

The sub-modules compute each part once: the user state once per request, the
candidates once (``N``), the slot contexts once (``K``); only a light head runs
per ``(card, slot)`` pair::

    h1 = U[c] + V[s] + W (Q[c] * ctx[s]) + match[c, s] @ (M0 + M[type[c]])
    logit = out(relu(hidden(relu(h1))))

where ``Q[c] * ctx[s]`` is elementwise and ``match[c, s]`` flags, for each
relative position of the window, a neighbour of the card's own type and of its
own category; plus a per-neighbour non-linear term
``P sum_r a_r * relu(q[c] * k[s + r] + b_r)`` (``neighbour_units`` wide), for
effects that depend on how the card and each neighbour go together (cost per
pair: a few thousand multiply-adds).

and, from the user's behaviour, ``J`` (``behaviour_gates``) terms per card,
each faded or grown with the slot's depth by its own learned gate::

    logit += sum_j b_j[c] * (1 + g_j(depth(s)))

(``b = MLP(card, its reads of the sequences, user)``, ``g`` a linear map of
the slot's depth features, zero at the start): behaviour moves a card's
logit, and how much that pull weakens or strengthens down the page is
learned. The head (``U``, ``Q``, ``q`` above) sees the card's item encoding
only, so its slot profile comes from the item and the surroundings, and
behaviour that does not depend on the slot adds little noise to which slot
suits a card. With ``behaviour_gates=0`` the behaviour reads join the head's
card input instead (the model before the gates).

So one forward pass returns the whole ``(N, K)`` matrix. The same head scores
the items of a logged page at their own slots (training) and single pairs
(:meth:`ESAN.score_pairs`, the reference the grid is tested against).

Ablations: ``use_window=False`` drops the surroundings (the slot context is its
depth only); ``use_behaviour=False`` drops both behaviour sequences.

Examples
--------
>>> import torch
>>> from mixrank.synthetic import FeedEnv, FeedConfig
>>> from esan import ESAN, ESANConfig
>>> env = FeedEnv(FeedConfig(n_slots=12, n_cards=5))
>>> req = env.sample(1, seed=0).requests
>>> model = ESAN(ESANConfig.for_data(req))
>>> card_ctr, organic_ctr = model.predict(req)
>>> card_ctr.shape, organic_ctr.shape
((5, 12), (12,))
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from esan.data import BEHAVIOUR_FIELDS, CANDIDATE_FIELDS, PAGE_FIELDS, FeedLog, InputError, Requests
from mixrank.logs import OPTIONAL_FIELDS, LogShards

__all__ = ["ESANConfig", "ESAN", "FORWARD_INPUTS"]

#: The positional inputs of :meth:`ESAN.forward` (and of the exported programs), in order.
FORWARD_INPUTS = (*BEHAVIOUR_FIELDS, *PAGE_FIELDS, *CANDIDATE_FIELDS)

#: The optional inputs that follow them, in order, for a config that uses them (see :attr:`ESAN.input_names`).
SPARSE_INPUTS = ("exp_sparse", "clk_sparse", "page_sparse", "cand_sparse")
MASK_INPUTS = ("page_mask", "cand_mask")

_INT_FIELDS = {name for name in (*FORWARD_INPUTS, *OPTIONAL_FIELDS) if name.endswith(("_type", "_category", "_sparse"))}
_BOOL_FIELDS = {name for name in (*FORWARD_INPUTS, *OPTIONAL_FIELDS) if name.endswith("_mask")}
#: Hashing multiplier of sparse IDs (Knuth's multiplicative hash).
_HASH = 2654435761


@dataclass(frozen=True)
class ESANConfig:
    """Sizes and switches of an :class:`ESAN` model.

    Parameters
    ----------
    n_types : int
        ``T``, card types (organic items are type ``T``).
    n_categories, n_features, exp_action_dim, clk_action_dim : int
        ``C``, ``F``, ``Ae`` and ``Ac`` of the data (see :mod:`esan.data`).
    dim : int
        Width of item, behaviour and slot encodings.
    heads : int
        Attention heads (must divide ``dim``).
    hidden : int
        Width of the per-pair head.
    window : int
        Slots on each side of a slot that its context sees.
    max_seq_len : int
        Longest behaviour sequence (size of the recency embedding).
    slot_scale : float
        Depth features of slot s: ``log1p(s) / log1p(slot_scale) - 0.5`` and ``s / slot_scale``.
    use_window, use_behaviour : bool
        Ablation switches: the surrounding window; both behaviour sequences.
    use_exposures, use_clicks, use_actions : bool
        Finer ablations of the behaviour: the exposure sequence, the click
        sequence (each read as empty when off), the action features (read as
        zeros when off).
    n_sparse : int >= 0
        ``S``, sparse categorical columns per item (``*_sparse`` fields); 0: none.
    sparse_buckets : int
        Hash buckets per sparse column; bucket 0 is the out-of-vocabulary
        bucket (missing IDs, and IDs whose bucket the training log never hit).
    context_dim : int >= 0
        ``D``, dense user/context features (``context``); 0: none.
    behaviour_gates : int >= 0
        ``J``, behaviour terms of a pair's logit, each with a learned gate over
        the slot's depth (see :class:`BehaviourGates`); 0: the behaviour reads
        join the pair head's card input (the model before this option).
    neighbour_units : int >= 0
        Width U of the per-neighbour non-linear interaction of the pair head
        (see :class:`PairHead`); 0: off (the model before this option).
    use_masks : bool
        Take ``page_mask`` and ``cand_mask`` inputs: padded slots are kept out
        of their neighbours' windows, and padded slots and candidates score 0.
    use_last_match, use_cross_attention, use_side_views, use_dwell_filter : bool
        Design points of Dianping's behaviour model, each off by default (bench
        them with ``bench/bench_esan.py --ablations``): *steps since the last
        match* (how many entries back the latest one of the candidate's
        category, and of its type, stands) among the hard-search features;
        *side-attribute views* (extra attention over each sequence whose
        scores compare only the type, or only the category, embeddings);
        exposure-to-click *cross-attention* (each exposure attends over the
        clicks and a zero vector, so an exposure unlike every click reads ~0);
        a *dwell filter* that drops un-clicked exposures whose dwell
        (``exp_action[..., dwell_column]``, raw units) is below
        ``dwell_threshold`` — scroll-pasts are not negative feedback
        (``click_column``: the action column that flags a click).

    Examples
    --------
    >>> cfg = ESANConfig(n_types=3, n_categories=8, n_features=4, exp_action_dim=3, clk_action_dim=2)
    >>> ESANConfig.from_dict(cfg.to_dict()) == cfg
    True
    """

    n_types: int
    n_categories: int
    n_features: int
    exp_action_dim: int
    clk_action_dim: int
    dim: int = 32
    heads: int = 2
    hidden: int = 48
    window: int = 3
    max_seq_len: int = 64
    slot_scale: float = 50.0
    use_window: bool = True
    use_behaviour: bool = True
    use_exposures: bool = True
    use_clicks: bool = True
    use_actions: bool = True
    n_sparse: int = 0
    sparse_buckets: int = 4096
    context_dim: int = 0
    use_masks: bool = False
    use_last_match: bool = False
    use_cross_attention: bool = False
    use_side_views: bool = False
    use_dwell_filter: bool = False
    neighbour_units: int = 16
    behaviour_gates: int = 4
    dwell_threshold: float = 0.0
    dwell_column: int = 0
    click_column: int = 2

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name.startswith("use_"):
                if not isinstance(v, bool):
                    raise InputError(f"ESANConfig.{f.name} must be a bool; got {v!r}")
            elif f.name == "dwell_threshold":
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                    raise InputError(f"ESANConfig.dwell_threshold must be a finite number; got {v!r}")
                object.__setattr__(self, f.name, float(v))
            elif f.name == "slot_scale":
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                    raise InputError(f"ESANConfig.slot_scale must be a number > 0; got {v!r}")
                object.__setattr__(self, f.name, float(v))
            else:
                lo = 0 if f.name in (
                    "n_sparse", "context_dim", "dwell_column", "click_column", "neighbour_units", "behaviour_gates"
                ) else 1
                if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
                    raise InputError(f"ESANConfig.{f.name} must be an int >= {lo}; got {v!r}")
                object.__setattr__(self, f.name, int(v))
        if self.dim % self.heads:
            raise InputError(f"ESANConfig.heads must divide dim ({self.dim}); got {self.heads}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> ESANConfig:
        """Inverse of :meth:`to_dict`; unknown or missing keys raise :class:`InputError`."""
        if not isinstance(data, dict):
            raise InputError(f"ESANConfig data must be a dict; got {type(data).__name__}")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise InputError(f"ESANConfig got unknown key(s) {', '.join(unknown)}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise InputError(f"ESANConfig data is incomplete: {exc}") from None

    @classmethod
    def for_data(cls, data: FeedLog | Requests, **options: Any) -> ESANConfig:
        """A config whose data sizes (T, C, F, Ae, Ac; S, D and masks when present) match a log or request record."""
        if not isinstance(data, (FeedLog, Requests)):
            raise InputError(f"data must be a FeedLog or Requests; got {type(data).__name__}")
        d = data.dims
        found = {
            "n_sparse": d.get("S", 0),
            "context_dim": d.get("D", 0),
            "use_masks": any(m in data.fields for m in MASK_INPUTS),
        }
        return cls(
            n_types=data.n_types,
            n_categories=data.n_categories,
            n_features=d["F"],
            exp_action_dim=d["Ae"],
            clk_action_dim=d["Ac"],
            **{**found, **options},
        )


class Standardiser(nn.Module):
    """``(x - mean) / std`` with the statistics of the training log, kept as buffers.

    Buffers travel with the state dict, so the checkpoint and the exports carry
    the scaling; identity (mean 0, std 1) until :meth:`ESAN.fit_scaling` sets it.
    """

    def __init__(self, width: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(width))
        self.register_buffer("std", torch.ones(width))

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std

    def fit(self, values: np.ndarray) -> None:
        """Set the statistics from ``values`` (M, width) (rows: the live entries of a log)."""
        v = values.astype(np.float64)
        self.fit_moments(v.sum(0), (v**2).sum(0), v.shape[0])

    def fit_moments(self, total: np.ndarray, squares: np.ndarray, count: int) -> None:
        """Set the statistics from sums over ``count`` rows (a log read in chunks)."""
        if count == 0:
            return
        mean = total / count
        std = np.sqrt(np.maximum(squares / count - mean**2, 0.0))
        self.mean.copy_(torch.from_numpy(mean).float())
        self.std.copy_(torch.from_numpy(np.maximum(std, 1e-3)).float())


class ItemEncoder(nn.Module):
    """Type, category and dense features of items -> (..., dim)."""

    def __init__(
        self, n_types: int, n_categories: int, n_features: int, dim: int, n_sparse: int = 0, buckets: int = 1
    ) -> None:
        super().__init__()
        self.type_emb = nn.Embedding(n_types + 1, dim)
        self.cat_emb = nn.Embedding(n_categories, dim)
        self.feat = nn.Linear(n_features, dim)
        self.mix = nn.Linear(dim, dim)
        self.scaling = Standardiser(n_features)
        self.n_sparse, self.buckets = n_sparse, buckets
        if n_sparse:
            self.sparse = nn.Embedding(n_sparse * (buckets + 1), dim)
            nn.init.normal_(self.sparse.weight, std=0.05)
            # which buckets of each column the training log hit; the others read the OOV bucket 0
            self.register_buffer("seen", torch.ones(n_sparse * (buckets + 1), dtype=torch.bool))
            self.register_buffer("offset", torch.arange(n_sparse, dtype=torch.long) * (buckets + 1), persistent=False)

    def hashed_rows(self, ids: Tensor) -> Tensor:
        """Raw IDs (..., S) -> rows of the sparse table (..., S): hashed per column; missing IDs (-1) to bucket 0."""
        salt = torch.arange(self.n_sparse, dtype=ids.dtype, device=ids.device) * 7919
        h = torch.remainder(ids * _HASH + salt, self.buckets) + 1
        return self.offset + torch.where(ids < 0, torch.zeros_like(h), h)

    def buckets_of(self, ids: Tensor) -> Tensor:
        """:meth:`hashed_rows`, with the buckets the training log never hit sent to the OOV bucket 0."""
        rows = self.hashed_rows(ids)
        return torch.where(self.seen[rows], rows, self.offset.expand_as(rows))

    def fit_vocabulary(self, ids: np.ndarray, reset: bool = True) -> None:
        """Mark the buckets hit by the IDs (M, S) of the training log as seen; all others read bucket 0.

        ``reset=False`` adds to the buckets already marked (a log read in chunks).
        """
        seen = torch.zeros_like(self.seen) if reset else self.seen.clone()
        seen[self.offset] = True
        for start in range(0, ids.shape[0], 1 << 16):
            rows = self.hashed_rows(torch.from_numpy(np.ascontiguousarray(ids[start : start + (1 << 16)])))
            seen[rows.reshape(-1).to(seen.device)] = True
        self.seen.copy_(seen)

    def forward(self, types: Tensor, cats: Tensor, feats: Tensor, sparse: Tensor | None = None) -> Tensor:
        """(..., ) int, (..., ) int, (..., F) float, optional (..., S) raw IDs -> (..., dim)."""
        e = self.type_emb(types) + self.cat_emb(cats) + self.feat(self.scaling(feats))
        if self.n_sparse and sparse is not None:
            rows = self.buckets_of(sparse)
            if self.training:  # teach the OOV bucket: a few known IDs read it too
                drop = torch.rand(rows.shape, device=rows.device) < 0.05
                rows = torch.where(drop, self.offset.expand_as(rows), rows)
            e = e + self.sparse(rows).sum(-2)
        return e + self.mix(torch.relu(e))


class SequenceEncoder(nn.Module):
    """One behaviour sequence: item and action features encoded separately, fused, plus recency."""

    def __init__(self, action_dim: int, dim: int, max_len: int) -> None:
        super().__init__()
        self.action = nn.Sequential(nn.Linear(action_dim, dim), nn.ReLU(), nn.Linear(dim, dim))
        self.fuse = nn.Linear(2 * dim, dim)
        self.recency = nn.Embedding(max_len, dim)
        self.scaling = Standardiser(action_dim)

    def forward(self, item_enc: Tensor, actions: Tensor) -> Tensor:
        """(B, L, dim), (B, L, A) -> (B, L, dim)."""
        length = item_enc.shape[1]
        fused = self.fuse(torch.cat([item_enc, self.action(self.scaling(actions))], dim=-1))
        return torch.relu(fused + self.recency.weight[:length])


class CandidateAttention(nn.Module):
    """Candidates attend over one behaviour sequence.

    Three readouts, concatenated and projected:

    * soft attention: scores ``q . k / sqrt(dh)`` plus a learned bias per head
      for an entry of the candidate's own type and of its own category, a
      softmax with a "null" key (so an empty or irrelevant sequence reads ~0);
    * a sigmoid-gated sum over the same scores (keeps counts: "how many recent
      exposures of this type");
    * hard search (as in Alibaba's SIM): the mean value of the entries of the
      candidate's own category, and of its own type, with their counts.
    """

    def __init__(self, dim: int, heads: int, max_len: int, last_match: bool = False) -> None:
        super().__init__()
        self.heads = heads
        self.last_match = last_match
        self.log_len = math.log1p(max_len)
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.hard_v = nn.Linear(dim, dim)
        self.match = nn.Parameter(torch.zeros(2, heads))  # same type, same category
        self.out = nn.Linear(4 * dim + 2 + (2 if last_match else 0), dim)
        self.sum_scale = 1.0 / math.sqrt(max_len)

    def forward(self, cand: Tensor, cand_type: Tensor, cand_cat: Tensor, seq: SequenceState) -> Tensor:
        """(B, M, dim) candidates with (B, M) types and categories, a sequence -> (B, M, dim)."""
        b, m, d = cand.shape
        h = self.heads
        dh = d // h
        q = self.q(cand).reshape(b, m, h, dh).transpose(1, 2)  # (B, H, M, dh)
        k = self.k(seq.memory).reshape(b, -1, h, dh).transpose(1, 2)  # (B, H, L, dh)
        v = self.v(seq.memory).reshape(b, -1, h, dh).transpose(1, 2)
        same_type = (cand_type[:, :, None] == seq.types[:, None, :]).to(cand.dtype)  # (B, M, L)
        same_cat = (cand_cat[:, :, None] == seq.cats[:, None, :]).to(cand.dtype)
        bias = same_type[:, None] * self.match[0][None, :, None, None] + same_cat[:, None] * self.match[1][
            None, :, None, None
        ]
        scores = q @ k.transpose(-1, -2) / math.sqrt(dh) + bias  # (B, H, M, L)
        valid = seq.mask[:, None, None, :]
        masked = torch.where(valid, scores, torch.full_like(scores, -1e9))
        null = torch.zeros_like(scores[..., :1])
        weights = torch.softmax(torch.cat([masked, null], dim=-1), dim=-1)[..., :-1]
        soft = weights @ v  # (B, H, M, dh)
        gate = torch.sigmoid(scores) * valid.to(scores.dtype)
        summed = (gate @ v) * self.sum_scale
        learned = torch.cat([soft, summed], dim=-1).transpose(1, 2).reshape(b, m, 2 * d)
        live = seq.mask[:, None, :].to(cand.dtype)
        hv = self.hard_v(seq.memory)  # (B, L, dim)
        hard = []
        counts = []
        length = seq.mask.shape[1]
        steps = torch.arange(length, device=cand.device, dtype=cand.dtype)
        for same in (same_cat * live, same_type * live):  # (B, M, L)
            n = same.sum(-1, keepdim=True)
            hard.append((same @ hv) / (n + 1.0))
            counts.append(torch.log1p(n))
            if self.last_match:  # steps back to the latest match (index 0 is the latest entry); none: the length
                last = torch.where(same > 0, steps, torch.full_like(same, float(length))).amin(-1, keepdim=True)
                counts.append(torch.log1p(last) / self.log_len)
        return self.out(torch.cat([learned, *hard, *counts], dim=-1))


class CrossAttention(nn.Module):
    """Exposures attend over the clicks plus a zero vector (Dianping): an exposure unlike every click reads ~0."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.q, self.k, self.v = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.scale = 1.0 / math.sqrt(dim)

    def forward(self, exposures: Tensor, clicks: SequenceState) -> Tensor:
        """(B, Le, dim) exposures, the click sequence -> (B, Le, dim) what each exposure reads from the clicks."""
        q = self.q(exposures)
        scores = q @ self.k(clicks.memory).transpose(1, 2) * self.scale  # (B, Le, Lc)
        scores = torch.where(clicks.mask[:, None, :], scores, torch.full_like(scores, -1e9))
        zero = torch.zeros_like(scores[..., :1])  # the zero vector's key scores 0, its value is 0
        weights = torch.softmax(torch.cat([scores, zero], dim=-1), dim=-1)[..., :-1]
        return weights @ self.v(clicks.memory)


class SideViews(nn.Module):
    """Attention over a sequence in two side-attribute views (Dianping): scores from the type embeddings only,
    and from the category embeddings only; each view reads the sequence's memory."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.q = nn.ModuleList([nn.Linear(dim, dim) for _ in range(2)])
        self.k = nn.ModuleList([nn.Linear(dim, dim) for _ in range(2)])
        self.out = nn.Linear(2 * dim, dim)
        self.scale = 1.0 / math.sqrt(dim)

    def forward(self, embeddings: tuple, cand_type: Tensor, cand_cat: Tensor, seq: SequenceState) -> Tensor:
        """(type, category) embedding tables, (B, M) candidate types and categories, a sequence -> (B, M, dim)."""
        reads = []
        for i, (table, cand_ids, seq_ids) in enumerate(zip(embeddings, (cand_type, cand_cat), (seq.types, seq.cats))):
            scores = self.q[i](table(cand_ids)) @ self.k[i](table(seq_ids)).transpose(1, 2) * self.scale  # (B, M, L)
            scores = torch.where(seq.mask[:, None, :], scores, torch.full_like(scores, -1e9))
            null = torch.zeros_like(scores[..., :1])
            weights = torch.softmax(torch.cat([scores, null], dim=-1), dim=-1)[..., :-1]
            reads.append(weights @ seq.memory)
        return self.out(torch.cat(reads, dim=-1))


class SequenceState(NamedTuple):
    """One encoded behaviour sequence."""

    memory: Tensor  #: (B, L, dim)
    mask: Tensor  #: (B, L) bool
    types: Tensor  #: (B, L) int64
    cats: Tensor  #: (B, L) int64


class UserState(NamedTuple):
    """The encoded behaviour of B requests."""

    exposures: SequenceState
    clicks: SequenceState
    pooled: Tensor  #: (B, dim)


class SlotState(NamedTuple):
    """The encoded surroundings of S slots."""

    ctx: Tensor  #: (B, S, dim)
    nb_type: Tensor | None  #: (B, S, 2W) types of the window items, -1 beyond the page
    nb_cat: Tensor | None  #: (B, S, 2W) their categories, -1 beyond the page
    nb_enc: Tensor | None = None  #: (B, S, 2W, dim) their encodings (the page's edge beyond it)
    depth: Tensor | None = None  #: (B, S, 2) depth features of the slots


class SlotContext(nn.Module):
    """The surroundings of slots: window items through per-relative-position maps, plus depth."""

    def __init__(self, dim: int, window: int, slot_scale: float, use_window: bool) -> None:
        super().__init__()
        self.window = window
        self.use_window = use_window
        self.log_scale = math.log1p(slot_scale)
        self.slot_scale = slot_scale
        self.depth = nn.Linear(2, dim)
        if use_window:
            self.edge = nn.Parameter(torch.zeros(dim))  # what lies beyond the page's ends
            self.rel = nn.Parameter(torch.randn(2 * window, dim, dim) / math.sqrt(dim))
            offsets = [r for r in range(-window, window + 1) if r != 0]
            self.register_buffer("offsets", torch.tensor(offsets, dtype=torch.long), persistent=False)

    def depth_features(self, slots: Tensor) -> Tensor:
        s = slots.to(torch.float32)
        return torch.stack([torch.log1p(s) / self.log_scale - 0.5, s / self.slot_scale], dim=-1)

    def forward(self, page_enc: Tensor, page_type: Tensor, page_cat: Tensor, slots: Tensor | None = None) -> SlotState:
        """(B, K, dim) encoded page items, (B, K) types and categories -> the state of ``slots`` (B, S).

        ``slots`` defaults to all K slots. The item at the slot itself is not
        part of its context: a card inserted there replaces it.
        """
        b, k, d = page_enc.shape
        if slots is None:
            slots = torch.arange(k, device=page_enc.device).unsqueeze(0).expand(b, k)
        depth = self.depth_features(slots)
        ctx = self.depth(depth)
        if not self.use_window:
            return SlotState(ctx, None, None, None, depth)
        w = self.window
        s_count = slots.shape[1]
        idx = (slots.unsqueeze(-1) + w + self.offsets).reshape(b, s_count * 2 * w)  # into the padded page
        edge = self.edge.expand(b, w, d)
        padded = torch.cat([edge, page_enc, edge], dim=1)  # (B, K + 2W, dim)
        neighbours = torch.gather(padded, 1, idx.unsqueeze(-1).expand(-1, -1, d)).reshape(b, s_count, 2 * w, d)
        pad = page_type.new_full((b, w), -1)
        nb_type = torch.gather(torch.cat([pad, page_type, pad], dim=1), 1, idx).reshape(b, s_count, 2 * w)
        nb_cat = torch.gather(torch.cat([pad, page_cat, pad], dim=1), 1, idx).reshape(b, s_count, 2 * w)
        ctx = ctx + torch.einsum("bsrd,rde->bse", neighbours, self.rel)
        return SlotState(ctx, nb_type, nb_cat, neighbours, depth)


class BehaviourGates(nn.Module):
    """Behaviour's share of a pair's logit: ``sum_j b_j[c] * (1 + g_j(s))``, ``g(s) = A depth(s)``.

    ``b = MLP(cand)``: J values per card, from the card's full encoding (the
    item, its reads of the behaviour sequences, the user); ``depth(s)`` the
    slot's two depth features (:meth:`SlotContext.depth_features`) and ``A``
    (J x 2) zero at the start, so each term begins as a plain offset of the
    card's logit. Training learns whether and how each pull of the behaviour
    fades or grows down the page; the gate is kept to a few numbers so that,
    where behaviour does not depend on the slot, it adds little noise to the
    order of a card's slots.
    """

    def __init__(self, cand_dim: int, hidden: int, gates: int) -> None:
        super().__init__()
        self.card = nn.Sequential(nn.Linear(cand_dim, hidden), nn.ReLU(), nn.Linear(hidden, gates))
        nn.init.normal_(self.card[2].weight, std=0.01)  # behaviour starts as a faint term
        self.gate = nn.Linear(2, gates, bias=False)  # A
        nn.init.zeros_(self.gate.weight)

    def grid(self, cand: Tensor, depth: Tensor) -> Tensor:
        """(B, N, cand_dim) cards, (B, K, 2) slot depths -> (B, N, K)."""
        return self.card(cand) @ (1.0 + self.gate(depth)).transpose(1, 2)

    def pairs(self, cand: Tensor, depth: Tensor) -> Tensor:
        """Card i at slot i: (B, S, cand_dim), (B, S, 2) -> (B, S)."""
        return (self.card(cand) * (1.0 + self.gate(depth))).sum(-1)


class PairHead(nn.Module):
    """The light per-(card, slot) interaction.

    ``h1 = U[c] + V[s] + W (Q[c] * ctx[s]) + match[c, s] @ (M0 + M[type[c]])``,
    where ``match`` flags, for each window position, a neighbour of the card's
    own type and of its own category, ``M0`` is shared and ``M`` has one matrix
    per candidate type (a same-type neighbour means something else to an ad
    than to an organic item); then two small layers to a logit.

    With ``neighbour_units`` U > 0, a per-neighbour non-linear term is added:
    ``h1 += P sum_r a_r * relu(q[c] * k[s + r] + b_r)`` (q, k: U-wide maps of
    the card and of each window item; a_r, b_r per relative position), so an
    effect that depends on how the card and *each* neighbour go together (not
    only on the card and the window's sum) can be learned.
    """

    def __init__(
        self, cand_dim: int, dim: int, hidden: int, n_window: int, n_item_types: int, neighbour_units: int = 0
    ) -> None:
        super().__init__()
        self.cand = nn.Linear(cand_dim, hidden)  # U
        self.query = nn.Linear(cand_dim, dim)  # Q
        self.slot = nn.Linear(dim, hidden, bias=False)  # V
        self.inter = nn.Linear(dim, hidden, bias=False)  # W
        self.n_item_types = n_item_types
        # M: a block shared by all candidates plus one per candidate type, applied to the flags spread by type
        self.match = nn.Linear((n_item_types + 1) * 2 * n_window, hidden, bias=False) if n_window else None
        self.pair_nb = neighbour_units > 0 and n_window > 0
        if self.pair_nb:
            self.nb_query = nn.Linear(cand_dim, neighbour_units)
            self.nb_key = nn.Linear(dim, neighbour_units, bias=False)
            self.nb_bias = nn.Parameter(torch.zeros(n_window, neighbour_units))  # b_r
            self.nb_weight = nn.Parameter(torch.full((n_window, neighbour_units), 1.0 / n_window))  # a_r
            self.nb_out = nn.Linear(neighbour_units, hidden, bias=False)  # P
        self.hidden = nn.Linear(hidden, hidden // 2)
        self.logit = nn.Linear(hidden // 2, 1)
        nn.init.constant_(self.logit.bias, -2.5)  # clicks are rare: start near a 8 % CTR

    def _match(self, flags: Tensor, cand_type: Tensor) -> Tensor:
        """(..., F) flags of candidates of types (...,) -> (..., hidden): ``flags @ (M0 + M[type])``, one matmul."""
        onehot = torch.nn.functional.one_hot(cand_type, self.n_item_types).to(flags.dtype)  # (..., T + 1)
        spread = (onehot.unsqueeze(-1) * flags.unsqueeze(-2)).flatten(-2)  # (..., (T + 1) * F)
        return self.match(torch.cat([flags, spread], dim=-1))

    def _neighbours(self, q: Tensor, keys: Tensor) -> Tensor:
        """(..., U) card maps, (..., 2W, U) window-item maps -> (..., hidden): ``P sum_r a_r * relu(q * k_r + b_r)``."""
        return self.nb_out((torch.relu(q.unsqueeze(-2) * keys + self.nb_bias) * self.nb_weight).sum(-2))

    def _out(self, h1: Tensor) -> Tensor:
        return self.logit(torch.relu(self.hidden(torch.relu(h1)))).squeeze(-1)

    def grid(self, cand: Tensor, cand_type: Tensor, cand_cat: Tensor, slots: SlotState) -> Tensor:
        """(B, N, cand_dim) candidates with (B, N) types and categories, K slots -> logits (B, N, K)."""
        u, q, v = self.cand(cand), self.query(cand), self.slot(slots.ctx)
        h1 = u[:, :, None, :] + v[:, None, :, :] + self.inter(q[:, :, None, :] * slots.ctx[:, None, :, :])
        if self.match is not None:
            same_type = cand_type[:, :, None, None] == slots.nb_type[:, None]  # (B, N, K, 2W)
            same_cat = cand_cat[:, :, None, None] == slots.nb_cat[:, None]
            flags = torch.cat([same_type, same_cat], dim=-1).to(h1.dtype)
            h1 = h1 + self._match(flags, cand_type[:, :, None].expand_as(same_type[..., 0]))
        if self.pair_nb:
            h1 = h1 + self._neighbours(self.nb_query(cand)[:, :, None, :], self.nb_key(slots.nb_enc)[:, None])
        return self._out(h1)

    def pairs(self, cand: Tensor, cand_type: Tensor, cand_cat: Tensor, slots: SlotState) -> Tensor:
        """Candidate i at slot i: (B, S, cand_dim) and (B, S) types, categories; S slots -> logits (B, S)."""
        h1 = self.cand(cand) + self.slot(slots.ctx) + self.inter(self.query(cand) * slots.ctx)
        if self.match is not None:
            same_type = cand_type[:, :, None] == slots.nb_type  # (B, S, 2W)
            same_cat = cand_cat[:, :, None] == slots.nb_cat
            flags = torch.cat([same_type, same_cat], dim=-1).to(h1.dtype)
            h1 = h1 + self._match(flags, cand_type)
        if self.pair_nb:
            h1 = h1 + self._neighbours(self.nb_query(cand), self.nb_key(slots.nb_enc))
        return self._out(h1)


class ESAN(nn.Module):
    """The ESAN model; see the module docstring for the architecture.

    Parameters
    ----------
    config : ESANConfig

    Notes
    -----
    Inputs follow :mod:`esan.data` (types and categories as int64 tensors,
    features float32, masks bool); :meth:`predict` and :meth:`predict_log`
    take the numpy records directly.
    """

    def __init__(self, config: ESANConfig) -> None:
        super().__init__()
        if not isinstance(config, ESANConfig):
            raise InputError(f"config must be an ESANConfig; got {type(config).__name__}")
        self.config = cfg = config
        d = cfg.dim
        self.items = ItemEncoder(cfg.n_types, cfg.n_categories, cfg.n_features, d, cfg.n_sparse, cfg.sparse_buckets)
        if cfg.context_dim:
            self.context_scaling = Standardiser(cfg.context_dim)
            self.context = nn.Linear(cfg.context_dim, d)
        self.slots = SlotContext(d, cfg.window, cfg.slot_scale, cfg.use_window)
        cand_dim = d
        if cfg.use_behaviour:
            self.exp_seq = SequenceEncoder(cfg.exp_action_dim, d, cfg.max_seq_len)
            self.clk_seq = SequenceEncoder(cfg.clk_action_dim, d, cfg.max_seq_len)
            self.exp_att = CandidateAttention(d, cfg.heads, cfg.max_seq_len, cfg.use_last_match)
            self.clk_att = CandidateAttention(d, cfg.heads, cfg.max_seq_len, cfg.use_last_match)
            if cfg.use_cross_attention:
                self.cross = CrossAttention(d)
            if cfg.use_side_views:
                self.exp_views = SideViews(d)
                self.clk_views = SideViews(d)
            self.user = nn.Linear(2 * d, d)
            if cfg.behaviour_gates:
                self.behaviour = BehaviourGates(4 * d, cfg.hidden, cfg.behaviour_gates)
            else:
                cand_dim = 4 * d
        n_window = 2 * cfg.window if cfg.use_window else 0
        self.head = PairHead(cand_dim, d, cfg.hidden, n_window, cfg.n_types + 1, cfg.neighbour_units)
        # per-type calibration of the logits (organic last): logit * scale[type] + bias[type]; identity until
        # calibrate() fits it on held-out requests. Buffers, so checkpoints and exports carry it.
        self.register_buffer("calib_scale", torch.ones(cfg.n_types + 1))
        self.register_buffer("calib_bias", torch.zeros(cfg.n_types + 1))
        # [feature scaling fitted, calibration fitted], as 0/1
        self.register_buffer("fitted", torch.zeros(2))

    # ------------------------------------------------------------ parts
    def encode_user(self, b: dict[str, Tensor]) -> UserState | None:
        """Behaviour fields (B, L, ...) -> the encoded exposure and click sequences and a pooled user vector."""
        if not self.config.use_behaviour:
            return None
        cfg = self.config
        seqs = []
        for prefix, encoder, used in (("exp", self.exp_seq, cfg.use_exposures), ("clk", self.clk_seq, cfg.use_clicks)):
            types, cats, actions = b[f"{prefix}_type"], b[f"{prefix}_category"], b[f"{prefix}_action"]
            if not cfg.use_actions:
                actions = torch.zeros_like(actions)
            memory = encoder(self.items(types, cats, b[f"{prefix}_features"], b.get(f"{prefix}_sparse")), actions)
            mask = b[f"{prefix}_mask"] if used else torch.zeros_like(b[f"{prefix}_mask"])
            if prefix == "exp" and cfg.use_dwell_filter:  # scroll-pasts are not negative feedback
                raw = b["exp_action"]
                kept = (raw[..., cfg.click_column] > 0.5) | (raw[..., cfg.dwell_column] >= cfg.dwell_threshold)
                mask = mask & kept
            seqs.append(SequenceState(memory, mask, types, cats))
        if cfg.use_cross_attention:
            seqs[0] = seqs[0]._replace(memory=seqs[0].memory + self.cross(seqs[0].memory, seqs[1]))
        pooled = []
        for seq in seqs:
            m = seq.mask.to(seq.memory.dtype).unsqueeze(-1)
            pooled.append((seq.memory * m).sum(1) / m.sum(1).clamp_min(1.0))
        user = torch.relu(self.user(torch.cat(pooled, dim=-1)))
        return UserState(seqs[0], seqs[1], user)

    def encode_candidates(
        self,
        types: Tensor,
        cats: Tensor,
        feats: Tensor,
        user: UserState | None,
        enc: Tensor | None = None,
        sparse: Tensor | None = None,
        context: Tensor | None = None,
    ) -> Tensor:
        """(B, M) items -> (B, M, cand_dim): the item, what it attends to in each sequence, the user.

        ``enc`` is the items' encoding when already computed (the page's items);
        ``context`` (B, D) the dense user/context features, when the config has them.
        """
        if enc is None:
            enc = self.items(types, cats, feats, sparse)
        if self.config.context_dim and context is not None:
            enc = enc + self.context(self.context_scaling(context)).unsqueeze(1)
        if user is None:
            return enc
        m = enc.shape[1]
        exp_read = self.exp_att(enc, types, cats, user.exposures)
        clk_read = self.clk_att(enc, types, cats, user.clicks)
        if self.config.use_side_views:
            views = (self.items.type_emb, self.items.cat_emb)
            exp_read = exp_read + self.exp_views(views, types, cats, user.exposures)
            clk_read = clk_read + self.clk_views(views, types, cats, user.clicks)
        return torch.cat([enc, exp_read, clk_read, user.pooled.unsqueeze(1).expand(-1, m, -1)], dim=-1)

    def pair_logits(self, cand: Tensor, types: Tensor, cats: Tensor, slots: SlotState, grid: bool = False) -> Tensor:
        """Uncalibrated logits of candidates (from :meth:`encode_candidates`) at slots: every pair (B, N, K)
        with ``grid=True``, else candidate i at slot i (B, S)."""
        if not (self.config.use_behaviour and self.config.behaviour_gates):
            return (self.head.grid if grid else self.head.pairs)(cand, types, cats, slots)
        item = cand[..., : self.config.dim]  # the head sees the item; behaviour enters through the gates
        if grid:
            return self.head.grid(item, types, cats, slots) + self.behaviour.grid(cand, slots.depth)
        return self.head.pairs(item, types, cats, slots) + self.behaviour.pairs(cand, slots.depth)

    def encode_slots(self, b: dict[str, Tensor], slots: Tensor | None = None) -> tuple[SlotState, Tensor]:
        """Page fields (B, K, ...) -> the surroundings of ``slots`` (B, S) (default: every slot), and the
        encoded page items (B, K, dim)."""
        page_enc = self.items(b["page_type"], b["page_category"], b["page_features"], b.get("page_sparse"))
        seen_enc, seen_type, seen_cat = page_enc, b["page_type"], b["page_category"]
        mask = b.get("page_mask")
        if mask is not None and self.config.use_window:  # padded slots look like the page's edge to neighbours
            seen_enc = torch.where(mask.unsqueeze(-1), page_enc, self.slots.edge.expand_as(page_enc))
            seen_type = torch.where(mask, seen_type, torch.full_like(seen_type, -1))
            seen_cat = torch.where(mask, seen_cat, torch.full_like(seen_cat, -1))
        return self.slots(seen_enc, seen_type, seen_cat, slots), page_enc

    # ------------------------------------------------------------ scoring
    def forward(
        self,
        exp_type: Tensor,
        exp_category: Tensor,
        exp_features: Tensor,
        exp_action: Tensor,
        exp_mask: Tensor,
        clk_type: Tensor,
        clk_category: Tensor,
        clk_features: Tensor,
        clk_action: Tensor,
        clk_mask: Tensor,
        page_type: Tensor,
        page_category: Tensor,
        page_features: Tensor,
        cand_type: Tensor,
        cand_category: Tensor,
        cand_features: Tensor,
        exp_sparse: Tensor | None = None,
        clk_sparse: Tensor | None = None,
        page_sparse: Tensor | None = None,
        cand_sparse: Tensor | None = None,
        context: Tensor | None = None,
        page_mask: Tensor | None = None,
        cand_mask: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Score requests: the ``FORWARD_INPUTS`` tensors (see :mod:`mixrank.logs`), with a batch axis B.

        The optional inputs (sparse IDs, context, masks) are those of
        :attr:`input_names` beyond ``FORWARD_INPUTS``, for a config that uses them.

        Returns
        -------
        card_ctr : Tensor (B, N, K)
            Click probability of candidate c inserted at slot s of the organic page.
        organic_ctr : Tensor (B, K)
            Click probability of the organic item at its own slot.
        """
        b = {
            "exp_type": exp_type, "exp_category": exp_category, "exp_features": exp_features,
            "exp_action": exp_action, "exp_mask": exp_mask,
            "clk_type": clk_type, "clk_category": clk_category, "clk_features": clk_features,
            "clk_action": clk_action, "clk_mask": clk_mask,
            "page_type": page_type, "page_category": page_category, "page_features": page_features,
            "exp_sparse": exp_sparse, "clk_sparse": clk_sparse, "page_sparse": page_sparse, "page_mask": page_mask,
        }  # fmt: skip
        user = self.encode_user(b)
        slots, page_enc = self.encode_slots(b)  # every slot, once
        cand = self.encode_candidates(  # every candidate, once
            cand_type, cand_category, cand_features, user, sparse=cand_sparse, context=context
        )
        organic = self.encode_candidates(page_type, page_category, page_features, user, enc=page_enc, context=context)
        card_logit = self._calibrated(self.pair_logits(cand, cand_type, cand_category, slots, grid=True),
                                      cand_type.unsqueeze(-1))
        organic_logit = self._calibrated(self.pair_logits(organic, page_type, page_category, slots), page_type)
        card_ctr, organic_ctr = torch.sigmoid(card_logit), torch.sigmoid(organic_logit)
        if page_mask is not None:  # padded slots and candidates score 0
            organic_ctr = organic_ctr * page_mask.to(organic_ctr.dtype)
            card_ctr = card_ctr * page_mask.to(card_ctr.dtype).unsqueeze(1)
        if cand_mask is not None:
            card_ctr = card_ctr * cand_mask.to(card_ctr.dtype).unsqueeze(-1)
        return card_ctr, organic_ctr

    @property
    def input_names(self) -> tuple[str, ...]:
        """The positional inputs of :meth:`forward` (and of the exports) for this config, in order."""
        cfg = self.config
        return (
            *FORWARD_INPUTS,
            *(SPARSE_INPUTS if cfg.n_sparse else ()),
            *(("context",) if cfg.context_dim else ()),
            *(MASK_INPUTS if cfg.use_masks else ()),
        )

    def call(self, t: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """:meth:`forward` on the inputs of :attr:`input_names` found in ``t`` (the optional ones by keyword)."""
        base = [t[name] for name in FORWARD_INPUTS]
        return self(*base, **{name: t[name] for name in self.input_names[len(FORWARD_INPUTS) :]})

    def _calibrated(self, logit: Tensor, types: Tensor) -> Tensor:
        """Per-type calibration of logits; ``types`` broadcasts against ``logit``."""
        return logit * self.calib_scale[types] + self.calib_bias[types]

    def log_logits(self, b: dict[str, Tensor], calibrated: bool = True) -> Tensor:
        """Logits (B, K) of the items of logged pages at their own slots (the training path, uncalibrated)."""
        user = self.encode_user(b)
        slots, page_enc = self.encode_slots(b)
        items = self.encode_candidates(
            b["page_type"], b["page_category"], b["page_features"], user, enc=page_enc, context=b.get("context")
        )
        logit = self.pair_logits(items, b["page_type"], b["page_category"], slots)
        return self._calibrated(logit, b["page_type"]) if calibrated else logit

    def score_pairs(self, b: dict[str, Tensor], slots: Tensor) -> Tensor:
        """Score one (card, slot) pair per row, each row encoded on its own: logits (P,).

        ``b`` holds behaviour and page fields with a leading axis P, and the
        card as ``cand_type`` (P,), ``cand_category`` (P,), ``cand_features``
        (P, F); ``slots`` (P,) int. This is the per-pair reference the grid of
        :meth:`forward` must equal.
        """
        user = self.encode_user(b)
        state, _ = self.encode_slots(b, slots.unsqueeze(-1))  # (P, 1, ...)
        ctype, ccat = b["cand_type"].unsqueeze(-1), b["cand_category"].unsqueeze(-1)
        csparse = b.get("cand_sparse")
        cand = self.encode_candidates(
            ctype, ccat, b["cand_features"].unsqueeze(1), user,
            sparse=None if csparse is None else csparse.unsqueeze(1), context=b.get("context"),
        )  # fmt: skip
        return self._calibrated(self.pair_logits(cand, ctype, ccat, state), ctype).squeeze(-1)

    # ------------------------------------------------------------ fitted statistics
    def fit_scaling(self, log: FeedLog | LogShards) -> None:
        """Fit the statistics of ``log``'s live entries: the standardisation of item, action and context
        features, and the sparse columns' vocabulary (the buckets its IDs hit).

        A :class:`~mixrank.logs.LogShards` is read chunk by chunk. :func:`esan.training.train` calls
        this once, on the training log, unless the model is already fitted.
        """
        cfg = self.config
        sums: dict[str, list] = {}

        def add(name: str, values: np.ndarray) -> None:
            v = values.astype(np.float64)
            acc = sums.setdefault(name, [0.0, 0.0, 0])
            acc[0] = acc[0] + v.sum(0)
            acc[1] = acc[1] + (v**2).sum(0)
            acc[2] += v.shape[0]

        parts = log.chunks(128) if isinstance(log, LogShards) else [log]  # bounded memory
        for i, part in enumerate(parts):
            self.check_data(part)
            page_live = part.fields.get("page_mask", np.ones(part.page_type.shape, bool))
            add("items", part.page_features[page_live])
            if cfg.n_sparse:
                self.items.fit_vocabulary(part.page_sparse[page_live], reset=i == 0)
            for prefix in ("exp", "clk"):
                live = getattr(part, f"{prefix}_mask")[:, : cfg.max_seq_len]
                if cfg.use_behaviour:
                    add("items", getattr(part, f"{prefix}_features")[:, : cfg.max_seq_len][live])
                    add(prefix, getattr(part, f"{prefix}_action")[:, : cfg.max_seq_len][live])
                if cfg.n_sparse:
                    self.items.fit_vocabulary(getattr(part, f"{prefix}_sparse")[:, : cfg.max_seq_len][live], reset=False)
            if cfg.context_dim:
                add("context", part.context)
        targets = {"items": self.items.scaling}
        if cfg.use_behaviour:
            targets.update(exp=self.exp_seq.scaling, clk=self.clk_seq.scaling)
        if cfg.context_dim:
            targets["context"] = self.context_scaling
        for name, scaler in targets.items():
            if name in sums:
                scaler.fit_moments(*sums[name])
        self.fitted[0] = 1.0

    @torch.no_grad()
    def calibrate(self, log: FeedLog, batch_size: int = 512, prior_std: float = 1.0) -> dict[int, float]:
        """Fit a logit offset per item type so that predicted clicks match observed clicks on ``log``.

        ``log`` should be held out from training (e.g. the validation log).
        For each type, the offset ``b`` maximises the log-likelihood of the
        exposed items' clicks plus a Gaussian prior ``N(0, prior_std**2)``:
        ``sum (sigmoid(logit + b) - clicked) + b / prior_std**2 = 0`` (Newton's
        method on a monotone function). With many clicks this is
        ``sum sigmoid(logit + b) = sum clicked`` (predicted = observed, within
        ~1 % at a hundred clicks for an offset of 1); with few, the offset stays near 0
        instead of chasing noise.

        Returns
        -------
        dict
            The offset per type (organic = ``n_types``).
        """
        if not isinstance(log, FeedLog):
            raise InputError(f"log must be a mixrank.logs.FeedLog; got {type(log).__name__}")
        if isinstance(prior_std, bool) or not isinstance(prior_std, (int, float)) or not prior_std > 0:
            raise InputError(f"prior_std must be a number > 0; got {prior_std!r}")
        self.check_data(log)
        was_training = self.training
        self.eval()
        try:
            raw = np.concatenate(
                [
                    self.log_logits(self.inputs(log, slice(i, i + batch_size)), calibrated=False)
                    .double()
                    .cpu()
                    .numpy()
                    for i in range(0, len(log), batch_size)
                ]
            )
        finally:
            self.train(was_training)
        sel = log.exposed
        types, logits, clicks = log.page_type[sel].astype(np.int64), raw[sel], log.clicked[sel]
        offsets = {}
        for t in range(self.config.n_types + 1):
            x, y = logits[types == t], clicks[types == t]
            b = 0.0
            if y.size:
                for _ in range(50):
                    p = 0.5 * (1.0 + np.tanh(0.5 * (x + b)))  # the sigmoid, without overflow
                    step = (p.sum() - y.sum() + b / prior_std**2) / ((p * (1 - p)).sum() + 1 / prior_std**2)
                    b -= float(np.clip(step, -2.0, 2.0))
                    if abs(step) < 1e-10:
                        break
            offsets[t] = b
        self.calib_scale.fill_(1.0)
        self.calib_bias.copy_(torch.tensor([offsets[t] for t in range(self.config.n_types + 1)]))
        self.fitted[1] = 1.0
        return offsets

    # ------------------------------------------------------------ numpy face
    def n_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def check_data(self, data: FeedLog | Requests) -> None:
        """Raise :class:`InputError` unless ``data`` has the sizes this model was built for."""
        cfg = self.config
        if not isinstance(data, (FeedLog, Requests)):
            raise InputError(f"data must be a FeedLog or Requests; got {type(data).__name__}")
        d = data.dims
        want = {
            "n_types": (data.n_types, cfg.n_types),
            "n_categories": (data.n_categories, cfg.n_categories),
            "F (features)": (d["F"], cfg.n_features),
            "Ae (exposure actions)": (d["Ae"], cfg.exp_action_dim),
            "Ac (click actions)": (d["Ac"], cfg.clk_action_dim),
        }
        if cfg.use_dwell_filter and max(cfg.dwell_column, cfg.click_column) >= d["Ae"]:
            raise InputError(
                f"data Ae (exposure actions) must exceed dwell_column ({cfg.dwell_column}) and click_column "
                f"({cfg.click_column}) for the dwell filter; got {d['Ae']}"
            )
        if cfg.n_sparse:
            want["S (sparse columns)"] = (d.get("S", 0), cfg.n_sparse)
        if cfg.context_dim:
            want["D (context features)"] = (d.get("D", 0), cfg.context_dim)
        for name, (got, need) in want.items():
            if got != need:
                raise InputError(f"data {name} must be {need} for this model; got {got}")
        # sequences longer than max_seq_len are truncated (the most recent entries kept) by inputs()

    def _move(self, device: Any) -> None:
        if device is None:
            return
        try:
            self.to(torch.device(device))
        except (RuntimeError, TypeError) as exc:
            raise InputError(f"device must name a torch device (e.g. 'cpu', 'cuda'); got {device!r} ({exc})") from None

    @property
    def device(self) -> torch.device:
        """Where the model's weights are."""
        return self.calib_bias.device

    def inputs(self, data: FeedLog | Requests, index: Any = slice(None)) -> dict[str, Tensor]:
        """:meth:`tensors` for this model: on its device, sequences cut to ``max_seq_len`` (most recent
        kept), and all-True masks where the config takes masks that the record lacks."""
        t = self.tensors(data, index, device=self.device, max_seq_len=self.config.max_seq_len)
        if self.config.use_masks:
            ref = {"page_mask": t["page_type"], "cand_mask": t.get("cand_type")}
            for name, like in ref.items():
                if name not in t and like is not None:
                    t[name] = torch.ones_like(like, dtype=torch.bool)
        return t

    @staticmethod
    def tensors(
        data: FeedLog | Requests, index: Any = slice(None), device: Any = None, max_seq_len: int | None = None
    ) -> dict[str, Tensor]:
        """The record's fields (rows ``index``) as tensors of the dtypes the model takes, on ``device``.

        With ``max_seq_len``, the behaviour sequences keep their first (most recent) ``max_seq_len`` entries.
        """
        out = {}
        for name, arr in data.fields.items():
            a = arr[index]
            if max_seq_len is not None and name.startswith(("exp_", "clk_")):
                a = a[:, :max_seq_len]
            if name in _INT_FIELDS:
                a = a.astype(np.int64)
            elif name in _BOOL_FIELDS or a.dtype == np.bool_:
                a = np.array(a, dtype=np.bool_)
            else:
                a = np.array(a, dtype=np.float32)
            out[name] = torch.from_numpy(a)  # a fresh, writable copy
            if device is not None:
                out[name] = out[name].to(device)
        return out

    @torch.no_grad()
    def predict(self, requests: Requests, batch_size: int = 256, device: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Calibrated CTR matrices of serving requests, as float64 numpy arrays.

        ``device`` (e.g. ``"cuda"``) moves the model there first; the inputs
        always go to the model's device.

        Returns ``(card_ctr, organic_ctr)`` of shapes (R, N, K) and (R, K), or
        (N, K) and (K,) when ``requests`` holds one request.
        """
        if not isinstance(requests, Requests):
            raise InputError(f"requests must be a mixrank.logs.Requests; got {type(requests).__name__}")
        self.check_data(requests)
        self._move(device)
        was_training = self.training
        self.eval()
        cards, organics = [], []
        try:
            for start in range(0, len(requests), batch_size):
                c, o = self.call(self.inputs(requests, slice(start, start + batch_size)))
                cards.append(c.double().cpu().numpy())
                organics.append(o.double().cpu().numpy())
        finally:
            self.train(was_training)
        card, org = np.concatenate(cards), np.concatenate(organics)
        if len(requests) == 1:
            return card[0], org[0]
        return card, org

    @torch.no_grad()
    def predict_log(self, log: FeedLog, batch_size: int = 512, device: Any = None) -> np.ndarray:
        """Predicted (calibrated) click probability of every item of logged pages at its slot, (R, K)."""
        if not isinstance(log, FeedLog):
            raise InputError(f"log must be a mixrank.logs.FeedLog; got {type(log).__name__}")
        self.check_data(log)
        self._move(device)
        was_training = self.training
        self.eval()
        out = []
        try:
            for start in range(0, len(log), batch_size):
                batch = self.inputs(log, slice(start, start + batch_size))
                out.append(torch.sigmoid(self.log_logits(batch)).double().cpu().numpy())
        finally:
            self.train(was_training)
        return np.concatenate(out)
