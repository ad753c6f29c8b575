"""CP-SAT on the `device` family: does it prove every instance optimal, and how fast?

Runs seeds 0-19 in the four variants (plain, history, min_share, both) with 1 and
2 CP-SAT workers, interleaved instance by instance so both see the same machine
load, and prints the median and p95 solve time (model building included).

    python bench/bench_cpsat.py [--seeds 0-19] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

import mixrank
from mixrank.bench import VARIANTS, parse_seeds
from mixrank.synthetic import instance


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--family", default="device")
    ap.add_argument("--seeds", default="0-19")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    workers = [int(w) for w in args.workers.split(",")]
    problems = [(s, v, instance(args.family, s, *VARIANTS[v])) for s in parse_seeds(args.seeds) for v in VARIANTS]
    mixrank.solve(problems[0][2], solver="cpsat")  # warm-up: the ortools import is not timed
    times = {w: [] for w in workers}
    statuses = {w: [] for w in workers}
    objectives = {w: [] for w in workers}
    for _seed, _variant, p in problems:
        for w in workers:
            sol = mixrank.solve(p, solver="cpsat", num_workers=w)
            times[w].append(sol.wall_time)
            statuses[w].append(sol.status.value)
            objectives[w].append(sol.objective)
    print(f"CP-SAT on {args.family}: {len(problems)} instances (seeds {args.seeds} x {', '.join(VARIANTS)})")
    print(f"{'workers':>8}{'optimal':>10}{'median ms':>12}{'p95 ms':>10}{'max ms':>10}")
    summary = {}
    for w in workers:
        t = np.array(times[w]) * 1e3
        n_opt = statuses[w].count("OPTIMAL")
        print(f"{w:>8}{n_opt:>7}/{len(t):<3}{np.median(t):>11.1f}{np.percentile(t, 95):>10.1f}{t.max():>10.1f}")
        summary[w] = {"optimal": n_opt, "n": len(t), "median_ms": float(np.median(t)),
                      "p95_ms": float(np.percentile(t, 95)), "max_ms": float(t.max())}
    a, b = (np.array(objectives[w]) for w in workers[:2]) if len(workers) > 1 else (None, None)
    if a is not None:
        print(f"largest objective difference between worker counts: {np.nanmax(np.abs(a - b)):.2e}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"summary": summary, "times": times, "statuses": statuses}, fh, indent=1)
    all_optimal = all(statuses[w].count("OPTIMAL") == len(problems) for w in workers)
    print("every instance proven optimal" if all_optimal else "NOT every instance was proven optimal")
    return 0 if all_optimal else 1


if __name__ == "__main__":
    sys.exit(main())
