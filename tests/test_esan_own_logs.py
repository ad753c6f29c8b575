"""ESAN on a team's own logs: hashed IDs, unseen categories, masks, long sequences, sharded logs larger than memory."""

from __future__ import annotations

import copy
import tracemalloc

import numpy as np
import pytest
import torch

from esan import ESAN, ESANConfig, train
from esan.checkpoint import load_checkpoint, save_checkpoint
from mixrank.logs import FeedLog, LogSchemaError, LogShards, Requests
from mixrank.synthetic import FeedConfig, FeedEnv

CFG = FeedConfig(n_slots=10, n_cards=5, exposure_len=20, history_len=40, click_len=6)
MAX_LEN = 8  # the model keeps 8 of the 20 exposures: the sequences are "long"
S, D = 2, 3  # sparse columns (item ID, brand), context features


def _own(record, seed: int, id_base: int = 0):
    """Add hashed-ID columns, context and page masks (the last slots padded on some pages) to a record."""
    rng = np.random.default_rng(seed)
    r, k = len(record), record.dims["K"]
    f = record.fields

    def ids(*shape):
        item = id_base + rng.integers(0, 10**12, size=shape)  # raw item IDs: huge and sparse
        brand = id_base + rng.integers(0, 50, size=shape)
        out = np.stack([item, brand], axis=-1)
        out[rng.random(shape) < 0.1] = -1  # missing
        return out

    f["exp_sparse"] = ids(r, record.dims["Le"])
    f["clk_sparse"] = ids(r, record.dims["Lc"])
    f["page_sparse"] = ids(r, k)
    f["context"] = rng.normal(size=(r, D)).astype(np.float32)
    length = np.where(rng.random(r) < 0.5, k, k - 3)
    mask = np.arange(k)[None, :] < length[:, None]
    f["page_mask"] = mask
    if isinstance(record, FeedLog):
        f["exposed"] = np.array(f["exposed"]) & mask
        f["clicked"] = np.array(f["clicked"]) & mask
        return FeedLog(record.n_types, record.n_categories, **f)
    f["cand_sparse"] = ids(r, record.dims["N"])
    f["cand_mask"] = np.broadcast_to(np.arange(record.dims["N"]) < record.dims["N"] - 1, (r, record.dims["N"]))  # last: padding
    return Requests(record.n_types, record.n_categories, **f)


@pytest.fixture(scope="module")
def env() -> FeedEnv:
    return FeedEnv(CFG)


