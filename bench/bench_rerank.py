"""Sequence retrieval against the ground truth: every figure of issue 18, in one run.

Everything is judged by the slate world's exact expected clicks (never by the
learned evaluator, to avoid the "likelihood trap"). Sections:

1. ``exhaustive`` — N 8, K 5: the served list's true expected clicks over the
   exhaustive optimum's (all 6,720 ordered lists scored by the world); the
   evaluator learns from ``--exhaustive-log`` logged lists (200,000: a day of a
   small feed; the ratio grows with the log, ``--curve 20000,50000,100000``
   prints it per size), and its own exhaustive pick is reported too.
2. ``retrieval`` — N 30, K 10, ``--requests`` requests: the retriever (greedy,
   beam, PointerNet) against greedy point-wise ranking, relative gain in true
   expected clicks with a 95 % bootstrap CI; each generator's share of served lists.
3. ``fidelity`` — mean Kendall tau between evaluator and true scores over 100
   random lists of each of 100 requests.
4. ``latency`` — serving one N 30, K 10 request on one thread: median and p99 (in
   section 2 with its trained models, and alone in ``latency``).
5. ``second world`` — the same retriever pipeline, default settings, on a world
   of one-hot item IDs with pairwise effects (generality check).
6. ``pool`` — mixing pages: true (gain-weighted) clicks of the evaluator's pick
   among the beam solver's pool (``n_solutions=8``) vs the pool's top plan, with a CI.

Run: ``OMP_NUM_THREADS=1 python bench/bench_rerank.py`` (13 minutes on a loaded 2-core
machine, a third of it the N 8, K 5 evaluator's fit on 200,000 lists; ``--quick`` for a
smoke run). ``--json FILE`` writes the figures.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from scipy.stats import kendalltau

from mixrank.rerank import Beam, Evaluator, Greedy, PointerNet, PtrNetGenerator, SequenceRetriever, train_ptrnet
from mixrank.synthetic.slates import PairSlateEnv, SlateConfig, SlateEnv, all_lists


def gain_ci(served: np.ndarray, base: np.ndarray, seed: int = 0, n_boot: int = 2000) -> tuple[float, float, float]:
    """Relative gain ``mean(served) / mean(base) - 1`` with a paired bootstrap 95 % CI."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(served), size=(n_boot, len(served)))
    boots = served[idx].mean(axis=1) / base[idx].mean(axis=1) - 1
    return float(served.mean() / base.mean() - 1), float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))


def fit_evaluator(log, args, label):
    t = time.perf_counter()
    ev = Evaluator(seed=args.seed, progress=args.progress, threads=args.threads, members=args.members,
                   context_mlp=bool(args.context_mlp)).fit(log)
    r = ev.fit_results["list"]
    print(f"  [{label}] evaluator: {len(log)} logged lists, {len(r.history)} epochs, val loss {r.best_val_loss:.4f} "
          f"(point-wise {ev.fit_results['pointwise'].best_val_loss:.4f}), {time.perf_counter() - t:.0f} s")
    return ev


def exhaustive_ratios(env, n_log, args):
    """Fit on ``n_log`` lists of the N 8, K 5 world; true clicks / optimum of the served list, greedy, the evaluator's own pick."""
    ev = fit_evaluator(env.log(n_log, seed=args.seed + 1), args, "N8 K5")
    batch = env.sample(args.small_requests, seed=args.seed + 2)
    _, best = env.optimum(batch)
    served = SequenceRetriever(ev).rank_many(batch.items, 5, context=batch.context)
    greedy = Greedy().generate(ev, ev.requests(batch.items, batch.context), 5)[:, 0]
    # the evaluator's own exhaustive optimum (all 6,720 lists scored): separates search error from evaluator error
    every = all_lists(8, 5)
    scores = np.concatenate([ev.score(batch.items[a:a + 8], np.broadcast_to(every, (len(batch.items[a:a + 8]), *every.shape)),
                                      context=batch.context[a:a + 8]) for a in range(0, len(batch), 8)])
    ratio = env.expected_clicks(batch, served.orders)[:, 0] / best
    return {"log": n_log, "ratio": float(ratio.mean()), "min": float(ratio.min()),
            "greedy_ratio": float((env.expected_clicks(batch, greedy)[:, 0] / best).mean()),
            "evaluator_exhaustive_ratio": float((env.expected_clicks(batch, every[scores.argmax(1)])[:, 0] / best).mean()),
            "requests": len(batch), "shares": served.shares(), "fit_s": ev.fit_results["list"].wall_time}


