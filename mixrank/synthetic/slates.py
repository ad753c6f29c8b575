"""List-wise ground truth for re-ranking: slate worlds that write ``ListLog`` and know every list's expected clicks.

A request is a user (context vector) and ``N`` candidate items (feature
matrix); the server shows an ordered list of ``K`` of them. The user scrolls
to a random depth (position ``s`` is reached with probability
``examination[s] = (1 + s / tau) ** -power``, a prefix, as in
:mod:`mixrank.synthetic.feed`) and clicks each reached item with
``sigmoid(logit[s])``, independently; so the exact expected clicks of a list
are ``sum_s examination[s] * sigmoid(logit[s])`` (:meth:`expected_clicks`).

Two worlds, with different item descriptions and list effects:

:class:`SlateEnv` (mirrors the click model of the feed, items described by features)
    ``logit = base + w . features + interest[user, category] + type_pref[user, type]``
    ``+ pos_slope[type] * depth(s)``
    ``- type_penalty[type] * sum_{d<=type_window} decay**(d-1) * #(same-type items at s +- d)``
    ``- category_penalty * sum_{d<=category_window} decay**(d-1) * #(same-category items at s +- d)``.
    Item features: the dense features, one-hot category, one-hot type; context:
    the user's interests and type tastes seen through noise.

:class:`PairSlateEnv` (items known only by one-hot IDs from a catalogue)
    ``logit = base + quality[i] + <user, embedding[i]> + pos_bias[s] * pos_sens[i]``
    ``+ sum_{d<=2} decay**(d-1) * (pair[i, j] for the items j at s +- d)``,
    with a sparse symmetric ``pair`` matrix (complements > 0, substitutes < 0).
    Context: the user's vector through noise, plus noise dimensions.

Logs are written under a randomised logging policy: per request, a
Plackett–Luce draw (Gumbel top-K) over a noisy item score with a random
temperature; a share of requests get uniformly random lists. So positions,
neighbours and items vary independently and the effects are learnable.

Examples
--------
>>> env = SlateEnv(SlateConfig(n_items=6, list_len=3))
>>> batch = env.sample(2, seed=0)
>>> batch.items.shape, batch.context.shape
((2, 6, 15), (2, 11))
>>> env.expected_clicks(batch, [[[0, 1, 2]], [[5, 4, 3]]]).shape
(2, 1)
>>> log = env.log(50, seed=1)
>>> len(log), log.list_len
(50, 3)
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from mixrank.errors import ProblemError
from mixrank.rerank.log import ListLog
from mixrank.synthetic.instances import examination

__all__ = [
    "SlateConfig", "SlateEnv", "PairSlateConfig", "PairSlateEnv", "SlateBatch", "all_lists",
    "behaviour_context", "feed_page_log", "feed_slates",
]

_CODE = 0x51A7E


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _check_config(cfg: Any) -> None:
    for f in fields(cfg):
        v = getattr(cfg, f.name)
        if isinstance(f.default, bool):
            continue
        if isinstance(f.default, int):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ProblemError(f"{type(cfg).__name__}.{f.name} must be an int >= 1; got {v!r}")
            object.__setattr__(cfg, f.name, int(v))
        elif isinstance(f.default, tuple):
            try:
                vals = tuple(float(x) for x in v)
            except (TypeError, ValueError):
                raise ProblemError(f"{type(cfg).__name__}.{f.name} must be a sequence of numbers; got {v!r}") from None
            if not vals or not all(math.isfinite(x) for x in vals):
                raise ProblemError(f"{type(cfg).__name__}.{f.name} must be non-empty and finite; got {v!r}")
            object.__setattr__(cfg, f.name, vals)
        else:
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not math.isfinite(v):
                raise ProblemError(f"{type(cfg).__name__}.{f.name} must be a finite number; got {v!r}")
            object.__setattr__(cfg, f.name, float(v))
    if cfg.list_len > cfg.n_items:
        raise ProblemError(f"{type(cfg).__name__}.list_len must be <= n_items ({cfg.n_items}); got {cfg.list_len}")
    if cfg.tau <= 0 or cfg.power <= 0:
        raise ProblemError(f"{type(cfg).__name__}.tau and power must be > 0")
    if not 0.0 <= cfg.random_share <= 1.0:
        raise ProblemError(f"{type(cfg).__name__}.random_share must be in [0, 1]; got {cfg.random_share}")


def _cycle(values: tuple[float, ...], n: int) -> np.ndarray:
    return np.array([values[i % len(values)] for i in range(n)], dtype=np.float64)


@dataclass(frozen=True)
class SlateBatch:
    """``R`` requests: what a server sees (``items``, ``context``) and the world's hidden state (``hidden``)."""

    items: np.ndarray  #: (R, N, F) float32
    context: np.ndarray  #: (R, C) float32
    hidden: dict[str, np.ndarray]  #: per-request hidden arrays, leading axis R

    def __len__(self) -> int:
        return self.items.shape[0]

    def __getitem__(self, index: Any) -> SlateBatch:
        if isinstance(index, (int, np.integer)):
            index = slice(int(index), int(index) + 1)
        return SlateBatch(self.items[index], self.context[index], {k: v[index] for k, v in self.hidden.items()})


