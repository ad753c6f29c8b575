"""Where a solver's first compile goes: seconds per kernel and type signature, with an empty Numba cache.

    python bench/compile_times.py [--solver beam|bnb|all] [--top 30]

Runs each solver's ``warm_up`` in a child process whose ``NUMBA_CACHE_DIR`` is a fresh
empty folder, records Numba's compile events (``numba.core.event``), and prints the
total, then each (kernel, signature) compile with its own seconds (callees compiled
inside it subtracted) and the kernels compiled for more than one signature (each
signature is a separate full compile). ``inline="always"`` callees count for their callers.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

CHILD = r"""
import json, sys, time
from numba.core import event

stack, rows = [], []

class Listener(event.Listener):
    def on_start(self, ev):
        stack.append([time.perf_counter(), 0.0])

    def on_end(self, ev):
        t0, inner = stack.pop()
        total = time.perf_counter() - t0
        if stack:
            stack[-1][1] += total
        d = ev.data["dispatcher"]
        rows.append({"name": f"{d.py_func.__module__}.{d.py_func.__qualname__}",
                     "sig": str(ev.data["args"]), "self": total - inner, "total": total})

event.register("numba:compile", Listener())
import importlib
t, c = time.perf_counter(), time.process_time()
importlib.import_module("solvers." + sys.argv[1]).warm_up()
print(json.dumps({"wall": time.perf_counter() - t, "cpu": time.process_time() - c, "rows": rows}))
"""


def _split(sig: str) -> list[str]:
    """The top-level arguments of a signature string."""
    parts, depth, cur = [], 0, ""
    for ch in sig.strip()[1:-1]:
        depth += ch in "(["
        depth -= ch in ")]"
        if ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    return parts + [cur.strip()] if cur.strip() else parts


def _differing(sig: str, others: list[str]) -> str:
    """The arguments of ``sig`` that differ among ``others`` (index: type), or the whole signature."""
    split = [_split(o) for o in others]
    mine = _split(sig)
    if any(len(s) != len(mine) for s in split):
        return sig[:200]
    diff = [f"{i}: {a[:90]}" for i, a in enumerate(mine) if any(s[i] != a for s in split)]
    return "; ".join(diff)[:300]


def run(solver: str) -> dict:
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        out = subprocess.run([sys.executable, "-c", CHILD, solver], env=env, check=True,
                             capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--solver", choices=("beam", "bnb", "all"), default="all")
    ap.add_argument("--top", type=int, default=30)
    args = ap.parse_args()
    solvers = ("bnb", "beam") if args.solver == "all" else (args.solver,)
    grand = grand_cpu = 0.0
    for solver in solvers:
        res = run(solver)
        rows = res["rows"]
        grand += res["wall"]
        compiled = sum(r["self"] for r in rows)
        grand_cpu += res["cpu"]
        print(f"\n== {solver}.warm_up with an empty cache: {res['wall']:.1f} s wall, {res['cpu']:.1f} s CPU "
              f"({compiled:.1f} s wall in {len(rows)} compiles)")
        for r in sorted(rows, key=lambda r: -r["self"])[:args.top]:
            print(f"{r['self']:7.2f} s  {r['name']}  {r['sig'][:150]}")
        by_name: dict[str, list] = {}
        for r in rows:
            by_name.setdefault(r["name"], []).append(r)
        multi = {k: v for k, v in by_name.items() if len(v) > 1}
        if multi:
            print("-- kernels compiled for several signatures:")
            for name, rs in sorted(multi.items(), key=lambda kv: -sum(r["self"] for r in kv[1])):
                print(f"{sum(r['self'] for r in rs):7.2f} s  {name} x{len(rs)}")
                for r in rs:
                    print(f"            {r['self']:6.2f} s  {_differing(r['sig'], [x['sig'] for x in rs])}")
    if len(solvers) > 1:
        print(f"\ntotal: {grand:.1f} s wall, {grand_cpu:.1f} s CPU")


if __name__ == "__main__":
    main()
