"""`task: two_phase`: train the classifier and regressor into a run directory; predict boxes.

Run directory layout::

    config.json      resolved config (rebuilds everything)
    split.json       training / validation / test regions
    inputs.json      geometry and content hashes of the split's boxes (training.run_inputs)
    transform.json   input transform statistics (training boxes only); with ``condition_params``, key
                     ``params``: the parameters' standardisation (training.params.ParamTransform)
    classifier/      checkpoints/{last,best}.pt, train_log.csv, val_log.csv, done.json
    threshold.json   mask threshold chosen on the validation boxes, with its recall and precision
    regressor/       as classifier/
    calibration.json with ``calibrate_counts``: the scale on the regressor's rates (`counts.count_scale`)
                     and the totals it comes from
    summary.json     the summary `galaxygen train` prints
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import h5py
import numpy as np
import torch

from galaxygen.box import read_box, read_header, write_box
from galaxygen.prediction import prediction_box
from galaxygen.config import from_dict
from galaxygen.device import resolve_device
from galaxygen.errors import GalaxygenError
from galaxygen.io import check_writable, write_json
from galaxygen.models.two_phase.losses import rate_from_output
from galaxygen.models.two_phase.networks import build_network
from galaxygen.models.two_phase.counts import COUNTS, STOCHASTIC, count_scale, realisation_inputs, realise
from galaxygen.models.two_phase.phases import (ClassifierTask, RegressorTask, TwoPhaseConfig, box_params,
                                               calibrate_head, infer_box, threshold_for_recall)
from galaxygen.progress import progress
from galaxygen.training import distributed as D
from galaxygen.training.data import BoxData, Split, Transform, fit_transform, load_region
from galaxygen.training.params import ParamTransform, condition_names, varying_param_names
from galaxygen.training.run import SPLIT, SUMMARY, TRANSFORM, RunDir, check_predict_options, with_options
from galaxygen.training.run_inputs import INPUTS
from galaxygen.training.tiling import prediction_path
from galaxygen.training.trainer import Trainer

THRESHOLD = "threshold.json"
CALIBRATION = "calibration.json"
# what a two-phase run writes into its directory besides config.json (recorded for --overwrite)
RUN_ENTRIES = (SPLIT, INPUTS, TRANSFORM, "classifier", THRESHOLD, "regressor", CALIBRATION, SUMMARY)
#: a count scale outside this range is said out loud: the regressor was far off before calibration
SCALE_WARN = (0.8, 1.25)

log = logging.getLogger(__name__)


def parse_config(config: dict[str, Any], where: str = "config") -> TwoPhaseConfig:
    return from_dict(TwoPhaseConfig, config, where)


def train(config: dict[str, Any], boxes: Sequence[Path], run_dir: Path, *, resume: bool = False,
          overwrite: bool = False, device: str | None = None) -> dict[str, Any]:
    """Train the configured phases on `boxes` (split by ``data``) into `run_dir`; see module doc."""
    run = RunDir(run_dir)
    dist, cfg, config = run.start(config, parse_config, device, resume=resume, overwrite=overwrite,
                                  entries=RUN_ENTRIES)
    split, fitted = run.split(boxes, cfg.data, lambda split: _fit_transforms(cfg, split), dist,
                              resume=resume, record=lambda split: {"trained_on": _suites(split.train)})
    transform, params = Transform.from_dict(fitted), param_transform(fitted)
    n_params = len(params.names)
    train_boxes = [load_region(r, transform, cfg.data) for r in split.train]
    val_boxes = [load_region(r, transform, cfg.data) for r in split.validation]
    summary = run.summary("two_phase", dist, split)
    threshold = None
    kept: list[np.ndarray | None] = [None] * (len(train_boxes) + len(val_boxes))  # the classifier mask per box
    if "classifier" in cfg.phases:
        torch.manual_seed(cfg.seed)
        task = ClassifierTask(build_network(cfg.classifier.model, transform.channels, 1, n_params), train_boxes,
                              val_boxes, cfg, dist.device, params)
        trainer = Trainer(task, cfg.classifier.train, run.phase("classifier"), dist=dist, resume=resume,
                          config=config, name="classifier")
        summary["classifier"] = trainer.fit()
        cls_model = trainer.eval_model().eval()
        threshold = _choose_threshold(task, cls_model, val_boxes or train_boxes, cfg, run, dist, resume)
        summary["threshold"] = threshold
        if "regressor" in cfg.phases:
            for i, b in enumerate(train_boxes + val_boxes):
                prob = torch.from_numpy(task.probabilities(cls_model, b))
                b.extras["prob"] = prob
                b.extras["keep"] = ((prob >= threshold["threshold"]) | (b.target > 0)).float()
                kept[i] = (prob >= threshold["threshold"]).numpy()
            for b in train_boxes:  # the regressor's crops carry only the keep mask
                b.extras.pop("prob")
    if "regressor" in cfg.phases:
        torch.manual_seed(cfg.seed + 1000)
        net = build_network(cfg.regressor.model, transform.channels, 1, n_params)
        calibrate_head(net, train_boxes, cfg.regressor.loss)
        task = RegressorTask(net, train_boxes, val_boxes, cfg, dist.device, threshold["threshold"] if threshold else None,
                             params)
        trainer = Trainer(task, cfg.regressor.train, run.phase("regressor"), dist=dist, resume=resume,
                          config=config, name="regressor")
        summary["regressor"] = trainer.fit()
        if cfg.calibrate_counts:
            summary["calibration"] = _calibrate_counts(trainer.eval_model().eval(), train_boxes + val_boxes, kept,
                                                       cfg, params, run, dist, resume)
    if n_params:
        summary["condition_params"] = list(params.names)
    return run.finish(summary, dist)


def _fit_transforms(cfg: TwoPhaseConfig, split: Split) -> dict[str, Any]:
    """The DM input transform of the training boxes and, with conditioning, their parameters'
    standardisation (key ``params``; 'auto': the parameters that vary across the training boxes)."""
    fitted = fit_transform(split.train, cfg.data).as_dict()
    if cfg.condition_params != "none":
        plist = [dict(read_header(r.path).params) for r in split.train]
        names = condition_names(cfg.condition_params, plist, varying_param_names)
        if names:
            fitted["params"] = ParamTransform.fit(names, plist).as_dict()
    return fitted


def param_transform(fitted: dict[str, Any]) -> ParamTransform:
    """The parameters' standardisation saved in transform.json (no names: an unconditioned run)."""
    return ParamTransform.from_dict(fitted.get("params", {"names": [], "mean": [], "std": []}))


