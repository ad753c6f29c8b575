"""Benchmark ESAN where it is used: the (N, K) matrix a planner consumes, on two synthetic worlds.

For each world (``default``: :class:`~mixrank.synthetic.FeedConfig`'s defaults;
``second``: :meth:`FeedConfig.second_world`, feature-based non-linear neighbour
effects with a wider reach, noisier dwell, behaviour that changes within a
page — satiation, and a stronger short-term intent that fades down the page,
so that behaviour tells which slot suits a card — a world the model was not
shaped after), one run measures:

1. accuracy on held-out logged requests: AUC, GAUC, logloss, ECE of ESAN, its
   ablations and the oracle (the true click probabilities), and per-type
   calibration after :meth:`esan.model.ESAN.calibrate` on 40,000 fresh held-out
   requests (predicted over observed clicks on 40,000 more, and over the true
   expected clicks, which has no sampling noise; the true probabilities' own
   pred/obs shows the measurement's noise: at 10,000 requests a card type has
   ~700-1,300 clicks, +-3-4 %, too coarse for a 0.97-1.03 target);
2. the matrix against the environment's true matrix, per fresh request: logit
   RMSE, the rank correlation across the slots of each card (mean over cards)
   and across the cards of each slot (mean over slots);
3. decision quality: one solver plans each request from each model's matrix
   and from the true matrix; every plan is scored by the environment's exact
   expected gain-weighted clicks of the resulting page. Quality = the true
   uplift over the organic page of the model's plans / that of the true
   matrix's plans (summed over requests); the whole page's ratio is reported
   too. Beside them, the *ceiling*: plans from the true matrix with the users'
   hidden tastes inferred from their behaviour
   (:meth:`~mixrank.synthetic.FeedEnv.informed_ctr_matrix`), the best a model
   that sees only the requests could do;
4. ESAN minus each ablation on the slot-rank correlation and the decision
   quality, with bootstrap intervals over requests.

Then, for the default world's ESAN: latency of one request (N 30 x K 50) on
one thread (grid, pairs one by one, onnxruntime) and ONNX parity.

Ablations: ``no_window`` (no surroundings), ``no_behaviour`` (no sequences),
``exposures_only``, ``clicks_only``, ``no_actions`` (action features read as
zeros); and Dianping's design points, off in ESAN's defaults, as variants with
each one on: ``with_last_match``, ``with_cross_attention``, ``with_side_views``, ``with_dwell_filter``
(un-clicked exposures with log dwell below -0.5 dropped); ``wide_window``
(6 slots each side); ``behaviour_in_head`` (the behaviour reads join the pair
head's card input instead of the behaviour gates: ESAN before them). The
default run trains ESAN and the first two in each world on 80,000 requests each
(3 epochs), the two worlds at once in two processes of one thread each
(``--jobs``); ``--ablations all`` adds the others in the default world.

Usage::

    OMP_NUM_THREADS=1 python bench/bench_esan.py          # the default run (two worlds at once: 26 min on a shared 2-core VM)
    python bench/bench_esan.py --ablations all            # every ablation in the default world
    python bench/bench_esan.py --quick                    # a smoke run (figures not meaningful)
    python bench/bench_esan.py --reuse                    # reuse checkpoints from a previous run in --outdir

Results are printed and written to ``<outdir>/bench_esan.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import multiprocessing
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

import mixrank  # noqa: E402
from esan.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from esan.export import example_args, export_onnx, onnx_parity  # noqa: E402
from esan.metrics import bootstrap_mean_ci, matrix_errors, per_type_calibration  # noqa: E402
from esan.model import ESAN, FORWARD_INPUTS, ESANConfig  # noqa: E402
from esan.training import log_metrics, train  # noqa: E402
from mixrank.pipeline import requests_to_problems  # noqa: E402
from mixrank.synthetic import FeedConfig, FeedEnv  # noqa: E402

sys.path.insert(0, str(ROOT / "examples"))
from train_esan import TRAIN_OPTIONS  # noqa: E402

#: The business rules of the decision-quality run (types: 0 ads, 1 short videos, 2 live streams).
RULES = [
    mixrank.TypeRule(min_gap=4, max_share=0.10, max_count=4),
    mixrank.TypeRule(min_gap=3, max_share=0.20),
    mixrank.TypeRule(min_gap=4, max_share=0.15),
]
MIN_GAP_ANY = 2

ABLATIONS = {
    "no_window": {"use_window": False},
    "no_behaviour": {"use_behaviour": False},
    "exposures_only": {"use_clicks": False},
    "clicks_only": {"use_exposures": False},
    "no_actions": {"use_actions": False},
    # Dianping's design points, off in ESAN's defaults: variants with each one on
    "with_last_match": {"use_last_match": True},
    "with_cross_attention": {"use_cross_attention": True},
    "with_side_views": {"use_side_views": True},
    "with_dwell_filter": {"use_dwell_filter": True, "dwell_threshold": -0.5},
    "wide_window": {"window": 6},  # the second world's reach
    "behaviour_in_head": {"behaviour_gates": 0},  # behaviour reads join the pair head's card input (no gates)
}
WORLDS = {"default": FeedConfig, "second": FeedConfig.second_world}


def _median_time(fn, reps: int, warmup: int = 5) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _ratio_ci(num: np.ndarray, den: np.ndarray, n_boot: int, seed: int = 0) -> tuple[float, float, float]:
    """sum(num) / sum(den) and its 95 % bootstrap interval, resampling requests."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, num.size, size=(n_boot, num.size))
    boot = num[idx].sum(1) / den[idx].sum(1)
    return float(num.sum() / den.sum()), float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))


