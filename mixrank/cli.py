"""The ``mixrank`` command line: ``gen``, ``solve``, ``bench``.

Run ``mixrank COMMAND --help`` for each command's options.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mixrank.errors import MixrankError

__all__ = ["main"]


def _parse_option(text: str) -> tuple[str, str, Any]:
    """``SOLVER.NAME=VALUE`` (VALUE as a Python literal, else a string)."""
    try:
        key, raw = text.split("=", 1)
        solver, name = key.split(".", 1)
    except ValueError:
        raise MixrankError(f"--option must look like SOLVER.NAME=VALUE (e.g. beam.width=64); got {text!r}") from None
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        value = raw
    return solver, name, value


def _cmd_gen(args: argparse.Namespace) -> int:
    from mixrank.synthetic import instance

    p = instance(args.family, args.seed, history=args.history, min_share=args.min_share)
    out = Path(args.output)
    if out.parent and not out.parent.exists():
        raise MixrankError(f"output directory {out.parent} does not exist")
    p.save(out)
    print(f"wrote {out}: {p!r} ({args.family}, seed {args.seed})")
    return 0


def _cmd_solve(args: argparse.Namespace) -> int:
    from mixrank.problem import MixProblem
    from mixrank.solve import solve

    opts: dict[str, Any] = {}
    for text in args.option or []:
        solver, name, value = _parse_option(text)
        if solver != args.solver:
            raise MixrankError(f"--option {text!r} is for solver {solver!r}, but --solver is {args.solver!r}")
        opts[name] = value
    p = MixProblem.load(args.file)
    # Warm up on a tiny problem first, so that the time printed is the solve's own: a solver's first call in a
    # process imports its backend and loads its compiled kernels (~0.2-1 s), which a serving process pays once.
    from solvers._common import warm_up_problem

    start = time.perf_counter()
    solve(warm_up_problem(), solver=args.solver, seed=args.seed, **opts)
    print(f"{args.solver}: imports and compiled kernels loaded in {time.perf_counter() - start:.2f} s "
          "(once per process; not in the time below)", file=sys.stderr)
    sol = solve(p, solver=args.solver, time_limit=args.time_limit, seed=args.seed, **opts)
    if args.json:
        print(json.dumps(sol.to_dict(), indent=1))
    else:
        print(f"instance {args.file}: {p!r}")
        print(sol)
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from mixrank.bench import parse_seeds, run_bench

    opts: dict[str, dict[str, Any]] = {}
    for text in args.option or []:
        solver, name, value = _parse_option(text)
        opts.setdefault(solver, {})[name] = value
    result = run_bench(
        args.family,
        parse_seeds(args.seeds),
        [s.strip() for s in args.solvers.split(",") if s.strip()],
        variants=[v.strip() for v in args.variants.split(",") if v.strip()],
        time_limit=args.time_limit,
        options=opts,
        reference=args.reference,
        progress=not args.no_progress,
    )
    print(
        f"family {args.family}, seeds {args.seeds}, variants {args.variants}, "
        f"time limit {args.time_limit}, {len(result.records) // max(len(result.solvers), 1)} instances"
    )
    print(result.table())
    if args.json:
        result.write_json(args.json)
        print(f"wrote {args.json}")
    if args.plot:
        result.plot(args.plot)
        print(f"wrote {args.plot}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from mixrank.demo import run_demo

    result = run_demo(args.out, fast=args.fast, progress=not args.no_progress, seed=args.seed)
    return 0 if result.violations == 0 else 1


def build_parser() -> argparse.ArgumentParser:
    from mixrank.solve import available_solvers

    solvers = available_solvers()
    families = ["tiny", "small", "device", "large"]
    parser = argparse.ArgumentParser(prog="mixrank", description="Plan the cards of a feed page.")
    sub = parser.add_subparsers(dest="command", required=True)

    g = sub.add_parser("gen", help="write a synthetic instance file")
    g.add_argument("family", choices=families)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--history", action="store_true", help="add a session history")
    g.add_argument("--min-share", action="store_true", help="add a min-share rule")
    g.add_argument("-o", "--output", required=True, help="the JSON file to write")
    g.set_defaults(func=_cmd_gen)

    s = sub.add_parser("solve", help="solve an instance file")
    s.add_argument("file")
    s.add_argument("--solver", default="cpsat", choices=solvers)
    s.add_argument("--time-limit", type=float, default=None, help="seconds")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--option", action="append", help="SOLVER.NAME=VALUE, e.g. cpsat.num_workers=2")
    s.add_argument("--json", action="store_true", help="print the solution as JSON")
    s.set_defaults(func=_cmd_solve)

    b = sub.add_parser("bench", help="compare solvers over an instance family")
    b.add_argument("--family", default="device", choices=families)
    b.add_argument("--seeds", default="0-19", help="e.g. 0-19 or 0,3,5-9")
    b.add_argument("--solvers", default="greedy,cpsat", help=f"comma-separated, from {', '.join(solvers)}")
    b.add_argument("--variants", default="plain,history,min_share,both")
    b.add_argument("--time-limit", type=float, default=None, help="seconds per solve")
    b.add_argument("--option", action="append", help="SOLVER.NAME=VALUE, repeatable")
    b.add_argument("--reference", default=None, help="solver for the speed-up column (default cpsat)")
    b.add_argument("--json", default=None, help="write all records and the summary here")
    b.add_argument("--plot", default=None, help="write a latency/gap plot (PNG) here")
    b.add_argument("--no-progress", action="store_true")
    b.set_defaults(func=_cmd_bench)

    d = sub.add_parser("demo", help="the whole pipeline on a synthetic feed (about two minutes): "
                       "train ESAN, run sessions under three policies, re-rank; a table and a plot")
    d.add_argument("--out", default=None, help="a new folder for the plot, table and JSON (default: a fresh one)")
    d.add_argument("--fast", action="store_true", help="a few seconds, tiny sizes (figures not meaningful)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--no-progress", action="store_true")
    d.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mixrank`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "time_limit", None) is not None and not args.time_limit > 0:
        parser.error(f"--time-limit must be a positive number of seconds; got {args.time_limit}")
    try:
        code = args.func(args)
        sys.stdout.flush()  # a closed pipe then shows here, where it is handled, not at interpreter exit
        return code
    except (MixrankError, ValueError) as exc:
        print(f"mixrank {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (``mixrank solve FILE | head -1``): stop quietly, as Unix tools do. Python
        # would flush stdout again at exit and print a second error, so stdout is pointed at devnull first.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a tool killed by a closed pipe


if __name__ == "__main__":
    raise SystemExit(main())