@pytest.fixture(scope="module")
def trained(env, tmp_path_factory):
    """A model trained on a sharded log whose shard files exceed the memory limit the test sets."""
    parts = (_own(env.log(900, seed=i), seed=i) for i in range(2))
    shards = LogShards.write(tmp_path_factory.mktemp("own") / "log", parts)
    val = _own(env.log(120, seed=9), seed=9)
    torch.manual_seed(0)
    model = ESAN(ESANConfig.for_data(val, dim=16, hidden=16, max_seq_len=MAX_LEN, sparse_buckets=512))
    # first use imports modules (torch's optimiser, scipy): done before measuring, so the peak is the data's
    train(copy.deepcopy(model), val[:60], val[60:], epochs=1, max_steps=1, progress=False)
    tracemalloc.start()
    try:
        result = train(model, shards, val, epochs=1, batch_size=50, lr=5e-3, progress=False, threads=1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return model, shards, result, peak


def test_a_sharded_log_larger_than_the_limit_trains(trained) -> None:
    model, shards, result, peak = trained
    limit = 1_000_000  # bytes of numpy data held at once, as traced by tracemalloc
    shard_bytes = sum(p.stat().st_size for p in (shards.directory / "shard-00000").iterdir())
    assert shard_bytes > limit, shard_bytes  # one shard alone exceeds it
    assert peak < limit, peak  # batches are read from the memory maps, never the whole log
    assert result.steps == int(np.ceil(len(shards) / 50)) and np.isfinite(result.history[-1]["train_loss"])
    assert model.fitted.tolist() == [1.0, 1.0]
    assert model.config.n_sparse == S and model.config.context_dim == D and model.config.use_masks


def test_prediction_with_unseen_ids_masks_and_long_sequences(env, trained, tmp_path) -> None:
    model, *_ = trained
    req = _own(env.sample(4, seed=3).requests, seed=3, id_base=5 * 10**12)  # every ID unseen in training
    assert req.dims["Le"] > model.config.max_seq_len
    card, organic = model.predict(req)
    assert np.isfinite(card).all() and np.isfinite(organic).all()
    assert (card[:, -1, :] == 0).all()  # the padded candidate
    padded = ~req.page_mask
    assert padded.any() and (organic[padded] == 0).all() and (card.transpose(0, 2, 1)[padded] == 0).all()
    assert (card[:, :-1][np.broadcast_to(req.page_mask[:, None, :], card[:, :-1].shape)] > 0).all()
    # brands (column 1) the training log never had whose buckets it never hit read the out-of-vocabulary
    # bucket: two such brands score the same, and the same as a missing brand
    items = model.items
    fresh = torch.arange(10**13, 10**13 + 400).reshape(-1, 1).expand(-1, S).contiguous()
    oov = fresh[:, 1][items.buckets_of(fresh)[:, 1] == items.offset[1]]
    assert oov.numel() >= 2
    f = req.fields
    scores = []
    for brand in (int(oov[0]), int(oov[1]), -1):
        f["cand_sparse"] = np.array(req.cand_sparse)
        f["cand_sparse"][:, :, 1] = brand
        scores.append(model.predict(Requests(req.n_types, req.n_categories, **f))[0])
    np.testing.assert_array_equal(scores[0], scores[1])
    np.testing.assert_array_equal(scores[0], scores[2])
    f["cand_sparse"] = np.array(req.cand_sparse)
    # a seen ID changes the score
    seen_id = int(np.asarray(trained[1].take([0]).page_sparse)[0, 0, 0])
    assert seen_id >= 0
    f["cand_sparse"][:, 0, 0] = seen_id
    assert np.abs(model.predict(Requests(req.n_types, req.n_categories, **f))[0][:, 0] - card[:, 0]).max() > 1e-7
    # the checkpoint carries the vocabulary, the scaling and the calibration
    back = load_checkpoint(save_checkpoint(model, tmp_path / "own.pt"))
    np.testing.assert_array_equal(back.predict(req)[0], card)


def test_padded_slots_do_not_leak_into_neighbours(env, trained) -> None:
    model, *_ = trained
    req = _own(env.sample(3, seed=4).requests, seed=4)
    r = int(np.flatnonzero(~req.page_mask.all(1))[0])
    f = req.fields
    for name, value in (("page_type", 0), ("page_category", 3)):
        f[name] = np.array(f[name])
        f[name][r, ~req.page_mask[r]] = value  # what lies in the padding changes
    f["page_features"] = np.array(f["page_features"])
    f["page_features"][r, ~req.page_mask[r]] = 9.0
    changed = Requests(req.n_types, req.n_categories, **f)
    np.testing.assert_array_equal(model.predict(changed)[0], model.predict(req)[0])
    # without the mask, the same change does reach the live neighbours
    del f["page_mask"]
    g = req.fields
    del g["page_mask"]
    a = model.predict(Requests(req.n_types, req.n_categories, **f))[0]
    b = model.predict(Requests(req.n_types, req.n_categories, **g))[0]
    assert np.abs(a[r] - b[r]).max() > 1e-6


def test_onnx_parity_with_the_new_inputs_and_options(env, trained, tmp_path) -> None:
    """One export covers the optional inputs (IDs, context, masks) and Dianping's switches."""
    pytest.importorskip("onnxruntime")
    from esan.export import export_onnx, onnx_parity

    _, shards, *_ = trained
    req = _own(env.sample(3, seed=5).requests, seed=5, id_base=7)
    torch.manual_seed(2)
    model = ESAN(ESANConfig.for_data(req, dim=8, hidden=8, max_seq_len=MAX_LEN, sparse_buckets=64,
                                     use_last_match=True, use_cross_attention=True, use_side_views=True,
                                     use_dwell_filter=True, dwell_threshold=0.0)).eval()
    model.fit_scaling(shards)
    model.calib_bias.copy_(torch.tensor([0.2, -0.1, 0.3, -0.2]))
    path = export_onnx(model, tmp_path / "own.onnx", req[0])
    report = onnx_parity(model, path, req)
    assert report["ok"], report


def test_shards_refuse_bad_input(env, tmp_path) -> None:
    log = env.log(10, seed=0)
    shards = log.save_shards(tmp_path / "a", rows_per_shard=4)
    assert shards.n_shards == 3 and shards.take([9, 0, 5]) == log[[9, 0, 5]]
    assert sum(len(c) for c in shards.chunks(3)) == 10
    with pytest.raises(IndexError):
        shards.take([10])
    with pytest.raises(LogSchemaError, match="must not exist"):
        log.save_shards(tmp_path / "a")
    with pytest.raises(LogSchemaError, match="cannot read"):
        LogShards(tmp_path / "nothing")
    bad = log.fields
    bad["exp_sparse"] = np.zeros((10, CFG.exposure_len, 1), np.int64)
    with pytest.raises(LogSchemaError, match="give all or none"):
        FeedLog(log.n_types, log.n_categories, **bad)
    bad = log.fields
    bad["page_mask"] = np.zeros((10, CFG.n_slots), bool)
    with pytest.raises(LogSchemaError, match="page_mask"):
        FeedLog(log.n_types, log.n_categories, **bad)