def _suites(regions) -> list[str]:
    """Suites of the training boxes (root attribute, without reading the grids)."""
    out = set()
    for r in regions:
        with h5py.File(r.path, "r") as f:
            out.add(str(f.attrs["suite"]))
    return sorted(out)


def _choose_threshold(task: ClassifierTask, model, boxes: list[BoxData], cfg: TwoPhaseConfig, run: RunDir,
                      info: D.DistInfo, resume: bool) -> dict[str, Any]:
    path = run.path / THRESHOLD
    if resume and path.is_file():
        return run.read(THRESHOLD)
    result = None
    if info.is_main:
        probs = [task.probabilities(model, b)[b.mask()] for b in boxes]
        truth = [b.target.numpy()[b.mask()] > 0 for b in boxes]
        th = threshold_for_recall(np.concatenate(probs), np.concatenate(truth), cfg.target_recall)
        result = {**th.as_dict(), "target_recall": cfg.target_recall, "boxes": [b.region.name for b in boxes]}
        write_json(path, result, overwrite=True)
    return D.broadcast_object(result)


def _calibrate_counts(model, boxes: list[BoxData], kept: list[np.ndarray | None], cfg: TwoPhaseConfig,
                      params: ParamTransform, run: RunDir, info: D.DistInfo, resume: bool) -> dict[str, Any]:
    """calibration.json: `count_scale` of the true galaxies and the expected counts (rates clipped at 0,
    times the classifier mask `kept`, as a prediction has them) over the regions of the training and
    validation `boxes`; the trained regressor `model`. A scale outside SCALE_WARN is logged."""
    path = run.path / CALIBRATION
    result = None
    if info.is_main and resume and path.is_file():  # decided on rank 0 alone: ranks need not share a disk
        result = run.read(CALIBRATION)
    elif info.is_main:
        n_true = n_exp = 0.0
        with torch.no_grad():
            for b, mask in zip(boxes, kept):
                out = infer_box(model, b, cfg.infer, info.device, box_params(params, b))[0].float()
                lam = np.clip(rate_from_output(out, cfg.regressor.loss).numpy(), 0.0, None)
                region = b.mask() if mask is None else b.mask() & mask
                n_exp += float(lam[region].sum(dtype=np.float64))
                n_true += float(b.target.numpy()[b.mask()].sum(dtype=np.float64))
        scale = count_scale(n_true, n_exp)
        result = {"count_scale": scale, "n_true": n_true, "n_expected": n_exp,
                  "regions": [{k: v for k, v in b.region.as_dict().items() if k != "path"} for b in boxes]}
        if n_exp == 0.0:
            log.warning(f"{run.path}: the regressor expects no galaxy on its training and validation boxes "
                        f"({n_true:.0f} true): its rates are left unscaled")
        elif not SCALE_WARN[0] <= scale <= SCALE_WARN[1]:
            log.warning(f"{run.path}: the regressor's rates total {n_exp:.0f} galaxies on its training and "
                        f"validation boxes against {n_true:.0f} true: scaled by {scale:.3f} ({CALIBRATION})")
        write_json(path, result, overwrite=True)
    return D.broadcast_object(result)


