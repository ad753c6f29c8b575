"""ESAN: the grid equals per-pair scoring, training learns, checkpoints are safe, metrics are right."""

from __future__ import annotations

import doctest
import importlib
import itertools
import os

import numpy as np
import pytest
import torch

from esan.checkpoint import load_checkpoint, save_checkpoint
from esan.data import InputError
from esan.metrics import auc, calibration_error, evaluate_predictions, gauc, logloss
from esan.model import ESAN, FORWARD_INPUTS, ESANConfig
from esan.training import evaluate, train
from mixrank.errors import CheckpointError
from mixrank.synthetic import FeedConfig, FeedEnv

SMALL = FeedConfig(n_slots=10, n_cards=5, exposure_len=12, history_len=40, click_len=4)


@pytest.fixture(scope="module")
def env() -> FeedEnv:
    return FeedEnv(SMALL)


@pytest.fixture(scope="module")
def requests(env):
    return env.sample(3, seed=0).requests


def _model(data, seed: int = 0, **options) -> ESAN:
    torch.manual_seed(seed)
    return ESAN(ESANConfig.for_data(data, dim=16, hidden=16, **options)).eval()


def _pair_rows(req, r: int, c: int, s: int) -> dict:
    """The tensors of one (card, slot) pair of request r, as a row of its own."""
    t = ESAN.tensors(req, slice(r, r + 1))
    row = {k: v for k, v in t.items() if not k.startswith("cand_")}
    row["cand_type"] = t["cand_type"][:, c]
    row["cand_category"] = t["cand_category"][:, c]
    row["cand_features"] = t["cand_features"][:, c]
    return row


# ------------------------------------------------------------------ the grid
DIANPING = {"use_last_match": True, "use_cross_attention": True, "use_side_views": True, "use_dwell_filter": True,
            "dwell_threshold": 0.0}


@pytest.mark.parametrize(
    "options", [{}, {"use_window": False}, {"use_behaviour": False}, DIANPING, {"neighbour_units": 8}, {"behaviour_gates": 0}]
)
def test_grid_equals_per_pair_scoring(requests, options) -> None:
    model = _model(requests, **options)
    card, organic = model.predict(requests)
    n, k = requests.dims["N"], requests.dims["K"]
    rows, slots, where = [], [], []
    for r, c, s in itertools.product(range(len(requests)), range(n), range(k)):
        rows.append(_pair_rows(requests, r, c, s))
        slots.append(s)
        where.append((r, c, s))
    batch = {key: torch.cat([row[key] for row in rows]) for key in rows[0]}
    with torch.no_grad():
        per_pair = torch.sigmoid(model.score_pairs(batch, torch.tensor(slots))).double().numpy()
    grid = np.array([card[r, c, s] for r, c, s in where])
    np.testing.assert_allclose(grid, per_pair, rtol=1e-5, atol=1e-6)


def test_grid_uses_the_organic_surroundings(requests) -> None:
    """Changing the organic item at slot s leaves column s unchanged but moves its neighbours' columns."""
    model = _model(requests)
    card, _ = model.predict(requests[0])
    f = requests[0].fields
    cats = np.array(f["page_category"])
    cats[0, 4] = (cats[0, 4] + 1) % SMALL.n_categories
    f["page_category"] = cats
    changed = type(requests)(requests.n_types, requests.n_categories, **f)
    card2, _ = model.predict(changed)
    np.testing.assert_allclose(card[:, 4], card2[:, 4], rtol=1e-6)
    assert np.abs(card[:, 5] - card2[:, 5]).max() > 1e-6
    assert np.abs(card[:, 0] - card2[:, 0]).max() < 1e-7  # slot 0 is beyond the window of slot 4


def test_organic_ctr_is_the_training_path(env, requests) -> None:
    """The organic CTR at slot s equals the logged-page score of the organic page's item s."""
    model = _model(requests)
    _, organic = model.predict(requests)
    t = ESAN.tensors(requests)
    with torch.no_grad():
        logged = torch.sigmoid(model.log_logits(t)).double().numpy()
    np.testing.assert_allclose(organic, logged, rtol=1e-5, atol=1e-7)


