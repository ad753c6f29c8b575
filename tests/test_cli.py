"""The mixrank command line."""

import errno
import json
import os
import re
import sys

import pytest

import mixrank
from mixrank import MixProblem
from mixrank.cli import main
from mixrank.synthetic import instance


def test_gen_then_solve(tmp_path, capsys):
    out = tmp_path / "d.json"
    assert main(["gen", "small", "--seed", "2", "--history", "--min-share", "-o", str(out)]) == 0
    assert MixProblem.load(out) == instance("small", 2, history=True, min_share=True)
    capsys.readouterr()
    assert main(["solve", str(out), "--solver", "cpsat", "--json"]) == 0
    sol = json.loads(capsys.readouterr().out)
    assert sol["status"] == "OPTIMAL" and len(sol["assignment"]) == 20
    assert main(["solve", str(out), "--solver", "greedy", "--time-limit", "1"]) == 0
    assert "greedy: FEASIBLE" in capsys.readouterr().out


def test_solve_times_the_solve_not_the_first_load(tmp_path, capsys):
    # The warm-up (imports, compiled kernels) is reported apart, on stderr, and the solve's time excludes it.
    out = tmp_path / "d.json"
    instance("device", 1, history=True).save(out)
    assert main(["solve", str(out), "--solver", "beam", "--json"]) == 0
    captured = capsys.readouterr()
    assert "beam: imports and compiled kernels loaded in" in captured.err
    # A beam solve on device takes well under a millisecond; loading its kernels alone takes ~0.5 s or more.
    assert json.loads(captured.out)["wall_time"] < 0.25


def test_solve_errors_are_clear(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema_version": 7}')
    assert main(["solve", str(bad)]) == 2
    assert "newer than this mixrank reads" in capsys.readouterr().err
    good = tmp_path / "g.json"
    instance("tiny", 0).save(good)
    assert main(["solve", str(good), "--option", "cpsat.width=3"]) == 2
    assert "unknown option(s) width" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["solve", str(good), "--time-limit", "-1"])


