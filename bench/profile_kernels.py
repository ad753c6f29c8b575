"""Where a beam solve spends its time, function by function, Numba kernels included (Linux ``perf``).

``perf`` cannot name JIT-compiled code on its own: Numba's functions show up as bare
addresses. This script runs the solves in a child process that writes a perf map
(``/tmp/perf-PID.map``: address, size and name of every Numba function it compiled),
records the child with ``perf record`` while it solves the ``device`` instances in
turn (a different instance on each call), and prints each function's share of the
samples, Numba's mangled names made readable (``solvers._beam.search.beam_search``).

    python bench/profile_kernels.py [--seconds 10] [--width 32] [--local-search 1] [--kernel-only] [--top 25]

The child compiles every kernel afresh in a private cache folder (about a minute):
kernels loaded from Numba's cache keep only the entry point's name, so their callees
would go unnamed. Functions inlined into others (``inline="always"``, or by LLVM)
count for their caller. ``--kernel-only`` calls :func:`solvers._beam.plan.plan` (the beam, re-matching
and local search) directly on rankings prepared beforehand (:func:`solvers.beam.prepare`), without the
prices or the Python around it (``mixrank.solve``, the re-check, building the ``Solution``). The
shares are of all samples of the child while it solves; CPython's own functions are
listed by their C names (``_PyEval_EvalFrameDefault`` ...).

Needs ``perf`` on the PATH and the right to record a process of one's own
(``/proc/sys/kernel/perf_event_paranoid`` at 2 or less is enough).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

READY = "profile-kernels: ready"


def readable(symbol: str) -> str:
    """``_ZN7solvers5_beam6search11beam_searchB3v93...`` -> ``solvers._beam.search.beam_search``.

    Numba mangles a function as ``_ZN`` + (length, name)* + its specialisation; the
    names are kept and the rest dropped. Anything else comes back unchanged.

    >>> readable("_ZN7solvers5_beam6search11beam_searchB3v93B38c8tJTIeFIjxB2IKSgI4CrvQE5ArrayIdLi2E")
    'solvers._beam.search.beam_search'
    >>> readable("_ZN7cpython7solvers5_beam4plan4planB2v1B40c8tJTIeFIjxE")
    'cpython.solvers._beam.plan.plan'
    >>> readable("_PyEval_EvalFrameDefault")
    '_PyEval_EvalFrameDefault'
    """
    if not symbol.startswith("_ZN"):
        return symbol
    parts, i = [], 3
    while i < len(symbol) and symbol[i].isdigit():
        m = re.match(r"\d+", symbol[i:])
        length = int(m.group())
        i += len(m.group())
        parts.append(symbol[i:i + length])
        i += length
    return ".".join(parts) if parts else symbol


def _child(args) -> int:
    """Compile, write the perf map, say ready, then solve for ``args.seconds`` (run under a private cache)."""
    import numba
    import numpy as np

    import mixrank
    from mixrank.bench import VARIANTS
    from mixrank.synthetic import instance
    from solvers import beam as beam_solver
    from solvers._beam.plan import plan

    problems = [instance("device", s, *VARIANTS[v]) for s in range(20) for v in VARIANTS]
    options = {"width": args.width, "local_search": args.local_search}
    if args.kernel_only:
        prepared = {id(p): beam_solver.prepare(p) for p in problems}

        def solve(p):
            inp, rk, fl, zkeys, seeds = prepared[id(p)][:5]
            plan(inp, rk, fl, args.width, beam_solver.DEFAULT_CARDS_PER_TYPE, 1, args.local_search,
                 beam_solver.VALUE_TIE, zkeys, np.inf, seeds)
    else:
        def solve(p):
            mixrank.solve(p, solver="beam", **options)
    for p in problems:
        solve(p)
    # Every compiled function of every Numba dispatcher the solves used, by its address in this process.
    named = {}
    modules = [m for name, m in list(sys.modules.items()) if name.startswith(("solvers.", "mixrank.")) and m]
    for module in modules:
        for obj in vars(module).values():
            if not isinstance(obj, numba.core.registry.CPUDispatcher):
                continue
            for cres in obj.overloads.values():
                library = cres.library
                for fn in library._final_module.functions:
                    if not fn.is_declaration:
                        address = library.get_pointer_to_function(fn.name)
                        if address:
                            named[address] = fn.name
    starts = sorted(named)
    with open(f"/tmp/perf-{os.getpid()}.map", "w", encoding="utf-8") as fh:
        for a, b in zip(starts, starts[1:] + [None]):
            size = b - a if b is not None and b - a < 1 << 20 else 1 << 16
            fh.write(f"{a:x} {size:x} {readable(named[a])}\n")
    print(READY, flush=True)
    end = time.perf_counter() + args.seconds
    while time.perf_counter() < end:
        for p in problems:
            solve(p)
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="seconds recorded (default 10)")
    ap.add_argument("--width", type=int, default=32, help="beam width (default 32, the solver's)")
    ap.add_argument("--local-search", type=int, default=1, help="the beam's local_search option (default 1, the solver's)")
    ap.add_argument("--kernel-only", action="store_true", help="call plan_kernel directly, without mixrank.solve")
    ap.add_argument("--top", type=int, default=25, help="functions listed (default 25)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.seconds <= 0 or args.width < 1 or args.local_search < 0 or args.top < 1:
        ap.error("--seconds must be > 0, --width and --top >= 1, --local-search >= 0; got "
                 f"{args.seconds}, {args.width}, {args.top}, {args.local_search}")
    if args.child:
        return _child(args)
    perf = shutil.which("perf")
    if perf is None:
        print("profile_kernels: needs Linux perf on the PATH (e.g. the linux-perf package); none found",
              file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="mixrank-profile-"))
    env = dict(os.environ, NUMBA_CACHE_DIR=str(work / "numba-cache"))
    cmd = [sys.executable, os.path.abspath(__file__), "--child", "--seconds", str(args.seconds + 30),
           "--width", str(args.width), "--local-search", str(args.local_search)] + (
        ["--kernel-only"] if args.kernel_only else [])
    print("compiling the kernels afresh in a private cache (about a minute) ...", file=sys.stderr, flush=True)
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    try:
        line = child.stdout.readline().strip()
        if line != READY:
            print(f"profile_kernels: the solving process stopped before it was ready (status {child.wait()})",
                  file=sys.stderr)
            return 1
        data = work / "perf.data"
        rec = subprocess.run([perf, "record", "-q", "-F", "4000", "-p", str(child.pid), "-o", str(data), "--",
                              "sleep", str(args.seconds)], capture_output=True, text=True)
        if rec.returncode != 0 or not data.exists():
            print(f"profile_kernels: perf record failed:\n{rec.stderr.strip()}", file=sys.stderr)
            return 1
        rep = subprocess.run([perf, "report", "-i", str(data), "--stdio", "--no-children", "--sort", "symbol",
                              "-q", "--percent-limit", "0"], capture_output=True, text=True)
    finally:
        child.kill()
        child.wait()
        Path(f"/tmp/perf-{child.pid}.map").unlink(missing_ok=True)
        shutil.rmtree(work, ignore_errors=True)
    shares: Counter[str] = Counter()
    for row in rep.stdout.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+\[[.k]\]\s+(.+?)\s*$", row)
        if m:
            name = m.group(2).split()[0]
            shares["(JIT code without a name)" if name.startswith("0x") else readable(name)] += float(m.group(1))
    if not shares:
        print(f"profile_kernels: perf report gave no samples:\n{rep.stderr.strip()}", file=sys.stderr)
        return 1
    what = "plan_kernel" if args.kernel_only else "mixrank.solve(solver='beam')"
    print(f"{what}, width {args.width}, local_search {args.local_search}: the 80 device instances of seeds 0-19 "
          f"in turn, {args.seconds:g} s recorded; share of the samples per function")
    ranked = shares.most_common()
    for name, pct in ranked[:args.top]:
        print(f"{pct:7.2f} %  {name}")
    if len(ranked) > args.top:
        print(f"{sum(p for _, p in ranked[args.top:]):7.2f} %  ({len(ranked) - args.top} other functions)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
