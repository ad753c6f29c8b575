"""The mixing problem: cards, slots, types and the rules a plan must keep.

A page has ``K`` slots and there are ``N`` candidate cards. A plan is an integer
array ``assignment`` of length ``K``: ``assignment[s] = c`` puts card ``c`` in slot
``s`` and ``-1`` keeps the slot's organic item. See ``SPEC.md`` §1 for the rules.

Every field is validated once, on construction; solvers then read the compiled
array layout (:attr:`MixProblem.arrays`, see :mod:`mixrank.arrays`) and never see
Python objects.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from mixrank.errors import InstanceFileError, ProblemError

__all__ = ["TypeRule", "History", "MixProblem", "SCHEMA_VERSION"]

#: Version of the JSON instance format written by :meth:`MixProblem.to_json`.
SCHEMA_VERSION = 1

#: Relative tolerance of the share rule: ``eps = SHARE_TOL * D``.
SHARE_TOL = 1e-9

#: Largest ``|values|`` accepted: every sum and product a solver forms stays finite.
MAX_ABS_VALUE = 1e150
#: Largest share denominator ``D = history.pv_total_shown + sum(pv_weights)`` accepted.
MAX_PV_TOTAL = 1e150


def _is_int(x: Any) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def _is_real(x: Any) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, (bool, np.bool_))


def _is_finite_real(x: Any) -> bool:
    """A real number (not a bool) that is finite as a float (an int too large for a float is not)."""
    if not _is_real(x):
        return False
    try:
        return math.isfinite(float(x))
    except OverflowError:
        return False


def _sequence(name: str, x: Any, what: str) -> tuple:
    """``x`` as a tuple when it is a list, tuple or 1-D array; a ProblemError naming ``name`` otherwise.

    Mappings, sets and strings are refused: ``tuple({0: 5.0})`` would silently be ``(0,)``.
    """
    if isinstance(x, np.ndarray) and x.ndim == 1:
        return tuple(x.tolist())
    if isinstance(x, (list, tuple)):
        return tuple(x)
    raise ProblemError(f"{name} must be a sequence (list or tuple) of {what}, one per type; got {type(x).__name__} {x!r:.60}")


@dataclass(frozen=True)
class TypeRule:
    """Rules for one card type.

    Parameters
    ----------
    min_gap : int, default 1
        Two cards of this type must stand at slots ``s1 < s2`` with
        ``s2 - s1 >= min_gap`` (1 means no dispersion rule). Any size is accepted:
        a gap beyond the page means at most one card of the type.
    max_share : float in [0, 1], default 1
        Upper bound on the share of page views that this type occupies.
    min_share : float in [0, max_share], default 0
        Lower bound on that share.
    max_count : int >= 0 or None
        At most this many cards of this type on the page.

    Examples
    --------
    >>> TypeRule(min_gap=3, max_share=0.25)
    TypeRule(min_gap=3, max_share=0.25, min_share=0.0, max_count=None)
    """

    min_gap: int = 1
    max_share: float = 1.0
    min_share: float = 0.0
    max_count: int | None = None

    def __post_init__(self) -> None:
        if not _is_int(self.min_gap) or self.min_gap < 1:
            raise ProblemError(f"TypeRule.min_gap must be an int >= 1; got {self.min_gap!r}")
        for name in ("max_share", "min_share"):
            v = getattr(self, name)
            if not _is_finite_real(v) or not 0.0 <= v <= 1.0:
                raise ProblemError(f"TypeRule.{name} must be a number in [0, 1]; got {v!r}")
        if self.min_share > self.max_share:
            raise ProblemError(
                f"TypeRule.min_share must be <= max_share ({self.max_share}); got {self.min_share}"
            )
        if self.max_count is not None and (not _is_int(self.max_count) or self.max_count < 0):
            raise ProblemError(f"TypeRule.max_count must be an int >= 0 or None; got {self.max_count!r}")
        # Normalise numpy scalars so that equality and JSON are plain Python.
        object.__setattr__(self, "min_gap", int(self.min_gap))
        object.__setattr__(self, "max_share", float(self.max_share))
        object.__setattr__(self, "min_share", float(self.min_share))
        if self.max_count is not None:
            object.__setattr__(self, "max_count", int(self.max_count))


@dataclass(frozen=True)
class History:
    """What the session showed before slot 0 of this page.

    Parameters
    ----------
    last_gap : sequence of (int >= 1 or None), one per type
        The last type-``t`` card shown stands ``last_gap[t]`` slots before slot 0
        (1 = right before it); None when none is remembered.
    last_gap_any : int >= 1 or None
        The same for any inserted card, whatever its type.
    pv_shown : sequence of float >= 0, one per type, or None (zeros)
        Page views already served to each type in the window the share rule counts.
    pv_total_shown : float >= sum(pv_shown)
        All page views already served in that window.

    Examples
    --------
    >>> History(last_gap=[2, None], pv_shown=[0.5, 0.0], pv_total_shown=3.0).last_gap
    (2, None)
    """

    last_gap: tuple[int | None, ...] = ()
    last_gap_any: int | None = None
    pv_shown: tuple[float, ...] | None = None
    pv_total_shown: float = 0.0

    def __post_init__(self) -> None:
        gaps = _sequence("History.last_gap", self.last_gap, "ints >= 1 or None")
        for t, g in enumerate(gaps):
            if g is not None and (not _is_int(g) or g < 1):
                raise ProblemError(f"History.last_gap[{t}] must be an int >= 1 or None; got {g!r}")
        object.__setattr__(self, "last_gap", tuple(None if g is None else int(g) for g in gaps))
        g = self.last_gap_any
        if g is not None and (not _is_int(g) or g < 1):
            raise ProblemError(f"History.last_gap_any must be an int >= 1 or None; got {g!r}")
        if g is not None:
            object.__setattr__(self, "last_gap_any", int(g))
        if self.pv_shown is not None:
            shown = _sequence("History.pv_shown", self.pv_shown, "numbers >= 0")
            for t, v in enumerate(shown):
                if not _is_finite_real(v) or v < 0:
                    raise ProblemError(f"History.pv_shown[{t}] must be a finite number >= 0; got {v!r}")
            object.__setattr__(self, "pv_shown", tuple(float(v) for v in shown))
        tot = self.pv_total_shown
        if not _is_finite_real(tot) or tot < 0:
            raise ProblemError(f"History.pv_total_shown must be a finite number >= 0; got {tot!r}")
        object.__setattr__(self, "pv_total_shown", float(tot))
        shown_sum = sum(self.pv_shown or ())
        if shown_sum > self.pv_total_shown * (1 + 1e-12) + 1e-12:
            raise ProblemError(
                f"History.pv_total_shown must be >= sum(pv_shown) = {shown_sum}; got {self.pv_total_shown}"
            )

    def _to_dict(self) -> dict[str, Any]:
        return {
            "last_gap": list(self.last_gap),
            "last_gap_any": self.last_gap_any,
            "pv_shown": None if self.pv_shown is None else list(self.pv_shown),
            "pv_total_shown": self.pv_total_shown,
        }


def _as_array(name: str, x: Any, dtype: Any, ndim: int) -> np.ndarray:
    """``x`` as a fresh array of ``dtype`` with ``ndim`` dimensions, or a ProblemError naming ``name``.

    Numbers only, for numeric dtypes: bools, strings, complex numbers and other objects are
    refused rather than converted (``True`` is not 1.0, ``"2"`` is not 2.0, ``1+2j`` is not 1.0).
    """
    try:
        raw = np.asarray(x)
        if raw.dtype.kind == "O":  # ragged or mixed: look at the elements themselves
            flat = np.asarray(x, dtype=object).ravel()
            if any(isinstance(e, (bool, np.bool_, str, bytes, complex, np.complexfloating)) for e in flat.tolist()):
                raise TypeError("it holds a bool, string or complex number")
        elif not isinstance(x, np.ndarray) and raw.dtype.kind in "fiu":
            # a list mixing bools with numbers converts silently: look for them
            flat = np.asarray(x, dtype=object).ravel().tolist()
            if any(type(e) is bool or isinstance(e, np.bool_) for e in flat):
                raise TypeError("it holds a bool")
        if np.dtype(dtype).kind in "fiu" and raw.dtype.kind not in "fiuO":
            raise TypeError(f"it holds {raw.dtype.name} entries")
        arr = np.array(raw, dtype=dtype, copy=True)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ProblemError(f"{name} must be an array of {np.dtype(dtype).name}; got {type(x).__name__} ({exc})") from None
    if arr.ndim != ndim:
        raise ProblemError(f"{name} must be {ndim}-dimensional; got shape {arr.shape}")
    return arr


def _first_bad(mask: np.ndarray) -> tuple[int, ...]:
    idx = np.argwhere(mask)[0]
    return tuple(int(i) for i in idx)


@dataclass(frozen=True, eq=False)
class MixProblem:
    """One mixing instance: which card goes into which slot of a page.

    Parameters
    ----------
    values : array (N, K) of finite float, ``|value| <= 1e150``
        Value of card ``c`` in slot ``s`` (may be negative). Numbers only: bools,
        strings and complex numbers are refused, not converted.
    types : array (N,) of int in [0, T)
        Card types; ``T = len(rules)``.
    pv_weights : array (K,) of float >= 0
        Each slot's page-view contribution (falls with depth). With
        ``history.pv_total_shown`` they must sum to at most ``1e150`` (any tiny
        positive magnitude is fine: the share rule is scale-free).
    rules : sequence of T :class:`TypeRule`
        Per-type dispersion, share and count rules.
    min_gap_any : int >= 1, default 1
        Gap between any two inserted cards, whatever their types.
    allowed : array (N, K) of bool, or None
        Where each card may go (None: anywhere).
    history : :class:`History` or None
        What the session showed before slot 0.

    Raises
    ------
    ProblemError
        (a ``ValueError``) naming the field, what it must be and what it got.

    Examples
    --------
    >>> import numpy as np
    >>> p = MixProblem(values=[[1.0, 0.5, 0.2], [0.9, 0.8, 0.1]], types=[0, 0],
    ...                pv_weights=[1.0, 0.8, 0.6], rules=[TypeRule(min_gap=2)])
    >>> p.check([0, 1, -1])
    ['type 0 cards at slots 0 and 1 stand 1 apart; min_gap is 2']
    >>> p.objective([0, -1, 1])
    1.1
    """

    values: np.ndarray
    types: np.ndarray
    pv_weights: np.ndarray
    rules: tuple[TypeRule, ...]
    min_gap_any: int = 1
    allowed: np.ndarray | None = None
    history: History | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        values = _as_array("values", self.values, np.float64, 2)
        n, k = values.shape
        if k < 1:
            raise ProblemError(f"values must have at least one slot (column); got shape {values.shape}")
        bad = ~np.isfinite(values)
        if bad.any():
            i = _first_bad(bad)
            raise ProblemError(f"values must be finite; got {values[i]} at {i}")
        bad = np.abs(values) > MAX_ABS_VALUE
        if bad.any():
            i = _first_bad(bad)
            raise ProblemError(f"values must be finite with |value| <= {MAX_ABS_VALUE:g}; got {values[i]} at {i}")
        types_in = self.types
        types = _as_array("types", types_in, np.float64, 1)
        if types.shape != (n,):
            raise ProblemError(f"types must have shape ({n},) (one per card); got {types.shape}")
        if n and (not np.all(np.isfinite(types)) or not np.all(types == np.round(types))):
            raise ProblemError(f"types must be integers; got {types_in!r:.80}")
        pv = _as_array("pv_weights", self.pv_weights, np.float64, 1)
        if pv.shape != (k,):
            raise ProblemError(f"pv_weights must have shape ({k},) (one per slot); got {pv.shape}")
        bad = ~np.isfinite(pv) | (pv < 0)
        if bad.any():
            i = _first_bad(bad)[0]
            raise ProblemError(f"pv_weights must be finite and >= 0; got {pv[i]} at slot {i}")
        with np.errstate(over="ignore"):
            total = float(pv.sum())
        total += (0.0 if not isinstance(self.history, History) else self.history.pv_total_shown)
        if not total <= MAX_PV_TOTAL:
            raise ProblemError(
                f"pv_weights (with history.pv_total_shown) must sum to at most {MAX_PV_TOTAL:g} so that share "
                f"limits stay finite; got a total of {total:g}"
            )
        rules = self.rules
        if isinstance(rules, TypeRule) or not isinstance(rules, Sequence):
            raise ProblemError(f"rules must be a sequence of TypeRule, one per type; got {type(rules).__name__}")
        rules = tuple(rules)
        if len(rules) == 0:
            raise ProblemError("rules must name at least one type; got an empty sequence")
        for t, r in enumerate(rules):
            if not isinstance(r, TypeRule):
                raise ProblemError(f"rules[{t}] must be a TypeRule; got {type(r).__name__}")
        n_types = len(rules)
        if n and (types.min() < 0 or types.max() >= n_types):  # (checked as floats: 1e300 stays 1e300)
            c = int(np.argmax((types < 0) | (types >= n_types)))
            raise ProblemError(
                f"types must be in [0, {n_types}) (T = len(rules)); got {int(types[c]) if abs(types[c]) < 2**53 else format(types[c], 'g')} for card {c}"
            )
        types = types.astype(np.int64)
        if not _is_int(self.min_gap_any) or self.min_gap_any < 1:
            raise ProblemError(f"min_gap_any must be an int >= 1; got {self.min_gap_any!r}")
        allowed = self.allowed
        if allowed is not None:
            try:
                allowed_arr = np.asarray(allowed)
            except ValueError as exc:
                raise ProblemError(f"allowed must be an (N, K) array of bool; got a ragged {type(allowed).__name__} "
                                   f"({exc})") from None
            if allowed_arr.dtype != np.bool_:
                if allowed_arr.size and not np.isin(allowed_arr, (0, 1)).all():
                    raise ProblemError(f"allowed must be an array of bool; got dtype {allowed_arr.dtype}")
            allowed = _as_array("allowed", allowed_arr, np.bool_, 2)
            if allowed.shape != (n, k):
                raise ProblemError(f"allowed must have shape ({n}, {k}) like values; got {allowed.shape}")
            allowed.setflags(write=False)
        hist = self.history
        if hist is not None:
            if not isinstance(hist, History):
                raise ProblemError(f"history must be a History or None; got {type(hist).__name__}")
            if len(hist.last_gap) != n_types:
                raise ProblemError(
                    f"history.last_gap must have one entry per type ({n_types}); got {len(hist.last_gap)}"
                )
            if hist.pv_shown is not None and len(hist.pv_shown) != n_types:
                raise ProblemError(
                    f"history.pv_shown must have one entry per type ({n_types}); got {len(hist.pv_shown)}"
                )
        for arr in (values, types, pv):
            arr.setflags(write=False)
        set_(self, "values", values)
        set_(self, "types", types)
        set_(self, "pv_weights", pv)
        set_(self, "rules", rules)
        set_(self, "min_gap_any", int(self.min_gap_any))
        set_(self, "allowed", allowed)

    # ------------------------------------------------------------------ sizes
    @property
    def n_cards(self) -> int:
        """N, the number of candidate cards."""
        return int(self.values.shape[0])

    @property
    def n_slots(self) -> int:
        """K, the number of slots on the page."""
        return int(self.values.shape[1])

    @property
    def n_types(self) -> int:
        """T, the number of card types (``len(rules)``)."""
        return len(self.rules)

    @cached_property
    def arrays(self):  # -> mixrank.arrays.ProblemArrays
        """The compiled array layout that every solver kernel reads."""
        from mixrank.arrays import compile_problem

        return compile_problem(self)

    def __repr__(self) -> str:
        extra = []
        if self.min_gap_any > 1:
            extra.append(f"min_gap_any={self.min_gap_any}")
        if self.allowed is not None:
            extra.append(f"allowed={int(self.allowed.sum())}/{self.allowed.size}")
        if self.history is not None:
            extra.append("history")
        tail = (", " + ", ".join(extra)) if extra else ""
        return f"MixProblem(N={self.n_cards}, K={self.n_slots}, T={self.n_types}{tail})"

    # --------------------------------------------------------------- checking
    def _plan(self, assignment: Any) -> np.ndarray:
        try:
            a = np.asarray(assignment)
        except (ValueError, OverflowError) as exc:
            raise ProblemError(f"assignment must be a 1-D array of ints; got {type(assignment).__name__} ({exc})") from None
        if a.shape != (self.n_slots,):
            raise ProblemError(f"assignment must have shape ({self.n_slots},) (one per slot); got {a.shape}")
        if a.size and a.dtype.kind not in "iu":
            if a.dtype.kind != "f" or not (np.all(np.isfinite(a)) and np.all(a == np.round(a))):
                raise ProblemError(f"assignment must hold integers; got dtype {a.dtype}")
        # Range first, in the plan's own dtype: a uint64 2**64-1 or a float 1e30 must not wrap around to -1.
        bad = (a < -1) | (a >= self.n_cards) if a.dtype.kind != "u" else a >= self.n_cards
        if bad.any():
            s = int(np.argmax(bad))
            raise ProblemError(
                f"assignment entries must be -1 or a card in [0, {self.n_cards}); got {a[s].item()!r:.30} at slot {s}"
            )
        return a.astype(np.int64)

    def check(self, assignment: Any) -> list[str]:
        """List every rule that ``assignment`` breaks, in words; empty when feasible.

        Raises :class:`ProblemError` when ``assignment`` is not a plan at all
        (wrong shape, non-integers, card indices out of range).
        """
        a = self._plan(assignment)
        ar = self.arrays
        slots = np.flatnonzero(a >= 0)
        cards = a[slots]
        if self._feasible_fast(ar, slots.tolist(), cards.tolist()):
            return []
        out: list[str] = []
        # 1. each card at most once, allowed pairs only
        first_slot: dict[int, int] = {}
        for s, c in zip(slots.tolist(), cards.tolist()):
            if c in first_slot:
                out.append(f"card {c} is used twice (slots {first_slot[c]} and {s})")
            else:
                first_slot[c] = s
            if not ar.allowed[c, s]:
                out.append(f"card {c} is not allowed in slot {s}")
        # 2. dispersion, per type and for any card
        hist = self.history
        groups: list[tuple[str, np.ndarray, int, int | None]] = []
        for t in range(self.n_types):
            last = hist.last_gap[t] if hist is not None else None
            groups.append((f"type {t}", slots[self.types[cards] == t], self.rules[t].min_gap, last))
        groups.append(("inserted", slots, self.min_gap_any, hist.last_gap_any if hist is not None else None))
        for label, where, gap, last in groups:
            if gap <= 1 or where.size == 0:
                continue
            s0 = int(where[0])
            if last is not None and s0 + last < gap:
                out.append(
                    f"{label} card at slot {s0} stands {s0 + last} after the last one shown "
                    f"(last_gap {last}); min_gap{'_any' if label == 'inserted' else ''} is {gap}"
                )
            for s1, s2 in zip(where[:-1].tolist(), where[1:].tolist()):
                if s2 - s1 < gap:
                    name = "min_gap_any" if label == "inserted" else "min_gap"
                    out.append(f"{label} cards at slots {s1} and {s2} stand {s2 - s1} apart; {name} is {gap}")
        # 3. share and 4. count
        pv_used = np.zeros(self.n_types)
        np.add.at(pv_used, self.types[cards], self.pv_weights[slots])
        counts = np.bincount(self.types[cards], minlength=self.n_types)
        denom = ar.pv_denominator
        for t, rule in enumerate(self.rules):
            share_pv = ar.pv_shown[t] + pv_used[t]
            share = share_pv / denom if denom > 0 else 0.0
            if share_pv > ar.share_hi[t] + ar.pv_shown[t]:
                out.append(f"type {t} share {share:.6g} exceeds max_share {rule.max_share:g}")
            if share_pv < ar.share_lo[t] + ar.pv_shown[t]:
                out.append(f"type {t} share {share:.6g} is below min_share {rule.min_share:g}")
            if rule.max_count is not None and counts[t] > rule.max_count:
                out.append(f"type {t} has {int(counts[t])} cards; max_count is {rule.max_count}")
        return out

    def _feasible_fast(self, ar, slots: list[int], cards: list[int]) -> bool:
        """One pass in plain Python that proves a plan keeps every rule.

        Plans are short, so list arithmetic beats numpy calls here; the wordy loop of
        :meth:`check` runs only when this returns False. Comparisons are the same.
        """
        t_count = ar.n_types
        gaps = self._gaps
        last = [-d for d in self._init_dist]  # slot of the previous card, per type and (index T) any
        pv_used = [0.0] * t_count
        counts = [0] * t_count
        seen = set()
        types, pv, allowed = self._types_list, self._pv_list, ar.allowed
        for s, c in zip(slots, cards):
            t = types[c]
            if c in seen or not allowed[c, s] or s - last[t] < gaps[t] or s - last[t_count] < gaps[t_count]:
                return False
            seen.add(c)
            last[t] = last[t_count] = s
            pv_used[t] += pv[s]
            counts[t] += 1
        shown, lo, hi = self._share_lists
        for t in range(t_count):
            share = shown[t] + pv_used[t]
            if share > hi[t] + shown[t] or share < lo[t] + shown[t] or counts[t] > self._count_caps[t]:
                return False
        return True

    @cached_property
    def _gaps(self) -> list[int]:
        return self.arrays.min_gap.tolist()

    @cached_property
    def _init_dist(self) -> list[int]:
        return self.arrays.init_dist.tolist()

    @cached_property
    def _types_list(self) -> list[int]:
        return self.types.tolist()

    @cached_property
    def _pv_list(self) -> list[float]:
        return self.pv_weights.tolist()

    @cached_property
    def _share_lists(self) -> tuple[list[float], list[float], list[float]]:
        ar = self.arrays
        return ar.pv_shown.tolist(), ar.share_lo.tolist(), ar.share_hi.tolist()

    @cached_property
    def _count_caps(self) -> list[float]:
        return [math.inf if r.max_count is None else r.max_count for r in self.rules]

    def is_feasible(self, assignment: Any) -> bool:
        """True when :meth:`check` finds nothing wrong with ``assignment``."""
        return not self.check(assignment)

    def objective(self, assignment: Any) -> float:
        """Total value ``sum(values[assignment[s], s])`` over filled slots."""
        a = self._plan(assignment)
        s = np.flatnonzero(a >= 0)
        return float(self.values[a[s], s].sum())

    # ------------------------------------------------------------------- JSON
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (see :meth:`to_json`)."""
        return {
            "format": "mixrank.MixProblem",
            "schema_version": SCHEMA_VERSION,
            "values": self.values.tolist(),
            "types": self.types.tolist(),
            "pv_weights": self.pv_weights.tolist(),
            "rules": [
                {"min_gap": r.min_gap, "max_share": r.max_share, "min_share": r.min_share, "max_count": r.max_count}
                for r in self.rules
            ],
            "min_gap_any": self.min_gap_any,
            "allowed": None if self.allowed is None else self.allowed.tolist(),
            "history": None if self.history is None else self.history._to_dict(),
        }

    def to_json(self, indent: int | None = None) -> str:
        """Serialise losslessly to JSON (floats are written with round-trip precision).

        Examples
        --------
        >>> p = MixProblem(values=[[0.1, 0.2]], types=[0], pv_weights=[1, 1], rules=[TypeRule()])
        >>> MixProblem.from_json(p.to_json()) == p
        True
        """
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, data: Any) -> MixProblem:
        """Build a problem from :meth:`to_dict` output; malformed input raises InstanceFileError."""
        if not isinstance(data, dict):
            raise InstanceFileError(f"instance must be a JSON object; got {type(data).__name__}")
        version = data.get("schema_version")
        if not _is_int(version):
            raise InstanceFileError(f"instance must carry an integer schema_version; got {version!r}")
        if version > SCHEMA_VERSION:
            raise InstanceFileError(
                f"instance schema_version {version} is newer than this mixrank reads ({SCHEMA_VERSION}); "
                "upgrade mixrank"
            )
        if version < 1:
            raise InstanceFileError(f"instance schema_version must be >= 1; got {version}")
        fmt = data.get("format", "mixrank.MixProblem")
        if fmt != "mixrank.MixProblem":
            raise InstanceFileError(f"instance format must be 'mixrank.MixProblem'; got {fmt!r}")
        required = ("values", "types", "pv_weights", "rules")
        missing = [k for k in required if k not in data]
        if missing:
            raise InstanceFileError(f"instance is missing field(s) {', '.join(missing)}")
        known = {"format", "schema_version", *required, "min_gap_any", "allowed", "history"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InstanceFileError(f"instance has unknown field(s) {', '.join(unknown)}")
        try:
            rules_in = data["rules"]
            if not isinstance(rules_in, list):
                raise ProblemError(f"rules must be a list of objects; got {type(rules_in).__name__}")
            rules = []
            for i, r in enumerate(rules_in):
                if not isinstance(r, dict):
                    raise ProblemError(f"rules[{i}] must be an object; got {type(r).__name__}")
                rules.append(TypeRule(**r))
            hist_in = data.get("history")
            history = None
            if hist_in is not None:
                if not isinstance(hist_in, dict):
                    raise ProblemError(f"history must be an object or null; got {type(hist_in).__name__}")
                history = History(**hist_in)
            allowed = data.get("allowed")
            if isinstance(allowed, list) and len(allowed) == 0:  # no cards: an empty (0, K) mask
                allowed = np.zeros((0, len(data["pv_weights"])), dtype=bool)
            elif allowed is not None:
                try:
                    allowed = np.array(allowed)
                except ValueError:
                    raise ProblemError("allowed must be an (N, K) array of true/false; got a ragged list") from None
                if allowed.dtype != np.bool_:
                    raise ProblemError(f"allowed must hold true/false; got dtype {allowed.dtype}")
            values = data["values"]
            if isinstance(values, list) and len(values) == 0:
                values = np.zeros((0, len(data["pv_weights"])))
            return cls(
                values=values,
                types=data["types"],
                pv_weights=data["pv_weights"],
                rules=rules,
                min_gap_any=data.get("min_gap_any", 1),
                allowed=allowed,
                history=history,
            )
        except TypeError as exc:
            raise InstanceFileError(f"malformed instance: {exc}") from None
        except ProblemError as exc:
            raise InstanceFileError(f"invalid instance: {exc}") from None

    @classmethod
    def from_json(cls, text: str | bytes) -> MixProblem:
        """Parse :meth:`to_json` output; a malformed or newer-schema text raises InstanceFileError."""
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InstanceFileError(f"instance is not valid JSON: {exc}") from None
        except RecursionError:
            raise InstanceFileError("instance is nested too deeply to be a mixrank instance") from None
        except ValueError as exc:  # e.g. an integer literal with more digits than Python converts
            raise InstanceFileError(f"instance is not valid JSON: {exc}") from None
        return cls.from_dict(data)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the instance as JSON; the file appears whole or not at all.

        A ``path`` that is a symbolic link is written through (the file it points to is
        replaced, the link stays); a failed write raises ``OSError`` naming ``path``.
        """
        from mixrank._io import atomic_write

        with atomic_write(path) as fh:
            fh.write(self.to_json().encode("utf-8"))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> MixProblem:
        """Read an instance file written by :meth:`save` (or ``mixrank gen``)."""
        try:
            text = Path(path).read_bytes()
        except OSError as exc:
            raise InstanceFileError(f"cannot read instance file {path}: {exc.strerror}") from None
        try:
            return cls.from_json(text)
        except InstanceFileError as exc:
            raise InstanceFileError(f"{path}: {exc}") from None

    def __reduce__(self):
        # Pickles (process pools send every problem to a worker) as raw buffers and the validated fields, and
        # is rebuilt without validating again: ~8x cheaper than the dataclass with its numpy arrays, which
        # cost about as much as a beam solve. The cached ``arrays`` stay behind (rebuilt on first use).
        allowed = self.allowed
        return (_rebuild_problem, (self.values.shape, self.values.tobytes(), self.types.tobytes(),
                                   self.pv_weights.tobytes(), self.rules, self.min_gap_any,
                                   None if allowed is None else allowed.tobytes(), self.history))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MixProblem):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]


def _rebuild_problem(shape, values, types, pv, rules, min_gap_any, allowed, history) -> MixProblem:
    """A pickled :class:`MixProblem` back from :meth:`MixProblem.__reduce__`'s fields (already validated):
    its arrays read-only views of the pickled bytes (``np.frombuffer`` over bytes), as the original's are."""
    p = object.__new__(MixProblem)
    p.__dict__.update(
        values=np.frombuffer(values, dtype=np.float64).reshape(shape),
        types=np.frombuffer(types, dtype=np.int64),
        pv_weights=np.frombuffer(pv, dtype=np.float64),
        rules=rules,
        min_gap_any=min_gap_any,
        allowed=None if allowed is None else np.frombuffer(allowed, dtype=np.bool_).reshape(shape),
        history=history,
    )
    return p
