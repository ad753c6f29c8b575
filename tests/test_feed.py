"""The synthetic feed environment: oracle vs Monte-Carlo, the click model's effects, the log schema."""

from __future__ import annotations

import numpy as np
import pytest

from mixrank.errors import ProblemError
from mixrank.logs import FeedLog, LogSchemaError, Requests
from mixrank.synthetic import FeedBatch, FeedConfig, FeedEnv, random_policy

SMALL = FeedConfig(n_slots=12, n_cards=6, exposure_len=20, history_len=60, click_len=5)


@pytest.fixture(scope="module")
def env() -> FeedEnv:
    return FeedEnv(SMALL)


def _with(req: Requests, **changes) -> Requests:
    fields = req.fields
    fields.update(changes)
    return Requests(req.n_types, req.n_categories, **fields)


# ------------------------------------------------------------------ oracle vs simulation
def test_oracle_matches_monte_carlo(env: FeedEnv) -> None:
    base = env.sample(6, seed=11)
    assignment = random_policy(base.requests, np.random.default_rng(3), density=(0.3, 0.5))
    reps = 6000
    batch = base[np.repeat(np.arange(6), reps)]
    page = batch.requests.compose(np.repeat(assignment, reps, axis=0))
    exposed, clicked = env.simulate(batch, page, seed=5)
    clicks = clicked.sum(1).reshape(6, reps)
    expected = env.expected_clicks(base, base.requests.compose(assignment))
    mean = clicks.mean(1)
    se = clicks.std(1, ddof=1) / np.sqrt(reps)
    z = (mean - expected) / se
    assert np.all(np.abs(z) < 4.5), (mean, expected, z)
    # per slot: P(click at s) = examination[s] * ctr[s]
    per_slot = clicked.reshape(6, reps, -1).mean(1)
    truth = env.examination[None, :] * env.ctr(base, base.requests.compose(assignment))
    se_slot = np.sqrt(truth * (1 - truth) / reps)
    assert np.all(np.abs(per_slot - truth) < 4.5 * se_slot + 1e-12)
    # exposure is a prefix whose rate is the examination curve
    assert np.all(np.diff(exposed.astype(int), axis=1) <= 0)
    np.testing.assert_allclose(exposed.mean(0), env.examination, atol=4.5 * np.sqrt(0.25 / exposed.shape[0]))


def test_oracle_is_not_the_simulation_with_another_seed(env: FeedEnv) -> None:
    # The Monte-Carlo test above must be able to fail: a wrong oracle (clicks without examination) is caught.
    base = env.sample(3, seed=2)
    page = base.requests.organic
    wrong = env.ctr(base, page).sum(1)
    batch = base[np.repeat(np.arange(3), 4000)]
    _, clicked = env.simulate(batch, batch.requests.organic, seed=1)
    mean = clicked.sum(1).reshape(3, 4000).mean(1)
    assert np.all(np.abs(mean - wrong) > 0.1)


def test_weighted_expected_clicks_use_gains(env: FeedEnv) -> None:
    b = env.sample(4, seed=1)
    a = random_policy(b.requests, np.random.default_rng(0), density=(0.4, 0.4))
    page = b.requests.compose(a)
    p = env.ctr(b, page)
    w = env.expected_clicks(b, page, weighted=True)
    np.testing.assert_allclose(w, (p * env.gains[page.type.astype(int)]) @ env.examination)
    organic = b.requests.organic
    np.testing.assert_allclose(env.expected_clicks(b, organic, weighted=True), env.expected_clicks(b, organic))


SECOND = FeedConfig.second_world(n_slots=14, n_cards=6, exposure_len=20, history_len=60, click_len=5)


@pytest.mark.parametrize("world", ["default", "second"])
def test_ctr_matrix_is_single_insertion_truth(env: FeedEnv, world: str) -> None:
    if world == "second":
        env = FeedEnv(SECOND)
    b = env.sample(5, seed=4)
    card, organic = env.ctr_matrix(b)
    np.testing.assert_allclose(organic, env.ctr(b, b.requests.organic))
    rng = np.random.default_rng(0)
    k, n = env.config.n_slots, env.config.n_cards
    for _ in range(20):
        c, s = int(rng.integers(n)), int(rng.integers(k))
        a = np.full((5, k), -1)
        a[:, s] = c
        np.testing.assert_allclose(card[:, c, s], env.ctr(b, b.requests.compose(a))[:, s], rtol=1e-12)


