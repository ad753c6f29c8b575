"""bench/profile_kernels.py: the readable names it gives Numba's mangled symbols, and its refusals.

The profile itself needs Linux perf and a fresh compilation (about a minute), so it is not run here.
"""

import doctest
import importlib.util
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[1] / "bench" / "profile_kernels.py"
_spec = importlib.util.spec_from_file_location("profile_kernels", _PATH)
profile_kernels = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(profile_kernels)


def test_its_doctests_pass():
    result = doctest.testmod(profile_kernels)
    assert result.attempted >= 3 and result.failed == 0


@pytest.mark.parametrize("symbol, name", [
    ("_ZN7mixrank10_fastcheck11_check_planB2v4B38c8tJTIeFIjxE5ArrayIdLi2E", "mixrank._fastcheck._check_plan"),
    ("_ZN7solvers5_beam6search11beam_searchB2v7B38c8tJTIeFIjxE", "solvers._beam.search.beam_search"),
    ("NRT_incref", "NRT_incref"),
    ("0x00007f4979dbc069", "0x00007f4979dbc069"),
    ("_ZNfoo", "_ZNfoo"),
])
def test_readable_names(symbol, name):
    assert profile_kernels.readable(symbol) == name


@pytest.mark.parametrize("argv", [["--seconds", "0"], ["--width", "0"], ["--top", "0"], ["--local-search", "-1"]])
def test_bad_options_are_refused_before_any_work(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        profile_kernels.main(argv)
    assert exc.value.code == 2
    assert "must be" in capsys.readouterr().err


def test_bench_defaults_follow_the_solver():
    # profile_kernels times the beam at its defaults; it restates them without importing Numba.
    from solvers.beam import DEFAULT_LOCAL_SEARCH, DEFAULT_WIDTH

    text = _PATH.read_text()
    assert f"default={DEFAULT_WIDTH}, help=\"beam width" in text and f"default={DEFAULT_LOCAL_SEARCH}, help=" in text
