"""Dynamic mixing on the device: plan, show a screen, commit what the user did, re-plan (SPEC §5).

As the user scrolls, the slots already shown are committed, the behaviour
sequences grow with what the user saw and clicked, the scorer (ESAN, or any
model) re-scores the slots that are left and a solver re-plans them with a
:class:`~mixrank.History` built from what was shown, so that gaps and PV shares
carry across every screen and page boundary.

A session is a run of pages (one :class:`esan.Requests` each: the organic page
and its candidate cards). The loop in user code::

    session = MixSession(rules, model, solver="beam", gains=gains)
    for request in pages:                       # each page of the session, as it loads
        for _ in range(0, K, 5):                # a screen of 5 slots at a time
            plan = session.plan(request)        # re-score and re-plan the slots left (the first call starts the page)
            ...                                 # show the next screen: plan.assignment[:5]
            session.commit(min(5, len(plan.assignment)), clicked=clicked)  # what was shown, what the user did
    session.feed                                # every committed slot, for an audit

Rule windows: gaps and PV shares count over the whole session (the committed
feed is one long feed, page after page); ``max_count`` counts per page.

Examples
--------
>>> import numpy as np
>>> import mixrank
>>> from mixrank.synthetic import FeedEnv, FeedConfig
>>> env = FeedEnv(FeedConfig(n_slots=6, n_cards=3, n_types=1, gains=(1.5,)))
>>> batch = env.sample(1, seed=0)
>>> oracle = lambda request: env.ctr_matrix(batch)        # any callable giving (card_ctr, organic_ctr)
>>> s = mixrank.MixSession([mixrank.TypeRule(min_gap=2)], lambda r: tuple(m[0] for m in oracle(r)),
...                        solver="greedy", gains=[1.5], examination=env.examination)
>>> plan = s.plan(batch.requests)
>>> s.commit(3, clicked=[False, True, False])            # the first screen: 3 slots, one click
>>> plan = s.plan(batch.requests)                        # re-plan slots 3..5 with the history
>>> plan.first_slot, len(plan.assignment)
(3, 3)
>>> s.commit(3)
>>> s.page_done, len(s.feed.card)
(True, 6)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from mixrank.errors import ProblemError, SessionError, SolverError
from mixrank.problem import History, MixProblem, TypeRule
from mixrank.solution import Solution

__all__ = ["MixSession", "SessionPlan", "CommittedFeed", "SessionError"]

#: Behaviour fields of the request schema (see :mod:`esan.data`), exposures then clicks.
_EXP = ("exp_type", "exp_category", "exp_features", "exp_action", "exp_mask")
_CLK = ("clk_type", "clk_category", "clk_features", "clk_action", "clk_mask")
_PAGE = ("page_type", "page_category", "page_features", "cand_type", "cand_category", "cand_features")


class CommittedFeed(NamedTuple):
    """Every committed slot of a session, in the order shown (G slots); what an auditor reads.

    ``type`` is the card's type, or -1 for an organic item; ``pv_weight`` is the
    slot's PV weight as the rules count it.
    """

    page: np.ndarray  #: (G,) int, page index
    slot: np.ndarray  #: (G,) int, slot on its page
    card: np.ndarray  #: (G,) int, candidate index on its page, -1 organic
    type: np.ndarray  #: (G,) int, card type, -1 organic
    pv_weight: np.ndarray  #: (G,) float
    exposed: np.ndarray  #: (G,) bool
    clicked: np.ndarray  #: (G,) bool


@dataclass(frozen=True)
class SessionPlan:
    """What :meth:`MixSession.plan` returns: the plan of the slots left on the current page.

    Attributes
    ----------
    page : int
        Index of the page in the session.
    first_slot : int
        The page slot that ``assignment[0]`` is for (the slots before it are committed).
    assignment : ndarray (K - first_slot,) of int
        Candidate per remaining slot, -1 for the organic item.
    problem : MixProblem
        The problem that was solved (remaining slots, history of the session).
    solution : Solution or None
        The solver's answer (None when a planner function made the plan).
    """

    page: int
    first_slot: int
    assignment: np.ndarray
    problem: MixProblem
    solution: Solution | None


def _int_arg(name: str, v: Any, lo: int) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
        raise SessionError(f"{name} must be an int >= {lo}; got {v!r}")
    return int(v)


def _bool_vector(name: str, x: Any, m: int, default: bool) -> np.ndarray:
    if x is None:
        return np.full(m, default)
    arr = np.asarray(x)
    if arr.shape != (m,):
        raise SessionError(f"{name} must have one entry per shown slot, shape ({m},); got shape {arr.shape}")
    if arr.dtype != np.bool_ and (arr.dtype.kind not in "iu" or (arr.size and not np.isin(arr, (0, 1)).all())):
        raise SessionError(f"{name} must hold booleans; got dtype {arr.dtype}")
    return arr.astype(bool)


def _action_rows(name: str, x: Any, m: int, width: int) -> np.ndarray:
    if x is None:
        return np.zeros((m, width), np.float32)
    arr = np.asarray(x, dtype=np.float64)
    if arr.shape != (m, width):
        raise SessionError(f"{name} must have shape ({m}, {width}) (shown slots, action features); got {arr.shape}")
    if not np.isfinite(arr).all():
        raise SessionError(f"{name} must be finite; got {arr[~np.isfinite(arr)][0]}")
    return arr.astype(np.float32)


class MixSession:
    """The on-device mixing loop of one user's session: plan, commit, re-plan.

    Parameters
    ----------
    rules : sequence of T TypeRule
        One per card type; gaps and shares hold over the whole session, counts per page.
    scorer : ESAN model or callable
        An object with ``predict(requests) -> (card_ctr (N, K), organic_ctr (K,))``
        (an :class:`esan.ESAN`), or a callable ``scorer(request)`` returning that
        pair, or only the (N, K) card CTR matrix (organic CTRs are then taken as 0).
        It sees the request with the session's *current* behaviour sequences.
        May be None when every :meth:`plan` call passes ``ctr``.
    solver : str or callable, default "beam"
        A registered solver name (:func:`mixrank.available_solvers`), or a planner
        function ``planner(problem, first_slot) -> assignment`` (e.g. a fixed-position
        rule); a planner's plan must keep every rule of ``problem``.
    min_gap_any : int >= 1
        Gap between any two inserted cards, over the whole session.
    gains : array (T,) or None
        Value of a click per card type (default all 1).
    examination : array (K,) or None
        Probability that the user reaches each slot of a page; the values' weights
        and the slots' PV weights. Default :func:`mixrank.synthetic.examination` ``(K)``.
    organic_gain, value_scale : float
        See :func:`mixrank.pipeline.mix_values` (``organic_gain=0`` maximises the
        cards' value alone).
    time_limit, seed
        Passed to :func:`mixrank.solve`.
    **options
        Solver options (checked now, before any work).
    """

    def __init__(
        self,
        rules: Sequence[TypeRule],
        scorer: Any,
        solver: str | Callable[[MixProblem, int], Any] = "beam",
        *,
        min_gap_any: int = 1,
        gains: Any = None,
        examination: Any = None,
        organic_gain: float = 1.0,
        value_scale: float = 100.0,
        time_limit: float | None = None,
        seed: int = 0,
        **options: Any,
    ) -> None:
        from mixrank.pipeline import _float_array, mix_values
        from mixrank.solve import _check_common, resolve_solver

        if isinstance(rules, TypeRule) or not isinstance(rules, Sequence) or not rules:
            raise ProblemError(f"rules must be a non-empty sequence of TypeRule (one per card type); got {rules!r}")
        for t, rule in enumerate(rules):
            if not isinstance(rule, TypeRule):
                raise ProblemError(f"rules[{t}] must be a TypeRule; got {type(rule).__name__}")
        self.rules = tuple(rules)
        self.n_types = len(self.rules)
        if scorer is not None and not callable(scorer) and not callable(getattr(scorer, "predict", None)):
            raise ProblemError(f"scorer must have predict(requests) or be callable; got {type(scorer).__name__}")
        self.scorer = scorer
        if callable(solver) and not isinstance(solver, str):
            if options:
                raise SolverError(f"options are for a registered solver; a planner function got {sorted(options)}")
        else:
            resolve_solver(solver, options)
        _check_common(time_limit, seed)
        self.solver, self.options, self.time_limit, self.seed = solver, dict(options), time_limit, seed
        self.min_gap_any = _int_arg("min_gap_any", min_gap_any, 1)
        self.gains = np.ones(self.n_types) if gains is None else _float_array("gains", gains, (self.n_types,))
        self.examination = None if examination is None else _float_array("examination", examination)
        # gains, organic_gain and value_scale are checked now (on a 1-slot dummy), not at the first plan
        mix_values(np.zeros((self.n_types, 1)), [0.0], np.arange(self.n_types), self.gains, [1.0],
                   organic_gain=organic_gain, value_scale=value_scale)
        self.organic_gain, self.value_scale = organic_gain, value_scale
        self._feed: dict[str, list] = {name: [] for name in CommittedFeed._fields}
        self._behaviour: dict[str, np.ndarray] | None = None
        self._schema: tuple[int, int] | None = None  # (T, C) of the first request
        self._request: Any = None  # the current page's request
        self._page = -1
        self._next_slot = 0  # next uncommitted slot of the current page
        self._plan: np.ndarray | None = None  # the current page's plan (committed part included)
        self._page_count = np.zeros(self.n_types, np.int64)
        self._planned = False

    # ------------------------------------------------------------ state
    @property
    def page(self) -> int:
        """Index of the current page (-1 before the first plan)."""
        return self._page

    @property
    def next_slot(self) -> int:
        """The next slot of the current page to be committed."""
        return self._next_slot

    @property
    def page_done(self) -> bool:
        """True before the first page and when every slot of the current page is committed."""
        return self._request is None or self._next_slot >= self._request.dims["K"]

    @property
    def feed(self) -> CommittedFeed:
        """Every committed slot so far, in the order shown (arrays; see :class:`CommittedFeed`)."""
        f = self._feed
        return CommittedFeed(
            page=np.array(f["page"], np.int64),
            slot=np.array(f["slot"], np.int64),
            card=np.array(f["card"], np.int64),
            type=np.array(f["type"], np.int64),
            pv_weight=np.array(f["pv_weight"], np.float64),
            exposed=np.array(f["exposed"], bool),
            clicked=np.array(f["clicked"], bool),
        )

    @property
    def behaviour(self) -> dict[str, np.ndarray] | None:
        """The session's behaviour sequences now (copies; None before the first plan), newest first."""
        return None if self._behaviour is None else {k: v.copy() for k, v in self._behaviour.items()}

    def history(self) -> History:
        """What the committed feed means for the next slot: gaps and PV shares of the whole session.

        ``last_gap[t]`` counts slots from the last committed type-t card to the
        next slot (1 = it was the last slot shown); page boundaries do not break
        the count. ``pv_shown`` and ``pv_total_shown`` sum the committed PV weights.
        """
        f = self._feed
        g = len(f["type"])
        types = np.array(f["type"], np.int64)
        pv = np.array(f["pv_weight"], np.float64)
        last_gap: list[int | None] = []
        for t in range(self.n_types):
            at = np.flatnonzero(types == t)
            last_gap.append(int(g - at[-1]) if at.size else None)
        cards = np.flatnonzero(types >= 0)
        shown = [float(pv[types == t].sum()) for t in range(self.n_types)]
        return History(
            last_gap=last_gap,
            last_gap_any=int(g - cards[-1]) if cards.size else None,
            pv_shown=shown,
            pv_total_shown=max(float(pv.sum()), sum(shown)),
        )

    # ------------------------------------------------------------ requests
    def _check_request(self, request: Any) -> Any:
        from mixrank.synthetic.feed import Requests  # the request schema, whichever module holds it

        if not isinstance(request, Requests):
            raise SessionError(f"request must be an esan.Requests record; got {type(request).__name__}")
        if len(request) != 1:
            raise SessionError(f"request must hold one request (one page); got {len(request)}")
        if request.n_types != self.n_types:
            raise SessionError(f"request.n_types must be {self.n_types} (one rule per card type); got {request.n_types}")
        if self._schema is not None and (request.n_types, request.n_categories) != self._schema:
            raise SessionError(f"request must have (T, C) = {self._schema} as the session's first page; "
                               f"got {(request.n_types, request.n_categories)}")
        if self._behaviour is not None:
            for name, arr in self._behaviour.items():
                if getattr(request, name).shape[1:] != arr.shape:
                    raise SessionError(f"request.{name} must have shape (1, {', '.join(map(str, arr.shape))}) "
                                       f"as the session's first page; got {getattr(request, name).shape}")
        return request

    def scoring_request(self, request: Any) -> Any:
        """``request`` with the session's current behaviour sequences: what the scorer sees.

        Before the first page, the request's own behaviour is the session's start.
        """
        request = self._check_request(request)
        if self._behaviour is None:
            return request
        from mixrank.synthetic.feed import Requests

        arrays = {**request.fields, **{k: v[None] for k, v in self._behaviour.items()}}
        return Requests(request.n_types, request.n_categories, **arrays)

    def _same_page(self, request: Any) -> bool:
        cur = self._request
        return all(np.array_equal(getattr(cur, name), getattr(request, name)) for name in _PAGE)

    def _score(self, request: Any) -> tuple[np.ndarray, np.ndarray]:
        if self.scorer is None:
            raise SessionError("this session has no scorer: pass ctr=(card_ctr, organic_ctr) to plan")
        if callable(getattr(self.scorer, "predict", None)):
            out = self.scorer.predict(request)
        else:
            out = self.scorer(request)
        if isinstance(out, tuple) and len(out) == 2:
            return out[0], out[1]
        return out, np.zeros(request.dims["K"])

    # ------------------------------------------------------------ the loop
    def end_page(self) -> None:
        """Leave the current page early (its remaining slots are never shown); the next plan starts a page."""
        if self._request is not None:
            self._next_slot = self._request.dims["K"]

    def plan(self, request: Any, *, ctr: tuple[Any, Any] | None = None, allowed: Any = None) -> SessionPlan:
        """Re-score and plan the slots left on the page of ``request``.

        When the current page is done (or before the first), ``request`` starts
        the next page; otherwise it must be the current page's request (the same
        organic items and candidates; its behaviour is replaced by the session's).

        Parameters
        ----------
        request : esan.Requests
            One page: behaviour (used only on the first page), organic items, candidates.
        ctr : (card_ctr (N, K), organic_ctr (K,)), optional
            Precomputed CTRs for the whole page (e.g. a batched prediction of
            :meth:`scoring_request`); the scorer is then not called.
        allowed : array (N, K) of bool, optional
            Where each card may go on this page.

        Returns
        -------
        SessionPlan
            When the solver finds no feasible plan (status ``INFEASIBLE`` or
            ``UNKNOWN``, e.g. a min-share rule that the slots left cannot meet),
            every slot left keeps its organic item; ``plan.solution.status`` says so.
        """
        from mixrank.pipeline import _float_array, mix_values

        request = self._check_request(request)
        if self.page_done:
            self._start_page(request)
        elif not self._same_page(request):
            k = self._request.dims["K"]
            raise SessionError(f"request must be the current page's request (page {self._page} has slots "
                               f"{self._next_slot}..{k - 1} left to commit; call end_page() to leave it); "
                               "got a request with other organic items or candidates")
        req = self.scoring_request(request)
        n, k, r0 = req.dims["N"], req.dims["K"], self._next_slot
        card, org = self._score(req) if ctr is None else ctr
        card = _float_array("card_ctr", card, (n, k))
        org = _float_array("organic_ctr", org, (k,))
        exam = self._page_examination(k)
        types = req.cand_type[0].astype(np.int64)
        values = mix_values(card[:, r0:], org[r0:], types, self.gains, exam[r0:],
                            organic_gain=self.organic_gain, value_scale=self.value_scale)
        mask = np.ones((n, k), bool)
        if allowed is not None:
            a = np.asarray(allowed)
            if a.shape != (n, k) or a.dtype != np.bool_:
                raise SessionError(f"allowed must be a bool array of shape ({n}, {k}); got {a.dtype} {a.shape}")
            mask &= a
        used = self._plan[:r0]
        mask[used[used >= 0]] = False  # cards shown on this page are spent
        rules = [
            TypeRule(r.min_gap, r.max_share, r.min_share,
                     None if r.max_count is None else max(r.max_count - int(self._page_count[t]), 0))
            for t, r in enumerate(self.rules)
        ]
        problem = MixProblem(values=values, types=types, pv_weights=exam[r0:], rules=rules,
                             min_gap_any=self.min_gap_any, allowed=None if mask.all() else mask[:, r0:],
                             history=self.history())
        solution = None
        if isinstance(self.solver, str):
            from mixrank.solve import solve

            solution = solve(problem, solver=self.solver, time_limit=self.time_limit, seed=self.seed, **self.options)
            assignment = np.asarray(solution.assignment, np.int64)
        else:
            assignment = np.asarray(self.solver(problem, r0), dtype=np.int64)
            if assignment.shape != (k - r0,):
                raise SolverError(f"the planner must return {k - r0} entries (the slots left); got {assignment.shape}")
            bad = problem.check(assignment)
            if bad:
                raise SolverError(f"the planner's plan breaks the rules: {'; '.join(bad[:3])}")
        self._plan[r0:] = assignment
        self._planned = True
        assignment = assignment.copy()
        assignment.setflags(write=False)
        return SessionPlan(self._page, r0, assignment, problem, solution)

    def _page_examination(self, k: int) -> np.ndarray:
        if self.examination is None:
            from mixrank.synthetic.instances import examination

            return examination(k)
        if self.examination.shape != (k,):
            raise SessionError(f"examination must have one entry per slot ({k},); got {self.examination.shape}")
        return self.examination

    def _start_page(self, request: Any) -> None:
        if self._behaviour is None:
            self._behaviour = {name: np.array(getattr(request, name)[0]) for name in (*_EXP, *_CLK)}
            self._schema = (request.n_types, request.n_categories)
        self._request = request
        self._page += 1
        self._next_slot = 0
        self._plan = np.full(request.dims["K"], -1, np.int64)
        self._page_count[:] = 0
        self._planned = False  # set by a successful plan of this page

    def commit(
        self,
        shown: int | Sequence[int],
        *,
        exposed: Any = None,
        clicked: Any = None,
        exp_action: Any = None,
        clk_action: Any = None,
        slot: int | None = None,
    ) -> None:
        """Record the next slots of the current page as shown, and what the user did there.

        Parameters
        ----------
        shown : int or sequence of int
            How many of the planned slots were shown (as planned), or what was shown
            in them: per slot the planned card or -1 (the card was dropped for the
            organic item); a card the plan did not put there is refused.
        exposed : (m,) bool, optional
            The user saw the slot (default all True); only exposed slots enter the
            exposure sequence.
        clicked : (m,) bool, optional
            The user clicked it (default none); only exposed slots can be clicked.
        exp_action, clk_action : (m, Ae) and (m, Ac) float, optional
            Action features of each slot's exposure (e.g. dwell, scroll speed) and of
            its click (e.g. dwell on the detail page); default zeros.
        slot : int, optional
            The page slot of ``shown[0]``; when given it must be the next slot, so a
            repeated message (a slot committed twice) is refused.
        """
        if self._request is None or not self._planned:
            raise SessionError("commit needs a plan of the current page: call plan(request) first")
        k, r0 = self._request.dims["K"], self._next_slot
        if slot is not None:
            slot = _int_arg("slot", slot, 0)
            if slot < r0:
                raise SessionError(f"slot {slot} of page {self._page} is already committed (slots 0..{r0 - 1} are); "
                                   "a slot cannot be committed twice")
            if slot > r0:
                raise SessionError(f"slot must be the next uncommitted slot of page {self._page}, {r0}; got {slot}")
        if r0 >= k:
            raise SessionError(f"page {self._page} is fully committed ({k} slots); plan the next page first")
        if isinstance(shown, (int, np.integer)) and not isinstance(shown, bool):
            m = _int_arg("shown", shown, 1)
            if m > k - r0:
                raise SessionError(f"shown must be at most the {k - r0} slots left on page {self._page} "
                                   f"(slots {r0}..{k - 1}); got {m}")
            cards = self._plan[r0:r0 + m].copy()
        else:
            cards = np.asarray(shown)
            if cards.ndim != 1 or cards.size == 0 or (cards.dtype.kind not in "iu"):
                raise SessionError(f"shown must be a count or a 1-d sequence of ints; got {shown!r}")
            m = cards.size
            if m > k - r0:
                raise SessionError(f"shown must hold at most the {k - r0} slots left on page {self._page} "
                                   f"(slots {r0}..{k - 1}); got {m} entries")
            planned = self._plan[r0:r0 + m]
            bad = np.flatnonzero((cards != -1) & (cards != planned))
            if bad.size:
                i = int(bad[0])
                raise SessionError(f"shown[{i}] = {int(cards[i])} was not planned for slot {r0 + i} of page "
                                   f"{self._page} (the plan puts {int(planned[i])} there; -1 = organic)")
            cards = cards.astype(np.int64)
        exposed = _bool_vector("exposed", exposed, m, True)
        clicked = _bool_vector("clicked", clicked, m, False)
        if (clicked & ~exposed).any():
            i = int(np.flatnonzero(clicked & ~exposed)[0])
            raise SessionError(f"clicked must be False where exposed is False; got a click at shown slot {i}")
        b = self._behaviour
        exp_action = _action_rows("exp_action", exp_action, m, b["exp_action"].shape[1])
        clk_action = _action_rows("clk_action", clk_action, m, b["clk_action"].shape[1])
        self._record(cards, exposed, clicked, exp_action, clk_action)

    def _record(self, cards, exposed, clicked, exp_action, clk_action) -> None:
        req, r0, m = self._request, self._next_slot, cards.size
        exam = self._page_examination(req.dims["K"])
        slots = np.arange(r0, r0 + m)
        is_card = cards >= 0
        c = np.where(is_card, cards, 0)
        ctype = np.where(is_card, req.cand_type[0, c], -1).astype(np.int64)
        item = {
            "type": np.where(is_card, req.cand_type[0, c], req.page_type[0, slots]),
            "category": np.where(is_card, req.cand_category[0, c], req.page_category[0, slots]),
            "features": np.where(is_card[:, None], req.cand_features[0, c], req.page_features[0, slots]),
        }
        f = self._feed
        f["page"] += [self._page] * m
        f["slot"] += slots.tolist()
        f["card"] += cards.tolist()
        f["type"] += ctype.tolist()
        f["pv_weight"] += exam[slots].tolist()
        f["exposed"] += exposed.tolist()
        f["clicked"] += clicked.tolist()
        self._plan[r0:r0 + m] = cards
        np.add.at(self._page_count, ctype[is_card], 1)
        self._next_slot = r0 + m
        # newest first: the last slot shown is the latest entry
        for prefix, keep, action in (("exp", exposed, exp_action), ("clk", clicked, clk_action)):
            idx = np.flatnonzero(keep)[::-1]
            if not idx.size:
                continue
            b = self._behaviour
            new = {"type": item["type"][idx], "category": item["category"][idx],
                   "features": item["features"][idx], "action": action[idx], "mask": np.ones(idx.size, bool)}
            for part, rows in new.items():
                old = b[f"{prefix}_{part}"]
                b[f"{prefix}_{part}"] = np.concatenate([rows.astype(old.dtype), old])[: old.shape[0]]
