"""solve_many and mixrank bench on a real local Ray: serial results in input order, lost workers retried or reported.

One local Ray (2 CPUs, no dashboard) serves the whole module; it is started here, as a user
would, so the library must join it and leave it running. A worker is killed by a problem that
ends its process (``os._exit``) while Ray unpickles it: on its first try only (a marker file
remembers the try), or on every try.
"""

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

import mixrank
from mixrank import MixProblem, SolverError
from mixrank.bench import BenchInstance, bench_instances
from mixrank.cli import main
from mixrank.errors import WorkerLostError
from mixrank.synthetic import instance

ray = pytest.importorskip("ray")


def _rebuild_or_die(marker: str, text: str, always: bool) -> MixProblem:
    """Unpickling in a Ray worker: end the worker's process on the first try (or every try), else the problem."""
    if always or not Path(marker).exists():
        Path(marker).touch()
        os._exit(17)
    return MixProblem.from_json(text)


class _KillsItsWorker(MixProblem):
    def __reduce__(self):
        return (_rebuild_or_die, (self.__dict__["_marker"], self.to_json(), self.__dict__["_always"]))


def killer(problem: MixProblem, marker: Path, always: bool = False) -> MixProblem:
    p = _KillsItsWorker.from_json(problem.to_json())
    p.__dict__.update(_marker=str(marker), _always=always)
    return p


@pytest.fixture(scope="module")
def local_ray():
    # Functions of this module travel to the workers by value: they cannot import the tests folder.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=2, include_dashboard=False)
    yield ray
    ray.shutdown()


def _same(a, b):
    return (a.status == b.status and np.array_equal(a.assignment, b.assignment)
            and (a.objective == b.objective or (np.isnan(a.objective) and np.isnan(b.objective)))
            and [p.assignment.tolist() for p in a.pool] == [p.assignment.tolist() for p in b.pool])


@pytest.fixture(scope="module")
def batch():
    return [instance(f, s, history=s % 2 == 0, min_share=s % 3 == 0) for f in ("tiny", "small", "device")
            for s in range(4)]


def test_ray_equals_serial_in_input_order(local_ray, batch):
    want = [mixrank.solve(p, solver="beam", width=8, n_solutions=2) for p in batch]
    got = mixrank.solve_many(batch, solver="beam", backend="ray", chunk_size=3, width=8, n_solutions=2)
    assert len(got) == len(batch) and all(_same(a, b) for a, b in zip(got, want))
    assert local_ray.is_initialized()  # the user's connection is left open


def test_a_lost_worker_is_retried(local_ray, batch, tmp_path):
    marker = tmp_path / "tried"
    problems = list(batch[:6])
    problems[4] = killer(problems[4], marker)
    got = mixrank.solve_many(problems, solver="greedy", backend="ray", chunk_size=2)
    assert marker.exists()  # the first try did die
    assert all(_same(a, mixrank.solve(p, solver="greedy")) for a, p in zip(got, batch[:6]))


def test_a_worker_lost_on_every_try_is_reported(local_ray, batch, tmp_path, monkeypatch):
    monkeypatch.setattr("mixrank.batch.RAY_MAX_RETRIES", 1)
    problems = list(batch[:6])
    problems[1] = killer(problems[1], tmp_path / "tried", always=True)
    with pytest.raises(WorkerLostError, match=r"2 of 6 problems were not solved.*problems\[0:2\]") as info:
        mixrank.solve_many(problems, solver="greedy", backend="ray", chunk_size=2)
    assert info.value.lost == [0, 1]
    assert info.value.results[:2] == [None, None]
    assert all(_same(a, mixrank.solve(p, solver="greedy")) for a, p in zip(info.value.results[2:], batch[2:6]))


def test_an_error_in_a_task_is_raised_as_itself(local_ray, batch):
    with pytest.raises(SolverError, match="hint"):
        mixrank.solve_many(batch[:2], solver="cpsat", backend="ray", hint=[0, 0, 0])


def test_bench_on_ray_equals_local(local_ray, tmp_path, capsys):
    args = ["bench", "--family", "tiny", "--seeds", "0-2", "--variants", "plain,both", "--solvers", "greedy,cpsat",
            "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "local")]) == 0
    assert main([*args, "--backend", "ray", "--out", str(tmp_path / "ray")]) == 0
    assert "backend ray" in capsys.readouterr().out

    def key(path):
        recs = [json.loads(line) for line in (path / "records.jsonl").read_text().splitlines()]
        return sorted((r["instance"], r["solver"], r["status"], r["objective"]) for r in recs)

    assert key(tmp_path / "ray") == key(tmp_path / "local") and len(key(tmp_path / "ray")) == 12
    summary = json.loads((tmp_path / "ray" / "summary.json").read_text())
    assert summary["settings"]["backend"] == "ray"


def test_bench_reports_an_instance_lost_on_every_try(local_ray, tmp_path, monkeypatch):
    monkeypatch.setattr("mixrank.batch.RAY_MAX_RETRIES", 1)
    items = [BenchInstance(f"tiny-{s}", preloaded=instance("tiny", s)) for s in range(3)]
    items[1] = BenchInstance("doomed", preloaded=killer(instance("tiny", 1), tmp_path / "tried", always=True))
    result = bench_instances(items, ["greedy"], progress=False, backend="ray", records_path=tmp_path / "r.jsonl")
    assert [(r.instance, r.status) for r in result.records] == [
        ("tiny-0", "FEASIBLE"), ("doomed", "FAILED"), ("tiny-2", "FEASIBLE")]
    assert "WorkerLostError" in result.records[1].error
    assert "FAILED: 1 instance(s) lost" in result.table()
    assert len((tmp_path / "r.jsonl").read_text().splitlines()) == 3


def test_ctrl_c_during_a_ray_bench_keeps_what_finished(local_ray, tmp_path, monkeypatch):
    from mixrank.bench import BenchInterrupted, family_instances

    real_wait, calls = local_ray.wait, []

    def one_at_a_time(refs, num_returns=1, timeout=None, **kwargs):  # then Ctrl-C while waiting for the third
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_wait(refs, num_returns=1, **kwargs)

    monkeypatch.setattr(local_ray, "wait", one_at_a_time)
    with pytest.raises(BenchInterrupted) as info:
        bench_instances(family_instances("tiny", range(5), ["plain"]), ["greedy"], progress=False, backend="ray",
                        records_path=tmp_path / "r.jsonl")
    assert info.value.partial.n_instances == 2 and info.value.partial.settings["interrupted"]
    assert len((tmp_path / "r.jsonl").read_text().splitlines()) == 2
    assert local_ray.is_initialized()  # the user's Ray is left running