def test_behaviour_shifts_a_card_alike_at_every_slot_until_its_gates_learn_depth(requests) -> None:
    """The gates are the only way behaviour reaches the order of a card's slots: with A = 0 a change of
    behaviour moves each card's logit by one amount at every slot; with A != 0 the move depends on depth."""
    f = requests.fields
    f["clk_category"] = (np.array(f["clk_category"]) + 3) % SMALL.n_categories
    f["exp_action"] = np.array(f["exp_action"]) * -1.0
    other = type(requests)(requests.n_types, requests.n_categories, **f)
    model = _model(requests)
    with torch.no_grad():
        model.behaviour.card[2].weight.normal_(0.0, 0.5)  # a behaviour term worth seeing

    def shift() -> np.ndarray:
        lg = lambda p: np.log(p / (1 - p))  # noqa: E731
        return lg(model.predict(other)[0]) - lg(model.predict(requests)[0])  # (R, N, K)

    flat = shift()
    assert np.abs(flat).max() > 1e-2
    np.testing.assert_allclose(flat, np.broadcast_to(flat[..., :1], flat.shape), atol=1e-5)
    with torch.no_grad():
        model.behaviour.gate.weight.fill_(-0.8)  # the pull fades with depth
    faded = shift()
    assert np.abs(faded[..., 0] - faded[..., -1]).max() > 1e-2


def test_ablation_without_behaviour_ignores_it(requests) -> None:
    model = _model(requests, use_behaviour=False)
    f = requests.fields
    f["exp_action"] = np.array(f["exp_action"]) + 3.0
    f["clk_category"] = (np.array(f["clk_category"]) + 1) % SMALL.n_categories
    other = type(requests)(requests.n_types, requests.n_categories, **f)
    np.testing.assert_allclose(model.predict(requests)[0], model.predict(other)[0])
    full = _model(requests)
    assert np.abs(full.predict(requests)[0] - full.predict(other)[0]).max() > 1e-6


@pytest.mark.parametrize(
    "option, field, used",
    [("use_clicks", "clk_category", False), ("use_exposures", "exp_category", False), ("use_actions", "exp_action", False),
     ("use_clicks", "exp_category", True)],
)
def test_finer_ablations_ignore_their_part(requests, option, field, used) -> None:
    model = _model(requests, **{option: False})
    f = requests.fields
    f[field] = (np.array(f[field]) + 1) % SMALL.n_categories if field.endswith("category") else np.array(f[field]) + 3.0
    other = type(requests)(requests.n_types, requests.n_categories, **f)
    diff = np.abs(model.predict(requests)[0] - model.predict(other)[0]).max()
    assert (diff > 1e-6) if used else (diff < 1e-6), diff


def test_dwell_filter_drops_short_unclicked_exposures(requests) -> None:
    model = _model(requests, use_dwell_filter=True, dwell_threshold=0.0)
    act = np.array(requests.exp_action)
    dropped = (act[..., 2] < 0.5) & (act[..., 0] < 0.0)  # not clicked, dwell below the threshold
    assert dropped.any() and (~dropped).any()

    def changed(where):
        f = requests.fields
        cats = np.array(f["exp_category"])
        cats[where] = (cats[where] + 1) % SMALL.n_categories
        f["exp_category"] = cats
        return type(requests)(requests.n_types, requests.n_categories, **f)

    base = model.predict(requests)[0]
    np.testing.assert_array_equal(model.predict(changed(dropped))[0], base)
    assert np.abs(model.predict(changed(~dropped))[0] - base).max() > 1e-6
    with pytest.raises(InputError, match="dwell"):
        ESAN(ESANConfig.for_data(requests, use_dwell_filter=True, click_column=7)).predict(requests)


def test_last_match_cross_attention_and_side_views_use_the_sequences(requests) -> None:
    for option in ("use_last_match", "use_cross_attention", "use_side_views"):
        on, off = _model(requests, **{option: True}), _model(requests)
        assert on.n_parameters() > off.n_parameters()
        f = requests.fields
        f["clk_category"] = (np.array(f["clk_category"]) + 1) % SMALL.n_categories
        other = type(requests)(requests.n_types, requests.n_categories, **f)
        assert np.abs(on.predict(requests)[0] - on.predict(other)[0]).max() > 1e-6


