"""What a Trainer records as it goes: the losses of recent steps, CSV logs, TensorBoard, a progress bar.

:class:`StepLosses` keeps each step's loss and metrics on the device and reduces them (one device
sync, one all-reduce under DDP) only when asked, every ``log_every`` steps. :class:`TrainLog`
writes rank 0's records of a phase: ``train_log.csv``, ``val_log.csv``, ``tensorboard/`` (when the
tensorboard package is installed) and the progress bar.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any, Mapping

import torch

from galaxygen.progress import progress
from galaxygen.training import distributed as D


class StepLosses:
    """Loss and metrics of the steps since the last :meth:`reduce`, as float64 tensors on `device`."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.values: list[torch.Tensor] = []
        self.keys: list[str] = []
        self.since = time.perf_counter()

    def __len__(self) -> int:
        return len(self.values)

    def add(self, loss: torch.Tensor, metrics: Mapping[str, Any]) -> None:
        """Record one step's scalar `loss` and `metrics` (scalar tensors or numbers) without a sync.

        The values are copied now: call it before the optimiser step, as a metric may be a view
        of a parameter (e.g. a learned schedule's endpoint) that the step changes.
        """
        self.keys = sorted(metrics)
        values = [loss] + [metrics[k] for k in self.keys]
        self.values.append(torch.stack([torch.as_tensor(v).detach().to(self.device, torch.float64).reshape(())
                                        for v in values]))

    def reduce(self, last_step: int) -> tuple[list[dict[str, float]], dict[str, float], float]:
        """The recorded steps, the last of which is `last_step`, averaged over the ranks, then forgotten.

        Returns one row per step (``step``, ``loss``, the metrics), their mean over the steps (the
        same keys without ``step``) and the seconds since the previous reduction.
        """
        seconds, self.since = time.perf_counter() - self.since, time.perf_counter()
        if not self.values:
            return [], {}, seconds
        values = D.all_reduce_mean(torch.stack(self.values)).cpu()
        keys, first = ["loss", *self.keys], last_step - len(self.values) + 1
        rows = [{"step": first + i, **dict(zip(keys, map(float, v)))} for i, v in enumerate(values)]
        mean = dict(zip(keys, map(float, values.mean(0))))
        self.values = []
        return rows, mean, seconds


class CsvLog:
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


def tensorboard(path: Path):
    """A TensorBoard SummaryWriter when the tensorboard package is installed, else None."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:  # noqa: BLE001 - optional dependency
        return None
    return SummaryWriter(str(path))


class TrainLog:
    """Rank 0's records of one phase in `work_dir`, continuing from `step` of `steps`; on the other
    ranks (``main=False``) every method does nothing. A context manager that closes them."""

    def __init__(self, work_dir: Path, name: str, step: int, steps: int, main: bool) -> None:
        self.name, self.main = name, main
        self.train = self.val = self.tb = self.bar = None
        if main:
            work_dir.mkdir(parents=True, exist_ok=True)
            self.train = CsvLog(work_dir / "train_log.csv", step)
            self.val = CsvLog(work_dir / "val_log.csv", step)
            self.tb = tensorboard(work_dir / "tensorboard")
            self.bar = progress(total=steps, desc=name, unit="step")
            if step:
                self.bar.update(step)

    def __enter__(self) -> "TrainLog":
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.tb is not None:
            self.tb.close()

    def _scalars(self, kind: str, row: Mapping[str, Any], step: int) -> None:
        if self.tb is not None:
            for k, v in row.items():
                if k != "step":
                    self.tb.add_scalar(f"{self.name}/{kind}/{k}", v, step)

    def train_row(self, row: Mapping[str, Any]) -> None:
        """A row of train_log.csv (``step``, ``lr``, ``loss``, metrics, ``samples_per_s``)."""
        if self.main:
            self.train.write(row)
            self._scalars("train", row, row["step"])
            self.bar.set_postfix({k: f"{v:.4g}" for k, v in row.items() if k not in ("step", "lr")}, refresh=False)

    def val_row(self, row: Mapping[str, Any]) -> None:
        """A row of val_log.csv (``step`` and the validation metrics)."""
        if self.main:
            self.val.write(row)
            self._scalars("val", row, row["step"])

    def advance(self) -> None:
        """One step done (the progress bar)."""
        if self.bar is not None:
            self.bar.update(1)
