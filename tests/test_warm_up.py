"""``warm_up()`` compiles every kernel path the solvers take on the benchmark families.

A kernel path that ``warm_up`` misses is compiled inside a user's first timed solve that
takes it (12 s for the beam's split prices on ``device`` seed 1 with an empty cache,
before this test). Each solver runs in a fresh process: warm up, record every Numba
dispatcher's signatures, solve a spread of instances, and fail on any new signature.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

CHILD = r"""
import json, sys
import numba
import mixrank
from mixrank.bench import VARIANTS
from mixrank.synthetic import instance

solver = sys.argv[1]
__import__("solvers." + solver, fromlist=["warm_up"]).warm_up()

def signatures():
    out = {}
    for name, module in list(sys.modules.items()):
        if name.startswith(("solvers", "mixrank")):
            for value in list(vars(module).values()):
                if isinstance(value, numba.core.registry.CPUDispatcher):
                    out[value.py_func.__module__ + "." + value.py_func.__qualname__] = [str(s) for s in value.signatures]
    return out

before = signatures()
for family, seeds in (("device", range(3)), ("stress-device", range(1, 3)), ("tight-device", (6,)),
                      ("small", range(3)), ("stress-small", range(3))):
    for seed in seeds:
        for variant in VARIANTS.values():
            mixrank.solve(instance(family, seed, *variant), solver=solver, time_limit=5.0)
after = signatures()
print(json.dumps({k: v for k, v in after.items() if v != before.get(k, [])}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("solver", ["beam", "bnb"])
def test_warm_up_leaves_nothing_to_compile(solver):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", CHILD, solver], capture_output=True, text=True, env=env, timeout=900)
    assert out.returncode == 0, out.stderr
    new = json.loads(out.stdout.strip().splitlines()[-1])
    assert new == {}, f"compiled after {solver}.warm_up(): {new}"


SHARED = r"""
import json, sys
import numba
import solvers.beam, solvers.bnb

solvers.beam.warm_up()
solvers.bnb.warm_up()
out = {}
for name, module in list(sys.modules.items()):
    if name.startswith("solvers._core"):
        for value in vars(module).values():
            if isinstance(value, numba.core.registry.CPUDispatcher) and value.__module__ == name:
                out[name + "." + value.py_func.__name__] = [str(s) for s in value.signatures]
print(json.dumps(out))
"""


def test_solvers_share_one_compile_of_each_core_kernel():
    """Both solvers pass ``solvers._core`` the same argument types, so each kernel is compiled once for both.

    A kernel with two signatures is compiled twice (e.g. bnb passing read-only arrays where the beam passes
    writable ones cost ~10 s of the first warm-up). Runs in a fresh process on the normal kernel cache.
    """
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", SHARED], capture_output=True, text=True, env=env, timeout=900)
    assert out.returncode == 0, out.stderr
    sigs = json.loads(out.stdout.strip().splitlines()[-1])
    assert sigs, "no solvers._core kernel was found"
    assert any(sigs.values()), "no solvers._core kernel was compiled by the warm-ups"
    multi = {k: v for k, v in sigs.items() if len(v) > 1}
    assert not multi, f"solvers._core kernels compiled for more than one signature: {multi}"
