"""Synthetic feeds: seeded mixing instances and a ground-truth feed environment (SPEC §4).

``instance(family, seed, history=False, min_share=False)`` draws a mixing
instance of a named family (``tiny``, ``small``, ``device``, ``large``).
"""

from mixrank.synthetic.instances import FAMILIES, Family, examination, instance, instances

__all__ = ["FAMILIES", "Family", "examination", "instance", "instances"]

# The feed environment (users, logs, oracle) is exported below by mixrank.synthetic.feed.
from mixrank.synthetic.feed import FeedBatch, FeedConfig, FeedEnv, Users, random_policy  # noqa: E402

__all__ += ["FeedConfig", "FeedEnv", "FeedBatch", "Users", "random_policy"]
