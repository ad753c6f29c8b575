"""Settings of the pytest-benchmark suites: the quick form (CI) or the full form (``--bench-full``, by hand)."""

from __future__ import annotations

from typing import NamedTuple

import pytest


class Form(NamedTuple):
    """How much a suite runs."""

    name: str
    seeds: tuple[int, ...]
    variants: tuple[str, ...]
    rounds: int  # timed rounds per benchmark (each round solves all of a family's instances)
    time_limit: float  # seconds per solve, for every solver and for the reference


QUICK = Form("quick", (0,), ("both",), 1, 1.0)
FULL = Form("full", tuple(range(5)), ("plain", "history", "min_share", "both"), 3, 10.0)


def pytest_addoption(parser):
    parser.addoption("--bench-full", action="store_true", default=False,
                     help="mixrank suites: the full form (5 seeds x 4 variants a family, 3 rounds, 10 s limits)")


@pytest.fixture(scope="session")
def form(request) -> Form:
    return FULL if request.config.getoption("--bench-full", default=False) else QUICK


#: (family, solver, extra_info) of every benchmark run in this session, for the quality table at the end.
_QUALITY: list[tuple[str, str, dict]] = []


@pytest.fixture
def record_quality():
    """``record_quality(family, solver, extra_info)``: list the benchmark in the session's quality table."""
    return lambda family, solver, info: _QUALITY.append((family, solver, info))


def pytest_terminal_summary(terminalreporter):
    """Beside pytest-benchmark's time tables: each benchmark's statuses and gaps, grouped the same way."""
    if not _QUALITY:
        return
    tr = terminalreporter
    tr.section("mixrank suites: plan quality (gap to bnb's proven bound)")
    tr.write_line(f"{'family':<16}{'solver':<10}{'status':<34}{'mean gap':>10}{'max gap':>10}")
    for family, solver, info in sorted(_QUALITY, key=lambda x: (x[0], x[1])):
        status = ", ".join(f"{k} {v}" for k, v in sorted(info["status"].items()))
        gap = "-" if info["gap"] is None else f"{info['gap']:.3%}"
        max_gap = "-" if info["max_gap"] is None else f"{info['max_gap']:.3%}"
        tr.write_line(f"{family:<16}{solver:<10}{status:<34}{gap:>10}{max_gap:>10}")
