"""Branch and bound against CP-SAT: proofs and times on `device`, certified gaps on `large`.

Part 1, `device` (seeds 0-19 x plain/history/min_share/both, 80 instances): both
exact solvers on every instance, interleaved instance by instance (the order
alternates) so both see the same machine load. CP-SAT runs with 1 worker (its
default). bnb runs in a warm process: ``solvers.bnb.warm_up()`` and one solve
happen before any timing, so Numba compilation and imports are not timed. A time
is the end-to-end ``mixrank.solve`` call (model or table building included),
wall clock (``time.perf_counter``); CPU time (``time.process_time``) is reported
beside it. bnb must prove every instance optimal and agree with CP-SAT's optimum.

Part 2, `large` (seeds 0-9, plain by default): both solvers with the same time
limit (10 s); how many each proves optimal, and the gap each certifies
(``(bound - objective) / |objective|``) on the rest.

    python bench/bench_bnb.py [--seeds 0-19] [--large-seeds 0-9] [--large-limit 10]
                              [--large-variants plain] [--skip-large] [--json bench_bnb.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time

import numpy as np

import mixrank
from mixrank.bench import VARIANTS, parse_seeds
from mixrank.synthetic import instance
from solvers.bnb import warm_up


def _timed(p, solver, **options):
    w0, c0 = time.perf_counter(), time.process_time()
    sol = mixrank.solve(p, solver=solver, **options)
    return sol, time.perf_counter() - w0, time.process_time() - c0


def _num(x: float):
    return x if math.isfinite(x) else str(x)


def device_part(args) -> dict:
    cases = [(s, v) for v in VARIANTS for s in parse_seeds(args.seeds)]
    problems = [instance(args.family, s, *VARIANTS[v]) for s, v in cases]
    mixrank.solve(problems[0], solver="cpsat")  # the ortools import is not timed
    warm_up()
    mixrank.solve(problems[0], solver="bnb")
    rows = []
    for i, ((seed, variant), p) in enumerate(zip(cases, problems)):
        order = ("cpsat", "bnb") if i % 2 == 0 else ("bnb", "cpsat")
        got = {name: _timed(p, name) for name in order}
        (ref, ref_wall, ref_cpu), (sol, wall, cpu) = got["cpsat"], got["bnb"]
        agree = sol.status is ref.status and (
            not ref.status.has_plan or abs(sol.objective - ref.objective) <= 1e-6 * max(1.0, abs(ref.objective)))
        rows.append({
            "seed": seed, "variant": variant, "agree": bool(agree),
            "cpsat": {"status": ref.status.value, "objective": _num(ref.objective), "wall_s": ref_wall, "cpu_s": ref_cpu},
            "bnb": {"status": sol.status.value, "objective": _num(sol.objective), "wall_s": wall, "cpu_s": cpu,
                    "nodes": sol.stats["nodes"], "memo_hits": sol.stats["memo_hits"],
                    "root_bound": sol.stats["root_bound"], "beam_value": _num(sol.stats["beam_value"])},
        })
        if args.verbose:
            print(f"  {args.family} {seed:>2} {variant:<9} cpsat {ref.status.value:<10} {ref_wall * 1e3:8.1f} ms   "
                  f"bnb {sol.status.value:<10} {wall * 1e3:8.1f} ms  nodes {sol.stats['nodes']:>8}"
                  f"{'' if agree else '  DISAGREE'}", flush=True)
    summary = {}
    print(f"\n{args.family}: {len(rows)} instances (seeds {args.seeds} x {', '.join(VARIANTS)}); "
          "bnb timed in a warm process after a warm-up call")
    print(f"{'solver':<8}{'optimal':>9}{'median ms':>11}{'p95 ms':>9}{'max ms':>9}{'cpu median':>12}{'cpu p95':>9}")
    for name in ("cpsat", "bnb"):
        wall = np.array([r[name]["wall_s"] for r in rows]) * 1e3
        cpu = np.array([r[name]["cpu_s"] for r in rows]) * 1e3
        n_opt = sum(r[name]["status"] == "OPTIMAL" for r in rows)
        summary[name] = {"optimal": n_opt, "n": len(rows), "median_ms": float(np.median(wall)),
                         "p95_ms": float(np.percentile(wall, 95)), "max_ms": float(wall.max()),
                         "cpu_median_ms": float(np.median(cpu)), "cpu_p95_ms": float(np.percentile(cpu, 95))}
        s = summary[name]
        print(f"{name:<8}{n_opt:>5}/{len(rows):<3}{s['median_ms']:>11.2f}{s['p95_ms']:>9.1f}{s['max_ms']:>9.1f}"
              f"{s['cpu_median_ms']:>12.2f}{s['cpu_p95_ms']:>9.1f}")
    ratio = summary["cpsat"]["median_ms"] / summary["bnb"]["median_ms"]
    cpu_ratio = summary["cpsat"]["cpu_median_ms"] / summary["bnb"]["cpu_median_ms"]
    per_instance = np.array([r["cpsat"]["wall_s"] / r["bnb"]["wall_s"] for r in rows])
    disagree = [f"{r['seed']}/{r['variant']}" for r in rows if not r["agree"]]
    print(f"median CP-SAT / median bnb: {ratio:.1f}x wall, {cpu_ratio:.1f}x cpu; "
          f"per-instance speed-up median {np.median(per_instance):.1f}x, min {per_instance.min():.2f}x")
    print("bnb agrees with CP-SAT on every instance" if not disagree else f"DISAGREE on {', '.join(disagree)}")
    return {"rows": rows, "summary": summary, "median_ratio_wall": ratio, "median_ratio_cpu": cpu_ratio,
            "all_agree": not disagree}


def large_part(args) -> dict:
    cases = [(s, v) for v in args.large_variants.split(",") for s in parse_seeds(args.large_seeds)]
    rows = []
    print(f"\nlarge: {len(cases)} instances, time limit {args.large_limit:g} s each")
    print(f"{'seed':>4} {'variant':<10}{'cpsat':>10}{'gap':>9}{'s':>7}   {'bnb':>10}{'gap':>9}{'s':>7}"
          f"{'overrun ms':>11}{'nodes':>10}")
    for seed, variant in cases:
        p = instance("large", seed, *VARIANTS[variant])
        got = {}
        for name in ("cpsat", "bnb"):
            sol, wall, cpu = _timed(p, name, time_limit=args.large_limit)
            got[name] = {"status": sol.status.value, "objective": _num(sol.objective), "bound": _num(sol.bound),
                         "gap": _num(sol.gap), "wall_s": wall, "cpu_s": cpu}
            if name == "bnb":
                got[name].update(nodes=sol.stats["nodes"], overrun_s=sol.stats["overrun"],
                                 root_bound=sol.stats["root_bound"])
        c, b = got["cpsat"], got["bnb"]
        print(f"{seed:>4} {variant:<10}{c['status']:>10}{_pct(c['gap']):>9}{c['wall_s']:>7.2f}   "
              f"{b['status']:>10}{_pct(b['gap']):>9}{b['wall_s']:>7.2f}{b['overrun_s'] * 1e3:>11.1f}{b['nodes']:>10}",
              flush=True)
        rows.append({"seed": seed, "variant": variant, **got})
    summary = {}
    for name in ("cpsat", "bnb"):
        gaps = [r[name]["gap"] for r in rows if r[name]["status"] == "FEASIBLE" and isinstance(r[name]["gap"], float)]
        summary[name] = {
            "optimal": sum(r[name]["status"] == "OPTIMAL" for r in rows), "n": len(rows),
            "median_gap_unproven": float(np.median(gaps)) if gaps else None,
            "max_gap_unproven": float(max(gaps)) if gaps else None,
            "no_plan": sum(r[name]["status"] in ("UNKNOWN", "INFEASIBLE") for r in rows),
        }
        s = summary[name]
        rest = f"median gap {s['median_gap_unproven']:.3%}, max {s['max_gap_unproven']:.3%}" if gaps else "none left"
        print(f"{name:<6} proves {s['optimal']}/{len(rows)} optimal within {args.large_limit:g} s; "
              f"on the rest: {rest}")
    over = [r["bnb"]["overrun_s"] for r in rows]
    print(f"bnb returned at most {max(over) * 1e3:.1f} ms past the limit (median {np.median(over) * 1e3:.1f} ms)")
    return {"rows": rows, "summary": summary, "limit_s": args.large_limit}


def _pct(x) -> str:
    return f"{x:.3%}" if isinstance(x, float) else "-"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--family", default="device")
    ap.add_argument("--seeds", default="0-19")
    ap.add_argument("--large-seeds", default="0-9")
    ap.add_argument("--large-variants", default="plain")
    ap.add_argument("--large-limit", type=float, default=10.0)
    ap.add_argument("--skip-large", action="store_true")
    ap.add_argument("--json", default="bench_bnb.json")
    ap.add_argument("--verbose", action="store_true", help="one line per device instance")
    args = ap.parse_args(argv)
    out = {"machine": {"platform": platform.platform(), "python": platform.python_version(),
                       "cpus": os.cpu_count(), "load_avg": os.getloadavg()},
           "device": device_part(args)}
    if not args.skip_large:
        out["large"] = large_part(args)
    out["machine"]["load_avg_after"] = os.getloadavg()
    fd, tmp = tempfile.mkstemp(prefix=".bench_bnb.", suffix=".json", dir=os.path.dirname(os.path.abspath(args.json)))
    with os.fdopen(fd, "w") as fh:
        json.dump(out, fh, indent=1)
    os.replace(tmp, args.json)
    print(f"\nresults written to {args.json}")
    d = out["device"]
    ok = d["all_agree"] and d["summary"]["bnb"]["optimal"] == len(d["rows"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
