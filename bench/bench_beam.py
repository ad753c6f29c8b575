"""Beam on the `device` family: gap to the exact optimum, time, and batch throughput.

One run measures everything: CP-SAT (1 worker) gives the optimum and the reference
time; greedy and beam (the default settings and the others asked for) are solved on
the same 80 instances (seeds 0-19 x plain/history/min_share/both). For every solver
two times are reported, as medians over instances of the per-instance median of
``--repeats`` calls:

* end to end — a ``mixrank.solve`` call, validation, the plan's re-check (one compiled
  pass, ``mixrank._fastcheck``, from ``make_solution``) and ``make_solution`` included;
* wall — the solver's own ``Solution.wall_time``;

and the ratio of CP-SAT's median to each (same run, same instances). Beam rows also
show the mean gap of its Lagrangian bound to the optimum. Then ``solve_many`` with
beam on ``--batch`` instances with 1 and 2 workers, and the first call of a fresh
process with a warm Numba cache.

    python bench/bench_beam.py [--seeds 0-19] [--configs 16:25:1,32:25:1,32:25] [--batch 10000] [--json out.json]

``--configs`` lists extra beam settings as ``width[:price_iters[:local_search]]`` (price_iters 25 and
local_search 0 when left out; the default settings always run). Each beam setting is timed right after an untimed greedy solve of the
same instance (the default comes after greedy's timed calls), so that no setting inherits
caches and branch predictors warmed by another.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import mixrank
from mixrank._fastcheck import check_plan
from mixrank.bench import VARIANTS, parse_seeds
from mixrank.synthetic import instance
from solvers.beam import DEFAULT_LOCAL_SEARCH, DEFAULT_PRICE_ITERS, DEFAULT_WIDTH, warm_up


def _timed(p, solver, repeats, **options):
    """Solve ``repeats`` times: (first solution, median end-to-end seconds, median wall_time, solutions)."""
    sols, times = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        sols.append(mixrank.solve(p, solver=solver, **options))
        times.append(time.perf_counter() - t0)
    return sols[0], float(np.median(times)), float(np.median([s.wall_time for s in sols]))


def _parse_configs(text: str) -> list[tuple[int, int, int]]:
    """``width[:price_iters[:local_search]]`` items, comma-separated, as (width, price_iters, local_search)."""
    out = []
    for part in filter(None, (x.strip() for x in text.split(","))):
        fields = part.split(":")
        if not 1 <= len(fields) <= 3 or not all(f.strip().isdigit() for f in fields):
            raise SystemExit(f"--configs: {part!r} is not width[:price_iters[:local_search]] (non-negative ints)")
        out.append((int(fields[0]), int(fields[1]) if len(fields) > 1 else DEFAULT_PRICE_ITERS,
                    int(fields[2]) if len(fields) > 2 else 0))
    return out


def _options(c: tuple[int, int, int]) -> dict:
    """solve() options of a config: none for the default settings (the plain call a user makes), else all three."""
    if c == (DEFAULT_WIDTH, DEFAULT_PRICE_ITERS, DEFAULT_LOCAL_SEARCH):
        return {}
    return {"width": c[0], "price_iters": c[1], "local_search": c[2]}


def quality(args) -> dict:
    problems = [instance(args.family, s, *VARIANTS[v]) for s in parse_seeds(args.seeds) for v in VARIANTS]
    mixrank.solve(problems[0], solver="cpsat")  # the ortools import is not timed
    mixrank.solve(problems[0], solver="greedy")
    warm_up()
    configs = [(DEFAULT_WIDTH, DEFAULT_PRICE_ITERS, DEFAULT_LOCAL_SEARCH)]
    configs += [c for c in _parse_configs(args.configs) if c not in configs]
    labels = {c: f"beam {c[0]}/{c[1]}" + (f"+ls{c[2]}" if c[2] else "") + (" *" if c == configs[0] else "")
              for c in configs}
    rows = {"cpsat": [], "greedy": [], **{c: [] for c in configs}}
    check_times = []
    for p in problems:
        ref, t_ref, w_ref = _timed(p, "cpsat", 1)
        rows["cpsat"].append((ref.objective, t_ref, w_ref, None, ref.status.value, np.nan))
        opt = ref.objective if ref.status.value == "OPTIMAL" else np.nan
        g, tg, wg = _timed(p, "greedy", args.repeats)
        rows["greedy"].append((g.objective, tg, wg, opt, g.status.value, np.nan))
        for c in configs:
            # Every setting starts from the same state: after an untimed greedy solve of the instance, as the
            # default does. Timed straight after another setting, one ran ~10 us faster (warm caches and
            # trained branch predictors), which flattered every setting but the first.
            if c != configs[0]:
                mixrank.solve(p, solver="greedy")
            b, tb, wb = _timed(p, "beam", args.repeats, **_options(c))
            rows[c].append((b.objective, tb, wb, opt, b.status.value, b.bound))
            if c == configs[0] and b.has_plan:
                t0 = time.perf_counter()
                for _ in range(args.repeats):
                    check_plan(p, b.assignment)
                check_times.append((time.perf_counter() - t0) / args.repeats)
    cp_e2e = float(np.median([r[1] for r in rows["cpsat"]]))
    cp_wall = float(np.median([r[2] for r in rows["cpsat"]]))
    print(f"{args.family}: {len(problems)} instances (seeds {args.seeds} x {', '.join(VARIANTS)}); CP-SAT proved "
          f"{sum(r[4] == 'OPTIMAL' for r in rows['cpsat'])} optimal; CP-SAT median end to end {cp_e2e * 1e3:.1f} ms, "
          f"wall_time {cp_wall * 1e3:.1f} ms")
    print("beam rows: width/price_iters, +lsN = local_search N (* = default)")
    print(f"{'solver':>14}{'mean gap':>10}{'max gap':>9}{'optimal':>9}{'no plan':>8}{'bound gap':>10}"
          f"{'end to end':>12}{'wall':>10}{'x CP-SAT e2e':>14}{'x CP-SAT wall':>15}")
    summary = {"family": args.family, "n": len(problems), "cpsat_median_e2e_ms": cp_e2e * 1e3,
               "cpsat_median_wall_ms": cp_wall * 1e3, "solvers": {}}
    for key in ["greedy", *configs]:
        r = rows[key]
        gaps = np.array([(x[3] - x[0]) / abs(x[3]) if np.isfinite(x[0]) else np.nan for x in r])
        bound_gaps = np.array([(x[5] - x[3]) / abs(x[3]) for x in r])
        found = np.isfinite(gaps)
        hits = int(np.sum(gaps[found] <= 1e-9))
        e2e = float(np.median([x[1] for x in r]))
        wall = float(np.median([x[2] for x in r]))
        label = "greedy" if key == "greedy" else labels[key]
        bg = f"{np.mean(bound_gaps) * 100:.2f}%" if np.all(np.isfinite(bound_gaps)) else "-"
        print(f"{label:>14}{np.mean(gaps[found]) * 100:>9.3f}%{np.max(gaps[found]) * 100:>8.2f}%"
              f"{hits:>5}/{len(r):<3}{int((~found).sum()):>8}{bg:>10}{e2e * 1e3:>9.3f} ms{wall * 1e3:>7.3f} ms"
              f"{cp_e2e / e2e:>13.0f}x{cp_wall / wall:>14.0f}x")
        summary["solvers"][label] = {
            "mean_gap": float(np.mean(gaps[found])), "max_gap": float(np.max(gaps[found])), "optimal": hits,
            "no_plan": int((~found).sum()), "mean_bound_gap": float(np.mean(bound_gaps)),
            "median_e2e_ms": e2e * 1e3, "median_wall_ms": wall * 1e3,
            "speedup_e2e_vs_cpsat": cp_e2e / e2e, "speedup_wall_vs_cpsat": cp_wall / wall}
    chk = float(np.median(check_times))
    print(f"re-check of a beam plan called from Python (mixrank._fastcheck.check_plan, as make_solution runs it for "
          f"every solver): median {chk * 1e6:.1f} us")
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


#: A child process's first-call timing: importing the solver, Numba's own first use (a three-line cached function,
#: which pays Numba's one-off set-up: its registries, and the scipy.linalg import they trigger), then warm_up().
_FIRST_CALL = """
import sys, time
sys.path.insert(0, sys.argv[1])
t0 = time.perf_counter()
from solvers.beam import warm_up
import numpy as np
import first_use
t1 = time.perf_counter()
first_use.f(np.ones(3))
t2 = time.perf_counter()
warm_up()
t3 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2)
"""

_FIRST_USE = """from numba import njit


