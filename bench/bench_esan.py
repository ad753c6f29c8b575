"""Benchmark ESAN on the synthetic feed (issue 5's "done when" figures).

Measured in one run:

1. the environment: seconds to write 100k logged requests;
2. accuracy on held-out requests: test AUC, GAUC, logloss and calibration error
   of ESAN, of the two ablations (no surrounding window; no behaviour
   sequences) and of the oracle (the true click probabilities), with bootstrap
   intervals (over requests) of the AUC differences;
3. decision quality: on ``--requests`` fresh requests, plans made by one solver
   with ESAN's matrix, the oracle's matrix and the no-window ablation's matrix,
   all evaluated by the oracle's exact expected (gain-weighted) clicks of the
   resulting page;
4. latency on one CPU thread: one request of N 30 x K 50 scored as a grid, the
   same 1,500 pairs scored one by one in a batch (each row encoded on its own),
   and onnxruntime on the exported model; the model's fp32 size;
5. training time of the full model on the default example log, and ONNX parity.

Usage::

    python bench/bench_esan.py                 # the full run (trains three models; ~20 min on 2 cores)
    python bench/bench_esan.py --quick         # a small smoke run (figures not meaningful)
    python bench/bench_esan.py --reuse         # reuse checkpoints from a previous run in --outdir

Results are printed and written to ``<outdir>/bench_esan.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

import mixrank  # noqa: E402
from esan.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from esan.export import example_args, export_onnx, onnx_parity  # noqa: E402
from esan.metrics import auc  # noqa: E402
from esan.model import ESAN, FORWARD_INPUTS, ESANConfig  # noqa: E402
from esan.training import log_metrics, train  # noqa: E402
from mixrank.pipeline import requests_to_problems  # noqa: E402
from mixrank.synthetic import FeedEnv  # noqa: E402

sys.path.insert(0, str(ROOT / "examples"))
from train_esan import DEFAULT_TRAIN_REQUESTS, DEFAULT_VAL_REQUESTS, TRAIN_OPTIONS  # noqa: E402

#: The business rules of the decision-quality run (types: 0 ads, 1 short videos, 2 live streams).
RULES = [
    mixrank.TypeRule(min_gap=4, max_share=0.10, max_count=4),
    mixrank.TypeRule(min_gap=3, max_share=0.20),
    mixrank.TypeRule(min_gap=4, max_share=0.15),
]
MIN_GAP_ANY = 2


def _median_time(fn, reps: int, warmup: int = 5) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _bootstrap_auc_diff(y, p_a, p_b, group, n_boot: int, seed: int = 0) -> tuple[float, float]:
    """95 % interval of AUC(p_a) - AUC(p_b), resampling requests."""
    rng = np.random.default_rng(seed)
    groups = np.unique(group)
    order = np.argsort(group, kind="stable")
    starts = np.searchsorted(group[order], groups)
    ends = np.append(starts[1:], group.size)
    diffs = []
    for _ in range(n_boot):
        pick = rng.integers(0, groups.size, size=groups.size)
        idx = np.concatenate([order[starts[g] : ends[g]] for g in pick])
        diffs.append(auc(y[idx], p_a[idx]) - auc(y[idx], p_b[idx]))
    return float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=int, default=DEFAULT_TRAIN_REQUESTS, help="training requests")
    ap.add_argument("--val", type=int, default=DEFAULT_VAL_REQUESTS, help="validation requests")
    ap.add_argument("--test", type=int, default=10_000, help="held-out test requests")
    ap.add_argument("--requests", type=int, default=500, help="requests of the decision-quality run")
    ap.add_argument("--solver", default="cpsat", help="solver for the decision-quality run")
    ap.add_argument("--time-limit", type=float, default=10.0, help="per-solve time limit (s)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads for training")
    ap.add_argument("--boot", type=int, default=200, help="bootstrap resamples")
    ap.add_argument("--outdir", default=str(ROOT / "runs" / "bench_esan"))
    ap.add_argument("--reuse", action="store_true", help="reuse checkpoints in --outdir")
    ap.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    args = ap.parse_args(argv)
    if args.quick:
        args.train, args.val, args.test, args.requests, args.boot = 2000, 500, 500, 20, 20
    outdir = Path(args.outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    results: dict = {"args": vars(args), "solvers_registered": mixrank.available_solvers()}

    env = FeedEnv()
    print(f"environment: {env.config.n_cards} cards x {env.config.n_slots} slots, {env.n_types} card types")

    # 1. environment speed
    t0 = time.perf_counter()
    big = env.log(100_000, seed=99)
    results["env_log_100k_s"] = time.perf_counter() - t0
    print(f"[env] 100k logged requests ({big.n_impressions} impressions): {results['env_log_100k_s']:.1f} s")
    del big

    # 2. logs and models
    train_log = env.log(args.train, seed=0)
    val_log = env.log(args.val, seed=1)
    test_log = env.log(args.test, seed=2)
    variants = {
        "esan": {},
        "no_window": {"use_window": False},
        "no_behaviour": {"use_behaviour": False},
    }
    models: dict[str, ESAN] = {}
    results["training"] = {}
    for name, options in variants.items():
        path = outdir / f"{name}.pt"
        if args.reuse and path.exists():
            models[name] = load_checkpoint(path)
            print(f"[train] {name}: reused {path}")
            continue
        torch.manual_seed(0)
        model = ESAN(ESANConfig.for_data(train_log, **options))
        res = train(model, train_log, val_log, threads=args.threads, progress=sys.stderr.isatty(), **TRAIN_OPTIONS)
        save_checkpoint(model, path, extra={"best_epoch": res.best_epoch, "wall_time": res.wall_time})
        models[name] = model
        results["training"][name] = {
            "wall_time_s": res.wall_time,
            "epochs": res.epochs_run,
            "best_epoch": res.best_epoch,
            "best_val_logloss": res.best_val_logloss,
        }
        print(f"[train] {name}: {res}")

    # 3. accuracy
    exposed = test_log.exposed
    group = np.broadcast_to(np.arange(len(test_log))[:, None], exposed.shape)[exposed]
    y = test_log.clicked[exposed]
    preds = {name: m.predict_log(test_log) for name, m in models.items()}
    results["accuracy"] = {}
    for name, pred in preds.items():
        met = log_metrics(test_log, pred)
        results["accuracy"][name] = {"all": met["all"], "cards": met["cards"]}
        if "oracle" not in results["accuracy"]:
            results["accuracy"]["oracle"] = {"all": met["oracle"], "cards": met["oracle_cards"]}
    oracle_p = test_log.true_ctr[exposed].astype(np.float64)
    results["auc_diff_ci95"] = {
        "oracle_minus_esan": _bootstrap_auc_diff(y, oracle_p, preds["esan"][exposed], group, args.boot),
        "esan_minus_no_window": _bootstrap_auc_diff(y, preds["esan"][exposed], preds["no_window"][exposed], group, args.boot),
        "esan_minus_no_behaviour": _bootstrap_auc_diff(
            y, preds["esan"][exposed], preds["no_behaviour"][exposed], group, args.boot
        ),
    }
    print("\n[accuracy] held-out test requests:", len(test_log), "impressions:", int(exposed.sum()))
    print(f"  {'model':<14}{'AUC':>8}{'GAUC':>8}{'logloss':>9}{'ECE':>8}{'pred/obs':>9}{'AUC cards':>11}")
    for name in ("oracle", "esan", "no_window", "no_behaviour"):
        a, c = results["accuracy"][name]["all"], results["accuracy"][name]["cards"]
        print(
            f"  {name:<14}{a['auc']:>8.4f}{a['gauc']:>8.4f}{a['logloss']:>9.5f}{a['calibration_error']:>8.4f}"
            f"{a['pred_over_obs']:>9.3f}{c['auc']:>11.4f}"
        )
    for k, (lo, hi) in results["auc_diff_ci95"].items():
        print(f"  AUC {k.replace('_', ' ')}: 95% CI [{lo:+.4f}, {hi:+.4f}]")

    # 4. decision quality
    batch = env.sample(args.requests, seed=777)
    req = batch.requests
    matrices = {
        "oracle": env.ctr_matrix(batch),
        "esan": models["esan"].predict(req),
        "no_window": models["no_window"].predict(req),
    }
    gains = env.gains[: env.n_types]
    solver = args.solver if args.solver in mixrank.available_solvers() else "beam"
    values = {"organic": env.expected_clicks(batch, req.organic, weighted=True)}
    status_counts: dict[str, dict[str, int]] = {}
    solve_time = {}
    for name, ctr in matrices.items():
        problems = requests_to_problems(
            req, ctr=ctr, rules=RULES, gains=gains, min_gap_any=MIN_GAP_ANY, examination=env.examination
        )
        plans = np.full((len(req), env.n_slots), -1)
        counts: dict[str, int] = {}
        t0 = time.perf_counter()
        for i, p in enumerate(problems):
            sol = mixrank.solve(p, solver=solver, time_limit=args.time_limit)
            counts[str(sol.status)] = counts.get(str(sol.status), 0) + 1
            if sol.status.has_plan:
                plans[i] = sol.assignment
        solve_time[name] = time.perf_counter() - t0
        status_counts[name] = counts
        values[name] = env.expected_clicks(batch, req.compose(plans), weighted=True)
    org = values["organic"]
    dq = {
        "solver": solver,
        "n_requests": len(req),
        "status_counts": status_counts,
        "solve_time_s": solve_time,
        "mean_true_value": {k: float(v.mean()) for k, v in values.items()},
        "esan_over_oracle": float(values["esan"].sum() / values["oracle"].sum()),
        "no_window_over_oracle": float(values["no_window"].sum() / values["oracle"].sum()),
        "esan_uplift_over_oracle_uplift": float((values["esan"] - org).sum() / (values["oracle"] - org).sum()),
        "no_window_uplift_over_oracle_uplift": float((values["no_window"] - org).sum() / (values["oracle"] - org).sum()),
    }
    d = values["esan"] - values["no_window"]
    dq["esan_minus_no_window_mean"] = float(d.mean())
    dq["esan_minus_no_window_se"] = float(d.std(ddof=1) / np.sqrt(d.size))
    results["decision_quality"] = dq
    print(f"\n[decision] {len(req)} requests, solver {solver!r}, rules {len(RULES)} types, min_gap_any {MIN_GAP_ANY}")
    print(f"  statuses: {status_counts}")
    for k in ("organic", "oracle", "esan", "no_window"):
        print(f"  true expected value per request ({k:>9}): {values[k].mean():.5f}")
    print(f"  ESAN / oracle (whole page): {dq['esan_over_oracle']:.4f}   no-window / oracle: {dq['no_window_over_oracle']:.4f}")
    print(
        f"  ESAN / oracle (uplift over the organic page): {dq['esan_uplift_over_oracle_uplift']:.4f}   "
        f"no-window: {dq['no_window_uplift_over_oracle_uplift']:.4f}"
    )
    print(f"  ESAN - no-window per request: {d.mean():+.5f} +- {dq['esan_minus_no_window_se']:.5f} (SE)")

    # 5. latency, size, export
    torch.set_num_threads(1)
    model = models["esan"].eval()
    one = env.sample(1, seed=4242).requests
    args_t = example_args(one)
    n, k = one.dims["N"], one.dims["K"]
    t = ESAN.tensors(one)
    rows = {key: v.repeat_interleave(n * k, dim=0) for key, v in t.items() if not key.startswith("cand_")}
    cand_idx = torch.arange(n).repeat_interleave(k)
    rows["cand_type"] = t["cand_type"][0, cand_idx]
    rows["cand_category"] = t["cand_category"][0, cand_idx]
    rows["cand_features"] = t["cand_features"][0, cand_idx]
    slots = torch.arange(k).repeat(n)
    with torch.inference_mode():
        grid_card, _ = model(*args_t)
        per_pair = torch.sigmoid(model.score_pairs(rows, slots)).reshape(n, k)
        max_diff = float((grid_card[0] - per_pair).abs().max())
        t_grid = _median_time(lambda: model(*args_t), reps=300)
        t_pairs = _median_time(lambda: model.score_pairs(rows, slots), reps=30, warmup=2)
    lat = {
        "grid_median_ms": t_grid * 1e3,
        "pairs_batch_median_ms": t_pairs * 1e3,
        "pairs_over_grid": t_pairs / t_grid,
        "grid_vs_pairs_max_abs_diff": max_diff,
        "n_parameters": model.n_parameters(),
        "fp32_bytes": model.n_parameters() * 4,
    }
    onnx_path = outdir / "esan.onnx"
    export_onnx(model, onnx_path, one)
    parity = onnx_parity(model, onnx_path, env.sample(20, seed=5).requests)
    lat["onnx_parity"] = dict(parity)
    try:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        sess = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
        feed = {name: a.numpy() for name, a in zip(FORWARD_INPUTS, args_t)}
        lat["onnxruntime_median_ms"] = _median_time(lambda: sess.run(None, feed), reps=300) * 1e3
    except ImportError:  # pragma: no cover - onnxruntime is in the export extra
        pass
    results["latency"] = lat
    print(f"\n[latency] one request, N {n} x K {k}, torch threads 1")
    print(f"  grid (one forward pass): median {lat['grid_median_ms']:.2f} ms")
    print(f"  the {n * k} pairs one by one in a batch: median {lat['pairs_batch_median_ms']:.1f} ms "
          f"({lat['pairs_over_grid']:.1f}x the grid); max |grid - pairs| {max_diff:.2g}")
    if "onnxruntime_median_ms" in lat:
        print(f"  onnxruntime (1 thread): median {lat['onnxruntime_median_ms']:.2f} ms")
    print(f"  parameters: {lat['n_parameters']} ({lat['fp32_bytes'] / 1e6:.3f} MB fp32)")
    print(f"  {parity}")
    if "esan" in results["training"]:
        tr = results["training"]["esan"]
        print(f"\n[training] full model on {args.train} requests: {tr['wall_time_s']:.0f} s, {tr['epochs']} epochs "
              f"(torch threads {args.threads})")

    out = outdir / "bench_esan.json"
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2, default=float))
    os.replace(tmp, out)
    print(f"\nresults: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
