"""Numba caches a kernel module by its own source file only, so kernels that embed compiled code from another
file (the plan check, the clock) record that file's SHA-256: an edit there must be matched by updating the
record, which edits the kernel module and so makes Numba compile it again instead of serving a stale copy."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from solvers import _beam_kernels, _bnb_kernels

ROOT = Path(__file__).resolve().parent.parent


def sha256(relative: str) -> str:
    return hashlib.sha256((ROOT / relative).read_bytes().replace(b"\r\n", b"\n")).hexdigest()


@pytest.mark.parametrize("module", [_beam_kernels, _bnb_kernels], ids=lambda m: m.__name__)
def test_kernel_dependencies_are_recorded(module):
    for relative, recorded in module.DEPENDENCY_SHA256.items():
        assert sha256(relative) == recorded, (
            f"{relative} changed: set {module.__name__}.DEPENDENCY_SHA256[{relative!r}] to {sha256(relative)!r} "
            "(editing that module makes Numba recompile its kernels with the new code)")


def test_every_embedded_module_is_recorded():
    # The kernel modules' own imports of compiled code from elsewhere in the package.
    for module, deps in ((_beam_kernels, {"mixrank/_fastcheck.py", "solvers/_clock.py"}),
                         (_bnb_kernels, {"solvers/_clock.py"})):
        source = Path(module.__file__).read_text()
        imported = {line.split()[1].replace(".", "/") + ".py" for line in source.splitlines()
                    if line.startswith("from mixrank") or line.startswith("from solvers")}
        assert imported == deps == set(module.DEPENDENCY_SHA256)
