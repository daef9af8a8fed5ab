"""A generic trainer: AdamW, LR schedule, clipping, AMP, EMA, early stopping, exact resume, DDP.

The trainer knows nothing about galaxies. It drives a *task* object with

* ``model`` : the ``torch.nn.Module`` whose parameters are trained (put every learnable tensor
  in it, e.g. a diffusion schedule's endpoints);
* ``train_dataset`` : a map-style dataset whose item ``n`` depends only on ``n`` (see
  :class:`galaxygen.training.crops.CropDataset`), items are dicts of tensors;
* ``training_loss(model, batch) -> (loss, metrics)`` : a scalar tensor and a dict of scalar tensors
  (or floats), with ``model`` the (possibly DDP-wrapped) module to call and ``batch`` on the
  device; they stay on the device and are averaged over the ranks every ``log_every`` steps only
  (tensors: no device sync per step);
* ``validate(model) -> metrics`` : a dict of floats, called on rank 0 with the bare model (or its
  EMA copy) in eval mode; the result is broadcast to every rank.

Global step s uses the samples ``[s B, (s+1) B)`` split over the ranks, so K processes follow the
loss curve of one process with the same global batch, and a resumed run continues exactly where
the last checkpoint left it (checkpoints hold model, optimiser, scheduler, scaler, EMA, step,
early-stopping state, per-rank RNG states and the config).
"""

from __future__ import annotations

import copy
import json
import math
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Literal, Mapping, Protocol, Sequence

import torch
from torch.utils.data import DataLoader, Dataset

from galaxygen.config import require, to_dict
from galaxygen.errors import ConfigError
from galaxygen.io import write_json
from galaxygen.training import distributed as D
from galaxygen.training.checkpoint import (BEST, DONE, LAST, load_checkpoint, rng_state, save_checkpoint,
                                           set_rng_state)
from galaxygen.training.crops import StreamSampler
from galaxygen.training.logs import StepLosses, TrainLog


@dataclass(frozen=True)
class EarlyStopping:
    """Stop after `patience` evaluations without improving `metric` (0: never stop early).

    metric : a key of the task's validation metrics (None: keep the last weights, no stopping).
    mode : 'max' or 'min'.
    """

    metric: str | None = None
    mode: Literal["max", "min"] = "max"
    patience: int = 0
    min_delta: float = 0.0

    def __post_init__(self) -> None:
        require(self.patience >= 0, f"early_stopping.patience: expected >= 0, got {self.patience}")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings of one training phase.

    steps : optimiser steps; batch_size : global batch (crops), split over the processes.
    lr : peak learning rate; schedule : 'constant', 'cosine' or 'linear' decay to ``min_lr_ratio``
    after ``warmup_steps`` of linear warm-up. grad_clip : max global gradient norm (None: off).
    amp : mixed precision on CUDA (``amp_dtype``); ignored on CPU. ema_decay : 0 = no EMA, else
    the exponential moving average of the weights (used for validation and the final model).
    eval_every, checkpoint_every, log_every : in steps.
    """

    steps: int = 1000
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    schedule: Literal["constant", "cosine", "linear"] = "cosine"
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0
    grad_clip: float | None = 1.0
    amp: bool = True
    amp_dtype: Literal["bfloat16", "float16"] = "bfloat16"
    ema_decay: float = 0.0
    eval_every: int = 100
    checkpoint_every: int = 100
    log_every: int = 10
    num_workers: int = 0
    seed: int = 0
    early_stopping: EarlyStopping = field(default_factory=EarlyStopping)

    def __post_init__(self) -> None:
        require(self.steps >= 1, f"train.steps: expected >= 1, got {self.steps}")
        require(self.batch_size >= 1, f"train.batch_size: expected >= 1, got {self.batch_size}")
        require(self.lr > 0, f"train.lr: expected > 0, got {self.lr}")
        require(0.0 <= self.ema_decay < 1.0, f"train.ema_decay: expected in [0, 1), got {self.ema_decay}")
        require(self.grad_clip is None or self.grad_clip > 0, f"train.grad_clip: expected > 0 or null")
        for k in ("eval_every", "checkpoint_every", "log_every"):
            require(getattr(self, k) >= 1, f"train.{k}: expected >= 1 step, got {getattr(self, k)}")


class TrainTask(Protocol):
    model: torch.nn.Module
    train_dataset: Dataset

    def training_loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]
                      ) -> tuple[torch.Tensor, Mapping[str, torch.Tensor | float]]: ...

    def validate(self, model: torch.nn.Module) -> dict[str, float]: ...


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """LR multiplier after `step` optimiser steps: linear warm-up, then the chosen decay."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return 1.0
    frac = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps))
    decay = 0.5 * (1 + math.cos(math.pi * frac)) if cfg.schedule == "cosine" else 1.0 - frac
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * decay


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch


