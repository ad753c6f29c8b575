"""A parametrised instance generator with wide knobs, and the families that stress the solvers.

The base families (``tiny`` … ``large``, :mod:`mixrank.synthetic.instances`) come from
one fixed setting of a CTR-like model. :func:`generate` draws from the same kind of
model with every setting a knob (:class:`Knobs`):

* **cap tightness** — each type's ``max_share`` drawn from a range *independently of its
  gap*, so a cap may admit only one to four cards (the knapsack's integrality gap is large);
* **value noise** — a per-(card, slot) noise factor;
* **quality tail** — heavy-tailed card quality (Student t with 3 degrees of freedom on the
  log scale: a card can be worth 5x its neighbour) and a per-card gain spread;
* **depth drift** — each type's position effect drifts with depth (a slope plus a random walk);
* **negative share** — about this share of (card, slot) values are negative (the organic
  item beats the card);
* **mask density** — the share of allowed (card, slot) pairs;
* gap ranges and count caps.

Named families built from it are registered in :data:`mixrank.synthetic.FAMILIES`
(so ``instance(name, seed, history, min_share)`` and ``mixrank bench --family NAME``
take them): ``tight-*`` (tight caps), ``noisy-*`` (noisy, heavy-tailed values) and
``stress-*`` (every knob drawn widely per seed), each at the sizes ``tiny`` (6, 8, 2),
``small`` (12, 20, 3), ``device`` (30, 50, 3) and ``large`` (60, 100, 4). The knobs
were not tuned to any solver: their ranges follow what users report of their feeds.

Every instance is a pure function of its arguments; a family's knobs are a pure
function of ``(family, seed)`` (:meth:`KnobFamily.knobs`). Every min-share instance
has a feasible plan (the floor is set below what a plan of the floored type alone reaches).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields

import numpy as np

from mixrank.errors import ProblemError
from mixrank.problem import History, MixProblem, TypeRule
from mixrank.synthetic.instances import _TYPE_TRAITS, FAMILIES, _witness_share, examination

__all__ = ["Knobs", "KnobFamily", "generate", "STRESS_FAMILIES"]

_GENERATE_CODE = 0x57E55  # seeds generate()'s random stream (families use their own codes)


def _is_number(x) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, (bool, np.bool_))


def _is_int(x) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


@dataclass(frozen=True)
class Knobs:
    """Settings of :func:`generate`. Defaults are close to the base families' model.

    Parameters
    ----------
    max_share : (float, float) or None
        Cap tightness: each type's ``max_share`` is drawn uniformly from this range
        ``(low, high)``, ``0 < low <= high <= 1``, independently of its gap. None: the
        base families' rule (``U(0.45, 0.8) / gap``, caps that follow the gap).
    value_noise : float in [0, 1]
        Standard deviation of the log of a per-(card, slot) noise factor (0.2 is about 20 %).
    quality_tail : float in [0, 2]
        Scale of a card's log quality, drawn from a Student t with 3 degrees of freedom
        (clipped at +-4): heavy-tailed for large values.
    gain_spread : float in [1, 10]
        Per-card gains (value per click) spread over this factor (max / min).
    depth_drift : float in [0, 2]
        Standard deviation of each type's extra depth slope and of a random walk of its
        log position effect over the page: type effects that change with depth.
    negative_share : float in [0, 0.95]
        About this share of each slot's card values fall below the organic item's (negative).
    mask_density : float in (0, 1]
        Share of allowed (card, slot) pairs.
    gap_range : (int, int)
        Each type's ``min_gap`` is drawn from ``low..high`` (both >= 1).
    gap_any_range : (int, int)
        ``min_gap_any`` is drawn from ``low..high`` (both >= 1).
    count_cap_share : float in [0, 1]
        Chance that a type also gets a ``max_count``.

    Examples
    --------
    >>> Knobs(max_share=(0.06, 0.3), value_noise=0.2).max_share
    (0.06, 0.3)
    >>> Knobs(value_noise=-1)
    Traceback (most recent call last):
    ...
    mixrank.errors.ProblemError: Knobs.value_noise must be a number in [0, 1]; got -1
    """

    max_share: tuple[float, float] | None = None
    value_noise: float = 0.12
    quality_tail: float = 0.3
    gain_spread: float = 1.0
    depth_drift: float = 0.0
    negative_share: float = 0.35
    mask_density: float = 0.96
    gap_range: tuple[int, int] = (2, 6)
    gap_any_range: tuple[int, int] = (1, 2)
    count_cap_share: float = 0.3

    def __post_init__(self):
        ranges = {
            "value_noise": (0.0, 1.0), "quality_tail": (0.0, 2.0), "gain_spread": (1.0, 10.0),
            "depth_drift": (0.0, 2.0), "negative_share": (0.0, 0.95), "count_cap_share": (0.0, 1.0),
        }
        for name, (lo, hi) in ranges.items():
            x = getattr(self, name)
            if not _is_number(x) or not lo <= x <= hi:
                raise ProblemError(f"Knobs.{name} must be a number in [{lo:g}, {hi:g}]; got {x!r}")
        x = self.mask_density
        if not _is_number(x) or not 0.0 < x <= 1.0:
            raise ProblemError(f"Knobs.mask_density must be a number in (0, 1]; got {x!r}")
        x = self.max_share
        if x is not None:
            ok = isinstance(x, (tuple, list)) and len(x) == 2 and all(_is_number(v) for v in x)
            if not ok or not 0.0 < x[0] <= x[1] <= 1.0:
                raise ProblemError(f"Knobs.max_share must be None or a pair (low, high) with 0 < low <= high <= 1; "
                                   f"got {x!r}")
            object.__setattr__(self, "max_share", (float(x[0]), float(x[1])))  # (a list, e.g. from JSON, too)
        for name in ("gap_range", "gap_any_range"):
            x = getattr(self, name)
            ok = isinstance(x, (tuple, list)) and len(x) == 2 and all(_is_int(v) for v in x)
            if not ok or not 1 <= x[0] <= x[1] <= 1000:
                raise ProblemError(f"Knobs.{name} must be a pair (low, high) of ints with 1 <= low <= high <= 1000; "
                                   f"got {x!r}")
            object.__setattr__(self, name, (int(x[0]), int(x[1])))

    def as_dict(self) -> dict:
        """The knobs as a plain dict (tuples as lists), e.g. for JSON."""
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v) for f in fields(self)}


def generate(
    n_cards: int,
    n_slots: int,
    n_types: int,
    knobs: Knobs | None = None,
    seed: int = 0,
    history: bool = False,
    min_share: bool = False,
) -> MixProblem:
    """Draw one mixing instance from the parametrised generator.

    Parameters
    ----------
    n_cards, n_slots, n_types : int
        N >= T >= 1 (every type has a card), K >= 1.
    knobs : Knobs or None
        The generator's settings (None: ``Knobs()``).
    seed : int >= 0
    history : bool
        Add a :class:`~mixrank.History` (gaps to the last cards shown, PV already served).
    min_share : bool
        Add a minimum PV share for the type the values favour least; the instance stays feasible.

    Returns
    -------
    MixProblem
        Values in expected clicks per 100 requests. The history and min-share variants of
        a seed share its cards, values and rules (but the floor).

    Examples
    --------
    >>> p = generate(30, 50, 3, Knobs(max_share=(0.06, 0.3), value_noise=0.2), seed=1, min_share=True)
    >>> (p.n_cards, p.n_slots, p.n_types)
    (30, 50, 3)
    >>> p == generate(30, 50, 3, Knobs(max_share=(0.06, 0.3), value_noise=0.2), seed=1, min_share=True)
    True
    """
    for name, x, low in (("n_cards", n_cards, 1), ("n_slots", n_slots, 1), ("n_types", n_types, 1)):
        if not _is_int(x) or x < low:
            raise ProblemError(f"{name} must be an int >= {low}; got {x!r}")
    if n_cards < n_types:
        raise ProblemError(f"n_cards must be >= n_types (every type has a card); got {n_cards} < {n_types}")
    if knobs is None:
        knobs = Knobs()
    if not isinstance(knobs, Knobs):
        raise ProblemError(f"knobs must be a Knobs or None; got {type(knobs).__name__}")
    _check_seed_and_flags(seed, history, min_share)
    return _draw(int(n_cards), int(n_slots), int(n_types), knobs, (_GENERATE_CODE, int(seed)), history, min_share)


def _check_seed_and_flags(seed, history, min_share) -> None:
    if not _is_int(seed) or seed < 0:
        raise ProblemError(f"seed must be an int >= 0; got {seed!r}")
    for name, flag in (("history", history), ("min_share", min_share)):
        if not isinstance(flag, (bool, np.bool_)):
            raise ProblemError(f"{name} must be True or False; got {flag!r}")


def _draw(n: int, k: int, t_count: int, knobs: Knobs, key: tuple[int, int], history: bool,
          min_share: bool) -> MixProblem:
    """The generator proper; ``key`` seeds its streams (0: cards and rules, 1: history, 2: floor)."""
    rng = np.random.default_rng([*key, 0])
    exam = examination(k)
    pv = exam.copy()

    # Cards: every type present; heavy-tailed quality around the type's mean, gains spread per card.
    types = np.concatenate([np.arange(t_count), rng.integers(0, t_count, size=n - t_count)])
    rng.shuffle(types)
    traits = np.array([_TYPE_TRAITS[t % len(_TYPE_TRAITS)] for t in range(t_count)])
    type_shift = rng.normal(0.0, 0.15, size=t_count)
    tail = np.clip(rng.standard_t(3.0, size=n), -4.0, 4.0)
    quality = traits[types, 0] * np.exp(type_shift[types] + knobs.quality_tail * tail)
    gain = traits[types, 1] * knobs.gain_spread ** rng.uniform(-0.5, 0.5, size=n)

    # Type effects over depth: the type's slope plus a drawn one, and a centred random walk.
    depth = np.arange(k) / max(k - 1, 1) - 0.5
    slope = traits[:, 2] + rng.normal(0.0, 1.0, size=t_count) * knobs.depth_drift
    walk = np.cumsum(rng.normal(0.0, 1.0, size=(t_count, k)), axis=1) * (knobs.depth_drift / math.sqrt(k))
    walk -= walk.mean(axis=1, keepdims=True)
    log_effect = slope[:, None] * depth[None, :] + walk
    noise = np.exp(rng.normal(0.0, 1.0, size=(n, k)) * knobs.value_noise)
    card_ctr = np.clip(quality[:, None] * np.exp(log_effect[types]) * noise, 0.0, 0.9)
    card_value = card_ctr * gain[:, None]

    # The organic item's CTR at each slot: about `negative_share` of the slot's cards fall below it.
    level = np.clip(knobs.negative_share + rng.normal(0.0, 0.08, size=k), 0.0, 1.0) * (n - 1)
    ranked = np.sort(card_value, axis=0)
    low = np.minimum(np.floor(level).astype(np.int64), n - 1)
    high = np.minimum(low + 1, n - 1)
    cols = np.arange(k)
    organic = ranked[low, cols] + (level - low) * (ranked[high, cols] - ranked[low, cols])
    values = np.round(exam[None, :] * (card_value - organic[None, :]) * 100.0, 9)

    # Rules: gaps from their ranges; caps from theirs, independent of the gap (or the base rule).
    gaps = rng.integers(knobs.gap_range[0], knobs.gap_range[1] + 1, size=t_count)
    gap_any = int(rng.integers(knobs.gap_any_range[0], knobs.gap_any_range[1] + 1))
    spacing = np.maximum(gaps, gap_any)
    if knobs.max_share is None:
        max_share = np.round(rng.uniform(0.45, 0.8, size=t_count) / spacing, 4)
    else:
        max_share = np.round(rng.uniform(*knobs.max_share, size=t_count), 4)
    # A cap never shuts a type out: at least the page's smallest PV fits under it.
    max_share = np.clip(max_share, math.ceil(pv.min() / pv.sum() * 1e4) / 1e4, 1.0)
    capped = rng.random(t_count) < knobs.count_cap_share
    count_draw = rng.uniform(1.8, 3.0, size=t_count)
    rules = [
        TypeRule(
            min_gap=int(gaps[t]),
            max_share=float(max_share[t]),
            max_count=int(max(1, round(k / (spacing[t] * count_draw[t])))) if capped[t] else None,
        )
        for t in range(t_count)
    ]
    allowed = rng.random((n, k)) < knobs.mask_density

    hist = _draw_history(np.random.default_rng([*key, 1]), pv, gaps, max_share) if history else None
    if min_share:
        rules = _with_floor(np.random.default_rng([*key, 2]), values, types, pv, rules, gap_any, allowed, hist)
    return MixProblem(values=values, types=types, pv_weights=pv, rules=rules, min_gap_any=gap_any,
                      allowed=allowed, history=hist)


def _draw_history(hrng: np.random.Generator, pv: np.ndarray, gaps: np.ndarray, max_share: np.ndarray) -> History:
    """What the session showed before this page (the base families' recipe)."""
    t_count = gaps.size
    last_gap = [None if hrng.random() < 0.25 else int(hrng.integers(1, int(gaps[t]) + 2)) for t in range(t_count)]
    known = [g for g in last_gap if g is not None]
    pv_total = float(pv.sum() * hrng.uniform(0.5, 2.0))
    pv_shown = [float(pv_total * max_share[t] * hrng.uniform(0.5, 1.05)) for t in range(t_count)]
    shown = sum(pv_shown)
    if shown > pv_total:
        pv_shown = [x * (pv_total / shown) * (1.0 - 1e-12) for x in pv_shown]
    return History(last_gap=last_gap, last_gap_any=min(known) if known else None, pv_shown=pv_shown,
                   pv_total_shown=pv_total)


def _with_floor(mrng, values, types, pv, rules, gap_any, allowed, hist) -> list[TypeRule]:
    """``rules`` with a min share for the type the values favour least, below what a plan of it alone reaches."""
    t_count = len(rules)
    top_value = [np.sort(values[types == u].max(axis=1))[-3:].mean() for u in range(t_count)]
    t = int(np.argmin(top_value))
    draft = MixProblem(values=values, types=types, pv_weights=pv, rules=rules, min_gap_any=gap_any,
                       allowed=allowed, history=hist)
    reachable = _witness_share(draft, t)
    floor = min(rules[t].max_share * mrng.uniform(0.6, 0.85), 0.95 * reachable)
    r = rules[t]
    rules = list(rules)
    rules[t] = TypeRule(min_gap=r.min_gap, max_share=r.max_share,
                        min_share=float(np.floor(max(floor, 0.0) * 1e4) / 1e4), max_count=r.max_count)
    return rules


@dataclass(frozen=True)
class KnobFamily:
    """A named family of :func:`generate`: a size and a rule that draws the knobs per seed.

    ``draw_knobs(rng)`` returns the :class:`Knobs` of one seed from the family's own stream.
    """

    name: str
    n_cards: int
    n_slots: int
    n_types: int
    code: int  # seeds the family's random streams
    draw_knobs: Callable[[np.random.Generator], Knobs]
    summary: str

    def knobs(self, seed: int) -> Knobs:
        """The knobs this family draws for ``seed``."""
        _check_seed_and_flags(seed, False, False)
        return self.draw_knobs(np.random.default_rng([self.code, int(seed), 3]))

    def instance(self, seed: int = 0, history: bool = False, min_share: bool = False) -> MixProblem:
        """Draw the family's instance of ``seed`` (what ``instance(name, seed, ...)`` returns)."""
        _check_seed_and_flags(seed, history, min_share)
        return _draw(self.n_cards, self.n_slots, self.n_types, self.knobs(seed), (self.code, int(seed)),
                     history, min_share)


def _gap_ranges(rng: np.random.Generator, widest: int) -> tuple[tuple[int, int], tuple[int, int]]:
    low = int(rng.integers(1, 4))
    high = int(min(low + rng.integers(0, 5), widest))
    any_low = int(rng.integers(1, 3))
    return (min(low, high), high), (any_low, int(any_low + rng.integers(0, 2)))


def _tight_knobs(rng: np.random.Generator) -> Knobs:
    """Caps of 0.04-0.3 (one to a few cards), drawn apart from the gaps; values moderate."""
    cap_low = float(rng.uniform(0.04, 0.12))
    gap_range, gap_any_range = _gap_ranges(rng, 6)
    return Knobs(
        max_share=(round(cap_low, 4), round(min(cap_low + rng.uniform(0.04, 0.18), 1.0), 4)),
        value_noise=float(rng.uniform(0.05, 0.2)), quality_tail=float(rng.uniform(0.2, 0.6)),
        gain_spread=float(rng.uniform(1.0, 2.0)), depth_drift=float(rng.uniform(0.0, 0.3)),
        negative_share=float(rng.uniform(0.2, 0.5)), mask_density=float(rng.uniform(0.9, 1.0)),
        gap_range=gap_range, gap_any_range=gap_any_range, count_cap_share=float(rng.uniform(0.0, 0.5)),
    )


def _noisy_knobs(rng: np.random.Generator) -> Knobs:
    """Noise of 20-30 %, heavy-tailed quality, gains spread 2-4x, drifting type effects, many negatives."""
    gap_range, gap_any_range = _gap_ranges(rng, 6)
    return Knobs(
        max_share=None,
        value_noise=float(rng.uniform(0.2, 0.3)), quality_tail=float(rng.uniform(0.6, 1.0)),
        gain_spread=float(rng.uniform(2.0, 4.0)), depth_drift=float(rng.uniform(0.3, 0.8)),
        negative_share=float(rng.uniform(0.4, 0.7)), mask_density=float(rng.uniform(0.75, 0.95)),
        gap_range=gap_range, gap_any_range=gap_any_range, count_cap_share=float(rng.uniform(0.0, 0.5)),
    )


def _stress_knobs(rng: np.random.Generator) -> Knobs:
    """Every knob drawn widely: tight or loose caps, 0-30 % noise, light to heavy tails, 5-80 % negatives."""
    cap_low = float(rng.uniform(0.03, 0.2))
    caps = (round(cap_low, 4), round(min(cap_low + rng.uniform(0.02, 0.25), 1.0), 4))
    gap_range, gap_any_range = _gap_ranges(rng, 7)
    return Knobs(
        max_share=None if rng.random() < 0.25 else caps,
        value_noise=float(rng.uniform(0.0, 0.3)), quality_tail=float(rng.uniform(0.1, 1.0)),
        gain_spread=float(rng.uniform(1.0, 4.0)), depth_drift=float(rng.uniform(0.0, 0.8)),
        negative_share=float(rng.uniform(0.05, 0.8)), mask_density=float(rng.uniform(0.7, 1.0)),
        gap_range=gap_range, gap_any_range=gap_any_range, count_cap_share=float(rng.uniform(0.0, 0.6)),
    )


_SIZES = {"tiny": (6, 8, 2), "small": (12, 20, 3), "device": (30, 50, 3), "large": (60, 100, 4)}
_KINDS = {
    "tight": (21, _tight_knobs),
    "noisy": (22, _noisy_knobs),
    "stress": (23, _stress_knobs),
}

#: The generated families, by name (also registered in :data:`mixrank.synthetic.FAMILIES`).
STRESS_FAMILIES: dict[str, KnobFamily] = {
    f"{kind}-{size}": KnobFamily(f"{kind}-{size}", *_SIZES[size], code * 10 + i, draw, draw.__doc__.strip())
    for kind, (code, draw) in _KINDS.items()
    for i, size in enumerate(_SIZES)
}

# Registered where every family is looked up; this module is imported by the package's __init__,
# so the registry is complete whatever module a caller imports first.
FAMILIES.update(STRESS_FAMILIES)
