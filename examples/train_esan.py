"""Worked example: train ESAN on a synthetic feed log, check it against the oracle, plan a page with it.

Steps:

1. draw a feed environment and write training, validation and test logs under
   a randomised logging policy (the array schema of :mod:`esan.data`; your own
   logs go in the same arrays);
2. train ESAN with validation, early stopping, a progress bar and a safe
   checkpoint (feature scaling fitted on the training log, per-type
   calibration on the validation log, both stored in the checkpoint);
3. compare its test metrics with the oracle's (the true click probabilities),
   per-type calibration, and its (N, K) matrix with the environment's true one;
4. export it (ONNX) and check parity on onnxruntime;
5. turn a fresh request into a :class:`mixrank.MixProblem` with ESAN's matrix
   and the examination curve estimated from the logs
   (:func:`mixrank.pipeline.estimate_examination`, as with real logs), solve it,
   and score the plan with the oracle's exact expected clicks.

Run from the repository root::

    python examples/train_esan.py            # the default log: 100k requests (a few minutes on 2 cores)
    python examples/train_esan.py --small    # 5,000 requests, under a minute
    python examples/train_esan.py --fast     # a smoke run on tiny logs (figures not meaningful; for tests)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import mixrank  # noqa: E402
from esan.checkpoint import load_checkpoint  # noqa: E402
from esan.export import export_onnx, onnx_parity  # noqa: E402
from esan.metrics import matrix_errors, per_type_calibration  # noqa: E402
from esan.model import ESAN, ESANConfig  # noqa: E402
from esan.training import evaluate, train  # noqa: E402
from mixrank.pipeline import estimate_examination, request_to_problem  # noqa: E402
from mixrank.synthetic import FeedEnv  # noqa: E402

#: Size of the default example log (requests) and of its validation log.
DEFAULT_TRAIN_REQUESTS = 100_000
DEFAULT_VAL_REQUESTS = 4_000
#: Training settings used here and by bench/bench_esan.py: three passes in batches of 128 requests (on
#: 40,000 requests a third pass and smaller batches still helped; on 15,000 passes beyond the fourth overfit);
#: card impressions count 2.5 times (they are a fifth of the log and what mixing needs).
TRAIN_OPTIONS = {"epochs": 3, "batch_size": 128, "lr": 4e-3, "schedule": "cosine", "card_weight": 2.5, "patience": 2}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Train ESAN on a synthetic feed and plan with it.")
    ap.add_argument("--train", type=int, default=DEFAULT_TRAIN_REQUESTS)
    ap.add_argument("--small", action="store_true", help="5,000 training requests")
    ap.add_argument("--fast", action="store_true", help="tiny logs, a smoke run")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--outdir", default=str(ROOT / "runs" / "example_esan"))
    args = ap.parse_args(argv)
    n_train = 500 if args.fast else 5_000 if args.small else args.train
    n_val, n_test = (300, 300) if args.fast else (DEFAULT_VAL_REQUESTS, 5_000)
    outdir = Path(args.outdir)
    outdir.mkdir(parents=True, exist_ok=True)

    # 1. the environment and its logs
    env = FeedEnv()
    t0 = time.perf_counter()
    train_log = env.log(n_train, seed=0)
    val_log = env.log(n_val, seed=1)
    test_log = env.log(n_test, seed=2)
    train_log.save(outdir / "train_log.npz")  # the documented schema, as a user would write it
    print(f"logs: {len(train_log)} training requests ({train_log.n_impressions} impressions) "
          f"in {time.perf_counter() - t0:.1f} s")

    # 2. train
    torch.manual_seed(0)
    model = ESAN(ESANConfig.for_data(train_log))
    print(f"ESAN: {model.n_parameters()} parameters ({model.n_parameters() * 4 / 1e6:.2f} MB fp32)")
    ckpt = outdir / "esan.pt"
    result = train(model, train_log, val_log, checkpoint=ckpt, threads=args.threads, **TRAIN_OPTIONS)
    print(result)

    # 3. against the oracle
    model = load_checkpoint(ckpt)  # what a serving process would do
    metrics = evaluate(model, test_log)
    for name in ("oracle", "all", "oracle_cards", "cards"):
        m = metrics[name]
        label = {"all": "ESAN", "cards": "ESAN (cards)"}.get(name, name)
        print(f"  {label:<14} AUC {m['auc']:.4f}  GAUC {m['gauc']:.4f}  logloss {m['logloss']:.5f}  "
              f"ECE {m['calibration_error']:.4f}  pred/obs {m['pred_over_obs']:.3f}")
    sel = test_log.exposed
    per_type = per_type_calibration(test_log.page_type[sel], test_log.clicked[sel], model.predict_log(test_log)[sel],
                                    expected=test_log.true_ctr[sel])
    print("  per-type predicted / observed clicks (/ true expected clicks): " + ", ".join(
        f"type {t}: {v['pred_over_obs']:.3f} ({v['pred_over_expected']:.3f})" for t, v in per_type.items()))
    fresh = env.sample(200, seed=99)
    err = matrix_errors(model.predict(fresh.requests)[0], env.ctr_matrix(fresh)[0])
    print(f"  matrix vs the true matrix (200 fresh requests): logit RMSE {err['logit_rmse'].mean():.3f}, "
          f"rank correlation across each card's slots {err['slot_rank_corr'].mean():.3f}, "
          f"across each slot's cards {err['card_rank_corr'].mean():.3f}")

    # 4. export
    req = env.sample(1, seed=123).requests
    onnx_path = export_onnx(model, outdir / "esan.onnx", req)
    print(onnx_parity(model, onnx_path, env.sample(5, seed=7).requests))

    # 5. plan one request with ESAN's matrix, judge it with the oracle
    batch = env.sample(1, seed=2024)
    rules = [
        mixrank.TypeRule(min_gap=4, max_share=0.10, max_count=4),
        mixrank.TypeRule(min_gap=3, max_share=0.20),
        mixrank.TypeRule(min_gap=4, max_share=0.15),
    ]
    gains = env.gains[: env.n_types]
    exam = estimate_examination(train_log)  # a team's own logs give the curve the same way
    print(f"examination estimated from the logs: max |error| {abs(exam - env.examination).max():.3f}")
    problem = request_to_problem(batch.requests, model, rules=rules, gains=gains, min_gap_any=2, examination=exam)
    solver = "beam" if "beam" in mixrank.available_solvers() else "cpsat"
    sol = mixrank.solve(problem, solver=solver)
    page = batch.requests.compose(sol.assignment)
    organic = env.expected_clicks(batch, batch.requests.organic, weighted=True)[0]
    planned = env.expected_clicks(batch, page, weighted=True)[0]
    print(f"plan ({solver}, {sol.status}): {np.count_nonzero(sol.assignment >= 0)} cards; "
          f"true expected value {planned:.4f} vs organic page {organic:.4f} ({(planned / organic - 1) * 100:+.1f} %)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
