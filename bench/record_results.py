"""Record (or compare) every beam and bnb result on a fixed instance set: a speed-up must leave them bit-identical.

    python bench/record_results.py --out before.json            # record
    python bench/record_results.py --out after.json --against before.json   # record and compare

Instances: the stress-small, stress-device, tight-device and device families, seeds 0-9, the four
variants (160 instances). Per solver and instance it keeps the plan, the objective, the bound and
(bnb) the node count, with floats as their exact ``float.hex`` so that any change of the last bit shows.
"""

from __future__ import annotations

import argparse
import json
import sys

import mixrank
from mixrank.bench import VARIANTS
from mixrank.synthetic import instance

FAMILIES = ("stress-small", "stress-device", "tight-device", "device")


def _exact(x):
    """A float as its exact hex text (``None`` stays)."""
    return None if x is None else float(x).hex()


def record(seeds) -> dict:
    """``{"family/seed/variant/solver": {...}}`` for every instance and solver."""
    out = {}
    for family in FAMILIES:
        for seed in seeds:
            for variant, (history, min_share) in VARIANTS.items():
                p = instance(family, seed, history=history, min_share=min_share)
                for solver in ("beam", "bnb"):
                    sol = mixrank.solve(p, solver=solver, time_limit=20.0 if solver == "bnb" else None)
                    out[f"{family}/{seed}/{variant}/{solver}"] = {
                        "plan": [int(x) for x in sol.assignment], "objective": _exact(sol.objective),
                        "bound": _exact(sol.bound), "status": str(sol.status),
                        "stats": {k: v for k, v in sol.stats.items() if isinstance(v, (int, str)) and "time" not in k},
                    }
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--against")
    ap.add_argument("--seeds", type=int, default=10)
    args = ap.parse_args()
    got = record(range(args.seeds))
    with open(args.out, "w") as f:
        json.dump(got, f, indent=0, sort_keys=True)
    if not args.against:
        return 0
    with open(args.against) as f:
        want = json.load(f)
    diff = [key for key in want if got.get(key) != want[key]]
    for key in diff[:20]:
        print(key, "\n  before", want[key], "\n  after ", got.get(key))
    print(f"{len(want) - len(diff)} of {len(want)} results identical")
    return 1 if diff else 0


if __name__ == "__main__":
    sys.exit(main())
