"""The ``mixrank`` command line: ``demo``, ``gen``, ``solve``, ``bench``.

Run ``mixrank COMMAND --help`` for each command's options. Each command is a pair
of functions, ``_add_NAME(subparsers)`` (its options) and ``_cmd_NAME(args)`` (its
work, returning the exit code), listed in :data:`COMMANDS`.

Exit codes: 0 done; 1 a file could not be written or read (the message names it);
2 bad input (a usage error, a bad instance, option or setting: nothing was done);
130 interrupted (Ctrl-C: no result is claimed; a bench writes what it had finished);
141 the reader of stdout went away.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from mixrank.errors import MixrankError

__all__ = ["main", "build_parser", "COMMANDS"]


class OutputError(MixrankError):
    """An output path that cannot be written (checked before the work), or a write that failed."""


def _parse_option(text: str) -> tuple[str, str, Any]:
    """``SOLVER.NAME=VALUE`` (VALUE as a Python literal, else a string)."""
    try:
        key, raw = text.split("=", 1)
        solver, name = key.split(".", 1)
    except ValueError:
        raise MixrankError(f"--option must look like SOLVER.NAME=VALUE (e.g. beam.width=64); got {text!r}") from None
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        value = raw
    return solver, name, value


def _families() -> list[str]:
    from mixrank.synthetic import FAMILIES

    return list(FAMILIES)


# ----------------------------------------------------------------------------------------------------------------
# Output paths: checked before any work, so that a typo does not cost a whole run.


def _probe_dir(folder: Path, flag: str) -> None:
    """Create and delete a file in ``folder``: the one honest test that it can be written."""
    try:
        with tempfile.TemporaryFile(dir=folder, prefix=".mixrank-probe-"):
            pass
    except OSError as exc:
        raise OutputError(f"{flag}: cannot write in {folder}: {exc.strerror or exc}") from None


def check_output_file(path: str, flag: str) -> Path:
    """The file ``path`` can be written: its folder exists and takes files, and it is not a folder itself."""
    out = Path(path)
    if not path or out.is_dir():
        raise OutputError(f"{flag} must name a file to write; got {path!r}, which is a folder")
    folder = out.parent
    if not folder.exists():
        raise OutputError(f"{flag}: folder {folder} does not exist (for {path!r})")
    if not folder.is_dir():
        raise OutputError(f"{flag}: {folder} is not a folder (for {path!r})")
    _probe_dir(folder, flag)
    return out


def check_output_dir(path: str, flag: str) -> Path:
    """The folder ``path`` exists (made here, with its parents, if need be) and takes files."""
    out = Path(path)
    if not path:
        raise OutputError(f"{flag} must name a folder; got an empty path")
    if out.exists() and not out.is_dir():
        raise OutputError(f"{flag} must name a folder; {path!r} is a file")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{flag}: cannot create folder {path!r}: {exc.strerror or exc}") from None
    _probe_dir(out, flag)
    return out


@contextlib.contextmanager
def _writing(what: str) -> Iterator[None]:
    """Turn an OS error while writing (a full disk, a lost mount) into one clear line naming the output."""
    try:
        yield
    except OSError as exc:
        raise OutputError(f"cannot write {what}: {exc.strerror or exc}") from None


# ----------------------------------------------------------------------------------------------------------------
# gen


def _add_gen(sub: Any) -> None:
    g = sub.add_parser("gen", help="write synthetic instance files",
                       description="Write one instance (--seed, -o FILE) or a folder of them (--seeds, -o DIR).")
    g.add_argument("family", choices=_families())
    seeds = g.add_mutually_exclusive_group()
    seeds.add_argument("--seed", type=int, default=None, help="one instance: the seed (default 0)")
    seeds.add_argument("--seeds", default=None, help="a folder of instances: e.g. 0-99 or 0,3,5-9")
    g.add_argument("--history", action="store_true", help="add a session history")
    g.add_argument("--min-share", action="store_true", help="add a min-share rule")
    g.add_argument("-o", "--output", required=True, help="the JSON file to write (with --seeds: the folder)")
    g.set_defaults(func=_cmd_gen)


def _cmd_gen(args: argparse.Namespace) -> int:
    from mixrank.bench import parse_seeds
    from mixrank.synthetic import instance

    if args.seeds is None:
        seed = 0 if args.seed is None else args.seed
        if seed < 0:
            raise MixrankError(f"--seed must be an int >= 0; got {seed}")
        out = check_output_file(args.output, "-o")
        p = instance(args.family, seed, history=args.history, min_share=args.min_share)
        with _writing(str(out)):
            p.save(out)
        print(f"wrote {out}: {p!r} ({args.family}, seed {seed})")
        return 0
    seeds = parse_seeds(args.seeds)
    if args.output.endswith(".json"):
        raise MixrankError(f"with --seeds, -o must name a folder; got {args.output!r} (a .json file name)")
    folder = check_output_dir(args.output, "-o")
    digits = len(str(max(seeds)))
    suffix = ("_history" if args.history else "") + ("_min_share" if args.min_share else "")
    from tqdm.auto import tqdm

    for seed in tqdm(seeds, desc=f"gen {args.family}", unit="instance", disable=len(seeds) < 50):
        path = folder / f"{args.family}_{seed:0{digits}d}{suffix}.json"
        p = instance(args.family, seed, history=args.history, min_share=args.min_share)
        with _writing(str(path)):
            p.save(path)
    print(f"wrote {len(seeds)} instance files to {folder}/ ({args.family}, seeds {args.seeds})")
    return 0


# ----------------------------------------------------------------------------------------------------------------
# solve


def _add_solve(sub: Any) -> None:
    from mixrank.solve import available_solvers

    s = sub.add_parser("solve", help="solve an instance file")
    s.add_argument("file")
    s.add_argument("--solver", default="cpsat", choices=available_solvers())
    s.add_argument("--time-limit", type=float, default=None, help="seconds")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--option", action="append", help="SOLVER.NAME=VALUE, e.g. cpsat.num_workers=2")
    s.add_argument("--json", action="store_true", help="print the solution as JSON")
    s.set_defaults(func=_cmd_solve)


def _cmd_solve(args: argparse.Namespace) -> int:
    from mixrank.bench import warm_up
    from mixrank.problem import MixProblem
    from mixrank.solve import resolve_solver, solve

    opts: dict[str, Any] = {}
    for text in args.option or []:
        solver, name, value = _parse_option(text)
        if solver != args.solver:
            raise MixrankError(f"--option {text!r} is for solver {solver!r}, but --solver is {args.solver!r}")
        opts[name] = value
    resolve_solver(args.solver, opts)
    p = MixProblem.load(args.file)
    # Warm up on a tiny problem first, so that the time printed is the solve's own: a solver's first call in a
    # process imports its backend and loads its compiled kernels (~0.2-1 s), which a serving process pays once.
    # Options that depend on the problem (cpsat's hint) are checked against the user's problem, not the tiny one.
    start = time.perf_counter()
    warm_up(args.solver, opts, seed=args.seed)
    print(f"{args.solver}: imports and compiled kernels loaded in {time.perf_counter() - start:.2f} s "
          "(once per process; not in the time below)", file=sys.stderr)
    sol = solve(p, solver=args.solver, time_limit=args.time_limit, seed=args.seed, **opts)
    if args.json:
        print(json.dumps(sol.to_dict(), indent=1))
    else:
        print(f"instance {args.file}: {p!r}")
        print(sol)
    return 0


# ----------------------------------------------------------------------------------------------------------------
# bench


def _add_bench(sub: Any) -> None:
    from mixrank.solve import SOLVERS

    solvers = list(SOLVERS)
    b = sub.add_parser("bench", help="compare solvers over an instance family or a folder of instance files",
                       description="Compare solvers: every solver on every instance; prints a summary table.")
    src = b.add_mutually_exclusive_group()
    src.add_argument("--family", default=None, choices=_families(), help="synthetic instances (default device)")
    src.add_argument("--from", dest="from_dir", default=None, metavar="DIR",
                     help="a folder of instance files (written by mixrank gen or MixProblem.save)")
    b.add_argument("--seeds", default=None, help="with --family: e.g. 0-19 (default) or 0,3,5-9")
    b.add_argument("--variants", default=None, help="with --family: default plain,history,min_share,both")
    b.add_argument("--solvers", default=",".join(solvers), help=f"comma-separated (default: all), from {', '.join(solvers)}")
    b.add_argument("--time-limit", type=float, default=None, help="seconds per solve")
    b.add_argument("--option", action="append", help="SOLVER.NAME=VALUE, repeatable")
    b.add_argument("--reference", default=None, help="solver for the speed-up column (default cpsat)")
    b.add_argument("--backend", default="local", choices=["local", "ray"],
                   help="local: one solve after another in this process; ray: one task per instance on Ray")
    b.add_argument("--address", default=None, help="with --backend ray: the cluster to join (default: start one)")
    b.add_argument("--out", default=None, metavar="DIR",
                   help="write records.jsonl (streamed), summary.json, table.txt, profile.png, gap_time.png here")
    b.add_argument("--json", default=None, help="write all records and the summary to this file")
    b.add_argument("--plot", default=None, help="write the gap-against-time plot (PNG) to this file")
    b.add_argument("--profile-tol", type=float, default=1e-4,
                   help="performance profile: a plan within this relative tolerance of the best counts as solved")
    b.add_argument("--no-progress", action="store_true")
    b.set_defaults(func=_cmd_bench)


def _split(text: str, flag: str) -> list[str]:
    items = [s.strip() for s in text.split(",") if s.strip()]
    if not items:
        raise MixrankError(f"{flag} must name at least one item, comma-separated; got {text!r}")
    return items


class _BenchOutputs(NamedTuple):
    """Where ``mixrank bench`` writes (each None when not asked for)."""

    out: Path | None
    json: Path | None
    plot: Path | None


def _bench_settings(args: argparse.Namespace) -> tuple[list[str], dict[str, dict[str, Any]], str]:
    """Solvers, options and reference, checked (with the backend and the profile tolerance) before any work."""
    from mixrank.bench import check_settings

    opts: dict[str, dict[str, Any]] = {}
    for text in args.option or []:
        solver, name, value = _parse_option(text)
        opts.setdefault(solver, {})[name] = value
    settings = check_settings(_split(args.solvers, "--solvers"), opts, args.reference, args.time_limit, args.backend)
    if args.address is not None and args.backend != "ray":
        raise MixrankError(f"--address is for --backend ray; got --backend {args.backend}")
    if args.backend == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise MixrankError("--backend ray needs Ray, which is not installed: pip install 'mixrank[ray]'") from None
    if not (math.isfinite(args.profile_tol) and 0 <= args.profile_tol < 1):
        raise MixrankError(f"--profile-tol must be a number in [0, 1); got {args.profile_tol}")
    return settings


def _bench_outputs(args: argparse.Namespace) -> _BenchOutputs:
    """The output paths, checked before any work: a typo in a path must not cost the run."""
    outputs = _BenchOutputs(
        check_output_dir(args.out, "--out") if args.out is not None else None,
        check_output_file(args.json, "--json") if args.json is not None else None,
        check_output_file(args.plot, "--plot") if args.plot is not None else None,
    )
    if outputs.out is not None or outputs.plot is not None:
        from mixrank.bench import _pyplot

        _pyplot()  # matplotlib missing: said now, not after the run
    return outputs


def _bench_items(args: argparse.Namespace) -> tuple[list[Any], str, str]:
    """The instances (from --from or --family), the source's name, and the header line."""
    from mixrank.bench import VARIANTS, family_instances, load_instances, parse_seeds

    if args.from_dir is not None:
        if args.seeds is not None or args.variants is not None:
            raise MixrankError("--seeds and --variants are for --family; --from takes every *.json file in DIR")
        items = load_instances(args.from_dir)
        source = f"{args.from_dir.rstrip('/')}/"
        return items, source, f"instances {source} ({len(items)} files)"
    family = args.family or "device"
    seeds_text = args.seeds or "0-19"
    variants = _split(args.variants, "--variants") if args.variants is not None else list(VARIANTS)
    items = family_instances(family, parse_seeds(seeds_text), variants)
    return items, family, f"family {family}, seeds {seeds_text}, variants {','.join(variants)}, {len(items)} instances"