def test_default_world_is_unchanged() -> None:
    """The second world's options are off by default: logs and matrices are bit for bit as before them."""
    import hashlib

    env = FeedEnv()
    log = env.log(50, seed=3)
    h = hashlib.sha256()
    for k, v in sorted(log.fields.items()):
        h.update(k.encode())
        h.update(np.ascontiguousarray(v).tobytes())
    assert h.hexdigest() == "446d4549d2b9f4230f8085104e17e60f698407c052d91c8e874ec53f68d56eca"
    card, organic = env.ctr_matrix(env.sample(5, seed=4))
    digest = hashlib.sha256(np.round(card, 12).tobytes() + np.round(organic, 12).tobytes()).hexdigest()
    assert digest == "04874959fcc047e734c6418cd52f82a2d60bfad0a5c294d2594b0b864b3ca0ed"


def test_second_world_effects() -> None:
    env = FeedEnv(SECOND)
    cfg = env.config
    assert cfg.dwell_noise > FeedConfig().dwell_noise and cfg.feature_reach > FeedConfig().type_window
    b = env.sample(1, seed=0)
    org = b.requests.organic
    base = env.ctr(b, org)[0]
    # a neighbour 5 slots away still matters (beyond the default world's reach of 3)
    feats = np.array(org.features)
    feats[0, 10] += 3.0
    moved = env.ctr(b, org._replace(features=feats))[0]
    assert abs(moved[5] - base[5]) > 1e-4 and abs(moved[3] - base[3]) < 1e-15  # reach 6: slot 3 is 7 away
    # the effect is non-linear in the features: doubling a shift does not double the change
    feats2 = np.array(org.features)
    feats2[0, 10] += 6.0
    moved2 = env.ctr(b, org._replace(features=feats2))[0]
    lg = lambda p: np.log(p / (1 - p))  # noqa: E731
    assert abs((lg(moved2[5]) - lg(base[5])) - 2 * (lg(moved[5]) - lg(base[5]))) > 1e-3
    # behaviour changes within a page: one more earlier item of the same category lowers a later one
    cats = np.array(org.category)
    cats[0, :] = np.arange(cfg.n_slots) % cfg.n_categories  # no repeats within 8 slots
    cats[0, 2] = cats[0, 12]
    plain = env.ctr(b, org._replace(category=(np.arange(cfg.n_slots) % cfg.n_categories)[None, :]))
    sat = env.ctr(b, org._replace(category=cats))
    assert sat[0, 12] < plain[0, 12]
    with pytest.raises(ProblemError, match="feature_penalty"):
        FeedConfig.second_world(feature_penalty=-1.0)


# ------------------------------------------------------------------ the click model's effects
def test_taste_posterior_is_calibrated_and_sharpens_with_cleaner_dwell() -> None:
    rmse = {}
    for noise in (0.1, 1.0):
        env = FeedEnv(FeedConfig(n_slots=10, n_cards=5, dwell_noise=noise))
        b = env.sample(400, seed=1)
        mean, cov = env.taste_posterior(b.requests)
        err = mean.interest - b.users.interest
        var = np.diagonal(cov, axis1=1, axis2=2)[:, : env.n_categories]
        assert 0.75 < (err**2).mean() / var.mean() < 1.33  # the posterior's spread is the error's
        rmse[noise] = float(np.sqrt((err**2).mean()))
    assert rmse[0.1] < 0.7 * rmse[1.0] < 0.7 * 0.6  # both well inside the prior (0.6)


def test_taste_posterior_refuses_bad_input() -> None:
    env = FeedEnv(FeedConfig(n_slots=10, n_cards=5))
    b = env.sample(3, seed=1)
    with pytest.raises(ProblemError, match="requests must be a Requests batch .*got FeedBatch"):
        env.taste_posterior(b)
    with pytest.raises(ProblemError, match="newton_steps must be an int >= 1; got 0"):
        env.taste_posterior(b.requests, newton_steps=0)


