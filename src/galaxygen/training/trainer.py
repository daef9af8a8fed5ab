"""A generic trainer: AdamW, LR schedule, clipping, AMP, EMA, early stopping, exact resume, DDP.

The trainer knows nothing about galaxies. It drives a *task* object with

* ``model`` : the ``torch.nn.Module`` whose parameters are trained (put every learnable tensor
  in it, e.g. a diffusion schedule's endpoints);
* ``train_dataset`` : a map-style dataset whose item ``n`` depends only on ``n`` (see
  :class:`galaxygen.training.data.CropDataset`), items are dicts of tensors;
* ``training_loss(model, batch) -> (loss, metrics)`` : a scalar tensor and a dict of floats, with
  ``model`` the (possibly DDP-wrapped) module to call and ``batch`` on the device;
* ``validate(model) -> metrics`` : a dict of floats, called on rank 0 with the bare model (or its
  EMA copy) in eval mode; the result is broadcast to every rank.

Global step s uses the samples ``[s B, (s+1) B)`` split over the ranks, so K processes follow the
loss curve of one process with the same global batch, and a resumed run continues exactly where
the last checkpoint left it (checkpoints hold model, optimiser, scheduler, scaler, EMA, step,
early-stopping state, per-rank RNG states and the config).
"""

from __future__ import annotations

import copy
import csv
import math
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Mapping, Protocol, Sequence

import torch
from torch.utils.data import DataLoader, Dataset

from galaxygen.config import require
from galaxygen.io import write_json
from galaxygen.training import distributed as D
from galaxygen.training.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from galaxygen.training.data import StreamSampler
from galaxygen.progress import progress


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
                      ) -> tuple[torch.Tensor, dict[str, float]]: ...

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