def _cmd_bench(args: argparse.Namespace) -> int:
    from mixrank.bench import BenchInterrupted, bench_instances

    solvers, opts, reference = _bench_settings(args)
    outputs = _bench_outputs(args)
    items, source, header = _bench_items(args)
    interrupted = False
    try:
        result = bench_instances(items, solvers, time_limit=args.time_limit, options=opts, reference=reference,
                                 progress=not args.no_progress, backend=args.backend, address=args.address,
                                 records_path=outputs.out / "records.jsonl" if outputs.out is not None else None,
                                 source=source)
    except BenchInterrupted as stop:
        result, interrupted = stop.partial, True
    print(f"{header}, time limit {args.time_limit}, backend {args.backend}")
    table = result.table()
    print(table)
    if outputs.out is not None:
        with _writing(f"the results in {outputs.out}"):
            result.write_out(outputs.out, table, tol=args.profile_tol)
        print(f"wrote {outputs.out}/: records.jsonl, summary.json, table.txt, profile.png, gap_time.png")
    if outputs.json is not None:
        with _writing(str(outputs.json)):
            result.write_json(outputs.json)
        print(f"wrote {outputs.json}")
    if outputs.plot is not None:
        with _writing(str(outputs.plot)):
            result.plot(outputs.plot)
        print(f"wrote {outputs.plot}")
    if interrupted:
        print("interrupted: the results above cover the instances finished before Ctrl-C", file=sys.stderr)
        return 130
    if any(r.status == "FAILED" for r in result.records):
        print("some instances were lost with their worker on every try: see FAILED above", file=sys.stderr)
        return 1
    return 0


