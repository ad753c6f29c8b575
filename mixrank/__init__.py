"""mixrank: plan the last stage of a recommender feed.

Which cards (videos, ads, live streams) go into which slots of a page, under
dispersion, PV-share and count rules; see ``SPEC.md`` and the README.

>>> import mixrank
>>> p = mixrank.synthetic.instance("tiny", seed=0)
>>> sol = mixrank.solve(p, solver="cpsat")
>>> sol.status
<Status.OPTIMAL: 'OPTIMAL'>
"""

from __future__ import annotations

import importlib
from typing import Any

from mixrank.errors import CheckpointError, InstanceFileError, MixrankError, ProblemError, SessionError, SolverError
from mixrank.problem import History, MixProblem, TypeRule
from mixrank.solution import Plan, Solution, Status
from mixrank.solve import SOLVERS, available_solvers, solve

__version__ = "0.1.0"

__all__ = [
    "MixProblem",
    "TypeRule",
    "History",
    "Solution",
    "Status",
    "Plan",
    "solve",
    "solve_many",
    "SOLVERS",
    "available_solvers",
    "MixrankError",
    "ProblemError",
    "InstanceFileError",
    "SolverError",
    "CheckpointError",
    "SessionError",
    "synthetic",
    "MixSession",
    "rerank",
]

# Submodules and functions that pull heavier imports load on first use.
_LAZY = {
    "synthetic": ("mixrank.synthetic", None),
    "rerank": ("mixrank.rerank", None),
    "solve_many": ("mixrank.batch", "solve_many"),
    "MixSession": ("mixrank.session", "MixSession"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        mod = importlib.import_module(module)
        return mod if attr is None else getattr(mod, attr)
    raise AttributeError(f"module 'mixrank' has no attribute {name!r}")