def _fmt_ci(t: tuple[float, float, float], digits: int = 4) -> str:
    return f"{t[0]:+.{digits}f} [{t[1]:+.{digits}f}, {t[2]:+.{digits}f}]"


def _train_variants(world: str, env: FeedEnv, variants: dict, args, outdir: Path, results: dict):
    train_log = env.log(args.train, seed=0)
    val_log = env.log(args.val, seed=1)
    models: dict[str, ESAN] = {}
    for name, options in variants.items():
        path = outdir / f"{world}_{name}.pt"
        if args.reuse and path.exists():
            models[name] = load_checkpoint(path)
            print(f"[{world}] {name}: reused {path}")
            continue
        torch.manual_seed(0)
        model = ESAN(ESANConfig.for_data(train_log, **options))
        options = {**TRAIN_OPTIONS, "epochs": args.epochs, "batch_size": args.batch_size}
        res = train(model, train_log, val_log, threads=args.threads, progress=sys.stderr.isatty(), **options)
        save_checkpoint(model, path, extra={"best_epoch": res.best_epoch, "wall_time": res.wall_time})
        models[name] = model
        results["training"][name] = {"wall_time_s": res.wall_time, "epochs": res.epochs_run,
                                     "best_val_logloss": res.best_val_logloss}
        print(f"[{world}] trained {name}: {res.wall_time:.0f} s, val logloss {res.best_val_logloss:.5f}")
    return models