def section_exhaustive(args, out):
    print(f"1. exhaustive optimum, N 8, K 5 ({args.exhaustive_log} logged lists)")
    env = SlateEnv(SlateConfig(n_items=8, list_len=5))
    res = exhaustive_ratios(env, args.exhaustive_log, args)
    print(f"  served / optimum: mean {res['ratio']:.2%} (min {res['min']:.2%}); greedy point-wise {res['greedy_ratio']:.2%}; "
          f"the evaluator's exhaustive pick {res['evaluator_exhaustive_ratio']:.2%}; {res['requests']} requests, "
          f"shares {res['shares']}")
    out["exhaustive"] = res
    if args.curve:
        out["exhaustive_curve"] = []
        for n_log in (int(v) for v in args.curve.split(",")):
            r = exhaustive_ratios(env, n_log, args)
            print(f"  curve: {n_log} logged lists: served {r['ratio']:.2%} (min {r['min']:.2%}), evaluator's exhaustive "
                  f"pick {r['evaluator_exhaustive_ratio']:.2%}, fit {r['fit_s']:.0f} s")
            out["exhaustive_curve"].append(r)


def build_retriever(env, log, args, label):
    ev = fit_evaluator(log, args, label)
    net = PointerNet.for_evaluator(ev)
    res = train_ptrnet(net, ev, log, steps=args.ptr_steps, seed=args.seed, progress=args.progress)
    print(f"  [{label}] {res}")
    gens = [Greedy(), Beam(width=args.width), PtrNetGenerator(net, mode="beam", width=args.width)]
    return ev, SequenceRetriever(ev, generators=gens)


def section_retrieval(args, out):
    print("2-4. N 30, K 10: retrieval vs greedy, fidelity, latency")
    env = SlateEnv()
    ev, ret = build_retriever(env, env.log(args.log, seed=args.seed + 3), args, "N30 K10")
    batch = env.sample(args.requests, seed=args.seed + 4)
    t = time.perf_counter()
    served = ret.rank_many(batch.items, 10, context=batch.context)
    per = (time.perf_counter() - t) / len(batch)
    req = ev.requests(batch.items, batch.context)
    true = env.expected_clicks(batch, served.orders)[:, 0]
    greedy = env.expected_clicks(batch, Greedy().generate(ev, req, 10)[:, 0])[:, 0]
    g, lo, hi = gain_ci(true, greedy, args.seed)
    alone = {}
    for gen in ret.generators[1:]:
        lists = gen.generate(ev, req, 10)
        s = ev.score(batch.items, lists, context=batch.context)
        alone[gen.name] = gain_ci(env.expected_clicks(batch, lists[np.arange(len(batch)), s.argmax(1)])[:, 0], greedy)[0]
    print(f"  retriever vs greedy point-wise: {g:+.2%} true expected clicks (95% CI {lo:+.2%} .. {hi:+.2%}), "
          f"{len(batch)} requests ({true.mean():.4f} vs {greedy.mean():.4f}); batched {per * 1e3:.1f} ms/request")
    print(f"  shares of served lists: {served.shares()}; each generator alone: "
          + ", ".join(f"{k} {v:+.2%}" for k, v in alone.items()))
    out["retrieval"] = {"gain": g, "ci": [lo, hi], "requests": len(batch), "shares": served.shares(),
                        "alone": alone, "served_mean": float(true.mean()), "greedy_mean": float(greedy.mean())}
    # fidelity
    rng = np.random.default_rng(args.seed + 5)
    taus = []
    for i in range(min(100, len(batch))):
        lists = np.argsort(rng.random((100, 30)), axis=1)[:, :10]
        taus.append(kendalltau(env.expected_clicks(batch[i], lists[None])[0],
                               ev.score(batch.items[i], lists, context=batch.context[i]))[0])
    print(f"  evaluator fidelity: mean Kendall tau {np.mean(taus):.3f} over 100 random lists x {len(taus)} requests")
    out["fidelity"] = {"tau": float(np.mean(taus)), "requests": len(taus)}
    # latency: one request at a time, one thread; the default retriever (greedy + beam) and the one with the PointerNet
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    out["latency_ms"] = {}
    for label, r in (("default", SequenceRetriever(ev)), ("with_ptrnet", ret)):
        for i in range(5):
            r.rank(batch.items[i], 10, context=batch.context[i])
        times = []
        for i in range(args.latency_requests):
            t = time.perf_counter()
            r.rank(batch.items[i % len(batch)], 10, context=batch.context[i % len(batch)])
            times.append(time.perf_counter() - t)
        ms = np.array(times) * 1e3
        print(f"  serving one request, 1 thread, {label} {[g.name for g in r.generators]}: median {np.median(ms):.1f} ms, "
              f"p99 {np.percentile(ms, 99):.1f} ms ({len(ms)} requests)")
        out["latency_ms"][label] = {"median": float(np.median(ms)), "p99": float(np.percentile(ms, 99)), "n": len(ms)}
    torch.set_num_threads(old)


