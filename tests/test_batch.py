"""solve_many: the same results as one-by-one solving, in input order, validated before any work."""

import sys

import numpy as np
import pytest

import mixrank
from mixrank import SolverError
from mixrank.synthetic import instance
from solvers.beam import DEFAULT_WIDTH


def _same(a, b):
    return (a.status == b.status and a.solver == b.solver and np.array_equal(a.assignment, b.assignment)
            and (a.objective == b.objective or (np.isnan(a.objective) and np.isnan(b.objective)))
            and [p.assignment.tolist() for p in a.pool] == [p.assignment.tolist() for p in b.pool])


@pytest.fixture(scope="module")
def batch():
    # Mixed families and variants, so that a mix-up of the order cannot go unnoticed.
    return [instance(f, s, history=s % 2 == 0, min_share=s % 3 == 0) for f in ("tiny", "small", "device")
            for s in range(5)]


def test_in_process_equals_one_by_one(batch):
    got = mixrank.solve_many(batch, solver="beam", n_jobs=1, width=8, n_solutions=2)
    want = [mixrank.solve(p, solver="beam", width=8, n_solutions=2) for p in batch]
    assert len(got) == len(batch)
    assert all(_same(a, b) for a, b in zip(got, want))


def test_process_pool_equals_one_by_one_in_input_order(batch):
    want = [mixrank.solve(p, solver="beam", n_solutions=3) for p in batch]
    got = mixrank.solve_many(batch, solver="beam", n_jobs=2, chunk_size=2, n_solutions=3)
    assert all(_same(a, b) for a, b in zip(got, want))
    assert not got[0].assignment.flags.writeable
    assert got[0].stats["width"] == DEFAULT_WIDTH


def test_the_caller_and_a_worker_share_the_batch(batch, monkeypatch):
    # The first two chunks go to the spawned worker before the caller takes one from the back: both paths
    # always solve something, and the results still come back in input order.
    import mixrank.batch as mb

    own = []
    real = mb._solve_own_chunk

    def counted(problems, *args):
        own.append(len(problems))
        return real(problems, *args)

    monkeypatch.setattr(mb, "_solve_own_chunk", counted)
    want = [mixrank.solve(p, solver="beam", width=8) for p in batch]
    got = mixrank.solve_many(batch, solver="beam", n_jobs=2, chunk_size=2, width=8, progress=True)
    assert all(_same(a, b) for a, b in zip(got, want))
    assert 1 <= sum(own) <= len(batch) - 4


def test_other_solvers_and_progress_bar(batch):
    got = mixrank.solve_many(batch[:4], solver="greedy", n_jobs=1, progress=True)
    assert all(_same(a, mixrank.solve(p, solver="greedy")) for a, p in zip(got, batch[:4]))


def test_empty_batch():
    assert mixrank.solve_many([], solver="beam") == []


@pytest.mark.parametrize("kwargs, match", [
    ({"solver": "nope"}, "solver must be one of"),
    ({"solver": "beam", "widht": 3}, "unknown option"),
    ({"solver": "beam", "n_jobs": 0}, "n_jobs"),
    ({"solver": "beam", "backend": "dask"}, "backend"),
    ({"solver": "beam", "chunk_size": 0}, "chunk_size"),
    ({"solver": "beam", "progress": "yes"}, "progress"),
    ({"solver": "beam", "time_limit": -1}, "time_limit"),
    ({"solver": "beam", "seed": -2}, "seed"),
])
def test_bad_settings_are_rejected_before_any_work(kwargs, match, monkeypatch):
    calls = []
    monkeypatch.setattr("mixrank.batch.solve", lambda *a, **k: calls.append(1))
    with pytest.raises(SolverError, match=match):
        mixrank.solve_many([instance("tiny", 0)], **kwargs)
    assert calls == []


def test_bad_problems_are_named_by_index():
    with pytest.raises(SolverError, match=r"problems\[1\] must be a MixProblem"):
        mixrank.solve_many([instance("tiny", 0), "not a problem"], n_jobs=1)
    with pytest.raises(SolverError, match="sequence of MixProblem"):
        mixrank.solve_many(instance("tiny", 0))


def test_ray_backend_without_ray_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
    with pytest.raises(ImportError, match=r"pip install mixrank\[ray\]"):
        mixrank.solve_many([instance("tiny", 0)], backend="ray")


def test_threads_plan_alike(batch):
    # The beam kernel runs without the GIL (nogil): threads may plan side by side, with the same results.
    from concurrent.futures import ThreadPoolExecutor

    want = [mixrank.solve(p, solver="beam") for p in batch]
    with ThreadPoolExecutor(max_workers=3) as pool:
        got = list(pool.map(lambda p: mixrank.solve(p, solver="beam"), batch * 3))
    assert all(_same(a, b) for a, b in zip(got, want * 3))


class _FakeRay:
    """Stands in for the ray module: records init/shutdown calls."""

    def __init__(self, initialized=False):
        self.initialized, self.calls = initialized, []

    def is_initialized(self):
        return self.initialized

    def init(self, **kwargs):
        self.calls.append(("init", kwargs))
        self.initialized = True

    def shutdown(self):
        self.calls.append(("shutdown", {}))
        self.initialized = False


@pytest.mark.parametrize("address, initialized, calls", [
    (None, False, [("init", {"include_dashboard": False}), ("shutdown", {})]),  # a local Ray, started and stopped
    ("ray://head:10001", False, [("init", {"address": "ray://head:10001"}), ("shutdown", {})]),  # joined, then left
    (None, True, []),  # the user's own connection: used as it is, left open
    ("ray://head:10001", True, []),
])
def test_ray_connection_starts_joins_or_reuses(address, initialized, calls, monkeypatch):
    from mixrank.batch import ray_connection

    fake = _FakeRay(initialized)
    monkeypatch.setitem(sys.modules, "ray", fake)
    with ray_connection(address) as got:
        assert got is fake and fake.initialized
    assert fake.calls == calls
    assert fake.initialized == initialized


def test_address_only_with_ray():
    with pytest.raises(SolverError, match="address must be a non-empty str, and only with backend='ray'"):
        mixrank.solve_many([instance("tiny", 0)], backend="local", address="ray://head:10001")
    with pytest.raises(SolverError, match="address"):
        mixrank.solve_many([instance("tiny", 0)], backend="ray", address="")
