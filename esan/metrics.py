"""Offline metrics of click predictions: AUC, GAUC, logloss and calibration error (numpy only).

Solvers add predicted CTRs up, so calibration matters as much as ranking:
:func:`calibration_error` is the expected calibration error over equal-mass
bins, and :func:`evaluate_predictions` also reports the ratio of predicted to
observed clicks; :func:`per_type_calibration` gives that ratio per item type.

What a planner consumes is the (N, K) matrix — which slot for which card — so
:func:`matrix_errors` measures a predicted matrix against the true one, request
by request: the logit RMSE, the rank correlation across the slots of each card
(does the model put a card's slots in the right order?) and across the cards
of each slot. :func:`bootstrap_mean_ci` gives intervals over requests.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy.stats import rankdata

from esan.data import InputError

__all__ = [
    "auc",
    "gauc",
    "logloss",
    "calibration_error",
    "evaluate_predictions",
    "matrix_errors",
    "per_type_calibration",
    "bootstrap_mean_ci",
]

_EPS = 1e-7


def _check(y: Any, p: Any, group: Any = None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    y = np.asarray(y)
    p = np.asarray(p, dtype=np.float64)
    if y.ndim != 1 or p.shape != y.shape:
        raise InputError(f"labels and predictions must be 1-d of one length; got shapes {y.shape} and {p.shape}")
    if y.dtype != np.bool_:
        if y.size and not np.isin(y, (0, 1)).all():
            raise InputError("labels must be 0/1 or bool; got other values")
        y = y.astype(bool)
    if p.size and (not np.isfinite(p).all() or p.min() < 0 or p.max() > 1):
        raise InputError(f"predictions must be probabilities in [0, 1]; got range [{np.nanmin(p)}, {np.nanmax(p)}]")
    g = None
    if group is not None:
        g = np.asarray(group)
        if g.shape != y.shape or (g.size and g.dtype.kind not in "iu"):
            raise InputError(f"group must be integer ids of shape {y.shape}; got {g.dtype} array of shape {g.shape}")
    return y, p, g


def auc(y: Any, p: Any) -> float:
    """Area under the ROC curve (ties count one half); nan when only one class is present.

    Examples
    --------
    >>> auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    y, p, _ = _check(y, p)
    n1 = int(y.sum())
    n0 = y.size - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = rankdata(p)
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def gauc(y: Any, p: Any, group: Any) -> float:
    """Group AUC: the impression-weighted mean of per-group AUCs (groups with one class only are left out).

    Examples
    --------
    >>> gauc([0, 1, 0, 1, 1], [0.2, 0.3, 0.9, 0.1, 0.5], group=[0, 0, 1, 1, 1])
    0.4
    """
    y, p, g = _check(y, p, group)
    if y.size == 0:
        return float("nan")
    _, g = np.unique(g, return_inverse=True)
    dense = rankdata(p, method="dense")
    key = g.astype(np.float64) * (dense.max() + 1) + dense
    rank = rankdata(key)  # average ranks; within a group they are offset by the sizes of earlier groups
    size = np.bincount(g)
    start = np.concatenate([[0], np.cumsum(size)[:-1]])
    rank_in = rank - start[g]
    n1 = np.bincount(g, weights=y)
    n0 = size - n1
    r1 = np.bincount(g, weights=rank_in * y)
    ok = (n1 > 0) & (n0 > 0)
    if not ok.any():
        return float("nan")
    per = (r1[ok] - n1[ok] * (n1[ok] + 1) / 2) / (n1[ok] * n0[ok])
    return float(np.sum(per * size[ok]) / size[ok].sum())


def logloss(y: Any, p: Any) -> float:
    """Mean binary cross-entropy (predictions clipped to [1e-7, 1 - 1e-7]).

    Examples
    --------
    >>> round(logloss([1, 0], [0.5, 0.5]), 6)
    0.693147
    """
    y, p, _ = _check(y, p)
    p = np.clip(p, _EPS, 1 - _EPS)
    return float(-np.mean(np.where(y, np.log(p), np.log1p(-p))))


def calibration_error(y: Any, p: Any, n_bins: int = 20) -> float:
    """Expected calibration error over ``n_bins`` equal-mass bins of the predictions.

    ``sum_b (n_b / n) * |mean(p in b) - mean(y in b)|``.

    Examples
    --------
    >>> calibration_error([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5], n_bins=1)
    0.0
    """
    y, p, _ = _check(y, p)
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise InputError(f"n_bins must be an int >= 1; got {n_bins!r}")
    if y.size == 0:
        return float("nan")
    order = np.argsort(p, kind="stable")
    err = 0.0
    for idx in np.array_split(order, min(n_bins, y.size)):
        err += idx.size * abs(p[idx].mean() - y[idx].mean())
    return float(err / y.size)


def evaluate_predictions(y: Any, p: Any, group: Any = None) -> dict[str, float]:
    """All metrics at once: auc, gauc (when ``group`` is given), logloss, calibration error, predicted/observed.

    Examples
    --------
    >>> m = evaluate_predictions([0, 1, 1, 0], [0.2, 0.7, 0.6, 0.3], group=[0, 0, 1, 1])
    >>> sorted(m)
    ['auc', 'calibration_error', 'gauc', 'logloss', 'n', 'pred_over_obs']
    """
    y, p, g = _check(y, p, group)
    out = {
        "n": float(y.size),
        "auc": auc(y, p),
        "logloss": logloss(y, p),
        "calibration_error": calibration_error(y, p),
        "pred_over_obs": float(p.sum() / max(y.sum(), 1)),
    }
    if g is not None:
        out["gauc"] = gauc(y, p, g)
    return dict(sorted(out.items()))


