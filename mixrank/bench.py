"""Compare solvers over an instance family: the engine behind ``mixrank bench``.

Each solver runs on every instance in one process, one after another, after a
warm-up call (so Numba compilation and imports are not timed). Per instance the
*reference* is the best proven bound over the exact solvers that proved
optimality (or, failing that, the tightest bound any solver proved); a solver's
gap is ``(reference - objective) / max(|objective|, 1e-10)``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mixrank._io import atomic_write
from mixrank.errors import SolverError
from mixrank.solve import SOLVERS, resolve_solver, solve
from mixrank.synthetic.instances import FAMILIES, instance

__all__ = ["VARIANTS", "BenchRecord", "BenchResult", "run_bench", "parse_seeds"]

#: Instance variants: name -> (history, min_share).
VARIANTS: dict[str, tuple[bool, bool]] = {
    "plain": (False, False),
    "history": (True, False),
    "min_share": (False, True),
    "both": (True, True),
}


def parse_seeds(text: str) -> list[int]:
    """Parse ``"0-19"``, ``"3"`` or ``"0,2,5-7"`` into a list of seeds.

    >>> parse_seeds("0-2,7")
    [0, 1, 2, 7]
    """
    seeds: list[int] = []
    try:
        for part in str(text).split(","):
            part = part.strip()
            if "-" in part:
                a, b = part.split("-", 1)
                lo, hi = int(a), int(b)
                if hi < lo:
                    raise ValueError
                seeds.extend(range(lo, hi + 1))
            elif part:
                seeds.append(int(part))
    except ValueError:
        raise SolverError(f"seeds must look like '0-19' or '0,2,5-7' with seeds >= 0; got {text!r}") from None
    if not seeds or min(seeds) < 0:
        raise SolverError(f"seeds must look like '0-19' or '0,2,5-7' with seeds >= 0; got {text!r}")
    return seeds


@dataclass
class BenchRecord:
    """One solver on one instance."""

    solver: str
    family: str
    seed: int
    variant: str
    status: str
    objective: float
    bound: float
    wall_time: float
    gap: float = math.nan  # to the instance's reference, filled in after all solvers ran
    hit_optimum: bool = False


@dataclass
class BenchResult:
    """All records of a run, with the summary table."""

    records: list[BenchRecord]
    solvers: list[str]
    settings: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> list[dict[str, Any]]:
        """One row per solver: status counts, latency median/p95 (ms), gaps, share optimal."""
        rows = []
        ref_median = None
        for name in self.solvers:
            recs = [r for r in self.records if r.solver == name]
            times = np.array([r.wall_time for r in recs])
            gaps = np.array([r.gap for r in recs if not math.isnan(r.gap)])
            counts = {s: sum(r.status == s for r in recs) for s in ("OPTIMAL", "FEASIBLE", "INFEASIBLE", "UNKNOWN")}
            row = {
                "solver": name,
                "n": len(recs),
                **counts,
                "median_ms": float(np.median(times) * 1e3) if len(times) else math.nan,
                "p95_ms": float(np.percentile(times, 95) * 1e3) if len(times) else math.nan,
                "mean_gap": float(gaps.mean()) if gaps.size else math.nan,
                "max_gap": float(gaps.max()) if gaps.size else math.nan,
                "hit_optimum": sum(r.hit_optimum for r in recs),
                "proven_optimal": counts["OPTIMAL"] / len(recs) if recs else math.nan,
            }
            rows.append(row)
        ref = self.settings.get("reference")
        for row in rows:
            if row["solver"] == ref:
                ref_median = row["median_ms"]
        for row in rows:
            row["speedup_vs_ref"] = (ref_median / row["median_ms"]) if ref_median and row["median_ms"] > 0 else math.nan
        return rows

    def table(self) -> str:
        """The summary as a fixed-width text table."""
        rows = self.summary()
        ref = self.settings.get("reference")
        head = (f"{'solver':<14}{'n':>5}{'OPT':>6}{'FEAS':>6}{'INF':>5}{'UNK':>5}{'median ms':>12}{'p95 ms':>11}"
                f"{'mean gap':>10}{'max gap':>10}{'=opt':>6}{'proven':>8}{'x ' + str(ref):>12}")
        lines = [head, "-" * len(head)]
        for r in rows:
            lines.append(
                f"{r['solver']:<14}{r['n']:>5}{r['OPTIMAL']:>6}{r['FEASIBLE']:>6}{r['INFEASIBLE']:>5}{r['UNKNOWN']:>5}"
                f"{r['median_ms']:>12.3f}{r['p95_ms']:>11.3f}{_pct(r['mean_gap']):>10}{_pct(r['max_gap']):>10}"
                f"{r['hit_optimum']:>6}{r['proven_optimal']:>8.0%}{_ratio(r['speedup_vs_ref']):>12}"
            )
        lines.append(
            "gap: to the best proven bound per instance; =opt: plans matching the proven optimum (1e-6 rel.); "
            f"x {ref}: median-time speed-up over {ref} in this run"
        )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        def clean(v: Any) -> Any:
            if isinstance(v, float) and not math.isfinite(v):
                return str(v)
            return v

        return {
            "settings": self.settings,
            "summary": [{k: clean(v) for k, v in row.items()} for row in self.summary()],
            "records": [{k: clean(v) for k, v in r.__dict__.items()} for r in self.records],
        }

    def write_json(self, path: str | os.PathLike[str]) -> None:
        """Write the results; the file appears whole or not at all."""
        with atomic_write(path) as fh:
            fh.write(json.dumps(self.to_dict(), indent=1).encode("utf-8"))

    def plot(self, path: str | os.PathLike[str]) -> None:
        """Latency against gap, one point per (solver, instance); needs matplotlib."""
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            raise SolverError("plot needs matplotlib: pip install 'mixrank[plot]'") from None
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for name in self.solvers:
            recs = [r for r in self.records if r.solver == name and not math.isnan(r.gap)]
            ax.scatter([r.wall_time * 1e3 for r in recs], [max(r.gap, 1e-7) * 100 for r in recs], label=name, s=14)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("solve time (ms, log)")
        ax.set_ylabel("gap to best bound (%, log; 1e-5 % = optimal)")
        ax.set_title(f"mixrank bench: {self.settings.get('family')}")
        ax.legend()
        fig.tight_layout()
        try:
            with atomic_write(path) as fh:
                fig.savefig(fh, dpi=120, format="png")
        finally:
            plt.close(fig)


def _pct(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.3%}"


def _ratio(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:,.1f}x"


def run_bench(
    family: str,
    seeds: Iterable[int],
    solvers: Sequence[str],
    variants: Sequence[str] = tuple(VARIANTS),
    time_limit: float | None = None,
    options: dict[str, dict[str, Any]] | None = None,
    reference: str | None = None,
    progress: bool = True,
) -> BenchResult:
    """Run every solver on every instance of ``family`` x ``seeds`` x ``variants``.

    Parameters
    ----------
    family : str
        An instance family of :mod:`mixrank.synthetic`.
    seeds : iterable of int
    solvers : sequence of str
        Registered solver names; each is warmed up once before timing.
    variants : sequence of str
        Names from :data:`VARIANTS`.
    time_limit : float or None
        Per solve.
    options : dict solver -> dict of options
    reference : str or None
        The solver whose median time the speed-up column divides (default: cpsat if run).
    progress : bool
        Show a progress bar.

    Examples
    --------
    >>> res = run_bench("tiny", [0, 1], ["greedy", "cpsat"], variants=["plain"], progress=False)
    >>> [row["n"] for row in res.summary()]
    [2, 2]
    """
    if family not in FAMILIES:
        raise SolverError(f"family must be one of {', '.join(FAMILIES)}; got {family!r}")
    seeds = list(seeds)
    options = dict(options or {})
    if not solvers:
        raise SolverError("solvers must name at least one solver")
    for name in solvers:
        resolve_solver(name, options.get(name, {}))
    for name in options:
        if name not in solvers:
            raise SolverError(f"options given for {name!r}, which is not among the solvers {list(solvers)}")
    for v in variants:
        if v not in VARIANTS:
            raise SolverError(f"variants must be among {', '.join(VARIANTS)}; got {v!r}")
    if reference is None:
        reference = "cpsat" if "cpsat" in solvers else solvers[0]
    problems = [
        (seed, v, instance(family, seed, history=VARIANTS[v][0], min_share=VARIANTS[v][1]))
        for seed in seeds
        for v in variants
    ]
    for name in solvers:  # warm-up: imports and compilation are not timed
        solve(problems[0][2], solver=name, time_limit=time_limit, **options.get(name, {}))
    records: list[BenchRecord] = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(problems) * len(solvers), desc=f"bench {family}", unit="solve")
    for seed, v, p in problems:
        group = []
        for name in solvers:
            sol = solve(p, solver=name, time_limit=time_limit, **options.get(name, {}))
            group.append((SOLVERS[name], sol))
            records.append(
                BenchRecord(name, family, seed, v, sol.status.value, sol.objective, sol.bound, sol.wall_time)
            )
            if bar is not None:
                bar.update(1)
        _fill_gaps(records[-len(group):], group)
    if bar is not None:
        bar.close()
    settings = {
        "family": family,
        "seeds": seeds,
        "variants": list(variants),
        "time_limit": time_limit,
        "options": {k: {kk: repr(vv) for kk, vv in o.items()} for k, o in options.items()},
        "reference": reference,
        "cpu_count": os.cpu_count(),
    }
    return BenchResult(records, list(solvers), settings)


def _fill_gaps(records: list[BenchRecord], group) -> None:
    """Gap of each solver to the instance's tightest proven bound."""
    proven = [sol.objective for info, sol in group if sol.status.value == "OPTIMAL"]
    bounds = [sol.bound for info, sol in group if info.exact and sol.status.value in ("OPTIMAL", "FEASIBLE")]
    if proven:
        reference, optimum = max(proven), max(proven)
    elif bounds:
        reference, optimum = min(bounds), math.nan
    else:
        return
    for rec in records:
        if rec.status in ("OPTIMAL", "FEASIBLE"):
            rec.gap = max(0.0, reference - rec.objective) / max(abs(rec.objective), 1e-10)
            rec.hit_optimum = bool(not math.isnan(optimum) and rec.gap <= 1e-6)
