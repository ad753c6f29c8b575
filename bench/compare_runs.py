"""Two saved runs of the benchmark suites side by side: time, statuses and gaps of each (solver, family).

``pytest-benchmark compare`` shows the times of saved runs; the suites also save each
benchmark's plan quality in ``extra_info``, which it does not show. This prints both, one
row per benchmark, grouped by family:

    python -m pytest bench/suites --bench-full --benchmark-save=before   # on one commit
    python -m pytest bench/suites --bench-full --benchmark-save=after    # on another
    python bench/compare_runs.py 0001 0002

A run is a saved JSON file, or its number or name as pytest-benchmark saved it under
``.benchmarks/`` (``0001``, ``0001_before``, ``before``). Rows whose statuses or gaps
changed are marked ``*``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def find_run(ref: str, root: Path = Path(".benchmarks")) -> Path:
    """A saved run's file: ``ref`` itself if it is a file, else the one file under ``root`` it names.

    >>> find_run("nothing-saved-by-this-name", Path("/nonexistent"))
    Traceback (most recent call last):
    ...
    FileNotFoundError: no saved run 'nothing-saved-by-this-name' (a file, or a number or name under /nonexistent)
    """
    path = Path(ref)
    if path.is_file():
        return path
    hits = sorted(p for p in root.glob("*/*.json") if p.stem == ref or p.stem.startswith(f"{ref}_")
                  or p.stem.split("_", 1)[-1] == ref) if root.is_dir() else []
    if len(hits) != 1:
        what = "no saved run" if not hits else f"{len(hits)} saved runs match"
        raise FileNotFoundError(f"{what} {ref!r} (a file, or a number or name under {root})")
    return hits[0]


def load(path: Path) -> dict[str, dict]:
    """``{fullname: benchmark}`` of one saved run."""
    data = json.loads(path.read_text())
    return {b["fullname"]: b for b in data.get("benchmarks", [])}


def _status(info: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted((info.get("status") or {}).items())) or "-"


def _gap(info: dict) -> str:
    gap = info.get("gap")
    return "-" if gap is None else f"{gap:.3%}"


def rows(old: dict[str, dict], new: dict[str, dict]) -> list[tuple[str, str]]:
    """(group, line) for every benchmark in either run, sorted by group then name.

    >>> b = lambda t, gap: {"group": "family tiny", "name": "test_solver[beam-tiny]", "stats": {"median": t},
    ...                     "extra_info": {"status": {"FEASIBLE": 1}, "gap": gap}}
    >>> for _, line in rows({"x": b(0.002, 0.01)}, {"x": b(0.001, 0.0)}): print(line)
    * test_solver[beam-tiny]             2.000 ->        1.000 ms   0.50x  FEASIBLE 1 -> FEASIBLE 1    1.000% -> 0.000%
    """
    out = []
    for key in sorted(set(old) | set(new), key=lambda k: ((old.get(k) or new[k])["group"] or "", k)):
        a, b = old.get(key), new.get(key)
        ref = a or b
        t_old = f"{a['stats']['median'] * 1e3:12.3f}" if a else f"{'-':>12}"
        t_new = f"{b['stats']['median'] * 1e3:12.3f}" if b else f"{'-':>12}"
        ratio = f"{b['stats']['median'] / a['stats']['median']:6.2f}x" if a and b and a["stats"]["median"] else "      -"
        ia, ib = (a or {}).get("extra_info", {}), (b or {}).get("extra_info", {})
        changed = "*" if (_status(ia), _gap(ia)) != (_status(ib), _gap(ib)) else " "
        out.append((ref["group"] or "", f"{changed} {ref['name']:<28}{t_old} -> {t_new} ms {ratio}  "
                                        f"{_status(ia)} -> {_status(ib)}  {_gap(ia):>8} -> {_gap(ib)}"))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old", help="saved run: a file, or its number or name under .benchmarks/")
    ap.add_argument("new")
    ap.add_argument("--root", default=".benchmarks", help="where pytest-benchmark saved the runs")
    args = ap.parse_args(argv)
    try:
        old_path, new_path = find_run(args.old, Path(args.root)), find_run(args.new, Path(args.root))
    except FileNotFoundError as exc:
        ap.error(str(exc))
    print(f"old: {old_path}\nnew: {new_path}\n(median time; statuses and mean gap of the last round; * = quality changed)")
    group = None
    for g, line in rows(load(old_path), load(new_path)):
        if g != group:
            print(f"\n{g}")
            group = g
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
