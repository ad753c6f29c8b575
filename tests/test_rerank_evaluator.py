"""Evaluator: learns a planted neighbour interaction that a point-wise model cannot; safe checkpoints; clear errors."""

import numpy as np
import pytest
import torch

from mixrank.errors import CheckpointError, ProblemError, SolverError
from mixrank.rerank import Evaluator, ListLog


def _neighbour_world(r, seed):
    """Items of two colours; a clicked item loses most of its appeal next to an item of its colour."""
    rng = np.random.default_rng(seed)
    n, k = 6, 4
    colour = rng.integers(0, 2, size=(r, n))
    quality = rng.normal(0, 0.3, size=(r, n))
    items = np.concatenate([np.eye(2)[colour], quality[..., None], rng.normal(size=(r, n, 1))], axis=2)
    shown = np.argsort(rng.random((r, n)), axis=1)[:, :k]
    c = colour[np.arange(r)[:, None], shown]
    same = np.zeros((r, k))
    same[:, 1:] += c[:, 1:] == c[:, :-1]
    same[:, :-1] += c[:, 1:] == c[:, :-1]
    p = 1 / (1 + np.exp(-(0.3 + quality[np.arange(r)[:, None], shown] - 1.5 * same)))
    clicks = rng.random((r, k)) < p
    return ListLog(items=items, shown=shown, clicks=clicks, context=rng.normal(size=(r, 2))), colour


@pytest.fixture(scope="module")
def planted():
    log, _ = _neighbour_world(4000, 0)
    ev = Evaluator(dim=16, heads=2, layers=1, epochs=12, batch_size=64, progress=False, threads=1).fit(log)
    return ev


def test_learns_a_neighbour_penalty_that_a_pointwise_model_cannot(planted):
    ev = planted
    test, colour = _neighbour_world(200, 1)
    wins, gaps, pw_gaps = 0, [], []
    for r in range(200):
        a = np.flatnonzero(colour[r] == 0)
        b = np.flatnonzero(colour[r] == 1)
        if len(a) < 2 or len(b) < 2:
            continue
        alternating = [a[0], b[0], a[1], b[1]]
        clustered = [a[0], a[1], b[0], b[1]]
        s = ev.score(test.items[r], [alternating, clustered], context=test.context[r])
        wins += s[0] > s[1]
        gaps.append(s[0] - s[1])
        # the point-wise model's view: the same items at the same positions, no neighbours
        with torch.no_grad():
            pl = ev.pointwise(torch.from_numpy(test.items[r:r + 1]), torch.from_numpy(test.context[r:r + 1]),
                              torch.tensor([[alternating, clustered]]))
        pw_gaps.append(float(torch.sigmoid(pl)[0].sum(-1).diff()))
    n = len(gaps)
    # truth: alternating has 3 unlike-coloured pairs (no penalty), clustered has 2 like pairs: a large gap
    assert wins / n >= 0.95
    assert np.mean(gaps) > 0.3
    assert abs(np.mean(pw_gaps)) < 0.1 * np.mean(gaps)


def test_checkpoint_round_trip_and_refusals(planted, tmp_path):
    ev = planted
    test, _ = _neighbour_world(3, 2)
    lists = np.array([[0, 1, 2, 3], [3, 2, 1, 0]])
    want = ev.predict(test.items[0], lists, context=test.context[0])
    path = ev.save(tmp_path / "ev.pt", extra={"note": "x"})
    back = Evaluator.load(path)
    np.testing.assert_allclose(back.predict(test.items[0], lists, context=test.context[0]), want, atol=1e-6)
    np.testing.assert_allclose(back.item_scores(test.items[0], test.context[0]), ev.item_scores(test.items[0], test.context[0]), atol=1e-6)
    data = path.read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt"):
        Evaluator.load(tmp_path / "truncated.pt")
    torch.save({"format": "something else"}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="format"):
        Evaluator.load(tmp_path / "foreign.pt")
    payload = torch.load(path, weights_only=True)
    payload["version"] = 99
    torch.save(payload, tmp_path / "newer.pt")
    with pytest.raises(CheckpointError, match="version"):
        Evaluator.load(tmp_path / "newer.pt")
    payload["version"] = 1
    torch.save(payload, tmp_path / "older.pt")
    with pytest.raises(CheckpointError, match="version"):
        Evaluator.load(tmp_path / "older.pt")
    payload["version"] = 2
    payload["states"]["list"]["head.2.bias"] += 1.0
    torch.save(payload, tmp_path / "tampered.pt")
    with pytest.raises(CheckpointError, match="digest"):
        Evaluator.load(tmp_path / "tampered.pt")


