"""Hypothesis strategies for random mixing problems (shared by every solver's tests)."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from mixrank import History, MixProblem, TypeRule


@st.composite
def problems(draw, max_cards: int = 5, max_slots: int = 6, max_types: int = 3, tight: bool = True):
    """Small random problems touching every rule: gaps, shares (both sides), counts, masks, history.

    Values are drawn from a coarse grid half the time, so that ties between plans occur; PV weights
    sometimes repeat exactly, so that share rules can sit exactly on their bound.
    """
    n = draw(st.integers(0, max_cards))
    k = draw(st.integers(1, max_slots))
    t_count = draw(st.integers(1, max_types))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if draw(st.booleans()):
        values = rng.integers(-3, 6, size=(n, k)).astype(float)
    else:
        values = np.round(rng.normal(1.0, 1.5, size=(n, k)), 6)
    types = rng.integers(0, t_count, size=n)
    pv = np.ones(k) if draw(st.booleans()) else np.round(rng.uniform(0.0, 1.0, size=k), 4)
    rules = []
    for _ in range(t_count):
        gap = draw(st.integers(1, 4))
        max_share = draw(st.sampled_from([1.0, 0.5, 0.4, 0.25, round(float(rng.uniform(0, 1)), 3)]))
        min_share = 0.0
        if tight and draw(st.integers(0, 3)) == 0:
            min_share = round(max_share * draw(st.sampled_from([0.0, 0.3, 0.5, 1.0])), 6)
        max_count = draw(st.one_of(st.none(), st.integers(0, 3)))
        rules.append(TypeRule(min_gap=gap, max_share=max_share, min_share=min_share, max_count=max_count))
    min_gap_any = draw(st.integers(1, 3))
    allowed = rng.random((n, k)) > 0.2 if draw(st.booleans()) else None
    history = None
    if draw(st.booleans()):
        last_gap = [draw(st.one_of(st.none(), st.integers(1, 4))) for _ in range(t_count)]
        last_any = draw(st.one_of(st.none(), st.integers(1, 4)))
        shown = np.round(rng.uniform(0, 1, size=t_count), 3)
        total = float(shown.sum() + draw(st.sampled_from([0.0, 0.5, 2.0])))
        history = History(last_gap=last_gap, last_gap_any=last_any, pv_shown=shown.tolist(), pv_total_shown=total)
    return MixProblem(values=values, types=types, pv_weights=pv, rules=rules, min_gap_any=min_gap_any,
                      allowed=allowed, history=history)


def random_problem(rng: np.random.Generator, n: int = 5, k: int = 7, t_count: int = 2) -> MixProblem:
    """A seeded random small problem with tight rules; about a third of them are infeasible."""
    values = np.round(rng.normal(1.0, 1.5, size=(n, k)), 4)
    types = rng.integers(0, t_count, size=n)
    pv = np.round(rng.uniform(0.2, 1.0, size=k), 3)
    rules = []
    for _ in range(t_count):
        max_share = float(rng.choice([0.2, 0.3, 0.5]))
        min_share = float(max_share * rng.choice([0.0, 0.5, 0.9]))
        rules.append(TypeRule(min_gap=int(rng.integers(1, 4)), max_share=max_share, min_share=min_share,
                              max_count=None if rng.random() < 0.5 else int(rng.integers(0, 3))))
    history = None
    if rng.random() < 0.5:
        shown = np.round(rng.uniform(0, 1, size=t_count), 3)
        history = History(last_gap=[None if rng.random() < 0.3 else int(rng.integers(1, 4)) for _ in range(t_count)],
                          last_gap_any=int(rng.integers(1, 3)), pv_shown=shown.tolist(),
                          pv_total_shown=float(shown.sum() + rng.uniform(0, 2)))
    return MixProblem(values=values, types=types, pv_weights=pv, rules=rules,
                      min_gap_any=int(rng.integers(1, 3)), allowed=rng.random((n, k)) > 0.15, history=history)
