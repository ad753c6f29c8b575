"""Issue 16's reproductions at the edges (the problem model, the solve API, CP-SAT): each holds its fix.

Every test names the item of issue 16 it reproduces. Exact answers are compared with
brute force or with the other exact solver, never with a constant copied from a run.
"""

import json
import math
import os
import signal
import threading
import time

import numpy as np
import pytest
from bruteforce import brute_force

import mixrank
from mixrank import History, InstanceFileError, MixProblem, ProblemError, SolverError, Status, TypeRule
from mixrank.synthetic import instance


def rebuilt(p, **changes):
    fields = dict(values=p.values, types=p.types, pv_weights=p.pv_weights, rules=p.rules,
                  min_gap_any=p.min_gap_any, allowed=p.allowed, history=p.history)
    fields.update(changes)
    return MixProblem(**fields)


def cpsat(p, **kw):
    return mixrank.solve(p, solver="cpsat", **kw)


def assert_true_claims(p, sol, optimum):
    """Every claim of ``sol`` holds against the known ``optimum`` (to the documented 1e-9 relative)."""
    tol = 1e-9 * max(abs(optimum), 1e-300)
    if sol.has_plan:
        assert p.check(sol.assignment) == []
        assert sol.objective <= optimum + tol
    assert sol.bound >= optimum - tol, f"bound {sol.bound} is below the optimum {optimum}"
    if sol.status is Status.OPTIMAL:
        assert sol.objective == pytest.approx(optimum, rel=1e-9, abs=0)
    if sol.status is Status.INFEASIBLE:
        assert optimum == -math.inf


# ------------------------------------------------------------ item 1: no bound before the search
def test_item1_a_search_stopped_before_it_began_claims_no_bound():
    p = instance("tiny", 0)
    optimum = brute_force(p).optimum
    sol = cpsat(p, time_limit=1e-9)
    assert sol.status is Status.UNKNOWN and sol.bound == math.inf
    assert_true_claims(p, sol, optimum)


# ------------------------------------------------------------ item 2: K > 1000
def test_item2_share_cap_with_a_thousand_slots_keeps_a_plan_on_the_cap():
    k = 1001
    pv = np.zeros(k)
    pv[:2] = 1.0
    values = np.full((2, k), -1.0)
    values[:, :2] = 10.0
    p = MixProblem(values=values, types=[0, 0], pv_weights=pv, rules=[TypeRule(max_share=0.5)])
    plan = np.full(k, -1)
    plan[0] = 0
    assert p.check(plan) == [] and p.objective(plan) == 10.0  # the plan the issue names
    sol = cpsat(p)
    assert sol.status is Status.OPTIMAL and sol.objective == 10.0


def test_item2_min_share_one_with_a_thousand_slots_is_feasible():
    k = 1001
    pv = np.zeros(k)
    pv[0] = 1.0
    p = MixProblem(values=np.ones((1, k)), types=[0], pv_weights=pv, rules=[TypeRule(min_share=1.0)])
    sol = cpsat(p)
    assert sol.status is Status.OPTIMAL and sol.assignment[0] == 0
    assert sol.objective == pytest.approx(mixrank.solve(p, solver="bnb").objective)


# ------------------------------------------------------------ item 4 and 8: magnitudes
def test_item4_a_card_worth_minus_1e12_gives_no_false_optimal_or_bound():
    p = instance("small", 1)
    values = p.values.copy()
    values[0, 0] = -1e12
    q = rebuilt(p, values=values)
    # The card is never worth taking, so the optimum is that of the problem without its pair.
    allowed = np.ones(q.values.shape, bool) if q.allowed is None else q.allowed.copy()
    allowed[0, 0] = False
    reference = cpsat(rebuilt(p, allowed=allowed))
    assert reference.status is Status.OPTIMAL
    sol = cpsat(q)
    assert_true_claims(q, sol, reference.objective)
    assert sol.status is Status.OPTIMAL and sol.stats["raised_values"] == 1  # raised to a floor, not a scale


