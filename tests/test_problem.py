"""MixProblem: validation, check, objective, JSON."""

import itertools
import json

import numpy as np
import pytest
from bruteforce import brute_force, reference_violations
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import problems

from mixrank import History, InstanceFileError, MixProblem, ProblemError, TypeRule
from mixrank.synthetic import instance


def base(**kw):
    args = dict(values=np.ones((3, 4)), types=[0, 1, 0], pv_weights=[1.0, 0.8, 0.6, 0.5],
                rules=[TypeRule(min_gap=2), TypeRule()])
    args.update(kw)
    return MixProblem(**args)


# ------------------------------------------------------------------ refusals
@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(values=[[1.0, np.nan, 0, 0]] * 3), r"values must be finite; got nan at \(0, 1\)"),
        (dict(values=[[1.0, np.inf, 0, 0]] * 3), r"values must be finite; got inf"),
        (dict(values=np.ones(4)), r"values must be 2-dimensional; got shape \(4,\)"),
        (dict(values=np.ones((3, 0)), pv_weights=[]), r"values must have at least one slot"),
        (dict(values=[["a"] * 4] * 3), r"values must be an array of float64"),
        (dict(types=[0, 1]), r"types must have shape \(3,\)"),
        (dict(types=[0, 2, 0]), r"types must be in \[0, 2\) .*got 2 for card 1"),
        (dict(types=[0, -1, 0]), r"types must be in \[0, 2\)"),
        (dict(types=[0, 0.5, 0]), r"types must be integers"),
        (dict(pv_weights=[1.0, -0.1, 0.5, 0.5]), r"pv_weights must be finite and >= 0; got -0.1 at slot 1"),
        (dict(pv_weights=[1.0, np.nan, 0.5, 0.5]), r"pv_weights must be finite and >= 0; got nan"),
        (dict(pv_weights=[1.0, 0.5]), r"pv_weights must have shape \(4,\)"),
        (dict(rules=[]), r"rules must name at least one type"),
        (dict(rules=TypeRule()), r"rules must be a sequence of TypeRule"),
        (dict(rules=[TypeRule(), "x"]), r"rules\[1\] must be a TypeRule; got str"),
        (dict(min_gap_any=0), r"min_gap_any must be an int >= 1; got 0"),
        (dict(min_gap_any=1.5), r"min_gap_any must be an int >= 1; got 1.5"),
        (dict(allowed=np.ones((3, 3), bool)), r"allowed must have shape \(3, 4\)"),
        (dict(allowed=np.full((3, 4), 0.5)), r"allowed must be an array of bool"),
        (dict(history="x"), r"history must be a History or None; got str"),
        (dict(history=History(last_gap=[1])), r"history.last_gap must have one entry per type \(2\); got 1"),
        (dict(history=History(last_gap=[1, 2], pv_shown=[0.1], pv_total_shown=1.0)), r"history.pv_shown must have one entry per type"),
    ],
)
def test_problem_refuses(kw, match):
    with pytest.raises(ProblemError, match=match):
        base(**kw)


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(min_gap=0), r"TypeRule.min_gap must be an int >= 1; got 0"),
        (dict(min_gap=2.0), r"TypeRule.min_gap must be an int >= 1; got 2.0"),
        (dict(max_share=1.5), r"TypeRule.max_share must be a number in \[0, 1\]; got 1.5"),
        (dict(max_share=float("nan")), r"TypeRule.max_share must be a number in \[0, 1\]"),
        (dict(min_share=-0.1), r"TypeRule.min_share must be a number in \[0, 1\]"),
        (dict(max_share=0.2, min_share=0.3), r"TypeRule.min_share must be <= max_share \(0.2\); got 0.3"),
        (dict(max_count=-1), r"TypeRule.max_count must be an int >= 0 or None; got -1"),
        (dict(max_count=True), r"TypeRule.max_count must be an int >= 0 or None"),
    ],
)
def test_type_rule_refuses(kw, match):
    with pytest.raises(ProblemError, match=match):
        TypeRule(**kw)


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(last_gap=[0]), r"History.last_gap\[0\] must be an int >= 1 or None; got 0"),
        (dict(last_gap=5), r"History.last_gap must be a sequence"),
        (dict(last_gap_any=0), r"History.last_gap_any must be an int >= 1 or None; got 0"),
        (dict(pv_shown=[-1.0]), r"History.pv_shown\[0\] must be a finite number >= 0; got -1.0"),
        (dict(pv_shown=[1.0], pv_total_shown=0.5), r"History.pv_total_shown must be >= sum\(pv_shown\)"),
        (dict(pv_total_shown=float("inf")), r"History.pv_total_shown must be a finite number >= 0"),
    ],
)
def test_history_refuses(kw, match):
    with pytest.raises(ProblemError, match=match):
        History(**kw)


def test_errors_are_value_errors():
    with pytest.raises(ValueError):
        base(values=[[np.nan] * 4] * 3)


def test_arrays_are_read_only():
    p = base()
    with pytest.raises(ValueError):
        p.values[0, 0] = 5.0
    with pytest.raises(ValueError):
        p.arrays.share_hi[0] = 1.0


# ------------------------------------------------------------------ check / objective
def test_check_words():
    p = base(history=History(last_gap=[1, None], pv_shown=[0.0, 0.0], pv_total_shown=0.0))
    v = p.check([0, 2, -1, -1])
    assert "type 0 card at slot 0 stands 1 after the last one shown (last_gap 1); min_gap is 2" in v
    assert "type 0 cards at slots 0 and 1 stand 1 apart; min_gap is 2" in v
    assert p.check([-1, 0, 0, -1])[0] == "card 0 is used twice (slots 1 and 2)"
    q = base(rules=[TypeRule(max_share=0.1, max_count=1), TypeRule(min_share=0.5)])
    v = q.check([0, -1, 2, -1])
    assert any(s.startswith("type 0 share") and "exceeds max_share 0.1" in s for s in v)
    assert any("is below min_share 0.5" in s for s in v)
    assert "type 0 has 2 cards; max_count is 1" in v
    r = base(allowed=np.array([[False] * 4, [True] * 4, [True] * 4]))
    assert r.check([0, -1, -1, -1]) == ["card 0 is not allowed in slot 0"]


