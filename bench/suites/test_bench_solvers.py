"""Every solver on every instance family, timed with pytest-benchmark.

One benchmark per (solver, family): a round solves the family's instances one after
another (quick form: seed 0, variant ``both``; ``--bench-full``: seeds 0-4 x the four
variants). Benchmarks are grouped by family, so each group of the table compares the
solvers on the same instances; saved runs (``--benchmark-save``) line up by test name
across commits (``--benchmark-compare``). Families come from
``mixrank.synthetic.FAMILIES`` and solvers from the registry, so new ones join without
a change here.

``extra_info`` (in the saved JSON) holds, for the last round: ``status`` (counts),
``objective`` (per instance), ``gap`` and ``max_gap`` (mean and largest, to bnb's proven
bound on the instance with the same time limit, which is its optimum when it proves
one: an upper bound on the true gap), ``instances`` and the form. Every plan is also
checked against the problem's rules.

    python -m pytest bench/suites                                    # quick form (CI runs it)
    python -m pytest bench/suites --bench-full --benchmark-save=base # full form, saved
    python -m pytest bench/suites --bench-full --benchmark-compare   # against the last saved run
"""

from __future__ import annotations

import math
from collections import Counter
from functools import cache

import pytest

from mixrank import solve
from mixrank.bench import family_instances, warm_up
from mixrank.solve import available_solvers
from mixrank.synthetic import FAMILIES


@cache
def _problems(family: str, seeds: tuple[int, ...], variants: tuple[str, ...]):
    items = family_instances(family, seeds, variants)
    return [i.name for i in items], [i.problem() for i in items]


@cache
def _reference_bounds(family: str, seeds: tuple[int, ...], variants: tuple[str, ...], time_limit: float):
    """bnb's proven bound per instance (its optimum when proven; -inf when it proved infeasibility)."""
    _, problems = _problems(family, seeds, variants)
    warm_up("bnb")  # a cold first call could spend its time limit loading kernels, and prove less
    out = []
    for p in problems:
        sol = solve(p, solver="bnb", time_limit=time_limit)
        out.append(sol.objective if sol.status.value == "OPTIMAL" else
                   -math.inf if sol.status.value == "INFEASIBLE" else sol.bound)
    return out


def _solve_all(problems, solver, time_limit):
    return [solve(p, solver=solver, time_limit=time_limit) for p in problems]


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("solver", available_solvers())
def test_solver(benchmark, solver, family, form, record_quality):
    names, problems = _problems(family, form.seeds, form.variants)
    refs = _reference_bounds(family, form.seeds, form.variants, form.time_limit)
    warm_up(solver)  # imports and compiled kernels are not timed
    benchmark.group = f"family {family} ({form.name}: {len(problems)} instances a round)"
    sols = benchmark.pedantic(_solve_all, args=(problems, solver, form.time_limit), rounds=form.rounds,
                              iterations=1, warmup_rounds=0)
    gaps = []
    for p, sol, ref in zip(problems, sols, refs):
        if sol.status.has_plan:
            assert p.check(sol.assignment) == [], f"{solver} returned a plan that breaks the rules"
            assert sol.objective <= ref + 1e-6 * max(abs(ref), 1.0), f"{solver} beat bnb's proven bound"
            gaps.append(max(0.0, ref - sol.objective) / max(abs(sol.objective), 1e-10))
    benchmark.extra_info.update(
        form=form.name,
        instances=names,
        status=dict(Counter(s.status.value for s in sols)),
        objective=[s.objective if s.status.has_plan else None for s in sols],
        gap=sum(gaps) / len(gaps) if gaps else None,
        max_gap=max(gaps) if gaps else None,
    )
    record_quality(family, solver, benchmark.extra_info)