def test_informed_matrix_is_the_truth_when_dwell_reveals_the_taste() -> None:
    env = FeedEnv(FeedConfig(n_slots=10, n_cards=5, dwell_noise=0.01))
    b = env.sample(20, seed=2)
    (card, organic), (true_card, true_organic) = env.informed_ctr_matrix(b), env.ctr_matrix(b)
    logit = lambda p: np.log(p) - np.log1p(-p)  # noqa: E731
    assert np.abs(logit(card) - logit(true_card)).max() < 0.1
    assert np.abs(logit(organic) - logit(true_organic)).max() < 0.1
    noisy = FeedEnv(FeedConfig(n_slots=10, n_cards=5, dwell_noise=3.0))
    assert np.abs(logit(noisy.informed_ctr_matrix(b)[0]) - logit(true_card)).mean() > 0.1


def test_same_type_neighbour_depresses_a_card() -> None:
    env = FeedEnv(FeedConfig(n_slots=12, n_cards=6, n_types=1, gains=(1.0,), category_penalty=0.0))
    b = env.sample(50, seed=0)
    k = 12
    near = np.full((50, k), -1)
    near[:, 5], near[:, 6] = 0, 1
    far = np.full((50, k), -1)
    far[:, 5], far[:, 11] = 0, 1
    p_near = env.ctr(b, b.requests.compose(near))[:, 5]
    p_far = env.ctr(b, b.requests.compose(far))[:, 5]
    assert np.all(p_near < p_far)


def test_same_category_neighbour_depresses(env: FeedEnv) -> None:
    b = env.sample(30, seed=3)
    req = b.requests
    cats = req.page_category.copy()
    cats[:, 4] = (cats[:, 5] + 1) % SMALL.n_categories
    cats[:, 6] = (cats[:, 5] + 2) % SMALL.n_categories
    apart = FeedBatch(_with(req, page_category=cats), b.users)
    cats2 = cats.copy()
    cats2[:, 4] = cats[:, 5]
    together = FeedBatch(_with(req, page_category=cats2), b.users)
    p_apart = env.ctr(apart, apart.requests.organic)[:, 5]
    p_together = env.ctr(together, together.requests.organic)[:, 5]
    assert np.all(p_together < p_apart)


def test_fatigue_and_boost_from_behaviour(env: FeedEnv) -> None:
    b = env.sample(20, seed=5)
    req = b.requests
    card, _ = env.ctr_matrix(b)
    # fatigue: make every recent exposure a card of candidate 0's type
    t0 = req.cand_type[:, :1]
    tired = FeedBatch(_with(req, exp_type=np.broadcast_to(t0, req.exp_type.shape)), b.users)
    card_tired, _ = env.ctr_matrix(tired)
    assert np.all(card_tired[:, 0, :] < card[:, 0, :])
    # boost: make every recent click of candidate 0's category
    c0 = req.cand_category[:, :1]
    keen = FeedBatch(
        _with(req, clk_category=np.broadcast_to(c0, req.clk_category.shape), clk_mask=np.ones_like(req.clk_mask)),
        b.users,
    )
    card_keen, _ = env.ctr_matrix(keen)
    assert np.all(card_keen[:, 0, :] > card[:, 0, :])