def test_model_is_small() -> None:
    cfg = ESANConfig(n_types=3, n_categories=8, n_features=4, exp_action_dim=3, clk_action_dim=2)
    assert ESAN(cfg).n_parameters() * 4 < 1_000_000


def test_predict_checks_the_data(env, requests) -> None:
    other = FeedEnv(FeedConfig(n_slots=10, n_cards=5, n_features=3)).sample(1, seed=0).requests
    with pytest.raises(InputError, match="F"):
        _model(requests).predict(other)
    with pytest.raises(InputError, match="Requests"):
        _model(requests).predict(env.log(2, seed=0))



def test_long_sequences_are_truncated_to_the_most_recent(requests) -> None:
    model = _model(requests, max_seq_len=4)
    f = requests.fields
    for name in list(f):
        if name.startswith(("exp_", "clk_")):
            f[name] = np.array(f[name])[:, :4]  # index 0 is the latest entry: keep the first four
    cut = type(requests)(requests.n_types, requests.n_categories, **f)
    np.testing.assert_array_equal(model.predict(requests)[0], model.predict(cut)[0])
    assert requests.dims["Le"] > 4


def test_config_validation() -> None:
    with pytest.raises(InputError, match="heads"):
        ESANConfig(n_types=1, n_categories=1, n_features=1, exp_action_dim=1, clk_action_dim=1, dim=10, heads=3)
    with pytest.raises(InputError, match="use_window"):
        ESANConfig(n_types=1, n_categories=1, n_features=1, exp_action_dim=1, clk_action_dim=1, use_window=1)
    with pytest.raises(InputError, match="unknown"):
        ESANConfig.from_dict({"n_types": 1, "bogus": 2})


# ------------------------------------------------------------------ training
def test_training_reduces_loss(env, tmp_path) -> None:
    log = env.log(600, seed=1)
    train_log, val_log = log[:500], log[500:]
    model = _model(log)
    before = evaluate(model, train_log)["all"]["logloss"]
    ckpt = tmp_path / "best.pt"
    result = train(model, train_log, val_log, epochs=4, batch_size=50, lr=5e-3, progress=False, checkpoint=ckpt)
    after = evaluate(model, train_log)["all"]["logloss"]
    rate = train_log.clicked.sum() / train_log.n_impressions
    constant = -(rate * np.log(rate) + (1 - rate) * np.log(1 - rate))  # the best prediction without features
    assert after < before - 0.005, (before, after)
    assert after < constant - 0.003, (constant, after)  # (weights of the best validation epoch, not the last)
    assert result.steps > 0 and result.best_epoch >= 1 and len(result.history) == result.epochs_run
    # the checkpoint holds the best weights, the ones the model was left with
    back = load_checkpoint(ckpt)
    np.testing.assert_allclose(back.predict_log(val_log), model.predict_log(val_log), rtol=1e-6)
    assert "TrainResult(" in str(result)


def test_early_stopping_and_max_steps(env) -> None:
    log = env.log(120, seed=2)
    model = _model(log)
    res = train(model, log[:100], log[100:], epochs=50, batch_size=100, lr=0.5, patience=1, progress=False)
    assert res.stopped_early and res.epochs_run < 50
    res2 = train(_model(log), log, None, epochs=5, batch_size=10, max_steps=3, progress=False)
    assert res2.steps == 3


def test_cosine_schedule_and_card_weight(env) -> None:
    log = env.log(120, seed=5)
    res = train(_model(log), log[:100], log[100:], epochs=3, batch_size=20, lr=4e-3, schedule="cosine",
                card_weight=2.5, progress=False)
    lrs = [row["lr"] for row in res.history]
    assert lrs[0] > lrs[1] > lrs[2] >= 4e-3 * 0.05 - 1e-12
    with pytest.raises(InputError, match="schedule"):
        train(_model(log), log, schedule="linear", progress=False)
    with pytest.raises(InputError, match="card_weight"):
        train(_model(log), log, card_weight=0.0, progress=False)