# ----------------------------------------------------------------------------- prediction

def load_run(run_dir: Path, device: torch.device) -> tuple[TwoPhaseConfig, Transform, dict[str, Any]]:
    """Config, transform and trained models (eval mode, best weights) of a run directory; the models
    dict also holds the mask ``threshold`` (with a classifier), the rates' ``count_scale`` (with a
    regressor: calibration.json, else 1) and the ``params`` standardisation."""
    run = RunDir(run_dir)
    cfg = parse_config(run.config(), where=f"{run_dir}/config.json")
    run.require_done(cfg.phases)
    fitted = run.read(TRANSFORM)
    transform, params = Transform.from_dict(fitted), param_transform(fitted)
    models: dict[str, Any] = {phase: run.load_weights(build_network(getattr(cfg, phase).model, transform.channels, 1,
                                                                    len(params.names)), phase, device)
                              for phase in cfg.phases}
    models["params"] = params
    if "classifier" in models:
        models["threshold"] = run.read(THRESHOLD)["threshold"]
    if "regressor" in models:
        models["count_scale"] = _count_scale(run, run.config())
    return cfg, transform, models


def _count_scale(run: RunDir, saved_config: dict[str, Any]) -> float:
    """The run's rate scale: calibration.json's; 1 for a run trained with ``calibrate_counts: false`` or
    before the option existed (no key in its saved config); a GalaxygenError when a run meant to be
    calibrated lacks the file (killed between its regressor's end and the calibration pass)."""
    if (run.path / CALIBRATION).is_file():
        return float(run.read(CALIBRATION)["count_scale"])
    if saved_config.get("calibrate_counts", False):
        raise GalaxygenError(f"{run.path}: no {CALIBRATION} although the run calibrates its counts "
                             f"(calibrate_counts: true): it stopped before the calibration pass; finish it "
                             f"with `galaxygen train ... --resume`")
    return 1.0