def test_item4_a_card_worth_minus_1e12_that_a_floor_forces_in_keeps_every_claim():
    # The type-1 card must be placed (min_share), so the -1e12 is in every plan: the raised floor must
    # not make cpsat claim a bound below the real optimum, nor OPTIMAL for a plan it cannot prove.
    values = np.array([[3.0, -0.5, 2.0, -0.5], [-0.5, 2.5, -0.5, -0.5], [-0.5] * 4,
                       [-1e12, -1e12 - 4096, -1e12, -1e12]])  # most negatives small: the -1e12 are raised
    p = MixProblem(values=values, types=[0, 0, 0, 1], pv_weights=np.ones(4),
                   rules=[TypeRule(min_gap=2), TypeRule(min_share=0.25)])
    optimum = brute_force(p).optimum
    sol = cpsat(p)
    assert sol.has_plan and sol.stats["raised_values"] == 4
    assert_true_claims(p, sol, optimum)


@pytest.mark.parametrize("scale", [1e-300, 1e-12, 1e-9, 1e12, 1e100])
def test_item4_scaled_values_keep_every_claim(scale):
    p = instance("tiny", 3, history=True, min_share=True)
    optimum = brute_force(p).optimum
    q = rebuilt(p, values=p.values * scale)
    sol = cpsat(q)
    assert sol.status is Status.OPTIMAL
    assert sol.objective == pytest.approx(optimum * scale, rel=1e-9, abs=0)
    assert_true_claims(q, sol, optimum * scale)


def test_item8_tiny_pv_weights_do_not_crash_cpsat():
    p = instance("tiny", 2, min_share=True)
    q = rebuilt(p, pv_weights=p.pv_weights * 1e-300)
    # Scaling every PV by the same factor keeps every share; brute force on the original is the reference.
    sol = cpsat(q)
    assert sol.status is Status.OPTIMAL
    assert sol.objective == pytest.approx(brute_force(p).optimum, rel=1e-9, abs=0)


def test_item8_huge_pv_weights_are_refused():
    with pytest.raises(ProblemError, match=r"pv_weights \(with history.pv_total_shown\) must sum to at most"):
        MixProblem(values=np.ones((1, 2)), types=[0], pv_weights=[1e308, 1e308], rules=[TypeRule(max_share=0.0)])


def test_item8_huge_values_are_refused():
    with pytest.raises(ProblemError, match=r"values must be finite with \|value\| <= 1e\+150; got 1e\+200 at \(0, 1\)"):
        MixProblem(values=[[1.0, 1e200]], types=[0], pv_weights=[1, 1], rules=[TypeRule()])


# ------------------------------------------------------------ item 7: ranges checked first
@pytest.mark.parametrize("kw, match", [
    ({"seed": 2**31}, r"seed must be an int >= 0 and <= 2147483647"),
    ({"num_workers": 10**6}, r"num_workers must be an int in \[1, 256\]; got 1000000"),
])
def test_item7_cpsat_out_of_range_options_are_refused_before_any_work(kw, match, monkeypatch):
    import solvers.cpsat as module

    def no_build(*args, **kwargs):
        raise AssertionError("the model was built before the options were checked")

    monkeypatch.setattr(module, "_build", no_build)
    with pytest.raises(SolverError, match=match):
        cpsat(instance("tiny", 0), **kw)


@pytest.mark.parametrize("solver", ["greedy", "beam", "bnb", "cpsat"])
@pytest.mark.parametrize("seed", [2**31, 2**63, -1, True, 1.0])
def test_item7_every_solver_refuses_a_seed_out_of_range(solver, seed):
    with pytest.raises(SolverError, match=r"seed must be an int >= 0 and <= 2147483647"):
        mixrank.solve(instance("tiny", 0), solver=solver, seed=seed)


def test_item7_numpy_seeds_in_range_are_accepted():
    p = instance("tiny", 0)
    assert mixrank.solve(p, solver="cpsat", seed=np.int64(2**31 - 1)).status is Status.OPTIMAL


