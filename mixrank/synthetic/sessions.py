"""Scrolling sessions in the synthetic feed, under three mixing policies (SPEC §4, §5).

A session is one user scrolling through ``n_pages`` pages of the feed
(:class:`~mixrank.synthetic.FeedEnv` requests of the same user: each page has its
organic items and candidate cards), a screen of ``screen`` slots at a time.
Every policy runs through a :class:`mixrank.MixSession` with the same rules, so
its committed feed can be audited over the whole session:

* ``fixed`` — the fixed-position rule, what feeds do without a planner: type t
  goes to fixed slots of every page (:func:`fixed_slot_types`), filled with the
  type's best-scored card, skipped where a rule would break;
* ``static`` — one-shot planning: every page is scored with the behaviour known
  at the session's start and planned once by the solver;
* ``dynamic`` — re-planning on the device: after every screen the behaviour
  sequences grow with what the user saw and clicked, the scorer re-scores the
  slots left, and the solver re-plans them with the session's history.

The truth
---------
The user's real-time state changes as they scroll: every exposure adds fatigue
for its type and every click a boost for its category (the environment's click
model, :mod:`mixrank.synthetic.feed`). A slot's true click probability is the
environment's, given the behaviour when its screen is shown and the page as
planned then. The user is assumed to look at every screen (so the state path is
the one of a user who got there), and each slot counts with the probability of
getting there: ``reach[p] * examination[s]``, where ``reach[p] =
examination[K - 1] ** p``. So ``card_clicks`` is an unbiased estimate of the
expected clicks on inserted cards, with less noise than counting sampled
clicks. Clicks along the path are sampled from common random numbers, so the
three policies meet the same users, pages and luck (paired comparisons).

Examples
--------
>>> from mixrank import TypeRule
>>> from mixrank.synthetic import FeedEnv, FeedConfig
>>> from mixrank.synthetic.sessions import run_sessions
>>> env = FeedEnv(FeedConfig(n_slots=8, n_cards=4, n_types=2, gains=(1.5, 1.0)))
>>> rules = [TypeRule(min_gap=3, max_share=0.3), TypeRule(min_gap=2, max_share=0.4)]
>>> run = run_sessions(env, "dynamic", "oracle", rules, n_sessions=3, n_pages=2, screen=4,
...                    solver="greedy", progress=False)
>>> run.card_clicks.shape, len(run.feeds), len(run.feeds[0].card)
((3,), 3, 16)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from mixrank.errors import ProblemError
from mixrank.problem import MixProblem, TypeRule
from mixrank.session import CommittedFeed, MixSession
from mixrank.synthetic.feed import FeedBatch, FeedEnv, Requests, Users

__all__ = ["POLICIES", "SessionRun", "FixedPositionRule", "fixed_slot_types", "run_sessions"]

#: The policies :func:`run_sessions` knows.
POLICIES = ("fixed", "static", "dynamic")

_BEHAVIOUR = (
    "exp_type", "exp_category", "exp_features", "exp_action", "exp_mask",
    "clk_type", "clk_category", "clk_features", "clk_action", "clk_mask",
)


class SessionRun(NamedTuple):
    """The outcome of :func:`run_sessions`: one entry per session."""

    policy: str
    card_clicks: np.ndarray  #: (S,) expected clicks on inserted cards (the truth, see the module docstring)
    screen_clicks: np.ndarray  #: (S, steps) the same per screen, in the order shown
    value: np.ndarray  #: (S,) expected gain-weighted clicks on every slot (organic items count 1)
    n_cards: np.ndarray  #: (S,) cards inserted
    feeds: list[CommittedFeed]  #: each session's committed feed, for an audit


def fixed_slot_types(rules: Sequence[TypeRule], n_slots: int, min_gap_any: int = 1) -> np.ndarray:
    """Fixed positions for each type: slot -> type (-1 organic), types taking turns at an even spacing.

    The spacing is the smallest that keeps ``min_gap_any`` and every type's gap
    when the types take turns (slot 0 stays organic), so the pattern repeats
    across page boundaries without breaking a gap when the page length is a
    multiple of ``T * spacing``; :class:`FixedPositionRule` skips a slot anyway
    where a rule would break.

    Examples
    --------
    >>> from mixrank import TypeRule
    >>> fixed_slot_types([TypeRule(min_gap=4), TypeRule(min_gap=2)], 10).tolist()
    [-1, 0, -1, 1, -1, 0, -1, 1, -1, 0]
    """
    t = len(rules)
    spacing = max(min_gap_any, max(-(-r.min_gap // t) for r in rules))
    out = np.full(n_slots, -1, np.int64)
    slots = np.arange(1, n_slots, spacing)
    out[slots] = np.arange(slots.size) % t
    return out


class FixedPositionRule:
    """The fixed-position rule as a planner for :class:`mixrank.MixSession`.

    At each slot that ``slot_types`` gives a type, the best card of that type (by
    the problem's values, which the scorer set) that is still free and keeps every
    rule; other slots keep their organic item.

    Parameters
    ----------
    slot_types : array (K,) of int
        Type per page slot, -1 for organic (see :func:`fixed_slot_types`).
    """

    def __init__(self, slot_types: Any) -> None:
        self.slot_types = np.asarray(slot_types, np.int64)
        if self.slot_types.ndim != 1:
            raise ProblemError(f"slot_types must be 1-d (one entry per page slot); got shape {self.slot_types.shape}")

    def __call__(self, problem: MixProblem, first_slot: int) -> np.ndarray:
        k = problem.n_slots
        slot_types = self.slot_types[first_slot:first_slot + k]
        if slot_types.size != k:
            raise ProblemError(f"slot_types must cover the page; got {self.slot_types.size} slots")
        plan = np.full(k, -1, np.int64)
        types = problem.types
        allowed = problem.allowed
        broken = len(problem.check(plan))
        for s in np.flatnonzero(slot_types >= 0):
            free = (types == slot_types[s]) & ~np.isin(np.arange(problem.n_cards), plan)
            if allowed is not None:
                free &= allowed[:, s]
            for c in np.flatnonzero(free)[np.argsort(-problem.values[free, s], kind="stable")]:
                plan[s] = c
                if len(problem.check(plan)) <= broken:
                    break
                plan[s] = -1
        return plan


def _stack_requests(pages: Requests, behaviours: list[dict[str, np.ndarray]]) -> Requests:
    """The page records of ``pages`` with each row's behaviour replaced by ``behaviours[row]``."""
    arrays = dict(pages.fields)
    for name in _BEHAVIOUR:
        arrays[name] = np.stack([b[name] for b in behaviours])
    return Requests(pages.n_types, pages.n_categories, **arrays)


def _scores(scorer: Any, env: FeedEnv, requests: Requests, users: Users) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(scorer, str):
        if scorer != "oracle":
            raise ProblemError(f"scorer must be 'oracle' or a model with predict(requests); got {scorer!r}")
        return env.ctr_matrix(FeedBatch(requests, users))
    card, org = scorer.predict(requests)
    if len(requests) == 1:
        card, org = np.asarray(card)[None], np.asarray(org)[None]
    return np.asarray(card), np.asarray(org)


def _actions(env: FeedEnv, users: Users, page: Any, clicked: np.ndarray, noise: np.ndarray) -> tuple:
    """Action features of shown items, the way the environment writes behaviour (dwell reveals taste)."""
    rows = np.arange(users.interest.shape[0])[:, None]
    types, cats = page.type.astype(np.int64), page.category.astype(np.int64)
    taste = users.interest[rows, cats] + users.type_pref[rows, types]
    quality = page.features.astype(np.float64) @ env.feature_weights
    sd = env.config.dwell_noise
    dwell = 0.8 * taste + 0.3 * quality + sd * noise[..., 0]
    scroll = -0.4 * taste + noise[..., 1]
    exp_action = np.stack([dwell, scroll, clicked.astype(np.float64)], axis=-1)
    clk_action = np.stack([taste + sd * noise[..., 2], np.zeros_like(taste)], axis=-1)
    return exp_action, clk_action


def run_sessions(
    env: FeedEnv,
    policy: str,
    scorer: Any,
    rules: Sequence[TypeRule],
    *,
    n_sessions: int,
    n_pages: int = 3,
    screen: int = 4,
    solver: str = "beam",
    options: dict[str, Any] | None = None,
    min_gap_any: int = 1,
    gains: Any = None,
    organic_gain: float = 1.0,
    slot_types: Any = None,
    seed: int = 0,
    progress: bool = True,
) -> SessionRun:
    """Run ``n_sessions`` scrolling sessions under one policy (all sessions in lockstep, one batched scoring per step).

    Parameters
    ----------
    env : FeedEnv
    policy : {'fixed', 'static', 'dynamic'}
    scorer : model with ``predict(requests)`` (e.g. an ESAN) or ``'oracle'``
        ``'oracle'`` scores with the environment's true CTR matrix (an upper reference).
    rules : sequence of T TypeRule
    n_sessions, n_pages, screen : int >= 1
        Sessions, pages per session, slots per screen.
    solver, options
        The solver of ``static`` and ``dynamic`` and its options.
    min_gap_any, gains, organic_gain
        As in :class:`mixrank.MixSession` (``gains`` default: the environment's).
    slot_types : array (K,), optional
        The fixed rule's positions (default :func:`fixed_slot_types`).
    seed : int >= 0
        Users, pages and clicks; the same seed gives every policy the same sessions.
    progress : bool
        A tqdm bar over the session's steps.

    Returns
    -------
    SessionRun
    """
    if policy not in POLICIES:
        raise ProblemError(f"policy must be one of {', '.join(POLICIES)}; got {policy!r}")
    for name, v in (("n_sessions", n_sessions), ("n_pages", n_pages), ("screen", screen)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ProblemError(f"{name} must be an int >= 1; got {v!r}")
    s_count, p_count, k = int(n_sessions), int(n_pages), env.n_slots
    gains = env.gains[: env.n_types] if gains is None else np.asarray(gains, np.float64)
    batch = env.sample(s_count * p_count, seed=seed)  # request i * P + p is page p of session i
    users = Users(batch.users.interest[::p_count], batch.users.type_pref[::p_count])  # one user per session
    rng = np.random.default_rng([0x5E55, int(seed)])
    u_click = rng.random((s_count, p_count, k))
    noise = rng.standard_normal((s_count, p_count, k, 3))
    planner: Any = solver
    if policy == "fixed":
        planner = FixedPositionRule(fixed_slot_types(rules, k, min_gap_any) if slot_types is None else slot_types)
    sessions = [
        MixSession(rules, None, planner, min_gap_any=min_gap_any, gains=gains, examination=env.examination,
                   organic_gain=organic_gain, **({} if policy == "fixed" else (options or {})))
        for _ in range(s_count)
    ]
    start = [batch.requests[i * p_count] for i in range(s_count)]
    start_behaviour = [{name: getattr(r, name)[0] for name in _BEHAVIOUR} for r in start]
    exam = env.examination
    reach = exam[-1] ** np.arange(p_count)
    steps = p_count * -(-k // screen)
    screen_clicks, value = np.zeros((s_count, steps)), np.zeros(s_count)
    step = 0
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, desc=f"sessions ({policy})", unit="screen", leave=False)
    for p in range(p_count):
        pages = batch.requests[np.arange(s_count) * p_count + p]
        page_reqs = [pages[i] for i in range(s_count)]
        shown = np.full((s_count, k), -1, np.int64)
        for r0 in range(0, k, screen):
            r1 = min(r0 + screen, k)
            now = [sess.behaviour or start_behaviour[i] for i, sess in enumerate(sessions)]
            if r0 == 0 or policy == "dynamic":
                seen = start_behaviour if policy != "dynamic" else now
                card, org = _scores(scorer, env, _stack_requests(pages, seen), users)
                for i, sess in enumerate(sessions):
                    plan = sess.plan(page_reqs[i], ctr=(card[i], org[i]))
                    shown[i, r0:] = plan.assignment
            truth = FeedBatch(_stack_requests(pages, now), users)
            page = truth.requests.compose(shown)
            ctr = env.ctr(truth, page)[:, r0:r1]
            weight = reach[p] * exam[r0:r1]
            is_card = shown[:, r0:r1] >= 0
            screen_clicks[:, step] = (ctr * weight * is_card).sum(axis=1)
            step += 1
            value += (ctr * weight * np.append(gains, 1.0)[page.type[:, r0:r1].astype(np.int64)]).sum(axis=1)
            clicked = u_click[:, p, r0:r1] < ctr
            screen_page = type(page)(page.type[:, r0:r1], page.category[:, r0:r1], page.features[:, r0:r1])
            exp_action, clk_action = _actions(env, users, screen_page, clicked, noise[:, p, r0:r1])
            for i, sess in enumerate(sessions):
                sess.commit(r1 - r0, clicked=clicked[i], exp_action=exp_action[i], clk_action=clk_action[i])
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    feeds = [sess.feed for sess in sessions]
    n_cards = np.array([(f.card >= 0).sum() for f in feeds])
    return SessionRun(policy, screen_clicks.sum(axis=1), screen_clicks, value, n_cards, feeds)