@pytest.mark.parametrize("plan, match", [([0, 1], r"shape \(4,\)"), ([0, 1, 5, -1], r"got 5 at slot 2"),
                                         ([0.5, -1, -1, -1], "integers"), ([-2, -1, -1, -1], "got -2")])
def test_check_refuses_non_plans(plan, match):
    with pytest.raises(ProblemError, match=match):
        base().check(plan)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems(max_cards=4, max_slots=5), st.data())
def test_check_agrees_with_reference(p, data):
    n, k = p.n_cards, p.n_slots
    plan = data.draw(st.lists(st.integers(-1, n - 1), min_size=k, max_size=k))
    assert (p.check(plan) == []) == (reference_violations(p, plan) == 0)
    s = [i for i, c in enumerate(plan) if c >= 0]
    assert p.objective(plan) == pytest.approx(sum(p.values[plan[i], i] for i in s))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems(max_cards=3, max_slots=4))
def test_brute_force_sees_every_feasible_plan(p):
    """Exhaustive product over all plans, filtered by check(), versus the pruned enumerator."""
    best, count = -np.inf, 0
    for plan in itertools.product(range(-1, p.n_cards), repeat=p.n_slots):
        if not p.check(plan):
            count += 1
            best = max(best, p.objective(plan))
    r = brute_force(p)
    assert r.n_feasible == count
    assert r.optimum == pytest.approx(best) if count else r.optimum == -np.inf
    for plan in r.optimal_plans:
        assert p.check(plan) == [] and p.objective(plan) == pytest.approx(best)


# ------------------------------------------------------------------ JSON
@settings(max_examples=80, deadline=None)
@given(problems(max_cards=6, max_slots=7))
def test_json_round_trip(p):
    q = MixProblem.from_json(p.to_json())
    assert q == p
    assert np.array_equal(q.values, p.values) and q.values.dtype == np.float64
    assert q.history == p.history and q.rules == p.rules


def test_json_round_trip_is_bit_exact():
    p = instance("device", 4, history=True, min_share=True)
    q = MixProblem.from_json(p.to_json())
    assert q.values.tobytes() == p.values.tobytes()
    assert q.pv_weights.tobytes() == p.pv_weights.tobytes()


def test_save_load(tmp_path):
    p = instance("small", 1, history=True)
    p.save(tmp_path / "p.json")
    assert MixProblem.load(tmp_path / "p.json") == p
    assert [f.name for f in tmp_path.iterdir()] == ["p.json"]


@pytest.mark.parametrize(
    "text, match",
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"values": []}', "integer schema_version"),
        ('{"schema_version": 99}', "newer than this mixrank reads"),
        ('{"schema_version": 1, "values": [[1]]}', "missing field"),
        ('{"schema_version": 1, "values": [[1]], "types": [0], "pv_weights": [1], "rules": [{}], "x": 1}',
         "unknown field"),
        ('{"schema_version": 1, "values": [[1]], "types": [0], "pv_weights": [1], "rules": [{"gap": 2}]}',
         "malformed"),
        ('{"schema_version": 1, "values": [[1]], "types": [3], "pv_weights": [1], "rules": [{}]}',
         r"invalid instance: types must be in"),
        ('{"schema_version": 1, "format": "other", "values": [], "types": [], "pv_weights": [], "rules": []}',
         "format must be"),
    ],
)
def test_from_json_refuses(text, match):
    with pytest.raises(InstanceFileError, match=match):
        MixProblem.from_json(text)


def test_load_names_the_file(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"schema_version": 2}))
    with pytest.raises(InstanceFileError, match="bad.json.*newer"):
        MixProblem.load(path)
    with pytest.raises(InstanceFileError, match="cannot read instance file"):
        MixProblem.load(tmp_path / "missing.json")


def test_saved_files_have_the_usual_permissions(tmp_path):
    import os

    mask = os.umask(0)
    os.umask(mask)
    path = tmp_path / "p.json"
    instance("tiny", 0).save(path)
    assert (path.stat().st_mode & 0o777) == (0o666 & ~mask)
    assert [f.name for f in tmp_path.iterdir()] == ["p.json"]  # no temporary file left behind


# ------------------------------------------------------------------ pickling (process pools)
@given(problems(), st.booleans())
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_pickle_round_trip_keeps_the_problem(p, compiled):
    import pickle

    if compiled:
        p.arrays  # noqa: B018 - a cached layout must not travel, nor change the copy
    back = pickle.loads(pickle.dumps(p))
    assert back == p and back.to_json() == p.to_json() and "arrays" not in back.__dict__
    for name in ("values", "types", "pv_weights", "allowed"):
        a, b = getattr(p, name), getattr(back, name)
        if a is None:
            assert b is None
            continue
        assert b.dtype == a.dtype and b.shape == a.shape and np.array_equal(a, b)
        assert not b.flags.writeable  # read-only, like a validated problem's arrays
    plan = np.full(p.n_slots, -1)
    plan[: min(p.n_cards, p.n_slots)] = np.arange(min(p.n_cards, p.n_slots))
    assert back.check(plan) == p.check(plan)
    for x, y in zip(back.arrays, p.arrays):
        assert np.array_equal(x, y)
