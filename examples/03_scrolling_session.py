"""Worked example 3: a scrolling session — dynamic re-planning against static planning and the fixed rule.

What it shows:

1. the on-device loop with :class:`mixrank.MixSession`, written out for one
   user: plan the page, show a screen of 4 slots, commit what the user saw and
   clicked (the behaviour sequences grow), re-score with ESAN and re-plan the
   slots left with the gaps and PV shares carried over — page after page;
2. an audit of that user's whole committed feed: every gap and share rule holds
   across every screen and page boundary;
3. the three policies over many simulated sessions (the same users, pages and
   luck for each), scored by the environment's TRUE expected clicks on the
   inserted cards, with paired 95 % intervals.

Run from the repository root::

    python examples/03_scrolling_session.py            # ESAN on 10,000 requests, 200 sessions (~1-2 min)
    python examples/03_scrolling_session.py --fast     # a smoke run (figures not meaningful)

``bench/bench_session.py`` runs the comparison at scale (1,000 sessions).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

import mixrank  # noqa: E402
from mixrank.demo import (  # noqa: E402
    MIN_GAP_ANY,
    PLAN_OBJECTIVE,
    audit_feed,
    compare_policies,
    paired_uplift,
    policy_table,
    session_env,
    session_rules,
    train_esan,
)


def one_session(env, model, rules, n_pages: int = 2, screen: int = 4, seed: int = 42) -> mixrank.session.CommittedFeed:
    """The MixSession loop for one simulated user, printed screen by screen."""
    pages = env.sample(n_pages, seed=seed)  # page requests: organic items and candidate cards
    user = pages[0].users  # one user for the whole session (the environment's hidden truth)
    session = mixrank.MixSession(rules, model, solver="beam", min_gap_any=MIN_GAP_ANY,
                                 examination=env.examination, **PLAN_OBJECTIVE)
    rng = np.random.default_rng(seed)
    for p in range(n_pages):
        request = pages.requests[p]
        for _ in range(0, env.n_slots, screen):  # a screen at a time; the first plan of a request starts its page
            plan = session.plan(request)  # ESAN scores the page with the behaviour so far; beam plans the rest
            shown = plan.assignment[:screen]
            # What the user does: the environment's true click probabilities, given the behaviour now.
            now = mixrank.synthetic.FeedBatch(session.scoring_request(request), user)
            full = np.full(env.n_slots, -1)
            full[plan.first_slot:] = plan.assignment
            ctr = env.ctr(now, now.requests.compose(full))[0, plan.first_slot:plan.first_slot + len(shown)]
            clicked = rng.random(len(shown)) < ctr
            session.commit(len(shown), clicked=clicked)  # exposures and clicks join the behaviour sequences
            kinds = " ".join("." if c < 0 else f"{int(request.cand_type[0, c])}" for c in shown)
            print(f"  page {p} slots {plan.first_slot:2d}-{plan.first_slot + len(shown) - 1:2d}: [{kinds}]  "
                  f"clicks {int(clicked.sum())}  (plan objective {plan.solution.objective:7.3f}, "
                  f"{plan.solution.status.value})")
    return session.feed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Dynamic re-planning vs static planning vs the fixed rule.")
    ap.add_argument("--train", type=int, default=10_000, help="logged requests ESAN trains on")
    ap.add_argument("--sessions", type=int, default=200)
    ap.add_argument("--fast", action="store_true", help="tiny sizes, a smoke run")
    args = ap.parse_args(argv)
    n_train, n_sessions, n_pages = (1_000, 12, 1) if args.fast else (args.train, args.sessions, 3)

    env = session_env()  # pages of 20 slots, 12 candidate cards of 3 types
    rules = session_rules()
    print("rules:", *rules, f"min_gap_any={MIN_GAP_ANY}", sep="\n  ")
    print(f"\ntraining a small ESAN on {n_train:,} logged requests ...")
    model, metrics = train_esan(env, n_train, progress=False)
    print(f"card AUC {metrics['cards']['auc']:.4f} (the oracle's: {metrics['oracle_cards']['auc']:.4f})")

    print("\n1. one session, screen by screen ('.' organic, a digit = a card of that type):")
    feed = one_session(env, model, rules, n_pages=1 if args.fast else 2)

    print("\n2. audit of the committed feed:", audit_feed(feed, rules, MIN_GAP_ANY) or "every rule holds",
          f"({len(feed.card)} slots, {int((feed.card >= 0).sum())} cards, {int(feed.clicked.sum())} clicks)")

    print(f"\n3. {n_sessions} sessions of {n_pages} pages under each policy:")
    runs = compare_policies(env, model, n_sessions=n_sessions, n_pages=n_pages, seed=1, progress=False)
    print(policy_table(runs))
    dyn = runs["dynamic"].card_clicks
    print(f"dynamic vs fixed : {paired_uplift(dyn, runs['fixed'].card_clicks)} true card clicks (95 % CI)")
    print(f"dynamic vs static: {paired_uplift(dyn, runs['static'].card_clicks)}")
    violations = sum(len(audit_feed(f, rules, MIN_GAP_ANY)) for run in runs.values() for f in run.feeds)
    print(f"rule violations over all {3 * n_sessions} committed sessions: {violations}")
    return 0 if violations == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