def _accuracy(world: str, env: FeedEnv, models: dict, args, results: dict) -> None:
    test_log = env.log(args.test, seed=2)
    exposed = test_log.exposed
    types = test_log.page_type[exposed]
    acc = results["accuracy"] = {}
    calib = results["per_type_calibration"] = {}
    for name, model in models.items():
        pred = model.predict_log(test_log)
        met = log_metrics(test_log, pred)
        acc[name] = {"all": met["all"], "cards": met["cards"]}
        acc.setdefault("oracle", {"all": met["oracle"], "cards": met["oracle_cards"]})
        calib[name] = per_type_calibration(
            types, test_log.clicked[exposed], pred[exposed], expected=test_log.true_ctr[exposed]
        )
    # the true probabilities' own pred/obs: the sampling noise of the measurement
    truth = test_log.true_ctr[exposed].astype(np.float64)
    calib["oracle"] = per_type_calibration(types, test_log.clicked[exposed], truth, expected=truth)
    print(f"\n[{world}] accuracy on {len(test_log)} held-out requests ({int(exposed.sum())} impressions)")
    print(f"  {'model':<15}{'AUC':>8}{'GAUC':>8}{'logloss':>9}{'ECE':>8}{'AUC cards':>11}   pred/obs per type (pred/expected)")
    for name in ("oracle", *models):
        a, c = acc[name]["all"], acc[name]["cards"]
        per = calib.get(name, {})
        cal = "  ".join(f"{t}:{v['pred_over_obs']:.3f}({v['pred_over_expected']:.3f})" for t, v in per.items())
        print(f"  {name:<15}{a['auc']:>8.4f}{a['gauc']:>8.4f}{a['logloss']:>9.5f}"
              f"{a['calibration_error']:>8.4f}{c['auc']:>11.4f}   {cal}")
    ranges = {name: (min(v["pred_over_obs"] for v in per.values()), max(v["pred_over_obs"] for v in per.values()))
              for name, per in calib.items()}
    results["pred_over_obs_range"] = ranges
    print(f"  per-type pred/obs range: ESAN {ranges['esan'][0]:.3f}-{ranges['esan'][1]:.3f} (the true probabilities: "
          f"{ranges['oracle'][0]:.3f}-{ranges['oracle'][1]:.3f}, the sampling noise of this many clicks)")
    o, e = acc["oracle"]["all"], acc["esan"]["all"]
    results["oracle_gap"] = {"auc": o["auc"] - e["auc"], "gauc": o["gauc"] - e["gauc"],
                             "logloss": e["logloss"] - o["logloss"]}
    print(f"  oracle gap: AUC {o['auc'] - e['auc']:.4f}, GAUC {o['gauc'] - e['gauc']:.4f}, "
          f"logloss {e['logloss'] - o['logloss']:.5f}")


def _plans(env: FeedEnv, batch, ctr, solver: str, time_limit: float) -> tuple[np.ndarray, dict[str, int]]:
    req = batch.requests
    problems = requests_to_problems(req, ctr=ctr, rules=RULES, gains=env.gains[: env.n_types],
                                    min_gap_any=MIN_GAP_ANY, examination=env.examination)
    plans = np.full((len(req), req.dims["K"]), -1)
    counts: dict[str, int] = {}
    for i, p in enumerate(problems):
        sol = mixrank.solve(p, solver=solver, time_limit=time_limit)
        counts[str(sol.status)] = counts.get(str(sol.status), 0) + 1
        if sol.status.has_plan:
            plans[i] = sol.assignment
    return plans, counts


def _matrix_and_decisions(world: str, env: FeedEnv, models: dict, args, results: dict) -> None:
    batch = env.sample(args.requests, seed=777)
    req = batch.requests
    true_ctr = env.ctr_matrix(batch)
    matrices = {"oracle": true_ctr, "ceiling": env.informed_ctr_matrix(batch),
                **{name: m.predict(req) for name, m in models.items()}}
    solver = args.solver if args.solver in mixrank.available_solvers() else "greedy"
    organic = env.expected_clicks(batch, req.organic, weighted=True)
    value, statuses, errs = {}, {}, {}
    for name, ctr in matrices.items():
        plans, statuses[name] = _plans(env, batch, ctr, solver, args.time_limit)
        value[name] = env.expected_clicks(batch, req.compose(plans), weighted=True)
        if name != "oracle":
            errs[name] = matrix_errors(ctr[0], true_ctr[0])
    gain = {name: v - organic for name, v in value.items()}
    mat, dec, diff = {}, {}, {}
    for name in ("ceiling", *models):
        mat[name] = {k: bootstrap_mean_ci(v, args.boot) for k, v in errs[name].items()}
        dec[name] = {
            "uplift_ratio": _ratio_ci(gain[name], gain["oracle"], args.boot),
            "page_ratio": _ratio_ci(value[name], value["oracle"], args.boot),
        }
    for name in models:
        if name == "esan":
            continue
        diff[name] = {
            "slot_rank_corr": bootstrap_mean_ci(errs["esan"]["slot_rank_corr"] - errs[name]["slot_rank_corr"], args.boot),
            "card_rank_corr": bootstrap_mean_ci(errs["esan"]["card_rank_corr"] - errs[name]["card_rank_corr"], args.boot),
            "uplift_ratio": _ratio_ci(gain["esan"] - gain[name], gain["oracle"], args.boot),
        }
    results["matrix"] = mat
    results["decision"] = {"solver": solver, "n_requests": len(req), "statuses": statuses, **dec,
                           "mean_true_value": {k: float(v.mean()) for k, v in value.items()},
                           "organic_value": float(organic.mean())}
    results["esan_minus_ablation"] = diff
    print(f"\n[{world}] matrix vs the true matrix and decisions, {len(req)} fresh requests, solver {solver!r}")
    print(f"  {'model':<15}{'logit RMSE':>12}{'slot-rank r':>13}{'card-rank r':>13}{'decision quality (uplift)':>34}"
          f"{'page ratio':>12}")
    for name in (*models, "ceiling"):
        m, d = mat[name], dec[name]
        u = d["uplift_ratio"]
        print(f"  {name:<15}{m['logit_rmse'][0]:>12.4f}{m['slot_rank_corr'][0]:>13.4f}{m['card_rank_corr'][0]:>13.4f}"
              f"{u[0]:>14.4f} [{u[1]:.4f}, {u[2]:.4f}]{d['page_ratio'][0]:>12.4f}")
    print(f"  true value per request: organic {organic.mean():.4f}, plans from the true matrix "
          f"{value['oracle'].mean():.4f}; ceiling: the true matrix with the users' tastes inferred from their "
          f"behaviour (FeedEnv.informed_ctr_matrix)")
    for name, d in diff.items():
        print(f"  ESAN - {name:<15} slot-rank r {_fmt_ci(d['slot_rank_corr'])}   card-rank r "
              f"{_fmt_ci(d['card_rank_corr'])}   quality {_fmt_ci(d['uplift_ratio'])}")


