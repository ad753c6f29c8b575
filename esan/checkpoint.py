"""Safe ESAN checkpoints: written whole or not at all; corrupt or foreign files are refused.

A checkpoint is a ``torch.save`` archive holding only plain data and tensors
(read back with ``torch.load(weights_only=True)``, so loading never runs
pickled code): a format marker, a version, the model config, the state dict, a
SHA-256 digest of the state dict, and an optional JSON ``extra`` (training
metadata). The state dict holds the feature scaling and the per-type
calibration (buffers) with the weights, so a loaded model predicts exactly as
the saved one (version 2; version-1 files load with identity scaling and
calibration). Non-finite weights are refused even when the digest matches. :func:`save_checkpoint` writes a temporary file in the target's
directory, flushes it to disk and renames it over the target.
:func:`load_checkpoint` raises :class:`mixrank.errors.CheckpointError`, naming
the path and what is wrong, for a missing, truncated, corrupt or foreign file.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch

from esan.data import InputError
from esan.model import ESAN, ESANConfig
from mixrank._io import atomic_write
from mixrank.errors import CheckpointError

__all__ = ["save_checkpoint", "load_checkpoint", "CHECKPOINT_FORMAT", "CHECKPOINT_VERSION"]

CHECKPOINT_FORMAT = "esan.checkpoint"
CHECKPOINT_VERSION = 2
#: Buffers that version 2 added (feature scaling and per-type calibration); a version-1 file loads with their
#: identity defaults.
_ADDED_IN_2 = ("calib_scale", "calib_bias", "fitted", ".scaling.mean", ".scaling.std")


def _digest(state: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        h.update(name.encode())
        h.update(str(t.dtype).encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def save_checkpoint(model: ESAN, path: str | os.PathLike[str], extra: dict[str, Any] | None = None) -> Path:
    """Write ``model`` (config, weights, digest, ``extra``) to ``path`` atomically.

    Parameters
    ----------
    model : ESAN
    path : path-like
        The target file; its directory must exist.
    extra : dict, optional
        JSON-serialisable metadata (e.g. metrics, the epoch), returned by
        ``load_checkpoint(..., with_extra=True)``.

    Returns
    -------
    Path
        The path written.

    Examples
    --------
    >>> import tempfile, os
    >>> from esan.model import ESAN, ESANConfig
    >>> m = ESAN(ESANConfig(n_types=2, n_categories=3, n_features=2, exp_action_dim=3, clk_action_dim=2))
    >>> d = tempfile.mkdtemp()
    >>> p = save_checkpoint(m, os.path.join(d, "esan.pt"), extra={"epoch": 3})
    >>> m2, extra = load_checkpoint(p, with_extra=True)
    >>> extra, m2.config == m.config
    ({'epoch': 3}, True)
    """
    if not isinstance(model, ESAN):
        raise InputError(f"model must be an ESAN; got {type(model).__name__}")
    path = Path(path)
    if not path.parent.is_dir():
        raise CheckpointError(f"cannot write checkpoint {path}: directory {path.parent} does not exist")
    try:
        extra_json = json.dumps(extra if extra is not None else {}, allow_nan=True)
    except (TypeError, ValueError) as exc:
        raise InputError(f"extra must be JSON-serialisable; got {exc}") from None
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "config": model.config.to_dict(),
        "state_dict": state,
        "digest": _digest(state),
        "extra": extra_json,
    }
    with atomic_write(path) as fh:
        torch.save(payload, fh)
    return path


def load_checkpoint(path: str | os.PathLike[str], with_extra: bool = False) -> ESAN | tuple[ESAN, dict[str, Any]]:
    """Read a checkpoint written by :func:`save_checkpoint`; returns the model in eval mode.

    Raises
    ------
    CheckpointError
        The file is missing or unreadable, truncated or corrupt, not an ESAN
        checkpoint, of a newer version, or its weights do not match its config
        or its digest. The message names the path.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist or is not a file")
    try:
        with open(path, "rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise CheckpointError(f"checkpoint {path} cannot be read: {exc.strerror}") from None
    if magic[:2] != b"PK" and magic[:1] != b"\x80":  # torch.save writes a zip archive (or a legacy pickle)
        raise CheckpointError(
            f"checkpoint {path} is not an ESAN checkpoint: it must be a torch.save archive "
            f"(a zip file); it starts with {magic!r}"
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises RuntimeError, UnpicklingError, EOFError... for damaged files
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated (cannot be read: {reason[:200]})") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        got = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(f"checkpoint {path} is not an ESAN checkpoint (format must be {CHECKPOINT_FORMAT!r}; got {got!r})")
    version = payload.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise CheckpointError(f"checkpoint {path}: version must be an int >= 1; got {version!r}")
    if version > CHECKPOINT_VERSION:
        raise CheckpointError(f"checkpoint {path} has version {version}, newer than this esan reads ({CHECKPOINT_VERSION})")
    config_data = payload.get("config")
    if isinstance(config_data, dict):  # written before the per-neighbour term or the gates existed: without them
        config_data = {"neighbour_units": 0, "behaviour_gates": 0, **config_data}
    try:
        config = ESANConfig.from_dict(config_data)
    except InputError as exc:
        raise CheckpointError(f"checkpoint {path} has an invalid config: {exc}") from None
    state = payload.get("state_dict")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"checkpoint {path} has no valid state_dict")
    if payload.get("digest") != _digest(state):
        raise CheckpointError(f"checkpoint {path} is corrupt: its weights do not match their SHA-256 digest")
    for name, t in state.items():
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise CheckpointError(f"checkpoint {path}: weights must be finite; {name} holds NaN or inf")
    model = ESAN(config)
    if version == 1:
        state = {**{k: v for k, v in model.state_dict().items() if k.endswith(_ADDED_IN_2)}, **state}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise CheckpointError(f"checkpoint {path}: weights do not fit its config ({' '.join(first[:3])[:300]})") from None
    model.eval()
    if not with_extra:
        return model
    try:
        extra = json.loads(payload.get("extra", "{}"))
    except (TypeError, json.JSONDecodeError):
        raise CheckpointError(f"checkpoint {path}: extra metadata is not valid JSON") from None
    return model, extra
