"""Seeded mixing instances in named families (SPEC §4).

Values come from a CTR-like model: a slot's examination probability falls with
depth; a card's CTR there is its quality times a type-specific position effect,
times the type's gain (ads earn more per click), minus the organic item's CTR it
displaces. PV weights are the examination curve. Gaps are 2–6 slots; share caps
are set below what dispersion alone allows, so they bind.

Every instance is a pure function of ``(family, seed, history, min_share)``; the
history and min-share variants of a seed share its cards and values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from mixrank.errors import ProblemError
from mixrank.problem import History, MixProblem, TypeRule

if TYPE_CHECKING:
    from mixrank.synthetic.stress import KnobFamily

__all__ = ["FAMILIES", "Family", "instance", "instances"]


@dataclass(frozen=True)
class Family:
    """Generator settings of one named family."""

    name: str
    n_cards: int
    n_slots: int
    n_types: int
    gap_range: tuple[int, int]
    min_gap_any: int
    code: int  # seeds the family's random stream


#: Every named family: the base ones below, and the generated ones of :mod:`mixrank.synthetic.stress`
#: (``tight-*``, ``noisy-*``, ``stress-*``), which that module registers here.
FAMILIES: dict[str, Family | KnobFamily] = {
    f.name: f
    for f in (
        Family("tiny", 6, 8, 2, (2, 3), 1, 11),
        Family("small", 12, 20, 3, (2, 4), 1, 12),
        Family("device", 30, 50, 3, (2, 6), 2, 13),
        Family("large", 60, 100, 4, (2, 6), 2, 14),
    )
}

# Per-type traits, cycled when a family has more types: (mean quality, gain, depth slope).
_TYPE_TRAITS = [
    (0.045, 1.6, -0.4),  # ad: pays more per click, best near the top
    (0.075, 1.0, 0.2),  # short video: steady
    (0.065, 1.25, -0.1),  # live stream
    (0.055, 1.1, 0.4),  # mini-program card: better deeper
]


def examination(n_slots: int, tau: float = 6.0, power: float = 0.7) -> np.ndarray:
    """Probability that a user reaches slot s: ``(1 + s / tau) ** -power``."""
    s = np.arange(n_slots, dtype=np.float64)
    return (1.0 + s / tau) ** -power


def instance(family: str, seed: int = 0, history: bool = False, min_share: bool = False) -> MixProblem:
    """Draw one instance of a named family.

    Parameters
    ----------
    family : str
        A name from :data:`FAMILIES`: ``tiny``, ``small``, ``device``, ``large`` with
        (N, K, T) = (6, 8, 2), (12, 20, 3), (30, 50, 3), (60, 100, 4); and the generated
        families ``tight-SIZE``, ``noisy-SIZE``, ``stress-SIZE`` at those sizes
        (:mod:`mixrank.synthetic.stress`).
    seed : int >= 0
    history : bool
        Add a :class:`History` (gaps to the last cards shown, PV already served).
    min_share : bool
        Add a minimum PV share for one type.

    Examples
    --------
    >>> p = instance("device", seed=3, history=True, min_share=True)
    >>> (p.n_cards, p.n_slots, p.n_types)
    (30, 50, 3)
    >>> instance("device", seed=3) == instance("device", seed=3)
    True
    """
    fam = FAMILIES.get(family) if isinstance(family, str) else None
    if fam is None:
        raise ProblemError(f"family must be one of {', '.join(FAMILIES)}; got {family!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ProblemError(f"seed must be an int >= 0; got {seed!r}")
    for name, flag in (("history", history), ("min_share", min_share)):
        if not isinstance(flag, (bool, np.bool_)):
            raise ProblemError(f"{name} must be True or False; got {flag!r}")
    if not isinstance(fam, Family):
        return fam.instance(seed, history=history, min_share=min_share)
    seed = int(seed)
    n, k, t_count = fam.n_cards, fam.n_slots, fam.n_types
    rng = np.random.default_rng([fam.code, seed, 0])

    exam = examination(k)
    pv = exam.copy()
    # Cards: types (every type present), quality around the type's mean.
    types = np.concatenate([np.arange(t_count), rng.integers(0, t_count, size=n - t_count)])
    rng.shuffle(types)
    traits = np.array([_TYPE_TRAITS[t % len(_TYPE_TRAITS)] for t in range(t_count)])
    type_shift = rng.normal(0.0, 0.15, size=t_count)  # this request's taste for each type
    quality = traits[types, 0] * np.exp(type_shift[types] + rng.normal(0.0, 0.35, size=n))
    depth = np.arange(k) / max(k - 1, 1) - 0.5
    position_effect = 1.0 + traits[types, 2][:, None] * depth[None, :]
    noise = np.exp(rng.normal(0.0, 0.12, size=(n, k)))
    card_ctr = np.clip(quality[:, None] * position_effect * noise, 0.0, 0.9)
    organic_ctr = rng.beta(3.0, 45.0, size=k)
    values = exam[None, :] * (card_ctr * traits[types, 1][:, None] - organic_ctr[None, :])
    values = np.round(values * 100.0, 9)  # in expected clicks per 100 requests

    # Rules: gaps 2-6, share caps below what dispersion alone allows.
    lo, hi = fam.gap_range
    gaps = rng.integers(lo, hi + 1, size=t_count)
    spacing = np.maximum(gaps, fam.min_gap_any)
    max_share = np.round(rng.uniform(0.45, 0.8, size=t_count) / spacing, 4)
    rules = []
    for t in range(t_count):
        max_count = None
        if t == 0:  # ads are also capped in number
            max_count = int(max(1, round(k / (spacing[t] * rng.uniform(1.8, 2.6)))))
        rules.append(TypeRule(min_gap=int(gaps[t]), max_share=float(max_share[t]), max_count=max_count))

    # Allowed: no ad in slot 0, and a few pairs ruled out by business filters.
    allowed = rng.random((n, k)) > 0.04
    allowed[types == 0, 0] = False

    hist = None
    if history:
        hrng = np.random.default_rng([fam.code, seed, 1])
        last_gap = [
            None if hrng.random() < 0.25 else int(hrng.integers(1, int(gaps[t]) + 2)) for t in range(t_count)
        ]
        known = [g for g in last_gap if g is not None]
        last_gap_any = min(known) if known else None
        pv_total = float(pv.sum() * hrng.uniform(0.5, 2.0))
        pv_shown = [float(pv_total * max_share[t] * hrng.uniform(0.5, 1.05)) for t in range(t_count)]
        shown = sum(pv_shown)
        if shown > pv_total:  # (the types' draws can pass the total on a large page: scaled down to fit it)
            pv_shown = [x * (pv_total / shown) * (1.0 - 1e-12) for x in pv_shown]
        hist = History(last_gap=last_gap, last_gap_any=last_gap_any, pv_shown=pv_shown, pv_total_shown=pv_total)

    if min_share:
        # A floor for the type the values favour least: the optimum would under-serve it.
        mrng = np.random.default_rng([fam.code, seed, 2])
        top_value = [np.sort(values[types == u].max(axis=1))[-3:].mean() for u in range(t_count)]
        t = int(np.argmin(top_value))
        r = rules[t]
        draft = MixProblem(values=values, types=types, pv_weights=pv, rules=rules,
                           min_gap_any=fam.min_gap_any, allowed=allowed, history=hist)
        reachable = _witness_share(draft, t)  # so that every min-share instance has a plan
        floor = min(r.max_share * mrng.uniform(0.6, 0.85), 0.95 * reachable)
        rules[t] = TypeRule(
            min_gap=r.min_gap,
            max_share=r.max_share,
            min_share=float(np.floor(max(floor, 0.0) * 1e4) / 1e4),
            max_count=r.max_count,
        )

    return MixProblem(
        values=values,
        types=types,
        pv_weights=pv,
        rules=rules,
        min_gap_any=fam.min_gap_any,
        allowed=allowed,
        history=hist,
    )


def _witness_share(problem: MixProblem, t: int) -> float:
    """The PV share type ``t`` reaches in a plan holding only type-t cards, each at the earliest slot it may take."""
    ar = problem.arrays
    k = problem.n_slots
    cards = np.flatnonzero(ar.types == t)
    used = np.zeros(cards.size, dtype=bool)
    last_t, last_any = -int(ar.init_dist[t]), -int(ar.init_dist[-1])
    got, count = 0.0, 0
    for s in range(k):
        if count >= ar.max_count[t] or s - last_t < ar.min_gap[t] or s - last_any < ar.min_gap[-1]:
            continue
        if got + ar.pv[s] > ar.share_hi[t]:
            continue
        free = np.flatnonzero(~used & ar.allowed[cards, s])
        if free.size:
            used[free[0]] = True
            got += ar.pv[s]
            count += 1
            last_t = last_any = s
    return float((ar.pv_shown[t] + got) / ar.pv_denominator) if ar.pv_denominator > 0 else 0.0


def instances(family: str, seeds, history: bool = False, min_share: bool = False) -> list[MixProblem]:
    """``[instance(family, s, history, min_share) for s in seeds]``."""
    return [instance(family, s, history=history, min_share=min_share) for s in seeds]
