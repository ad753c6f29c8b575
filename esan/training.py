"""Train ESAN on feed logs: mini-batches of requests, validation, early stopping, safe checkpoints.

A step takes a batch of logged requests; the behaviour of each is encoded once
and every exposed item of its page is scored at its own slot, with its logged
surroundings (the training path :meth:`esan.model.ESAN.log_logits`). The loss
is the mean binary cross-entropy over exposed items. After each epoch the
validation log is scored; the learning rate halves when validation logloss
stops improving, training stops after ``patience`` epochs without improvement,
and the best weights are kept (and written to ``checkpoint`` when given).

Examples
--------
>>> from mixrank.synthetic import FeedEnv, FeedConfig
>>> from esan import ESAN, ESANConfig, train
>>> env = FeedEnv(FeedConfig(n_slots=10, n_cards=4, exposure_len=8, history_len=20, click_len=3))
>>> log = env.log(300, seed=0)
>>> model = ESAN(ESANConfig.for_data(log, dim=8, hidden=8))
>>> result = train(model, log[:240], log[240:], epochs=2, progress=False)
>>> result.epochs_run, sorted(result.history[-1])
(2, ['epoch', 'lr', 'train_loss', 'val_auc', 'val_calibration_error', 'val_gauc', 'val_logloss', 'val_pred_over_obs'])
"""

from __future__ import annotations

import copy
import math
import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from esan.checkpoint import save_checkpoint
from esan.data import FeedLog, InputError
from esan.metrics import evaluate_predictions
from esan.model import ESAN
from mixrank.logs import LogShards