def test_training_arguments_are_checked(env) -> None:
    log = env.log(10, seed=0)
    model = _model(log)
    with pytest.raises(InputError, match="epochs"):
        train(model, log, epochs=0, progress=False)
    with pytest.raises(InputError, match="lr"):
        train(model, log, lr=-1.0, progress=False)
    with pytest.raises(InputError, match="train_log"):
        train(model, "log.npz", progress=False)


def test_evaluate_reports_oracle_and_parts(env) -> None:
    log = env.log(200, seed=3)
    out = evaluate(_model(log), log)
    assert set(out) == {"all", "cards", "organic", "oracle", "oracle_cards"}
    assert out["all"]["n"] == log.n_impressions
    assert out["cards"]["n"] + out["organic"]["n"] == out["all"]["n"]


# ------------------------------------------------------------------ checkpoints
@pytest.fixture()
def saved(requests, tmp_path):
    model = _model(requests)
    path = save_checkpoint(model, tmp_path / "esan.pt", extra={"note": "x"})
    return model, path


def test_checkpoint_round_trip(saved, requests) -> None:
    model, path = saved
    back, extra = load_checkpoint(path, with_extra=True)
    assert extra == {"note": "x"} and back.config == model.config
    np.testing.assert_array_equal(back.predict(requests)[0], model.predict(requests)[0])
    assert sorted(p.name for p in path.parent.iterdir()) == ["esan.pt"]  # no temporary file left


def test_truncated_checkpoint_is_refused(saved) -> None:
    _, path = saved
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CheckpointError, match=f"{path.name}.*(corrupt|truncated)"):
        load_checkpoint(path)


def test_corrupted_weights_are_refused(saved) -> None:
    model, path = saved
    raw = bytearray(path.read_bytes())
    # flip bytes inside the largest tensor's data (found by its float32 bytes), leaving the archive readable
    weight = model.head.cand.weight.detach().numpy().tobytes()
    at = bytes(raw).find(weight[:64])
    assert at > 0
    raw[at + 8 : at + 12] = b"\x00\x00\xc0\x7f"  # a NaN
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(path)


def test_foreign_and_missing_files_are_refused(tmp_path) -> None:
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not an ESAN checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    (tmp_path / "junk.pt").write_bytes(os.urandom(300))
    with pytest.raises(CheckpointError, match="junk.pt"):
        load_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nothing.pt")


def test_newer_or_mismatched_checkpoints_are_refused(saved, requests, tmp_path) -> None:
    model, path = saved
    payload = torch.load(path, weights_only=True)
    payload["version"] = 99
    torch.save(payload, tmp_path / "newer.pt")
    with pytest.raises(CheckpointError, match="newer"):
        load_checkpoint(tmp_path / "newer.pt")
    payload = torch.load(path, weights_only=True)
    payload["config"]["dim"] = 8  # weights no longer fit the config
    torch.save(payload, tmp_path / "mismatch.pt")
    with pytest.raises(CheckpointError, match="do not fit"):
        load_checkpoint(tmp_path / "mismatch.pt")


def test_checkpoint_version_must_be_an_int_not_a_bool(saved, tmp_path) -> None:
    _, path = saved
    payload = torch.load(path, weights_only=True)
    payload["version"] = True  # True == 1, but it is not a version
    torch.save(payload, tmp_path / "bool.pt")
    with pytest.raises(CheckpointError, match="version must be an int"):
        load_checkpoint(tmp_path / "bool.pt")


def test_a_text_file_is_refused_clearly(tmp_path) -> None:
    (tmp_path / "notes.pt").write_text("101 reasons this is not a checkpoint\n")
    with pytest.raises(CheckpointError, match=r"notes.pt is not an ESAN checkpoint.*torch.save archive"):
        load_checkpoint(tmp_path / "notes.pt")


def test_non_finite_weights_are_refused_even_with_a_valid_digest(saved, tmp_path) -> None:
    from esan.checkpoint import _digest

    _, path = saved
    payload = torch.load(path, weights_only=True)
    payload["state_dict"]["head.cand.weight"][0, 0] = float("nan")
    payload["digest"] = _digest(payload["state_dict"])  # a digest that matches the NaN weights
    torch.save(payload, tmp_path / "nan.pt")
    with pytest.raises(CheckpointError, match="finite.*head.cand.weight"):
        load_checkpoint(tmp_path / "nan.pt")