@njit(cache=True)
def f(a):
    return a.sum()
"""


def first_call() -> dict:
    """Seconds of a fresh process's first beam call with a warm cache, split into its parts."""
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "first_use.py").write_text(_FIRST_USE)
        cmd = [sys.executable, "-c", _FIRST_CALL, tmp]
        subprocess.run(cmd, check=True, capture_output=True)  # fills both caches if needed
        res = subprocess.run(cmd, check=True, capture_output=True, text=True)
    imp, numba_first, warm = (float(x) for x in res.stdout.split())
    print(f"fresh process, warm cache: first call {numba_first + warm:.3f} s = Numba's own first use (any cached "
          f"function pays it) {numba_first:.3f} s + loading and running the beam kernel (warm_up()) {warm:.3f} s; "
          f"importing the solver before it {imp:.3f} s")
    return {"import_s": imp, "numba_first_use_s": numba_first, "warm_up_s": warm, "first_call_s": numba_first + warm}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--family", default="device")
    ap.add_argument("--seeds", default="0-19")
    ap.add_argument("--configs", default="16:25:1,32:25:1,32:25", help="extra beam settings, width[:price_iters[:local_search]],...")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch", type=int, default=10_000)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    result = {"quality": quality(args), "first_call": first_call()}
    if args.batch > 0:
        result["solve_many"] = throughput(args)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
