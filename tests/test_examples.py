"""Every worked example and ``mixrank demo`` run as a new user runs them (a fresh process), in their fast modes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def run(args: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


#: Examples this file does not run, and why (each must say).
NOT_RUN: dict[str, str] = {}


def test_every_example_is_tested():
    tested = {"01_solve_one_problem.py", "train_esan.py", "03_scrolling_session.py", "04_rerank.py"}
    assert {p.name for p in EXAMPLES.glob("*.py")} <= tested | set(NOT_RUN)


def test_example_01_every_solver_keeps_the_rules(tmp_path):
    out = run([sys.executable, str(EXAMPLES / "01_solve_one_problem.py"), "--fast"], tmp_path)
    assert out.returncode == 0, out.stderr
    rows = [line for line in out.stdout.splitlines() if line.split()[:1] in (["greedy"], ["beam"], ["bnb"], ["cpsat"])]
    assert len(rows) == 4 and all(line.endswith("kept") for line in rows)
    assert "the exact solvers agree to 0.00e+00" in out.stdout or "agree to" in out.stdout
    assert "optimal page" in out.stdout


def test_example_02_trains_esan_and_plans_a_page(tmp_path):
    out = run([sys.executable, str(EXAMPLES / "train_esan.py"), "--fast", "--threads", "1",
               "--outdir", str(tmp_path / "run")], tmp_path)
    assert out.returncode == 0, out.stderr
    assert "ONNX parity ok" in out.stdout and "plan (" in out.stdout
    assert (tmp_path / "run" / "train_log.npz").is_file() and (tmp_path / "run" / "esan.pt").is_file()


def test_example_03_sessions_keep_the_rules(tmp_path):
    out = run([sys.executable, str(EXAMPLES / "03_scrolling_session.py"), "--fast"], tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("page 0 slots") == 5  # the session's 20 slots in screens of 4
    assert "every rule holds (20 slots" in out.stdout
    assert "rule violations over all 36 committed sessions: 0" in out.stdout
    assert "dynamic vs static" in out.stdout


@pytest.mark.skipif(not (EXAMPLES / "04_rerank.py").exists(), reason="example 04 needs mixrank.rerank")
def test_example_04_rerank(tmp_path):
    out = run([sys.executable, str(EXAMPLES / "04_rerank.py"), "--fast"], tmp_path)
    assert out.returncode == 0, out.stderr
    assert "served" in out.stdout


def test_demo_fast_writes_its_table_and_plot(tmp_path):
    out = run([sys.executable, "-m", "mixrank.cli", "demo", "--fast", "--no-progress", "--out", "demo"], tmp_path)
    assert out.returncode == 0, out.stderr
    assert "rule violations over every committed session feed: 0" in out.stdout
    assert "dynamic vs fixed:" in out.stdout and "dynamic vs static:" in out.stdout
    assert "of the exhaustive optimum's true clicks" in out.stdout  # the re-rank step ran
    plot = tmp_path / "demo" / "demo.png"
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size < 200_000
    assert (tmp_path / "demo" / "results.json").is_file() and (tmp_path / "demo" / "table.txt").is_file()


def test_demo_refuses_a_used_folder_before_any_work(tmp_path):
    used = tmp_path / "used"
    used.mkdir()
    (used / "keep.txt").write_text("mine")
    out = run([sys.executable, "-m", "mixrank.cli", "demo", "--fast", "--out", str(used)], tmp_path, timeout=120)
    assert out.returncode == 2 and "--out must be a new or empty folder" in out.stderr
    assert "train ESAN" not in out.stdout and (used / "keep.txt").read_text() == "mine"
    out = run([sys.executable, "-m", "mixrank.cli", "demo", "--fast", "--out", str(tmp_path / "no" / "such")], tmp_path,
              timeout=120)
    assert out.returncode == 2 and "does not exist" in out.stderr


def test_demo_rerank_step_is_skipped_with_a_note_when_rerank_is_missing(monkeypatch, capsys):
    from mixrank import demo

    monkeypatch.setitem(sys.modules, "mixrank.rerank", None)  # import mixrank.rerank now raises ImportError
    assert demo._rerank_step(fast=True, progress=False) is None
    assert "re-rank: skipped" in capsys.readouterr().out
