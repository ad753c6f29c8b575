"""Pieces every solver module shares: option checks, the warm-up problem, and Ctrl-C for kernels."""

from __future__ import annotations

import threading
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


def share_margin(pv_denominator: float, pv_shown) -> float:
    """How far (in PV) a solver's relaxed share rows are widened past rounding, for a page whose share
    denominator is ``pv_denominator`` and whose history shows ``pv_shown`` PV per type."""
    return 1e-12 * (abs(pv_denominator) + float(np.sum(pv_shown)) + 1.0)


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


def binding_caps_problem():
    """A tiny problem whose share caps bind (high-value cards of a type capped at 40 % of the page).

    The beam's ``warm_up`` solves it so that the split relaxation's prices are compiled too:
    :func:`warm_up_problem` never prices a cap. ``tests/test_warm_up.py`` checks that solving
    the benchmark families after ``warm_up`` compiles nothing more.
    """
    from mixrank.problem import MixProblem, TypeRule

    return MixProblem(values=[[1.0, 0.9, 0.8, 0.7, 0.6, 0.5]] * 3 + [[0.5] * 6], types=[0, 0, 0, 1],
                      pv_weights=[1.0] * 6, rules=[TypeRule(max_share=0.4), TypeRule(max_share=0.5)], min_gap_any=1)


#: Seconds between the caller's checks for Ctrl-C while a kernel runs (a finished kernel is seen at once; an
#: untimed wait is not cut by Ctrl-C on every platform).
_POLL = 0.05


def run_in_thread(work, stop, tick=None, poll: float = _POLL):
    """``work()``, run in a helper thread while the calling thread waits, so that Ctrl-C is heard.

    The caller polls every ``poll`` seconds (calling ``tick()`` when given: a
    watchdog's look at the clock). Ctrl-C (``KeyboardInterrupt``) reaches the
    calling thread while it waits; it then calls ``stop()``, waits for ``work``
    to return and raises ``KeyboardInterrupt`` again, so that no early result
    passes for a finished one. Any other error of ``work`` is raised in the
    caller's thread.
    """
    result: dict[str, Any] = {}
    done = threading.Event()  # not Thread.join: on Python 3.11 a join cut by Ctrl-C marks the thread as ended

    def run() -> None:
        try:
            result["value"] = work()
        except BaseException as exc:  # handed to the caller's thread
            result["error"] = exc
        finally:
            done.set()

    threading.Thread(target=run, name="mixrank-solve", daemon=True).start()
    try:
        while not done.wait(poll):
            if tick is not None:
                tick()
    except BaseException:  # KeyboardInterrupt above all: stop the work, wait for it, and re-raise
        stop()
        done.wait()
        raise
    if "error" in result:
        raise result["error"]
    return result["value"]


def run_stoppable(kernel, *args):
    """``kernel(*args, stop)``, run by :func:`run_in_thread` so that Ctrl-C stops it promptly.

    ``kernel`` must be compiled with ``nogil=True`` and take as its last argument
    ``stop``, an int64 array of one element (0 here), which it reads where it
    reads its deadline, returning early once ``stop[0]`` is set (as Ctrl-C does).
    """
    stop = np.zeros(1, dtype=np.int64)
    return run_in_thread(lambda: kernel(*args, stop), stop=lambda: stop.__setitem__(0, 1))
