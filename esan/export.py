"""Export ESAN for on-device inference: ``torch.export`` and ONNX, with a parity check on onnxruntime.

Both exports take the :data:`esan.model.FORWARD_INPUTS` tensors (behaviour,
organic page, candidates; a batch axis first) and return ``(card_ctr (B, N, K),
organic_ctr (B, K))``. By default the number of candidates ``N``, of slots
``K`` and the sequence lengths ``Le``, ``Lc`` (up to ``max_seq_len``) are
dynamic; the batch size is fixed by the example.

Parity: :func:`onnx_parity` runs the ONNX file on onnxruntime and the PyTorch
model on the same requests and reports the largest absolute difference of the
probabilities; the default tolerance is ``1e-5`` (float32 kernels differ in
summation order only).

Examples
--------
>>> import os, tempfile
>>> from mixrank.synthetic import FeedEnv, FeedConfig
>>> from esan import ESAN, ESANConfig
>>> req = FeedEnv(FeedConfig(n_slots=8, n_cards=3)).sample(1, seed=0).requests
>>> model = ESAN(ESANConfig.for_data(req, dim=8, hidden=8))
>>> prog = export_program(model, req)
>>> card, organic = prog.module()(*example_args(req))
>>> tuple(card.shape), tuple(organic.shape)
((1, 3, 8), (1, 8))
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from esan.data import InputError, Requests
from esan.model import ESAN, FORWARD_INPUTS

__all__ = ["example_args", "export_program", "export_onnx", "onnx_parity", "ParityReport", "DEFAULT_TOLERANCE"]

#: Largest absolute difference of probabilities that :func:`onnx_parity` accepts by default.
DEFAULT_TOLERANCE = 1e-5


def example_args(requests: Requests, model: ESAN | None = None) -> tuple[torch.Tensor, ...]:
    """The forward inputs of ``requests`` as a tuple of tensors, in :data:`FORWARD_INPUTS` order.

    With ``model``: in the order of ``model.input_names`` (its optional inputs
    included), prepared as the model takes them (:meth:`ESAN.inputs`).
    """
    if not isinstance(requests, Requests):
        raise InputError(f"requests must be a mixrank.logs.Requests; got {type(requests).__name__}")
    if model is None:
        t = ESAN.tensors(requests)
        return tuple(t[name] for name in FORWARD_INPUTS)
    t = model.inputs(requests)
    return tuple(t[name] for name in model.input_names)


class _ByPosition(torch.nn.Module):
    """The model with every input of ``input_names`` positional (what the exported programs take)."""

    def __init__(self, model: ESAN) -> None:
        super().__init__()
        self.model = model
        self.names = model.input_names

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.call(dict(zip(self.names, inputs)))


def _exportable(model: ESAN) -> torch.nn.Module:
    return model if model.input_names == FORWARD_INPUTS else _ByPosition(model).eval()


def _dynamic_shapes(model: ESAN, requests: Requests) -> tuple[dict[int, Any], ...]:
    from torch.export import Dim

    d = requests.dims
    for name in ("N", "K"):
        if d[name] < 2:
            raise InputError(f"the export example must have {name} >= 2 (a size of 1 would be fixed); got {d[name]}")
    for name in ("Le", "Lc"):
        if d[name] < 2:
            raise InputError(f"the export example must have {name} >= 2 (a size of 1 would be fixed); got {d[name]}")
    cap = model.config.max_seq_len
    dims = {
        "K": Dim("K", min=2, max=4096),
        "N": Dim("N", min=2, max=4096),
        "Le": Dim("Le", min=2, max=cap),
        "Lc": Dim("Lc", min=2, max=cap),
    }
    shapes = []
    for name in model.input_names:
        axis = {"exp": "Le", "clk": "Lc", "page": "K", "cand": "N"}.get(name.split("_")[0])
        shapes.append({1: dims[axis]} if axis else {})
    if model.input_names != FORWARD_INPUTS:
        return (tuple(shapes),)  # _ByPosition's forward takes them as *inputs
    return tuple(shapes)


def export_program(model: ESAN, requests: Requests, dynamic: bool = True) -> torch.export.ExportedProgram:
    """``torch.export.export`` of the model's forward, traced on ``requests``.

    Parameters
    ----------
    model : ESAN
    requests : Requests
        The example; its batch size is fixed in the program.
    dynamic : bool
        Make N, K, Le and Lc dynamic (the example must have each >= 2).
    """
    if not isinstance(model, ESAN):
        raise InputError(f"model must be an ESAN; got {type(model).__name__}")
    model.check_data(requests)
    args = example_args(requests, model)
    model.eval()
    shapes = _dynamic_shapes(model, requests) if dynamic else None
    with torch.no_grad():
        return torch.export.export(_exportable(model), args, dynamic_shapes=shapes)


def export_onnx(model: ESAN, path: str | os.PathLike[str], requests: Requests, dynamic: bool = True) -> Path:
    """Write the model as an ONNX file (``torch.onnx.export(..., dynamo=True)``), whole or not at all.

    Inputs are named as :data:`FORWARD_INPUTS`; outputs ``card_ctr`` and ``organic_ctr``.
    Returns the path written.
    """
    if not isinstance(model, ESAN):
        raise InputError(f"model must be an ESAN; got {type(model).__name__}")
    model.check_data(requests)
    path = Path(path)
    if not path.parent.is_dir():
        raise InputError(f"path's directory must exist; got {path.parent}")
    args = example_args(requests, model)
    model.eval()
    shapes = _dynamic_shapes(model, requests) if dynamic else None
    tmpdir = tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent)
    tmp = Path(tmpdir) / path.name
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registration.level
    try:
        registration.setLevel(logging.ERROR)  # "torchvision is not installed" notes: irrelevant here
        with torch.no_grad(), warnings.catch_warnings():
            # the exporter renames our Dim axes and uses a deprecated pytree check: noise, not problems
            warnings.filterwarnings("ignore", message=r".*axis name.*will not be used")
            warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
            program = torch.onnx.export(
                _exportable(model),
                args,
                dynamo=True,
                dynamic_shapes=shapes,
                input_names=list(model.input_names),
                output_names=["card_ctr", "organic_ctr"],
                external_data=False,
                verbose=False,
            )
        program.save(str(tmp))
        os.replace(tmp, path)
    finally:
        registration.setLevel(level)
        tmp.unlink(missing_ok=True)
        shutil.rmtree(tmpdir, ignore_errors=True)
        try:
            os.rmdir(tmpdir)
        except OSError:
            pass
    return path


class ParityReport(dict):
    """``max_abs_diff`` of card and organic CTRs, ``tolerance``, ``ok``, ``n_requests``."""

    def __str__(self) -> str:
        verdict = "ok" if self["ok"] else "FAILED"
        return (
            f"ONNX parity {verdict}: max |diff| {self['max_abs_diff']:.3g} "
            f"(tolerance {self['tolerance']:.1g}) over {self['n_requests']} requests"
        )


def onnx_parity(
    model: ESAN, path: str | os.PathLike[str], requests: Requests, tolerance: float = DEFAULT_TOLERANCE
) -> ParityReport:
    """Run the ONNX file on onnxruntime and the model in PyTorch on each request; compare.

    Each request is run on its own (the exported batch size is the example's,
    usually 1), so ``requests`` may differ in N and K from the export example
    only through separate records.
    """
    import onnxruntime as ort

    if not isinstance(requests, Requests):
        raise InputError(f"requests must be an esan.data.Requests; got {type(requests).__name__}")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    worst = 0.0
    model.eval()
    for r in range(len(requests)):
        one = requests[r]
        args = example_args(one, model)
        with torch.no_grad():
            ref = [t.numpy() for t in model.call(dict(zip(model.input_names, args)))]
        feed = {name: a.numpy() for name, a in zip(model.input_names, args) if name in names}
        got = sess.run(["card_ctr", "organic_ctr"], feed)
        for a, b in zip(ref, got):
            if a.shape != b.shape:
                raise InputError(f"ONNX output shape {b.shape} differs from PyTorch's {a.shape}")
            worst = max(worst, float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))))
    return ParityReport(max_abs_diff=worst, tolerance=float(tolerance), ok=worst <= tolerance, n_requests=len(requests))