def _add_demo(sub: Any) -> None:
    d = sub.add_parser("demo", help="the whole pipeline on a synthetic feed (about two minutes): "
                       "train ESAN, run sessions under three policies, re-rank; a table and a plot")
    d.add_argument("--out", default=None, help="a new folder for the plot, table and JSON (default: a fresh one)")
    d.add_argument("--fast", action="store_true", help="a few seconds, tiny sizes (figures not meaningful)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--no-progress", action="store_true")
    d.set_defaults(func=_cmd_demo)


def _cmd_demo(args: argparse.Namespace) -> int:
    from mixrank.demo import run_demo

    result = run_demo(args.out, fast=args.fast, progress=not args.no_progress, seed=args.seed)
    return 0 if result.violations == 0 else 1


# ----------------------------------------------------------------------------------------------------------------

#: The subcommands, in the order ``mixrank --help`` lists them: each adds its parser (and its ``func``).
COMMANDS: list[Callable[[Any], None]] = [_add_demo, _add_gen, _add_solve, _add_bench]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mixrank", description="Plan the cards of a feed page.")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mixrank`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    limit = getattr(args, "time_limit", None)
    if limit is not None and not (math.isfinite(limit) and limit > 0):
        parser.error(f"--time-limit must be a positive, finite number of seconds; got {limit}")
    try:
        code = args.func(args)
        sys.stdout.flush()  # a closed pipe then shows here, where it is handled, not at interpreter exit
        return code
    except (MixrankError, ValueError) as exc:
        print(f"mixrank {args.command}: error: {exc}", file=sys.stderr)
        return 1 if isinstance(exc, OutputError) else 2
    except KeyboardInterrupt:
        print(f"mixrank {args.command}: interrupted; no result", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (``mixrank solve FILE | head -1``): stop quietly, as Unix tools do. Python
        # would flush stdout again at exit and print a second error, so stdout is pointed at devnull first.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a tool killed by a closed pipe
    except OSError as exc:  # a read or write that failed outside the paths checked above
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"mixrank {args.command}: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
