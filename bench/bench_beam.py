"""Beam on the `device` family: gap to the exact optimum, time, and batch throughput.

One run measures everything: CP-SAT (1 worker) gives the optimum and the reference
time; greedy and beam (the default width and two others) are solved on the same
80 instances (seeds 0-19 x plain/history/min_share/both). Times are end-to-end
``mixrank.solve`` calls (medians over instances of the per-instance median of
``--repeats`` calls); the beam's table-building and kernel times and the cost of
``problem.check`` (run by ``make_solution`` on every plan) are reported beside them.
Then ``solve_many`` with beam on ``--batch`` instances with 1 and 2 workers, and
the first call of a fresh process with a warm Numba cache.

    python bench/bench_beam.py [--seeds 0-19] [--widths 8,32,128] [--batch 10000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np

import mixrank
from mixrank.bench import VARIANTS, parse_seeds
from mixrank.synthetic import instance
from solvers.beam import DEFAULT_WIDTH, warm_up


def _timed(p, solver, repeats, **options):
    """Solve ``repeats`` times; the time is the median of end-to-end ``mixrank.solve`` calls."""
    sols, times = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        sols.append(mixrank.solve(p, solver=solver, **options))
        times.append(time.perf_counter() - t0)
    return sols[0], float(np.median(times)), sols


def quality(args) -> dict:
    problems = [instance(args.family, s, *VARIANTS[v]) for s in parse_seeds(args.seeds) for v in VARIANTS]
    mixrank.solve(problems[0], solver="cpsat")  # the ortools import is not timed
    warm_up()
    widths = sorted({DEFAULT_WIDTH, *(int(w) for w in args.widths.split(","))})
    rows = {"cpsat": [], "greedy": [], **{w: [] for w in widths}}
    check_times = []
    for p in problems:
        ref, t_ref, _ = _timed(p, "cpsat", 1)
        rows["cpsat"].append((ref.objective, t_ref, None, ref.status.value))
        opt = ref.objective if ref.status.value == "OPTIMAL" else np.nan
        g, tg, _ = _timed(p, "greedy", args.repeats)
        rows["greedy"].append((g.objective, tg, opt, g.status.value))
        for w in widths:
            b, tb, sols = _timed(p, "beam", args.repeats, width=w)
            kernel = float(np.median([s.stats["kernel_time"] for s in sols]))
            tables = float(np.median([s.stats["tables_time"] for s in sols]))
            rows[w].append((b.objective, tb, opt, b.status.value, kernel, tables))
            if w == DEFAULT_WIDTH and b.has_plan:
                t0 = time.perf_counter()
                for _ in range(args.repeats):
                    p.check(b.assignment)
                check_times.append((time.perf_counter() - t0) / args.repeats)
    cp_median = float(np.median([r[1] for r in rows["cpsat"]]))
    print(f"{args.family}: {len(problems)} instances (seeds {args.seeds} x {', '.join(VARIANTS)}); "
          f"CP-SAT proved {sum(r[3] == 'OPTIMAL' for r in rows['cpsat'])} optimal, median {cp_median * 1e3:.1f} ms")
    print(f"{'solver':>12}{'mean gap':>10}{'max gap':>9}{'optimal':>9}{'no plan':>8}{'median solve':>14}"
          f"{'kernel':>9}{'tables':>9}{'x faster than CP-SAT':>22}")
    summary = {"family": args.family, "n": len(problems), "cpsat_median_ms": cp_median * 1e3, "solvers": {}}
    for name in ["greedy", *widths]:
        r = rows[name]
        gaps = np.array([(x[2] - x[0]) / abs(x[2]) if np.isfinite(x[0]) else np.nan for x in r])
        found = np.isfinite(gaps)
        hits = int(np.sum(gaps[found] <= 1e-9))
        med = float(np.median([x[1] for x in r]))
        label = "greedy" if name == "greedy" else f"beam w={name}"
        kernel = float(np.median([x[4] for x in r])) if name != "greedy" else np.nan
        tables = float(np.median([x[5] for x in r])) if name != "greedy" else np.nan
        print(f"{label:>12}{np.mean(gaps[found]) * 100:>9.3f}%{np.max(gaps[found]) * 100:>8.2f}%"
              f"{hits:>5}/{len(r):<3}{int((~found).sum()):>8}{med * 1e3:>11.3f} ms{kernel * 1e3:>6.3f}ms"
              f"{tables * 1e3:>6.3f}ms{cp_median / med:>20.0f}x")
        summary["solvers"][label] = {"mean_gap": float(np.mean(gaps[found])), "max_gap": float(np.max(gaps[found])),
                                     "optimal": hits, "no_plan": int((~found).sum()), "median_solve_ms": med * 1e3,
                                     "median_kernel_ms": kernel * 1e3, "median_tables_ms": tables * 1e3,
                                     "speedup_vs_cpsat": cp_median / med}
    chk = float(np.median(check_times))
    print(f"problem.check on a beam plan (inside make_solution): median {chk * 1e6:.1f} us")
    summary["check_median_us"] = chk * 1e6
    return summary


def throughput(args) -> dict:
    variants = list(VARIANTS.values())
    batch = [instance(args.family, s, *variants[s % len(variants)]) for s in range(args.batch)]
    out = {}
    for jobs in (1, 2):
        t0 = time.perf_counter()
        sols = mixrank.solve_many(batch, solver="beam", n_jobs=jobs)
        dt = time.perf_counter() - t0
        out[jobs] = {"seconds": dt, "per_second": len(batch) / dt, "with_plan": sum(s.has_plan for s in sols)}
        print(f"solve_many beam, {len(batch)} {args.family} instances, n_jobs={jobs}: {dt:.2f} s, "
              f"{len(batch) / dt:,.0f} instances/s ({out[jobs]['with_plan']} with a plan)")
    return out


def first_call() -> float:
    code = ("import time; t = time.perf_counter(); from solvers.beam import warm_up; warm_up(); "
            "print(time.perf_counter() - t)")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)  # fills the cache if needed
    res = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    dt = float(res.stdout.strip())
    print(f"fresh process, warm cache: import + warm_up() (first call) {dt:.3f} s")
    return dt


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--family", default="device")
    ap.add_argument("--seeds", default="0-19")
    ap.add_argument("--widths", default="8,128")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch", type=int, default=10_000)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    result = {"quality": quality(args), "first_call_s": first_call()}
    if args.batch > 0:
        result["solve_many"] = throughput(args)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
