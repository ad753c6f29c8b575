"""Worked example 4: re-ranking — generators propose whole lists, a learned evaluator picks the one to serve.

What it shows:

1. the list-wise log schema (:class:`mixrank.rerank.ListLog`: per request the
   candidates' feature matrix, a context vector, the list shown and its clicks),
   written by a synthetic slate world under a randomised logging policy, saved
   and read back as your own logs would be;
2. a list-wise :class:`~mixrank.rerank.Evaluator` (the learned "simulator")
   fitted on it (validation split, early stopping), saved as a checkpoint and
   loaded back (atomic, versioned, with a SHA-256 digest of the weights);
3. a :class:`~mixrank.rerank.SequenceRetriever`: the point-wise sort (greedy),
   a beam search under the evaluator and, without ``--fast``, a Pointer Network
   trained by REINFORCE against the evaluator each propose lists; the evaluator
   scores them all and the best is served — one request shown in full (a
   Pointer Network also works with variable N by masking: ``n_items``);
4. every way of ordering judged by the world's TRUE expected clicks (never by
   the evaluator, to avoid the likelihood trap), against the exhaustive optimum
   (the world is small enough to score every ordered list).

Run from the repository root::

    python examples/04_rerank.py            # 20,000 logged lists (~1-2 min on 2 cores)
    python examples/04_rerank.py --fast     # a smoke run (figures not meaningful)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from mixrank.demo import RERANK_WORLD, paired_uplift  # noqa: E402
from mixrank.rerank import Evaluator, ListLog, PointerNet, PtrNetGenerator, SequenceRetriever, train_ptrnet  # noqa: E402
from mixrank.synthetic.slates import SlateConfig, SlateEnv  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Re-rank with generators and a learned list-wise evaluator.")
    ap.add_argument("--log", type=int, default=20_000, help="logged lists the evaluator learns from")
    ap.add_argument("--requests", type=int, default=200, help="test requests")
    ap.add_argument("--fast", action="store_true", help="tiny sizes, no Pointer Network")
    args = ap.parse_args(argv)
    n_log, n_requests, epochs = (400, 20, 2) if args.fast else (args.log, args.requests, 10)

    # 1. The logs: N candidates per request, the K-long list shown, its clicks (a user would fill these arrays).
    env = SlateEnv(SlateConfig(**RERANK_WORLD))
    k = env.config.list_len
    log = env.log(n_log, seed=0)
    path = Path(tempfile.mkdtemp()) / "lists.npz"
    log.save(path)
    log = ListLog.load(path)
    print(f"log: {len(log)} requests; items {log.items.shape} (R, N, F), context {log.context.shape}, "
          f"shown {log.shown.shape}, clicks per list {log.clicks.sum(axis=1).mean():.2f}")

    # 2. The evaluator: per-position click probabilities of a whole list, given the context.
    evaluator = Evaluator(epochs=epochs, progress=False, threads=1).fit(log)
    print(f"evaluator fitted: {evaluator.fit_results['list']}; point-wise model: {evaluator.fit_results['pointwise']}")
    evaluator = Evaluator.load(evaluator.save(path.with_name("evaluator.pt")), threads=1)  # a safe checkpoint round trip

    # 3. The retriever: each generator proposes lists, the evaluator scores all, the best is served.
    generators: list = ["greedy", "beam"]
    if not args.fast:
        net = PointerNet(log.items.shape[2], context_dim=log.context.shape[1])
        result = train_ptrnet(net, evaluator, log, steps=150, progress=False)
        print(f"pointer network trained by REINFORCE: {result}")
        generators.append(PtrNetGenerator(net))
    retriever = SequenceRetriever(evaluator, generators=generators)
    test = env.sample(n_requests, seed=1)
    one = retriever.rank(test.items[0], k, context=test.context[0])
    print(f"\none request: {one}")
    truth = env.expected_clicks(test[:1], np.stack([c.order for c in one.candidates])[None])[0]
    for cand, true in list(zip(one.candidates, truth))[:5]:
        print(f"  {cand.generator:<7} {cand.order.tolist()}  evaluator {cand.score:.4f}  true {true:.4f}")

    # 4. Judge by the truth, over all test requests.
    served = retriever.rank_many(test.items, k, context=test.context)
    point = SequenceRetriever(evaluator, generators=["greedy"]).rank_many(test.items, k, context=test.context)

    def true_clicks(lists: np.ndarray) -> np.ndarray:
        return env.expected_clicks(test, np.asarray(lists)[:, None, :])[:, 0]

    rows = {"served": true_clicks(served.orders), "point-wise": true_clicks(point.orders),
            "logging policy": true_clicks(env.logging_policy(test, np.random.default_rng(0))),
            "optimum": env.optimum(test)[1]}
    print(f"\n{n_requests} requests, true expected clicks per list (share of the exhaustive optimum):")
    for name, v in rows.items():
        print(f"  {name:<15} {v.mean():.4f}  ({v.sum() / rows['optimum'].sum():.1%})")
    print(f"served vs point-wise: {paired_uplift(rows['served'], rows['point-wise'])} (95 % CI, paired bootstrap)")
    print(f"generators of the served lists: {served.shares()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