def test_checkpoint_carries_scaling_and_calibration(env, requests, tmp_path) -> None:
    log = env.log(60, seed=3)
    model = _model(log)
    model.fit_scaling(log)
    model.calibrate(log)
    assert model.fitted.tolist() == [1.0, 1.0]
    assert not torch.equal(model.items.scaling.std, torch.ones_like(model.items.scaling.std))
    path = save_checkpoint(model, tmp_path / "fitted.pt")
    back = load_checkpoint(path)
    for name in ("calib_bias", "items.scaling.mean", "exp_seq.scaling.std", "clk_seq.scaling.mean"):
        assert torch.equal(back.state_dict()[name], model.state_dict()[name]), name
    np.testing.assert_array_equal(back.predict(requests)[0], model.predict(requests)[0])


def test_version_1_checkpoints_load_with_identity_scaling(saved, requests, tmp_path) -> None:
    from esan.checkpoint import _digest

    model, path = saved
    payload = torch.load(path, weights_only=True)
    old = {k: v for k, v in payload["state_dict"].items() if not k.endswith(("calib_scale", "calib_bias", "fitted"))
           and ".scaling." not in k}
    payload.update(version=1, state_dict=old, digest=_digest(old))
    torch.save(payload, tmp_path / "v1.pt")
    back = load_checkpoint(tmp_path / "v1.pt")
    np.testing.assert_array_equal(back.predict(requests)[0], model.predict(requests)[0])


def test_checkpoints_from_before_the_neighbour_term_load_without_it(requests, tmp_path) -> None:
    model = _model(requests, neighbour_units=0)
    save_checkpoint(model, tmp_path / "old.pt")
    payload = torch.load(tmp_path / "old.pt", weights_only=True)
    payload["config"] = {k: v for k, v in payload["config"].items() if k != "neighbour_units"}
    torch.save(payload, tmp_path / "old.pt")
    back = load_checkpoint(tmp_path / "old.pt")
    assert back.config.neighbour_units == 0
    np.testing.assert_array_equal(back.predict(requests)[0], model.predict(requests)[0])


def test_calibration_matches_predicted_and_observed_clicks_per_type(env) -> None:
    cal_log, held_out = env.log(3000, seed=11), env.log(3000, seed=12)
    model = _model(cal_log)
    with torch.no_grad():
        model.head.logit.bias.add_(2.0)  # an untrained model that over-predicts 2-4x
    types = cal_log.page_type[cal_log.exposed]

    def ratios(log, pred):
        t, sel = log.page_type[log.exposed], log.exposed
        return [pred[sel][t == k].sum() / log.clicked[sel][t == k].sum() for k in range(log.n_types + 1)]

    assert min(ratios(cal_log, model.predict_log(cal_log))) > 2.0
    offsets = model.calibrate(cal_log)
    assert set(offsets) == set(range(SMALL.n_types + 1)) and all(b < -0.5 for b in offsets.values())
    on_cal = ratios(cal_log, model.predict_log(cal_log))
    assert all(abs(r - 1) < 0.03 for r in on_cal), on_cal  # matched up to the prior's pull (~100+ clicks a type)
    held = ratios(held_out, model.predict_log(held_out))
    assert all(0.8 < r < 1.25 for r in held), held  # held out: clicks are noisy at this size
    assert (types < SMALL.n_types).sum() > 0
    # the matrix for planning is calibrated the same way as the training path
    req = env.sample(2, seed=0).requests
    card, org = model.predict(req)
    model.calib_bias.zero_()
    card0, org0 = model.predict(req)
    assert (card < card0).all() and (org < org0).all()


