"""Numba's on-disk cache, keyed by every source file a kernel embeds (installed on import).

Numba keys a cached kernel on its own source file only: a kernel that calls a
kernel of another file keeps its stale machine code after an edit there. This
module fixes that once, mechanically: the freshness stamp of a kernel in
``mixrank`` or ``solvers`` is the SHA-256 of its file and of every ``mixrank``
or ``solvers`` module that file imports from, transitively (the import lines
at the top of each file). An edit anywhere in that closure changes the stamp,
and Numba compiles again instead of loading the old code. Kernels elsewhere
are cached as Numba always does.

A cache index names the types of its kernels' arguments, our named tuples among
them, by module and class. Where a class moved or was renamed since the cache was
written (an upgrade, a refactor), Numba's unpickling of the index raises
``ModuleNotFoundError`` or ``AttributeError`` before it reads the stamp, and the
kernel's first call fails. :func:`install` makes such an index count as stale:
Numba compiles again and writes a new one, as it does for any stale stamp.

``mixrank._fastcheck`` and ``solvers/__init__`` import this module before any
kernel is defined: Numba picks a kernel's cache locator when it is decorated.
"""

from __future__ import annotations

import functools
import hashlib
import re
from pathlib import Path

from numba.core import caching

__all__ = ["closure_files", "closure_digest", "install", "ROOT", "PACKAGES"]

#: The folder that holds the ``mixrank`` and ``solvers`` packages.
ROOT = Path(__file__).resolve().parent.parent
#: The packages whose kernels are stamped by their import closure (and whose imports are followed).
PACKAGES = ("mixrank", "solvers")


def _module_file(root: Path, module: str) -> Path | None:
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def closure_files(path: Path, root: Path | None = None, packages: tuple[str, ...] | None = None) -> list[Path]:
    """``path`` and the package modules it imports from, transitively, sorted.

    Top-level ``from pkg.mod import name`` lines count ``pkg/mod.py`` (or
    ``pkg/mod/__init__.py``), and ``pkg/mod/name.py`` too where ``name`` is a
    submodule; ``root`` and ``packages`` default to :data:`ROOT` and :data:`PACKAGES`.
    """
    root = ROOT if root is None else root
    packages = PACKAGES if packages is None else packages
    pattern = re.compile(r"^from\s+((?:" + "|".join(map(re.escape, packages)) + r")(?:\.\w+)*)\s+import\s+(.+)$",
                         re.MULTILINE)
    seen = {Path(path).resolve()}
    todo = list(seen)
    while todo:
        text = todo.pop().read_text(encoding="utf-8")
        for module, names in pattern.findall(text):
            found = [_module_file(root, module)]
            for name in re.findall(r"\w+", names.split("#")[0]):
                found.append(_module_file(root, f"{module}.{name}"))
            for f in found:
                if f is not None and f.resolve() not in seen:
                    seen.add(f.resolve())
                    todo.append(f.resolve())
    return sorted(seen)


@functools.cache
def _digest(files: tuple[str, ...], stamps: tuple, root: str) -> str:
    h = hashlib.sha256()
    for f in map(Path, files):
        h.update(str(f.relative_to(root) if f.is_relative_to(root) else f.name).encode())
        h.update(f.read_bytes().replace(b"\r\n", b"\n"))
    return h.hexdigest()


def closure_digest(path: str | Path) -> str:
    """SHA-256 of ``path``'s import closure (:func:`closure_files`): the stamp of its kernels' cache.

    Memoized on the files' modification times and sizes, as Numba's own stamp is.
    """
    files = closure_files(Path(path))
    stamps = tuple((f.stat().st_mtime_ns, f.stat().st_size) for f in files)
    return _digest(tuple(map(str, files)), stamps, str(ROOT))


def _ours(py_file: str) -> bool:
    try:
        rel = Path(py_file).resolve().relative_to(ROOT)
    except ValueError:
        return False
    return rel.parts[0] in PACKAGES


class _ClosureStamp:
    """Mixin: a kernel file's stamp is its import closure's digest, not its own file's."""

    def get_source_stamp(self):
        return closure_digest(self._py_file)

    @classmethod
    def from_function(cls, py_func, py_file):
        if not _ours(py_file):
            return None
        return super().from_function(py_func, py_file)


class UserProvidedClosureLocator(_ClosureStamp, caching.UserProvidedCacheLocator):
    """``NUMBA_CACHE_DIR`` set: the cache lives there."""


class InTreeClosureLocator(_ClosureStamp, caching.InTreeCacheLocator):
    """The cache lives in ``__pycache__`` beside the source."""


class UserWideClosureLocator(_ClosureStamp, caching.UserWideCacheLocator):
    """The source tree is read-only: the cache lives in the user's cache folder."""


_NUMBA_LOAD_INDEX = caching.IndexDataCacheFile._load_index


def _load_index_or_stale(self):
    """Numba's index load, where an index whose types no longer import counts as stale (``{}``)."""
    try:
        return _NUMBA_LOAD_INDEX(self)
    except (ImportError, AttributeError):
        return {}


def install() -> None:
    """Put the closure-stamped locators first in Numba's list, and make an index that no longer
    unpickles a stale one (idempotent)."""
    ours = [UserProvidedClosureLocator, InTreeClosureLocator, UserWideClosureLocator]
    classes = caching.CacheImpl._locator_classes
    if classes[:3] != ours:
        classes[:] = ours + [c for c in classes if c not in ours]
    caching.IndexDataCacheFile._load_index = _load_index_or_stale


install()
