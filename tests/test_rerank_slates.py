"""The slate worlds: exact expected clicks against an independent per-position loop, the optimum by brute force."""

import itertools

import numpy as np
import pytest

from mixrank.errors import ProblemError
from mixrank.synthetic.slates import PairSlateConfig, PairSlateEnv, SlateConfig, SlateEnv


def _slate_ctr_loop(env, batch, r, lst):
    """SlateEnv's click model, written out position by position."""
    cfg, h = env.config, batch.hidden
    out = []
    for s, i in enumerate(lst):
        t, c = h["types"][r, i], h["cats"][r, i]
        z = (env.base[t] + h["feats"][r, i] @ env.feature_weights + h["interest"][r, c] + h["type_pref"][r, t]
             + env.pos_slope[t] * (np.log1p(s) / np.log1p(cfg.list_len) - 0.5))
        for s2, j in enumerate(lst):
            d = abs(s2 - s)
            if d == 0:
                continue
            if d <= cfg.type_window and h["types"][r, j] == t:
                z -= env.type_penalty[t] * cfg.penalty_decay ** (d - 1)
            if d <= cfg.category_window and h["cats"][r, j] == c:
                z -= cfg.category_penalty * cfg.penalty_decay ** (d - 1)
        out.append(1 / (1 + np.exp(-z)))
    return np.array(out)


def _pair_ctr_loop(env, batch, r, lst):
    cfg = env.config
    ids, user = batch.hidden["ids"][r], batch.hidden["user"][r]
    out = []
    for s, i in enumerate(lst):
        a = ids[i]
        z = cfg.base_logit + env.quality[a] + cfg.affinity_scale * env.embedding[a] @ user
        z -= env.pos_sens[a] * np.log1p(s) / np.log1p(cfg.list_len)
        for s2, j in enumerate(lst):
            d = abs(s2 - s)
            if d in (1, 2):
                z += env.pair[a, ids[j]] * (1.0 if d == 1 else cfg.pair_decay)
        out.append(1 / (1 + np.exp(-z)))
    return np.array(out)


@pytest.mark.parametrize("world", ["slate", "pair"])
def test_ctr_matches_independent_loop(world):
    if world == "slate":
        env, loop = SlateEnv(SlateConfig(n_items=7, list_len=5, n_categories=2, n_types=2)), _slate_ctr_loop
    else:
        env, loop = PairSlateEnv(PairSlateConfig(n_items=7, list_len=5, catalogue=9, pair_density=0.5)), _pair_ctr_loop
    b = env.sample(3, seed=4)
    rng = np.random.default_rng(0)
    lists = np.stack([[rng.permutation(7)[:5] for _ in range(4)] for _ in range(3)])
    got = env.ctr(b, lists)
    for r in range(3):
        for li in range(4):
            np.testing.assert_allclose(got[r, li], loop(env, b, r, lists[r, li]), rtol=1e-12)
    np.testing.assert_allclose(env.expected_clicks(b, lists), got @ env.examination)


def test_optimum_is_the_brute_force_maximum():
    env = SlateEnv(SlateConfig(n_items=5, list_len=3))
    b = env.sample(2, seed=1)
    best_lists, best = env.optimum(b, chunk=7)
    for r in range(2):
        vals = {p: env.expected_clicks(b[r], [[list(p)]])[0, 0] for p in itertools.permutations(range(5), 3)}
        assert best[r] == pytest.approx(max(vals.values()))
        assert vals[tuple(best_lists[r])] == pytest.approx(best[r])


def test_log_is_seeded_and_clicks_follow_truth():
    env = SlateEnv(SlateConfig(n_items=6, list_len=4))
    a, b = env.log(4000, seed=3), env.log(4000, seed=3)
    np.testing.assert_array_equal(a.clicks, b.clicks)
    # observed clicks per position match exam * true ctr within sampling noise
    expected = (a.extras["true_ctr"] * env.examination).mean(axis=0)
    np.testing.assert_allclose(a.clicks.mean(axis=0), expected, atol=0.025)
    with pytest.raises(ProblemError, match="lists"):
        env.expected_clicks(env.sample(1), [[[0, 9, 1, 2]]])
    with pytest.raises(ProblemError, match="list_len"):
        SlateConfig(n_items=3, list_len=4)