def test_failed_save_leaves_the_old_file(saved, monkeypatch) -> None:
    model, path = saved
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError):
        save_checkpoint(model, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["esan.pt"]


# ------------------------------------------------------------------ metrics
def _auc_by_pairs(y, p) -> float:
    pos, neg = p[y == 1], p[y == 0]
    diff = pos[:, None] - neg[None, :]
    return float(((diff > 0) + 0.5 * (diff == 0)).mean())


def test_auc_matches_pair_counting() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        n = int(rng.integers(2, 60))
        y = rng.random(n) < 0.3
        p = np.round(rng.random(n), 1)  # ties on purpose
        if y.all() or not y.any():
            continue
        assert auc(y, p) == pytest.approx(_auc_by_pairs(y, p))


def test_gauc_matches_group_loop() -> None:
    rng = np.random.default_rng(1)
    y = rng.random(300) < 0.3
    p = np.round(rng.random(300), 2)
    g = rng.integers(0, 15, size=300)
    num = den = 0.0
    for grp in np.unique(g):
        m = g == grp
        if y[m].all() or not y[m].any():
            continue
        num += m.sum() * _auc_by_pairs(y[m], p[m])
        den += m.sum()
    assert gauc(y, p, g) == pytest.approx(num / den)


def test_logloss_and_calibration() -> None:
    rng = np.random.default_rng(2)
    p = rng.uniform(0.01, 0.3, size=200_000)
    y = rng.random(p.size) < p
    assert calibration_error(y, p) < 0.005
    assert calibration_error(y, np.clip(p * 1.5, 0, 1)) > 0.03
    assert logloss([1, 0], [0.9, 0.1]) == pytest.approx(-np.log(0.9))
    m = evaluate_predictions(y, p)
    assert m["pred_over_obs"] == pytest.approx(1.0, abs=0.02)
    with pytest.raises(InputError, match="probabilities"):
        auc([0, 1], [0.5, 1.5])
    with pytest.raises(InputError, match="shapes"):
        logloss([0, 1, 1], [0.5, 0.5])


def test_matrix_errors_match_a_loop() -> None:
    from scipy.stats import spearmanr

    from esan.metrics import matrix_errors

    rng = np.random.default_rng(0)
    true = rng.uniform(0.01, 0.3, size=(4, 5, 7))
    pred = np.clip(true + rng.normal(0, 0.05, size=true.shape), 0.001, 0.999)
    m = matrix_errors(pred, true)
    lg = lambda p: np.log(p / (1 - p))  # noqa: E731
    for r in range(4):
        slot = np.mean([spearmanr(pred[r, c], true[r, c])[0] for c in range(5)])
        card = np.mean([spearmanr(pred[r, :, s], true[r, :, s])[0] for s in range(7)])
        rmse = np.sqrt(np.mean((lg(pred[r]) - lg(true[r])) ** 2))
        np.testing.assert_allclose([m["slot_rank_corr"][r], m["card_rank_corr"][r], m["logit_rmse"][r]],
                                   [slot, card, rmse], rtol=1e-10)
    assert matrix_errors(true, true)["slot_rank_corr"].tolist() == [1.0] * 4
    with pytest.raises(InputError, match="shapes"):
        matrix_errors(pred[:, :, :3], true)


def test_per_type_calibration_and_bootstrap() -> None:
    from esan.metrics import bootstrap_mean_ci, per_type_calibration

    types = np.array([0, 0, 0, 1, 1, 2])
    y = np.array([1, 0, 1, 0, 1, 0])
    p = np.array([0.5, 0.5, 0.5, 0.2, 0.2, 0.1])
    got = per_type_calibration(types, y, p, expected=p * 2)
    assert got[0]["pred_over_obs"] == pytest.approx(0.75) and got[1]["pred_over_obs"] == pytest.approx(0.4)
    assert got[2]["pred_over_obs"] == pytest.approx(0.1) and got[0]["pred_over_expected"] == pytest.approx(0.5)
    mean, lo, hi = bootstrap_mean_ci(np.r_[np.zeros(50), np.ones(50)], n_boot=500)
    assert mean == 0.5 and 0.38 < lo < 0.5 < hi < 0.62


@pytest.mark.parametrize("module", ["esan.data", "esan.model", "esan.metrics", "esan.checkpoint", "esan.training"])
def test_esan_doctests(module) -> None:
    """The esan package is not under pytest's doctest paths; run its examples here."""
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_forward_inputs_order_matches_forward() -> None:
    import inspect

    from esan.model import MASK_INPUTS, SPARSE_INPUTS

    params = list(inspect.signature(ESAN.forward).parameters)[1:]
    assert tuple(params) == (*FORWARD_INPUTS, *SPARSE_INPUTS, "context", *MASK_INPUTS)

