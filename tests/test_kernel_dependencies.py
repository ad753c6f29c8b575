"""mixrank._kernel_cache: Numba's cache of a kernel is keyed by its file's whole import closure, so an edit to a
kernel it embeds from another file (the plan check, the clock, the relaxation engine) recompiles it instead of
serving stale machine code."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap

import numba
import pytest

from mixrank import _kernel_cache
from mixrank._kernel_cache import ROOT, closure_digest, closure_files

KERNEL_MODULES = ["mixrank._fastcheck", "solvers._core.instance", "solvers._core.local", "solvers._core.assign",
                  "solvers._beam.plan", "solvers._beam.search", "solvers._bnb_kernels", "solvers._bnb_node",
                  "solvers._core.dp", "solvers._core.gaps", "solvers._core.knapsack", "solvers._core.prices",
                  "solvers._core.reach", "solvers._core.resources", "solvers._core.split"]


def rel(paths):
    return {p.relative_to(ROOT).as_posix() for p in paths}


def test_closures_hold_every_embedded_kernel_file():
    assert {"solvers/_clock.py", "solvers/_beam/search.py", "solvers/_core/assign.py", "solvers/_core/local.py",
            "solvers/_core/instance.py"} <= rel(closure_files(ROOT / "solvers/_beam/plan.py"))
    assert {"solvers/_clock.py", "solvers/_core/dp.py", "solvers/_core/resources.py"} <= rel(
        closure_files(ROOT / "solvers/_bnb_kernels.py"))
    assert {"solvers/_core/prices.py", "solvers/_core/knapsack.py", "solvers/_core/dp.py"} <= rel(
        closure_files(ROOT / "solvers/_core/split.py"))


@pytest.mark.parametrize("name", KERNEL_MODULES)
def test_every_cached_kernel_is_stamped_by_its_closure(name):
    module = importlib.import_module(name)
    kernels = [f for f in vars(module).values()
               if isinstance(f, numba.core.registry.CPUDispatcher) and f.__module__ == name]
    assert kernels
    for f in kernels:
        locator = f._cache._impl.locator
        assert isinstance(locator, _kernel_cache._ClosureStamp), (f, type(locator))
        assert locator.get_source_stamp() == closure_digest(module.__file__)


PROBE = """
import sys
from pathlib import Path
import mixrank._kernel_cache as kc
kc.ROOT, kc.PACKAGES = Path(sys.argv[1]), ("probe",)
sys.path.insert(0, sys.argv[1])
from probe.user import twice
print(twice())
"""


def test_an_edit_to_an_embedded_kernel_recompiles_its_users(tmp_path):
    """Numba alone would serve probe.user's cached code (it watches user.py only) and print 2 after the edit."""
    pkg = tmp_path / "probe"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    dep = pkg / "dep.py"
    dep.write_text("from numba import njit\n\n\n@njit(cache=True)\ndef base():\n    return 1\n")
    (pkg / "user.py").write_text(textwrap.dedent("""\
        from numba import njit

        from probe.dep import base


        @njit(cache=True)
        def twice():
            return 2 * base()
        """))
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}

    def run():
        out = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path)], capture_output=True, text=True, env=env,
                             check=True)
        return out.stdout.split()[-1]

    assert run() == "2"
    assert run() == "2"  # from the cache
    dep.write_text(dep.read_text().replace("return 1", "return 21"))
    assert run() == "42"


MOVED = """
import sys
from pathlib import Path
import mixrank._kernel_cache as kc
kc.ROOT, kc.PACKAGES = Path(sys.argv[1]), ("probe",)
sys.path.insert(0, sys.argv[1])
from probe.user import total, Pair
print(total(Pair(20.0, 22.0)))
"""


def test_a_cache_that_names_a_moved_class_is_stale_not_an_error(tmp_path):
    """A kernel cached for a named tuple of ``probe.kinds``; the class then moves to ``probe.shapes``. Numba
    alone fails the next call (unpickling the index imports ``probe.kinds``: ModuleNotFoundError); the
    cache must count as stale and compile again."""
    pkg = tmp_path / "probe"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    kind = "from typing import NamedTuple\n\n\nclass Pair(NamedTuple):\n    a: float\n    b: float\n"
    (pkg / "kinds.py").write_text(kind)
    user = pkg / "user.py"
    user.write_text(textwrap.dedent("""\
        from numba import njit

        from probe.kinds import Pair


        @njit(cache=True)
        def total(p):
            return p.a + p.b
        """))
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}

    def run():
        out = subprocess.run([sys.executable, "-c", MOVED, str(tmp_path)], capture_output=True, text=True, env=env)
        assert out.returncode == 0, out.stderr[-2000:]
        return out.stdout.split()[-1]

    assert run() == "42.0"
    assert run() == "42.0"  # from the cache
    (pkg / "kinds.py").unlink()
    (pkg / "shapes.py").write_text(kind)
    user.write_text(user.read_text().replace("probe.kinds", "probe.shapes"))
    assert run() == "42.0"
    assert run() == "42.0"  # the new cache
