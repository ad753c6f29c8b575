"""ESAN, the Edge Surrounding-Aware Network: a candidate-by-slot CTR matrix in one pass (SPEC §3).

* :mod:`esan.data` — the array schema of logs and requests (numpy only; it lives in :mod:`mixrank.logs`);
* :mod:`esan.model` — :class:`ESAN` and :class:`ESANConfig` (PyTorch);
* :mod:`esan.training` — :func:`train` with validation, early stopping and checkpoints;
* :mod:`esan.checkpoint` — :func:`save_checkpoint` / :func:`load_checkpoint` (safe writes, corrupt files refused);
* :mod:`esan.metrics` — AUC, GAUC, logloss, calibration error (per type), the matrix against a true matrix;
* :mod:`esan.export` — torch.export and ONNX, with an onnxruntime parity check.

Names load on first use, so ``import esan`` does not import torch; the schema
(``esan.FeedLog``, ``esan.Requests``) never needs it.
"""

from __future__ import annotations

from mixrank._lazy import lazy_getattr

__all__ = [
    "FeedLog",
    "Requests",
    "Page",
    "LogSchemaError",
    "ESAN",
    "ESANConfig",
    "train",
    "TrainResult",
    "evaluate",
    "save_checkpoint",
    "load_checkpoint",
    "auc",
    "gauc",
    "logloss",
    "calibration_error",
    "matrix_errors",
    "per_type_calibration",
    "LogShards",
    "export_program",
    "export_onnx",
    "onnx_parity",
]

_WHERE = {
    "FeedLog": "esan.data",
    "Requests": "esan.data",
    "Page": "esan.data",
    "LogSchemaError": "esan.data",
    "ESAN": "esan.model",
    "ESANConfig": "esan.model",
    "train": "esan.training",
    "TrainResult": "esan.training",
    "evaluate": "esan.training",
    "save_checkpoint": "esan.checkpoint",
    "load_checkpoint": "esan.checkpoint",
    "auc": "esan.metrics",
    "gauc": "esan.metrics",
    "logloss": "esan.metrics",
    "calibration_error": "esan.metrics",
    "matrix_errors": "esan.metrics",
    "per_type_calibration": "esan.metrics",
    "LogShards": "mixrank.logs",
    "export_program": "esan.export",
    "export_onnx": "esan.export",
    "onnx_parity": "esan.export",
}


__getattr__ = lazy_getattr(__name__, _WHERE)
