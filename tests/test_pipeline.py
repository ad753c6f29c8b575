"""The glue from a request to a MixProblem: values, PV weights, rules; and its link to the oracle."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mixrank
from esan.model import ESAN, ESANConfig
from mixrank.errors import ProblemError
from mixrank.pipeline import mix_values, request_to_problem, requests_to_problems
from mixrank.synthetic import FeedConfig, FeedEnv, examination

CFG = FeedConfig(n_slots=8, n_cards=5, n_types=2, gains=(1.6, 1.0), exposure_len=10, history_len=30, click_len=3)
RULES = [mixrank.TypeRule(min_gap=2, max_share=0.5), mixrank.TypeRule(min_gap=3)]


@pytest.fixture(scope="module")
def env() -> FeedEnv:
    return FeedEnv(CFG)


def test_values_formula(env: FeedEnv) -> None:
    b = env.sample(1, seed=0)
    card, organic = env.ctr_matrix(b)
    p = request_to_problem(b.requests, ctr=(card[0], organic[0]), rules=RULES, gains=[1.6, 1.0],
                           examination=env.examination, min_gap_any=2)
    types = b.requests.cand_type[0].astype(int)
    gain = np.array([1.6, 1.0])[types]
    want = 100 * env.examination[None, :] * (card[0] * gain[:, None] - organic[0][None, :])
    np.testing.assert_allclose(p.values, want)
    np.testing.assert_array_equal(p.types, types)
    np.testing.assert_allclose(p.pv_weights, env.examination)
    assert p.rules == tuple(RULES) and p.min_gap_any == 2


def test_default_gains_and_no_silent_examination(env: FeedEnv) -> None:
    b = env.sample(1, seed=1)
    card, organic = env.ctr_matrix(b)
    exam = examination(CFG.n_slots)
    p = request_to_problem(b.requests, ctr=(card[0], organic[0]), rules=RULES, examination=exam)
    np.testing.assert_allclose(p.pv_weights, exam)
    np.testing.assert_allclose(p.values, mix_values(card[0], organic[0], p.types, [1, 1], exam))
    with pytest.raises(ProblemError, match="examination must be given.*estimate_examination"):
        request_to_problem(b.requests, ctr=(card[0], organic[0]), rules=RULES)
    with pytest.raises(ProblemError, match="examination must hold probabilities"):
        request_to_problem(b.requests, ctr=(card[0], organic[0]), rules=RULES, examination=exam + 1)


def test_estimate_examination_recovers_the_curve() -> None:
    from mixrank.pipeline import estimate_examination

    env = FeedEnv(FeedConfig(n_slots=20, n_cards=4, exposure_len=5, history_len=10, click_len=2))
    log = env.log(6000, seed=0)
    est = estimate_examination(log)
    assert est.shape == (20,) and (np.diff(est) <= 0).all() and est[0] == 1.0
    np.testing.assert_allclose(est, env.examination, atol=0.02)
    # a curve that differs (the synthetic default is not the feed's) is told apart
    other = FeedEnv(FeedConfig(n_slots=20, n_cards=4, exposure_len=5, history_len=10, click_len=2, tau=2.0))
    assert np.abs(estimate_examination(other.log(6000, seed=0)) - env.examination).max() > 0.1
    with pytest.raises(ProblemError, match="FeedLog"):
        estimate_examination(b"not a log")


def test_values_are_the_true_gain_of_single_insertions() -> None:
    """Without neighbour effects on organic items, an oracle value is exactly the gain of inserting that card."""
    env = FeedEnv(FeedConfig(n_slots=8, n_cards=5, n_types=2, gains=(1.6, 1.0), category_penalty=0.0,
                             exposure_len=10, history_len=30, click_len=3))
    b = env.sample(1, seed=3)
    p = request_to_problem(b.requests, ctr=tuple(m[0] for m in env.ctr_matrix(b)), rules=RULES,
                           gains=env.gains[:2], examination=env.examination)
    base = env.expected_clicks(b, b.requests.organic, weighted=True)[0]
    for c, s in [(0, 0), (1, 3), (4, 7), (2, 5)]:
        a = np.full(8, -1)
        a[s] = c
        gain = env.expected_clicks(b, b.requests.compose(a), weighted=True)[0] - base
        assert p.objective(a) == pytest.approx(100 * gain, rel=1e-9)


def test_with_an_esan_model(env: FeedEnv) -> None:
    b = env.sample(4, seed=2)
    torch.manual_seed(0)
    model = ESAN(ESANConfig.for_data(b.requests, dim=8, hidden=8))
    ps = requests_to_problems(b.requests, model, rules=RULES, gains=[1.6, 1.0], examination=env.examination)
    card, organic = model.predict(b.requests)
    for i, p in enumerate(ps):
        one = request_to_problem(b.requests[i], model, rules=RULES, gains=[1.6, 1.0], examination=env.examination)
        np.testing.assert_allclose(one.values, p.values, rtol=1e-5, atol=1e-4)  # float32, batched vs alone
        np.testing.assert_allclose(
            p.values, mix_values(card[i], organic[i], p.types, [1.6, 1.0], env.examination), rtol=1e-6, atol=1e-9
        )
        sol = mixrank.solve(p, solver="greedy")
        assert p.check(sol.assignment) == []


def test_history_and_allowed_pass_through(env: FeedEnv) -> None:
    b = env.sample(1, seed=0)
    hist = mixrank.History(last_gap=[1, None], pv_shown=[0.5, 0.0], pv_total_shown=4.0)
    allowed = np.ones((CFG.n_cards, CFG.n_slots), bool)
    allowed[:, 0] = False
    card, organic = env.ctr_matrix(b)
    p = request_to_problem(b.requests, ctr=(card[0], organic[0]), rules=RULES, history=hist, allowed=allowed,
                           examination=env.examination)
    assert p.history == hist
    assert not p.allowed[:, 0].any()


def test_bad_input(env: FeedEnv) -> None:
    b = env.sample(2, seed=0)
    card, organic = env.ctr_matrix(b)
    with pytest.raises(ProblemError, match="exactly one"):
        requests_to_problems(b.requests, rules=RULES)
    with pytest.raises(ProblemError, match="one request"):
        request_to_problem(b.requests, ctr=(card[0], organic[0]), rules=RULES, examination=env.examination)
    with pytest.raises(ProblemError, match="rules must be a sequence of 2"):
        requests_to_problems(b.requests, ctr=(card, organic), rules=RULES[:1], examination=env.examination)
    with pytest.raises(ProblemError, match="card_ctr must have shape"):
        requests_to_problems(b.requests, ctr=(card[:, :, :-1], organic), rules=RULES, examination=env.examination)
    bad = card.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ProblemError, match="card_ctr must be finite"):
        requests_to_problems(b.requests, ctr=(bad, organic), rules=RULES, examination=env.examination)
    with pytest.raises(ProblemError, match="probabilities"):
        mix_values(card[0] + 1, organic[0], b.requests.cand_type[0], [1, 1], env.examination)
    with pytest.raises(ProblemError, match="gains"):
        requests_to_problems(b.requests, ctr=(card, organic), rules=RULES, gains=[1.0], examination=env.examination)
    with pytest.raises(ProblemError, match="predict"):
        requests_to_problems(b.requests, object(), rules=RULES)
