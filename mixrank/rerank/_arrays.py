"""Checking one request or a batch of requests (items, context, n_items, lists) once, before any model runs."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from mixrank.errors import ProblemError

__all__ = ["Requests", "as_requests", "as_lists"]


class Requests(NamedTuple):
    """A checked batch of requests: ``items`` (R, N, F) float32, ``context`` (R, C) float32, ``n_items`` (R,) int64."""

    items: np.ndarray
    context: np.ndarray
    n_items: np.ndarray
    single: bool  #: the caller passed one request (no leading R axis)


def _finite(name: str, x: Any) -> np.ndarray:
    try:
        arr = np.asarray(x, dtype=np.float32)
    except (TypeError, ValueError):
        raise ProblemError(f"{name} must be an array of numbers; got {type(x).__name__}") from None
    if arr.size and not np.isfinite(arr).all():
        i = tuple(int(j) for j in np.argwhere(~np.isfinite(arr))[0])
        raise ProblemError(f"{name} must be finite; got {arr[i]} at {i}")
    return arr


def as_requests(items: Any, context: Any = None, n_items: Any = None, n_features: int | None = None,
                context_dim: int | None = None) -> Requests:
    """Check ``items`` (N, F) or (R, N, F), ``context`` (C,) or (R, C), ``n_items`` int or (R,)."""
    x = _finite("items", items)
    single = x.ndim == 2
    if single:
        x = x[None]
    if x.ndim != 3 or x.shape[1] < 1:
        raise ProblemError(f"items must have shape (N, F) or (R, N, F); got {np.shape(items)}")
    r, n, f = x.shape
    if n_features is not None and f != n_features:
        raise ProblemError(f"items must have F={n_features} features (as in training); got {f}")
    if context is None:
        if context_dim:
            raise ProblemError(f"context must be given (the model was trained with C={context_dim}); got None")
        c = np.zeros((r, 0), np.float32)
    else:
        c = _finite("context", context)
        if single and c.ndim == 1:
            c = c[None]
        if c.ndim != 2 or c.shape[0] != r:
            raise ProblemError(f"context must have shape {'(C,)' if single else f'({r}, C)'}; got {np.shape(context)}")
        if context_dim is not None and c.shape[1] != context_dim:
            raise ProblemError(f"context must have C={context_dim} entries (as in training); got {c.shape[1]}")
    if n_items is None:
        m = np.full(r, n, np.int64)
    else:
        m = np.asarray(n_items)
        if not np.issubdtype(m.dtype, np.integer):
            raise ProblemError(f"n_items must be an int or ints; got {n_items!r}")
        m = np.broadcast_to(m.astype(np.int64), (r,)).copy() if m.ndim == 0 or single else m.astype(np.int64)
        if m.shape != (r,) or (m < 1).any() or (m > n).any():
            raise ProblemError(f"n_items must be ints in [1, N={n}], one per request; got {n_items!r}")
    return Requests(np.ascontiguousarray(x), np.ascontiguousarray(c), m, single)


def as_lists(lists: Any, req: Requests, max_len: int | None = None) -> np.ndarray:
    """Check ordered lists: (L, K) for one request or (R, L, K); returns (R, L, K) int64."""
    arr = np.asarray(lists)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise ProblemError(f"lists must be an array of ints; got dtype {arr.dtype}")
    if req.single and arr.ndim == 2:
        arr = arr[None]
    r = req.items.shape[0]
    if arr.ndim != 3 or arr.shape[0] != r or arr.shape[2] < 1:
        want = "(L, K)" if req.single else f"({r}, L, K)"
        raise ProblemError(f"lists must have shape {want}; got {np.shape(lists)}")
    if max_len is not None and arr.shape[2] > max_len:
        raise ProblemError(f"lists must have at most K={max_len} positions (the longest the model knows); got {arr.shape[2]}")
    bad = (arr < 0) | (arr >= req.n_items[:, None, None])
    if bad.any():
        i = tuple(int(j) for j in np.argwhere(bad)[0])
        raise ProblemError(f"lists must index real candidates, in [0, n_items); got {arr[i]} at {i}")
    srt = np.sort(arr, axis=2)
    if (srt[..., 1:] == srt[..., :-1]).any():
        i = tuple(int(j) for j in np.argwhere((srt[..., 1:] == srt[..., :-1]).any(axis=2))[0])
        raise ProblemError(f"lists must hold distinct items; list {i} repeats one")
    return arr.astype(np.int64)
