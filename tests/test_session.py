"""MixSession and the scrolling-session simulation: rules hold over whole sessions, history is carried, bad feedback refused."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mixrank
from mixrank import History, TypeRule
from mixrank.demo import audit_feed
from mixrank.errors import SolverError
from mixrank.pipeline import mix_values
from mixrank.session import MixSession, SessionError
from mixrank.synthetic import FeedConfig, FeedEnv
from mixrank.synthetic.sessions import FixedPositionRule, fixed_slot_types, run_sessions

RULES = [TypeRule(min_gap=5, max_share=0.2, max_count=2), TypeRule(min_gap=3, max_share=0.3)]
MIN_GAP_ANY = 2


def audit(feed, rules, min_gap_any):
    """An independent re-count of the rules over a whole committed feed, slot by slot, in the order shown.

    Written here on purpose (it does not use MixProblem.check or mixrank.demo.audit_feed): walks the feed
    once, remembers where the last card of each type stood, and re-adds the PV weights page by page.
    """
    bad = []
    last = {}
    last_any = None
    pv_type = [0.0] * len(rules)
    pv_all = 0.0
    count = {}
    for g in range(len(feed.card)):
        t = int(feed.type[g])
        if t >= 0:
            if t in last and g - last[t] < rules[t].min_gap:
                bad.append(f"gap type {t}: {last[t]} -> {g}")
            if last_any is not None and g - last_any < min_gap_any:
                bad.append(f"gap any: {last_any} -> {g}")
            last[t], last_any = g, g
            pv_type[t] += float(feed.pv_weight[g])
            key = (int(feed.page[g]), t)
            count[key] = count.get(key, 0) + 1
            if rules[t].max_count is not None and count[key] > rules[t].max_count:
                bad.append(f"count type {t} on page {feed.page[g]}")
        pv_all += float(feed.pv_weight[g])
        page_ends = g == len(feed.card) - 1 or feed.page[g + 1] != feed.page[g]
        if page_ends:
            for u, rule in enumerate(rules):
                if pv_type[u] > rule.max_share * pv_all * (1 + 1e-9) or pv_type[u] < rule.min_share * pv_all * (1 - 1e-9):
                    bad.append(f"share type {u} after page {feed.page[g]}: {pv_type[u] / pv_all:.3f}")
    return bad


@pytest.fixture(scope="module")
def env():
    return FeedEnv(FeedConfig(n_slots=12, n_cards=8, n_types=2, gains=(1.5, 1.0)))


@pytest.mark.parametrize("policy", ["fixed", "static", "dynamic"])
@pytest.mark.parametrize("solver", ["greedy", "beam"])
def test_whole_sessions_keep_every_rule(env, policy, solver):
    if policy == "fixed" and solver == "beam":
        pytest.skip("the fixed rule uses no solver")
    run = run_sessions(env, policy, "oracle", RULES, n_sessions=25, n_pages=3, screen=3, solver=solver,
                       min_gap_any=MIN_GAP_ANY, organic_gain=0.0, progress=False, seed=3)
    assert len(run.feeds) == 25
    n_cards = 0
    for feed in run.feeds:
        assert len(feed.card) == 3 * 12 and feed.page.tolist() == [p for p in range(3) for _ in range(12)]
        assert audit(feed, RULES, MIN_GAP_ANY) == []
        assert audit_feed(feed, RULES, MIN_GAP_ANY) == []
        n_cards += int((feed.card >= 0).sum())
    assert n_cards > 25 * 3  # the rules bind: cards were placed on every page on average
    assert np.isfinite(run.card_clicks).all() and (run.card_clicks > 0).all()


def test_the_audit_finds_what_a_session_without_history_breaks(env):
    """Negative control: pages planned alone (no carried history) break gaps at page boundaries; both audits see it."""
    batch = env.sample(6, seed=1)
    card, org = env.ctr_matrix(batch)
    broken_feeds = 0
    for start in range(0, 6, 3):
        feeds = []
        for p in range(start, start + 3):  # a fresh session per page: each starts with an empty history
            s = MixSession(RULES, None, "greedy", min_gap_any=MIN_GAP_ANY, examination=env.examination,
                           organic_gain=0.0)
            s.plan(batch.requests[p], ctr=(card[p], org[p]))
            s.commit(12)
            feeds.append(s.feed)
        joined = type(feeds[0])(*(np.concatenate([getattr(f, name) + (p if name == "page" else 0)
                                                  for p, f in enumerate(feeds)]) for name in feeds[0]._fields))
        found = audit(joined, RULES, MIN_GAP_ANY)
        assert bool(found) == bool(audit_feed(joined, RULES, MIN_GAP_ANY))
        broken_feeds += bool(found)
    assert broken_feeds >= 1


def _tiny_request(env, seed=0):
    return env.sample(1, seed=seed)


class Scripted:
    """A planner that serves a scripted page plan (the part from first_slot on)."""

    def __init__(self, plan):
        self.plan = np.asarray(plan)

    def __call__(self, problem, first_slot):
        return self.plan[first_slot:]


def test_history_matches_a_hand_count_across_screens_and_pages(env):
    batch = _tiny_request(env, seed=4)
    req = batch.requests
    types = req.cand_type[0].astype(int)
    a = int(np.flatnonzero(types == 0)[0])
    b, b2 = (int(i) for i in np.flatnonzero(types == 1)[:2])
    plan = np.full(12, -1)
    plan[[1, 7]] = a, int(np.flatnonzero(types == 0)[1])
    plan[[4, 10]] = b, b2
    loose = [TypeRule(min_gap=2), TypeRule(min_gap=2)]
    s = MixSession(loose, lambda r: env.ctr_matrix(batch)[0][0], Scripted(plan), examination=env.examination)
    exam = env.examination
    p0 = s.plan(req)
    assert p0.first_slot == 0 and p0.problem.history == History(last_gap=[None, None], last_gap_any=None,
                                                                 pv_shown=[0.0, 0.0], pv_total_shown=0.0)
    s.commit(5)  # slots 0..4: type 0 at 1, type 1 at 4
    want = History(last_gap=[4, 1], last_gap_any=1, pv_shown=[exam[1], exam[4]], pv_total_shown=exam[:5].sum())
    assert s.history() == want
    p1 = s.plan(req)
    assert p1.first_slot == 5 and p1.problem.n_slots == 7 and p1.problem.history == want
    # the re-planned problem is the page's matrix on the slots left, with the cards shown spent
    card = env.ctr_matrix(batch)[0][0]
    np.testing.assert_allclose(p1.problem.values, mix_values(card[:, 5:], np.zeros(7), types, np.ones(2), exam[5:]))
    assert not p1.problem.allowed[[a, b]].any() and p1.problem.allowed[np.setdiff1d(np.arange(8), [a, b])].all()
    s.commit(7)
    assert s.page_done
    # page 2: the gaps keep counting over the boundary
    s2 = MixSession(loose, None, Scripted(np.full(12, -1)), examination=env.examination)
    assert s2.page == -1 and s2.page_done
    p2 = s.plan(_tiny_request(env, seed=5).requests, ctr=(card, np.zeros(12)))
    assert p2.page == 1 and p2.first_slot == 0
    assert p2.problem.history == History(last_gap=[5, 2], last_gap_any=2, pv_shown=[exam[1] + exam[7], exam[4] + exam[10]],
                                         pv_total_shown=exam.sum())
    feed = s.feed
    assert feed.card[:12].tolist() == plan.tolist() and feed.type[:12].tolist() == [
        -1 if c < 0 else int(types[c]) for c in plan]
    np.testing.assert_allclose(feed.pv_weight, exam)


def test_counts_are_per_page_and_reduced_by_what_was_shown(env):
    batch = _tiny_request(env, seed=4)
    types = batch.requests.cand_type[0].astype(int)
    first0 = int(np.flatnonzero(types == 0)[0])
    plan = np.full(12, -1)
    plan[0] = first0
    rules = [TypeRule(min_gap=1, max_count=2), TypeRule(min_gap=1, max_count=0)]
    s = MixSession(rules, None, Scripted(plan), examination=env.examination)
    ctr = (np.full((8, 12), 0.1), np.zeros(12))
    s.plan(batch.requests, ctr=ctr)
    s.commit(2)
    assert s.plan(batch.requests, ctr=ctr).problem.rules[0].max_count == 1


def test_behaviour_grows_newest_first_and_the_scorer_sees_it(env):
    batch = _tiny_request(env, seed=2)
    req = batch.requests
    seen = []

    def scorer(request):
        seen.append(request.exp_type[0, :4].copy())
        return env.ctr_matrix(batch)[0][0]

    s = MixSession(RULES, scorer, "greedy", examination=env.examination, organic_gain=0.0)
    plan = s.plan(req)
    old = req.exp_type[0].copy()
    shown_types = [int(req.page_type[0, i]) if c < 0 else int(req.cand_type[0, c]) for i, c in enumerate(plan.assignment[:3])]
    s.commit(3, exposed=[True, True, False], clicked=[False, True, False],
             exp_action=np.arange(9.0).reshape(3, 3), clk_action=np.ones((3, 2)))
    b = s.behaviour
    assert b["exp_type"].tolist() == [shown_types[1], shown_types[0], *old[:-2]]  # slot 2 was not exposed
    assert b["exp_action"][0].tolist() == [3.0, 4.0, 5.0] and b["exp_action"][1].tolist() == [0.0, 1.0, 2.0]
    assert b["clk_type"][0] == shown_types[1] and b["clk_mask"][0] and b["clk_action"][0].tolist() == [1.0, 1.0]
    assert len(b["exp_type"]) == len(old)
    s.plan(req)
    assert seen[-1].tolist() == b["exp_type"][:4].tolist() and seen[0].tolist() == old[:4].tolist()


def test_bad_feedback_is_refused(env):
    batch = _tiny_request(env, seed=1)
    req = batch.requests
    s = MixSession(RULES, lambda r: env.ctr_matrix(batch)[0][0], "greedy", examination=env.examination,
                   organic_gain=0.0)
    with pytest.raises(SessionError, match="call plan"):
        s.commit(2)
    plan = s.plan(req)
    s.commit(3, slot=0)
    with pytest.raises(SessionError, match="slot 1 of page 0 is already committed"):
        s.commit(1, slot=1)
    with pytest.raises(SessionError, match="slot must be the next uncommitted slot"):
        s.commit(1, slot=5)
    with pytest.raises(SessionError, match="shown must be at most the 9 slots left"):
        s.commit(10)
    with pytest.raises(SessionError, match="shown must hold at most"):
        s.commit(np.full(10, -1))
    other = next(c for c in range(8) if c != plan.assignment[3])
    with pytest.raises(SessionError, match=r"shown\[0\] = .* was not planned for slot 3"):
        s.commit([other])
    with pytest.raises(SessionError, match=r"clicked must have one entry per shown slot, shape \(2,\)"):
        s.commit(2, clicked=[True])
    with pytest.raises(SessionError, match="clicked must be False where exposed is False"):
        s.commit(1, exposed=[False], clicked=[True])
    with pytest.raises(SessionError, match=r"exp_action must have shape \(2, 3\)"):
        s.commit(2, exp_action=np.zeros((2, 2)))
    with pytest.raises(SessionError, match="request must be the current page's request"):
        s.plan(_tiny_request(env, seed=9).requests)
    with pytest.raises(SessionError, match="one request"):
        s.plan(env.sample(2, seed=0).requests)
    s.commit([-1, *plan.assignment[4:6]])  # dropping a planned card for the organic item is allowed
    assert s.next_slot == 6
    s.end_page()
    assert s.page_done and s.plan(_tiny_request(env, seed=9).requests).page == 1


def test_bad_construction_is_refused(env):
    with pytest.raises(SolverError, match="unknown option"):
        MixSession(RULES, None, "beam", widht=4)
    with pytest.raises(SolverError, match="solver must be one of"):
        MixSession(RULES, None, "simplex")
    with pytest.raises(mixrank.ProblemError, match="rules"):
        MixSession([], None)
    with pytest.raises(mixrank.ProblemError, match="scorer"):
        MixSession(RULES, 42)
    with pytest.raises(mixrank.ProblemError, match="organic_gain must be a finite number >= 0"):
        MixSession(RULES, None, organic_gain=-1.0)
    with pytest.raises(mixrank.ProblemError, match="gains must be"):
        MixSession(RULES, None, gains=[1.0, -2.0])
    s = MixSession(RULES, None, lambda problem, first: np.zeros(problem.n_slots, int), examination=env.examination)
    batch = _tiny_request(env)
    with pytest.raises(SolverError, match="breaks the rules"):  # card 0 in every slot
        s.plan(batch.requests, ctr=(np.full((8, 12), 0.1), np.zeros(12)))
    s = MixSession(RULES, None, "greedy", examination=env.examination)
    with pytest.raises(SessionError, match="no scorer"):
        s.plan(batch.requests)
    with pytest.raises(mixrank.ProblemError, match=r"card_ctr must have shape \(8, 12\)"):
        s.plan(batch.requests, ctr=(np.zeros((8, 11)), np.zeros(12)))
    with pytest.raises(SessionError, match="commit needs a plan"):  # the failed plan left nothing to commit
        s.commit(1)


def test_static_and_dynamic_see_the_same_first_screen_and_fixed_keeps_its_slots(env):
    kw = dict(n_sessions=10, n_pages=2, screen=4, solver="greedy", min_gap_any=MIN_GAP_ANY, progress=False, seed=11)
    static = run_sessions(env, "static", "oracle", RULES, **kw)
    dynamic = run_sessions(env, "dynamic", "oracle", RULES, **kw)
    np.testing.assert_allclose(static.screen_clicks[:, 0], dynamic.screen_clicks[:, 0])
    assert not np.allclose(static.screen_clicks, dynamic.screen_clicks)  # later screens are re-planned
    fixed = run_sessions(env, "fixed", "oracle", RULES, **kw)
    slots = fixed_slot_types(RULES, 12, MIN_GAP_ANY)
    for feed in fixed.feeds:
        placed = feed.type >= 0
        assert (feed.type[placed] == slots[feed.slot[placed]]).all()
    again = run_sessions(env, "fixed", "oracle", RULES, **kw)
    np.testing.assert_array_equal(again.card_clicks, fixed.card_clicks)


def test_fixed_rule_takes_the_best_card_of_the_type_that_keeps_the_rules():
    p = mixrank.MixProblem(values=[[1.0, 5.0, 1.0], [2.0, 3.0, 9.0], [1.0, 1.0, 1.0]], types=[0, 0, 1],
                           pv_weights=[1.0, 1.0, 1.0], rules=[TypeRule(min_gap=2), TypeRule()])
    assert FixedPositionRule([0, 0, 1])(p, 0).tolist() == [1, -1, 2]  # slot 1 would break type 0's gap
    assert FixedPositionRule([-1, 0, 1, 0])(p, 1).tolist() == [1, 2, 0]  # from slot 1 of the page on


def test_paired_uplift_finds_a_planted_uplift_and_none_where_there_is_none():
    from mixrank.demo import paired_uplift

    rng = np.random.default_rng(0)
    base = rng.gamma(2.0, 0.5, size=2000)  # sessions differ a lot; the pairing removes that
    planted = paired_uplift(base * 1.05 * rng.normal(1.0, 0.02, size=base.size), base)
    assert planted.low < 0.05 < planted.high and planted.low > 0.04
    none = paired_uplift(base * rng.normal(1.0, 0.02, size=base.size), base)
    assert none.low < 0 < none.high
    with pytest.raises(mixrank.MixrankError, match="paired sessions"):
        paired_uplift([1.0, 2.0], [1.0])


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    gaps=st.lists(st.integers(1, 6), min_size=2, max_size=2),
    caps=st.lists(st.floats(0.05, 0.6), min_size=2, max_size=2),
    counts=st.lists(st.one_of(st.none(), st.integers(0, 4)), min_size=2, max_size=2),
    gap_any=st.integers(1, 3),
    screen=st.integers(1, 7),
    policy=st.sampled_from(["fixed", "static", "dynamic"]),
    seed=st.integers(0, 1000),
)
def test_any_rules_hold_over_whole_sessions(env, gaps, caps, counts, gap_any, screen, policy, seed):
    rules = [TypeRule(min_gap=g, max_share=c, max_count=n) for g, c, n in zip(gaps, caps, counts)]
    run = run_sessions(env, policy, "oracle", rules, n_sessions=4, n_pages=2, screen=screen, solver="greedy",
                       min_gap_any=gap_any, organic_gain=0.0, progress=False, seed=seed)
    for feed in run.feeds:
        assert audit(feed, rules, gap_any) == []