def _latency(model: ESAN, env: FeedEnv, outdir: Path) -> dict:
    torch.set_num_threads(1)
    model = model.eval()
    one = env.sample(1, seed=4242).requests
    args_t = example_args(one)
    n, k = one.dims["N"], one.dims["K"]
    t = ESAN.tensors(one)
    rows = {key: v.repeat_interleave(n * k, dim=0) for key, v in t.items() if not key.startswith("cand_")}
    cand_idx = torch.arange(n).repeat_interleave(k)
    for key in ("cand_type", "cand_category", "cand_features"):
        rows[key] = t[key][0, cand_idx]
    slots = torch.arange(k).repeat(n)
    with torch.inference_mode():
        grid_card, _ = model(*args_t)
        per_pair = torch.sigmoid(model.score_pairs(rows, slots)).reshape(n, k)
        max_diff = float((grid_card[0] - per_pair).abs().max())
        t_grid = _median_time(lambda: model(*args_t), reps=300)
        t_pairs = _median_time(lambda: model.score_pairs(rows, slots), reps=20, warmup=2)
    lat = {"grid_median_ms": t_grid * 1e3, "pairs_batch_median_ms": t_pairs * 1e3,
           "grid_vs_pairs_max_abs_diff": max_diff, "n_parameters": model.n_parameters()}
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
    print(f"\n[latency] one request, N {n} x K {k}, one thread")
    print(f"  grid (one forward pass): median {lat['grid_median_ms']:.2f} ms; the {n * k} pairs one by one: "
          f"{lat['pairs_batch_median_ms']:.1f} ms; max |grid - pairs| {max_diff:.2g}")
    if "onnxruntime_median_ms" in lat:
        print(f"  onnxruntime: median {lat['onnxruntime_median_ms']:.2f} ms")
    print(f"  parameters: {lat['n_parameters']}; {parity}")
    return lat


