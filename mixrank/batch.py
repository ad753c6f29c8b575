"""Solve many problems at once: :func:`solve_many`, in parallel across problems.

Parallelism is across problems, never inside one: each worker process solves whole
chunks of the batch one problem after another, so a fast solver (beam, greedy) pays
the inter-process cost once per chunk rather than once per problem. The calling
process is one of the workers: it solves chunks from the back of the batch while the
spawned ones (which take a second or so to start) take them from the front. Worker
processes are started with the ``spawn`` method: Numba and PyTorch can clash over
OpenMP runtimes in ``fork``-ed children.

With ``backend="ray"`` the chunks are Ray tasks (:func:`ray_unordered`, on the
connection :func:`ray_connection` makes); ``mixrank bench --backend ray`` uses the
same two helpers with one task per instance.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from mixrank.errors import SolverError, WorkerLostError
from mixrank.problem import MixProblem
from mixrank.solution import Solution
from mixrank.solve import _check_common, resolve_solver, solve

__all__ = ["solve_many", "ray_connection", "ray_unordered", "RAY_MAX_RETRIES"]

_BACKENDS = ("local", "ray")

#: Tries after the first that a Ray task gets when its worker dies (a crash, an out-of-memory kill, a lost node).
RAY_MAX_RETRIES = 2


def _solve_chunk(problems: list[MixProblem], solver: str, time_limit: float | None, seed: int,
                 options: dict[str, Any]) -> list[Solution]:
    """Worker task: solve a chunk in order (module-level, so that ``spawn`` workers can import it)."""
    return [solve(p, solver=solver, time_limit=time_limit, seed=seed, **options) for p in problems]


def _solve_own_chunk(problems: list[MixProblem], solver: str, time_limit: float | None, seed: int,
                     options: dict[str, Any]) -> list[Solution]:
    """The calling process's share of a pooled batch (a name of its own: the workers' task stays picklable)."""
    return _solve_chunk(problems, solver, time_limit, seed, options)


def _warm_worker(solver: str) -> None:
    """Worker initializer: import the solver, and compile or load its kernels, before the first task."""
    from mixrank.solve import SOLVERS

    entry = SOLVERS[solver].load()
    warm = getattr(__import__(entry.__module__, fromlist=["warm_up"]), "warm_up", None)
    if callable(warm):
        warm()


def _check_batch(problems: Any, n_jobs: Any, backend: Any, chunk_size: Any, progress: Any) -> list[MixProblem]:
    if isinstance(problems, (MixProblem, str, bytes)) or not isinstance(problems, Iterable):
        raise SolverError(f"problems must be a sequence of MixProblem; got {type(problems).__name__}")
    items = list(problems)
    for i, p in enumerate(items):
        if not isinstance(p, MixProblem):
            raise SolverError(f"problems[{i}] must be a MixProblem; got {type(p).__name__}")
    if n_jobs is not None and (isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 1):
        raise SolverError(f"n_jobs must be an int >= 1 or None (all cores); got {n_jobs!r}")
    if backend not in _BACKENDS:
        raise SolverError(f"backend must be one of {', '.join(_BACKENDS)}; got {backend!r}")
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1):
        raise SolverError(f"chunk_size must be an int >= 1 or None (automatic); got {chunk_size!r}")
    if not isinstance(progress, bool):
        raise SolverError(f"progress must be True or False; got {progress!r}")
    return items


def _chunks(n_items: int, n_workers: int, chunk_size: int | None) -> list[tuple[int, int]]:
    if chunk_size is None:
        # About four chunks per worker: small enough to balance, large enough to amortise the transfer.
        chunk_size = max(1, math.ceil(n_items / (4 * n_workers)))
    return [(i, min(i + chunk_size, n_items)) for i in range(0, n_items, chunk_size)]


def solve_many(
    problems: Sequence[MixProblem],
    solver: str = "beam",
    time_limit: float | None = None,
    seed: int = 0,
    *,
    n_jobs: int | None = None,
    backend: str = "local",
    address: str | None = None,
    chunk_size: int | None = None,
    progress: bool = False,
    **options: Any,
) -> list[Solution]:
    """Solve a batch of problems, in parallel across problems; results come back in input order.

    Each problem is solved exactly as ``mixrank.solve(problem, solver, time_limit, seed,
    **options)`` would solve it, so a deterministic solver gives the same plans as
    one-by-one solving (only ``wall_time`` differs).

    Parameters
    ----------
    problems : sequence of MixProblem
    solver : str, default "beam"
        A name from :data:`mixrank.SOLVERS`.
    time_limit : float or None
        Per problem, as in :func:`mixrank.solve`.
    seed : int >= 0
        Used for every problem.
    n_jobs : int >= 1 or None
        Processes that solve: this one and ``n_jobs - 1`` spawned workers (this one
        solves chunks too, from the first moment, while the workers start); None uses
        every core; 1 solves in this process (no pool).
    backend : {"local", "ray"}
        ``"local"``: a process pool on this machine (``spawn`` start method).
        ``"ray"``: tasks on a Ray cluster (needs ``pip install mixrank[ray]``): the one
        this process already joined (``ray.init()`` called by you; left open), else the
        one at ``address``, else a local Ray started for this call and shut down after
        it. A task whose worker dies is retried (:data:`RAY_MAX_RETRIES`); if every try
        fails, :class:`~mixrank.errors.WorkerLostError` names the problems lost.
    address : str or None
        Ray only: the cluster to join (``"ray://host:10001"``, ``"host:6379"``, ``"auto"``).
    chunk_size : int >= 1 or None
        Problems per task; None picks 16 to 256 (about eight tasks per process for
        small batches; with Ray, about four tasks per worker).
    progress : bool
        Show a progress bar (tqdm) over problems.
    **options
        Solver options, checked against the registry before any work starts.

    Returns
    -------
    list of Solution
        ``result[i]`` solves ``problems[i]``.

    Raises
    ------
    SolverError
        For a bad problem, solver, option, time limit, seed or batch setting; raised
        before any problem is solved.
    ImportError
        For ``backend="ray"`` when Ray is not installed.
    WorkerLostError
        For ``backend="ray"``, when a task's worker died on every try; its ``results``
        hold the solved problems' solutions (None for the ``lost`` indices).

    Examples
    --------
    >>> import mixrank
    >>> batch = [mixrank.synthetic.instance("tiny", seed=s) for s in range(3)]
    >>> sols = mixrank.solve_many(batch, solver="greedy", n_jobs=1)
    >>> [s.solver for s in sols]
    ['greedy', 'greedy', 'greedy']
    """
    items = _check_batch(problems, n_jobs, backend, chunk_size, progress)
    if address is not None and (backend != "ray" or not isinstance(address, str) or not address):
        raise SolverError(f"address must be a non-empty str, and only with backend='ray'; got {address!r} "
                          f"with backend={backend!r}")
    resolve_solver(solver, options)
    _check_common(time_limit, seed)
    if backend == "ray":
        if not items:
            return []
        return _solve_ray(items, solver, time_limit, seed, options, chunk_size, progress, address)
    workers = (os.cpu_count() or 1) if n_jobs is None else n_jobs
    workers = max(1, min(workers, len(items)))
    if workers == 1:
        return _solve_here(items, solver, time_limit, seed, options, progress)
    return _solve_pool(items, solver, time_limit, seed, options, workers, chunk_size, progress)


def _bar(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="problem", desc="solve_many")


def _solve_here(items, solver, time_limit, seed, options, progress) -> list[Solution]:
    bar = _bar(len(items), progress)
    out = []
    try:
        for p in items:
            out.append(solve(p, solver=solver, time_limit=time_limit, seed=seed, **options))
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return out


def _solve_pool(items, solver, time_limit, seed, options, workers, chunk_size, progress) -> list[Solution]:
    """``workers`` processes: this one and ``workers - 1`` spawned ones, fed chunk by chunk.

    This process does not wait idle: while the spawned workers start (importing the
    solver and loading its kernels takes ~1 s) and then beside them, it solves chunks
    itself, from the back of the batch, while the workers take them from the front,
    each kept one chunk ahead; the two meet wherever the speeds put them.
    """
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    results: list[Solution | None] = [None] * len(items)
    bar = _bar(len(items), progress)
    ctx = multiprocessing.get_context("spawn")
    n_spawned = workers - 1
    lo, hi = 0, len(items)  # the problems not yet handed out: items[lo:hi]

    # Without a chunk_size: chunks of at most 256 problems (~0.1 s of beam), so that no process holds much
    # work when the others run out, and at least 16 (the transfer is paid once per chunk).
    step = chunk_size or max(16, min(256, math.ceil(len(items) / (8 * workers))))

    try:
        with ProcessPoolExecutor(max_workers=n_spawned, mp_context=ctx, initializer=_warm_worker,
                                 initargs=(solver,)) as pool:
            pending: dict[Any, tuple[int, int]] = {}
            while lo < hi or pending:
                while lo < hi and len(pending) < 2 * n_spawned:  # each worker busy, and one chunk queued
                    a, b = lo, min(hi, lo + step)
                    lo = b
                    pending[pool.submit(_solve_chunk, items[a:b], solver, time_limit, seed, options)] = (a, b)
                if lo < hi:  # this process's own chunk, from the back
                    a, b = max(lo, hi - step), hi
                    hi = a
                    results[a:b] = _solve_own_chunk(items[a:b], solver, time_limit, seed, options)
                    if bar is not None:
                        bar.update(b - a)
                    done = [f for f in pending if f.done()]
                else:
                    done = wait(list(pending), return_when=FIRST_COMPLETED).done
                for fut in done:
                    a, b = pending.pop(fut)
                    results[a:b] = fut.result()
                    if bar is not None:
                        bar.update(b - a)
    finally:
        if bar is not None:
            bar.close()
    return results  # type: ignore[return-value]


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ImportError(
            "backend='ray' needs Ray, which is not installed; install it with: pip install mixrank[ray]"
        ) from None
    return ray


@contextlib.contextmanager
def ray_connection(address: str | None = None) -> Iterator[Any]:
    """Yield the ``ray`` module, connected: to the cluster this process already joined, else to ``address``.

    With no ``address`` and no connection, a local Ray is started (no dashboard) and
    shut down on leaving; with an ``address`` (``"ray://host:10001"``, ``"host:6379"``
    or ``"auto"``) this process joins that cluster and leaves it on exit, and the
    cluster keeps running. A connection made before (by the caller's own
    ``ray.init()``) is used as it is and left open.
    """
    ray = _import_ray()
    started = False
    if not ray.is_initialized():
        if address is None:
            ray.init(include_dashboard=False)
        else:
            ray.init(address=address)
        started = True
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def ray_unordered(func: Callable[..., Any], calls: Sequence[tuple], *, address: str | None = None
                  ) -> Iterator[tuple[int, Any]]:
    """Run ``func(*calls[i])`` as Ray tasks; yield ``(i, result)`` as each finishes.

    A task whose worker dies (a crash, an out-of-memory kill, a lost node) is retried
    up to :data:`RAY_MAX_RETRIES` times; when every try failed, ``(i, WorkerLostError)``
    is yielded in its place, so the caller reports it (nothing is dropped). An
    exception raised by ``func`` itself is raised here. Tasks not yet finished are
    cancelled when the caller stops early (an error, Ctrl-C).
    """
    with ray_connection(address) as ray:
        from ray.exceptions import RayError, RayTaskError

        remote = ray.remote(max_retries=RAY_MAX_RETRIES, retry_exceptions=False)(func)
        refs = [remote.remote(*args) for args in calls]
        position = {ref: i for i, ref in enumerate(refs)}
        pending = refs
        try:
            while pending:
                ready, pending = ray.wait(pending, num_returns=min(len(pending), 64), timeout=0.2)
                for ref in ready:
                    try:
                        value = ray.get(ref)
                    except RayTaskError as exc:  # raised by func: a bug or bad input, not a lost worker
                        cause = getattr(exc, "cause", None)
                        raise (cause if isinstance(cause, BaseException) else exc) from None
                    except RayError as exc:
                        value = WorkerLostError(
                            f"task {position[ref]} failed on all {RAY_MAX_RETRIES + 1} tries: "
                            f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
                        )
                    yield position[ref], value
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)


def _solve_ray(items, solver, time_limit, seed, options, chunk_size, progress, address) -> list[Solution]:
    results: list[Solution | None] = [None] * len(items)
    lost: list[tuple[int, int, WorkerLostError]] = []
    bar = _bar(len(items), progress)
    try:
        with ray_connection(address) as ray:
            workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
            spans = _chunks(len(items), workers, chunk_size)
            calls = [(items[a:b], solver, time_limit, seed, options) for a, b in spans]
            with contextlib.closing(ray_unordered(_solve_chunk, calls)) as finished:
                for j, value in finished:
                    a, b = spans[j]
                    if isinstance(value, WorkerLostError):
                        lost.append((a, b, value))
                    else:
                        results[a:b] = value
                    if bar is not None:
                        bar.update(b - a)
    finally:
        if bar is not None:
            bar.close()
    if lost:
        lost.sort(key=lambda x: x[0])
        spans_text = ", ".join(f"problems[{a}:{b}]" for a, b, _ in lost[:5]) + (", ..." if len(lost) > 5 else "")
        err = WorkerLostError(f"{sum(b - a for a, b, _ in lost)} of {len(items)} problems were not solved: "
                              f"their Ray worker died on every try ({spans_text}); {lost[0][2]}")
        err.results = results
        err.lost = [i for a, b, _ in lost for i in range(a, b)]
        raise err
    return results  # type: ignore[return-value]
