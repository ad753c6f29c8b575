"""Mixing plans as lists, and feed pages as slates: the layouts agree with the feed's own pages."""

import numpy as np
import pytest

from mixrank.errors import ProblemError
from mixrank.rerank.pages import plan_list, pool_lists
from mixrank.solution import Plan
from mixrank.synthetic import FeedConfig, FeedEnv
from mixrank.synthetic.slates import feed_page_log, feed_slates


class _Solution:
    def __init__(self, plans):
        self.pool = tuple(Plan(np.asarray(p), 0.0) for p in plans)
        self.assignment = np.asarray(plans[0])


def test_plans_become_lists_over_organic_then_cards():
    assert plan_list([-1, 2, -1, 0]).tolist() == [0, 6, 2, 4]
    got = pool_lists(_Solution([[-1, 1, -1], [0, -1, -1]]))
    assert got.tolist() == [[0, 4, 2], [3, 1, 2]]
    with pytest.raises(ProblemError, match="assignment"):
        plan_list([[0, 1]])


def test_feed_slates_items_match_the_composed_page():
    env = FeedEnv(FeedConfig(n_slots=6, n_cards=3, exposure_len=5, history_len=10, click_len=3))
    batch = env.sample(2, seed=0)
    items, ctx = feed_slates(batch.requests)
    assert items.shape[:2] == (2, 9) and ctx.shape[0] == 2
    plans = np.array([[-1, 2, -1, 0, -1, -1], [1, -1, -1, -1, 2, -1]])
    page = batch.requests.compose(plans)
    lists = np.stack([plan_list(p) for p in plans])
    # a plan's list picks, slot by slot, exactly the page's item (type, category, features)
    log_like = type("L", (), {})()
    for name in ("exp_type", "exp_category", "exp_action", "exp_mask", "clk_type", "clk_category", "clk_mask"):
        setattr(log_like, name, getattr(batch.requests, name))
    log_like.n_types, log_like.n_categories = 3, env.n_categories
    log_like.page_type, log_like.page_category, log_like.page_features = page.type, page.category, page.features
    log_like.clicked = np.zeros(page.type.shape, bool)
    as_log = feed_page_log(log_like)
    for r in range(2):
        np.testing.assert_array_equal(items[r, lists[r]], as_log.items[r])
    np.testing.assert_array_equal(as_log.context, ctx)