class Trainer:
    """Train ``task.model`` under ``cfg``, writing into ``work_dir`` (checkpoints/, logs).

    Parameters
    ----------
    task : TrainTask
    cfg : TrainConfig
    work_dir : folder of this phase: ``checkpoints/last.pt``, ``checkpoints/best.pt``,
        ``train_log.csv``, ``val_log.csv``, ``done.json`` (written by rank 0 only).
    dist : DistInfo from :func:`galaxygen.training.distributed.init_distributed` (None: one process on
        the model's device).
    resume : continue from ``checkpoints/last.pt`` if present (a finished phase is not redone).
    config : the resolved run config, stored in every checkpoint.
    name : label of the progress bar and logs.
    """

    def __init__(self, task: TrainTask, cfg: TrainConfig, work_dir: str | Path, *,
                 dist: D.DistInfo | None = None, resume: bool = False,
                 config: Mapping[str, Any] | None = None, name: str = "train"):
        self.task, self.cfg, self.name = task, cfg, name
        self.work_dir = Path(work_dir)
        self.dist = dist or D.DistInfo(0, 1, 0, next(task.model.parameters()).device)
        self.device = self.dist.device
        self.config = dict(config or {})
        self.model = task.model.to(self.device)
        self.wrapped = D.wrap_model(self.model, self.dist)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, betas=cfg.betas,
                                           weight_decay=cfg.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: lr_factor(s, cfg))
        self.use_amp = cfg.amp and self.device.type == "cuda"
        self.amp_dtype = torch.bfloat16 if cfg.amp_dtype == "bfloat16" else torch.float16
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp and self.amp_dtype == torch.float16)
        self.ema = copy.deepcopy(self.model).eval().requires_grad_(False) if cfg.ema_decay > 0 else None
        self.step = 0
        self.best_value: float | None = None
        self.best_step: int | None = None
        self.bad_evals = 0
        self.stopped_early = False
        self.history: list[dict[str, float]] = []
        self.val_history: list[dict[str, float]] = []
        self.done = False
        self._best_state: dict[str, Any] | None = None  # in memory: multi-node runs need no shared disk
        last = self.work_dir / LAST
        if resume and last.is_file():
            self._load(load_checkpoint(last, map_location=self.device))
            self.done = (self.work_dir / DONE).is_file()

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        rngs = [rng_state()]
        if self.dist.distributed:
            rngs = [None] * self.dist.world_size
            torch.distributed.all_gather_object(rngs, rng_state())
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
                "ema": self.ema.state_dict() if self.ema is not None else None, "step": self.step,
                "best_value": self.best_value, "best_step": self.best_step, "bad_evals": self.bad_evals,
                "stopped_early": self.stopped_early, "rng": rngs, "world_size": self.dist.world_size,
                "config": self.config, "train_config": to_dict(self.cfg)}

    def _load(self, ck: Mapping[str, Any]) -> None:
        self.model.load_state_dict(ck["model"])
        self.optimizer.load_state_dict(ck["optimizer"])
        self.scheduler.load_state_dict(ck["scheduler"])
        self.scaler.load_state_dict(ck["scaler"])
        if self.ema is not None and ck.get("ema") is not None:
            self.ema.load_state_dict(ck["ema"])
        self.step = int(ck["step"])
        self.best_value, self.best_step = ck["best_value"], ck["best_step"]
        self.bad_evals, self.stopped_early = int(ck["bad_evals"]), bool(ck["stopped_early"])
        rngs = ck["rng"]
        set_rng_state(rngs[self.dist.rank] if len(rngs) == self.dist.world_size else rngs[0])

    def _save(self, name: str) -> None:
        """Checkpoint `name` (LAST or BEST) of the phase folder."""
        state = self.state_dict()  # collective under DDP: every rank takes part
        if self.dist.is_main:
            save_checkpoint(self.work_dir / name, state)

    # ------------------------------------------------------------------ evaluation
    def eval_model(self) -> torch.nn.Module:
        """The model to validate / predict with: the EMA copy when enabled, else the model."""
        return self.ema if self.ema is not None else self.model

    def _validate(self) -> dict[str, float]:
        metrics = None
        if self.dist.is_main:
            m = self.eval_model()
            was = m.training
            m.eval()
            with torch.no_grad():
                metrics = {k: float(v) for k, v in self.task.validate(m).items()}
            m.train(was)
        return D.broadcast_object(metrics)

    def _improved(self, value: float) -> bool:
        es = self.cfg.early_stopping
        if self.best_value is None or not math.isfinite(self.best_value):
            return math.isfinite(value)
        return (value > self.best_value + es.min_delta) if es.mode == "max" else (value < self.best_value - es.min_delta)

    # ------------------------------------------------------------------ loop
    def fit(self, callbacks: Sequence[Callable[["Trainer"], None]] = ()) -> dict[str, Any]:
        """Train up to ``cfg.steps`` (or early stop); return a summary dict (also ``done.json``).

        `callbacks` are called after every step (after logging, validation and checkpointing).
        At the end the model holds the best weights (early-stopping metric) or the last ones.
        """
        if self.done:
            self._finish(write=False)
            return json.loads((self.work_dir / DONE).read_text())
        cfg, losses, saved = self.cfg, StepLosses(self.device), self.step
        with TrainLog(self.work_dir, self.name, self.step, cfg.steps, self.dist.is_main) as log:
            self.model.train()
            for batch in self._batches():
                self._train_step(batch, losses)
                if self._due(cfg.log_every):
                    self._log(losses, log)
                log.advance()
                if self._due(cfg.eval_every):
                    self._evaluate(log)
                if self._due(cfg.checkpoint_every) or self.stopped_early:
                    self._save(LAST)
                    saved = self.step
                for cb in callbacks:
                    cb(self)
                if self.stopped_early:
                    break
            self.history += losses.reduce(self.step)[0]  # the steps since the last log row (early stop)
            if self.step != saved:
                self._save(LAST)
        return self._finish(write=True)

    def _due(self, every: int) -> bool:
        """Whether the step just taken is a multiple of `every` or the last one."""
        return self.step % every == 0 or self.step == self.cfg.steps

    def _batches(self) -> Iterable[Any]:
        """The batches of the remaining steps (global step s: samples [s B, (s+1) B), this rank's share)."""
        cfg = self.cfg
        sampler = StreamSampler(cfg.batch_size, self.dist.rank, self.dist.world_size, self.step, cfg.steps)
        loader = DataLoader(self.task.train_dataset, batch_size=sampler.b, sampler=sampler,
                            num_workers=cfg.num_workers, pin_memory=self.device.type == "cuda", drop_last=True)
        return loader if self.step < cfg.steps else ()

    def _train_step(self, batch: Any, losses: StepLosses) -> None:
        """One optimiser step on `batch`: forward (autocast; loss and metrics into `losses`), backward,
        clipping, update, LR, EMA."""
        cfg = self.cfg
        with torch.autocast("cuda", dtype=self.amp_dtype) if self.use_amp else nullcontext():
            loss, metrics = self.task.training_loss(self.wrapped, _to_device(batch, self.device))
        losses.add(loss, metrics)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if cfg.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self._update_ema()
        self.step += 1

    @torch.no_grad()
    def _update_ema(self) -> None:
        """EMA weights <- decay · EMA + (1 − decay) · weights; buffers (BatchNorm statistics) copied."""
        if self.ema is None:
            return
        for pe, pm in zip(self.ema.parameters(), self.model.parameters()):
            pe.lerp_(pm.detach(), 1 - self.cfg.ema_decay)
        for be, bm in zip(self.ema.buffers(), self.model.buffers()):
            be.copy_(bm)

    def _log(self, losses: StepLosses, log: TrainLog) -> None:
        """Reduce the steps since the last row (one sync, one all-reduce) into history and a log row."""
        rows, mean, seconds = losses.reduce(self.step)
        self.history += rows
        log.train_row({"step": self.step, "lr": self.scheduler.get_last_lr()[0], **mean,
                       "samples_per_s": len(rows) * self.cfg.batch_size / max(seconds, 1e-9)})

    def _evaluate(self, log: TrainLog) -> None:
        """Validate, log, keep the best weights (early-stopping metric) and count bad evaluations."""
        metrics = self._validate()
        row = {"step": self.step, **metrics}
        self.val_history.append(row)
        log.val_row(row)
        es = self.cfg.early_stopping
        if es.metric is None:
            return
        if es.metric not in metrics:
            raise ConfigError(f"early_stopping.metric: {es.metric!r} is not a validation metric; "
                              f"available: {sorted(metrics)}")
        value = metrics[es.metric]
        if self._improved(value):
            self.best_value, self.best_step, self.bad_evals = value, self.step, 0
            self._best_state = {"model": copy.deepcopy(self.model.state_dict()),
                                "ema": copy.deepcopy(self.ema.state_dict()) if self.ema is not None else None}
            self._save(BEST)
        else:
            self.bad_evals += 1
            if es.patience and self.bad_evals >= es.patience:
                self.stopped_early = True

    def _finish(self, write: bool) -> dict[str, Any]:
        best = self.work_dir / BEST
        if self.cfg.early_stopping.metric is not None and (self._best_state is not None or best.is_file()):
            D.barrier()
            ck = self._best_state or load_checkpoint(best, map_location=self.device)
            self.model.load_state_dict(ck["model"])
            if self.ema is not None and ck.get("ema") is not None:
                self.ema.load_state_dict(ck["ema"])
        summary = {"name": self.name, "steps": self.step, "stopped_early": self.stopped_early,
                   "best_metric": self.cfg.early_stopping.metric, "best_value": self.best_value,
                   "best_step": self.best_step,
                   "final_loss": self.history[-1]["loss"] if self.history else None,
                   "last_validation": self.val_history[-1] if self.val_history else None}
        if write and self.dist.is_main:
            write_json(self.work_dir / DONE, summary, overwrite=True)
        self.done = True
        D.barrier()
        return summary

