"""Are time limits kept, model building included? (issue 16, item 9)

Solves a large random problem (N = 200 cards, K = 300 slots, T = 8 types: CP-SAT's
model has 60,000 variables and ~470,000 at-most-one literals) and the ``large``
family under time limits, and prints for each limit the median and worst wall
time of ``mixrank.solve`` and whether it stayed within ``1.1 * limit + 0.05 s``.
The solver is warmed up first (the first call imports OR-Tools or loads kernels).

    python bench/bench_time_limits.py [--solvers cpsat] [--limits 0.05,0.3,1,2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

import mixrank
from mixrank import MixProblem, TypeRule
from mixrank.synthetic import instance


def big_problem(n: int = 200, k: int = 300, t_count: int = 8, seed: int = 0) -> MixProblem:
    rng = np.random.default_rng(seed)
    return MixProblem(values=rng.normal(0.5, 0.3, (n, k)), types=rng.integers(0, t_count, n),
                      pv_weights=0.97 ** np.arange(k), min_gap_any=2,
                      rules=[TypeRule(min_gap=int(rng.integers(2, 6)), max_share=0.3) for _ in range(t_count)])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--solvers", default="cpsat")
    ap.add_argument("--limits", default="0.05,0.3,1,2")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    problems = {"N200-K300-T8": big_problem(), "large-0": instance("large", 0, history=True, min_share=True)}
    kept_all = True
    for solver in args.solvers.split(","):
        mixrank.solve(instance("tiny", 0), solver=solver)  # warm-up: imports and kernels
        for name, p in problems.items():
            p.arrays  # noqa: B018 - compiled once, outside the clock
            for limit in (float(x) for x in args.limits.split(",")):
                walls, statuses = [], []
                for _ in range(args.repeats):
                    t0 = time.perf_counter()
                    sol = mixrank.solve(p, solver=solver, time_limit=limit)
                    walls.append(time.perf_counter() - t0)
                    statuses.append(str(sol.status))
                kept = max(walls) <= 1.1 * limit + 0.05
                kept_all &= kept
                print(f"{solver:6s} {name:13s} limit {limit:5.2f} s  median {statistics.median(walls):6.3f} s  "
                      f"worst {max(walls):6.3f} s  {'kept' if kept else 'OVERRUN'}  {','.join(sorted(set(statuses)))}")
    return 0 if kept_all else 1


if __name__ == "__main__":
    sys.exit(main())
