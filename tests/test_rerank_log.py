"""ListLog: validation names the field; files round-trip atomically; foreign, corrupt and newer files are refused."""

import json

import numpy as np
import pytest

from mixrank.errors import ProblemError
from mixrank.rerank import ListLog


def _log(r=4, n=5, k=3, f=2, c=3, seed=0):
    rng = np.random.default_rng(seed)
    shown = np.stack([rng.permutation(n)[:k] for _ in range(r)])
    return ListLog(items=rng.normal(size=(r, n, f)), shown=shown, clicks=rng.integers(0, 2, (r, k)),
                   context=rng.normal(size=(r, c)), extras={"seq": rng.normal(size=(r, 7))})


@pytest.mark.parametrize(
    "change, field",
    [
        ({"items": np.zeros((4, 5))}, "items"),
        ({"items": np.full((4, 5, 2), np.nan)}, "items"),
        ({"shown": np.zeros((3, 3), int)}, "shown"),
        ({"shown": np.full((4, 3), 7)}, "shown"),
        ({"shown": np.array([[0, 1, 1]] * 4)}, "shown"),
        ({"clicks": np.full((4, 3), 2)}, "clicks"),
        ({"clicks": np.zeros((4, 2))}, "clicks"),
        ({"n_items": np.array([5, 5, 2, 5])}, "n_items"),
        ({"n_items": np.array([5, 5, 5, 3]), "shown": np.array([[0, 1, 2]] * 3 + [[0, 1, 4]])}, "shown"),
        ({"context": np.zeros((3, 2))}, "context"),
        ({"context": np.array([[np.inf, 0.0]] * 4)}, "context"),
        ({"extras": {"bad": np.zeros(2)}}, "extras"),
    ],
)
def test_bad_fields_are_named(change, field):
    good = _log()
    kw = {"items": good.items, "shown": good.shown, "clicks": good.clicks, "context": good.context}
    kw.update(change)
    with pytest.raises(ProblemError, match=field):
        ListLog(**kw)


def test_save_load_round_trip(tmp_path):
    log = _log()
    shown = log.shown.copy()
    shown[1] = [2, 0, 1]
    log = ListLog(log.items, shown, log.clicks, np.array([5, 4, 5, 5]), log.context, dict(log.extras))
    back = ListLog.load(log.save(tmp_path / "a.npz"))
    for name in ("items", "shown", "clicks", "n_items", "context"):
        np.testing.assert_array_equal(getattr(back, name), getattr(log, name))
    np.testing.assert_array_equal(back.extras["seq"], log.extras["seq"])
    assert [p.name for p in tmp_path.iterdir()] == ["a.npz"]  # no temporary file left


def test_refuses_foreign_corrupt_and_newer_files(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ProblemError, match="corrupt"):
        ListLog.load(tmp_path / "junk.npz")
    np.savez(tmp_path / "other.npz", items=np.zeros((1, 2, 1)))
    with pytest.raises(ProblemError, match="__schema__"):
        ListLog.load(tmp_path / "other.npz")
    log = _log()
    schema = np.frombuffer(json.dumps({"format": "mixrank.listlog", "version": 99}).encode(), np.uint8)
    np.savez(tmp_path / "new.npz", items=log.items, shown=log.shown, clicks=log.clicks, __schema__=schema)
    with pytest.raises(ProblemError, match="version"):
        ListLog.load(tmp_path / "new.npz")
    with pytest.raises(ProblemError, match="does not exist"):
        ListLog.load(tmp_path / "missing.npz")


def test_split_concat_and_slices_keep_rows_together():
    log = _log(r=10)
    a, b = log.split(0.3, seed=1)
    assert len(a) + len(b) == 10 and len(b) == 3
    joined = ListLog.concat([a, b])
    rows = {tuple(x) for x in joined.shown}
    assert rows == {tuple(x) for x in log.shown}
    one = log[2]
    np.testing.assert_array_equal(one.context[0], log.context[2])
    np.testing.assert_array_equal(one.extras["seq"][0], log.extras["seq"][2])
    short = ListLog(np.zeros((1, 3, 2)), [[0, 1, 2]], [[1, 0, 0]], context=np.zeros((1, 3)), extras={"seq": np.zeros((1, 7))})
    padded = ListLog.concat([log, short])
    assert padded.n_candidates == 5 and padded.n_items[-1] == 3