def test_item7_cpsat_seed_checked_when_called_directly():
    from solvers.cpsat import solve_cpsat

    with pytest.raises(SolverError, match=r"seed must be an int in \[0, 2147483647\] for cpsat"):
        solve_cpsat(instance("tiny", 0), seed=2**31)


# ------------------------------------------------------------ item 8: accepted, then wrong
@pytest.mark.parametrize("gap", [10**30, 10**400])
def test_item8_huge_gaps_mean_one_card_per_page(gap):
    p = MixProblem(values=[[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]], types=[0, 0], pv_weights=[1, 1, 1],
                   rules=[TypeRule(min_gap=gap)])
    assert p.check([0, -1, 1]) == [f"type 0 cards at slots 0 and 2 stand 2 apart; min_gap is {gap}"]
    assert p.check([-1, -1, 0]) == []
    for solver in ("greedy", "beam", "bnb", "cpsat"):
        sol = mixrank.solve(p, solver=solver)
        assert p.check(sol.assignment) == [] and (sol.assignment >= 0).sum() <= 1, solver
    assert cpsat(p).objective == 3.0


def test_item8_huge_gaps_with_history_keep_their_meaning():
    # The last type-0 card stands 10**30 - 1 slots before slot 0 and the gap is 10**30: slots 1.. are open.
    p = MixProblem(values=[[5.0, 2.0, 1.0]], types=[0], pv_weights=[1, 1, 1], rules=[TypeRule(min_gap=10**30)],
                   history=History(last_gap=[10**30 - 1]))
    assert p.check([0, -1, -1]) != [] and p.check([-1, 0, -1]) == []
    for solver in ("cpsat", "bnb"):
        assert mixrank.solve(p, solver=solver).assignment.tolist() == [-1, 0, -1], solver


@pytest.mark.parametrize("field, bad, match", [
    ("values", [[True, 1.0]], "values must be an array of float64"),
    ("values", [["1", "2"]], "values must be an array of float64"),
    ("values", [[1 + 2j, 1.0]], "values must be an array of float64"),
    ("values", np.array([[1 + 2j, 1.0]]), "values must be an array of float64"),
    ("values", np.array([[True, False]]), "values must be an array of float64"),
    ("values", [[10**400, 1.0]], "values must be an array of float64"),
    ("types", [True], "types must be an array of float64"),
    ("types", ["0"], "types must be an array of float64"),
    ("types", [1e300], r"types must be in \[0, 1\) \(T = len\(rules\)\); got 1e\+300 for card 0"),
    ("pv_weights", [True, 1.0], "pv_weights must be an array of float64"),
    ("pv_weights", ["1", "1"], "pv_weights must be an array of float64"),
    ("pv_weights", np.array([1 + 0j, 1.0]), "pv_weights must be an array of float64"),
])
def test_item8_bools_strings_complex_and_overflow_are_refused(field, bad, match):
    args = dict(values=[[1.0, 2.0]], types=[0], pv_weights=[1.0, 1.0], rules=[TypeRule()])
    args[field] = bad
    with pytest.raises(ProblemError, match=match):
        MixProblem(**args)


@pytest.mark.parametrize("kw, match", [
    (dict(pv_shown={0: 5.0}, pv_total_shown=5.0), r"History.pv_shown must be a sequence \(list or tuple\)"),
    (dict(last_gap={0: 3}), r"History.last_gap must be a sequence \(list or tuple\)"),
    (dict(last_gap="12"), r"History.last_gap must be a sequence"),
    (dict(pv_shown=[10**400], pv_total_shown=1.0), r"History.pv_shown\[0\] must be a finite number"),
    (dict(pv_total_shown=10**400), r"History.pv_total_shown must be a finite number"),
])
def test_item8_history_refuses_mappings_and_overflow(kw, match):
    with pytest.raises(ProblemError, match=match):
        History(**kw)


