"""The parametrised generator and the tight / noisy / stress families (mixrank.synthetic.stress)."""

import hashlib

import numpy as np
import pytest
from bruteforce import brute_force

import mixrank
from mixrank import ProblemError, Status
from mixrank.synthetic import FAMILIES, STRESS_FAMILIES, Knobs, generate, instance


def _digest(p) -> str:
    """A digest of every field of a problem (arrays by bytes, rules and history by value)."""
    h = hashlib.sha256()
    for a in (p.values, p.types, p.pv_weights, p.allowed):
        h.update(np.ascontiguousarray(a).tobytes())
    h.update(repr([(r.min_gap, r.max_share, r.min_share, r.max_count) for r in p.rules]).encode())
    h.update(repr((p.min_gap_any, p.history)).encode())
    return h.hexdigest()[:16]


def test_base_families_are_unchanged():
    # Digests of seeds 0-2 x every variant, taken before the generated families were added.
    want = {"tiny": "7fc2307639186eb0", "small": "f03e652bcfd4c79d", "device": "7ca57744469b172c",
            "large": "26592dcc5da93496"}
    got = {}
    for family in want:
        h = hashlib.sha256()
        for seed in range(3):
            for history in (False, True):
                for min_share in (False, True):
                    h.update(_digest(instance(family, seed, history, min_share)).encode())
        got[family] = h.hexdigest()[:16]
    assert got == want


def test_generated_families_are_registered_at_every_size():
    for kind in ("tight", "noisy", "stress"):
        for size, shape in (("tiny", (6, 8, 2)), ("small", (12, 20, 3)), ("device", (30, 50, 3)),
                            ("large", (60, 100, 4))):
            name = f"{kind}-{size}"
            assert FAMILIES[name] is STRESS_FAMILIES[name]
            p = instance(name, 4, history=True, min_share=True)
            assert (p.n_cards, p.n_slots, p.n_types) == shape
            assert p == instance(name, 4, history=True, min_share=True)
            assert p != instance(name, 5, history=True, min_share=True)
            plain = instance(name, 4)
            assert np.array_equal(plain.values, p.values) and np.array_equal(plain.allowed, p.allowed)


def test_families_do_not_share_instances():
    a, b, c = (instance(f"{kind}-device", 0) for kind in ("tight", "noisy", "stress"))
    assert not np.array_equal(a.values, b.values) and not np.array_equal(a.values, c.values)
    assert not np.array_equal(generate(30, 50, 3, seed=0).values, a.values)


def test_stress_knobs_are_drawn_widely_per_seed():
    knobs = [STRESS_FAMILIES["stress-device"].knobs(s) for s in range(100)]
    caps = [k.max_share for k in knobs if k.max_share is not None]
    assert 10 <= sum(k.max_share is None for k in knobs) <= 40  # loose caps now and then
    assert min(c[0] for c in caps) < 0.05 and max(c[1] for c in caps) > 0.35
    for name, low, high in (("value_noise", 0.03, 0.27), ("quality_tail", 0.2, 0.9), ("gain_spread", 1.3, 3.7),
                            ("depth_drift", 0.1, 0.7), ("negative_share", 0.15, 0.7), ("mask_density", 0.75, 0.95)):
        drawn = [getattr(k, name) for k in knobs]
        assert min(drawn) < low and max(drawn) > high, name
    assert len({k.gap_range for k in knobs}) >= 8


