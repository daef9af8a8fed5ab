"""`task: two_phase`: train the classifier and regressor into a run directory; predict boxes.

Run directory layout::

    config.json      resolved config (rebuilds everything)
    split.json       training / validation / test regions
    inputs.json      geometry and content hashes of the split's boxes (learn.run_inputs)
    transform.json   input transform statistics (training boxes only)
    classifier/      checkpoints/{last,best}.pt, train_log.csv, val_log.csv, done.json
    threshold.json   mask threshold chosen on the validation boxes, with its recall and precision
    regressor/       as classifier/
    summary.json     the summary `galaxygen train` prints
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from galaxygen.box import prediction_box, read_box
from galaxygen.config import from_dict, to_dict
from galaxygen.errors import GalaxygenError
from galaxygen.io import write_json
from galaxygen.training import distributed as D
from galaxygen.training.checkpoint import load_checkpoint, read_run_config, start_run
from galaxygen.training.data import (BoxData, Split, Transform, fit_transform, load_region, resume_split,
                                  split_boxes)
from galaxygen.training.tiling import prediction_path
from galaxygen.models.two_phase.losses import rate_from_output
from galaxygen.models.two_phase.networks import build_model
from galaxygen.training.trainer import Trainer
from galaxygen.training.run_inputs import write_inputs
from galaxygen.models.two_phase.phases import (COUNTS, ClassifierTask, RegressorTask, TwoPhaseConfig, combine, infer_box,
                                       threshold_for_recall)
from galaxygen.progress import progress

# what a two-phase run writes into its directory besides config.json (recorded for --overwrite)
RUN_ENTRIES = ("split.json", "inputs.json", "transform.json", "classifier", "threshold.json", "regressor",
               "summary.json")


def parse_config(config: dict[str, Any], where: str = "config") -> TwoPhaseConfig:
    return from_dict(TwoPhaseConfig, config, where)


def _build(cfg: TwoPhaseConfig, phase: str, in_channels: int) -> torch.nn.Module:
    torch.manual_seed(cfg.seed + (0 if phase == "classifier" else 1000))
    return build_model(getattr(cfg, phase).model, in_channels, 1)


def train(config: dict[str, Any], boxes: Sequence[Path], run_dir: Path, *, resume: bool = False,
          overwrite: bool = False, device: str | None = None) -> dict[str, Any]:
    """Train the configured phases on `boxes` (split by ``data``) into `run_dir`; see module doc."""
    cfg = parse_config(config)
    info, config = start_run(to_dict(cfg), run_dir, device or cfg.device, resume=resume, overwrite=overwrite,
                             entries=RUN_ENTRIES)
    cfg = parse_config(config)
    split_path, tr_path = run_dir / "split.json", run_dir / "transform.json"
    if resume and split_path.is_file():
        split = resume_split(Split.from_dict(json.loads(split_path.read_text())), boxes, str(split_path))
        transform = Transform.from_dict(json.loads(tr_path.read_text()))
    else:
        split = split_boxes(boxes, cfg.data)
        transform = fit_transform(split.train, cfg.data)
        if info.is_main:
            write_json(split_path, {**split.as_dict(), "trained_on": _suites(split.train)}, overwrite=True)
            write_json(tr_path, transform.as_dict(), overwrite=True)
    if info.is_main:
        write_inputs(run_dir, split)
    train_boxes = [load_region(r, transform, cfg.data) for r in split.train]
    val_boxes = [load_region(r, transform, cfg.data) for r in split.validation]
    summary: dict[str, Any] = {"run": str(run_dir), "task": "two_phase", "world_size": info.world_size,
                               "train_boxes": [r.name for r in split.train],
                               "validation_boxes": [r.name for r in split.validation]}
    threshold = None
    cls_model = None
    if "classifier" in cfg.phases:
        cls_model = _build(cfg, "classifier", transform.channels)
        task = ClassifierTask(cls_model, train_boxes, val_boxes, cfg, info.device)
        trainer = Trainer(task, cfg.classifier.train, run_dir / "classifier", dist=info, resume=resume,
                          config=config, name="classifier")
        summary["classifier"] = trainer.fit()
        cls_model = trainer.eval_model().eval()
        threshold = _choose_threshold(task, cls_model, val_boxes or train_boxes, cfg, run_dir, info, resume)
        summary["threshold"] = threshold
        if "regressor" in cfg.phases:
            for b in train_boxes + val_boxes:
                prob = torch.from_numpy(task.probabilities(cls_model, b))
                b.extras["prob"] = prob
                b.extras["keep"] = ((prob >= threshold["threshold"]) | (b.target > 0)).float()
            for b in train_boxes:  # the regressor's crops carry only the keep mask
                b.extras.pop("prob")
    if "regressor" in cfg.phases:
        reg_model = _build(cfg, "regressor", transform.channels)
        task = RegressorTask(reg_model, train_boxes, val_boxes, cfg, info.device,
                             threshold["threshold"] if threshold else None)
        trainer = Trainer(task, cfg.regressor.train, run_dir / "regressor", dist=info, resume=resume,
                          config=config, name="regressor")
        summary["regressor"] = trainer.fit()
    if info.is_main:
        write_json(run_dir / "summary.json", summary, overwrite=True)
    D.barrier()
    return summary


def _suites(regions) -> list[str]:
    """Suites of the training boxes (root attribute, without reading the grids)."""
    import h5py

    out = set()
    for r in regions:
        with h5py.File(r.path, "r") as f:
            out.add(str(f.attrs["suite"]))
    return sorted(out)


def _choose_threshold(task: ClassifierTask, model, boxes: list[BoxData], cfg: TwoPhaseConfig, run_dir: Path,
                      info: D.DistInfo, resume: bool) -> dict[str, Any]:
    path = run_dir / "threshold.json"
    if resume and path.is_file():
        return json.loads(path.read_text())
    result = None
    if info.is_main:
        probs = [task.probabilities(model, b)[b.mask()] for b in boxes]
        truth = [b.target.numpy()[b.mask()] > 0 for b in boxes]
        th = threshold_for_recall(np.concatenate(probs), np.concatenate(truth), cfg.target_recall)
        result = {**th.as_dict(), "target_recall": cfg.target_recall, "boxes": [b.region.name for b in boxes]}
        write_json(path, result, overwrite=True)
    return D.broadcast_object(result)


# ----------------------------------------------------------------------------- prediction

def load_run(run_dir: Path, device: torch.device) -> tuple[TwoPhaseConfig, Transform, dict[str, Any]]:
    """Config, transform and trained models (eval mode, best weights) of a run directory."""
    cfg = parse_config(read_run_config(run_dir), where=f"{run_dir}/config.json")
    transform = Transform.from_dict(json.loads((run_dir / "transform.json").read_text()))
    models: dict[str, Any] = {}
    for phase in cfg.phases:
        ck_dir = run_dir / phase / "checkpoints"
        path = ck_dir / "best.pt" if (ck_dir / "best.pt").is_file() else ck_dir / "last.pt"
        if not (run_dir / phase / "done.json").is_file():
            raise GalaxygenError(f"{run_dir}: the {phase} phase has not finished training (no {phase}/done.json)")
        ck = load_checkpoint(path, map_location="cpu")
        model = build_model(getattr(cfg, phase).model, transform.channels, 1)
        model.load_state_dict(ck["ema"] if ck.get("ema") is not None else ck["model"])
        models[phase] = model.to(device).eval()
    if "classifier" in models:
        models["threshold"] = json.loads((run_dir / "threshold.json").read_text())["threshold"]
    return cfg, transform, models


def network_outputs(cfg: TwoPhaseConfig, transform: Transform, models: dict[str, Any], box,
                    infer_cfg, device: torch.device) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The classifier's probability and the regressor's rate on a whole box (None for a phase the
    run lacks), each (N, N, N) float32: what `combine` turns into galaxies."""
    b = BoxData(None, box, torch.from_numpy(transform.apply(box.dm, box.dm_velocity)),  # type: ignore[arg-type]
                torch.from_numpy(box.galaxies), torch.zeros(0), np.zeros((0, 3), np.int64))
    prob = rate = None
    if "classifier" in models:
        prob = torch.sigmoid(infer_box(models["classifier"], b, infer_cfg, device)[0].float()).numpy()
    if "regressor" in models:
        out = infer_box(models["regressor"], b, infer_cfg, device)[0].float()
        rate = rate_from_output(out, cfg.regressor.loss).numpy()
    return prob, rate


