"""Worked example 1: one mixing problem, every solver, side by side.

What it shows:

* how a :class:`mixrank.MixProblem` is made (here drawn from the seeded
  ``small`` family: 12 cards of 3 types for a 20-slot page, with a session
  history and a minimum PV share for one type);
* that every solver answers through the one function :func:`mixrank.solve`;
* what each answer means: the status (OPTIMAL is proven, FEASIBLE is not), the
  objective, the proven bound, and the gap between them; the heuristics
  (greedy, beam) against the exact optimum that bnb and cpsat agree on;
* that every plan keeps the rules: :meth:`MixProblem.check` lists no violation.

Run from the repository root::

    python examples/01_solve_one_problem.py             # the `small` family, seed 3
    python examples/01_solve_one_problem.py --family device --seed 0
    python examples/01_solve_one_problem.py --fast      # the `tiny` family

The first run on a machine compiles the Numba kernels of beam and bnb (about
two minutes each, once); later runs take a few seconds.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

import mixrank  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Solve one mixing problem with every solver.")
    ap.add_argument("--family", default="small", choices=["tiny", "small", "device", "large"])
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--fast", action="store_true", help="the tiny family")
    args = ap.parse_args(argv)
    family = "tiny" if args.fast else args.family

    # 1. The problem: values[c, s] is the gain of card c at slot s; rules per type; what the session showed.
    problem = mixrank.synthetic.instance(family, seed=args.seed, history=True, min_share=True)
    print(f"problem: {problem!r}")
    for t, rule in enumerate(problem.rules):
        print(f"  type {t}: {int((problem.types == t).sum())} cards, {rule}")
    print(f"  history: {problem.history}")

    # 2. Every registered solver through one call. A solver's first call in a process loads its compiled
    #    kernels, so each is warmed up on the problem first and the second call is timed.
    rows = []
    order = ["greedy", "beam", "bnb", "cpsat"]  # the online baseline, the heuristic, the exact solvers
    for name in sorted(mixrank.available_solvers(), key=lambda n: order.index(n) if n in order else len(order)):
        mixrank.solve(problem, solver=name)
        sol = mixrank.solve(problem, solver=name, time_limit=60)
        rows.append((name, sol))

    # 3. Compare: the exact solvers prove the optimum; the heuristics are measured against it.
    best = max(s.objective for _, s in rows if s.status == mixrank.Status.OPTIMAL)
    bound = min(s.bound for _, s in rows)
    print(f"\n{'solver':<7} {'status':<9} {'objective':>10} {'bound':>10} {'% of optimum':>13} {'ms':>8}  cards  rules")
    for name, sol in rows:
        broken = problem.check(sol.assignment)
        print(f"{name:<7} {sol.status.value:<9} {sol.objective:10.4f} {sol.bound:10.4f} "
              f"{100 * sol.objective / best:12.2f}% {sol.wall_time * 1e3:8.2f}  {int((sol.assignment >= 0).sum()):5d}  "
              f"{'kept' if not broken else '; '.join(broken)}")
    print(f"\nproven optimum {best:.4f}; the tightest proven bound is {bound:.4f} (no plan can beat it)")
    exact = [s.objective for n, s in rows if mixrank.SOLVERS[n].exact]
    print(f"the exact solvers agree to {max(exact) - min(exact):.2e}")

    # 4. The best plan, slot by slot: which card (and its type) goes where.
    plan = next(s for _, s in rows if s.status == mixrank.Status.OPTIMAL).assignment
    line = " ".join("." if c < 0 else str(int(problem.types[c])) for c in plan)
    print(f"optimal page (type per slot, '.' = organic): {line}")
    return 0 if all(not problem.check(s.assignment) for _, s in rows) and np.isfinite(best) else 1


if __name__ == "__main__":
    raise SystemExit(main())
