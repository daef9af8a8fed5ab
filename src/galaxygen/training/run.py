"""A run directory and its lifecycle: start or resume training, its records, the trained weights.

Every task's run directory (docs/training.md, "The run directory")::

    config.json              the resolved config (rebuilds everything)
    split.json               training / validation / test regions, every box's fingerprint
    inputs.json              geometry and DM hashes of the split's boxes (`galaxygen.training.run_inputs`)
    transform.json           what the task fitted on the training boxes (input statistics, ...)
    <phase>/                 one per trained network: checkpoints/{last,best}.pt, train_log.csv,
                             val_log.csv, done.json (`galaxygen.training.trainer`)
    summary.json             what `galaxygen train` prints
    .galaxygen-outputs.json  the entries above, recorded as written by `galaxygen train` (`galaxygen.outputs`)

A task trains with ``dist, cfg, config = run.start(...)``, ``split, fitted = run.split(...)``, one
Trainer per phase in ``run.phase(name)``, then ``run.finish(summary, dist)``; it predicts with
``run.config()``, ``run.read(TRANSFORM)`` and ``run.load_weights(model, phase, device)``.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, TypeVar

import torch

from galaxygen.config import to_dict
from galaxygen.errors import ConfigError, GalaxygenError
from galaxygen.io import write_json
from galaxygen.outputs import claim_folder
from galaxygen.training import distributed as D
from galaxygen.training.checkpoint import BEST, DONE, LAST, load_checkpoint
from galaxygen.training.data import DataConfig, Split, resume_split, split_boxes
from galaxygen.training.run_inputs import write_inputs

CONFIG, SPLIT, TRANSFORM, SUMMARY = "config.json", "split.json", "transform.json", "summary.json"

C = TypeVar("C")


class RunDir:
    """The run directory at `path` (see the module docstring)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def phase(self, name: str) -> Path:
        """The folder of one trained network (the Trainer's ``work_dir``)."""
        return self.path / name

    def read(self, name: str) -> Any:
        """A JSON record of the run, e.g. ``run.read(TRANSFORM)``."""
        return json.loads((self.path / name).read_text())

    def config(self) -> dict[str, Any]:
        """The resolved config of the run."""
        if not (self.path / CONFIG).is_file():
            raise GalaxygenError(f"{self.path}: not a run directory (no {CONFIG})")
        return self.read(CONFIG)

    # ------------------------------------------------------------------ training

    def start(self, config: Mapping[str, Any], parse: Callable[[dict[str, Any]], C], device: str | None, *,
              resume: bool, overwrite: bool = False, entries: Sequence[str] = ()
              ) -> tuple[D.DistInfo, C, dict[str, Any]]:
        """Join the process group (if launched by torchrun) and create or reopen the run directory.

        `parse` turns a config dict into the task's config dataclass (which has a ``device``
        field, used when `device` is None). Rank 0 checks resume / overwrite and writes config.json
        (see :meth:`prepare`); every rank continues with the config it resolved. Returns the
        DistInfo, the parsed resolved config and the resolved config dict.
        """
        cfg = parse(dict(config))
        dist = D.init_distributed(device or cfg.device)  # type: ignore[attr-defined]
        resolved = D.broadcast_object(self.prepare(to_dict(cfg), resume=resume, overwrite=overwrite,
                                                   entries=entries) if dist.is_main else None)
        D.barrier()
        return dist, parse(resolved), resolved

    def prepare(self, config: Mapping[str, Any], *, resume: bool, overwrite: bool = False,
                entries: Sequence[str] = ()) -> dict[str, Any]:
        """Create the run directory holding ``config.json``, or reopen it for ``resume``.

        A new run needs a new or empty directory; with `overwrite` it may replace a run that
        `galaxygen train` wrote there (only the entries recorded in its ``.galaxygen-outputs.json``:
        a folder holding anything else is refused, see :mod:`galaxygen.outputs`). `entries` are the
        top-level files and folders the task writes besides ``config.json`` (recorded for a later
        `--overwrite`). A resumed run uses the saved config (the given one must equal it, apart
        from the device). Returns the config to use.
        """
        cfg_path = self.path / CONFIG
        if resume:
            if not cfg_path.is_file():
                raise GalaxygenError(f"{self.path}: nothing to resume (no {CONFIG}); drop --resume to start a run")
            saved = self.read(CONFIG)
            changed = sorted(k for k in set(saved) | set(config)
                             if saved.get(k) != config.get(k) and k not in ("device",))
            if changed and config:
                raise ConfigError(f"{self.path}: --resume with a config that differs from the saved run in "
                                  f"{changed}; resume with the same config (it is in {cfg_path})")
            return saved
        if cfg_path.exists() and not overwrite:
            raise GalaxygenError(f"{self.path}: already holds a run ({CONFIG}); pass --resume to continue it "
                                 f"or --overwrite to start again")
        claim_folder(self.path, "train", (CONFIG, *entries), overwrite=overwrite)
        write_json(cfg_path, dict(config), overwrite=True)
        return dict(config)

    def split(self, boxes: Sequence[Path], data: DataConfig, fit: Callable[[Split], dict[str, Any]],
              dist: D.DistInfo, *, resume: bool,
              record: Callable[[Split], dict[str, Any]] | None = None) -> tuple[Split, dict[str, Any]]:
        """The run's split of `boxes` and what `fit` made of it (the content of transform.json).

        On resume with both records present: the saved split, pointed at `boxes` (which must be the
        run's own boxes, :func:`galaxygen.training.data.resume_split`), and the saved fit.
        Otherwise a new split by `data` and ``fit(split)`` (JSON-ready); rank 0 writes split.json
        (with the keys of ``record(split)`` added) and transform.json. Rank 0 then writes
        inputs.json.
        """
        split_path, fit_path = self.path / SPLIT, self.path / TRANSFORM
        if resume and split_path.is_file() and fit_path.is_file():
            split = resume_split(Split.from_dict(self.read(SPLIT)), boxes, str(split_path))
            fitted = self.read(TRANSFORM)
        else:
            split = split_boxes(boxes, data)
            fitted = fit(split)
            if dist.is_main:
                write_json(split_path, {**split.as_dict(), **(record(split) if record else {})}, overwrite=True)
                write_json(fit_path, fitted, overwrite=True)
        if dist.is_main:
            write_inputs(self.path, split, halos=data.halos)
        return split, fitted

    def summary(self, task: str, dist: D.DistInfo, split: Split) -> dict[str, Any]:
        """The head of the summary `galaxygen train` prints: run, task, processes, boxes."""
        return {"run": str(self.path), "task": task, "world_size": dist.world_size,
                "train_boxes": [r.name for r in split.train],
                "validation_boxes": [r.name for r in split.validation]}

    def finish(self, summary: dict[str, Any], dist: D.DistInfo) -> dict[str, Any]:
        """Write summary.json (rank 0) once every rank is done; returns `summary`."""
        if dist.is_main:
            write_json(self.path / SUMMARY, summary, overwrite=True)
        D.barrier()
        return summary

    # ------------------------------------------------------------------ prediction

    def require_done(self, phases: Sequence[str]) -> None:
        """Refuse a run whose phases have not all finished training (no ``<phase>/done.json``)."""
        for phase in phases:
            if not (self.phase(phase) / DONE).is_file():
                raise GalaxygenError(f"{self.path}: the {phase} phase has not finished training (no "
                                     f"{phase}/{DONE}); continue it with `galaxygen train ... --resume`")

    def load_weights(self, model: torch.nn.Module, phase: str, device: torch.device) -> torch.nn.Module:
        """`model` holding the trained weights of `phase`, on `device`, in eval mode.

        The best checkpoint (early-stopping metric), else the last one; its EMA weights when the
        run kept them, else the model's.
        """
        self.require_done([phase])
        best = self.phase(phase) / BEST
        ck = load_checkpoint(best if best.is_file() else self.phase(phase) / LAST, map_location="cpu")
        model.load_state_dict(ck["ema"] if ck.get("ema") is not None else ck["model"])
        return model.to(device).eval()


def check_predict_options(samples: int, halo: int | None) -> None:
    """The options every task's predict takes: ``samples >= 1``, ``halo`` None or >= 0 [voxels]."""
    if samples < 1:
        raise GalaxygenError(f"--samples: expected >= 1, got {samples}")
    if halo is not None and halo < 0:
        raise GalaxygenError(f"--halo: expected >= 0 voxels, got {halo}")


def with_options(cfg: C, **options: Any) -> C:
    """The frozen dataclass `cfg` with its fields replaced by the `options` that are not None
    (command-line options over the run's config)."""
    return replace(cfg, **{k: v for k, v in options.items() if v is not None})  # type: ignore[type-var]
