"""PointerNet: a proper distribution over ordered lists (enumeration), sampling matches it, masking, REINFORCE learns."""

import numpy as np
import pytest
import torch

from mixrank.rerank import ListLog, PointerNet, PtrNetGenerator, train_ptrnet
from mixrank.rerank._arrays import as_requests
from mixrank.synthetic.slates import all_lists


def _net(seed=0, f=3, c=2):
    torch.manual_seed(seed)
    return PointerNet(n_features=f, context_dim=c, dim=8, heads=2, clip=3.0).eval()


def _all_logp(net, items, ctx, n_items, n_real, k):
    lists = torch.from_numpy(all_lists(n_real, k))
    with torch.no_grad():
        return lists, net.log_prob(items, ctx, n_items, lists[None])[0]


def test_probabilities_of_all_lists_sum_to_one():
    net = _net()
    items, ctx = torch.randn(1, 5, 3), torch.randn(1, 2)
    _, logp = _all_logp(net, items, ctx, None, 5, 3)
    assert abs(float(logp.double().exp().sum()) - 1.0) <= 1e-5


def test_masking_gives_padding_zero_probability_and_variable_n_batches():
    net = _net(1)
    items, ctx = torch.randn(2, 6, 3), torch.randn(2, 2)
    n_items = torch.tensor([4, 6])
    lists, logp = _all_logp(net, items[:1], ctx[:1], n_items[:1], 4, 3)
    assert abs(float(logp.double().exp().sum()) - 1.0) <= 1e-5
    # padding never drawn, and a padded request scores as its unpadded self
    with torch.no_grad():
        alone = net.log_prob(items[:1, :4], ctx[:1], None, lists[None])[0]
        torch.testing.assert_close(alone, logp, atol=1e-5, rtol=0)
        assert net.log_prob(items[:1], ctx[:1], n_items[:1], torch.tensor([[[0, 5, 1]]]))[0, 0] == -torch.inf
        drawn, _ = net.decode(items, ctx, n_items, 3, "sample", n=500)
    assert int(drawn[0].max()) < 4 and int(drawn[1].max()) == 5
    assert all(len(set(x.tolist())) == 3 for x in drawn.reshape(-1, 3))


def test_sampled_frequencies_match_probabilities():
    net = _net(2)
    items, ctx = torch.randn(1, 4, 3), torch.randn(1, 2)
    lists, logp = _all_logp(net, items, ctx, None, 4, 2)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        drawn, dlogp = net.decode(items, ctx, None, 2, "sample", n=100_000, generator=gen)
    code = drawn[0, :, 0] * 4 + drawn[0, :, 1]
    freq = torch.bincount(code, minlength=16).double() / code.numel()
    want = torch.zeros(16, dtype=torch.float64)
    want[lists[:, 0] * 4 + lists[:, 1]] = logp.double().exp()
    assert float((freq - want).abs().max()) <= 0.01
    # the log-probabilities the decoder reports are those of the lists it drew
    torch.testing.assert_close(dlogp[0, :50], net.log_prob(items, ctx, None, drawn[:, :50])[0], atol=1e-5, rtol=0)


def test_beam_decoding_returns_the_most_probable_lists():
    net = _net(3)
    items, ctx = torch.randn(1, 5, 3), torch.randn(1, 2)
    lists, logp = _all_logp(net, items, ctx, None, 5, 3)
    with torch.no_grad():
        got, glogp = net.decode(items, ctx, None, 3, "beam", width=60)
        greedy, _ = net.decode(items, ctx, None, 3, "greedy")
        width1, _ = net.decode(items, ctx, None, 3, "beam", width=1)
    order = torch.argsort(logp, descending=True)
    torch.testing.assert_close(glogp[0], logp[order], atol=1e-5, rtol=0)
    assert got[0, 0].tolist() == lists[order[0]].tolist()
    assert greedy.tolist() == width1.tolist()  # greedy is the step-wise argmax, a beam of width 1


class _PlantedEvaluator:
    """A stand-in evaluator whose reward is known: item j at position s earns value[j] * weight[s]."""

    def __init__(self, value):
        self.value = torch.as_tensor(value, dtype=torch.float32)
        self.config = None

    def _require_fit(self):
        return None

    def logits_t(self, req, lists, encoded=None):
        v = self.value[lists] * torch.tensor([1.0, 0.5])[: lists.shape[-1]]
        return torch.logit(v.clamp(1e-4, 1 - 1e-4))


def test_reinforce_learns_the_best_list_with_either_baseline():
    rng = np.random.default_rng(0)
    items = np.eye(5, dtype=np.float32)[None].repeat(64, axis=0)
    log = ListLog(items=items, shown=np.stack([rng.permutation(5)[:2] for _ in range(64)]), clicks=np.zeros((64, 2)))
    ev = _PlantedEvaluator([0.1, 0.9, 0.2, 0.6, 0.3])
    for baseline in ("mean", "learned"):
        torch.manual_seed(0)
        net = PointerNet(n_features=5, context_dim=0, dim=8, heads=2)
        res = train_ptrnet(net, ev, log, steps=120, batch_size=8, n_samples=8, baseline=baseline, lr=1e-2, progress=False)
        gen = PtrNetGenerator(net, mode="greedy")
        assert gen.generate(ev, as_requests(items[:1]), 2)[0, 0].tolist() == [1, 3], baseline
        assert np.mean([h["reward"] for h in res.history[-10:]]) > np.mean([h["reward"] for h in res.history[:10]])


def test_warm_start_imitates_clicked_logged_lists():
    items = np.eye(4, dtype=np.float32)[None].repeat(40, axis=0)
    shown = np.tile([[2, 0]], (40, 1))
    log = ListLog(items=items, shown=shown, clicks=np.tile([[1, 0]], (40, 1)))
    torch.manual_seed(0)
    net = PointerNet(n_features=4, dim=8, heads=2)
    res = train_ptrnet(net, _PlantedEvaluator([0.5] * 4), log, steps=0, warm_start=True, warm_epochs=20, batch_size=4,
                       progress=False)
    assert res.warm_losses[-1] < res.warm_losses[0]
    with torch.no_grad():
        lists, _ = net.decode(torch.from_numpy(items[:1]), None, None, 2, "greedy")
    assert lists[0, 0].tolist() == [2, 0]


def test_bad_arguments():
    net = _net()
    with pytest.raises(ValueError, match="mode"):
        net.decode(torch.randn(1, 4, 3), torch.randn(1, 2), None, 2, mode="top")
    with pytest.raises(ValueError, match="net"):
        PtrNetGenerator("not a net")
