"""Batch throughput of ``solve_many``: in-process serial, the process pool, and Ray; and a local Ray's start-up cost.

``--n`` beam solves (default 10,000) of ``device`` instances (``--distinct`` different
ones, seeds x the four variants, repeated to make up ``--n``; drawing is not timed):

* serial — ``solve_many(n_jobs=1)``: one process, no transfer;
* pool — ``solve_many(n_jobs=--workers)``: this process and spawned workers (their
  start, about 1-2 s, is inside the call, as a user pays it);
* Ray, cold — ``ray.init(num_cpus=--workers, include_dashboard=False)`` timed apart
  (the start-up), then the first ``solve_many(backend="ray")`` call (Ray's workers
  start, import mixrank and load the kernels inside it), then a second, warm call;
  ``ray.shutdown()`` timed too;
* Ray, one call — ``solve_many(backend="ray")`` with no Ray running, on 100 problems:
  a local Ray started and shut down inside the call, end to end.

Every result is checked equal to the serial one (plans and objectives, in input order).

    python bench/bench_ray.py [--n 10000] [--distinct 1000] [--workers 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

import mixrank
from mixrank.bench import VARIANTS
from mixrank.synthetic import instance


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def _same(got, want) -> bool:
    return len(got) == len(want) and all(
        np.array_equal(a.assignment, b.assignment) and a.status == b.status for a, b in zip(got, want))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000, help="beam solves per batch")
    ap.add_argument("--distinct", type=int, default=1_000, help="different instances among them")
    ap.add_argument("--workers", type=int, default=2, help="processes for the pool and Ray's CPUs")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    for name in ("n", "distinct", "workers"):
        if getattr(args, name) < 1:
            ap.error(f"--{name} must be >= 1; got {getattr(args, name)}")
    try:
        import ray
    except ImportError:
        ap.error("needs Ray: pip install 'mixrank[ray]'")

    variants = list(VARIANTS)
    distinct = [instance("device", s // len(variants), history=VARIANTS[variants[s % 4]][0],
                         min_share=VARIANTS[variants[s % 4]][1]) for s in range(min(args.distinct, args.n))]
    batch = [distinct[i % len(distinct)] for i in range(args.n)]
    mixrank.solve(batch[0], solver="beam")  # kernels loaded here before the serial run

    rows = []
    want, t = _timed(lambda: mixrank.solve_many(batch, solver="beam", n_jobs=1))
    rows.append(("serial (this process)", t, True))
    got, t = _timed(lambda: mixrank.solve_many(batch, solver="beam", n_jobs=args.workers))
    rows.append((f"process pool, n_jobs={args.workers} (spawn inside)", t, _same(got, want)))

    _, t_init = _timed(lambda: ray.init(num_cpus=args.workers, include_dashboard=False))
    got, t = _timed(lambda: mixrank.solve_many(batch, solver="beam", backend="ray"))
    rows.append((f"Ray, {args.workers} CPUs, first call (workers start)", t, _same(got, want)))
    got, t = _timed(lambda: mixrank.solve_many(batch, solver="beam", backend="ray"))
    rows.append((f"Ray, {args.workers} CPUs, warm", t, _same(got, want)))
    _, t_shutdown = _timed(ray.shutdown)
    small = batch[:100]
    got, t_one = _timed(lambda: mixrank.solve_many(small, solver="beam", backend="ray"))
    ok_one = _same(got, want[:100]) and not ray.is_initialized()

    print(f"{args.n:,} beam solves of device instances ({len(distinct):,} distinct); "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}, Ray {ray.__version__}")
    print(f"{'run':<48}{'wall s':>9}{'solves/s':>11}{'same as serial':>16}")
    for name, t, same in rows:
        print(f"{name:<48}{t:>9.2f}{args.n / t:>11,.0f}{str(same):>16}")
    print(f"Ray start-up, ray.init(num_cpus={args.workers}, include_dashboard=False): {t_init:.2f} s; "
          f"ray.shutdown(): {t_shutdown:.2f} s")
    print(f"one solve_many(backend='ray') call on 100 problems with no Ray running (start, solve, shut down): "
          f"{t_one:.2f} s (results equal: {ok_one})")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"n": args.n, "distinct": len(distinct), "workers": args.workers,
                       "runs": [{"run": n, "wall_s": t, "solves_per_s": args.n / t, "same": s} for n, t, s in rows],
                       "ray_init_s": t_init, "ray_shutdown_s": t_shutdown, "ray_one_call_100_s": t_one}, fh, indent=1)
    return 0 if all(s for _, _, s in rows) and ok_one else 1


if __name__ == "__main__":
    sys.exit(main())