def test_knobs_shape_the_instances():
    def draw(**kw):
        return [generate(30, 50, 3, Knobs(**kw), seed=s) for s in range(6)]

    for share in (0.1, 0.5, 0.8):
        got = np.mean([(p.values < 0).mean() for p in draw(negative_share=share)])
        assert abs(got - share) < 0.06, (share, got)
    for density in (0.7, 1.0):
        got = np.mean([p.allowed.mean() for p in draw(mask_density=density)])
        assert abs(got - density) < 0.02
    caps = np.array([[r.max_share for r in p.rules] for p in draw(max_share=(0.06, 0.1))])
    assert caps.min() >= 0.06 and caps.max() <= 0.1
    # Tight caps admit a handful of top-slot cards; loose ones many more.
    pv = draw()[0].pv_weights
    assert 0.06 * pv.sum() / pv[0] < 2.0

    def spread(p):  # best card's value over the median card's, per slot
        top = np.sort(p.values, axis=0)
        return np.median((top[-1] - top[len(top) // 2]) / np.abs(top[len(top) // 2]).clip(1e-3))

    heavy = np.median([spread(p) for p in draw(quality_tail=1.0, negative_share=0.0)])
    light = np.median([spread(p) for p in draw(quality_tail=0.1, negative_share=0.0)])
    assert heavy > 3 * light
    quiet, noisy = draw(value_noise=0.0), draw(value_noise=0.3)
    # Without noise a card's values are smooth over depth: neighbouring slots differ little.
    def roughness(ps):
        return np.mean([np.median(np.abs(np.diff(p.values, axis=1))) for p in ps])

    assert roughness(noisy) > 2 * roughness(quiet)
    with_counts = draw(count_cap_share=1.0)
    assert all(r.max_count is not None for p in with_counts for r in p.rules)
    assert all(r.max_count is None for p in draw(count_cap_share=0.0) for r in p.rules)
    gaps = {r.min_gap for p in draw(gap_range=(3, 4), gap_any_range=(2, 2)) for r in p.rules}
    assert gaps <= {3, 4} and all(p.min_gap_any == 2 for p in draw(gap_any_range=(2, 2)))


@pytest.mark.parametrize("family", ["tight-tiny", "noisy-tiny", "stress-tiny"])
def test_every_min_share_instance_is_feasible_tiny(family):
    floors = 0
    for seed in range(25):
        for history in (False, True):
            p = instance(family, seed, history=history, min_share=True)
            floors += any(r.min_share > 0 for r in p.rules)
            assert brute_force(p).optimum > -np.inf, (family, seed, history)
    assert floors >= 40


def test_every_min_share_instance_is_feasible_small():
    for family in ("tight-small", "stress-small", "noisy-small"):
        for seed in range(6):
            p = instance(family, seed, history=True, min_share=True)
            assert mixrank.solve(p, "cpsat", time_limit=20).status in (Status.OPTIMAL, Status.FEASIBLE)


@pytest.mark.parametrize("family", sorted(STRESS_FAMILIES))
def test_every_seed_gives_a_valid_instance(family):
    for seed in range(40):
        p = instance(family, seed, history=seed % 2 == 1, min_share=seed % 4 >= 2)
        assert np.isfinite(p.values).all() and (p.values < 0).any()
        assert all(0.0 <= r.min_share <= r.max_share <= 1.0 for r in p.rules)


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"value_noise": -0.1}, r"Knobs.value_noise must be a number in \[0, 1\]; got -0.1"),
        ({"value_noise": True}, r"Knobs.value_noise must be a number in \[0, 1\]; got True"),
        ({"quality_tail": 3.0}, r"Knobs.quality_tail must be a number in \[0, 2\]; got 3.0"),
        ({"gain_spread": 0.5}, r"Knobs.gain_spread must be a number in \[1, 10\]; got 0.5"),
        ({"depth_drift": float("nan")}, r"Knobs.depth_drift must be a number in \[0, 2\]; got nan"),
        ({"negative_share": 1.0}, r"Knobs.negative_share must be a number in \[0, 0.95\]; got 1.0"),
        ({"mask_density": 0.0}, r"Knobs.mask_density must be a number in \(0, 1\]; got 0.0"),
        ({"count_cap_share": "x"}, r"Knobs.count_cap_share must be a number in \[0, 1\]; got 'x'"),
        ({"max_share": (0.3, 0.1)}, r"Knobs.max_share must be None or a pair \(low, high\) .*; got \(0.3, 0.1\)"),
        ({"max_share": (0.1, 0.2, 0.3)}, r"Knobs.max_share must be None or a pair"),
        ({"max_share": (0.0, 0.3)}, r"Knobs.max_share must be None or a pair"),
        ({"max_share": 0.3}, r"Knobs.max_share must be None or a pair"),
        ({"gap_range": (0, 3)}, r"Knobs.gap_range must be a pair \(low, high\) of ints .*; got \(0, 3\)"),
        ({"gap_any_range": (2.0, 3)}, r"Knobs.gap_any_range must be a pair"),
    ],
)
def test_knobs_refuse_bad_values(kw, match):
    with pytest.raises(ProblemError, match=match):
        Knobs(**kw)


