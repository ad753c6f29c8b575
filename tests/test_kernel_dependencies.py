"""Numba caches a kernel module by its own source file only, so kernels that embed compiled code from another
file (the plan check, the clock, the relaxation engine) record the SHA-256 of every such file, transitively: an
edit there must be matched by updating the record, which edits the kernel module and so makes Numba compile it
again instead of serving a stale copy."""

from __future__ import annotations

import hashlib
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
KERNEL_MODULES = ["solvers._beam_kernels", "solvers._bnb_kernels", "solvers._core.prices", "solvers._core.split"]
COMPILED = ("solvers/_clock.py", "solvers/_core/", "mixrank/_fastcheck.py")  # files that hold kernels


def sha256(relative: str) -> str:
    return hashlib.sha256((ROOT / relative).read_bytes().replace(b"\r\n", b"\n")).hexdigest()


def embedded(relative: str) -> set[str]:
    """The kernel files ``relative`` imports from, transitively."""
    out: set[str] = set()
    todo = [relative]
    while todo:
        source = (ROOT / todo.pop()).read_text()
        for line in source.splitlines():
            if line.startswith(("from mixrank", "from solvers")):
                dep = line.split()[1].replace(".", "/") + ".py"
                if dep.startswith(COMPILED) and dep not in out:
                    out.add(dep)
                    todo.append(dep)
    return out


@pytest.mark.parametrize("name", KERNEL_MODULES)
def test_kernel_dependencies_are_recorded(name):
    module = importlib.import_module(name)
    for relative, recorded in module.DEPENDENCY_SHA256.items():
        assert sha256(relative) == recorded, (
            f"{relative} changed: set {name}.DEPENDENCY_SHA256[{relative!r}] to {sha256(relative)!r} "
            "(editing that module makes Numba recompile its kernels with the new code)")


@pytest.mark.parametrize("name", KERNEL_MODULES)
def test_every_embedded_module_is_recorded(name):
    module = importlib.import_module(name)
    relative = name.replace(".", "/") + ".py"
    assert embedded(relative) == set(module.DEPENDENCY_SHA256)