def all_lists(n: int, k: int) -> np.ndarray:
    """Every ordered list of ``k`` distinct items out of ``n``, shape (n! / (n-k)!, k).

    >>> all_lists(4, 2).shape
    (12, 2)
    """
    return np.array(list(itertools.permutations(range(n), k)), dtype=np.int64).reshape(-1, k)


class _SlateWorld:
    """Shared machinery: examination, exact expected clicks, sampling clicks, the logging policy."""

    config: Any

    def __init__(self) -> None:
        cfg = self.config
        self.examination = examination(cfg.list_len, tau=cfg.tau, power=cfg.power)

    def _rng(self, seed: int, stream: int) -> np.random.Generator:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ProblemError(f"seed must be an int >= 0; got {seed!r}")
        return np.random.default_rng([_CODE, int(seed), stream])

    # subclasses: _draw(r, rng) -> SlateBatch; _logits(batch, lists (R, L, K)) -> (R, L, K); _static(batch) -> (R, N)
    def _check_lists(self, batch: SlateBatch, lists: Any) -> np.ndarray:
        if not isinstance(batch, SlateBatch):
            raise ProblemError(f"batch must be a SlateBatch (from sample); got {type(batch).__name__}")
        arr = np.asarray(lists)
        if arr.ndim == 2:
            arr = arr[:, None, :]
        if arr.ndim != 3 or arr.shape[0] != len(batch) or not np.issubdtype(arr.dtype, np.integer):
            raise ProblemError(f"lists must be ints of shape (R={len(batch)}, L, K) or (R, K); got {arr.shape} {arr.dtype}")
        n = batch.items.shape[1]
        if arr.size and (arr.min() < 0 or arr.max() >= n):
            raise ProblemError(f"lists must index candidates in [0, {n}); got values in [{arr.min()}, {arr.max()}]")
        if arr.shape[2] > self.config.list_len:
            raise ProblemError(f"lists must have at most K={self.config.list_len} positions; got {arr.shape[2]}")
        return arr.astype(np.int64)

    def ctr(self, batch: SlateBatch, lists: Any) -> np.ndarray:
        """True click probability given that the position is reached, (R, L, K)."""
        return _sigmoid(self._logits(batch, self._check_lists(batch, lists)))

    def expected_clicks(self, batch: SlateBatch, lists: Any) -> np.ndarray:
        """Exact expected clicks of each list, (R, L): ``sum_s examination[s] * ctr[s]``."""
        p = self.ctr(batch, lists)
        return p @ self.examination[: p.shape[2]]

    def optimum(self, batch: SlateBatch, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
        """The exhaustive optimum per request (small N, K only): ``(lists (R, K), expected clicks (R,))``."""
        cand = all_lists(batch.items.shape[1], self.config.list_len)
        best = np.full(len(batch), -np.inf)
        arg = np.zeros((len(batch), cand.shape[1]), np.int64)
        for a in range(0, len(cand), chunk):
            part = cand[a:a + chunk]
            v = self.expected_clicks(batch, np.broadcast_to(part, (len(batch), *part.shape)))
            i = v.argmax(axis=1)
            better = v[np.arange(len(batch)), i] > best
            best = np.where(better, v[np.arange(len(batch)), i], best)
            arg[better] = part[i[better]]
        return arg, best

    def sample(self, n_requests: int, seed: int = 0) -> SlateBatch:
        """Draw ``n_requests`` requests; a pure function of the seed."""
        if isinstance(n_requests, bool) or not isinstance(n_requests, (int, np.integer)) or n_requests < 1:
            raise ProblemError(f"n_requests must be an int >= 1; got {n_requests!r}")
        return self._draw(int(n_requests), self._rng(seed, 0))

    def logging_policy(self, batch: SlateBatch, rng: np.random.Generator) -> np.ndarray:
        """The randomised logging policy: Gumbel top-K on a noisy score / random temperature, (R, K)."""
        cfg = self.config
        r, n = batch.items.shape[:2]
        score = self._static(batch) + rng.normal(0.0, 0.5, size=(r, n))
        temp = np.exp(rng.uniform(np.log(0.3), np.log(3.0), size=(r, 1)))
        temp = np.where(rng.random((r, 1)) < cfg.random_share, np.inf, temp)
        key = score / temp + rng.gumbel(size=(r, n))
        return np.argsort(-key, axis=1)[:, : cfg.list_len]

    def log(self, n_requests: int, seed: int = 0) -> ListLog:
        """A list-wise log of ``n_requests`` requests under :meth:`logging_policy`, clicks sampled.

        The hidden truth rides along in ``extras['true_ctr']`` (R, K) and
        ``extras['true_clicks']`` (R,), for checks only.
        """
        batch = self.sample(n_requests, seed)
        rng = self._rng(seed, 1)
        shown = self.logging_policy(batch, rng)
        p = self.ctr(batch, shown)[:, 0]
        r, k = p.shape
        reached = rng.random((r, 1)) < self.examination[None, :k]
        clicks = reached & (rng.random((r, k)) < p)
        extras = {"true_ctr": p.astype(np.float32), "true_clicks": (p @ self.examination[:k]).astype(np.float32)}
        return ListLog(batch.items, shown, clicks, None, batch.context, extras)


# ---------------------------------------------------------------- the feed-like world
@dataclass(frozen=True)
class SlateConfig:
    """Settings of :class:`SlateEnv` (defaults: N 30, K 10); per-type tuples are cycled."""

    n_items: int = 30  #: N
    list_len: int = 10  #: K
    n_types: int = 3
    n_categories: int = 8
    n_features: int = 4
    tau: float = 6.0
    power: float = 0.7
    base_logit: tuple[float, ...] = (-1.3, -1.0, -1.2)
    feature_weights: tuple[float, ...] = (0.45, 0.3, -0.25, 0.15)
    interest_std: float = 0.7
    type_pref_std: float = 0.35
    context_noise: float = 0.25  #: noise on the observed interests
    pos_slope: tuple[float, ...] = (-0.4, 0.2, -0.1)
    type_penalty: tuple[float, ...] = (0.5, 0.35, 0.4)
    type_window: int = 2
    category_penalty: float = 0.45
    category_window: int = 2
    penalty_decay: float = 0.5
    random_share: float = 0.3  #: share of logged requests with uniformly random lists

    def __post_init__(self) -> None:
        _check_config(self)


class SlateEnv(_SlateWorld):
    """The feed's click model over ordered lists of featured items (see the module docstring).

    Examples
    --------
    >>> env = SlateEnv(SlateConfig(n_items=5, list_len=3))
    >>> b = env.sample(3, seed=2)
    >>> lists, best = env.optimum(b)
    >>> bool((env.expected_clicks(b, lists)[:, 0] == best).all())
    True
    """

    def __init__(self, config: SlateConfig | None = None) -> None:
        if config is None:
            config = SlateConfig()
        if not isinstance(config, SlateConfig):
            raise ProblemError(f"config must be a SlateConfig; got {type(config).__name__}")
        self.config = cfg = config
        t = cfg.n_types
        self.base = _cycle(cfg.base_logit, t)
        self.pos_slope = _cycle(cfg.pos_slope, t)
        self.type_penalty = _cycle(cfg.type_penalty, t)
        self.feature_weights = _cycle(cfg.feature_weights, cfg.n_features)
        super().__init__()

    def __repr__(self) -> str:
        return f"SlateEnv({self.config!r})"

    def _draw(self, r: int, rng: np.random.Generator) -> SlateBatch:
        cfg = self.config
        n, t, c = cfg.n_items, cfg.n_types, cfg.n_categories
        interest = rng.normal(0.0, cfg.interest_std, size=(r, c))
        type_pref = rng.normal(0.0, cfg.type_pref_std, size=(r, t))
        types = rng.integers(0, t, size=(r, n))
        cats = rng.integers(0, c, size=(r, n))
        feats = rng.standard_normal((r, n, cfg.n_features))
        items = np.concatenate([feats, np.eye(c)[cats], np.eye(t)[types]], axis=2).astype(np.float32)
        seen = np.concatenate([interest, type_pref], axis=1)
        context = (seen + rng.normal(0.0, cfg.context_noise, size=seen.shape)).astype(np.float32)
        hidden = {"interest": interest, "type_pref": type_pref, "types": types, "cats": cats, "feats": feats}
        return SlateBatch(items, context, hidden)

    def _static(self, batch: SlateBatch) -> np.ndarray:
        h = batch.hidden
        rows = np.arange(len(batch))[:, None]
        return (
            self.base[h["types"]]
            + h["feats"] @ self.feature_weights
            + h["interest"][rows, h["cats"]]
            + h["type_pref"][rows, h["types"]]
        )

    def _logits(self, batch: SlateBatch, lists: np.ndarray) -> np.ndarray:
        cfg = self.config
        r, _, k = lists.shape
        rows = np.arange(r)[:, None, None]
        types = batch.hidden["types"][rows, lists]
        cats = batch.hidden["cats"][rows, lists]
        logit = self._static(batch)[rows, lists]
        depth = np.log1p(np.arange(k)) / np.log1p(cfg.list_len) - 0.5
        logit = logit + self.pos_slope[types] * depth
        penalty = np.zeros(lists.shape)
        for d in range(1, max(cfg.type_window, cfg.category_window) + 1):
            if d >= k:
                break
            w = cfg.penalty_decay ** (d - 1)
            if d <= cfg.type_window:
                same = types[..., d:] == types[..., :-d]
                penalty[..., d:] += same * self.type_penalty[types[..., d:]] * w
                penalty[..., :-d] += same * self.type_penalty[types[..., :-d]] * w
            if d <= cfg.category_window:
                same = cats[..., d:] == cats[..., :-d]
                penalty[..., d:] += same * cfg.category_penalty * w
                penalty[..., :-d] += same * cfg.category_penalty * w
        return logit - penalty


# ---------------------------------------------------------------- the one-hot world
@dataclass(frozen=True)
class PairSlateConfig:
    """Settings of :class:`PairSlateEnv` (defaults: a catalogue of 60 items, N 30, K 10)."""

    n_items: int = 30  #: N per request, drawn from the catalogue
    list_len: int = 10  #: K
    catalogue: int = 60
    user_dim: int = 4
    noise_dims: int = 3  #: context dimensions that carry nothing
    tau: float = 5.0
    power: float = 0.8
    base_logit: float = -1.0
    quality_std: float = 0.6
    affinity_scale: float = 0.5
    pair_density: float = 0.08  #: share of item pairs with an effect
    pair_std: float = 0.9
    pair_decay: float = 0.5  #: weight of the effect at distance 2
    pos_sens_std: float = 0.6  #: how much an item's appeal depends on its position
    context_noise: float = 0.3
    world_seed: int = 7  #: draws the catalogue
    random_share: float = 0.3

    def __post_init__(self) -> None:
        _check_config(self)
        if self.n_items > self.catalogue:
            raise ProblemError(f"PairSlateConfig.n_items must be <= catalogue ({self.catalogue}); got {self.n_items}")


class PairSlateEnv(_SlateWorld):
    """Items known by one-hot IDs; pairwise neighbour effects; per-item position sensitivity.

    Examples
    --------
    >>> env = PairSlateEnv(PairSlateConfig(n_items=5, list_len=3, catalogue=8))
    >>> b = env.sample(2, seed=0)
    >>> b.items.shape, b.context.shape
    ((2, 5, 8), (2, 7))
    """

    def __init__(self, config: PairSlateConfig | None = None) -> None:
        if config is None:
            config = PairSlateConfig()
        if not isinstance(config, PairSlateConfig):
            raise ProblemError(f"config must be a PairSlateConfig; got {type(config).__name__}")
        self.config = cfg = config
        rng = np.random.default_rng([_CODE, cfg.world_seed, 99])
        m = cfg.catalogue
        self.quality = rng.normal(0.0, cfg.quality_std, size=m)
        self.embedding = rng.normal(0.0, 1.0, size=(m, cfg.user_dim))
        pair = np.where(rng.random((m, m)) < cfg.pair_density, rng.normal(0.0, cfg.pair_std, size=(m, m)), 0.0)
        self.pair = np.triu(pair, 1) + np.triu(pair, 1).T
        self.pos_sens = rng.normal(0.0, cfg.pos_sens_std, size=m)
        self.popularity = rng.dirichlet(np.full(m, 2.0))
        super().__init__()

    def __repr__(self) -> str:
        return f"PairSlateEnv({self.config!r})"

    def _draw(self, r: int, rng: np.random.Generator) -> SlateBatch:
        cfg = self.config
        ids = np.stack([rng.choice(cfg.catalogue, cfg.n_items, replace=False, p=self.popularity) for _ in range(r)])
        user = rng.normal(0.0, 1.0, size=(r, cfg.user_dim))
        items = np.eye(cfg.catalogue, dtype=np.float32)[ids]
        seen = user + rng.normal(0.0, cfg.context_noise, size=user.shape)
        context = np.concatenate([seen, rng.normal(0.0, 1.0, size=(r, cfg.noise_dims))], axis=1).astype(np.float32)
        return SlateBatch(items, context, {"ids": ids, "user": user})

    def _static(self, batch: SlateBatch) -> np.ndarray:
        ids, user = batch.hidden["ids"], batch.hidden["user"]
        aff = np.einsum("rnd,rd->rn", self.embedding[ids], user) * self.config.affinity_scale
        return self.config.base_logit + self.quality[ids] + aff

    def _logits(self, batch: SlateBatch, lists: np.ndarray) -> np.ndarray:
        cfg = self.config
        r, _, k = lists.shape
        rows = np.arange(r)[:, None, None]
        ids = batch.hidden["ids"][rows, lists]
        logit = self._static(batch)[rows, lists]
        pos = -np.log1p(np.arange(k)) / np.log1p(cfg.list_len)  # later positions: less appeal for sensitive items
        logit = logit + self.pos_sens[ids] * pos
        for d, w in ((1, 1.0), (2, cfg.pair_decay)):
            if d >= k:
                break
            eff = self.pair[ids[..., d:], ids[..., :-d]] * w
            logit[..., d:] += eff
            logit[..., :-d] += eff
        return logit


# ---------------------------------------------------------------- feed pages as slates
def _onehot(x: np.ndarray, n: int) -> np.ndarray:
    return np.eye(n, dtype=np.float32)[x.astype(np.int64)]


def behaviour_context(records: Any, exposure_decay: float = 0.9, click_decay: float = 0.8) -> np.ndarray:
    """A context vector per request from ESAN-style behaviour sequences, (R, 2 (T + 1) + 2 C).

    Recency-weighted counts of recent exposures by type and of recent clicks
    by category, and the mean first action feature (e.g. log dwell) of recent
    exposures by type and by category. ``records``: an ``esan.data.FeedLog`` or
    ``Requests`` (any object with the behaviour arrays and ``n_types``, ``n_categories``).
    """
    t1, c = records.n_types + 1, records.n_categories
    le, lc = records.exp_type.shape[1], records.clk_type.shape[1]
    w_exp = records.exp_mask * exposure_decay ** np.arange(le)
    w_clk = records.clk_mask * click_decay ** np.arange(lc)
    exp_t, exp_c = _onehot(records.exp_type, t1), _onehot(records.exp_category, c)
    seen_t = np.einsum("rl,rlt->rt", w_exp, exp_t)
    clicked_c = np.einsum("rl,rlc->rc", w_clk, _onehot(records.clk_category, c))
    dwell = records.exp_action[..., 0] * records.exp_mask
    mean_t = np.einsum("rl,rlt->rt", dwell, exp_t) / np.maximum(np.einsum("rl,rlt->rt", records.exp_mask, exp_t), 1)
    mean_c = np.einsum("rl,rlc->rc", dwell, exp_c) / np.maximum(np.einsum("rl,rlc->rc", records.exp_mask, exp_c), 1)
    return np.concatenate([seen_t, clicked_c, mean_t, mean_c], axis=1).astype(np.float32)


def _item_features(types: np.ndarray, cats: np.ndarray, feats: np.ndarray, t1: int, c: int) -> np.ndarray:
    return np.concatenate([_onehot(types, t1), _onehot(cats, c), feats.astype(np.float32)], axis=-1)


def feed_page_log(log: Any) -> ListLog:
    """A feed log (``esan.data.FeedLog``) as a ``ListLog``: each shown page is a list of its K items in order.

    Items: one-hot type (organic last), one-hot category, features; context:
    :func:`behaviour_context`. See :mod:`mixrank.rerank.pages` for plans as lists.
    """
    t1, c = log.n_types + 1, log.n_categories
    items = _item_features(log.page_type, log.page_category, log.page_features, t1, c)
    r, k = log.page_type.shape
    return ListLog(items, np.broadcast_to(np.arange(k), (r, k)), log.clicked, None, behaviour_context(log))


def feed_slates(requests: Any) -> tuple[np.ndarray, np.ndarray]:
    """The candidates of mixing requests (``esan.data.Requests``) as slates: (items (R, K + N, F), context (R, C)).

    Items ``0 .. K-1`` are the organic page's items, ``K ..`` the cards, in the
    layout of :func:`feed_page_log` (so an evaluator trained there scores them).
    """
    t1, c = requests.n_types + 1, requests.n_categories
    organic = _item_features(requests.page_type, requests.page_category, requests.page_features, t1, c)
    cards = _item_features(requests.cand_type, requests.cand_category, requests.cand_features, t1, c)
    return np.concatenate([organic, cards], axis=1), behaviour_context(requests)