@pytest.mark.parametrize(
    "args, kw, match",
    [
        ((0, 5, 1), {}, "n_cards must be an int >= 1; got 0"),
        ((3, 5, 4), {}, "n_cards must be >= n_types"),
        ((3, 0, 1), {}, "n_slots must be an int >= 1; got 0"),
        ((3, 5, 1.0), {}, r"n_types must be an int >= 1; got 1.0"),
        ((3, 5, 1), {"knobs": {"value_noise": 0.1}}, "knobs must be a Knobs or None; got dict"),
        ((3, 5, 1), {"seed": -1}, "seed must be an int >= 0; got -1"),
        ((3, 5, 1), {"min_share": 1}, "min_share must be True or False; got 1"),
    ],
)
def test_generate_refuses_bad_arguments(args, kw, match):
    with pytest.raises(ProblemError, match=match):
        generate(*args, **kw)


def test_generate_is_a_pure_function_of_its_arguments():
    knobs = Knobs(max_share=(0.06, 0.3), value_noise=0.2, quality_tail=0.8, depth_drift=0.5)
    a = generate(12, 20, 3, knobs, seed=7, history=True, min_share=True)
    assert a == generate(12, 20, 3, knobs, seed=7, history=True, min_share=True)
    assert a != generate(12, 20, 3, knobs, seed=8, history=True, min_share=True)
    assert a != generate(12, 20, 3, Knobs(value_noise=0.2), seed=7, history=True, min_share=True)
    assert Knobs().as_dict()["gap_range"] == [2, 6]
    # Pairs may come as lists (e.g. from JSON): the same knobs, the same instance.
    listed = Knobs(**{**knobs.as_dict(), "gap_range": [2, 6]})
    assert listed == knobs and listed.max_share == (0.06, 0.3)
    assert generate(12, 20, 3, listed, seed=7, history=True, min_share=True) == a


def test_the_command_line_takes_the_generated_families(tmp_path):
    from mixrank.cli import build_parser, main

    args = build_parser().parse_args(["bench", "--family", "stress-device", "--seeds", "0"])
    assert args.family == "stress-device"
    out = tmp_path / "p.json"
    assert main(["gen", "tight-small", "--seed", "3", "--min-share", "-o", str(out)]) == 0
    assert mixrank.MixProblem.load(out) == instance("tight-small", 3, min_share=True)


def test_bench_stress_runs_and_writes_its_results(tmp_path, capsys):
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "bench" / "bench_stress.py"
    spec = importlib.util.spec_from_file_location("bench_stress", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "b.json"
    assert bench.main(["--families", "stress-tiny", "--seeds", "0", "--variants", "plain,both",
                       "--solvers", "greedy,greedy:order=slot,cpsat", "--repeats", "1", "--skip-limit-check",
                       "--json", str(out)]) == 0
    got = json.loads(out.read_text())["families"]["stress-tiny"]
    assert got["summary"]["cpsat"]["optimal"] == 2 and got["summary"]["greedy"]["n"] == 2
    assert got["summary"]["greedy"]["max_gap"] >= 0.0 and not got["summary"]["false_claims"]
    assert "greedy:order=slot" in capsys.readouterr().out
    with pytest.raises(SystemExit, match=r"--solvers: 'width=3' is not OPTION=VALUE with an option of greedy \(order\)"):
        bench.main(["--solvers", "greedy:width=3"])
    with pytest.raises(SystemExit, match="--families: 'huge' is not a family"):
        bench.main(["--families", "huge"])
