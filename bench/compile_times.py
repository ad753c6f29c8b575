"""Where a solver's first compile goes: seconds per kernel and type signature, with an empty Numba cache.

    python bench/compile_times.py [--solver beam|bnb|all] [--top 30] [--passes] [--save JSON] [--parallel]

Runs the solver's ``warm_up`` in a child process whose ``NUMBA_CACHE_DIR`` is a fresh
empty folder (``all``: ``solvers.beam.warm_up()`` then ``solvers.bnb.warm_up()`` in *one*
process and one cache, what a user's first ``mixrank bench`` pays), records Numba's compile
events (``numba.core.event``), and prints the wall and CPU seconds, then each (kernel,
signature) compile with its own seconds (callees compiled inside it subtracted) and the
kernels compiled for more than one signature (each signature is a separate full compile).
``inline="always"`` callees count for their callers. ``--passes`` adds where the compile
time goes inside Numba: seconds per compiler pass (type inference, lowering, ...) and
under the LLVM lock (LLVM's optimisation and machine code). ``--parallel`` warms each solver up in
its own process at the same time instead, all filling one empty cache (the wall time a machine with
a core per solver pays; the CPU seconds are more than one process's, as each compiles the shared
kernels of ``solvers._core``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

CHILD = r"""
import json, sys, time
from numba.core import event

stack, rows, passes, llvm = [], [], {}, [0.0]

class Listener(event.Listener):
    def on_start(self, ev):
        d = ev.data["dispatcher"]
        stack.append([time.perf_counter(), 0.0, f"{d.py_func.__module__}.{d.py_func.__qualname__}"])

    def on_end(self, ev):
        t0, inner, name = stack.pop()
        total = time.perf_counter() - t0
        if stack:
            stack[-1][1] += total
        owner = next((f[2] for f in reversed(stack) if f[2].startswith(("solvers", "mixrank"))), "")
        rows.append({"name": name, "solver": phase[0], "sig": str(ev.data["args"]), "self": total - inner,
                     "total": total, "caller": stack[-1][2] if stack else "", "owner": owner})

class PassListener(event.Listener):  # a pass's own seconds: the passes of nested compiles subtracted
    def on_start(self, ev):
        pstack.append([time.perf_counter(), 0.0])

    def on_end(self, ev):
        t0, inner = pstack.pop()
        total = time.perf_counter() - t0
        if pstack:
            pstack[-1][1] += total
        name = ev.data["name"].split(" [")[0]
        passes[name] = passes.get(name, 0.0) + total - inner

class LLVMListener(event.Listener):
    def on_start(self, ev):
        self.t0 = time.perf_counter()

    def on_end(self, ev):
        llvm[0] += time.perf_counter() - self.t0

pstack, phase, phases = [], [""], []
event.register("numba:compile", Listener())
if "--passes" in sys.argv:
    event.register("numba:run_pass", PassListener())
    event.register("numba:llvm_lock", LLVMListener())
import importlib
for solver in sys.argv[1].split(","):
    phase[0] = solver
    t, c = time.perf_counter(), time.process_time()
    importlib.import_module("solvers." + solver).warm_up()
    phases.append({"solver": solver, "wall": time.perf_counter() - t, "cpu": time.process_time() - c})
print(json.dumps({"phases": phases, "rows": rows, "passes": passes, "llvm": llvm[0]}))
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


def run(solvers: list[str], passes: bool = False) -> dict:
    """Warm up ``solvers`` in that order in one child process with a fresh empty Numba cache."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        cmd = [sys.executable, "-c", CHILD, ",".join(solvers)] + (["--passes"] if passes else [])
        out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def run_parallel(solvers: list[str]) -> None:
    """Warm up each solver in its own child process, all at once, filling one fresh empty cache; print each
    child's seconds, the CPU seconds of all together and the elapsed wall seconds."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        t = time.perf_counter()
        procs = [subprocess.Popen([sys.executable, "-c", CHILD, s], env=env, stdout=subprocess.PIPE, text=True)
                 for s in solvers]
        outs = [p.communicate()[0] for p in procs]
        wall = time.perf_counter() - t
    if any(p.returncode for p in procs):
        raise SystemExit("a warm-up failed")
    cpu = 0.0
    for out in outs:
        ph = json.loads(out.strip().splitlines()[-1])["phases"][0]
        cpu += ph["cpu"]
        print(f"{ph['solver']}.warm_up in its own process: {ph['wall']:.1f} s wall, {ph['cpu']:.1f} s CPU")
    print(f"all at once, one shared empty cache: {wall:.1f} s wall (from the first start to the last end), "
          f"{cpu:.1f} s CPU in all")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--solver", choices=("beam", "bnb", "all"), default="all")
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--passes", action="store_true", help="seconds per Numba compiler pass and under the LLVM lock")
    ap.add_argument("--save", metavar="JSON", help="also write every compile event to this file")
    ap.add_argument("--parallel", action="store_true",
                    help="with --solver all: each solver's warm-up in its own process at once, one shared cache")
    args = ap.parse_args()
    solvers = ["beam", "bnb"] if args.solver == "all" else [args.solver]
    if args.parallel:
        run_parallel(solvers)
        return
    res = run(solvers, args.passes)
    if args.save:
        with open(args.save, "w") as f:
            json.dump(res, f)
    rows = res["rows"]
    for ph in res["phases"]:
        mine = [r for r in rows if r["solver"] == ph["solver"]]
        print(f"{ph['solver']}.warm_up with {'an empty' if ph is res['phases'][0] else 'the same'} cache: "
              f"{ph['wall']:.1f} s wall, {ph['cpu']:.1f} s CPU ({sum(r['self'] for r in mine):.1f} s wall "
              f"in {len(mine)} compiles)")
    if len(solvers) > 1:
        print(f"total: {sum(p['wall'] for p in res['phases']):.1f} s wall, "
              f"{sum(p['cpu'] for p in res['phases']):.1f} s CPU in {len(rows)} compiles")
    by_module: dict[str, list] = {}
    for r in rows:
        by_module.setdefault(r["name"].rsplit(".", 1)[0] if r["name"].startswith(("solvers", "mixrank"))
                             else "numba's own (np.empty, sorting, error messages, ...)", []).append(r["self"])
    print("-- per module (compile wall seconds, compiles):")
    for mod, secs in sorted(by_module.items(), key=lambda kv: -sum(kv[1])):
        print(f"{sum(secs):7.2f} s {len(secs):4d}  {mod}")
    print()
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
                print(f"            {r['self']:6.2f} s  {_differing(r['sig'], [x['sig'] for x in rs])}"
                      f"{'  (in ' + r['caller'].rsplit('.', 1)[-1] + ')' if r['caller'] else ''}")
    if args.passes:
        print(f"-- Numba compiler passes (own seconds; {res['llvm']:.1f} s under the LLVM lock in all):")
        for name, sec in sorted(res["passes"].items(), key=lambda kv: -kv[1])[:15]:
            print(f"{sec:7.2f} s  {name}")


if __name__ == "__main__":
    main()
