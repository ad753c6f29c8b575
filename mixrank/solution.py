"""What a solver returns: :class:`Solution` with a documented :class:`Status`."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Any, NamedTuple

import numpy as np

__all__ = ["Status", "Plan", "Solution", "Counters", "make_solution"]


class Status(str, Enum):
    """How far a solver got.

    Members
    -------
    OPTIMAL
        The plan is feasible and proven optimal (``bound == objective``).
    FEASIBLE
        The plan is feasible; optimality is not proven (``bound`` may still be finite).
    INFEASIBLE
        Proven: no plan keeps every rule (``bound == -inf``).
    UNKNOWN
        No feasible plan was found and nothing was proven.
    """

    OPTIMAL = "OPTIMAL"
    FEASIBLE = "FEASIBLE"
    INFEASIBLE = "INFEASIBLE"
    UNKNOWN = "UNKNOWN"

    def __str__(self) -> str:
        return self.value

    @property
    def has_plan(self) -> bool:
        """True for OPTIMAL and FEASIBLE."""
        return self in (Status.OPTIMAL, Status.FEASIBLE)


class Plan(NamedTuple):
    """One feasible plan of a solution's pool."""

    assignment: np.ndarray
    objective: float


@dataclass(frozen=True)
class Solution:
    """The result of :func:`mixrank.solve`.

    Attributes
    ----------
    status : Status
    assignment : ndarray (K,) of int
        Card per slot, -1 for the organic item; all -1 when there is no plan.
    objective : float
        Total value of the plan; nan when there is no plan.
    bound : float
        A proven upper bound on the optimum (inf when none is known, -inf when
        proven infeasible); equals ``objective`` when OPTIMAL.
    wall_time : float
        Seconds the solver took, model building included.
    solver : str
    stats : mapping
        Solver-specific counters (nodes, prunes, ...).
    pool : tuple of Plan
        The best distinct feasible plans found, best first (when asked for with
        ``n_solutions``); empty otherwise.
    """

    status: Status
    assignment: np.ndarray
    objective: float
    bound: float
    wall_time: float
    solver: str
    stats: Mapping[str, Any] = field(default_factory=dict)
    pool: tuple[Plan, ...] = ()

    @property
    def gap(self) -> float:
        """``(bound - objective) / max(|objective|, 1e-10)``; 0 when OPTIMAL, nan without a plan."""
        if self.status is Status.OPTIMAL:
            return 0.0
        if not self.status.has_plan:
            return math.nan
        return max(0.0, (self.bound - self.objective)) / max(abs(self.objective), 1e-10)

    @property
    def has_plan(self) -> bool:
        """True when ``assignment`` holds a feasible plan."""
        return self.status.has_plan

    def __str__(self) -> str:
        lines = [f"{self.solver}: {self.status}  objective {self.objective:.6g}  bound {self.bound:.6g}"
                 f"  gap {self.gap:.3%}  time {self.wall_time * 1e3:.2f} ms"]
        if self.has_plan:
            filled = [(s, int(c)) for s, c in enumerate(self.assignment) if c >= 0]
            lines.append("plan (slot:card): " + (" ".join(f"{s}:{c}" for s, c in filled) or "all organic"))
        if self.stats:
            lines.append("stats: " + ", ".join(f"{k}={v}" for k, v in self.stats.items()))
        return "\n".join(lines)

    def __reduce__(self):
        # Pickles (for process pools) as plain fields, plans as raw int64 bytes (a numpy array pickles ~10x
        # slower); the copy comes back read-only, like the original.
        fields = (self.status.value, _plan_bytes(self.assignment), self.objective, self.bound, self.wall_time,
                  self.solver, dict(self.stats), tuple((_plan_bytes(p.assignment), p.objective) for p in self.pool))
        return (_rebuild_solution, fields)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (non-finite numbers become strings 'nan', 'inf', '-inf')."""

        def num(x: float) -> float | str:
            return x if math.isfinite(x) else str(x)

        return {
            "solver": self.solver,
            "status": self.status.value,
            "objective": num(self.objective),
            "bound": num(self.bound),
            "gap": num(self.gap),
            "wall_time": self.wall_time,
            "assignment": self.assignment.tolist(),
            "stats": {k: (num(v) if isinstance(v, float) else v) for k, v in self.stats.items()},
            "pool": [{"assignment": p.assignment.tolist(), "objective": p.objective} for p in self.pool],
        }


class Counters(Mapping):
    """A solver's ``stats``, read-only: a compiled kernel's counter array, its names, and a few named extras.

    It reads like the dict it stands for (``head``'s items, then ``names`` paired with
    ``values`` as ints, then ``tail``'s items), but that dict is only built on first use:
    a solve that nobody asks for its counters does not pay for boxing a dozen ints into
    a dict (~5 us after a beam kernel call, when the interpreter's data is cold).

    Examples
    --------
    >>> import numpy as np
    >>> c = Counters({"width": 4}, ("nodes", "cuts"), np.array([7, 0]), {"kernel_time": 0.5})
    >>> c["nodes"], len(c), dict(c) == {"width": 4, "nodes": 7, "cuts": 0, "kernel_time": 0.5}
    (7, 4, True)
    >>> c
    Counters({'width': 4, 'nodes': 7, 'cuts': 0, 'kernel_time': 0.5})
    """

    __slots__ = ("_parts", "_dict")

    def __init__(self, head: Mapping[str, Any], names: Iterable[str], values: Any, tail: Mapping[str, Any]):
        self._parts = (head, names, values, tail)
        self._dict = None

    def _items(self) -> dict[str, Any]:
        d = self._dict
        if d is None:
            head, names, values, tail = self._parts
            d = dict(head)
            d.update(zip(names, map(int, np.asarray(values).tolist())))
            d.update(tail)
            self._dict = d
        return d

    def __getitem__(self, key: str) -> Any:
        return self._items()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items())

    def __len__(self) -> int:
        return len(self._items())

    def __repr__(self) -> str:
        return f"Counters({self._items()!r})"


def _frozen(a: Any) -> np.ndarray:
    a = np.array(a, dtype=np.int64)
    a.setflags(write=False)
    return a


def _plan_bytes(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a, dtype=np.int64).tobytes()


def _unpickled_plan(a: Any) -> np.ndarray:
    """A read-only int64 plan from its raw bytes (``np.frombuffer`` over bytes is read-only, no copy), or from
    an array (as pickles of mixrank 0.1.0 before this layout hold them)."""
    return np.frombuffer(a, dtype=np.int64) if isinstance(a, bytes) else _frozen(a)


def _rebuild_solution(status, assignment, objective, bound, wall_time, solver, stats, pool) -> Solution:
    return Solution(Status(status), _unpickled_plan(assignment), objective, bound, wall_time, solver,
                    MappingProxyType(stats), tuple(Plan(_unpickled_plan(a), obj) for a, obj in pool))


# (module constants: an Enum member looked up on its class costs more, and make_solution runs on every solve)
_OPTIMAL = Status.OPTIMAL
_FEASIBLE = Status.FEASIBLE

#: mixrank._fastcheck.check_plan once loaded (it imports Numba, so it loads on first use).
_check_plan = None


def _load_check_plan():
    global _check_plan
    from mixrank._fastcheck import check_plan

    _check_plan = check_plan
    return check_plan


def _checked_plan(problem, solver: str, plan: np.ndarray, in_pool: bool = False) -> tuple[np.ndarray, float]:
    """``plan`` (a fresh int64 array) made read-only, and its objective; a RuntimeError naming ``solver``.

    The verdict comes from one compiled pass (:mod:`mixrank._fastcheck`, the same
    comparisons as ``problem.check``); ``problem.check`` runs only when it says no,
    for the words (and raises ProblemError for something that is not a plan at all).
    """
    feasible, objective = (_check_plan or _load_check_plan())(problem, plan)
    if not feasible:
        violations = problem.check(plan)
        if violations:
            where = "put an infeasible plan in its pool" if in_pool else "returned an infeasible plan"
            raise RuntimeError(f"solver {solver!r} {where}: {violations[:3]}")
        raise RuntimeError(f"the compiled re-check rejects a plan of solver {solver!r} that problem.check "
                           f"accepts (a bug in mixrank._fastcheck): {plan.tolist()}")
    plan.setflags(write=False)
    return plan, objective


def make_solution(
    problem,
    solver: str,
    status: Status,
    assignment: Any | None,
    bound: float,
    wall_time: float,
    stats: Mapping[str, Any] | None = None,
    pool: Iterable[Any] = (),
) -> Solution:
    """The one place that builds a :class:`Solution` and keeps its promises.

    Computes the objective, makes ``bound`` consistent with the status, and
    re-checks every plan against the problem's rules: a solver that produced an
    infeasible plan is a bug, and it is raised here rather than served. Plans
    are copied (the solution's are read-only).

    Examples
    --------
    >>> import math, mixrank
    >>> p = mixrank.MixProblem(values=[[1.0, 0.5], [0.9, 0.8]], types=[0, 0],
    ...                        pv_weights=[1.0, 1.0], rules=[mixrank.TypeRule(min_gap=2)])
    >>> make_solution(p, "mine", Status.FEASIBLE, [0, -1], math.inf, 0.0).objective
    1.0
    >>> make_solution(p, "mine", Status.FEASIBLE, [0, 1], math.inf, 0.0)
    Traceback (most recent call last):
    ...
    RuntimeError: solver 'mine' returned an infeasible plan: ['type 0 cards at slots 0 and 1 stand 1 apart; min_gap is 2']
    """
    if status is _FEASIBLE or status is _OPTIMAL:
        plan, objective = _checked_plan(problem, solver, np.array(assignment, dtype=np.int64))
        if status is _OPTIMAL:
            bound = objective
        else:
            bound = max(float(bound), objective) if not math.isnan(bound) else math.inf
    else:
        plan = np.full(problem.n_slots, -1, dtype=np.int64)
        plan.setflags(write=False)
        objective = math.nan
        bound = -math.inf if status is Status.INFEASIBLE else (math.inf if math.isnan(bound) else float(bound))
    plans = []
    if type(pool) is not tuple or pool:  # (an empty tuple, the usual case, skips the loop)
        seen: set[bytes] = set()
        for a in pool:
            a = np.array(a, dtype=np.int64)
            key = a.tobytes()
            if key in seen:
                continue
            seen.add(key)
            plans.append(Plan(*_checked_plan(problem, solver, a, in_pool=True)))
        plans.sort(key=lambda p: -p.objective)
    # Counters are read-only already; any other mapping is frozen as a copy.
    if type(stats) is not Counters:
        stats = MappingProxyType(dict(stats) if stats else {})
    return Solution(status, plan, objective, float(bound), float(wall_time), solver, stats, tuple(plans))
