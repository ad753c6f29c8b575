"""Offline metrics of click predictions: AUC, GAUC, logloss and calibration error (numpy only).

Solvers add predicted CTRs up, so calibration matters as much as ranking:
:func:`calibration_error` is the expected calibration error over equal-mass
bins, and :func:`evaluate_predictions` also reports the ratio of predicted to
observed clicks.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import rankdata

from esan.data import InputError

__all__ = ["auc", "gauc", "logloss", "calibration_error", "evaluate_predictions"]

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
