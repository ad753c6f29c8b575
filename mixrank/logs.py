"""The log schema: feed logs and serving requests as arrays (numpy only; the ground floor).

The contract between the synthetic feeds (:mod:`mixrank.synthetic.feed`), the
pipeline (:mod:`mixrank.pipeline`) and the models (:mod:`esan`), so it lives in
``mixrank`` and the packages above import it from here (``esan.data``
re-exports it).

Two records share one layout, and both are plain dicts of numpy arrays under
the hood, so a user fills them from their own logs as easily as the synthetic
feed (:mod:`mixrank.synthetic.feed`) does:

* :class:`FeedLog` — what was shown and what happened: for each of ``R`` logged
  requests, the user's real-time behaviour before the page, the page as it was
  shown (``K`` slots, cards and organic items mixed), which slots were exposed
  and which were clicked. ESAN trains on it.
* :class:`Requests` — what a serving process has before it plans: the behaviour,
  the *organic* page (``K`` slots) and ``N`` candidate cards. ESAN scores it.

Item vocabulary
---------------
Every item (a behaviour entry, a page item, a candidate) is described by a
``type`` (cards: ``0..T-1``; organic items: ``T``), a ``category`` in
``[0, C)`` and ``F`` dense ``features`` (finite floats, e.g. normalised
statistics of the item). ``T`` and ``C`` are stored with the record
(``n_types``, ``n_categories``).

Fields (shapes use R requests, K slots, N candidates, Le/Lc sequence lengths,
F item features, Ae/Ac action features)
------------------------------------------------------------------------------
Behaviour (both records); sequences are most recent first, index 0 is the
latest entry, and ``*_mask`` is False on padding (padding values must still
be finite; zeros are customary):

=================  ===============  =====================================================
``exp_type``       (R, Le) int      type of each recent exposure, in [0, T]
``exp_category``   (R, Le) int      its category, in [0, C)
``exp_features``   (R, Le, F) float its item features
``exp_action``     (R, Le, Ae) f.   how the user treated it (e.g. log dwell, scroll speed)
``exp_mask``       (R, Le) bool     True where the entry holds an exposure
``clk_type``       (R, Lc) int      type of each recent click, in [0, T]
``clk_category``   (R, Lc) int      its category
``clk_features``   (R, Lc, F) float its item features
``clk_action``     (R, Lc, Ac) f.   what followed the click (e.g. log dwell on the detail page)
``clk_mask``       (R, Lc) bool     True where the entry holds a click
=================  ===============  =====================================================

Page (both records; in a :class:`FeedLog` the page *as shown*, in
:class:`Requests` the organic page before any card is inserted):

=================  ===============  =====================================================
``page_type``      (R, K) int       type of the item at each slot, in [0, T]
``page_category``  (R, K) int       its category
``page_features``  (R, K, F) float  its item features
=================  ===============  =====================================================

Outcomes (:class:`FeedLog` only): ``exposed`` (R, K) bool, the user saw the
slot; ``clicked`` (R, K) bool, the user clicked it (only exposed slots can be
clicked); optional ``true_ctr`` (R, K) float in [0, 1], the true click
probability of each shown item given exposure (synthetic logs only; used to
measure the oracle).

Candidates (:class:`Requests` only): ``cand_type`` (R, N) int in [0, T) (cards
only), ``cand_category`` (R, N) int, ``cand_features`` (R, N, F) float.

Optional fields, for a team's own logs (S sparse columns, D context features):

=================  ===============  =====================================================
``exp_sparse``     (R, Le, S) int   raw IDs of each exposure's sparse categorical columns
``clk_sparse``     (R, Lc, S) int   (item ID, seller, brand...): any int64 >= 0, -1 when
``page_sparse``    (R, K, S) int    missing. The model hashes them into buckets, with an
``cand_sparse``    (R, N, S) int    out-of-vocabulary bucket for IDs it never saw
``context``        (R, D) float     dense user / context features (device, hour, ...)
``page_mask``      (R, K) bool      False on padded slots (a page shorter than K); they
                                    are never exposed and never seen as neighbours
``cand_mask``      (R, N) bool      False on padded candidates (:class:`Requests` only)
=================  ===============  =====================================================

The sparse fields go together: a record has all of those of its parts or none.

Files are ``.npz`` archives with a ``__schema__`` entry (format, version, T, C);
:meth:`FeedLog.save` writes the whole file or nothing.

Examples
--------
>>> import numpy as np
>>> from mixrank.logs import FeedLog
>>> R, K, L, F = 2, 4, 3, 2
>>> z = lambda *s: np.zeros(s)
>>> log = FeedLog(n_types=2, n_categories=3,
...     exp_type=np.full((R, L), 2), exp_category=np.zeros((R, L), int), exp_features=z(R, L, F),
...     exp_action=z(R, L, 2), exp_mask=np.ones((R, L), bool),
...     clk_type=np.zeros((R, 1), int), clk_category=np.zeros((R, 1), int), clk_features=z(R, 1, F),
...     clk_action=z(R, 1, 2), clk_mask=np.zeros((R, 1), bool),
...     page_type=[[2, 0, 2, 1], [2, 2, 2, 2]], page_category=np.zeros((R, K), int),
...     page_features=z(R, K, F), exposed=np.ones((R, K), bool), clicked=np.zeros((R, K), bool))
>>> len(log), log.dims["K"], log.n_impressions
(2, 4, 8)
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import numpy as np

from mixrank._io import atomic_write
from mixrank.errors import MixrankError

__all__ = ["InputError", "LogSchemaError", "FeedLog", "Requests", "Page", "LogShards", "SCHEMA_VERSION"]

#: Version of the ``.npz`` layout written by :meth:`FeedLog.save` / :meth:`Requests.save`.
SCHEMA_VERSION = 1


class InputError(MixrankError, ValueError):
    """An argument of a log, request or model function is not what it must be; the message names it.

    ``esan`` raises it for its own arguments (``esan.data.InputError`` is this class).
    """


class LogSchemaError(InputError):
    """A log or request record does not follow the documented array schema."""


class Page(NamedTuple):
    """The items of ``R`` pages of ``K`` slots: what is shown at each slot."""

    type: np.ndarray  #: (R, K) int16 in [0, T]
    category: np.ndarray  #: (R, K) int16 in [0, C)
    features: np.ndarray  #: (R, K, F) float32


# name -> (dims, kind); kind: type (in [0, T]), card_type ([0, T)), category, float, bool, prob
_BEHAVIOUR: dict[str, tuple[tuple[str, ...], str]] = {
    "exp_type": (("R", "Le"), "type"),
    "exp_category": (("R", "Le"), "category"),
    "exp_features": (("R", "Le", "F"), "float"),
    "exp_action": (("R", "Le", "Ae"), "float"),
    "exp_mask": (("R", "Le"), "bool"),
    "clk_type": (("R", "Lc"), "type"),
    "clk_category": (("R", "Lc"), "category"),
    "clk_features": (("R", "Lc", "F"), "float"),
    "clk_action": (("R", "Lc", "Ac"), "float"),
    "clk_mask": (("R", "Lc"), "bool"),
}
_PAGE: dict[str, tuple[tuple[str, ...], str]] = {
    "page_type": (("R", "K"), "type"),
    "page_category": (("R", "K"), "category"),
    "page_features": (("R", "K", "F"), "float"),
}
_OUTCOMES: dict[str, tuple[tuple[str, ...], str]] = {
    "exposed": (("R", "K"), "bool"),
    "clicked": (("R", "K"), "bool"),
}
_CANDIDATES: dict[str, tuple[tuple[str, ...], str]] = {
    "cand_type": (("R", "N"), "card_type"),
    "cand_category": (("R", "N"), "category"),
    "cand_features": (("R", "N", "F"), "float"),
}

_EXTRA_LOG: dict[str, tuple[tuple[str, ...], str]] = {
    "exp_sparse": (("R", "Le", "S"), "id"),
    "clk_sparse": (("R", "Lc", "S"), "id"),
    "page_sparse": (("R", "K", "S"), "id"),
    "context": (("R", "D"), "float"),
    "page_mask": (("R", "K"), "bool"),
}
_EXTRA_REQUESTS: dict[str, tuple[tuple[str, ...], str]] = {
    **_EXTRA_LOG,
    "cand_sparse": (("R", "N", "S"), "id"),
    "cand_mask": (("R", "N"), "bool"),
}
#: The optional fields for a team's own logs (sparse IDs, context, masks).
OPTIONAL_FIELDS = tuple(_EXTRA_REQUESTS)

#: Field names of the behaviour part, in the order the model takes them.
BEHAVIOUR_FIELDS = tuple(_BEHAVIOUR)
PAGE_FIELDS = tuple(_PAGE)
CANDIDATE_FIELDS = tuple(_CANDIDATES)


def _to_array(name: str, x: Any, kind: str) -> np.ndarray:
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as exc:  # ragged lists and the like
        raise LogSchemaError(f"{name} must be an array; got {type(x).__name__} ({exc})") from None
    if kind == "bool":
        if arr.dtype != np.bool_:
            if arr.dtype.kind not in "iu" or (arr.size and not np.isin(arr, (0, 1)).all()):
                raise LogSchemaError(f"{name} must hold booleans; got dtype {arr.dtype}")
        return np.ascontiguousarray(arr, dtype=np.bool_)
    if kind == "id":
        if arr.size and arr.dtype.kind not in "iu":
            raise LogSchemaError(f"{name} must hold integer IDs (int64, -1 when missing); got dtype {arr.dtype}")
        if arr.size and arr.dtype.kind == "u" and arr.max() > np.iinfo(np.int64).max:
            raise LogSchemaError(f"{name} must fit in int64; got values up to {arr.max()}")
        out = np.ascontiguousarray(arr, dtype=np.int64)
        if out.size and out.min() < -1:
            raise LogSchemaError(f"{name} must hold IDs >= 0 or -1 (missing); got {out.min()}")
        return out
    if kind in ("type", "card_type", "category"):
        if arr.dtype.kind == "f":
            if arr.size and not (np.isfinite(arr).all() and (arr == np.round(arr)).all()):
                raise LogSchemaError(f"{name} must hold integers; got non-integer floats")
        elif arr.size and arr.dtype.kind not in "iub":
            raise LogSchemaError(f"{name} must hold integers; got dtype {arr.dtype}")
        if arr.size and (arr.min() < np.iinfo(np.int16).min or arr.max() > np.iinfo(np.int16).max):
            raise LogSchemaError(f"{name} must fit in int16; got values up to {arr.max()}")
        return np.ascontiguousarray(arr, dtype=np.int16)
    if arr.size and arr.dtype.kind not in "fiub":
        raise LogSchemaError(f"{name} must hold numbers; got dtype {arr.dtype}")
    out = np.ascontiguousarray(arr, dtype=np.float32)
    if out.size:
        bad = ~np.isfinite(out)
        if bad.any():
            i = tuple(int(j) for j in np.argwhere(bad)[0])
            raise LogSchemaError(f"{name} must be finite; got {arr[i]} at {i}")
    return out


class _Record:
    """A validated bundle of arrays that share the leading request axis ``R``."""

    _SPEC: ClassVar[dict[str, tuple[tuple[str, ...], str]]] = {}
    _OPTIONAL: ClassVar[dict[str, tuple[tuple[str, ...], str]]] = {}
    _FORMAT: ClassVar[str] = ""

    def __init__(self, n_types: int, n_categories: int, **arrays: Any) -> None:
        cls = type(self).__name__
        for name, v in (("n_types", n_types), ("n_categories", n_categories)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise LogSchemaError(f"{cls}.{name} must be an int >= 1; got {v!r}")
        self.n_types = int(n_types)
        self.n_categories = int(n_categories)
        missing = [k for k in self._SPEC if k not in arrays]
        if missing:
            raise LogSchemaError(f"{cls} is missing field(s) {', '.join(missing)}")
        unknown = sorted(set(arrays) - set(self._SPEC) - set(self._OPTIONAL))
        if unknown:
            raise LogSchemaError(
                f"{cls} got unknown field(s) {', '.join(unknown)}; "
                f"valid fields: {', '.join([*self._SPEC, *self._OPTIONAL])}"
            )
        spec = {**self._SPEC, **{k: v for k, v in self._OPTIONAL.items() if arrays.get(k) is not None}}
        self.dims: dict[str, int] = {}
        data: dict[str, np.ndarray] = {}
        for name, (dims, kind) in spec.items():
            arr = _to_array(name, arrays[name], kind)
            if arr.ndim != len(dims):
                raise LogSchemaError(
                    f"{name} must have {len(dims)} dimensions ({', '.join(dims)}); got shape {arr.shape}"
                )
            for d, size in zip(dims, arr.shape):
                if d not in self.dims:
                    self.dims[d] = int(size)
                elif self.dims[d] != size:
                    first = next(n for n, (ds, _) in spec.items() if d in ds and n in data)
                    raise LogSchemaError(
                        f"{name} must have {d} = {self.dims[d]} (as {first} has); got shape {arr.shape}"
                    )
            self._check_range(name, kind, arr)
            arr.setflags(write=False)
            data[name] = arr
        self._data = data
        self._check_extra()

    def _check_range(self, name: str, kind: str, arr: np.ndarray) -> None:
        if not arr.size:
            return
        hi = {"type": self.n_types, "card_type": self.n_types - 1, "category": self.n_categories - 1}.get(kind)
        if hi is not None and (arr.min() < 0 or arr.max() > hi):
            i = tuple(int(j) for j in np.argwhere((arr < 0) | (arr > hi))[0])
            what = {"type": "types in [0, T] (T = organic)", "card_type": "card types in [0, T)",
                    "category": "categories in [0, C)"}[kind]
            raise LogSchemaError(
                f"{name} must hold {what} with T = {self.n_types}, C = {self.n_categories}; got {arr[i]} at {i}"
            )
        if kind == "prob" and (arr.min() < 0 or arr.max() > 1):
            raise LogSchemaError(f"{name} must hold probabilities in [0, 1]; got range [{arr.min()}, {arr.max()}]")

    def _check_extra(self) -> None:
        sparse = [k for k in self._OPTIONAL if k.endswith("_sparse")]
        have = [k for k in sparse if k in self._data]
        if have and len(have) != len(sparse):
            missing = ", ".join(k for k in sparse if k not in self._data)
            raise LogSchemaError(f"{type(self).__name__} has {', '.join(have)} but not {missing}: give all or none")

    # -------------------------------------------------------------- access
    def __getattr__(self, name: str) -> np.ndarray:
        data = self.__dict__.get("_data")
        if data is not None and name in data:
            return data[name]
        raise AttributeError(f"{type(self).__name__} has no field {name!r}")

    @property
    def fields(self) -> dict[str, np.ndarray]:
        """The arrays by name (read-only views)."""
        return dict(self._data)

    def __len__(self) -> int:
        return self.dims["R"]

    def __getitem__(self, index: Any):
        """The requests selected by ``index`` (an int, slice, index array or bool mask) as a new record."""
        if isinstance(index, (int, np.integer)) and not isinstance(index, bool):
            n = len(self)
            i = int(index)
            if not -n <= i < n:
                raise IndexError(f"{type(self).__name__} index out of range: {i} (the record holds {n} requests)")
            i %= n
            index = slice(i, i + 1)
        return type(self)(self.n_types, self.n_categories, **{k: v[index] for k, v in self._data.items()})

    def __repr__(self) -> str:
        dims = ", ".join(f"{k}={v}" for k, v in self.dims.items())
        return f"{type(self).__name__}({dims}, T={self.n_types}, C={self.n_categories})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return (
            self.n_types == other.n_types
            and self.n_categories == other.n_categories
            and self._data.keys() == other._data.keys()
            and all(np.array_equal(v, other._data[k]) for k, v in self._data.items())
        )

    __hash__ = None  # type: ignore[assignment]

    @classmethod
    def concat(cls, records: list) -> Any:
        """Stack records of one layout along the request axis."""
        if not records:
            raise LogSchemaError(f"{cls.__name__}.concat needs at least one record; got none")
        first = records[0]
        for r in records[1:]:
            if (r.n_types, r.n_categories) != (first.n_types, first.n_categories) or r._data.keys() != first._data.keys():
                raise LogSchemaError(f"{cls.__name__}.concat: records must share T, C and fields")
        return cls(
            first.n_types,
            first.n_categories,
            **{k: np.concatenate([r._data[k] for r in records]) for k in first._data},
        )

    # -------------------------------------------------------------- files
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the record as an ``.npz`` archive; the file appears whole or not at all."""
        path = Path(path)
        header = {
            "format": self._FORMAT,
            "schema_version": SCHEMA_VERSION,
            "n_types": self.n_types,
            "n_categories": self.n_categories,
        }
        with atomic_write(path) as fh:
            np.savez(fh, __schema__=np.array(json.dumps(header)), **self._data)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Any:
        """Read a file written by :meth:`save`; a malformed or foreign file raises :class:`LogSchemaError`."""
        path = Path(path)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise LogSchemaError(f"cannot read {cls.__name__} file {path}: {exc.strerror}") from None
        try:
            with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
            raise LogSchemaError(f"{path} is not a readable .npz archive ({exc})") from None
        if "__schema__" not in arrays:
            raise LogSchemaError(f"{path} has no __schema__ entry; it was not written by {cls.__name__}.save")
        try:
            header = json.loads(str(arrays.pop("__schema__")))
        except json.JSONDecodeError as exc:
            raise LogSchemaError(f"{path}: __schema__ is not valid JSON ({exc})") from None
        if not isinstance(header, dict) or header.get("format") != cls._FORMAT:
            got = header.get("format") if isinstance(header, dict) else header
            raise LogSchemaError(f"{path} must hold format {cls._FORMAT!r}; got {got!r}")
        version = header.get("schema_version")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise LogSchemaError(f"{path}: schema_version must be an int >= 1; got {version!r}")
        if version > SCHEMA_VERSION:
            raise LogSchemaError(
                f"{path}: schema_version {version} is newer than this mixrank reads ({SCHEMA_VERSION}); upgrade"
            )
        try:
            return cls(header.get("n_types"), header.get("n_categories"), **arrays)
        except LogSchemaError as exc:
            raise LogSchemaError(f"{path}: {exc}") from None


