"""The mixrank command line."""

import json

import pytest

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
