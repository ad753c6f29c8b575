"""Synthetic feeds: seeded mixing instances and a ground-truth feed environment (SPEC §4).

``instance(family, seed, history=False, min_share=False)`` draws a mixing
instance of a named family (``tiny``, ``small``, ``device``, ``large``, and the generated
``tight-*``, ``noisy-*``, ``stress-*`` families); ``generate(n_cards, n_slots, n_types, knobs, seed)``
draws from the parametrised generator behind them (:mod:`mixrank.synthetic.stress`).
"""

from mixrank.synthetic.instances import FAMILIES, Family, examination, instance, instances
from mixrank.synthetic.stress import STRESS_FAMILIES, KnobFamily, Knobs, generate

__all__ = ["FAMILIES", "Family", "examination", "instance", "instances", "generate", "Knobs", "KnobFamily",
           "STRESS_FAMILIES"]

# The feed environment (users, logs, oracle) is exported below by mixrank.synthetic.feed.
from mixrank.synthetic.feed import FeedBatch, FeedConfig, FeedEnv, Users, random_policy  # noqa: E402

__all__ += ["FeedConfig", "FeedEnv", "FeedBatch", "Users", "random_policy"]
