"""The one entry point to every solver: :func:`solve`, choosing from :data:`SOLVERS`."""

from __future__ import annotations

import importlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mixrank.errors import SolverError
from mixrank.problem import MixProblem
from mixrank.solution import Solution

__all__ = ["SolverInfo", "SOLVERS", "solve", "available_solvers"]


@dataclass(frozen=True)
class SolverInfo:
    """Class-level facts about one solver of the registry.

    ``entry`` is ``"module:function"``; the module is imported only when the
    solver is used, so heavy backends (ortools, numba) load on demand.
    ``options`` maps each accepted option name to its default.
    """

    name: str
    entry: str
    exact: bool
    summary: str
    options: dict[str, Any] = field(default_factory=dict)

    def load(self) -> Callable[..., Solution]:
        """The entry function (its module is imported on the first call; Python caches the import)."""
        module, func = self.entry.split(":")
        return getattr(importlib.import_module(module), func)


#: The registry: solver name -> facts. Every solver module has one public entry.
SOLVERS: dict[str, SolverInfo] = {
    info.name: info
    for info in (
        SolverInfo(
            "greedy", "solvers.greedy:solve_greedy", exact=False,
            summary="each step the best (card, slot) pair that keeps every rule, with a min-share look-ahead "
                    "(the online baseline); order='slot' fills slot by slot",
            options={"order": "pair"},
        ),
        SolverInfo(
            "beam", "solvers.beam:solve_beam", exact=False,
            summary="Numba beam search over slots ranked by Lagrangian prices (fast, on-device); deterministic, "
                    "never infeasible",
            options={"width": 32, "n_solutions": 1, "cards_per_type": 1, "price_iters": 80, "local_search": 1},
        ),
        SolverInfo(
            "bnb", "solvers.bnb:solve_bnb", exact=True,
            summary="exact memoized branch and bound (Numba): Lagrangian DP bound, beam first plan, anytime",
            options={"node_limit": None, "width": 8, "lagrange_iters": 200, "memo": True},
        ),
        SolverInfo(
            "cpsat", "solvers.cpsat:solve_cpsat", exact=True,
            summary="OR-Tools CP-SAT model (the exact reference)",
            options={"num_workers": 1, "hint": None, "log": False},
        ),
    )
}


def available_solvers() -> list[str]:
    """Names of the registered solvers."""
    return sorted(SOLVERS)


#: Largest ``seed`` every solver accepts (CP-SAT's ``random_seed`` is a 32-bit int).
MAX_SEED = 2**31 - 1


def _check_common(time_limit: Any, seed: Any) -> None:
    if time_limit is not None:
        ok = isinstance(time_limit, (int, float)) and not isinstance(time_limit, bool)
        if not ok or not math.isfinite(time_limit) or time_limit <= 0:
            raise SolverError(f"time_limit must be a positive number of seconds or None; got {time_limit!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= MAX_SEED:
        raise SolverError(f"seed must be an int >= 0 and <= {MAX_SEED} (2**31 - 1); got {seed!r}")


def resolve_solver(solver: str, options: dict[str, Any]) -> SolverInfo:
    """Look ``solver`` up and check ``options`` against it, before any work."""
    info = SOLVERS.get(solver) if isinstance(solver, str) else None
    if info is None:
        raise SolverError(f"solver must be one of {', '.join(available_solvers())}; got {solver!r}")
    unknown = sorted(set(options) - set(info.options)) if options else None
    if unknown:
        valid = ", ".join(sorted(info.options)) or "none"
        raise SolverError(
            f"unknown option(s) {', '.join(unknown)} for solver {solver!r}; valid options: {valid}"
        )
    return info


def solve(
    problem: MixProblem,
    solver: str = "cpsat",
    time_limit: float | None = None,
    seed: int = 0,
    **options: Any,
) -> Solution:
    """Solve one mixing problem.

    Parameters
    ----------
    problem : MixProblem
    solver : str
        A name from :data:`SOLVERS` (see :func:`available_solvers`).
    time_limit : float or None
        Seconds; exact solvers return their best plan and a proven bound when it runs out.
    seed : int in [0, 2**31 - 1]
        Seeds every randomised choice; the same seed gives the same result.
    **options
        Solver-specific options (``SOLVERS[name].options`` lists them with defaults).

    Returns
    -------
    Solution

    Raises
    ------
    SolverError
        For an unknown solver or option, or a bad time limit or seed (before any work).

    Examples
    --------
    >>> import mixrank
    >>> p = mixrank.MixProblem(values=[[1.0, 0.5], [0.9, 0.8]], types=[0, 0],
    ...                        pv_weights=[1.0, 1.0], rules=[mixrank.TypeRule(min_gap=2)])
    >>> mixrank.solve(p, solver="greedy").assignment.tolist()
    [0, -1]
    """
    if not isinstance(problem, MixProblem):
        raise SolverError(f"problem must be a MixProblem; got {type(problem).__name__}")
    start = time.perf_counter()
    # The usual call (a known solver, known options, no time limit, seed 0) takes the short way; anything
    # else goes through the full checks, which word the errors.
    info = SOLVERS.get(solver) if type(solver) is str else None
    if info is None or (options and not options.keys() <= info.options.keys()):
        info = resolve_solver(solver, options)
    if time_limit is not None or type(seed) is not int or seed != 0:
        _check_common(time_limit, seed)
    solution = info.load()(problem, time_limit=time_limit, seed=seed, **options)
    # wall_time covers the whole call, the final feasibility re-check included, for every solver alike.
    # Every solver returns a Solution that make_solution has just built and nobody else holds, so it
    # is set in place (as a frozen dataclass's own __init__ does) instead of copied: a copy costs ~3 us.
    object.__setattr__(solution, "wall_time", time.perf_counter() - start)
    return solution
