"""Pieces every solver module shares: option checks and the warm-up problem."""

from __future__ import annotations

from typing import Any

import numpy as np

from mixrank.errors import SolverError


def check_int_option(name: str, value: Any, low: int, allow_none: bool = False, high: int | None = None) -> int | None:
    """``value`` as an int in ``[low, high]`` (or None when allowed); otherwise a SolverError naming ``name``."""
    if value is None and allow_none:
        return None
    if (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low
            or (high is not None and value > high)):
        what = f"an int >= {low}" if high is None else f"an int in [{low}, {high}]"
        raise SolverError(f"{name} must be {what}" + (" or None" if allow_none else "") + f"; got {value!r}")
    return int(value)


#: The widest beam a solver takes (its work arrays grow with width x cards x slots): bnb's first-plan beam
#: (its later rounds use at most 256) and the beam solver (whose tests run exhaustive widths on tiny pages).
MAX_BNB_WIDTH = 4096
MAX_BEAM_WIDTH = 1 << 20


def warm_up_problem():
    """A tiny problem that touches every rule (gaps, history, both share sides, a count cap).

    Solving it once compiles, or loads from the cache, every kernel path of a solver.
    """
    from mixrank.problem import History, MixProblem, TypeRule

    return MixProblem(
        values=[[1.0, 0.5, 0.2, 0.4], [0.9, 0.8, 0.1, 0.3]],
        types=[0, 1],
        pv_weights=[1.0, 0.8, 0.6, 0.5],
        rules=[TypeRule(min_gap=2, max_share=0.6, max_count=1), TypeRule(min_share=0.1)],
        min_gap_any=1,
        history=History(last_gap=[1, None], pv_shown=[0.1, 0.0], pv_total_shown=1.0),
    )
