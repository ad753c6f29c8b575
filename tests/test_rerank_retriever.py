"""Beam search equals exhaustive search at full width; its local search ends at a local optimum; the retriever serves the best scored candidate."""

import numpy as np
import pytest
import torch

from mixrank.errors import ProblemError, SolverError
from mixrank.rerank import Beam, Evaluator, Greedy, SequenceRetriever
from mixrank.rerank.generators import _completions, list_scores_t, polish
from mixrank.synthetic.slates import SlateConfig, SlateEnv, all_lists


@pytest.fixture(scope="module")
def world():
    env = SlateEnv(SlateConfig(n_items=6, list_len=3))
    ev = Evaluator(dim=8, heads=2, layers=1, epochs=3, progress=False, threads=1).fit(env.log(600, seed=0))
    return env, ev


def test_completions_match_a_loop():
    rng = np.random.default_rng(0)
    order = torch.from_numpy(np.stack([rng.permutation(7) for _ in range(2)]))
    used = torch.from_numpy(rng.random((2, 3, 7)) < 0.3)
    got = _completions(order, used, 2)
    for r in range(2):
        for b in range(3):
            for j in range(7):
                want = [int(x) for x in order[r] if not used[r, b, x] and x != j][:2]
                assert got[r, b, j].tolist() == want


@pytest.mark.parametrize("complete", [True, False])
def test_full_width_beam_equals_exhaustive_search(world, complete):
    env, ev = world
    b = env.sample(4, seed=9)
    req = ev.requests(b.items, b.context, n_items=np.array([6, 5, 6, 4]))
    lists = Beam(width=120, complete=complete).generate(ev, req, 3)
    for r in range(4):
        every = all_lists(int(req.n_items[r]), 3)
        s = ev.score(b.items[r], every, context=b.context[r])
        got = ev.score(b.items[r], lists[r, :1], context=b.context[r])[0]
        assert got == pytest.approx(s.max(), abs=1e-6)
        assert lists[r].max() < req.n_items[r]


def _neighbours(order, n, appeal=None, m=None):
    """Every swap of two positions and every replacement by an unused candidate (the ``m`` best by ``appeal``), by loops."""
    unused = [c for c in range(n) if c not in order]
    if m is not None:
        unused = sorted(unused, key=lambda c: -appeal[c])[:m]
    out = []
    for i in range(len(order)):
        for j in range(i + 1, len(order)):
            o = list(order)
            o[i], o[j] = o[j], o[i]
            out.append(o)
        for c in unused:
            o = list(order)
            o[i] = c
            out.append(o)
    return out


def test_local_search_ends_at_a_local_optimum_and_never_worsens(world):
    env, ev = world
    b = env.sample(6, seed=11)
    n_items = np.array([6, 5, 6, 4, 6, 5])
    req = ev.requests(b.items, b.context, n_items=n_items)
    start = torch.from_numpy(np.tile(np.array([[3, 0, 1]]), (6, 1)))  # a fixed start, inside every request's candidates
    with torch.inference_mode():
        s0 = list_scores_t(ev, req, start[:, None, :])[:, 0]
        got = polish(ev, req, start, s0, rounds=50).numpy()
    for r in range(6):
        n = int(n_items[r])
        assert got[r].max() < n and len(set(got[r].tolist())) == 3  # padding never enters, no repeats
        mine = ev.score(b.items[r], got[r:r + 1], context=b.context[r], n_items=n)[0]
        assert mine >= float(s0[r]) - 1e-6
        others = ev.score(b.items[r], _neighbours(got[r].tolist(), n), context=b.context[r], n_items=n)
        assert others.max() <= mine + 1e-5
    # replacements only by the best unused candidate in point-wise order
    with torch.inference_mode():
        got = polish(ev, req, start, s0, rounds=50, replacements=1).numpy()
    for r in range(6):
        n = int(n_items[r])
        mine = ev.score(b.items[r], got[r:r + 1], context=b.context[r], n_items=n)[0]
        appeal = ev.item_scores(b.items[r], b.context[r], n_items=n)
        others = ev.score(b.items[r], _neighbours(got[r].tolist(), n, appeal, 1), context=b.context[r], n_items=n)
        assert got[r].max() < n and others.max() <= mine + 1e-5
    # in the beam: the polished list replaces the best, so it scores at least as well as without local search
    plain = Beam(width=1, local_search=0).generate(ev, req, 3)
    polished = Beam(width=1, local_search=3).generate(ev, req, 3)
    for r in range(6):
        sp, sq = ev.score(b.items[r], [plain[r, 0], polished[r, 0]], context=b.context[r], n_items=int(n_items[r]))
        assert sq >= sp - 1e-6
    with pytest.raises(SolverError, match="local_search"):
        Beam(local_search=-1)


def test_retriever_serves_the_best_candidate_and_batches_agree(world):
    env, ev = world
    b = env.sample(5, seed=3)
    ret = SequenceRetriever(ev, generators=[Greedy(), Beam(width=2)])
    one = ret.rank(b.items[0], 3, context=b.context[0])
    scores = [c.score for c in one.candidates]
    assert one.score == max(scores) and scores == sorted(scores, reverse=True)
    assert {c.generator for c in one.candidates} == {"greedy", "beam"}
    many = ret.rank_many(b.items, 3, context=b.context, batch_size=2)
    for r in range(5):
        single = ret.rank(b.items[r], 3, context=b.context[r])
        assert many.scores[r] == pytest.approx(single.score, abs=1e-6)
    assert sum(many.shares().values()) == pytest.approx(1.0)
    # greedy is the point-wise sort
    np.testing.assert_array_equal(Greedy().generate(ev, ev.requests(b.items[:1], b.context[:1]), 3)[0, 0],
                                  np.argsort(-ev.item_scores(b.items[0], b.context[0]), kind="stable")[:3])


def test_extra_lists_are_scored_and_can_win(world):
    env, ev = world
    b = env.sample(1, seed=4)
    every = all_lists(6, 3)
    best = every[np.argmax(ev.score(b.items[0], every, context=b.context[0]))]
    ret = SequenceRetriever(ev, generators=["greedy"])
    got = ret.rank(b.items[0], 3, context=b.context[0], extra={"pool": [best, every[0]]})
    assert got.order.tolist() == best.tolist() and got.generator in ("pool", "greedy")
    only = SequenceRetriever(ev, generators=[])
    assert only.rank(b.items[0], 3, context=b.context[0], extra=[every[5]]).generator == "extra"


def test_bad_input(world):
    env, ev = world
    b = env.sample(1, seed=5)
    with pytest.raises(SolverError, match="ptrnet"):
        SequenceRetriever(ev, generators=["ptrnet"])
    with pytest.raises(SolverError, match="generator"):
        SequenceRetriever(ev, generators=["nope"])
    ret = SequenceRetriever(ev)
    with pytest.raises(ProblemError, match="k must"):
        ret.rank(b.items[0], 7, context=b.context[0])
    with pytest.raises(ProblemError, match="extra"):
        ret.rank(b.items[0], 3, context=b.context[0], extra=[[0, 1]])
    with pytest.raises(ProblemError, match="items"):
        ret.rank(b.items, 3, context=b.context)