def section_latency(args, out):
    print("4b. serving latency alone (an evaluator of the default size, fitted briefly: speed does not depend on its quality)")
    env = SlateEnv()
    log = env.log(3000, seed=args.seed + 11)
    ev = Evaluator(epochs=2, seed=args.seed, progress=False, threads=1).fit(log)
    net = PointerNet.for_evaluator(ev)
    train_ptrnet(net, ev, log, steps=5, progress=False)
    batch = env.sample(args.latency_requests, seed=args.seed + 12)
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    rets = (("default", SequenceRetriever(ev)),
            ("no_local_search", SequenceRetriever(ev, [Greedy(), Beam(local_search=0)])),
            ("with_ptrnet", SequenceRetriever(ev, [Greedy(), Beam(width=args.width), PtrNetGenerator(net, width=args.width)])))
    res = {}
    for label, r in rets:
        for i in range(10):
            r.rank(batch.items[i], 10, context=batch.context[i])
        ms = []
        for i in range(len(batch)):
            t = time.perf_counter()
            r.rank(batch.items[i], 10, context=batch.context[i])
            ms.append((time.perf_counter() - t) * 1e3)
        res[label] = {"median": float(np.median(ms)), "p99": float(np.percentile(ms, 99)), "n": len(ms)}
        print(f"  one N 30, K 10 request, 1 thread, {label} {[g.name for g in r.generators]}: median {np.median(ms):.1f} ms, "
              f"p99 {np.percentile(ms, 99):.1f} ms ({len(ms)} requests)")
    torch.set_num_threads(old)
    out["latency_alone_ms"] = res


