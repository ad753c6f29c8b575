"""The log schema on mixrank's ground floor (mixrank.logs): layering, indexing, splitting, files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mixrank.logs import FeedLog, LogSchemaError, Requests
from mixrank.synthetic import FeedConfig, FeedEnv

ROOT = Path(__file__).resolve().parents[1]
SMALL = FeedConfig(n_slots=10, n_cards=4, exposure_len=12, history_len=40, click_len=4)


@pytest.fixture(scope="module")
def log() -> FeedLog:
    return FeedEnv(SMALL).log(20, seed=0)


def test_mixrank_never_imports_esan() -> None:
    code = (
        "import sys, mixrank, mixrank.logs, mixrank.pipeline, mixrank.synthetic, mixrank.synthetic.feed;"
        "mixrank.synthetic.FeedEnv().log(2, seed=0);"
        "print([m for m in sys.modules if m == 'esan' or m.startswith('esan.')])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"
    # Not even lazily, inside a function -- except in the demo, which sits on top of every package: it is the
    # whole pipeline (`mixrank demo`: feed, ESAN, sessions, re-ranking) and nothing below it imports it (the CLI, examples, benches and tests do).
    on_top = {ROOT / "mixrank" / "demo.py"}
    for path in (ROOT / "mixrank").rglob("*.py"):
        if path in on_top:
            continue
        text = path.read_text()
        assert "from esan" not in text and "import esan" not in text, path


def test_esan_re_exports_the_same_schema() -> None:
    import esan
    import esan.data

    assert esan.FeedLog is esan.data.FeedLog is FeedLog
    assert esan.Requests is Requests and esan.data.LogSchemaError is LogSchemaError
    assert issubclass(LogSchemaError, esan.data.InputError)


@pytest.mark.parametrize("index", [20, 100, -21])
def test_an_index_out_of_range_raises_index_error(log: FeedLog, index: int) -> None:
    with pytest.raises(IndexError, match="out of range"):
        log[index]


def test_int_indices_select_one_request(log: FeedLog) -> None:
    assert log[-1] == log[19:20] and log[0] == log[:1] and log[np.int64(5)] == log[5:6]
    batch = FeedEnv(SMALL).sample(3, seed=0)
    assert batch[-1].requests == batch.requests[2:3]
    with pytest.raises(IndexError):
        batch[3]


@pytest.mark.parametrize(
    "fractions", [(float("nan"), 1.0), (0.5, float("nan")), (float("inf"), -float("inf")), (0.7, 0.2), (-0.5, 1.5)]
)
def test_split_refuses_bad_fractions(log: FeedLog, fractions) -> None:
    with pytest.raises(LogSchemaError, match="fractions"):
        log.split(fractions)


@pytest.mark.parametrize("version", [True, 1.0, "1", 0])
def test_a_file_whose_version_is_not_an_int_is_refused(log: FeedLog, tmp_path, version) -> None:
    path = tmp_path / "log.npz"
    log.save(path)
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    header = json.loads(str(arrays.pop("__schema__")))
    header["schema_version"] = version
    np.savez(path, __schema__=np.array(json.dumps(header)), **arrays)
    with pytest.raises(LogSchemaError, match="schema_version must be an int"):
        FeedLog.load(path)
