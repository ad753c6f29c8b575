"""A ground-truth feed environment: users, organic items, cards, clicks and logs (SPEC §4).

Everything is vectorised over requests and seeded. One request is a user with
latent interests, the user's recent behaviour, an organic page of ``K`` slots
and ``N`` candidate cards. The environment knows the truth, so it can give the
exact expected clicks of any page (the *oracle*), sample clicks, and write
training logs in the array schema of :mod:`mixrank.logs`.

The click model
---------------
A user scrolls to a random depth: slot ``s`` is exposed with probability
``examination(K)[s]`` (exposure is a prefix of the page, so
``P(exposed s) = (1 + s / tau) ** -power``), and an exposed item is clicked
with probability ``sigmoid(logit)``, independently of the other clicks, where

``logit = base[type] + w . features + interest[user, category] + type_pref[user, type]``
``      + pos_slope[type] * depth(s)``
``      - type_penalty[type] * sum_{d=1..type_window} decay**(d-1) * #(same-type cards at s +- d)``  (cards only)
``      - category_penalty * sum_{d=1..category_window} decay**(d-1) * #(same-category items at s +- d)``
``      - fatigue[type] * sum_j fatigue_decay**j * [exposure j had this type]``  (cards only)
``      + boost * sum_j boost_decay**j * [click j had this category]``

with ``depth(s) = log1p(s) / log1p(n_slots) - 0.5`` and ``j`` the recency
index in the behaviour sequences (0 = latest). With ``intent_fade`` > 0 (off in
the default world), the user's short-term intent fades as they scroll: the last
two terms (fatigue and boost) are multiplied by
``fade(s) = 1 - intent_fade * s / (s + intent_reach)`` (1 at the top of the
page, ``1 - intent_fade / 2`` at slot ``intent_reach``), so a card that matches
a fresh interest belongs high and one the user is tired of belongs lower.

So the expected clicks of a page are ``sum_s examination[s] * sigmoid(logit[s])``
exactly (:meth:`FeedEnv.expected_clicks`).

Behaviour comes from ``history_len`` earlier exposures (a feed with a
``card_share`` of cards), clicked by the same model without page effects. The
exposure sequence holds the latest ``exposure_len`` of them with action features
(log dwell time, scroll speed, clicked); the click sequence the latest
``click_len`` clicks with (log dwell on the detail page, how long ago). Dwell
times reveal the hidden interests, with noise ``dwell_noise``.

A second world (:meth:`FeedConfig.second_world`), which ESAN was not shaped
after, adds a feature-based, non-linear neighbour effect of wider reach, far
noisier dwell times, and behaviour that changes within a page (satiation: each
earlier item of the same category lowers the logit; fading intent: the recent
behaviour's pull weakens with depth); its options are off by default, so the
default world is unchanged.

The logging policy (:func:`random_policy`) inserts a random subset of the
candidates at random slots (density drawn per request from ``log_density``),
so that positions, neighbours and types vary independently in the logs.

Examples
--------
>>> from mixrank.synthetic import FeedEnv, FeedConfig
>>> env = FeedEnv(FeedConfig(n_slots=10, n_cards=5))
>>> batch = env.sample(4, seed=0)
>>> card_ctr, organic_ctr = env.ctr_matrix(batch)
>>> card_ctr.shape, organic_ctr.shape
((4, 5, 10), (4, 10))
>>> log = env.log(100, seed=1)
>>> log.n_impressions > 0 and bool(log.clicked.any())
True
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, NamedTuple

import numpy as np

from mixrank.errors import ProblemError
from mixrank.logs import FeedLog, Page, Requests
from mixrank.synthetic.instances import examination

__all__ = ["FeedConfig", "FeedEnv", "FeedBatch", "Users", "random_policy"]

_CODE = 0xFEED  # seeds this module's random streams

#: How the logged actions reveal the user's taste (taste = interest[category] + type_pref[type]):
#: exposure dwell = DWELL_TASTE * taste + DWELL_QUALITY * quality + noise(dwell_noise);
#: scroll speed = SCROLL_TASTE * taste + noise(1); detail-page dwell of a click = taste + noise(dwell_noise).
DWELL_TASTE, DWELL_QUALITY, SCROLL_TASTE = 0.8, 0.3, -0.4


def _cycle(values: tuple[float, ...], n: int) -> np.ndarray:
    return np.array([values[i % len(values)] for i in range(n)], dtype=np.float64)


@dataclass(frozen=True)
class FeedConfig:
    """Settings of the synthetic feed; the defaults make a ``device``-sized feed (N 30, K 50, T 3).

    Per-type tuples are cycled when ``n_types`` is larger than the tuple.

    Examples
    --------
    >>> FeedConfig(n_slots=20).n_slots
    20
    >>> FeedConfig(n_slots=0)
    Traceback (most recent call last):
    ...
    mixrank.errors.ProblemError: FeedConfig.n_slots must be an int >= 1; got 0
    """

    n_types: int = 3  #: card types; organic items are type ``n_types``
    n_categories: int = 8
    n_features: int = 4
    n_slots: int = 50  #: K
    n_cards: int = 30  #: N, candidates per request
    exposure_len: int = 50  #: Le
    click_len: int = 10  #: Lc
    history_len: int = 200  #: earlier exposures the sequences are drawn from
    tau: float = 6.0  #: examination curve (see :func:`mixrank.synthetic.examination`)
    power: float = 0.7
    gains: tuple[float, ...] = (1.6, 1.0, 1.25)  #: value of a click per card type (organic: 1)
    base_logit: tuple[float, ...] = (-3.0, -2.5, -2.8)  #: per card type
    organic_logit: float = -2.7
    feature_weights: tuple[float, ...] = (0.45, 0.3, -0.25, 0.15)
    interest_std: float = 0.6  #: users' taste per category
    type_pref_std: float = 0.35  #: users' taste per type (organic included)
    pos_slope: tuple[float, ...] = (-0.4, 0.2, -0.1)  #: per card type
    organic_pos_slope: float = -0.2
    type_penalty: tuple[float, ...] = (0.7, 0.5, 0.6)  #: same-type neighbour, per card type
    type_window: int = 3
    category_penalty: float = 0.35  #: same-category neighbour, any item
    category_window: int = 2
    penalty_decay: float = 0.5
    fatigue: tuple[float, ...] = (0.12, 0.08, 0.1)  #: per recent same-type exposure, per card type
    fatigue_decay: float = 0.9
    boost: float = 0.3  #: per recent same-category click
    boost_decay: float = 0.8
    card_share: float = 0.3  #: share of cards among the earlier exposures
    dwell_noise: float = 0.3
    log_density: tuple[float, float] = (0.05, 0.35)  #: logging policy: range of the share of slots given to cards
    # ---- the second world's effects (all off by default; see FeedConfig.second_world)
    feature_penalty: float = 0.0  #: amplitude of the feature-based, non-linear neighbour effect
    feature_reach: int = 6  #: slots on each side that the feature-based effect reaches
    feature_decay: float = 0.75  #: its weight falls by this factor per slot of distance
    page_satiation: float = 0.0  #: per earlier same-category item on the page (the user tires while scrolling)
    satiation_decay: float = 0.9  #: its weight falls by this factor per slot of distance
    intent_fade: float = 0.0  #: share of the behaviour terms (fatigue, boost) faded deep in the page
    intent_reach: float = 6.0  #: slot at which half of ``intent_fade`` has faded

    @classmethod
    def second_world(cls, **overrides: Any) -> FeedConfig:
        """A world ESAN was not shaped after: the defaults plus these changes (``overrides`` on top).

        * neighbour effects are feature-based and non-linear, with a wider reach
          (``feature_penalty`` 0.4 over ``feature_reach`` 6 slots on each side):
          each item has a hidden 2-d style ``z = tanh(P x)`` of its features,
          and a neighbour at distance d shifts the logit by
          ``-feature_penalty * feature_decay**(d-1) * g(z_i, z_j)``, with
          ``g = relu(z_i . z_j)**2 + 0.5 * sigmoid(3 z_j[1]) - 0.6`` (similar
          styles clash; an eye-catching neighbour steals attention);
        * the same-type and same-category penalties are weaker (0.25, 0.1);
        * dwell times are far noisier (``dwell_noise`` 1.0 instead of 0.3);
        * behaviour changes within a page: each earlier item of the same
          category on the page lowers the logit by ``page_satiation`` 0.15,
          decaying by 0.9 per slot; and short-term intent is stronger but
          fades as the user scrolls: ``boost`` 0.6 and ``fatigue`` twice the
          default's, multiplied by ``fade(s) = 1 - 0.9 * s / (s + 10)``
          (``intent_fade`` 0.9, ``intent_reach`` 10).

        Examples
        --------
        >>> cfg = FeedConfig.second_world(n_slots=20)
        >>> cfg.feature_penalty, cfg.dwell_noise, cfg.n_slots
        (0.4, 1.0, 20)
        """
        options: dict[str, Any] = {
            "feature_penalty": 0.4,
            "feature_reach": 6,
            "type_penalty": (0.25, 0.2, 0.25),
            "category_penalty": 0.1,
            "dwell_noise": 1.0,
            "page_satiation": 0.15,
            "boost": 0.6,
            "fatigue": (0.24, 0.16, 0.2),
            "intent_fade": 0.9,
            "intent_reach": 10.0,
        }
        options.update(overrides)
        return cls(**options)

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if f.type == "int" or isinstance(f.default, int):
                if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                    raise ProblemError(f"FeedConfig.{f.name} must be an int >= 1; got {v!r}")
                object.__setattr__(self, f.name, int(v))
            elif isinstance(f.default, tuple):
                try:
                    vals = tuple(float(x) for x in v)
                except (TypeError, ValueError):
                    raise ProblemError(f"FeedConfig.{f.name} must be a sequence of numbers; got {v!r}") from None
                if not vals or not all(math.isfinite(x) for x in vals):
                    raise ProblemError(f"FeedConfig.{f.name} must be a non-empty sequence of finite numbers; got {v!r}")
                object.__setattr__(self, f.name, vals)
            else:
                if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not math.isfinite(v):
                    raise ProblemError(f"FeedConfig.{f.name} must be a finite number; got {v!r}")
                object.__setattr__(self, f.name, float(v))
        for name in ("tau", "power"):
            if getattr(self, name) <= 0:
                raise ProblemError(f"FeedConfig.{name} must be > 0; got {getattr(self, name)}")
        if self.feature_penalty < 0 or self.page_satiation < 0:
            raise ProblemError("FeedConfig.feature_penalty and page_satiation must be >= 0")
        if self.intent_reach <= 0:
            raise ProblemError(f"FeedConfig.intent_reach must be > 0; got {self.intent_reach}")
        names = ("card_share", "penalty_decay", "fatigue_decay", "boost_decay", "feature_decay", "satiation_decay")
        for name in (*names, "intent_fade"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ProblemError(f"FeedConfig.{name} must be in [0, 1]; got {getattr(self, name)}")
        lo_hi = self.log_density
        if len(lo_hi) != 2 or not 0.0 <= lo_hi[0] <= lo_hi[1] <= 1.0:
            raise ProblemError(f"FeedConfig.log_density must be (lo, hi) with 0 <= lo <= hi <= 1; got {lo_hi!r}")
        if self.interest_std < 0 or self.type_pref_std < 0 or self.dwell_noise < 0:
            raise ProblemError("FeedConfig.interest_std, type_pref_std and dwell_noise must be >= 0")
        if self.exposure_len > self.history_len:
            raise ProblemError(
                f"FeedConfig.exposure_len must be <= history_len ({self.history_len}); got {self.exposure_len}"
            )


class Users(NamedTuple):
    """The hidden state of ``R`` users (one per request)."""

    interest: np.ndarray  #: (R, C) taste per category
    type_pref: np.ndarray  #: (R, T + 1) taste per type, organic last


@dataclass(frozen=True)
class FeedBatch:
    """``R`` synthetic requests: what a server sees (``requests``) and the hidden truth (``users``)."""

    requests: Requests
    users: Users

    def __len__(self) -> int:
        return len(self.requests)

    def __getitem__(self, index: Any) -> FeedBatch:
        if isinstance(index, (int, np.integer)) and not isinstance(index, bool):
            n, i = len(self), int(index)
            if not -n <= i < n:
                raise IndexError(f"FeedBatch index out of range: {i} (the batch holds {n} requests)")
            index = slice(i % n, i % n + 1)
        return FeedBatch(self.requests[index], Users(self.users.interest[index], self.users.type_pref[index]))


def random_policy(requests: Requests, rng: np.random.Generator, density: tuple[float, float] = (0.05, 0.35)) -> np.ndarray:
    """The randomised logging policy: a random subset of candidates at random slots.

    Each request draws a density in ``density``; each slot then holds a card
    with that probability, and the cards are a random sample of the candidates
    (no rules are kept, so neighbours of every kind appear in the logs).

    Returns
    -------
    ndarray (R, K) of int
        Candidate index per slot, -1 for the organic item.

    Examples
    --------
    >>> import numpy as np
    >>> from mixrank.synthetic import FeedEnv, FeedConfig
    >>> req = FeedEnv(FeedConfig(n_slots=12, n_cards=4)).sample(3, seed=0).requests
    >>> a = random_policy(req, np.random.default_rng(0), density=(0.5, 0.5))
    >>> a.shape, bool(((a >= -1) & (a < 4)).all())
    ((3, 12), True)
    """
    r, k, n = len(requests), requests.dims["K"], requests.dims["N"]
    dens = rng.uniform(density[0], density[1], size=(r, 1))
    ins = rng.random((r, k)) < dens
    rank = np.cumsum(ins, axis=1) - 1
    ins &= rank < n
    perm = np.argsort(rng.random((r, n)), axis=1)
    pick = perm[np.arange(r)[:, None], np.clip(rank, 0, n - 1)]
    return np.where(ins, pick, -1).astype(np.int64)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class FeedEnv:
    """The feed environment: draws requests, knows their true click probabilities, writes logs.

    Parameters
    ----------
    config : FeedConfig, optional
        The world's settings (defaults: ``FeedConfig()``).

    Examples
    --------
    >>> env = FeedEnv(FeedConfig(n_slots=10, n_cards=5))
    >>> batch = env.sample(2, seed=3)
    >>> page = batch.requests.compose([[0, -1, -1, 1, -1, -1, -1, -1, -1, -1]] * 2)
    >>> env.expected_clicks(batch, page).shape
    (2,)
    """

    def __init__(self, config: FeedConfig | None = None) -> None:
        if config is None:
            config = FeedConfig()
        if not isinstance(config, FeedConfig):
            raise ProblemError(f"config must be a FeedConfig; got {type(config).__name__}")
        self.config = cfg = config
        t = cfg.n_types
        self.n_types, self.n_categories, self.n_slots = t, cfg.n_categories, cfg.n_slots
        #: per type, organic last
        self.base = np.append(_cycle(cfg.base_logit, t), cfg.organic_logit)
        self.gains = np.append(_cycle(cfg.gains, t), 1.0)
        self.pos_slope = np.append(_cycle(cfg.pos_slope, t), cfg.organic_pos_slope)
        self.type_penalty = np.append(_cycle(cfg.type_penalty, t), 0.0)
        self.fatigue = np.append(_cycle(cfg.fatigue, t), 0.0)
        self.feature_weights = _cycle(cfg.feature_weights, cfg.n_features)
        self.examination = examination(cfg.n_slots, tau=cfg.tau, power=cfg.power)
        #: the hidden style projection of the second world's neighbour effect (fixed per config)
        self.style = np.random.default_rng([_CODE, 5]).normal(0.0, 1.0, size=(cfg.n_features, 2))

    def __repr__(self) -> str:
        return f"FeedEnv({self.config!r})"

    # ------------------------------------------------------------ drawing
    def _rng(self, seed: int, stream: int) -> np.random.Generator:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ProblemError(f"seed must be an int >= 0; got {seed!r}")
        return np.random.default_rng([_CODE, int(seed), stream])

    def _items(self, rng: np.random.Generator, shape: tuple[int, ...], types: np.ndarray) -> tuple:
        cat = rng.integers(0, self.n_categories, size=shape).astype(np.int16)
        feat = rng.standard_normal((*shape, self.config.n_features)).astype(np.float32)
        return types.astype(np.int16), cat, feat

    def _static_logit(self, users: Users, types: np.ndarray, cats: np.ndarray, feats: np.ndarray) -> np.ndarray:
        """Logit without page effects, for items of shape (R, M)."""
        r = np.arange(types.shape[0])[:, None]
        return (
            self.base[types]
            + feats.astype(np.float64) @ self.feature_weights
            + users.interest[r, cats]
            + users.type_pref[r, types]
        )

    def sample(self, n_requests: int, seed: int = 0) -> FeedBatch:
        """Draw ``n_requests`` requests (users, behaviour, organic pages, candidates); a pure function of the seed.

        Examples
        --------
        >>> env = FeedEnv(FeedConfig(n_slots=6, n_cards=3))
        >>> b = env.sample(5, seed=1)
        >>> len(b), b.requests.dims["K"], b.requests.dims["N"]
        (5, 6, 3)
        >>> b.requests == env.sample(5, seed=1).requests
        True
        """
        if isinstance(n_requests, bool) or not isinstance(n_requests, (int, np.integer)) or n_requests < 1:
            raise ProblemError(f"n_requests must be an int >= 1; got {n_requests!r}")
        cfg, t = self.config, self.n_types
        rng = self._rng(seed, 0)
        r = int(n_requests)
        users = Users(
            interest=rng.normal(0.0, cfg.interest_std, size=(r, cfg.n_categories)),
            type_pref=rng.normal(0.0, cfg.type_pref_std, size=(r, t + 1)),
        )
        behaviour = self._behaviour(users, rng)
        org = self._items(rng, (r, cfg.n_slots), np.full((r, cfg.n_slots), t))
        cand = self._items(rng, (r, cfg.n_cards), rng.integers(0, t, size=(r, cfg.n_cards)))
        req = Requests(
            t,
            self.n_categories,
            **behaviour,
            page_type=org[0],
            page_category=org[1],
            page_features=org[2],
            cand_type=cand[0],
            cand_category=cand[1],
            cand_features=cand[2],
        )
        return FeedBatch(req, users)

    def _behaviour(self, users: Users, rng: np.random.Generator) -> dict[str, np.ndarray]:
        cfg, t = self.config, self.n_types
        r, h, le, lc = users.interest.shape[0], cfg.history_len, cfg.exposure_len, cfg.click_len
        is_card = rng.random((r, h)) < cfg.card_share
        types = np.where(is_card, rng.integers(0, t, size=(r, h)), t)
        types, cats, feats = self._items(rng, (r, h), types)
        # newest first: index 0 is the latest exposure
        types, cats, feats = types[:, ::-1], cats[:, ::-1], feats[:, ::-1]
        rows = np.arange(r)[:, None]
        taste = users.interest[rows, cats] + users.type_pref[rows, types]
        quality = feats.astype(np.float64) @ self.feature_weights
        clicked = rng.random((r, h)) < _sigmoid(self.base[types] + quality + taste)
        noise = cfg.dwell_noise
        dwell = DWELL_TASTE * taste + DWELL_QUALITY * quality + rng.normal(0.0, noise, size=(r, h))
        scroll = SCROLL_TASTE * taste + rng.normal(0.0, 1.0, size=(r, h))
        exp_action = np.stack([dwell, scroll, clicked.astype(np.float64)], axis=-1)[:, :le]
        # the click sequence: the latest click_len clicked entries, newest first
        key = np.where(clicked, 0, h) + np.arange(h)[None, :]
        order = np.argsort(key, axis=1, kind="stable")[:, :lc]
        if order.shape[1] < lc:  # history shorter than the click sequence: pad
            order = np.pad(order, ((0, 0), (0, lc - order.shape[1])), constant_values=0)
            valid = np.zeros((r, lc), bool)
            valid[:, : min(lc, h)] = clicked[rows, order[:, : min(lc, h)]]
        else:
            valid = clicked[rows, order]
        detail = taste[rows, order] + rng.normal(0.0, noise, size=(r, lc))
        ago = order / h
        clk_action = np.where(valid[..., None], np.stack([detail, ago], axis=-1), 0.0)
        return {
            "exp_type": types[:, :le],
            "exp_category": cats[:, :le],
            "exp_features": feats[:, :le],
            "exp_action": exp_action.astype(np.float32),
            "exp_mask": np.ones((r, le), bool),
            "clk_type": np.where(valid, types[rows, order], 0),
            "clk_category": np.where(valid, cats[rows, order], 0),
            "clk_features": np.where(valid[..., None], feats[rows, order], 0.0).astype(np.float32),
            "clk_action": clk_action.astype(np.float32),
            "clk_mask": valid,
        }

    # ------------------------------------------------------------ truth
    def _realtime(self, req: Requests) -> tuple[np.ndarray, np.ndarray]:
        """Fatigue per type (R, T + 1) and boost per category (R, C) from the behaviour sequences."""
        cfg = self.config
        r = len(req)
        le, lc = req.dims["Le"], req.dims["Lc"]
        rows = np.arange(r)[:, None]
        w_exp = np.where(req.exp_mask, cfg.fatigue_decay ** np.arange(le), 0.0)
        fat = np.zeros((r, self.n_types + 1))
        np.add.at(fat, (np.broadcast_to(rows, (r, le)), req.exp_type.astype(np.int64)), w_exp)
        w_clk = np.where(req.clk_mask, cfg.boost_decay ** np.arange(lc), 0.0)
        bst = np.zeros((r, self.n_categories))
        np.add.at(bst, (np.broadcast_to(rows, (r, lc)), req.clk_category.astype(np.int64)), w_clk)
        return fat, bst

    def _fade(self, k: int) -> np.ndarray:
        """How much of the behaviour terms is left at each of ``k`` slots (K,): ``1 - intent_fade * s / (s + reach)``."""
        s = np.arange(k, dtype=np.float64)
        return 1.0 - self.config.intent_fade * s / (s + self.config.intent_reach)

    def _depth(self, k: int) -> np.ndarray:
        return np.log1p(np.arange(k)) / np.log1p(self.config.n_slots) - 0.5

    def _check_page(self, batch: FeedBatch, page: Page) -> Page:
        if not isinstance(batch, FeedBatch):
            raise ProblemError(f"batch must be a FeedBatch (from FeedEnv.sample); got {type(batch).__name__}")
        if not isinstance(page, Page):
            raise ProblemError(f"page must be an mixrank.logs.Page (e.g. from Requests.compose); got {type(page).__name__}")
        want = (len(batch), batch.requests.dims["K"])
        if page.type.shape != want or page.category.shape != want or page.features.shape[:2] != want:
            raise ProblemError(f"page arrays must have shape {want} (R, K); got {page.type.shape}")
        return page

    def ctr(self, batch: FeedBatch, page: Page) -> np.ndarray:
        """True click probability given exposure of every item on each page, (R, K).

        Examples
        --------
        >>> env = FeedEnv(FeedConfig(n_slots=8, n_cards=4))
        >>> b = env.sample(3, seed=0)
        >>> p = env.ctr(b, b.requests.organic)
        >>> p.shape, bool(((p > 0) & (p < 1)).all())
        ((3, 8), True)
        """
        page = self._check_page(batch, page)
        cfg, t = self.config, self.n_types
        types = page.type.astype(np.int64)
        cats = page.category.astype(np.int64)
        r, k = types.shape
        logit = self._static_logit(batch.users, types, cats, page.features)
        logit += self.pos_slope[types] * self._depth(k)[None, :]
        penalty = np.zeros((r, k))
        is_card = types < t
        for d in range(1, max(cfg.type_window, cfg.category_window) + 1):
            if d >= k:
                break
            w = cfg.penalty_decay ** (d - 1)
            if d <= cfg.type_window:
                same = (types[:, d:] == types[:, :-d]) & is_card[:, d:]
                pen = same * self.type_penalty[types[:, d:]] * w
                penalty[:, d:] += pen
                penalty[:, :-d] += pen
            if d <= cfg.category_window:
                same = cats[:, d:] == cats[:, :-d]
                penalty[:, d:] += same * cfg.category_penalty * w
                penalty[:, :-d] += same * cfg.category_penalty * w
        if cfg.feature_penalty > 0:
            penalty += self._feature_penalty(page.features)
        if cfg.page_satiation > 0:
            penalty += self._satiation(cats)
        fat, bst = self._realtime(batch.requests)
        rows = np.arange(r)[:, None]
        rt = -self.fatigue[types] * fat[rows, types] + cfg.boost * bst[rows, cats]  # (R, K)
        logit += -penalty + rt * self._fade(k)[None, :]
        return _sigmoid(logit)

    # ------------------------------------------------------------ the second world's effects
    def _styles(self, feats: np.ndarray) -> np.ndarray:
        return np.tanh(feats.astype(np.float64) @ self.style)

    @staticmethod
    def _clash(z_item: np.ndarray, z_nb: np.ndarray) -> np.ndarray:
        """g(z_i, z_j) of the module docstring, broadcasting over leading axes."""
        sim = np.maximum((z_item * z_nb).sum(-1), 0.0)
        return sim**2 + 0.5 * _sigmoid(3.0 * z_nb[..., 1]) - 0.6  # about mean-zero over random pairs

    def _feature_penalty(self, feats: np.ndarray) -> np.ndarray:
        """The feature-based neighbour penalty of every item of pages (R, K, F) -> (R, K)."""
        cfg = self.config
        z = self._styles(feats)
        k = z.shape[1]
        pen = np.zeros(z.shape[:2])
        for d in range(1, min(cfg.feature_reach, k - 1) + 1):
            w = cfg.feature_penalty * cfg.feature_decay ** (d - 1)
            pen[:, d:] += w * self._clash(z[:, d:], z[:, :-d])  # the neighbour above
            pen[:, :-d] += w * self._clash(z[:, :-d], z[:, d:])  # the neighbour below
        return pen

    def _satiation(self, cats: np.ndarray) -> np.ndarray:
        """Penalty (R, K) from the earlier items of the same category on each page (R, K)."""
        cfg = self.config
        r, k = cats.shape
        rows = np.arange(r)
        state = np.zeros((r, self.n_categories))  # decayed count of each category seen so far
        out = np.zeros((r, k))
        for s in range(k):
            out[:, s] = state[rows, cats[:, s]]
            state *= cfg.satiation_decay
            state[rows, cats[:, s]] += 1.0
        return cfg.page_satiation * out

    def ctr_matrix(self, batch: FeedBatch) -> tuple[np.ndarray, np.ndarray]:
        """The oracle's CTR matrix: each candidate alone at each slot of the organic page.

        Returns
        -------
        card_ctr : ndarray (R, N, K)
            True click probability (given exposure) of candidate c inserted at
            slot s, all other slots organic.
        organic_ctr : ndarray (R, K)
            True click probability of each organic item on the organic page.

        Examples
        --------
        >>> env = FeedEnv(FeedConfig(n_slots=8, n_cards=4))
        >>> b = env.sample(1, seed=2)
        >>> card, org = env.ctr_matrix(b)
        >>> page = b.requests.compose([-1, -1, 3, -1, -1, -1, -1, -1])
        >>> bool(abs(card[0, 3, 2] - env.ctr(b, page)[0, 2]) < 1e-12)
        True
        """
        if not isinstance(batch, FeedBatch):
            raise ProblemError(f"batch must be a FeedBatch (from FeedEnv.sample); got {type(batch).__name__}")
        cfg, req = self.config, batch.requests
        r, k = len(req), req.dims["K"]
        ctypes = req.cand_type.astype(np.int64)
        ccats = req.cand_category.astype(np.int64)
        static = self._static_logit(batch.users, ctypes, ccats, req.cand_features)  # (R, N)
        pos = self.pos_slope[ctypes][:, :, None] * self._depth(k)[None, None, :]  # (R, N, K)
        # same-category organic neighbours, weighted by distance: (R, K, C)
        onehot = np.zeros((r, k, self.n_categories))
        np.put_along_axis(onehot, req.page_category.astype(np.int64)[..., None], 1.0, axis=2)
        near = np.zeros_like(onehot)
        for d in range(1, min(cfg.category_window, k - 1) + 1):
            w = cfg.category_penalty * cfg.penalty_decay ** (d - 1)
            near[:, d:] += w * onehot[:, :-d]
            near[:, :-d] += w * onehot[:, d:]
        # organic neighbours are never of a card type, so no same-type penalty here
        rows = np.arange(r)[:, None]
        cat_pen = np.take_along_axis(near.transpose(0, 2, 1), ccats[:, :, None], axis=1)  # (R, N, K)
        fat, bst = self._realtime(req)
        rt = -self.fatigue[ctypes] * fat[rows, ctypes] + cfg.boost * bst[rows, ccats]  # (R, N)
        logit = static[:, :, None] + rt[:, :, None] * self._fade(k)[None, None, :] + pos - cat_pen
        if cfg.feature_penalty > 0:  # the card at slot s among the organic items at s +- d
            zc = self._styles(req.cand_features)[:, :, None, :]  # (R, N, 1, 2)
            zo = self._styles(req.page_features)[:, None, :, :]  # (R, 1, K, 2)
            clash = self._clash(zc, zo)  # (R, N, K): card c next to organic item j
            for d in range(1, min(cfg.feature_reach, k - 1) + 1):
                w = cfg.feature_penalty * cfg.feature_decay ** (d - 1)
                logit[:, :, d:] -= w * clash[:, :, :-d]
                logit[:, :, :-d] -= w * clash[:, :, d:]
        if cfg.page_satiation > 0:  # the organic items above slot s, by category
            state = np.zeros((r, self.n_categories))
            above = np.zeros((r, k, self.n_categories))
            for s in range(k):
                above[:, s] = state
                state = state * cfg.satiation_decay
                state[rows[:, 0], req.page_category[:, s].astype(np.int64)] += 1.0
            logit -= cfg.page_satiation * np.take_along_axis(above.transpose(0, 2, 1), ccats[:, :, None], axis=1)
        card_ctr = _sigmoid(logit)
        return card_ctr, self.ctr(batch, req.organic)

    def taste_posterior(self, requests: Requests, newton_steps: int = 8) -> tuple[Users, np.ndarray]:
        """What the logged behaviour tells about each user's hidden tastes: a Gaussian (Laplace) posterior.

        The unknowns of a request are ``interest`` (C) and ``type_pref`` (T + 1),
        with the world's Gaussian priors; the evidence is every exposure's dwell
        and scroll speed (linear-Gaussian in the taste), its click (Bernoulli,
        through the world's click model without page effects) and each click's
        detail-page dwell. The mode is found by Newton's method.

        Returns
        -------
        mean : Users
            The posterior mode of ``interest`` (R, C) and ``type_pref`` (R, T + 1).
        cov : ndarray (R, C + T + 1, C + T + 1)
            The posterior covariance (inverse Hessian at the mode), interest first.
        """
        if not isinstance(requests, Requests):
            raise ProblemError(f"requests must be a Requests batch (FeedBatch.requests); got {type(requests).__name__}")
        if isinstance(newton_steps, bool) or not isinstance(newton_steps, (int, np.integer)) or newton_steps < 1:
            raise ProblemError(f"newton_steps must be an int >= 1; got {newton_steps!r}")
        cfg, c_count = self.config, self.n_categories
        r, dims = len(requests), self.n_categories + self.n_types + 1
        rows = np.arange(r)[:, None]

        def design(types: np.ndarray, cats: np.ndarray, live: np.ndarray) -> np.ndarray:
            a = np.zeros((*types.shape, dims))
            cols = np.arange(types.shape[1])[None]
            a[rows, cols, cats.astype(np.int64)] = live
            a[rows, cols, c_count + types.astype(np.int64)] = live
            return a

        exp_live = requests.exp_mask.astype(np.float64)
        a_exp = design(requests.exp_type, requests.exp_category, exp_live)
        a_clk = design(requests.clk_type, requests.clk_category, requests.clk_mask.astype(np.float64))
        quality = requests.exp_features.astype(np.float64) @ self.feature_weights
        action = requests.exp_action.astype(np.float64)
        dwell_var = max(cfg.dwell_noise, 1e-3) ** 2
        # linear-Gaussian evidence: (design, observation of taste, its variance)
        linear = [
            (a_exp, (action[..., 0] - DWELL_QUALITY * quality) / DWELL_TASTE, dwell_var / DWELL_TASTE**2),
            (a_exp, action[..., 1] / SCROLL_TASTE, 1.0 / SCROLL_TASTE**2),
            (a_clk, requests.clk_action[..., 0].astype(np.float64), dwell_var),
        ]
        prior = np.concatenate([np.full(c_count, cfg.interest_std**2), np.full(self.n_types + 1, cfg.type_pref_std**2)])
        h_lin = np.broadcast_to(np.diag(1.0 / np.maximum(prior, 1e-9)), (r, dims, dims)).copy()
        g_lin = np.zeros((r, dims))
        for a, y, var in linear:
            h_lin += np.einsum("rld,rle->rde", a, a) / var
            g_lin += np.einsum("rld,rl->rd", a, y) / var
        base = self.base[requests.exp_type.astype(np.int64)] + quality
        clicked = action[..., 2]
        theta = np.linalg.solve(h_lin, g_lin[..., None])[..., 0]
        hess = h_lin
        for _ in range(newton_steps):
            p = _sigmoid(base + np.einsum("rld,rd->rl", a_exp, theta))
            grad = g_lin - np.einsum("rde,re->rd", h_lin, theta) + np.einsum("rld,rl->rd", a_exp, (clicked - p) * exp_live)
            hess = h_lin + np.einsum("rld,rle,rl->rde", a_exp, a_exp, p * (1 - p) * exp_live)
            theta = theta + np.linalg.solve(hess, grad[..., None])[..., 0]
        return Users(theta[:, :c_count], theta[:, c_count:]), np.linalg.inv(hess)

    def informed_ctr_matrix(self, batch: FeedBatch) -> tuple[np.ndarray, np.ndarray]:
        """The best matrix a model that sees only the requests could hold: :meth:`ctr_matrix` with each user's
        hidden tastes integrated over :meth:`taste_posterior` (``E sigmoid(x) ~ sigmoid(m / sqrt(1 + pi v / 8))``).

        Every rule of the world is known to it; only the tastes are inferred, so
        the decisions made from it are a ceiling for a model learned from logs
        (up to the Laplace approximation).
        """
        if not isinstance(batch, FeedBatch):
            raise ProblemError(f"batch must be a FeedBatch (from FeedEnv.sample); got {type(batch).__name__}")
        req, c_count = batch.requests, self.n_categories
        mean, cov = self.taste_posterior(req)
        card, organic = self.ctr_matrix(FeedBatch(req, mean))
        rows = np.arange(len(req))[:, None]

        def integrate(p: np.ndarray, types: np.ndarray, cats: np.ndarray) -> np.ndarray:
            t, c = c_count + types.astype(np.int64), cats.astype(np.int64)
            var = cov[rows, c, c] + cov[rows, t, t] + 2 * cov[rows, c, t]  # of interest[c] + type_pref[t]
            if p.ndim == 3:
                var = var[..., None]
            logit = np.log(p) - np.log1p(-p)
            return _sigmoid(logit / np.sqrt(1.0 + np.pi * var / 8.0))

        return integrate(card, req.cand_type, req.cand_category), integrate(organic, req.page_type, req.page_category)

    def expected_clicks(self, batch: FeedBatch, page: Page, weighted: bool = False) -> np.ndarray:
        """Exact expected clicks of each page, (R,): ``sum_s examination[s] * ctr[s]``.

        With ``weighted=True`` each click counts its type's gain (organic 1),
        the quantity that mixing maximises.
        """
        p = self.ctr(batch, page)
        k = p.shape[1]
        exam = examination(k, tau=self.config.tau, power=self.config.power)
        if weighted:
            p = p * self.gains[page.type.astype(np.int64)]
        return p @ exam

    def simulate(self, batch: FeedBatch, page: Page, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Sample what each user does with each page: ``(exposed, clicked)``, both (R, K) bool.

        The user draws a scroll depth (slots up to it are exposed) and clicks
        each exposed item with its true probability.
        """
        rng = self._rng(seed, 2)
        p = self.ctr(batch, page)
        r, k = p.shape
        exam = examination(k, tau=self.config.tau, power=self.config.power)
        exposed = rng.random((r, 1)) < exam[None, :]
        clicked = exposed & (rng.random((r, k)) < p)
        return exposed, clicked

    def log(
        self,
        n_requests: int,
        seed: int = 0,
        policy: Callable[[Requests, np.random.Generator], np.ndarray] | None = None,
        chunk: int = 8192,
    ) -> FeedLog:
        """Write a training log of ``n_requests`` requests shown pages chosen by ``policy``.

        Parameters
        ----------
        n_requests : int >= 1
        seed : int >= 0
        policy : callable ``(requests, rng) -> assignment (R, K)``, optional
            Default: :func:`random_policy` with ``config.log_density``.
        chunk : int
            Requests drawn at a time (bounds memory; the log depends on it).

        Returns
        -------
        FeedLog
            With ``true_ctr`` (the oracle's click probability of each shown item).
        """
        if isinstance(n_requests, bool) or not isinstance(n_requests, (int, np.integer)) or n_requests < 1:
            raise ProblemError(f"n_requests must be an int >= 1; got {n_requests!r}")
        if policy is None:
            density = self.config.log_density

            def policy(req: Requests, rng: np.random.Generator) -> np.ndarray:
                return random_policy(req, rng, density)

        parts = []
        for i, start in enumerate(range(0, int(n_requests), chunk)):
            size = min(chunk, int(n_requests) - start)
            sub_seed = int(np.random.default_rng([_CODE, self._seed_ok(seed), 9, i]).integers(2**62))
            batch = self.sample(size, seed=sub_seed)
            assignment = policy(batch.requests, self._rng(sub_seed, 1))
            page = batch.requests.compose(assignment)
            p = self.ctr(batch, page)
            exposed, clicked = self.simulate(batch, page, seed=sub_seed)
            req = batch.requests
            behaviour = {name: getattr(req, name) for name in _BEHAVIOUR_NAMES}
            parts.append(
                FeedLog(
                    self.n_types,
                    self.n_categories,
                    **behaviour,
                    page_type=page.type,
                    page_category=page.category,
                    page_features=page.features,
                    exposed=exposed,
                    clicked=clicked,
                    true_ctr=p.astype(np.float32),
                )
            )
        return parts[0] if len(parts) == 1 else FeedLog.concat(parts)

    def _seed_ok(self, seed: int) -> int:
        self._rng(seed, 0)  # validates
        return int(seed)


_BEHAVIOUR_NAMES = (
    "exp_type", "exp_category", "exp_features", "exp_action", "exp_mask",
    "clk_type", "clk_category", "clk_features", "clk_action", "clk_mask",
)