def section_second_world(args, out):
    print("5. second world: one-hot item IDs, pairwise effects (defaults: SequenceRetriever(evaluator))")
    env = PairSlateEnv()
    ev = fit_evaluator(env.log(args.log, seed=args.seed + 6), args, "one-hot")
    batch = env.sample(args.requests // 2, seed=args.seed + 7)
    served = SequenceRetriever(ev).rank_many(batch.items, 10, context=batch.context)
    greedy = Greedy().generate(ev, ev.requests(batch.items, batch.context), 10)[:, 0]
    g, lo, hi = gain_ci(env.expected_clicks(batch, served.orders)[:, 0], env.expected_clicks(batch, greedy)[:, 0], args.seed)
    oracle = env.expected_clicks(batch, np.argsort(-env._static(batch), axis=1)[:, :10])[:, 0]
    rng = np.random.default_rng(args.seed + 8)
    taus = []
    for i in range(min(50, len(batch))):
        lists = np.argsort(rng.random((100, 30)), axis=1)[:, :10]
        taus.append(kendalltau(env.expected_clicks(batch[i], lists[None])[0],
                               ev.score(batch.items[i], lists, context=batch.context[i]))[0])
    print(f"  retriever vs greedy point-wise: {g:+.2%} (95% CI {lo:+.2%} .. {hi:+.2%}), {len(batch)} requests; "
          f"greedy vs oracle item order {env.expected_clicks(batch, greedy)[:, 0].mean() / oracle.mean() - 1:+.2%}; "
          f"fidelity tau {np.mean(taus):.3f}; shares {served.shares()}")
    out["second_world"] = {"gain": g, "ci": [lo, hi], "tau": float(np.mean(taus)), "requests": len(batch)}


def section_pool(args, out):
    print("6. pool -> evaluator on mixing pages (beam solver, n_solutions=8)")
    import mixrank
    from mixrank.pipeline import request_to_problem
    from mixrank.rerank.pages import pool_lists
    from mixrank.synthetic import FeedConfig, FeedEnv
    from mixrank.synthetic.slates import feed_page_log, feed_slates

    env = FeedEnv(FeedConfig(n_slots=20, n_cards=12, exposure_len=20, history_len=60, click_len=5))
    ev = fit_evaluator(feed_page_log(env.log(args.log, seed=args.seed + 9)), args, "feed pages")
    rules = [mixrank.TypeRule(min_gap=2), mixrank.TypeRule(min_gap=2), mixrank.TypeRule(min_gap=2)]
    batch = env.sample(args.pool_requests, seed=args.seed + 10)
    card_ctr, organic_ctr = env.ctr_matrix(batch)
    items, ctx = feed_slates(batch.requests)
    gains = np.append(env.gains[:-1], 1.0)
    picked, top, sizes = [], [], []
    for r in range(len(batch)):
        p = request_to_problem(batch.requests[r], ctr=(card_ctr[r], organic_ctr[r]), rules=rules,
                               gains=env.gains[:-1], examination=env.examination)
        sol = mixrank.solve(p, solver="beam", n_solutions=8)
        lists = pool_lists(sol)
        plans = np.stack([pl.assignment for pl in sol.pool]) if sol.pool else sol.assignment[None]
        types = np.where(plans >= 0, batch.requests.cand_type[r][np.maximum(plans, 0)], env.n_types)
        weights = gains[types]  # gain-weighted clicks, what mixing maximises
        s = ev.score(items[r], lists, context=ctx[r], weights=weights)
        sub = batch[np.full(len(plans), r)]
        true = env.expected_clicks(sub, sub.requests.compose(plans), weighted=True)
        picked.append(true[int(np.argmax(s))])
        top.append(true[0])
        sizes.append(len(plans))
    picked, top = np.array(picked), np.array(top)
    g, lo, hi = gain_ci(picked, top, args.seed)
    print(f"  evaluator's pick vs the pool's top plan: {g:+.3%} true weighted clicks (95% CI {lo:+.3%} .. {hi:+.3%}), "
          f"{len(top)} requests, mean pool size {np.mean(sizes):.1f}; pick differs from top in "
          f"{np.mean(picked != top):.0%}")
    out["pool"] = {"gain": g, "ci": [lo, hi], "requests": len(top), "mean_pool": float(np.mean(sizes))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--small-requests", type=int, default=200)
    ap.add_argument("--pool-requests", type=int, default=200)
    ap.add_argument("--latency-requests", type=int, default=200)
    ap.add_argument("--log", type=int, default=20000, help="logged lists per world (but the N 8, K 5 one)")
    ap.add_argument("--exhaustive-log", type=int, default=200000, help="logged lists of the N 8, K 5 world")
    ap.add_argument("--curve", default="", help="comma-separated log sizes: N 8, K 5 ratio vs log size (one fit each)")
    ap.add_argument("--ptr-steps", type=int, default=300)
    ap.add_argument("--width", type=int, default=4)
    ap.add_argument("--members", type=int, default=1, help="list models averaged in each evaluator (Evaluator(members=))")
    ap.add_argument("--context-mlp", type=int, default=1, help="Evaluator(context_mlp=): 0 feeds the context to the bilinear term only")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sections", default="exhaustive,retrieval,latency,second,pool")
    ap.add_argument("--quick", action="store_true", help="a small smoke run")
    ap.add_argument("--progress", action="store_true")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    if args.quick:
        args.requests, args.small_requests, args.pool_requests, args.latency_requests = 100, 30, 20, 30
        args.log, args.exhaustive_log, args.ptr_steps = 2000, 2000, 30
    torch.manual_seed(args.seed)
    out: dict = {"args": vars(args)}
    start = time.perf_counter()
    sections = args.sections.split(",")
    if "exhaustive" in sections:
        section_exhaustive(args, out)
    if "retrieval" in sections:
        section_retrieval(args, out)
    if "latency" in sections:
        section_latency(args, out)
    if "second" in sections:
        section_second_world(args, out)
    if "pool" in sections:
        section_pool(args, out)
    out["wall_s"] = time.perf_counter() - start
    print(f"total {out['wall_s']:.0f} s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