@pytest.mark.parametrize("world", ["default", "second"])
def test_intent_fades_with_depth_only_where_switched_on(env: FeedEnv, world: str) -> None:
    """Behaviour's logit shift is the same at every slot in the default world; in the second it is
    ``fade(s) = 1 - intent_fade * s / (s + intent_reach)`` times the shift at the top, in the matrix and the pages."""
    if world == "second":
        env = FeedEnv(SECOND)
    cfg, k = env.config, env.config.n_slots
    b = env.sample(6, seed=8)
    req = b.requests
    c0 = req.cand_category[:, :1]
    keen = FeedBatch(
        _with(req, clk_category=np.broadcast_to(c0, req.clk_category.shape), clk_mask=np.ones_like(req.clk_mask)),
        b.users,
    )
    lg = lambda p: np.log(p / (1 - p))  # noqa: E731
    shift = lg(env.ctr_matrix(keen)[0][:, 0]) - lg(env.ctr_matrix(b)[0][:, 0])  # (R, K)
    s = np.arange(k)
    fade = 1.0 - cfg.intent_fade * s / (s + cfg.intent_reach)
    assert np.all(shift[:, 0] > 0.1)
    np.testing.assert_allclose(shift, shift[:, :1] * fade[None, :], rtol=1e-9, atol=1e-12)
    if world == "default":
        np.testing.assert_allclose(shift, shift[:, :1] * np.ones(k), rtol=1e-12)
    else:
        assert shift[0, -1] < 0.5 * shift[0, 0]
        # the organic items' own boost fades the same way on a composed page
        org_shift = lg(env.ctr(keen, req.organic)) - lg(env.ctr(b, req.organic))
        same = req.page_category == c0
        np.testing.assert_allclose(org_shift[same], (shift[:, :1] * fade[None, :])[same], rtol=1e-9, atol=1e-12)
    with pytest.raises(ProblemError, match="intent_fade"):
        FeedConfig(intent_fade=1.5)
    with pytest.raises(ProblemError, match="intent_reach"):
        FeedConfig(intent_reach=0.0)


def test_examination_falls_with_depth(env: FeedEnv) -> None:
    assert env.examination[0] == 1.0
    assert np.all(np.diff(env.examination) < 0)


# ------------------------------------------------------------------ seeding, policy, speed-independent facts
def test_seeded_and_pure(env: FeedEnv) -> None:
    assert env.log(50, seed=3) == env.log(50, seed=3)
    assert env.log(50, seed=3) != env.log(50, seed=4)
    a, b = env.sample(10, seed=1), env.sample(10, seed=1)
    np.testing.assert_array_equal(a.users.interest, b.users.interest)


def test_random_policy_uses_each_card_once(env: FeedEnv) -> None:
    req = env.sample(200, seed=0).requests
    a = random_policy(req, np.random.default_rng(1), density=(0.9, 1.0))
    for row in a:
        used = row[row >= 0]
        assert used.size == np.unique(used).size
    assert (a >= 0).sum(1).max() == SMALL.n_cards  # capped by N
    a0 = random_policy(req, np.random.default_rng(1), density=(0.0, 0.0))
    assert (a0 == -1).all()


def test_log_contents(env: FeedEnv) -> None:
    log = env.log(400, seed=0)
    assert isinstance(log, FeedLog) and len(log) == 400
    assert not (log.clicked & ~log.exposed).any()
    assert (log.page_type < SMALL.n_types).any() and (log.page_type == SMALL.n_types).any()
    ctr = log.clicked.sum() / log.exposed.sum()
    assert 0.02 < ctr < 0.3
    # the logged true CTR is the oracle's for the logged page: clicks agree with it on average
    y, p = log.clicked[log.exposed], log.true_ctr[log.exposed]
    assert abs(y.mean() - p.mean()) < 4.5 * np.sqrt(p.mean() / y.size)


def test_chunked_log_has_every_request(env: FeedEnv) -> None:
    log = env.log(25, seed=2, chunk=10)
    assert len(log) == 25 and log.dims["K"] == SMALL.n_slots


def test_custom_policy(env: FeedEnv) -> None:
    def only_slot_zero(req, rng):
        a = np.full((len(req), req.dims["K"]), -1)
        a[:, 0] = 0
        return a

    log = env.log(30, seed=0, policy=only_slot_zero)
    assert (log.page_type[:, 0] < SMALL.n_types).all()
    assert (log.page_type[:, 1:] == SMALL.n_types).all()


# ------------------------------------------------------------------ the schema
def test_log_round_trips_through_the_file_schema(env: FeedEnv, tmp_path) -> None:
    log = env.log(40, seed=1)
    path = tmp_path / "log.npz"
    log.save(path)
    back = FeedLog.load(path)
    assert back == log
    assert back.n_types == log.n_types and back.dims == log.dims
    # and through plain arrays, as a user would fill it
    rebuilt = FeedLog(log.n_types, log.n_categories, **{k: np.asarray(v).tolist() for k, v in log.fields.items()})
    assert rebuilt == log
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_requests_round_trip(env: FeedEnv, tmp_path) -> None:
    req = env.sample(7, seed=0).requests
    req.save(tmp_path / "req.npz")
    assert Requests.load(tmp_path / "req.npz") == req
    with pytest.raises(LogSchemaError, match="format"):
        FeedLog.load(tmp_path / "req.npz")


