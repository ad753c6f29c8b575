"""Compare solvers over many instances: the engine behind ``mixrank bench``.

Instances come from a synthetic family (:func:`family_instances`: seeds x variants)
or from a folder of instance files (:func:`load_instances`: files written by
``mixrank gen`` or :meth:`MixProblem.save`). Every solver runs on every instance
after a warm-up call in the process that times it (so Numba compilation and
imports are not timed): one instance after another in this process
(``backend="local"``), or one task per instance on Ray (``backend="ray"``).

Per instance the *reference* is the optimum when a solver proved one (or, failing
that, the tightest bound an exact solver proved); a solver's gap is
``(reference - objective) / max(|objective|, 1e-10)``.

Records stream to a JSON-lines file as instances finish (``records_path``), so an
interrupted run keeps what it did; :class:`BenchInterrupted` carries the partial
result.

Performance profile (Dolan and Moré, 2002): for instance p and solver s, the ratio
``r[p, s] = t[p, s] / min over solvers that solved p of t[p, s']``; the profile of s
is the share of *all* instances with ``r[p, s] <= tau``. A solver *solved* an
instance when its plan's objective is within ``tol`` (relative, default 1e-4) of the
best objective any solver found on it, or, on an instance an exact solver proved
infeasible, when it says INFEASIBLE too. A solver that found no plan, a worse plan,
or whose task failed did not solve the instance (``r = inf``); an instance that no
solver solved stays in the denominator, so no curve reaches 1 there.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mixrank._io import atomic_write
from mixrank.errors import SolverError
from mixrank.problem import MixProblem
from mixrank.solve import SOLVERS, _check_common, resolve_solver, solve
from mixrank.synthetic.instances import FAMILIES, instance

__all__ = [
    "VARIANTS", "MAX_INSTANCES", "BenchInstance", "BenchRecord", "BenchResult", "BenchInterrupted",
    "parse_seeds", "family_instances", "load_instances", "run_bench", "bench_instances", "check_settings",
    "performance_profile", "warm_up",
]

#: Instance variants: name -> (history, min_share).
VARIANTS: dict[str, tuple[bool, bool]] = {
    "plain": (False, False),
    "history": (True, False),
    "min_share": (False, True),
    "both": (True, True),
}

#: The most instances one run (or one ``parse_seeds`` range) may ask for; checked before anything is built.
MAX_INSTANCES = 100_000

#: The statuses a record can have: a solver's four, and FAILED for a task whose worker died on every try.
STATUSES = ("OPTIMAL", "FEASIBLE", "INFEASIBLE", "UNKNOWN", "FAILED")


def parse_seeds(text: str, limit: int = MAX_INSTANCES) -> list[int]:
    """Parse ``"0-19"``, ``"3"`` or ``"0,2,5-7"`` into a list of seeds (at most ``limit`` of them).

    >>> parse_seeds("0-2,7")
    [0, 1, 2, 7]
    """
    seeds: list[int] = []
    usage = f"seeds must look like '0-19' or '0,2,5-7' with seeds >= 0; got {text!r}"
    try:
        for part in str(text).split(","):
            part = part.strip()
            if "-" in part:
                a, b = part.split("-", 1)
                lo, hi = int(a), int(b)
                if hi < lo:
                    raise ValueError
                if len(seeds) + (hi - lo + 1) > limit:  # checked before the range is built
                    raise SolverError(f"seeds must name at most {limit:,} seeds; {text!r} names more")
                seeds.extend(range(lo, hi + 1))
            elif part:
                seeds.append(int(part))
    except SolverError:
        raise
    except ValueError:
        raise SolverError(usage) from None
    if not seeds or min(seeds) < 0:
        raise SolverError(usage)
    if len(seeds) > limit:
        raise SolverError(f"seeds must name at most {limit:,} seeds; {text!r} names {len(seeds):,}")
    return seeds


@dataclass(frozen=True)
class BenchInstance:
    """One instance of a run: a family's (seed, variant), or a file's problem.

    A family instance is drawn when :meth:`problem` is called (so that a long run
    holds one at a time, and a Ray task receives a few bytes, not the arrays).
    """

    name: str
    family: str | None = None
    seed: int | None = None
    variant: str | None = None
    preloaded: MixProblem | None = field(default=None, repr=False, compare=False)

    def problem(self) -> MixProblem:
        """The mixing problem."""
        if self.preloaded is not None:
            return self.preloaded
        history, min_share = VARIANTS[self.variant]
        return instance(self.family, self.seed, history=history, min_share=min_share)


def family_instances(family: str, seeds: Iterable[int], variants: Sequence[str] = tuple(VARIANTS)
                     ) -> list[BenchInstance]:
    """The instances ``family`` x ``seeds`` x ``variants`` (drawn lazily, see :class:`BenchInstance`).

    >>> [i.name for i in family_instances("tiny", [0, 1], ["plain"])]
    ['tiny-0-plain', 'tiny-1-plain']
    """
    if family not in FAMILIES:
        raise SolverError(f"family must be one of {', '.join(FAMILIES)}; got {family!r}")
    variants = list(variants)
    if not variants:
        raise SolverError(f"variants must name at least one of {', '.join(VARIANTS)}; got none")
    for v in variants:
        if v not in VARIANTS:
            raise SolverError(f"variants must be among {', '.join(VARIANTS)}; got {v!r}")
    if len(set(variants)) < len(variants):
        raise SolverError(f"variants must not repeat; got {variants}")
    seeds = list(seeds)
    if len(seeds) * len(variants) > MAX_INSTANCES:
        raise SolverError(f"a run may have at most {MAX_INSTANCES:,} instances; {len(seeds):,} seeds x "
                          f"{len(variants)} variants ask for {len(seeds) * len(variants):,}")
    return [BenchInstance(f"{family}-{s}-{v}", family, s, v) for s in seeds for v in variants]


def load_instances(directory: str | os.PathLike[str]) -> list[BenchInstance]:
    """Every ``*.json`` instance file in ``directory`` (not its subfolders), in name order, loaded and checked.

    Raises
    ------
    InstanceFileError
        For a file that is not a valid instance (the message names it).
    SolverError
        When ``directory`` is not a folder, or holds no ``*.json`` file.
    """
    folder = Path(directory)
    if not folder.is_dir():
        raise SolverError(f"--from must be a folder of instance files; {str(folder)!r} is not a folder")
    paths = sorted(p for p in folder.glob("*.json") if p.is_file())
    if not paths:
        raise SolverError(f"--from folder {str(folder)!r} holds no *.json instance file")
    if len(paths) > MAX_INSTANCES:
        raise SolverError(f"a run may have at most {MAX_INSTANCES:,} instances; {str(folder)!r} holds {len(paths):,}")
    return [BenchInstance(p.stem, preloaded=MixProblem.load(p)) for p in paths]


@dataclass
class BenchRecord:
    """One solver on one instance."""

    solver: str
    family: str | None
    seed: int | None
    variant: str | None
    status: str
    objective: float
    bound: float
    wall_time: float
    gap: float = math.nan  # to the instance's reference, filled in after all solvers ran
    hit_optimum: bool = False
    instance: str = ""
    error: str = ""  # why a FAILED record failed

    def to_json(self) -> str:
        """One line of JSON (non-finite floats written as strings, ``"nan"``, ``"inf"``)."""
        return json.dumps({k: _clean(v) for k, v in asdict(self).items()})


def _clean(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v


class BenchInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run: ``partial`` holds the instances that had finished (every solver on each)."""

    def __init__(self, partial: BenchResult):
        super().__init__("benchmark interrupted")
        self.partial = partial