def _run_world(world: str, names: list[str], args, capture: bool = False) -> tuple[dict, str, ESAN]:
    """Train, calibrate and measure one world: its results, its printed report (when ``capture``), its ESAN."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf) if capture else contextlib.nullcontext():
        torch.set_num_threads(args.threads)
        env = FeedEnv(WORLDS[world]())
        print(f"\n===== world {world!r}: {env.config.n_cards} cards x {env.config.n_slots} slots, "
              f"{env.n_types} card types; training on {args.train} requests")
        res: dict = {"training": {}}
        variants = {"esan": {}, **{a: ABLATIONS[a] for a in names}}
        models = _train_variants(world, env, variants, args, Path(args.outdir), res)
        if args.calib:
            calib_log = env.log(args.calib, seed=3)
            for model in models.values():
                model.calibrate(calib_log)
        _accuracy(world, env, models, args, res)
        _matrix_and_decisions(world, env, models, args, res)
    return res, buf.getvalue(), models["esan"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=int, default=80_000, help="training requests per world")
    ap.add_argument("--val", type=int, default=10_000, help="validation (and calibration) requests")
    ap.add_argument("--test", type=int, default=40_000,
                    help="held-out test requests (40,000: ~3,000-5,000 clicks per card type, so pred/obs has "
                         "~2 %% of sampling noise)")
    ap.add_argument("--calib", type=int, default=40_000,
                    help="refit each model's per-type calibration on this many fresh held-out requests (0: the "
                         "validation log's, fitted by train)")
    ap.add_argument("--requests", type=int, default=300, help="fresh requests of the matrix and decision runs")
    ap.add_argument("--solver", default="beam", help="solver of the decision run (the same for every matrix)")
    ap.add_argument("--time-limit", type=float, default=10.0, help="per-solve time limit (s)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads for training")
    ap.add_argument("--epochs", type=int, default=TRAIN_OPTIONS["epochs"], help="training epochs (cosine schedule)")
    ap.add_argument("--batch-size", type=int, default=TRAIN_OPTIONS["batch_size"], help="requests per training step")
    ap.add_argument("--boot", type=int, default=1000, help="bootstrap resamples")
    ap.add_argument("--worlds", default="default,second", help="comma-separated: default, second")
    ap.add_argument("--ablations", default="no_window,no_behaviour",
                    help="ablations in the default world: 'all', or a comma-separated list of " + ", ".join(ABLATIONS))
    ap.add_argument("--second-ablations", default="no_window,no_behaviour", help="ablations in the second world")
    ap.add_argument("--outdir", default=str(ROOT / "runs" / "bench_esan"))
    ap.add_argument("--reuse", action="store_true", help="reuse checkpoints in --outdir")
    ap.add_argument("--no-latency", action="store_true", help="skip the latency and export part")
    ap.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    ap.add_argument("--jobs", type=int, default=2,
                    help="worlds run at once, each in its own process on --threads threads (reports print in order)")
    args = ap.parse_args(argv)
    if args.quick:
        args.train, args.val, args.test, args.calib, args.requests, args.boot = 1500, 500, 500, 500, 20, 50
    outdir = Path(args.outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    train_options = {**TRAIN_OPTIONS, "epochs": args.epochs, "batch_size": args.batch_size}
    results: dict = {"args": vars(args), "train_options": train_options, "worlds": {}}
    start = time.perf_counter()
    jobs = []
    for world in args.worlds.split(","):
        if world not in WORLDS:
            ap.error(f"--worlds: unknown world {world!r}; choose from {', '.join(WORLDS)}")
        chosen = args.ablations if world == "default" else args.second_ablations
        names = list(ABLATIONS) if chosen == "all" else [a for a in chosen.split(",") if a]
        unknown = [a for a in names if a not in ABLATIONS]
        if unknown:
            ap.error(f"unknown ablation(s) {unknown}; choose from {', '.join(ABLATIONS)}")
        jobs.append((world, names))
    esan_models = {}
    if args.jobs > 1 and len(jobs) > 1:
        print(f"running {len(jobs)} worlds at once, {args.threads} thread(s) each; each report prints when done",
              flush=True)
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(args.jobs, len(jobs)), mp_context=spawn) as pool:
            futures = [pool.submit(_run_world, world, names, args, True) for world, names in jobs]
            for (world, _), future in zip(jobs, futures):
                res, text, esan_models[world] = future.result()
                print(text, end="", flush=True)
                results["worlds"][world] = res
    else:
        for world, names in jobs:
            results["worlds"][world], _, esan_models[world] = _run_world(world, names, args)
    if "default" in esan_models and not args.no_latency:  # after the training, so it runs on a quieter machine
        results["latency"] = _latency(esan_models["default"], FeedEnv(WORLDS["default"]()), outdir)
    results["wall_time_s"] = time.perf_counter() - start
    out = outdir / "bench_esan.json"
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2, default=float))
    os.replace(tmp, out)
    print(f"\nwall time {results['wall_time_s']:.0f} s; results: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