def predict(run_dir: Path, boxes: Sequence[Path], out_dir: Path, *, samples: int = 1, seed: int = 0,
            device: str = "auto", overwrite: bool = False, tile: int | None = None,
            batch: int | None = None, counts: str | None = None, halo: int | None = None) -> list[Path]:
    """Write one prediction box per input box (``samples`` Poisson realisations when counts='poisson').

    `counts` ('round', 'total' or 'poisson', see `combine`) replaces the run config's choice; `tile`, `halo` and
    `batch` its ``infer`` settings (halo None there: exact, the networks' receptive radii). Sample k of a box
    draws from ``numpy.random.default_rng([seed, k])``.
    """
    from dataclasses import replace

    from galaxygen.box import write_box
    from galaxygen.device import resolve_device
    from galaxygen.io import check_writable

    if halo is not None and halo < 0:
        raise GalaxygenError(f"--halo: expected >= 0 voxels, got {halo}")
    dev = resolve_device(device)
    cfg, transform, models = load_run(Path(run_dir), dev)
    if samples < 1:
        raise GalaxygenError(f"--samples: expected >= 1, got {samples}")
    counts = counts or cfg.counts
    if counts not in COUNTS:
        raise GalaxygenError(f"--counts: expected one of {', '.join(COUNTS)}, got {counts!r}")
    if samples > 1 and counts != "poisson":
        raise GalaxygenError("--samples > 1 needs Poisson counts (rounded counts are deterministic): "
                             "pass --counts poisson")
    infer_cfg = replace(cfg.infer, **{k: v for k, v in (("tile", tile), ("halo", halo), ("batch", batch))
                                      if v is not None})
    split = json.loads((Path(run_dir) / "split.json").read_text())
    trained_on = split.get("trained_on", [])
    label = "two-phase:" + "+".join(getattr(cfg, p).model.name for p in cfg.phases)
    written = []
    for path in progress(boxes, desc="predict", unit="box"):
        box = read_box(path, catalogs=True, velocity=cfg.data.velocity, allow_dm_only=True)
        outs = [prediction_path(out_dir, box.name, k, samples) for k in range(samples)]
        for o in outs:
            check_writable(o, overwrite)
        prob, rate = network_outputs(cfg, transform, models, box, infer_cfg, dev)
        for k, o in enumerate(outs):
            rng = np.random.default_rng([seed, k])
            gal = combine(prob, rate, models.get("threshold"), counts=counts, rng=rng)
            pbox = prediction_box(box, gal, model=label, trained_on=",".join(trained_on), seed=seed,
                                  source_path=path, realisation=k if counts == "poisson" else None,
                                  realisations=samples,
                                  extra_meta={"run": str(run_dir), "counts": counts,
                                              **({"threshold": models["threshold"]} if "threshold" in models else {})})
            write_box(o, pbox, overwrite=overwrite)
            written.append(o)
    return written