class FeedLog(_Record):
    """Logged requests: behaviour, the page as shown, exposures and clicks (see the module docstring).

    Parameters
    ----------
    n_types : int >= 1
        ``T``, the number of card types (organic items are type ``T``).
    n_categories : int >= 1
        ``C``.
    **arrays
        Every behaviour and page field, ``exposed`` and ``clicked``, and
        optionally ``true_ctr``.

    Raises
    ------
    LogSchemaError
        Naming the field, what it must be and what it got.
    """

    _SPEC = {**_BEHAVIOUR, **_PAGE, **_OUTCOMES}
    _OPTIONAL = {"true_ctr": (("R", "K"), "prob"), **_EXTRA_LOG}
    _FORMAT = "mixrank.FeedLog"

    def _check_extra(self) -> None:
        super()._check_extra()
        bad = self.clicked & ~self.exposed
        if bad.any():
            i = tuple(int(j) for j in np.argwhere(bad)[0])
            raise LogSchemaError(f"clicked must be False where exposed is False; got a click at {i}")
        if "page_mask" in self._data:
            bad = self.exposed & ~self.page_mask
            if bad.any():
                i = tuple(int(j) for j in np.argwhere(bad)[0])
                raise LogSchemaError(f"exposed must be False where page_mask is False (a padded slot); got {i}")

    @property
    def n_impressions(self) -> int:
        """Number of exposed (request, slot) pairs."""
        return int(self.exposed.sum())

    @property
    def page(self) -> Page:
        """The pages as shown."""
        return Page(self.page_type, self.page_category, self.page_features)

    def save_shards(self, directory: str | os.PathLike[str], rows_per_shard: int = 100_000) -> LogShards:
        """Write the log as memory-mappable shards of ``rows_per_shard`` requests (see :class:`LogShards`)."""
        if isinstance(rows_per_shard, bool) or not isinstance(rows_per_shard, (int, np.integer)) or rows_per_shard < 1:
            raise LogSchemaError(f"rows_per_shard must be an int >= 1; got {rows_per_shard!r}")
        n = len(self)
        return LogShards.write(directory, (self[i : i + rows_per_shard] for i in range(0, n, int(rows_per_shard))))

    def split(self, fractions: tuple[float, ...], seed: int = 0) -> list:
        """Split the requests at random into parts of the given fractions (which must sum to 1).

        Examples
        --------
        >>> from mixrank.synthetic import FeedEnv, FeedConfig
        >>> log = FeedEnv(FeedConfig(n_slots=8, n_cards=4)).log(10, seed=0)
        >>> [len(part) for part in log.split((0.8, 0.2))]
        [8, 2]
        """
        fr = np.asarray(fractions, dtype=float)
        if (
            fr.ndim != 1
            or fr.size < 1
            or not np.isfinite(fr).all()
            or (fr < 0).any()
            or not abs(fr.sum() - 1) <= 1e-9
        ):
            raise LogSchemaError(f"fractions must be finite, non-negative and sum to 1; got {fractions!r}")
        perm = np.random.default_rng(seed).permutation(len(self))
        cuts = np.round(np.cumsum(fr)[:-1] * len(self)).astype(int)
        return [self[np.sort(p)] for p in np.split(perm, cuts)]