def _spearman_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman correlation of a[..., i, :] with b[..., i, :] along the last axis; nan where one is constant."""
    ra = rankdata(a, axis=-1)
    rb = rankdata(b, axis=-1)
    ra -= ra.mean(-1, keepdims=True)
    rb -= rb.mean(-1, keepdims=True)
    den = np.sqrt((ra**2).sum(-1) * (rb**2).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (ra * rb).sum(-1) / np.where(den > 0, den, 1.0), np.nan)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p) - np.log1p(-p)


def matrix_errors(pred: Any, true: Any) -> dict[str, np.ndarray]:
    """Per request, how far a predicted CTR matrix is from the true one.

    Parameters
    ----------
    pred, true : array (R, N, K) or (N, K) of probabilities
        Candidate-by-slot click probabilities (e.g. ESAN's and the
        environment's :meth:`~mixrank.synthetic.FeedEnv.ctr_matrix`).

    Returns
    -------
    dict of (R,) arrays
        ``logit_rmse``: root mean squared difference of the logits;
        ``slot_rank_corr``: Spearman correlation across the K slots of each
        card, averaged over the cards (the planner's question "which slot for
        this card"); ``card_rank_corr``: across the N cards of each slot,
        averaged over the slots.

    Examples
    --------
    >>> import numpy as np
    >>> true = np.array([[[0.1, 0.2, 0.3], [0.3, 0.2, 0.1]]])
    >>> m = matrix_errors(true * 0.9, true)
    >>> float(m["slot_rank_corr"][0]), float(m["card_rank_corr"][0])
    (1.0, 1.0)
    >>> float(matrix_errors(true[:, :, ::-1], true)["slot_rank_corr"][0])
    -1.0
    """
    p = np.asarray(pred, dtype=np.float64)
    t = np.asarray(true, dtype=np.float64)
    if p.ndim == 2:
        p, t = p[None], t[None] if t.ndim == 2 else t
    if p.ndim != 3 or p.shape != t.shape:
        raise InputError(f"pred and true must both be (R, N, K) or (N, K); got shapes {p.shape} and {t.shape}")
    for name, a in (("pred", p), ("true", t)):
        if a.size and (not np.isfinite(a).all() or a.min() < 0 or a.max() > 1):
            raise InputError(f"{name} must hold probabilities in [0, 1]")
    lp, lt = _logit(p), _logit(t)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-nan rows (constant matrices)
        return {
            "logit_rmse": np.sqrt(((lp - lt) ** 2).mean(axis=(1, 2))),
            "slot_rank_corr": np.nanmean(_spearman_rows(lp, lt), axis=1),
            "card_rank_corr": np.nanmean(_spearman_rows(lp.transpose(0, 2, 1), lt.transpose(0, 2, 1)), axis=1),
        }


def per_type_calibration(types: Any, y: Any, p: Any, expected: Any = None) -> dict[int, dict[str, float]]:
    """Predicted over observed clicks per item type.

    Parameters
    ----------
    types : array (M,) of int
        Type of each exposed item.
    y, p : array (M,)
        Clicks and predicted probabilities.
    expected : array (M,), optional
        True click probabilities (synthetic logs): adds ``pred_over_expected``,
        the same ratio without the noise of sampled clicks.

    Returns
    -------
    dict
        Per type: ``n``, ``clicks``, ``pred_over_obs`` (and ``pred_over_expected``).

    Examples
    --------
    >>> round(per_type_calibration([0, 0, 1, 1], [1, 0, 0, 1], [0.5, 0.5, 0.3, 0.6])[1]["pred_over_obs"], 6)
    0.9
    """
    y, p, _ = _check(y, p)
    types = np.asarray(types)
    if types.shape != y.shape:
        raise InputError(f"types must have shape {y.shape}; got {types.shape}")
    out: dict[int, dict[str, float]] = {}
    for t in np.unique(types):
        sel = types == t
        clicks = float(y[sel].sum())
        row = {"n": float(sel.sum()), "clicks": clicks, "pred_over_obs": float(p[sel].sum() / max(clicks, 1.0))}
        if expected is not None:
            e = np.asarray(expected, dtype=np.float64)[sel]
            row["pred_over_expected"] = float(p[sel].sum() / max(e.sum(), 1e-12))
        out[int(t)] = row
    return out


def bootstrap_mean_ci(x: Any, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> tuple[float, float, float]:
    """Mean of per-request values ``x`` and its bootstrap interval (resampling requests).

    Returns ``(mean, lo, hi)``; nan entries are left out.

    Examples
    --------
    >>> m, lo, hi = bootstrap_mean_ci(np.arange(100.0), n_boot=200)
    >>> m, lo < m < hi
    (49.5, True)
    """
    a = np.asarray(x, dtype=np.float64)
    a = a[np.isfinite(a)]
    if a.size == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = a[rng.integers(0, a.size, size=(n_boot, a.size))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    return float(a.mean()), float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))