def network_outputs(cfg: TwoPhaseConfig, transform: Transform, models: dict[str, Any], box,
                    infer_cfg, device: torch.device) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The classifier's probability and the regressor's rate (times the run's ``count_scale``) on a
    whole box (None for a phase the run lacks), each (N, N, N) float32: what `galaxy_counts` turns into
    galaxies. A conditioned run refuses a box lacking one of its parameters (ConfigError)."""
    b = BoxData(None, box, torch.from_numpy(transform.inputs(box, f"box {box.name!r}")),  # type: ignore[arg-type]
                torch.from_numpy(box.galaxies), torch.zeros(0), np.zeros((0, 3), np.int64))
    ptr = models.get("params")
    params = ptr.forward(box.params, where=f"box {box.name!r}")[None] if ptr is not None and ptr.names else None
    prob = rate = None
    if "classifier" in models:
        prob = torch.sigmoid(infer_box(models["classifier"], b, infer_cfg, device, params)[0].float()).numpy()
    if "regressor" in models:
        out = infer_box(models["regressor"], b, infer_cfg, device, params)[0].float()
        rate = rate_from_output(out, cfg.regressor.loss).numpy() * np.float32(models.get("count_scale", 1.0))
    return prob, rate


def prediction_files(run_dir: Path, name: str, out_dir: Path, *, samples: int = 1, **_options: Any) -> list[Path]:
    """The files `predict` writes for the box named `name`."""
    return [prediction_path(out_dir, name, k, samples) for k in range(samples)]


def predict(run_dir: Path, boxes: Sequence[Path], out_dir: Path, *, samples: int = 1, seed: int = 0,
            device: str = "auto", overwrite: bool = False, tile: int | None = None,
            batch: int | None = None, counts: str | None = None, halo: int | None = None,
            sharpen: float | None = None, sharpen_satellites: float | None = None) -> list[Path]:
    """Write one prediction box per input box (``samples`` realisations with a seeded counts mode,
    'poisson' or 'structured').

    `counts` (one of COUNTS, see `galaxy_counts`), `sharpen` and `sharpen_satellites` replace the run config's choices; `tile`, `halo`
    and `batch` its ``infer`` settings (halo None there: exact, the networks' receptive radii). Sample k of a
    box draws from ``numpy.random.default_rng([seed, k])``. Every box also stores ``fields/galaxy_rate``,
    the expected counts its ``fields/galaxies`` realises (`expected_counts`).
    """
    check_predict_options(samples, halo)
    dev = resolve_device(device)
    cfg, transform, models = load_run(Path(run_dir), dev)
    counts = counts or cfg.counts
    sharpen = cfg.sharpen if sharpen is None else float(sharpen)
    if counts not in COUNTS:
        raise GalaxygenError(f"--counts: expected one of {', '.join(COUNTS)}, got {counts!r}")
    if not sharpen > 0:
        raise GalaxygenError(f"--sharpen: expected a power > 0, got {sharpen}")
    sharpen_satellites = cfg.sharpen_satellites if sharpen_satellites is None else float(sharpen_satellites)
    if sharpen_satellites is not None and not sharpen_satellites > 0:
        raise GalaxygenError(f"--sharpen-satellites: expected a power > 0, got {sharpen_satellites}")
    if samples > 1 and counts not in STOCHASTIC:
        raise GalaxygenError(f"--samples > 1 needs seeded counts ({counts} counts are deterministic): "
                             f"pass --counts {' or '.join(STOCHASTIC)}")
    if samples > 1 and "regressor" not in models:
        raise GalaxygenError(f"--samples > 1: the run {run_dir} has no regressor, so its galaxies are its "
                             "classifier mask, the same in every sample: pass --samples 1")
    infer_cfg = with_options(cfg.infer, tile=tile, halo=halo, batch=batch)
    trained_on = RunDir(run_dir).read(SPLIT).get("trained_on", [])
    for path in boxes:  # a conditioned run needs its parameters in every box: refuse before writing any
        models["params"].forward(read_header(path).params, where=str(path))
    label = "two-phase:" + "+".join(getattr(cfg, p).model.name for p in cfg.phases)
    written = []
    for path in progress(boxes, desc="predict", unit="box"):
        box = read_box(path, catalogs=True, velocity=cfg.data.velocity, allow_dm_only=True)
        outs = prediction_files(run_dir, box.name, out_dir, samples=samples)
        for o in outs:
            check_writable(o, overwrite)
        prob, rate = network_outputs(cfg, transform, models, box, infer_cfg, dev)
        lam, regions, central = realisation_inputs(prob, rate, models.get("threshold"), counts=counts,
                                                   sharpen=sharpen, sharpen_satellites=sharpen_satellites)
        for k, o in enumerate(outs):
            rng = np.random.default_rng([seed, k])
            # without a regressor the galaxies are the classifier mask itself (one per kept voxel)
            gal = lam if rate is None else realise(lam, regions, central, counts, rng)
            pbox = prediction_box(box, gal, model=label, trained_on=",".join(trained_on), seed=seed,
                                  source_path=path, realisation=k if counts in STOCHASTIC else None,
                                  realisations=samples, galaxy_rate=lam,
                                  extra_meta={"run": str(run_dir), "counts": counts, "sharpen": sharpen,
                                              "sharpen_satellites": -1.0 if sharpen_satellites is None
                                              else sharpen_satellites,
                                              **({"threshold": models["threshold"]} if "threshold" in models else {}),
                                              **({"count_scale": models["count_scale"]} if "count_scale" in models
                                                 else {})})
            write_box(o, pbox, overwrite=overwrite)
            written.append(o)
    return written
