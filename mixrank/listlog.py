"""``ListLog``: the array schema of list-wise exposure logs (numpy only; the ground floor).

Re-ranking (:mod:`mixrank.rerank`) trains on it and the slate worlds
(:mod:`mixrank.synthetic.slates`) write it; ``mixrank.rerank.ListLog`` is the
same class.

One row per logged request: the candidates the server had, the request's
context, the ordered list it showed and what the user clicked.

==============  ================  ==========================================================
``items``       (R, N, F) float   features of each candidate (finite); rows past
                                  ``n_items[r]`` are padding
``shown``       (R, K) int        candidate index at each position of the shown list, in
                                  order; distinct within a row, each ``< n_items[r]``
``clicks``      (R, K) 0/1        whether the item at each position was clicked
``n_items``     (R,) int          optional; real candidates per request, ``K <= n <= N``
                                  (default: all ``N``)
``context``     (R, C) float      optional; request / user features (finite)
``extras``      dict              optional; more per-request arrays with leading axis R
                                  (e.g. behaviour sequences); carried, saved, sliced
==============  ================  ==========================================================

A user with a feature matrix per request and a context vector fills ``items``,
``context``, ``shown`` and ``clicks`` and can train everything in
:mod:`mixrank.rerank`. Files are ``.npz`` archives written atomically, with a
``__schema__`` entry (format, version).

Examples
--------
>>> import numpy as np
>>> log = ListLog(items=np.zeros((2, 4, 3)), shown=[[0, 1], [3, 2]], clicks=[[0, 1], [0, 0]])
>>> len(log), log.n_candidates, log.list_len, log.n_features, log.context_dim
(2, 4, 2, 3, 0)
>>> ListLog(items=np.zeros((1, 4, 3)), shown=[[0, 0]], clicks=[[0, 1]])
Traceback (most recent call last):
...
mixrank.errors.ProblemError: shown must hold distinct candidates per row; got a repeat in row 0
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from mixrank._io import atomic_write
from mixrank.errors import ProblemError

__all__ = ["ListLog", "LISTLOG_FORMAT", "LISTLOG_VERSION"]

LISTLOG_FORMAT = "mixrank.listlog"
LISTLOG_VERSION = 1


def _floats(name: str, x: Any, ndim: int) -> np.ndarray:
    try:
        arr = np.asarray(x, dtype=np.float32)
    except (TypeError, ValueError):
        raise ProblemError(f"{name} must be an array of numbers; got {type(x).__name__}") from None
    if arr.ndim != ndim:
        raise ProblemError(f"{name} must be {ndim}-D; got shape {arr.shape}")
    if arr.size and not np.isfinite(arr).all():
        i = tuple(int(j) for j in np.argwhere(~np.isfinite(arr))[0])
        raise ProblemError(f"{name} must be finite; got {arr[i]} at {i}")
    return arr


def _ints(name: str, x: Any, ndim: int) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer) or arr.size == 0):
        if np.issubdtype(arr.dtype, np.floating) and arr.size and np.isfinite(arr).all() and (arr == np.round(arr)).all():
            arr = arr.astype(np.int64)
        else:
            raise ProblemError(f"{name} must be an array of ints; got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if arr.ndim != ndim:
        raise ProblemError(f"{name} must be {ndim}-D; got shape {arr.shape}")
    return arr


@dataclass(frozen=True, eq=False)
class ListLog:
    """List-wise exposure logs; see the module docstring for the fields.

    Arrays are copied into canonical dtypes (float32 features, int64 indices,
    uint8 clicks) and validated once; errors name the field.
    """

    items: np.ndarray
    shown: np.ndarray
    clicks: np.ndarray
    n_items: np.ndarray | None = None
    context: np.ndarray | None = None
    extras: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        items = _floats("items", self.items, 3)
        r, n, _ = items.shape
        if r < 1 or n < 1:
            raise ProblemError(f"items must have at least one request and one candidate; got shape {items.shape}")
        shown = _ints("shown", self.shown, 2)
        if shown.shape[0] != r or shown.shape[1] < 1:
            raise ProblemError(f"shown must have shape (R={r}, K >= 1); got {shown.shape}")
        k = shown.shape[1]
        if k > n:
            raise ProblemError(f"shown must list at most N={n} items per row; got K={k}")
        clicks_in = np.asarray(self.clicks)
        if clicks_in.shape != shown.shape:
            raise ProblemError(f"clicks must have shape {shown.shape} (like shown); got {clicks_in.shape}")
        if not np.isin(clicks_in, (0, 1)).all():
            bad = tuple(int(j) for j in np.argwhere(~np.isin(clicks_in, (0, 1)))[0])
            raise ProblemError(f"clicks must be 0/1; got {clicks_in[bad]!r} at {bad}")
        clicks = clicks_in.astype(np.uint8)
        if self.n_items is None:
            n_items = np.full(r, n, dtype=np.int64)
        else:
            n_items = _ints("n_items", self.n_items, 1)
            if n_items.shape != (r,):
                raise ProblemError(f"n_items must have shape ({r},); got {n_items.shape}")
            bad = np.flatnonzero((n_items < k) | (n_items > n))
            if bad.size:
                raise ProblemError(f"n_items must be in [K={k}, N={n}]; got {n_items[bad[0]]} at {bad[0]}")
        if (shown < 0).any() or (shown >= n_items[:, None]).any():
            i = tuple(int(j) for j in np.argwhere((shown < 0) | (shown >= n_items[:, None]))[0])
            raise ProblemError(f"shown must index real candidates, in [0, n_items[row]); got {shown[i]} at {i}")
        srt = np.sort(shown, axis=1)
        rep = np.flatnonzero((srt[:, 1:] == srt[:, :-1]).any(axis=1))
        if rep.size:
            raise ProblemError(f"shown must hold distinct candidates per row; got a repeat in row {rep[0]}")
        context = None
        if self.context is not None:
            context = _floats("context", self.context, 2)
            if context.shape[0] != r:
                raise ProblemError(f"context must have shape ({r}, C); got {context.shape}")
        if not isinstance(self.extras, Mapping):
            raise ProblemError(f"extras must be a mapping of name -> array; got {type(self.extras).__name__}")
        extras = {}
        for name, arr in self.extras.items():
            if not isinstance(name, str) or not name.isidentifier():
                raise ProblemError(f"extras names must be identifiers; got {name!r}")
            a = np.asarray(arr)
            if a.ndim < 1 or a.shape[0] != r or a.dtype == object:
                raise ProblemError(f"extras[{name!r}] must be a numeric array with leading axis R={r}; got shape {a.shape}")
            extras[name] = a
        object.__setattr__(self, "items", items)
        object.__setattr__(self, "shown", shown)
        object.__setattr__(self, "clicks", clicks)
        object.__setattr__(self, "n_items", n_items)
        object.__setattr__(self, "context", context)
        object.__setattr__(self, "extras", MappingProxyType(extras))

    # ------------------------------------------------------------ sizes
    def __len__(self) -> int:
        return self.items.shape[0]

    @property
    def n_candidates(self) -> int:
        """N, candidate rows per request (padding included)."""
        return self.items.shape[1]

    @property
    def n_features(self) -> int:
        """F."""
        return self.items.shape[2]

    @property
    def list_len(self) -> int:
        """K, positions of a shown list."""
        return self.shown.shape[1]

    @property
    def context_dim(self) -> int:
        """C (0 without context)."""
        return 0 if self.context is None else self.context.shape[1]

    def __repr__(self) -> str:
        return (
            f"ListLog(R={len(self)}, N={self.n_candidates}, F={self.n_features}, K={self.list_len}, "
            f"C={self.context_dim}, click rate {self.clicks.mean():.4f})"
        )

    # ------------------------------------------------------------ slicing
    def __getitem__(self, index: Any) -> ListLog:
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        ctx = None if self.context is None else self.context[index]
        return ListLog(
            self.items[index], self.shown[index], self.clicks[index], self.n_items[index], ctx,
            {k: v[index] for k, v in self.extras.items()},
        )

    def split(self, fraction: float, seed: int = 0) -> tuple[ListLog, ListLog]:
        """A random split into (rest, held out) with ``round(fraction * R)`` rows held out (at least 1).

        Examples
        --------
        >>> import numpy as np
        >>> log = ListLog(items=np.zeros((10, 3, 2)), shown=np.zeros((10, 1), int), clicks=np.zeros((10, 1)))
        >>> a, b = log.split(0.2)
        >>> len(a), len(b)
        (8, 2)
        """
        if not isinstance(fraction, (float, int)) or not 0.0 < fraction < 1.0:
            raise ProblemError(f"fraction must be in (0, 1); got {fraction!r}")
        if len(self) < 2:
            raise ProblemError(f"a log must have at least 2 requests to be split; got {len(self)}")
        n_out = min(len(self) - 1, max(1, round(fraction * len(self))))
        perm = np.random.default_rng([0x115706, int(seed)]).permutation(len(self))
        return self[np.sort(perm[n_out:])], self[np.sort(perm[:n_out])]

    @staticmethod
    def concat(logs: Sequence[ListLog]) -> ListLog:
        """Join logs with equal F, K, C and extras (N may differ: shorter ones are padded with zeros)."""
        logs = list(logs)
        if not logs or not all(isinstance(x, ListLog) for x in logs):
            raise ProblemError("logs must be a non-empty sequence of ListLog")
        n = max(x.n_candidates for x in logs)
        items = [np.pad(x.items, ((0, 0), (0, n - x.n_candidates), (0, 0))) for x in logs]
        ctx = None if logs[0].context is None else np.concatenate([x.context for x in logs])
        names = set(logs[0].extras)
        if any(set(x.extras) != names for x in logs):
            raise ProblemError("logs must carry the same extras to be joined")
        return ListLog(
            np.concatenate(items),
            np.concatenate([x.shown for x in logs]),
            np.concatenate([x.clicks for x in logs]),
            np.concatenate([x.n_items for x in logs]),
            ctx,
            {k: np.concatenate([x.extras[k] for x in logs]) for k in names},
        )

    # ------------------------------------------------------------ files
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the log to ``path`` (``.npz``) atomically: the old file or the whole new one, never half.

        Examples
        --------
        >>> import tempfile, os, numpy as np
        >>> log = ListLog(items=np.ones((2, 3, 2)), shown=[[2], [0]], clicks=[[1], [0]], context=np.ones((2, 4)))
        >>> p = log.save(os.path.join(tempfile.mkdtemp(), "log.npz"))
        >>> back = ListLog.load(p)
        >>> back.context_dim, bool((back.shown == log.shown).all())
        (4, True)
        """
        path = Path(path)
        if not path.parent.is_dir():
            raise ProblemError(f"cannot write {path}: directory {path.parent} does not exist")
        arrays = {"items": self.items, "shown": self.shown, "clicks": self.clicks, "n_items": self.n_items}
        if self.context is not None:
            arrays["context"] = self.context
        for k, v in self.extras.items():
            arrays[f"extra__{k}"] = v
        schema = {"format": LISTLOG_FORMAT, "version": LISTLOG_VERSION}
        arrays["__schema__"] = np.frombuffer(json.dumps(schema).encode(), dtype=np.uint8)
        with atomic_write(path) as fh:
            np.savez_compressed(fh, **arrays)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ListLog:
        """Read a log written by :meth:`save`; a missing, corrupt, foreign or newer file raises ``ProblemError``."""
        path = Path(path)
        if not path.is_file():
            raise ProblemError(f"log file {path} does not exist or is not a file")
        try:
            with np.load(path, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise ProblemError(f"log file {path} is corrupt or not an .npz archive ({str(exc)[:120]})") from None
        try:
            schema = json.loads(bytes(data.pop("__schema__")).decode())
        except (KeyError, ValueError, UnicodeDecodeError):
            raise ProblemError(f"log file {path} has no valid __schema__ entry (not a ListLog file)") from None
        if not isinstance(schema, dict) or schema.get("format") != LISTLOG_FORMAT:
            raise ProblemError(f"log file {path}: format must be {LISTLOG_FORMAT!r}; got {schema!r}")
        version = schema.get("version")
        if not isinstance(version, int) or version < 1 or version > LISTLOG_VERSION:
            raise ProblemError(f"log file {path}: version must be an int in [1, {LISTLOG_VERSION}]; got {version!r}")
        missing = [k for k in ("items", "shown", "clicks") if k not in data]
        if missing:
            raise ProblemError(f"log file {path} lacks the field(s) {', '.join(missing)}")
        extras = {k[len("extra__"):]: v for k, v in data.items() if k.startswith("extra__")}
        return cls(data["items"], data["shown"], data["clicks"], data.get("n_items"), data.get("context"), extras)