class LogShards:
    """A :class:`FeedLog` too large for memory: a directory of shards, read through memory maps.

    Written by :meth:`FeedLog.save_shards` (or shard by shard with
    :meth:`LogShards.write`): ``schema.json`` and one folder of ``.npy`` files
    per shard. Opening reads only the headers; :meth:`take` reads the rows it
    is asked for (the operating system pages them in and out), :meth:`chunks`
    walks the log in order. :func:`esan.training.train` takes it in place of a
    :class:`FeedLog`.

    Examples
    --------
    >>> import tempfile
    >>> from mixrank.synthetic import FeedEnv, FeedConfig
    >>> log = FeedEnv(FeedConfig(n_slots=6, n_cards=3)).log(50, seed=0)
    >>> shards = log.save_shards(tempfile.mkdtemp() + "/log", rows_per_shard=20)
    >>> len(shards), shards.n_shards, shards.take([3, 45]) == log[[3, 45]]
    (50, 3, True)
    """

    _FORMAT = "mixrank.FeedLog.shards"

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        head = self.directory / "schema.json"
        try:
            header = json.loads(head.read_text())
        except OSError as exc:
            raise LogSchemaError(f"cannot read {head}: {exc.strerror}") from None
        except json.JSONDecodeError as exc:
            raise LogSchemaError(f"{head} is not valid JSON ({exc})") from None
        if not isinstance(header, dict) or header.get("format") != self._FORMAT:
            raise LogSchemaError(f"{head} must hold format {self._FORMAT!r}")
        version = header.get("schema_version")
        if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= SCHEMA_VERSION:
            raise LogSchemaError(f"{head}: schema_version must be an int in [1, {SCHEMA_VERSION}]; got {version!r}")
        self.n_types, self.n_categories = header.get("n_types"), header.get("n_categories")
        shards, names = header.get("shards"), header.get("fields")
        if not isinstance(shards, list) or not shards or not isinstance(names, list):
            raise LogSchemaError(f"{head} must list its shards and fields")
        self._shards: list[dict[str, np.ndarray]] = []
        sizes = []
        for entry in shards:
            arrays = {}
            for name in names:
                f = self.directory / str(entry) / f"{name}.npy"
                try:
                    arrays[name] = np.load(f, mmap_mode="r", allow_pickle=False)
                except (OSError, ValueError) as exc:
                    raise LogSchemaError(f"cannot read shard file {f} ({exc})") from None
            rows = {a.shape[0] for a in arrays.values()}
            if len(rows) != 1:
                raise LogSchemaError(f"shard {entry} of {self.directory}: fields differ in their number of rows")
            self._shards.append(arrays)
            sizes.append(rows.pop())
        self._starts = np.concatenate([[0], np.cumsum(sizes)])
        first = self.take([0])  # validates the layout (and T, C) on one row
        self.dims = {**first.dims, "R": len(self)}

    @classmethod
    def write(cls, directory: str | os.PathLike[str], parts: Any) -> LogShards:
        """Write the :class:`FeedLog` parts of an iterable as shards (one at a time: the whole log is never
        in memory) and open them. The directory appears whole or not at all."""
        import shutil
        import tempfile

        directory = Path(directory)
        if directory.exists():
            raise LogSchemaError(f"directory must not exist yet; got {directory}")
        tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
        try:
            names, first = [], None
            for i, part in enumerate(parts):
                if not isinstance(part, FeedLog):
                    raise LogSchemaError(f"parts must be FeedLog records; got {type(part).__name__}")
                if first is None:
                    first = part
                elif (part.n_types, part.n_categories, part.fields.keys()) != (
                    first.n_types, first.n_categories, first.fields.keys()
                ):
                    raise LogSchemaError("parts must share T, C and fields")
                name = f"shard-{i:05d}"
                (tmp / name).mkdir()
                for field, arr in part.fields.items():
                    np.save(tmp / name / f"{field}.npy", arr)
                names.append(name)
            if first is None:
                raise LogSchemaError("parts must hold at least one FeedLog; got none")
            header = {
                "format": cls._FORMAT,
                "schema_version": SCHEMA_VERSION,
                "n_types": first.n_types,
                "n_categories": first.n_categories,
                "fields": list(first.fields),
                "shards": names,
            }
            (tmp / "schema.json").write_text(json.dumps(header))
            os.replace(tmp, directory)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return cls(directory)

    def __len__(self) -> int:
        return int(self._starts[-1])

    @property
    def n_shards(self) -> int:
        return len(self._shards)

    def __repr__(self) -> str:
        return f"LogShards({self.directory}, R={len(self)}, shards={self.n_shards})"

    def take(self, rows: Any) -> FeedLog:
        """The requests at ``rows`` (global indices, in the order given) as a validated :class:`FeedLog`."""
        idx = np.asarray(rows, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise IndexError(f"LogShards index out of range (the log holds {len(self)} requests)")
        idx = idx % max(len(self), 1)
        shard = np.searchsorted(self._starts, idx, side="right") - 1
        out: dict[str, list[np.ndarray]] = {name: [] for name in self._shards[0]}
        order = []
        for sh in np.unique(shard):
            pick = np.flatnonzero(shard == sh)
            local = idx[pick] - self._starts[sh]
            for name, arr in self._shards[sh].items():
                out[name].append(np.asarray(arr[local]))
            order.append(pick)
        back = np.argsort(np.concatenate(order)) if order else np.zeros(0, np.int64)
        return FeedLog(self.n_types, self.n_categories, **{k: np.concatenate(v)[back] for k, v in out.items()})

    def chunks(self, size: int = 4096) -> Any:
        """The log in order, ``size`` requests at a time (an iterator of :class:`FeedLog`)."""
        for start in range(0, len(self), size):
            yield self.take(np.arange(start, min(start + size, len(self))))


class Requests(_Record):
    """Serving requests: behaviour, the organic page and the candidate cards (see the module docstring).

    Parameters
    ----------
    n_types, n_categories : int >= 1
        ``T`` (card types) and ``C``.
    **arrays
        Every behaviour, page and candidate field.
    """

    _SPEC = {**_BEHAVIOUR, **_PAGE, **_CANDIDATES}
    _OPTIONAL = _EXTRA_REQUESTS
    _FORMAT = "mixrank.Requests"

    @property
    def organic(self) -> Page:
        """The organic pages (no card inserted)."""
        return Page(self.page_type, self.page_category, self.page_features)

    def compose(self, assignment: Any) -> Page:
        """The pages that plans show: ``assignment[r, s] = c`` puts candidate c at slot s, -1 keeps the organic item.

        ``assignment`` is (R, K), or (K,) when the record holds one request.

        Examples
        --------
        >>> from mixrank.synthetic import FeedEnv, FeedConfig
        >>> req = FeedEnv(FeedConfig(n_slots=5, n_cards=3)).sample(1, seed=0).requests
        >>> page = req.compose([-1, 2, -1, -1, 0])
        >>> bool(page.type[0, 1] == req.cand_type[0, 2]), bool(page.type[0, 0] == 3)
        (True, True)
        """
        a = np.asarray(assignment)
        r, k, n = self.dims["R"], self.dims["K"], self.dims["N"]
        if a.ndim == 1 and r == 1:
            a = a[None, :]
        if a.shape != (r, k):
            raise LogSchemaError(f"assignment must have shape ({r}, {k}); got {a.shape}")
        if a.size and (a.dtype.kind not in "iu" or a.min() < -1 or a.max() >= n):
            raise LogSchemaError(f"assignment must hold -1 or candidate indices in [0, {n}); got {a.dtype} array")
        a = a.astype(np.int64)
        used = np.sort(np.where(a >= 0, a, -1 - np.arange(k)), axis=1)
        if (np.diff(used, axis=1) == 0).any():
            raise LogSchemaError("assignment must not use a candidate twice in one request")
        card = a >= 0
        c = np.where(card, a, 0)
        rows = np.arange(r)[:, None]
        if "page_mask" in self._data and (card & ~self.page_mask).any():
            raise LogSchemaError("assignment must not place a card on a padded slot (page_mask False)")
        if "cand_mask" in self._data and (card & ~self.cand_mask[rows, c]).any():
            raise LogSchemaError("assignment must not use a padded candidate (cand_mask False)")
        ptype = np.where(card, self.cand_type[rows, c], self.page_type)
        pcat = np.where(card, self.cand_category[rows, c], self.page_category)
        pfeat = np.where(card[..., None], self.cand_features[rows, c], self.page_features)
        return Page(ptype.astype(np.int16), pcat.astype(np.int16), pfeat.astype(np.float32))

    def compose_fields(self, assignment: Any) -> dict[str, np.ndarray]:
        """Like :meth:`compose`, as the page fields of a :class:`FeedLog` (``page_sparse`` and
        ``page_mask`` included when the record has them)."""
        page = self.compose(assignment)
        out = {"page_type": page.type, "page_category": page.category, "page_features": page.features}
        a = np.asarray(assignment).astype(np.int64).reshape(len(self), -1)
        if "page_sparse" in self._data:
            c = np.where(a >= 0, a, 0)
            rows = np.arange(len(self))[:, None]
            out["page_sparse"] = np.where((a >= 0)[..., None], self.cand_sparse[rows, c], self.page_sparse)
        if "page_mask" in self._data:
            out["page_mask"] = self.page_mask
        return out