class _CsvLog:
    """Append-only CSV with a fixed header; on resume, rows past the resumed step are dropped."""

    def __init__(self, path: Path, resume_step: int | None):
        self.path, self.fields = path, None
        if path.exists():
            with path.open(newline="") as f:
                rows = list(csv.DictReader(f))
            if rows:
                self.fields = list(rows[0].keys())
            keep = [r for r in rows if resume_step is not None and int(r["step"]) <= resume_step]
            with path.open("w", newline="") as f:
                if self.fields:
                    w = csv.DictWriter(f, self.fields)
                    w.writeheader()
                    w.writerows(keep)

    def write(self, row: Mapping[str, Any]) -> None:
        new = self.fields is None
        if new:
            self.fields = list(row.keys())
        with self.path.open("a", newline="") as f:
            w = csv.DictWriter(f, self.fields, extrasaction="ignore")
            if new:
                w.writeheader()
            w.writerow(row)


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
        last = self.work_dir / "checkpoints" / "last.pt"
        if resume and last.is_file():
            self._load(load_checkpoint(last, map_location=self.device))
            self.done = (self.work_dir / "done.json").is_file()

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
                "config": self.config, "train_config": _plain(self.cfg)}

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

    def _save(self, path: Path) -> None:
        state = self.state_dict()  # collective under DDP: every rank takes part
        if self.dist.is_main:
            save_checkpoint(path, state)

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
        cfg, main = self.cfg, self.dist.is_main
        ckpt_dir = self.work_dir / "checkpoints"
        if main:
            ckpt_dir.mkdir(parents=True, exist_ok=True)
        if self.done:
            import json
            self._finish(write=False)
            return json.loads((self.work_dir / "done.json").read_text())
        train_log = _CsvLog(self.work_dir / "train_log.csv", self.step) if main else None
        val_log = _CsvLog(self.work_dir / "val_log.csv", self.step) if main else None
        tb = _tensorboard(self.work_dir / "tensorboard") if main else None
        sampler = StreamSampler(cfg.batch_size, self.dist.rank, self.dist.world_size, self.step, cfg.steps)
        loader = DataLoader(self.task.train_dataset, batch_size=sampler.b, sampler=sampler,
                            num_workers=cfg.num_workers, pin_memory=self.device.type == "cuda", drop_last=True)
        bar = progress(total=cfg.steps, desc=self.name, unit="step") if main else None
        if bar is not None and self.step:
            bar.update(self.step)
        window: list[torch.Tensor] = []
        t0, last_saved = time.perf_counter(), self.step
        self.model.train()
        for batch in loader if self.step < cfg.steps else ():
            batch = _to_device(batch, self.device)
            ctx = torch.autocast("cuda", dtype=self.amp_dtype) if self.use_amp else nullcontext()
            with ctx:
                loss, metrics = self.task.training_loss(self.wrapped, batch)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            if cfg.grad_clip is not None:
                self.scaler.unscale_(self.optimizer)
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.scheduler.step()
            if self.ema is not None:
                with torch.no_grad():
                    for pe, pm in zip(self.ema.parameters(), self.model.parameters()):
                        pe.lerp_(pm.detach(), 1 - cfg.ema_decay)
                    for be, bm in zip(self.ema.buffers(), self.model.buffers()):
                        be.copy_(bm)
            self.step += 1
            keys = sorted(metrics)
            vals = torch.tensor([float(loss.detach())] + [float(metrics[k]) for k in keys], dtype=torch.float64,
                                device=self.device if self.dist.distributed and self.device.type == "cuda" else "cpu")
            vals = D.all_reduce_mean(vals).cpu()
            row = {"step": self.step, "loss": float(vals[0]), **{k: float(v) for k, v in zip(keys, vals[1:])}}
            self.history.append(row)
            window.append(vals)
            if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                mean = torch.stack(window).mean(0)
                elapsed = time.perf_counter() - t0
                out = {"step": self.step, "lr": self.scheduler.get_last_lr()[0], "loss": float(mean[0]),
                       **{k: float(v) for k, v in zip(keys, mean[1:])},
                       "samples_per_s": len(window) * cfg.batch_size / max(elapsed, 1e-9)}
                window, t0 = [], time.perf_counter()
                if main:
                    train_log.write(out)
                    if tb is not None:
                        for k, v in out.items():
                            if k != "step":
                                tb.add_scalar(f"{self.name}/train/{k}", v, self.step)
                    bar.set_postfix({k: f"{v:.4g}" for k, v in out.items() if k not in ("step", "lr")}, refresh=False)
            if bar is not None:
                bar.update(1)
            if self.step % cfg.eval_every == 0 or self.step == cfg.steps:
                self._evaluate(val_log, tb, ckpt_dir)
            if self.step % cfg.checkpoint_every == 0 or self.step == cfg.steps or self.stopped_early:
                self._save(ckpt_dir / "last.pt")
                last_saved = self.step
            for cb in callbacks:
                cb(self)
            if self.stopped_early:
                break
        if self.step != last_saved:
            self._save(ckpt_dir / "last.pt")
        if bar is not None:
            bar.close()
        if tb is not None:
            tb.close()
        return self._finish(write=True)

    def _evaluate(self, val_log, tb, ckpt_dir: Path) -> None:
        metrics = self._validate()
        row = {"step": self.step, **metrics}
        self.val_history.append(row)
        if self.dist.is_main:
            val_log.write(row)
            if tb is not None:
                for k, v in metrics.items():
                    tb.add_scalar(f"{self.name}/val/{k}", v, self.step)
        es = self.cfg.early_stopping
        if es.metric is None:
            return
        if es.metric not in metrics:
            from galaxygen.errors import ConfigError
            raise ConfigError(f"early_stopping.metric: {es.metric!r} is not a validation metric; "
                              f"available: {sorted(metrics)}")
        value = metrics[es.metric]
        if self._improved(value):
            self.best_value, self.best_step, self.bad_evals = value, self.step, 0
            self._best_state = {"model": copy.deepcopy(self.model.state_dict()),
                                "ema": copy.deepcopy(self.ema.state_dict()) if self.ema is not None else None}
            self._save(ckpt_dir / "best.pt")
        else:
            self.bad_evals += 1
            if es.patience and self.bad_evals >= es.patience:
                self.stopped_early = True

    def _finish(self, write: bool) -> dict[str, Any]:
        best = self.work_dir / "checkpoints" / "best.pt"
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
            write_json(self.work_dir / "done.json", summary, overwrite=True)
        self.done = True
        D.barrier()
        return summary


def _plain(cfg: Any) -> Any:
    from galaxygen.config import to_dict
    return to_dict(cfg)


def _tensorboard(path: Path):
    """A TensorBoard SummaryWriter when the tensorboard package is installed, else None."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:  # noqa: BLE001 - optional dependency
        return None
    return SummaryWriter(str(path))
