"""Write ``bnb_device_optima.json``: CP-SAT's verdict on the 80 ``device`` instances tests/test_bnb.py checks.

CP-SAT takes 0.1-1.5 s per device instance, too long to run 80 of them in every
test run; this caches its status and objective once. Run from the repository
root after a change to the instance families or to CP-SAT:

    python tests/data/make_bnb_device_optima.py
"""

from __future__ import annotations

import json
import math
from pathlib import Path

OUT = Path(__file__).with_name("bnb_device_optima.json")


def main() -> None:
    import mixrank
    from mixrank.synthetic import instance

    rows = []
    for history in (False, True):
        for min_share in (False, True):
            for seed in range(20):
                p = instance("device", seed, history=history, min_share=min_share)
                sol = mixrank.solve(p, solver="cpsat")
                rows.append({
                    "seed": seed, "history": history, "min_share": min_share, "status": sol.status.value,
                    "objective": sol.objective if math.isfinite(sol.objective) else None,
                })
                print(rows[-1], flush=True)
    OUT.write_text(json.dumps({"family": "device", "solver": "cpsat", "instances": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
