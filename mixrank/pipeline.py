"""From a serving request to a :class:`~mixrank.MixProblem`: predict, then plan.

The glue between ESAN (or any model with the same ``predict``) and the solvers.
For one request with ``N`` candidate cards and ``K`` slots:

* ``values[c, s] = value_scale * exam[s] * (ctr[c, s] * gains[type[c]] - organic_gain * organic_ctr[s])``
  — the expected gain of showing card ``c`` at slot ``s`` instead of the
  organic item there, where ``exam[s]`` is the probability that the user
  reaches slot ``s`` and the CTRs are given exposure (what ESAN predicts);
* ``pv_weights = exam`` — a slot's share of page views is its examination
  probability. The curve must be given: the synthetic feed's
  (``FeedEnv.examination``), or one estimated from a team's own logs with
  :func:`estimate_examination` (there is no silent default: a synthetic curve
  would misprice every slot of a real feed);
* the rules, ``min_gap_any``, ``allowed`` and ``history`` are passed through.

The CTR matrix conditions on the *organic* surroundings of each slot; cards
placed next to each other are kept apart by the dispersion rules, and the
effect of an inserted card on its organic neighbours is not modelled (a
second-order term).

Examples
--------
>>> import numpy as np
>>> import mixrank
>>> from mixrank.pipeline import request_to_problem
>>> from mixrank.synthetic import FeedEnv, FeedConfig
>>> env = FeedEnv(FeedConfig(n_slots=8, n_cards=4, n_types=2))
>>> batch = env.sample(1, seed=0)
>>> card_ctr, organic_ctr = env.ctr_matrix(batch)          # the oracle; an ESAN model works the same way
>>> p = request_to_problem(batch.requests, ctr=(card_ctr[0], organic_ctr[0]),
...                        rules=[mixrank.TypeRule(min_gap=2), mixrank.TypeRule(min_gap=3)],
...                        gains=[1.6, 1.0], examination=env.examination)
>>> (p.n_cards, p.n_slots, p.n_types)
(4, 8, 2)
>>> sol = mixrank.solve(p, solver="greedy")
>>> p.check(sol.assignment)
[]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mixrank.errors import ProblemError
from mixrank.logs import Requests
from mixrank.problem import History, MixProblem, TypeRule

__all__ = ["mix_values", "request_to_problem", "requests_to_problems", "estimate_examination"]


def _float_array(name: str, x: Any, shape: tuple[int, ...] | None = None) -> np.ndarray:
    try:
        arr = np.array(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ProblemError(f"{name} must be an array of numbers; got {type(x).__name__}") from None
    if shape is not None and arr.shape != shape:
        raise ProblemError(f"{name} must have shape {shape}; got {arr.shape}")
    if arr.size and not np.isfinite(arr).all():
        i = tuple(int(j) for j in np.argwhere(~np.isfinite(arr))[0])
        raise ProblemError(f"{name} must be finite; got {arr[i]} at {i}")
    return arr


def mix_values(
    card_ctr: Any,
    organic_ctr: Any,
    card_types: Any,
    gains: Any,
    examination: Any,
    organic_gain: float = 1.0,
    value_scale: float = 100.0,
) -> np.ndarray:
    """The values of a mixing problem from CTRs given exposure (see the module docstring).

    Parameters
    ----------
    card_ctr : array (N, K) in [0, 1]
    organic_ctr : array (K,) in [0, 1]
    card_types : array (N,) of int in [0, T)
    gains : array (T,) >= 0
        Value of a click on each card type, in units of an organic click.
    examination : array (K,) in [0, 1]
    organic_gain : float >= 0
    value_scale : float > 0
        100 (the default) puts values in expected gain per 100 requests.

    Examples
    --------
    >>> mix_values([[0.1, 0.2]], [0.05, 0.1], [0], [2.0], [1.0, 0.5])
    array([[15., 15.]])
    """
    card = _float_array("card_ctr", card_ctr)
    if card.ndim != 2:
        raise ProblemError(f"card_ctr must be 2-dimensional (N, K); got shape {card.shape}")
    n, k = card.shape
    org = _float_array("organic_ctr", organic_ctr, (k,))
    exam = _float_array("examination", examination, (k,))
    for name, arr in (("card_ctr", card), ("organic_ctr", org), ("examination", exam)):
        if arr.size and (arr.min() < 0 or arr.max() > 1):
            raise ProblemError(f"{name} must hold probabilities in [0, 1]; got range [{arr.min()}, {arr.max()}]")
    gains = _float_array("gains", gains)
    if gains.ndim != 1 or (gains.size and gains.min() < 0):
        raise ProblemError(f"gains must be a 1-d array of numbers >= 0 (one per card type); got {gains!r}")
    types = np.asarray(card_types)
    if types.shape != (n,) or (n and (types.dtype.kind not in "iu" or types.min() < 0 or types.max() >= gains.size)):
        raise ProblemError(
            f"card_types must be (N,) = ({n},) ints in [0, {gains.size}) (one gain per type); got {types!r}"
        )
    for name, v, positive in (("organic_gain", organic_gain, False), ("value_scale", value_scale, True)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) or v < 0 or (positive and v == 0):
            raise ProblemError(f"{name} must be a finite number {'> 0' if positive else '>= 0'}; got {v!r}")
    gain = gains[types.astype(np.int64)][:, None]
    return value_scale * exam[None, :] * (card * gain - organic_gain * org[None, :])


def request_to_problem(
    request: Any,
    model: Any = None,
    *,
    ctr: tuple[Any, Any] | None = None,
    rules: Sequence[TypeRule],
    gains: Any = None,
    min_gap_any: int = 1,
    history: History | None = None,
    examination: Any = None,
    allowed: Any = None,
    organic_gain: float = 1.0,
    value_scale: float = 100.0,
) -> MixProblem:
    """Build the mixing problem of one request.

    Parameters
    ----------
    request : mixrank.logs.Requests
        One request (R = 1): behaviour, organic page, candidates.
    model : object with ``predict(requests) -> (card_ctr, organic_ctr)``, optional
        An :class:`esan.model.ESAN`. Give either ``model`` or ``ctr``.
    ctr : (card_ctr (N, K), organic_ctr (K,)), optional
        Precomputed CTR matrices (e.g. an oracle's, or a batch prediction).
    rules : sequence of T TypeRule
        One per card type.
    gains : array (T,) or None
        Value of a click per card type (default: all 1).
    min_gap_any, history, allowed
        Passed to :class:`MixProblem`.
    examination : array (K,)
        Probability of reaching each slot (required): e.g.
        :func:`estimate_examination` of your logs, or ``FeedEnv.examination``.
        Also the PV weights.
    organic_gain, value_scale : float
        See :func:`mix_values`.

    Returns
    -------
    MixProblem
    """
    if not isinstance(request, Requests):
        raise ProblemError(f"request must be a mixrank.logs.Requests; got {type(request).__name__}")
    if len(request) != 1:
        raise ProblemError(f"request must hold one request; got {len(request)} (use requests_to_problems)")
    return requests_to_problems(
        request,
        model,
        ctr=None if ctr is None else (np.asarray(ctr[0])[None], np.asarray(ctr[1])[None]),
        rules=rules,
        gains=gains,
        min_gap_any=min_gap_any,
        histories=None if history is None else [history],
        examination=examination,
        allowed=None if allowed is None else [allowed],
        organic_gain=organic_gain,
        value_scale=value_scale,
    )[0]


def requests_to_problems(
    requests: Any,
    model: Any = None,
    *,
    ctr: tuple[Any, Any] | None = None,
    rules: Sequence[TypeRule],
    gains: Any = None,
    min_gap_any: int = 1,
    histories: Sequence[History | None] | None = None,
    examination: Any = None,
    allowed: Sequence[Any] | None = None,
    organic_gain: float = 1.0,
    value_scale: float = 100.0,
) -> list[MixProblem]:
    """:func:`request_to_problem` for a batch of R requests, with one batched prediction.

    ``ctr`` is then ``(card_ctr (R, N, K), organic_ctr (R, K))``; ``histories``
    and ``allowed`` are per-request lists (or None).

    Examples
    --------
    >>> import mixrank
    >>> from mixrank.synthetic import FeedEnv, FeedConfig
    >>> env = FeedEnv(FeedConfig(n_slots=6, n_cards=3, n_types=1, gains=(1.5,)))
    >>> b = env.sample(5, seed=0)
    >>> ps = requests_to_problems(b.requests, ctr=env.ctr_matrix(b), rules=[mixrank.TypeRule(min_gap=2)],
    ...                           gains=[1.5], examination=env.examination)
    >>> len(ps), ps[0].n_slots
    (5, 6)
    """
    if not isinstance(requests, Requests):
        raise ProblemError(f"requests must be a mixrank.logs.Requests; got {type(requests).__name__}")
    r, n, k = len(requests), requests.dims["N"], requests.dims["K"]
    t_count = requests.n_types
    if (model is None) == (ctr is None):
        raise ProblemError("give exactly one of model (a CTR predictor) and ctr (precomputed matrices)")
    if model is not None:
        if not callable(getattr(model, "predict", None)):
            raise ProblemError(f"model must have a predict(requests) method; got {type(model).__name__}")
        card, org = model.predict(requests)
        if r == 1:
            card, org = np.asarray(card)[None], np.asarray(org)[None]
    else:
        if not isinstance(ctr, (tuple, list)) or len(ctr) != 2:
            raise ProblemError("ctr must be a pair (card_ctr, organic_ctr)")
        card, org = ctr
    card = _float_array("card_ctr", card, (r, n, k))
    org = _float_array("organic_ctr", org, (r, k))
    if isinstance(rules, TypeRule) or not isinstance(rules, Sequence) or len(rules) != t_count:
        got = len(rules) if isinstance(rules, Sequence) and not isinstance(rules, TypeRule) else type(rules).__name__
        raise ProblemError(f"rules must be a sequence of {t_count} TypeRule (one per card type); got {got}")
    gains = np.ones(t_count) if gains is None else _float_array("gains", gains, (t_count,))
    if examination is None:
        raise ProblemError(
            f"examination must be given: a (K,) = ({k},) curve of the probability of reaching each slot, e.g. "
            "mixrank.pipeline.estimate_examination(log) for your own logs or FeedEnv.examination for the synthetic feed"
        )
    exam = _float_array("examination", examination, (k,))
    if exam.size and (exam.min() < 0 or exam.max() > 1):
        raise ProblemError(f"examination must hold probabilities in [0, 1]; got range [{exam.min()}, {exam.max()}]")
    if histories is not None and len(histories) != r:
        raise ProblemError(f"histories must hold one entry per request ({r}); got {len(histories)}")
    if allowed is not None and len(allowed) != r:
        raise ProblemError(f"allowed must hold one entry per request ({r}); got {len(allowed)}")
    problems = []
    for i in range(r):
        types = requests.cand_type[i].astype(np.int64)
        values = mix_values(card[i], org[i], types, gains, exam, organic_gain=organic_gain, value_scale=value_scale)
        problems.append(
            MixProblem(
                values=values,
                types=types,
                pv_weights=exam,
                rules=list(rules),
                min_gap_any=min_gap_any,
                allowed=None if allowed is None else allowed[i],
                history=None if histories is None else histories[i],
            )
        )
    return problems


def estimate_examination(log: Any, min_impressions: int = 1) -> np.ndarray:
    """The examination curve of a feed from its logs: the share of requests in which slot ``s`` was exposed.

    Parameters
    ----------
    log : mixrank.logs.FeedLog
        Logged requests (``exposed`` (R, K)). Slots outside a page (``page_mask``
        False, when the log has it) are left out of that slot's share.
    min_impressions : int >= 1
        Slots seen on fewer pages than this take the previous slot's value.

    Returns
    -------
    ndarray (K,)
        Non-increasing (a user who reaches slot s has passed every slot
        before it; sampling noise that breaks this is smoothed by a running
        minimum), in (0, 1].

    Examples
    --------
    >>> from mixrank.synthetic import FeedEnv, FeedConfig
    >>> env = FeedEnv(FeedConfig(n_slots=10, n_cards=4))
    >>> est = estimate_examination(env.log(4000, seed=0))
    >>> bool(abs(est - env.examination).max() < 0.05), bool((np.diff(est) <= 0).all())
    (True, True)
    """
    from mixrank.logs import FeedLog

    if not isinstance(log, FeedLog):
        raise ProblemError(f"log must be a mixrank.logs.FeedLog; got {type(log).__name__}")
    if isinstance(min_impressions, bool) or not isinstance(min_impressions, (int, np.integer)) or min_impressions < 1:
        raise ProblemError(f"min_impressions must be an int >= 1; got {min_impressions!r}")
    exposed = log.exposed.astype(np.float64)
    live = log.fields.get("page_mask", np.ones_like(log.exposed, dtype=bool))
    pages = live.sum(0)
    if pages[0] < min_impressions:
        raise ProblemError(f"log must hold at least {min_impressions} page(s) with slot 0; got {int(pages[0])}")
    share = (exposed * live).sum(0) / np.maximum(pages, 1)
    for s in range(1, share.size):
        if pages[s] < min_impressions:
            share[s] = share[s - 1]
    share = np.minimum.accumulate(share)
    return np.clip(share, 1e-6, 1.0)