def test_batch_predict_equals_single_requests(planted):
    test, _ = _neighbour_world(3, 3)
    lists = np.array([[[0, 1, 2, 3], [5, 4, 3, 2]]] * 3)
    batch = planted.predict(test.items, lists, context=test.context)
    for r in range(3):
        np.testing.assert_allclose(batch[r], planted.predict(test.items[r], lists[r], context=test.context[r]), atol=1e-6)
    w = np.array([1.0, 0.5, 0.25, 0.0])
    np.testing.assert_allclose(planted.score(test.items, lists, context=test.context, weights=w), (batch * w).sum(-1), rtol=1e-6)


def test_errors_name_the_parameter(planted):
    test, _ = _neighbour_world(2, 4)
    with pytest.raises(SolverError, match="not fitted"):
        Evaluator().predict(test.items[0], [[0, 1]])
    with pytest.raises(ProblemError, match="context"):
        planted.predict(test.items[0], [[0, 1, 2, 3]])
    with pytest.raises(ProblemError, match="items"):
        planted.predict(test.items[0][:, :3], [[0, 1, 2, 3]], context=test.context[0])
    with pytest.raises(ProblemError, match="lists"):
        planted.predict(test.items[0], [[0, 0, 1, 2]], context=test.context[0])
    with pytest.raises(ProblemError, match="lists"):
        planted.predict(test.items[0], [[0, 1, 2, 9]], context=test.context[0])
    with pytest.raises(ProblemError, match="K=4"):
        planted.predict(test.items[0], [[0, 1, 2, 3, 4]], context=test.context[0])
    with pytest.raises(SolverError, match="dim"):
        Evaluator(dim=10, heads=4)
    with pytest.raises(ProblemError, match="log"):
        Evaluator().fit("log.npz")


def _taste_world(r, seed):
    """Items known only by one-hot IDs; a user likes an item by ``<user, embedding[id]>`` (seen via the context)."""
    rng = np.random.default_rng(seed)
    m, n, k = 12, 6, 3
    emb = np.random.default_rng(99).normal(size=(m, 2))
    ids = np.argsort(rng.random((r, m)), axis=1)[:, :n]
    user = rng.normal(size=(r, 2))
    taste = np.einsum("rnd,rd->rn", emb[ids], user)
    shown = np.argsort(rng.random((r, n)), axis=1)[:, :k]
    p = 1 / (1 + np.exp(-(-0.5 + 1.5 * taste[np.arange(r)[:, None], shown])))
    context = np.concatenate([user, rng.normal(size=(r, 1))], axis=1)  # a dimension that carries nothing
    log = ListLog(items=np.eye(m)[ids], shown=shown, clicks=rng.random((r, k)) < p, context=context)
    return log, taste


def test_learns_user_item_tastes_from_one_hot_ids_and_context():
    log, _ = _taste_world(3000, 0)
    ev = Evaluator(dim=16, epochs=10, progress=False, threads=1).fit(log)
    test, taste = _taste_world(100, 1)
    from scipy.stats import kendalltau

    pw = np.mean([kendalltau(ev.item_scores(test.items[r], context=test.context[r]), taste[r])[0] for r in range(100)])
    # the list model's first-position click probability of each candidate, alone
    lm = np.mean([kendalltau(ev.predict(test.items[r], np.arange(6)[:, None], context=test.context[r])[:, 0],
                             taste[r])[0] for r in range(100)])
    assert pw > 0.7 and lm > 0.7, (pw, lm)


def test_ema_and_members_settings_are_checked():
    with pytest.raises(SolverError, match="members"):
        Evaluator(members=0)
    with pytest.raises(SolverError, match="ema"):
        Evaluator(ema=1.0)
    with pytest.raises(SolverError, match="ema"):
        Evaluator(ema=-0.1)
    with pytest.raises(SolverError, match="context_mlp must be True or False; got 'no'"):
        Evaluator(context_mlp="no")


def test_members_average_their_logits_and_survive_a_checkpoint(tmp_path):
    log, _ = _neighbour_world(300, 5)
    ev = Evaluator(dim=8, heads=2, epochs=2, members=2, progress=False, threads=1).fit(log)
    assert set(ev.fit_results) == {"list", "list1", "pointwise"}
    test, _ = _neighbour_world(3, 6)
    lists = np.array([[0, 1, 2, 3], [3, 2, 1, 0], [5, 0, 4, 1]])
    req = ev.requests(test.items[0], test.context[0])
    x, c = torch.from_numpy(req.items), torch.from_numpy(req.context)
    with torch.no_grad():
        each = [lm(lm.encode(x, c), torch.from_numpy(lists)[None]) for lm in ev.list_models]
    assert not torch.allclose(each[0], each[1])  # different seeds, different members
    want = torch.sigmoid((each[0] + each[1]) / 2)[0].numpy()
    np.testing.assert_allclose(ev.predict(test.items[0], lists, context=test.context[0]), want, atol=1e-6)
    back = Evaluator.load(ev.save(tmp_path / "two.pt"))
    np.testing.assert_allclose(back.predict(test.items[0], lists, context=test.context[0]), want, atol=1e-6)
