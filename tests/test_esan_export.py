"""ESAN export: torch.export and ONNX programs agree with the eager model, also at other sizes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from esan.data import InputError
from esan.export import DEFAULT_TOLERANCE, example_args, export_onnx, export_program, onnx_parity
from esan.model import ESAN, ESANConfig
from mixrank.synthetic import FeedConfig, FeedEnv

CFG = FeedConfig(n_slots=9, n_cards=4, exposure_len=10, history_len=30, click_len=3)
OTHER = FeedConfig(n_slots=14, n_cards=7, exposure_len=6, history_len=30, click_len=5)  # other N, K, Le, Lc


@pytest.fixture(scope="module")
def model_and_requests():
    req = FeedEnv(CFG).sample(3, seed=0).requests
    torch.manual_seed(0)
    model = ESAN(ESANConfig.for_data(req, dim=16, hidden=16)).eval()
    # move the weights away from their initial values so the check is not trivially easy
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
        # a fitted feature scaling and per-type calibration travel in the export too
        model.fit_scaling(FeedEnv(CFG).log(20, seed=1))
        model.calib_scale.copy_(torch.tensor([1.1, 0.9, 1.0, 0.8]))
        model.calib_bias.copy_(torch.tensor([0.3, -0.2, 0.1, -0.4]))
    return model, req


@pytest.fixture(scope="module")
def program(model_and_requests):
    model, req = model_and_requests
    return export_program(model, req[0])


def test_torch_export_matches_eager_at_other_sizes(model_and_requests, program) -> None:
    model, req = model_and_requests
    for other in (req[1], FeedEnv(OTHER).sample(1, seed=4).requests):
        args = example_args(other)
        got = program.module()(*args)
        with torch.no_grad():
            want = model(*args)
        for a, b in zip(got, want):
            assert a.shape == b.shape
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_onnx_parity(model_and_requests, tmp_path) -> None:
    ort = pytest.importorskip("onnxruntime")  # declared in the export extra
    assert ort is not None
    model, req = model_and_requests
    path = export_onnx(model, tmp_path / "esan.onnx", req[0])
    assert path.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["esan.onnx"]
    report = onnx_parity(model, path, req)
    assert report["ok"] and report["max_abs_diff"] <= DEFAULT_TOLERANCE, str(report)
    other = FeedEnv(OTHER).sample(2, seed=1).requests
    report = onnx_parity(model, path, other)
    assert report["ok"], str(report)
    # the parity check can fail: a model with other weights does not match the file
    changed = ESAN(model.config).eval()
    bad = onnx_parity(changed, path, req)
    assert not bad["ok"] and bad["max_abs_diff"] > 1e-3


def test_export_needs_sizes_of_two(model_and_requests) -> None:
    model, _ = model_and_requests
    one_card = FeedEnv(FeedConfig(n_slots=9, n_cards=1, exposure_len=10, history_len=30, click_len=3))
    with pytest.raises(InputError, match="N >= 2"):
        export_program(model, one_card.sample(1, seed=0).requests)


def test_exported_outputs_are_probabilities(model_and_requests, program) -> None:
    _, req = model_and_requests
    with torch.no_grad():
        card, organic = program.module()(*example_args(req[2]))
    for t in (card, organic):
        a = t.numpy()
        assert np.all((a > 0) & (a < 1))