def test_item8_type_rule_share_overflow_is_refused():
    with pytest.raises(ProblemError, match=r"TypeRule.max_share must be a number in \[0, 1\]"):
        TypeRule(max_share=10**400)


@pytest.mark.parametrize("plan, match", [
    (np.array([2**64 - 1, 2**64 - 1], dtype=np.uint64), r"got 18446744073709551615 at slot 0"),
    (np.array([1e30, -1.0]), r"got 1e\+30 at slot 0"),
    (np.array([-1, 2**63 - 1], dtype=np.int64), r"got 9223372036854775807 at slot 1"),
])
def test_item8_check_refuses_plans_that_would_wrap_around(plan, match):
    p = MixProblem(values=[[1.0, 2.0]], types=[0], pv_weights=[1, 1], rules=[TypeRule()])
    with pytest.raises(ProblemError, match=match):
        p.check(plan)
    assert p.check(np.array([0, 2**64 - 1], dtype=np.uint64)[:1].tolist() + [-1]) == []


# ------------------------------------------------------------ item 11: loaders and save
def test_item11_deeply_nested_json_is_an_instance_file_error():
    with pytest.raises(InstanceFileError, match="nested too deeply"):
        MixProblem.from_json("[" * 100_000 + "]" * 100_000)


def test_item11_huge_integer_is_named():
    text = json.dumps({"schema_version": 1, "values": [[1.0]], "types": [0], "pv_weights": [1.0], "rules": [{}]})
    with pytest.raises(InstanceFileError, match="values must be an array of float64"):
        MixProblem.from_json(text.replace("[[1.0]]", "[[" + "1" * 400 + "]]"))
    with pytest.raises(InstanceFileError, match="instance is not valid JSON|pv_weights"):
        MixProblem.from_json(text.replace('"pv_weights": [1.0]', '"pv_weights": [' + "9" * 5000 + "]"))


def test_item11_ragged_allowed_names_the_field():
    d = instance("tiny", 0).to_dict()
    d["allowed"] = [[True] * 8] * 5 + [[True] * 7]
    with pytest.raises(InstanceFileError, match="allowed must be an"):
        MixProblem.from_dict(d)
    with pytest.raises(ProblemError, match="allowed must be an"):
        rebuilt(instance("tiny", 0), allowed=d["allowed"])


def test_item11_save_writes_through_a_symlink(tmp_path):
    target = tmp_path / "real.json"
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    p = instance("tiny", 1)
    p.save(link)
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert MixProblem.load(target) == p
    assert sorted(f.name for f in tmp_path.iterdir()) == ["link.json", "real.json"]


def test_item11_a_failed_save_names_the_users_path(tmp_path):
    path = tmp_path / "missing" / "p.json"
    with pytest.raises(OSError, match="missing/p.json") as info:
        instance("tiny", 1).save(path)
    assert ".tmp" not in str(info.value) and info.value.filename == str(path)


# ------------------------------------------------------------ items 5 and 9: Ctrl-C and time limits
def big_problem(n=200, k=300, t_count=8, seed=0):
    rng = np.random.default_rng(seed)
    return MixProblem(values=rng.normal(0.5, 0.3, (n, k)), types=rng.integers(0, t_count, n),
                      pv_weights=0.97 ** np.arange(k), min_gap_any=2,
                      rules=[TypeRule(min_gap=int(rng.integers(2, 6)), max_share=0.3) for _ in range(t_count)])


def test_item5_ctrl_c_stops_cpsat_and_propagates():
    p = big_problem()
    p.arrays  # noqa: B018 - compiled before the clock starts
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach the main thread only")
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            cpsat(p)  # would search for minutes: it must not come back with a result
    finally:
        timer.cancel()


def ctrl_c_after(delay: float, fired: list) -> threading.Timer:
    """A started timer that delivers SIGINT to the main thread as Ctrl-C does, noting when in ``fired``."""
    def press():
        fired.append(time.perf_counter())
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

    timer = threading.Timer(delay, press)
    timer.start()
    return timer