@dataclass
class BenchResult:
    """All records of a run, with the summary table, the JSON files and the plots."""

    records: list[BenchRecord]
    solvers: list[str]
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def n_instances(self) -> int:
        return len({r.instance for r in self.records})

    def summary(self) -> list[dict[str, Any]]:
        """One row per solver: status counts, latency median/p95 (ms), gaps, share optimal."""
        rows = []
        for name in self.solvers:
            recs = [r for r in self.records if r.solver == name]
            timed = np.array([r.wall_time for r in recs if r.status != "FAILED"])
            gaps = np.array([r.gap for r in recs if not math.isnan(r.gap)])
            counts = {s: sum(r.status == s for r in recs) for s in STATUSES}
            rows.append({
                "solver": name,
                "n": len(recs),
                **counts,
                "median_ms": float(np.median(timed) * 1e3) if timed.size else math.nan,
                "p95_ms": float(np.percentile(timed, 95) * 1e3) if timed.size else math.nan,
                "mean_gap": float(gaps.mean()) if gaps.size else math.nan,
                "max_gap": float(gaps.max()) if gaps.size else math.nan,
                "hit_optimum": sum(r.hit_optimum for r in recs),
                "proven_optimal": counts["OPTIMAL"] / len(recs) if recs else math.nan,
            })
        ref = self.settings.get("reference")
        ref_median = next((row["median_ms"] for row in rows if row["solver"] == ref), None)
        for row in rows:
            ok = ref_median and row["median_ms"] > 0
            row["speedup_vs_ref"] = ref_median / row["median_ms"] if ok else math.nan
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
                f"{_ms(r['median_ms']):>12}{_ms(r['p95_ms']):>11}{_pct(r['mean_gap']):>10}{_pct(r['max_gap']):>10}"
                f"{r['hit_optimum']:>6}{_share(r['proven_optimal']):>8}{_ratio(r['speedup_vs_ref']):>12}"
            )
        lines.append(
            "gap: to the best proven bound per instance; =opt: plans matching the proven optimum (1e-6 rel.); "
            f"x {ref}: median-time speed-up over {ref} in this run"
        )
        failed = sorted({r.instance for r in self.records if r.status == "FAILED"})
        if failed:
            shown = ", ".join(failed[:5]) + (", ..." if len(failed) > 5 else "")
            lines.append(f"FAILED: {len(failed)} instance(s) lost with their worker on every try ({shown}); "
                         "counted in n, not in the other columns")
        if self.settings.get("interrupted"):
            lines.append(f"INTERRUPTED: the run was stopped after {self.n_instances} of "
                         f"{self.settings.get('n_instances')} instances; the table covers those")
        return "\n".join(lines)

    def to_dict(self, records: bool = True) -> dict[str, Any]:
        """Settings, summary and (unless ``records=False``) every record, JSON-ready."""
        out: dict[str, Any] = {
            "settings": self.settings,
            "summary": [{k: _clean(v) for k, v in row.items()} for row in self.summary()],
        }
        if records:
            out["records"] = [{k: _clean(v) for k, v in asdict(r).items()} for r in self.records]
        return out

    def write_json(self, path: str | os.PathLike[str], records: bool = True) -> None:
        """Write the results (see :meth:`to_dict`); the file appears whole or not at all."""
        with atomic_write(path) as fh:
            fh.write(json.dumps(self.to_dict(records), indent=1).encode("utf-8"))

    def write_out(self, folder: str | os.PathLike[str], table: str | None = None, tol: float = 1e-4) -> list[Path]:
        """Write ``summary.json``, ``table.txt`` and the two plots into ``folder``; return their paths.

        ``records.jsonl`` is not written here: :func:`bench_instances` streams it.
        """
        folder = Path(folder)
        paths = [folder / "summary.json", folder / "table.txt", folder / "profile.png", folder / "gap_time.png"]
        self.write_json(paths[0], records=False)
        with atomic_write(paths[1]) as fh:
            fh.write(((table if table is not None else self.table()) + "\n").encode("utf-8"))
        self.plot_profile(paths[2], tol)
        self.plot(paths[3])
        return paths

    def profile(self, tol: float = 1e-4) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The performance profile of this run's records (see :func:`performance_profile`)."""
        return performance_profile(self.records, self.solvers, tol)

    def plot(self, path: str | os.PathLike[str]) -> None:
        """Gap against time: one point per (solver, instance with a plan); needs matplotlib."""
        plt = _pyplot()
        fig, ax = plt.subplots(figsize=(7, 4.5))
        n_points = 0
        for name in self.solvers:
            recs = [r for r in self.records if r.solver == name and not math.isnan(r.gap)]
            n_points += len(recs)
            ax.scatter([max(r.wall_time, 1e-6) * 1e3 for r in recs], [max(r.gap, 1e-7) * 100 for r in recs],
                       label=f"{name} ({len(recs)} plans)", s=14)
        if n_points:
            ax.set_xscale("log")
            ax.set_yscale("log")
        else:  # no gap known (no exact solver ran, or no plan): an empty chart that says so
            ax.text(0.5, 0.5, "no gaps: no exact solver proved a bound", ha="center", transform=ax.transAxes)
        ax.set_xlabel("solve time (ms, log)")
        ax.set_ylabel("gap to best bound (%, log; 1e-5 % = optimal)")
        ax.set_title(f"mixrank bench: {self.settings.get('source', '')}, gap against time")
        ax.legend()
        _save(fig, plt, path)

    def plot_profile(self, path: str | os.PathLike[str], tol: float = 1e-4) -> None:
        """The Dolan–Moré performance profile (see the module's docstring); needs matplotlib."""
        plt = _pyplot()
        taus, shares = self.profile(tol)
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for name in self.solvers:
            ax.step(taus, shares[name] * 100, where="post", label=name)
        ax.set_xscale("log", base=2)
        ax.set_ylim(-2, 102)
        ax.set_xlabel("τ: within τ × the fastest solver's time (log2)")
        ax.set_ylabel(f"instances solved (%, plan within {tol:g} of the best)")
        ax.set_title(f"performance profile: {self.settings.get('source', '')}, {self.n_instances} instances")
        ax.legend(loc="center right")
        ax.grid(True, which="major", alpha=0.3)
        _save(fig, plt, path)


