"""bench/compare_runs.py: two saved suite runs side by side, quality changes marked."""

import doctest
import importlib.util
import json
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[1] / "bench" / "compare_runs.py"
_spec = importlib.util.spec_from_file_location("compare_runs", _PATH)
compare_runs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(compare_runs)


def _run(path, gap, status, median):
    bench = {"group": "family tiny", "name": "test_solver[bnb-tiny]", "fullname": "x::test_solver[bnb-tiny]",
             "stats": {"median": median}, "extra_info": {"status": status, "gap": gap}}
    path.write_text(json.dumps({"benchmarks": [bench]}))


def test_its_doctests_pass():
    result = doctest.testmod(compare_runs)
    assert result.attempted >= 2 and result.failed == 0


def test_saved_runs_found_by_number_or_name_and_compared(tmp_path, capsys):
    root = tmp_path / ".benchmarks" / "Linux-CPython-3.11-64bit"
    root.mkdir(parents=True)
    _run(root / "0001_before.json", 0.02, {"FEASIBLE": 1}, 0.004)
    _run(root / "0002_after.json", 0.0, {"OPTIMAL": 1}, 0.002)
    assert compare_runs.main(["0001", "after", "--root", str(tmp_path / ".benchmarks")]) == 0
    out = capsys.readouterr().out
    assert "family tiny" in out
    line = next(x for x in out.splitlines() if "bnb-tiny" in x)
    assert line.startswith("*") and "0.50x" in line and "FEASIBLE 1 -> OPTIMAL 1" in line and "2.000% -> 0.000%" in line
    with pytest.raises(SystemExit):
        compare_runs.main(["0003", "0001", "--root", str(tmp_path / ".benchmarks")])
    assert "no saved run '0003'" in capsys.readouterr().err