def test_item5_ctrl_c_stops_bnb_promptly_and_propagates():
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach the main thread only")
    p = instance("stress-large", 1)
    mixrank.solve(instance("tiny", 0), solver="bnb")  # kernels loaded before the clock starts
    fired: list = []
    timer = ctrl_c_after(0.5, fired)
    try:
        with pytest.raises(KeyboardInterrupt):
            # width=0: one search to the end, which takes minutes (over 30 s at time_limit=30); a kernel that
            # ignored Ctrl-C would raise only after it, and a stopped one must not come back with a result.
            mixrank.solve(p, solver="bnb", width=0)
        late = time.perf_counter() - fired[0]
    finally:
        timer.cancel()
    assert late < 5.0, f"KeyboardInterrupt came {late:.1f} s after Ctrl-C"  # ~1 ms; a generous margin
    # The solver works on after an interrupt.
    assert mixrank.solve(instance("tiny", 0), solver="bnb").status is Status.OPTIMAL


def test_item5_ctrl_c_in_a_kernel_is_raised_after_it_stops_and_errors_pass_through():
    from solvers._common import run_stoppable

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach the main thread only")
    seen = []

    def kernel(x, stop):  # stands for a nogil kernel that reads stop where it reads its deadline
        while stop[0] == 0:
            time.sleep(0.005)
        seen.append(x)
        return x

    timer = ctrl_c_after(0.2, [])
    try:
        with pytest.raises(KeyboardInterrupt):
            run_stoppable(kernel, 7)
    finally:
        timer.cancel()
    assert seen == [7]  # the kernel saw the flag and returned before the interrupt was raised again
    assert run_stoppable(lambda a, b, stop: a + b + int(stop[0]), 2, 3) == 5

    def broken(stop):
        raise ZeroDivisionError("in the kernel")

    with pytest.raises(ZeroDivisionError, match="in the kernel"):
        run_stoppable(broken)


def test_item5_ctrl_c_in_cli_solve_with_bnb_exits_130_claiming_nothing(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "hard.json"
    instance("stress-large", 1).save(path)
    code = ("from mixrank.cli import main; "
            f"raise SystemExit(main(['solve', {str(path)!r}, '--solver', 'bnb', '--option', 'bnb.width=0']))")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        err = ""
        while "loaded in" not in err:  # the warm-up is done: the solve of the hard instance starts
            line = proc.stderr.readline()
            assert line, f"the CLI ended before solving: {err}"
            err += line
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        out, rest = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err + rest
    assert out == "" and "interrupted; no result" in rest and "Traceback" not in rest, rest


def test_item9_time_limit_stops_the_build():
    p = big_problem()
    p.arrays  # noqa: B018
    sol = cpsat(p, time_limit=1e-3)
    # Behaviour, not wall-clock: the build was stopped by the clock, and nothing is claimed.
    assert sol.status is Status.UNKNOWN and sol.bound == math.inf and sol.stats["stopped"] == "building"


# ------------------------------------------------------------ item 2: a plan that misses a cap by one ulp
def test_item2_a_plan_missing_a_cap_by_rounding_is_never_served():
    # max_share is one ulp short of letting a card in: the relaxed share row admits it, check refuses it,
    # and the tightened row must find the (here: empty) plan, without claiming more than it proved.
    max_share = 0.5 - 1e-9
    while max_share * 2.0 + 2e-9 >= 1.0:
        max_share = math.nextafter(max_share, 0.0)
    p = MixProblem(values=[[5.0, 1.0]], types=[0], pv_weights=[1.0, 1.0], rules=[TypeRule(max_share=max_share)])
    assert p.check([0, -1]) != [] and p.check([-1, 0]) != []
    sol = cpsat(p)
    assert sol.stats["phases"] == 2 and sol.assignment.tolist() == [-1, -1]
    assert_true_claims(p, sol, brute_force(p).optimum)