def test_bad_files_are_refused(env: FeedEnv, tmp_path) -> None:
    log = env.log(10, seed=0)
    path = tmp_path / "log.npz"
    log.save(path)
    raw = path.read_bytes()
    (tmp_path / "cut.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(LogSchemaError, match="cut.npz"):
        FeedLog.load(tmp_path / "cut.npz")
    np.savez(tmp_path / "plain.npz", a=np.zeros(3))
    with pytest.raises(LogSchemaError, match="__schema__"):
        FeedLog.load(tmp_path / "plain.npz")
    with pytest.raises(LogSchemaError, match="cannot read"):
        FeedLog.load(tmp_path / "missing.npz")


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("clicked", "click_unexposed", "clicked must be False where exposed is False"),
        ("page_type", "type_too_big", "page_type must hold types in"),
        ("page_category", "negative", "page_category must hold categories"),
        ("exp_features", "nan", "exp_features must be finite"),
        ("page_features", "wrong_k", "page_features must have K ="),
        ("exposed", "floats", "exposed must hold booleans"),
    ],
)
def test_schema_validation_names_the_field(env: FeedEnv, field: str, value: str, message: str) -> None:
    log = env.log(5, seed=0)
    f = log.fields
    arr = np.array(f[field])
    if value == "click_unexposed":
        ex = np.array(f["exposed"])
        ex[0, -1] = False
        arr[0, -1] = True
        f["exposed"] = ex
    elif value == "type_too_big":
        arr[0, 0] = log.n_types + 1
    elif value == "negative":
        arr[1, 2] = -1
    elif value == "nan":
        arr = arr.astype(float)
        arr[0, 0, 0] = np.nan
    elif value == "wrong_k":
        arr = arr[:, :-1]
    elif value == "floats":
        arr = arr.astype(float) * 0.5
    f[field] = arr
    with pytest.raises(LogSchemaError, match=message):
        FeedLog(log.n_types, log.n_categories, **f)


def test_schema_missing_and_unknown_fields(env: FeedEnv) -> None:
    log = env.log(3, seed=0)
    f = log.fields
    del f["exp_mask"]
    with pytest.raises(LogSchemaError, match="missing field"):
        FeedLog(log.n_types, log.n_categories, **f)
    f = log.fields
    f["surprise"] = np.zeros(3)
    with pytest.raises(LogSchemaError, match="unknown field"):
        FeedLog(log.n_types, log.n_categories, **f)


def test_compose_refuses_reuse(env: FeedEnv) -> None:
    req = env.sample(1, seed=0).requests
    a = np.full(SMALL.n_slots, -1)
    a[[0, 3]] = 2
    with pytest.raises(LogSchemaError, match="twice"):
        req.compose(a)


def test_split_partitions_requests(env: FeedEnv) -> None:
    log = env.log(50, seed=0)
    parts = log.split((0.6, 0.2, 0.2), seed=1)
    assert [len(p) for p in parts] == [30, 10, 10]
    total = sum(int(p.clicked.sum()) for p in parts)
    assert total == int(log.clicked.sum())


def test_config_and_argument_errors(env: FeedEnv) -> None:
    with pytest.raises(ProblemError, match="n_cards"):
        FeedConfig(n_cards=0)
    with pytest.raises(ProblemError, match="log_density"):
        FeedConfig(log_density=(0.5, 0.2))
    with pytest.raises(ProblemError, match="gains"):
        FeedConfig(gains=(1.0, float("nan")))
    with pytest.raises(ProblemError, match="seed"):
        env.sample(3, seed=-1)
    with pytest.raises(ProblemError, match="n_requests"):
        env.log(0)
    b = env.sample(2, seed=0)
    with pytest.raises(ProblemError, match="page"):
        env.ctr(b, b.requests[:1].organic)