def performance_profile(records: Sequence[BenchRecord], solvers: Sequence[str], tol: float = 1e-4
                        ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Dolan–Moré performance profile: ``taus`` and, per solver, the share of instances solved within τ.

    See the module's docstring for what counts as solved. ``taus`` runs from 1 to a
    little past the largest finite ratio, at every ratio that occurs.

    Examples
    --------
    >>> recs = [BenchRecord("a", None, None, None, "OPTIMAL", 10.0, 10.0, 0.1, instance="p"),
    ...         BenchRecord("b", None, None, None, "FEASIBLE", 10.0, 11.0, 0.4, instance="p"),
    ...         BenchRecord("a", None, None, None, "OPTIMAL", 5.0, 5.0, 0.2, instance="q"),
    ...         BenchRecord("b", None, None, None, "FEASIBLE", 4.0, 6.0, 0.1, instance="q")]
    >>> taus, shares = performance_profile(recs, ["a", "b"])
    >>> [float(t) for t in taus]
    [1.0, 4.0, 4.4]
    >>> shares["a"].tolist(), shares["b"].tolist()
    ([1.0, 1.0, 1.0], [0.0, 0.5, 0.5])
    """
    by_instance: dict[str, dict[str, BenchRecord]] = {}
    for r in records:
        by_instance.setdefault(r.instance, {})[r.solver] = r
    ratios = {name: [] for name in solvers}
    for group in by_instance.values():
        solved_times = {name: max(rec.wall_time, 1e-9) for name, rec in group.items() if _solved(rec, group, tol)}
        fastest = min(solved_times.values(), default=math.nan)
        for name in solvers:
            ratios[name].append(solved_times[name] / fastest if name in solved_times else math.inf)
    finite = sorted({x for rs in ratios.values() for x in rs if math.isfinite(x)} | {1.0})
    taus = np.array(finite + [finite[-1] * 1.1])
    n = max(len(by_instance), 1)
    shares = {name: np.searchsorted(np.sort(np.array(ratios[name], dtype=float)), taus, side="right") / n
              for name in solvers}
    return taus, shares


def _solved(rec: BenchRecord, group: dict[str, BenchRecord], tol: float) -> bool:
    proven_infeasible = any(r.status == "INFEASIBLE" and SOLVERS[r.solver].exact
                            for r in group.values() if r.solver in SOLVERS)
    if proven_infeasible:
        return rec.status == "INFEASIBLE"
    if rec.status not in ("OPTIMAL", "FEASIBLE"):
        return False
    best = max(r.objective for r in group.values() if r.status in ("OPTIMAL", "FEASIBLE"))
    return rec.objective >= best - tol * max(abs(best), 1e-10)


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SolverError("plots need matplotlib: pip install 'mixrank[plot]'") from None
    return plt


def _save(fig, plt, path) -> None:
    fig.tight_layout()
    try:
        with atomic_write(path) as fh:
            fig.savefig(fh, dpi=100, format="png")
    finally:
        plt.close(fig)


def _ms(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.3f}"


def _pct(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.3%}"


def _ratio(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:,.1f}x"


def _share(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.0%}"


def warm_up(solver: str, options: dict[str, Any] | None = None, seed: int = 0) -> None:
    """Load imports and compiled kernels before anything is timed.

    Solves a tiny problem once, then runs the solver module's own ``warm_up()`` where it
    has one (beam, bnb: it takes every data-dependent kernel path). The tiny solve takes
    the run's options where they fit it; options that depend on the problem's shape (such
    as cpsat's ``hint``) do not, and then it warms up with the solver's defaults: such
    options are checked on the real problem.
    """
    import importlib

    from solvers._common import warm_up_problem

    problem = warm_up_problem()
    try:
        solve(problem, solver=solver, seed=seed, **(options or {}))
    except SolverError:
        solve(problem, solver=solver, seed=seed)
    module = importlib.import_module(SOLVERS[solver].entry.split(":")[0])
    if hasattr(module, "warm_up"):
        module.warm_up()


_WARM: set[str] = set()  # solvers warmed up in this process (a Ray worker keeps it between tasks)


def _bench_one(item: BenchInstance, solvers: Sequence[str], time_limit: float | None,
               options: dict[str, dict[str, Any]]) -> list[tuple[str, float, float, float]]:
    """Every solver on one instance: (status, objective, bound, wall_time) each. Module-level: a Ray task."""
    problem = item.problem()
    for name in solvers:
        if name not in _WARM:
            warm_up(name, options.get(name))
            _WARM.add(name)
    out = []
    for name in solvers:
        sol = solve(problem, solver=name, time_limit=time_limit, **options.get(name, {}))
        out.append((sol.status.value, float(sol.objective), float(sol.bound), float(sol.wall_time)))
    return out


def check_settings(solvers: Sequence[str], options: dict[str, dict[str, Any]] | None, reference: str | None,
                   time_limit: float | None, backend: str) -> tuple[list[str], dict[str, dict[str, Any]], str]:
    """Check a run's settings before any work; return (solvers, options, reference)."""
    solvers = list(solvers)
    options = dict(options or {})
    if not solvers:
        raise SolverError("solvers must name at least one solver; got none")
    repeated = sorted({s for s in solvers if solvers.count(s) > 1})
    if repeated:
        raise SolverError(f"solvers must not repeat; got {', '.join(repeated)} more than once")
    for name in solvers:
        resolve_solver(name, options.get(name, {}))
    for name in options:
        if name not in solvers:
            raise SolverError(f"options given for {name!r}, which is not among the solvers {solvers}")
    if reference is None:
        reference = "cpsat" if "cpsat" in solvers else solvers[0]
    elif reference not in solvers:
        raise SolverError(f"reference must be one of the solvers run ({', '.join(solvers)}); got {reference!r}")
    _check_common(time_limit, 0)
    if backend not in ("local", "ray"):
        raise SolverError(f"backend must be 'local' or 'ray'; got {backend!r}")
    return solvers, options, reference


def run_bench(
    family: str,
    seeds: Iterable[int],
    solvers: Sequence[str],
    variants: Sequence[str] = tuple(VARIANTS),
    time_limit: float | None = None,
    options: dict[str, dict[str, Any]] | None = None,
    reference: str | None = None,
    progress: bool = True,
    **kwargs: Any,
) -> BenchResult:
    """Run every solver on every instance of ``family`` x ``seeds`` x ``variants``.

    A shorthand for ``bench_instances(family_instances(family, seeds, variants), solvers, ...)``;
    ``kwargs`` go to :func:`bench_instances`.

    Examples
    --------
    >>> res = run_bench("tiny", [0, 1], ["greedy", "cpsat"], variants=["plain"], progress=False)
    >>> [row["n"] for row in res.summary()]
    [2, 2]
    """
    seeds = list(seeds)
    items = family_instances(family, seeds, variants)
    kwargs.setdefault("source", family)
    result = bench_instances(items, solvers, time_limit=time_limit, options=options, reference=reference,
                             progress=progress, **kwargs)
    result.settings.update(family=family, seeds=list(seeds), variants=list(variants))
    return result


def bench_instances(
    items: Sequence[BenchInstance],
    solvers: Sequence[str],
    *,
    time_limit: float | None = None,
    options: dict[str, dict[str, Any]] | None = None,
    reference: str | None = None,
    progress: bool = True,
    backend: str = "local",
    address: str | None = None,
    records_path: str | os.PathLike[str] | None = None,
    source: str = "",
) -> BenchResult:
    """Run every solver on every instance; records come back in input order.

    Parameters
    ----------
    items : sequence of BenchInstance
        From :func:`family_instances` or :func:`load_instances`.
    solvers : sequence of str
        Registered solver names, each once; each is warmed up before timing.
    time_limit : float or None
        Per solve.
    options : dict solver -> dict of options
    reference : str or None
        One of ``solvers``: the one whose median time the speed-up column divides
        (default: cpsat if run, else the first).
    progress : bool
        Show a progress bar over instances.
    backend : {"local", "ray"}
        ``"local"``: one solve after another in this process. ``"ray"``: one task per
        instance on Ray (see :func:`mixrank.solve_many` for ``address``); the times
        are then measured in the workers, side by side.
    address : str or None
        Ray only: the cluster to join; None starts a local Ray (and shuts it down
        after) unless this process already joined one.
    records_path : path or None
        A JSON-lines file that gets each instance's records as soon as it finishes
        (created or emptied first).
    source : str
        Names the instances in the settings and the plot titles.

    Raises
    ------
    SolverError
        For bad settings, before any work.
    BenchInterrupted
        On Ctrl-C; its ``partial`` result holds the finished instances (also in ``records_path``).
    """
    solvers, options, reference = check_settings(solvers, options, reference, time_limit, backend)
    if address is not None and (backend != "ray" or not isinstance(address, str) or not address):
        raise SolverError(f"address must be a non-empty str, and only with backend='ray'; got {address!r} "
                          f"with backend={backend!r}")
    items = list(items)
    settings = {
        "source": source,
        "n_instances": len(items),
        "time_limit": time_limit,
        "options": {k: {kk: repr(vv) for kk, vv in o.items()} for k, o in options.items()},
        "reference": reference,
        "backend": backend,
        "cpu_count": os.cpu_count(),
    }
    done: dict[int, list[BenchRecord]] = {}
    sink = open(records_path, "w", encoding="utf-8") if records_path is not None else None  # noqa: SIM115
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(items), desc=f"bench {source}".rstrip(), unit="instance")
    try:
        results = contextlib.closing(_run_ray(items, solvers, time_limit, options, address) if backend == "ray"
                                     else _run_local(items, solvers, time_limit, options))
        with results as finished:
            for i, outcome in finished:
                group = _records(items[i], solvers, outcome)
                done[i] = group
                if sink is not None:
                    try:
                        sink.write("".join(r.to_json() + "\n" for r in group))
                        sink.flush()
                    except OSError as exc:  # a full disk: name the file, not a file descriptor
                        raise OSError(exc.errno, exc.strerror, str(records_path)) from None
                if bar is not None:
                    bar.update(1)
    except KeyboardInterrupt:
        settings["interrupted"] = True
        raise BenchInterrupted(_result(done, solvers, settings)) from None
    finally:
        if bar is not None:
            bar.close()
        if sink is not None:
            sink.close()
    return _result(done, solvers, settings)


def _result(done: dict[int, list[BenchRecord]], solvers: list[str], settings: dict[str, Any]) -> BenchResult:
    return BenchResult([r for i in sorted(done) for r in done[i]], solvers, dict(settings))


def _run_local(items, solvers, time_limit, options) -> Iterator[tuple[int, Any]]:
    for i, item in enumerate(items):
        yield i, _bench_one(item, solvers, time_limit, options)


def _run_ray(items, solvers, time_limit, options, address) -> Iterator[tuple[int, Any]]:
    from mixrank.batch import ray_unordered

    calls = [(item, solvers, time_limit, options) for item in items]
    yield from ray_unordered(_bench_one, calls, address=address)


def _records(item: BenchInstance, solvers: list[str], outcome: Any) -> list[BenchRecord]:
    """The records of one instance, gaps filled in; a lost task (an exception) gives FAILED records."""
    if isinstance(outcome, BaseException):
        return [BenchRecord(name, item.family, item.seed, item.variant, "FAILED", math.nan, math.nan, math.nan,
                            instance=item.name, error=f"{type(outcome).__name__}: {outcome}"[:500])
                for name in solvers]
    group = [BenchRecord(name, item.family, item.seed, item.variant, status, objective, bound, wall,
                         instance=item.name)
             for name, (status, objective, bound, wall) in zip(solvers, outcome)]
    _fill_gaps(group)
    return group


def _fill_gaps(records: list[BenchRecord]) -> None:
    """Gap of each solver to the instance's optimum, or failing that its tightest proven bound."""
    proven = [r.objective for r in records if r.status == "OPTIMAL"]
    bounds = [r.bound for r in records if SOLVERS[r.solver].exact and r.status in ("OPTIMAL", "FEASIBLE")]
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

