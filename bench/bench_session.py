"""Dynamic re-planning vs static one-shot planning vs the fixed-position rule, over many scrolling sessions.

Trains a small ESAN on a synthetic feed log, then runs the same simulated
sessions (users, pages, luck) under the three policies of
:mod:`mixrank.synthetic.sessions`, all with the same rules, and reports each
policy's TRUE expected clicks on inserted cards (the environment's, not the
model's), the paired uplifts with 95 % bootstrap intervals over sessions, and an
audit of every committed session feed (gaps and shares across every screen and
page boundary). The planners maximise the expected card clicks (every card
type counts 1, the displaced organic item 0; see ``mixrank.demo.PLAN_OBJECTIVE``);
the table also shows all clicks on the feed (gain-weighted, organic items 1).

Run from the repository root (about 5-6 minutes on a shared 2-core machine, the
Numba cache warm)::

    python bench/bench_session.py                     # 1,000 sessions of 3 pages x 20 slots, screens of 4
    python bench/bench_session.py --sessions 200 --train 5000   # a quick look
    python bench/bench_session.py --oracle            # also dynamic re-planning with the true CTRs
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from mixrank.demo import (  # noqa: E402
    MIN_GAP_ANY,
    audit_feed,
    compare_policies,
    paired_uplift,
    policy_table,
    session_env,
    session_rules,
    train_esan,
)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--pages", type=int, default=3)
    ap.add_argument("--screen", type=int, default=4, help="slots per screen")
    ap.add_argument("--train", type=int, default=40000, help="logged requests ESAN trains on")
    ap.add_argument("--solver", default="beam")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--organic-gain", type=float, default=None,
                    help="value of the organic click a card displaces, in the planners' objective (default 0)")
    ap.add_argument("--oracle", action="store_true", help="also run dynamic re-planning on the true CTR matrix")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    progress = not args.no_progress

    env = session_env()
    t0 = time.perf_counter()
    model, metrics = train_esan(env, args.train, seed=args.seed, progress=progress)
    t_train = time.perf_counter() - t0
    print(f"ESAN trained on {args.train:,} requests in {t_train:.0f} s; card AUC {metrics['cards']['auc']:.4f} "
          f"(oracle {metrics['oracle_cards']['auc']:.4f}), card calibration error "
          f"{metrics['cards']['calibration_error']:.4f}")
    t0 = time.perf_counter()
    runs = compare_policies(env, model, n_sessions=args.sessions, n_pages=args.pages, screen=args.screen,
                            solver=args.solver, seed=args.seed + 1000, progress=progress, organic_gain=args.organic_gain)
    if args.oracle:
        oracle = compare_policies(env, "oracle", n_sessions=args.sessions, n_pages=args.pages, screen=args.screen,
                                  solver=args.solver, seed=args.seed + 1000, progress=progress, policies=("dynamic",),
                                  organic_gain=args.organic_gain)
        runs["dyn-oracle"] = oracle["dynamic"]
    t_sessions = time.perf_counter() - t0
    rules = session_rules()
    violations = {name: sum(len(audit_feed(f, rules, MIN_GAP_ANY)) for f in run.feeds) for name, run in runs.items()}
    print(f"\n{args.sessions} sessions x {args.pages} pages x {env.n_slots} slots, screens of {args.screen}, "
          f"solver {args.solver}, organic gain {args.organic_gain or 0}, seed {args.seed} ({t_sessions:.0f} s for the sessions)")
    print(policy_table(runs))
    dyn = runs["dynamic"].card_clicks
    print(f"\ndynamic vs fixed : {paired_uplift(dyn, runs['fixed'].card_clicks)} true card clicks (95 % CI)")
    print(f"dynamic vs static: {paired_uplift(dyn, runs['static'].card_clicks)} true card clicks (95 % CI)")
    print(f"static vs fixed  : {paired_uplift(runs['static'].card_clicks, runs['fixed'].card_clicks)}")
    print(f"dynamic vs fixed, all clicks on the feed: {paired_uplift(runs['dynamic'].value, runs['fixed'].value)}")
    print(f"rule violations over whole committed sessions: {violations}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