__all__ = ["train", "TrainResult", "evaluate"]


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` did.

    Attributes
    ----------
    model : ESAN
        The model with the best validation weights loaded (the last weights without validation).
    history : tuple of dict
        Per epoch: ``epoch``, ``train_loss``, ``lr`` and the validation metrics (``val_*``).
    best_epoch : int
        Epoch (1-based) of the kept weights.
    best_val_logloss : float
        nan without validation.
    epochs_run, steps : int
    stopped_early : bool
    wall_time : float
        Seconds.
    """

    model: ESAN
    history: tuple[dict[str, float], ...]
    best_epoch: int
    best_val_logloss: float
    epochs_run: int
    steps: int
    stopped_early: bool
    wall_time: float

    def __str__(self) -> str:
        last = self.history[-1] if self.history else {}
        stop = ", stopped early" if self.stopped_early else ""
        return (
            f"TrainResult({self.epochs_run} epochs, {self.steps} steps, {self.wall_time:.1f} s{stop}; "
            f"best epoch {self.best_epoch}: val logloss {self.best_val_logloss:.5f}; "
            f"last train loss {last.get('train_loss', float('nan')):.5f})"
        )


def _check_int(name: str, v: Any, lo: int) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
        raise InputError(f"{name} must be an int >= {lo}; got {v!r}")
    return int(v)


def _check_pos(name: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
        raise InputError(f"{name} must be a positive number; got {v!r}")
    return float(v)


def evaluate(model: ESAN, log: FeedLog, batch_size: int = 512) -> dict[str, Any]:
    """Metrics of ``model`` on the exposed items of ``log``.

    Returns
    -------
    dict
        ``all``, ``cards`` and ``organic``: each a dict of auc, gauc (per
        request), logloss, calibration_error, pred_over_obs, n; and, when the log
        has ``true_ctr``, ``oracle`` and ``oracle_cards`` — the same metrics of
        the true click probabilities on the same items.
    """
    if not isinstance(log, FeedLog):
        raise InputError(f"log must be an esan.data.FeedLog; got {type(log).__name__}")
    pred = model.predict_log(log, batch_size=batch_size)
    return log_metrics(log, pred)


def log_metrics(log: FeedLog, pred: np.ndarray) -> dict[str, Any]:
    """The metrics of :func:`evaluate` for given predictions (R, K) of a log's items."""
    pred = np.asarray(pred, dtype=np.float64)
    if pred.shape != log.exposed.shape:
        raise InputError(f"pred must have shape {log.exposed.shape} (R, K); got {pred.shape}")
    exposed = log.exposed
    group = np.broadcast_to(np.arange(len(log))[:, None], exposed.shape)
    card = log.page_type < log.n_types
    out: dict[str, Any] = {}
    parts = {"all": exposed, "cards": exposed & card, "organic": exposed & ~card}
    for name, sel in parts.items():
        out[name] = evaluate_predictions(log.clicked[sel], pred[sel], group[sel])
    if "true_ctr" in log.fields:
        for name, sel in (("oracle", parts["all"]), ("oracle_cards", parts["cards"])):
            out[name] = evaluate_predictions(log.clicked[sel], log.true_ctr[sel].astype(np.float64), group[sel])
    return out


def train(
    model: ESAN,
    train_log: FeedLog,
    val_log: FeedLog | None = None,
    *,
    epochs: int = 30,
    batch_size: int = 64,
    lr: float = 3e-3,
    weight_decay: float = 0.0,
    patience: int = 3,
    schedule: str = "plateau",
    card_weight: float = 1.0,
    checkpoint: str | os.PathLike[str] | None = None,
    seed: int = 0,
    progress: bool = True,
    threads: int | None = None,
    max_steps: int | None = None,
    calibrate: bool = True,
    device: str | torch.device | None = None,
) -> TrainResult:
    """Fit ``model`` to ``train_log``, validating on ``val_log`` after each epoch.

    Parameters
    ----------
    model : ESAN
        Trained in place; on return it holds the best validation weights.
    train_log : FeedLog or LogShards
        A :class:`~mixrank.logs.LogShards` is read batch by batch through memory maps (logs larger
        than memory).
    val_log : FeedLog, optional
        None: no validation, no early stopping, the last weights are kept.
    epochs : int >= 1
    batch_size : int >= 1
        Requests per step.
    lr, weight_decay : float
        Adam's settings.
    patience : int >= 1
        Epochs without a better validation logloss before stopping.
    schedule : {'plateau', 'cosine'}
        ``plateau``: the rate halves after each epoch without improvement;
        ``cosine``: it falls along a half cosine from ``lr`` to ``lr / 20``
        over the ``epochs`` planned.
    card_weight : float > 0
        Weight of card impressions (type < T) in the loss, organic items 1.
        The weight depends only on an input, so the optimum is still the true
        click probability (calibration is kept); a weight above 1 spends more
        of the model on the cards, which are rarer in logs and what mixing needs.
    checkpoint : path-like, optional
        Where the best weights are written (atomically) whenever they improve.
    seed : int >= 0
        Seeds initialisation-independent randomness (batch order, dropout-free).
    progress : bool
        Show a tqdm progress bar.
    threads : int, optional
        ``torch.set_num_threads`` for the run (restored after).
    max_steps : int, optional
        Stop after this many steps in all (for quick runs).
    calibrate : bool
        After training, fit the per-type calibration on ``val_log``
        (:meth:`ESAN.calibrate`; stored in the model, so in its checkpoint and
        exports). Needs ``val_log``.
    device : str or torch.device, optional
        Where to train (``"cuda"``, ``"cpu"``, ...); the model is moved there
        and each batch is moved with it. Default: the model's current device.

    Notes
    -----
    The feature scaling (:meth:`ESAN.fit_scaling`) is fitted on ``train_log``
    before the first step unless the model already has one.

    Returns
    -------
    TrainResult
    """
    if not isinstance(model, ESAN):
        raise InputError(f"model must be an ESAN; got {type(model).__name__}")
    for name, lg in (("train_log", train_log), ("val_log", val_log)):
        if lg is None and name == "val_log":
            continue
        if name == "train_log" and isinstance(lg, LogShards):
            model.check_data(lg.take([0]))
            continue
        if not isinstance(lg, FeedLog):
            raise InputError(f"{name} must be a mixrank.logs.FeedLog (train_log also LogShards); got {type(lg).__name__}")
        model.check_data(lg)
        if lg.n_impressions == 0:
            raise InputError(f"{name} must hold at least one exposed item; got none")
    epochs = _check_int("epochs", epochs, 1)
    batch_size = _check_int("batch_size", batch_size, 1)
    patience = _check_int("patience", patience, 1)
    seed = _check_int("seed", seed, 0)
    lr = _check_pos("lr", lr)
    if isinstance(weight_decay, bool) or not isinstance(weight_decay, (int, float)) or weight_decay < 0:
        raise InputError(f"weight_decay must be a number >= 0; got {weight_decay!r}")
    card_weight = _check_pos("card_weight", card_weight)
    if schedule not in ("plateau", "cosine"):
        raise InputError(f"schedule must be 'plateau' or 'cosine'; got {schedule!r}")
    if max_steps is not None:
        max_steps = _check_int("max_steps", max_steps, 1)
    if threads is not None:
        threads = _check_int("threads", threads, 1)
    if not isinstance(calibrate, bool):
        raise InputError(f"calibrate must be a bool; got {calibrate!r}")
    try:
        device = torch.device(device) if device is not None else next(model.parameters()).device
    except (RuntimeError, TypeError) as exc:
        raise InputError(f"device must name a torch device (e.g. 'cpu', 'cuda'); got {device!r} ({exc})") from None
    model.to(device)
    sharded = isinstance(train_log, LogShards)
    if not model.fitted[0]:
        model.fit_scaling(train_log)
    if calibrate and val_log is not None:  # refitted on the new weights at the end
        model.calib_scale.fill_(1.0)
        model.calib_bias.zero_()
        model.fitted[1] = 0.0

    from tqdm.auto import tqdm

    old_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    start = time.perf_counter()
    try:
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
        history: list[dict[str, float]] = []
        best_loss, best_epoch, best_state, best_row = math.inf, 0, None, {}
        bad_epochs, steps, stopped = 0, 0, False
        n = len(train_log)
        n_batches = math.ceil(n / batch_size)
        for epoch in range(1, epochs + 1):
            model.train()
            order = rng.permutation(n)
            total, count = 0.0, 0
            bar = tqdm(range(n_batches), desc=f"epoch {epoch}", disable=not progress, leave=False)
            for i in bar:
                idx = np.sort(order[i * batch_size : (i + 1) * batch_size])
                batch = model.inputs(train_log.take(idx)) if sharded else model.inputs(train_log, idx)
                mask = batch["exposed"]
                n_items = int(mask.sum())
                if n_items == 0:
                    continue
                if schedule == "cosine":
                    done = ((epoch - 1) * n_batches + i) / max(epochs * n_batches - 1, 1)
                    for g in opt.param_groups:
                        g["lr"] = lr * (0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * done)))
                logits = model.log_logits(batch, calibrated=False)
                weight = None
                if card_weight != 1.0:
                    is_card = batch["page_type"][mask] < model.config.n_types
                    weight = 1.0 + (card_weight - 1.0) * is_card.float()
                    weight = weight / weight.mean()
                loss = F.binary_cross_entropy_with_logits(logits[mask], batch["clicked"][mask].float(), weight=weight)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                steps += 1
                total += float(loss.detach()) * n_items
                count += n_items
                if progress and i % 20 == 0:
                    bar.set_postfix(loss=f"{total / max(count, 1):.4f}")
                if max_steps is not None and steps >= max_steps:
                    break
            bar.close()
            row: dict[str, float] = {"epoch": epoch, "train_loss": total / max(count, 1), "lr": opt.param_groups[0]["lr"]}
            if val_log is not None:
                metrics = evaluate(model, val_log)["all"]
                row.update({f"val_{k}": v for k, v in metrics.items() if k != "n"})
                if row["val_logloss"] < best_loss - 1e-6:
                    best_loss, best_epoch, bad_epochs = row["val_logloss"], epoch, 0
                    best_state, best_row = copy.deepcopy(model.state_dict()), row
                    if checkpoint is not None:
                        save_checkpoint(model, checkpoint, extra={"epoch": epoch, **{k: v for k, v in row.items()}})
                else:
                    bad_epochs += 1
                    if schedule == "plateau":
                        for g in opt.param_groups:
                            g["lr"] *= 0.5
            else:
                best_epoch = epoch
                if checkpoint is not None:
                    save_checkpoint(model, checkpoint, extra={"epoch": epoch, **row})
            history.append(row)
            if progress:
                shown = {k: round(v, 5) for k, v in row.items() if k in ("train_loss", "val_logloss", "val_auc")}
                tqdm.write(f"epoch {epoch}: {shown}")
            if max_steps is not None and steps >= max_steps:
                break
            if val_log is not None and bad_epochs >= patience:
                stopped = True
                break
        if best_state is not None:
            model.load_state_dict(best_state)
        if calibrate and val_log is not None:
            model.calibrate(val_log)
            if checkpoint is not None:
                save_checkpoint(model, checkpoint, extra={"epoch": best_epoch, **best_row, "calibrated": True})
        model.eval()
    finally:
        if threads is not None:
            torch.set_num_threads(old_threads)
    return TrainResult(
        model=model,
        history=tuple(history),
        best_epoch=best_epoch,
        best_val_logloss=best_loss if val_log is not None else float("nan"),
        epochs_run=len(history),
        steps=steps,
        stopped_early=stopped,
        wall_time=time.perf_counter() - start,
    )