def test_bench_table_and_json(tmp_path, capsys):
    out = tmp_path / "b.json"
    assert main(["bench", "--family", "tiny", "--seeds", "0-3", "--solvers", "greedy,cpsat",
                 "--variants", "plain,both", "--json", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "median ms" in text and "cpsat" in text
    data = json.loads(out.read_text())
    assert len(data["records"]) == 16
    rows = {r["solver"]: r for r in data["summary"]}
    assert rows["cpsat"]["OPTIMAL"] + rows["cpsat"]["INFEASIBLE"] == 8
    assert rows["greedy"]["n"] == 8


def test_bench_refuses_bad_seeds(capsys):
    assert main(["bench", "--seeds", "5-2", "--no-progress"]) == 2
    assert "seeds must look like" in capsys.readouterr().err


def test_a_closed_pipe_ends_quietly(tmp_path):
    # `mixrank solve FILE | head -1`: the reader is gone before the output is written; the command must end
    # without a traceback (Python's default prints one, or an "Exception ignored" line at exit).
    import subprocess
    import sys

    path = tmp_path / "tiny.json"
    assert main(["gen", "tiny", "--seed", "1", "-o", str(path)]) == 0
    # The child waits for its stdin to close, so the pipe is closed before main() writes anything.
    code = ("import sys; sys.stdin.read(); from mixrank.cli import main; "
            f"raise SystemExit(main(['solve', {str(path)!r}, '--solver', 'greedy']))")
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()
    proc.stdin.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141
    assert "Traceback" not in err and "BrokenPipe" not in err and "Exception ignored" not in err, err


# ---------------------------------------------------------------------------------------------------------------
# gen into a folder, bench --from / --out


def test_gen_a_folder_then_bench_from_it(tmp_path, capsys):
    inst, res = tmp_path / "inst", tmp_path / "res"
    assert main(["gen", "tiny", "--seeds", "0-2,10", "-o", f"{inst}/"]) == 0
    names = sorted(p.name for p in inst.iterdir())
    assert names == ["tiny_00.json", "tiny_01.json", "tiny_02.json", "tiny_10.json"]
    assert MixProblem.load(inst / "tiny_10.json") == instance("tiny", 10)
    assert main(["bench", "--from", str(inst), "--solvers", "greedy,beam,cpsat", "--out", str(res),
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "median ms" in out and "x cpsat" in out and "4 files" in out
    assert sorted(p.name for p in res.iterdir()) == ["gap_time.png", "profile.png", "records.jsonl", "summary.json",
                                                     "table.txt"]
    recs = [json.loads(line) for line in (res / "records.jsonl").read_text().splitlines()]
    assert [(r["instance"], r["solver"]) for r in recs] == [
        (f"tiny_{s:02d}", name) for s in (0, 1, 2, 10) for name in ("greedy", "beam", "cpsat")]
    for r in recs:  # the records are those of solving the files' problems
        want = mixrank.solve(instance("tiny", int(r["instance"][5:])), solver="cpsat")
        if r["solver"] == "cpsat":
            assert r["status"] == want.status.value and r["objective"] == pytest.approx(want.objective)
    summary = json.loads((res / "summary.json").read_text())
    assert [row["n"] for row in summary["summary"]] == [4, 4, 4]
    assert (res / "table.txt").read_text().startswith("solver")
    for png in ("profile.png", "gap_time.png"):
        assert (res / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_gen_refuses_bad_outputs(tmp_path, capsys):
    assert main(["gen", "tiny", "--seeds", "0-2", "-o", str(tmp_path / "x.json")]) == 2
    assert "must name a folder" in capsys.readouterr().err
    (tmp_path / "file").write_text("")
    assert main(["gen", "tiny", "--seeds", "0-2", "-o", str(tmp_path / "file")]) == 1
    assert "is a file" in capsys.readouterr().err
    assert main(["gen", "tiny", "-o", str(tmp_path / "missing" / "x.json")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["gen", "tiny", "--seeds", "0-99999999999", "-o", str(tmp_path / "d")]) == 2
    assert "at most 100,000 seeds" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


def test_bench_from_a_folder_with_a_bad_file_names_it(tmp_path, capsys):
    instance("tiny", 0).save(tmp_path / "a.json")
    (tmp_path / "b.json").write_text("{not json")
    assert main(["bench", "--from", str(tmp_path), "--no-progress"]) == 2
    assert "b.json" in capsys.readouterr().err
    assert main(["bench", "--from", str(tmp_path / "nothing"), "--no-progress"]) == 2
    assert "is not a folder" in capsys.readouterr().err


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if a bench starts solving."""
    def refuse(*args, **kwargs):
        raise AssertionError("the run started although its settings were bad")

    monkeypatch.setattr("mixrank.bench.bench_instances", refuse)
    monkeypatch.setattr("mixrank.bench.warm_up", refuse)


@pytest.mark.parametrize("argv, code, message", [
    (["--json", "{tmp}/missing/x.json"], 1, "--json: folder .*missing does not exist"),
    (["--plot", "{tmp}/missing/x.png"], 1, "--plot: folder .*missing does not exist"),
    (["--json", "{tmp}"], 1, "--json must name a file to write"),
    (["--out", "{tmp}/afile"], 1, "--out must name a folder; .* is a file"),
    (["--out", "{tmp}/afile/sub"], 1, "--out: cannot create folder"),
    (["--variants", ""], 2, "--variants must name at least one item"),
    (["--variants", "plain,plain"], 2, "variants must not repeat"),
    (["--seeds", "0-999999999999"], 2, "at most 100,000 seeds"),
    (["--seeds", "0-99999", "--variants", "plain,both"], 2, "at most 100,000 instances"),
    (["--reference", "foo"], 2, "reference must be one of the solvers run"),
    (["--solvers", "greedy,cpsat,greedy"], 2, "solvers must not repeat; got greedy"),
    (["--solvers", ","], 2, "--solvers must name at least one"),
    (["--address", "ray://x:1"], 2, "--address is for --backend ray"),
    (["--from", "{tmp}", "--seeds", "0-3"], 2, "--seeds and --variants are for --family"),
    (["--solvers", "greedy", "--option", "beam.width=3"], 2, "options given for 'beam'"),
])
def test_bench_refuses_bad_settings_and_outputs_before_any_work(argv, code, message, tmp_path, capsys, no_work):
    (tmp_path / "afile").write_text("")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    source = [] if "--from" in argv else ["--family", "tiny", "--seeds", "0"]
    assert main(["bench", *source, "--no-progress", *argv]) == code
    err = capsys.readouterr().err
    assert re.search(message, err), err
    assert "Traceback" not in err


def test_bench_on_ray_without_ray_says_how_to_install(capsys, no_work, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
    assert main(["bench", "--family", "tiny", "--backend", "ray", "--no-progress"]) == 2
    assert "pip install 'mixrank[ray]'" in capsys.readouterr().err


def test_bench_refuses_a_folder_it_cannot_write(tmp_path, capsys, no_work, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    if os.geteuid() != 0:  # a real read-only folder (root writes anyway)
        locked.chmod(0o500)
        assert main(["bench", "--family", "tiny", "--out", str(locked), "--no-progress"]) == 1
        assert "cannot write in" in capsys.readouterr().err
        locked.chmod(0o700)

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("mixrank.cli.tempfile.TemporaryFile", denied)
    assert main(["bench", "--family", "tiny", "--out", str(locked), "--no-progress"]) == 1
    assert f"--out: cannot write in {locked}: Permission denied" in capsys.readouterr().err
    assert main(["bench", "--family", "tiny", "--json", str(locked / "x.json"), "--no-progress"]) == 1
    assert "--json: cannot write in" in capsys.readouterr().err


def test_a_full_disk_is_one_clear_line(tmp_path, capsys, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("mixrank.bench.BenchResult.write_out", full)
    assert main(["bench", "--family", "tiny", "--seeds", "0", "--variants", "plain", "--solvers", "greedy",
                 "--out", str(tmp_path / "res"), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert f"cannot write the results in {tmp_path / 'res'}: No space left on device" in err
    assert "Traceback" not in err
    assert len((tmp_path / "res" / "records.jsonl").read_text().splitlines()) == 1  # what was done is kept


def test_the_records_stream_names_its_file_when_the_disk_fills(tmp_path, monkeypatch):
    from mixrank.bench import bench_instances, family_instances

    real_open = open

    class Full:
        def __init__(self, fh):
            self.fh = fh

        def write(self, text):
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.fh, name)

    monkeypatch.setattr("builtins.open", lambda *a, **k: Full(real_open(*a, **k)))
    with pytest.raises(OSError, match="No space left on device") as info:
        bench_instances(family_instances("tiny", [0], ["plain"]), ["greedy"], progress=False,
                        records_path=tmp_path / "r.jsonl")
    assert info.value.filename == str(tmp_path / "r.jsonl")


# ---------------------------------------------------------------------------------------------------------------
# solve: options checked on the user's problem; time limits refused before the warm-up; Ctrl-C


def test_solve_takes_a_hint_for_the_users_problem(tmp_path, capsys):
    path = tmp_path / "small.json"
    p = instance("small", 3)
    p.save(path)
    best = mixrank.solve(p, solver="cpsat")
    hint = "cpsat.hint=" + json.dumps(best.assignment.tolist()).replace(" ", "")
    assert main(["solve", str(path), "--option", hint, "--json"]) == 0
    sol = json.loads(capsys.readouterr().out)
    assert sol["status"] == "OPTIMAL" and sol["objective"] == pytest.approx(best.objective)
    assert main(["solve", str(path), "--option", "cpsat.hint=[0,1,2,3]"]) == 2  # the warm-up problem's length
    assert f"hint must be an int array of shape ({p.n_slots},)" in capsys.readouterr().err


@pytest.mark.parametrize("limit", ["inf", "nan", "0", "-1"])
def test_solve_refuses_a_bad_time_limit_before_the_warm_up(limit, tmp_path, capsys, monkeypatch):
    calls = []
    monkeypatch.setattr("mixrank.bench.warm_up", lambda *a, **k: calls.append(1))
    path = tmp_path / "t.json"
    instance("tiny", 0).save(path)
    with pytest.raises(SystemExit) as exc:
        main(["solve", str(path), "--time-limit", limit])
    assert exc.value.code == 2 and calls == []
    assert "--time-limit must be a positive, finite number" in capsys.readouterr().err


def _interrupt_on_call(monkeypatch, n):
    """Make greedy raise KeyboardInterrupt on its n-th call (as Ctrl-C would inside any solver)."""
    import solvers.greedy

    real, calls = solvers.greedy.solve_greedy, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == n:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(solvers.greedy, "solve_greedy", interrupted)


def test_ctrl_c_in_solve_exits_130_claiming_nothing(tmp_path, capsys, monkeypatch):
    path = tmp_path / "t.json"
    instance("tiny", 0).save(path)
    _interrupt_on_call(monkeypatch, 2)  # the first call is the warm-up
    assert main(["solve", str(path), "--solver", "greedy"]) == 130
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "interrupted; no result" in captured.err


def test_ctrl_c_in_bench_keeps_and_writes_what_finished(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("mixrank.bench._WARM", {"greedy"})  # no warm-up call: greedy counts instances only
    _interrupt_on_call(monkeypatch, 3)  # two instances, then Ctrl-C in the third
    res = tmp_path / "res"
    assert main(["bench", "--family", "tiny", "--seeds", "0-9", "--variants", "plain", "--solvers", "greedy",
                 "--out", str(res), "--json", str(tmp_path / "all.json"), "--no-progress"]) == 130
    captured = capsys.readouterr()
    assert "INTERRUPTED: the run was stopped after 2 of 10 instances" in captured.out
    assert "interrupted" in captured.err
    recs = [json.loads(line) for line in (res / "records.jsonl").read_text().splitlines()]
    assert [r["instance"] for r in recs] == ["tiny-0-plain", "tiny-1-plain"]
    summary = json.loads((res / "summary.json").read_text())
    assert summary["settings"]["interrupted"] is True and summary["summary"][0]["n"] == 2
    assert len(json.loads((tmp_path / "all.json").read_text())["records"]) == 2
    assert (res / "profile.png").exists()
