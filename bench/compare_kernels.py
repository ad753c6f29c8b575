"""Compare two versions of the beam kernel module: identical outputs, then time with a different instance per call.

For kernel speed work: a change meant to keep every result must pass the identity
check, and its speed is judged with a different instance on each call. Repeating one
instance (the easy way to time) lets the CPU's branch predictor learn it, which on
``device`` hides ~20 % of the kernel's cost and favours branchy code.

    git show HEAD:solvers/_beam_kernels.py > /tmp/old_kernels.py
    python bench/compare_kernels.py /tmp/old_kernels.py solvers/_beam_kernels.py [--no-identity] [--rounds 9]

Both files are copied into a fresh temporary folder and imported from there under
new names, so their Numba caches stay out of the package's own ``__pycache__``
(importing ``solvers/_beam_kernels.py`` under another module name would leave cache
entries there that the package cannot load). Each copy compiles once (about a minute).

Identity: ``plan_kernel``'s plans, objectives, plan count, counters, bound and flag on
160 ``device`` instances and 200 random problems (``tests/strategies.py``) under six
option sets, two of them with the local search on (skipped, and said so, when a version
has no ``ls_starts``). Time (at the solver's defaults, ``TIMED``): the median over the 80 ``device`` instances of seeds 0-19 of each
instance's median over ``--rounds`` rounds; every round visits all instances in turn
and calls the two versions one after the other, in alternating order. Options that a
version's ``plan_kernel`` takes after the deadline (newer ones, such as ``ls_starts``)
are passed as 0, and counters one version has beyond the other's must be 0.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from mixrank.arrays import KERNEL_FIELDS
from mixrank.bench import VARIANTS
from mixrank.synthetic import instance

#: (width, cards_per_type, n_out, price_iters, ls_starts) of the timing: the beam solver's defaults (a version
#: without ls_starts is timed without the local search).
TIMED = (12, 1, 1, 25, 1)
#: (width, cards_per_type, n_out, price_iters, ls_starts) of the identity check.
SETTINGS = ((32, 1, 2, 25, 0), (4, 1, 3, 7, 0), (8, 2, 2, 0, 0), (3, 3, 1, 5, 0), (12, 1, 1, 25, 1), (6, 2, 3, 9, 2))


#: plan_kernel's arguments after the problem's arrays, up to the deadline; a version with more (a newer
#: option, such as ``ls_starts``) gets 0 for each extra one: new options must keep "0 = off".
BASE_OPTIONS = 4


def _load(path: Path, name: str, folder: Path):
    if not path.is_file():
        raise SystemExit(f"{path}: no such file")
    shutil.copy(path, folder / f"{name}.py")
    module = importlib.import_module(name)
    n_params = len(inspect.signature(module.plan_kernel.py_func).parameters)
    extra = n_params - len(KERNEL_FIELDS) - BASE_OPTIONS - 1
    if extra < 0:
        raise SystemExit(f"{path}: plan_kernel takes {n_params} arguments, fewer than this script knows")
    module.extra_options = (0,) * extra
    return module


def _call(k, args, setting):
    """``k.plan_kernel`` on a problem's arrays with (width, cards_per_type, n_out, price_iters[, ls_starts]) =
    ``setting``; ``ls_starts`` (the first option after the deadline) only for a version that takes it."""
    extra = k.extra_options
    if len(setting) > BASE_OPTIONS and extra:
        extra = (setting[BASE_OPTIONS],) + extra[1:]
    return k.plan_kernel(*args, *setting[:BASE_OPTIONS], np.inf, *extra)


def _same_counters(a, b) -> bool:
    # Counters a newer version appends must be 0 where the older one has none (their options are off).
    n = min(a.size, b.size)
    return np.array_equal(a[:n], b[:n]) and not a[n:].any() and not b[n:].any()


def _same(a, b) -> bool:
    return (np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]
            and _same_counters(a[3], b[3]) and (a[4] == b[4] or (np.isnan(a[4]) and np.isnan(b[4])))
            and a[5] == b[5])


def identity(old, new) -> bool:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from strategies import random_problem

    problems = [instance("device", s, *VARIANTS[v]) for s in range(40) for v in VARIANTS]
    rng = np.random.default_rng(7)
    problems += [random_problem(rng) for _ in range(200)]
    settings = [s for s in SETTINGS if s[BASE_OPTIONS] == 0 or (old.extra_options and new.extra_options)]
    if len(settings) < len(SETTINGS):
        print("identity: the settings with the local search on are skipped (a version has no ls_starts)")
    for i, p in enumerate(problems):
        args = p.arrays.kernel_args
        for setting in settings:
            a = _call(old, args, setting)
            b = _call(new, args, setting)
            if not _same(a, b):
                print(f"DIFFERENT on problem {i} with (width, cards_per_type, n_out, price_iters, ls_starts) = {setting}: "
                      f"counters {a[3].tolist()} vs {b[3].tolist()}")
                return False
    return True


def rotating_times(old, new, rounds: int) -> tuple[float, float]:
    args = [instance("device", s, *VARIANTS[v]).arrays.kernel_args for s in range(20) for v in VARIANTS]
    times = {id(old): [[] for _ in args], id(new): [[] for _ in args]}
    for r in range(rounds):
        for i, a in enumerate(args):
            for k in ((old, new) if (r + i) % 2 == 0 else (new, old)):
                t0 = time.perf_counter()
                _call(k, a, TIMED)
                times[id(k)][i].append(time.perf_counter() - t0)
    return tuple(float(np.median([np.median(x) for x in times[id(k)]])) for k in (old, new))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("old", type=Path, help="the reference module file")
    ap.add_argument("new", type=Path, help="the candidate module file")
    ap.add_argument("--no-identity", action="store_true", help="time only")
    ap.add_argument("--rounds", type=int, default=9, help="rounds of the timing (default 9)")
    args = ap.parse_args(argv)
    if args.rounds < 1:
        ap.error(f"--rounds must be >= 1; got {args.rounds}")
    folder = Path(tempfile.mkdtemp(prefix="mixrank-kernels-"))
    sys.path.insert(0, str(folder))
    old = _load(args.old, "old_kernels", folder)
    new = _load(args.new, "new_kernels", folder)
    ok = True
    if not args.no_identity:
        ok = identity(old, new)
        print("identical outputs:", ok)
    t_old, t_new = rotating_times(old, new, args.rounds)
    print(f"plan_kernel median, a different device instance per call (default settings): old {t_old * 1e6:.1f} us, "
          f"new {t_new * 1e6:.1f} us, ratio {t_new / t_old:.3f}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
