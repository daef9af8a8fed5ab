"""`task: vdm`: train the variational diffusion model into a run directory; sample prediction boxes.

Uses the shared training machinery (``galaxygen.training``): the run directory's lifecycle, box
splits, the DM input transform, periodic crops with the 48 cube symmetries, the generic Trainer
(AdamW, LR schedule, clipping, AMP, EMA, checkpoints, exact resume, DDP under torchrun) and tiled
inference.

Run directory::

    config.json      resolved config (rebuilds everything)
    split.json       training / validation regions
    inputs.json      geometry and content hashes of the split's boxes (training.run_inputs)
    transform.json   DM input transform (training.data.Transform), galaxy count transform,
                     conditioning-parameter standardisation, training suites
    vdm/             checkpoints/{last,best}.pt (model + EMA), train_log.csv, val_log.csv, done.json
    summary.json     what `galaxygen train` prints

Prediction files (shared convention with evaluation): ``<name>_r<k>.h5`` for sample k = 0..S−1
(meta ``realisation`` = k, ``realisations`` = S) and, with ``sample.mean``, ``<name>_mean.h5`` holding
the mean of the S sampled count fields (meta ``kind`` = "mean", ``realisation`` = −1).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import numpy as np
import torch

from galaxygen.box import read_box, write_box
from galaxygen.prediction import prediction_box
from galaxygen.config import from_dict, require
from galaxygen.device import resolve_device
from galaxygen.errors import GalaxygenError
from galaxygen.io import check_writable
from galaxygen.models.vdm.representation import (REPRESENTATIONS, RateSource, cascade_rate, gaussian_smooth,
                                                 poisson_counts)
from galaxygen.models.vdm.sampler import sample_box
from galaxygen.models.vdm.transform import CountTransform, fit_count_transform
from galaxygen.models.vdm.vdm import VDM, LossTerms, VDMConfig
from galaxygen.progress import progress
from galaxygen.training import distributed as D
from galaxygen.training.crops import CropDataset
from galaxygen.training.data import DataConfig, Split, Transform, fit_transform, load_region, region_mask
from galaxygen.training.params import ConditionChoice, ParamTransform, check_condition_params, condition_names
from galaxygen.training.run import SPLIT, SUMMARY, TRANSFORM, RunDir, check_predict_options, with_options
from galaxygen.training.run_inputs import INPUTS
from galaxygen.training.trainer import Trainer, TrainConfig

# what a VDM run writes into its directory besides config.json (recorded for --overwrite)
RUN_ENTRIES = (SPLIT, INPUTS, TRANSFORM, "vdm", SUMMARY)


def _data_default() -> DataConfig:
    return DataConfig(crop=32, pad=0, focus=0.0)


def _train_default() -> TrainConfig:
    return TrainConfig(steps=1000, batch_size=4, lr=1e-4, schedule="constant", grad_clip=0.5, ema_decay=0.999)


@dataclass(frozen=True)
class SampleConfig:
    """Ancestral sampling at prediction time.

    steps : T (Ono et al. arXiv:2403.10648: 250). batch : 3-D samples / 2-D slices per network call.
    tile, halo : 3-D whole boxes by tiled inference [voxels] (tile null: the whole box at once, exact);
        halo null: the U-Net's receptive radius (`DiffusionUNet.receptive_radius`) rounded up to its
        down-sampling factor; GroupNorm statistics are per window, so tiles only approximate the
        whole-box pass, and a window (tile + 2 halo) reaching the box side runs the whole box.
    mean : also write ``<name>_mean.h5`` (mean of the sampled counts).
    """

    steps: int = 250
    batch: int = 4
    tile: int | None = None
    halo: int | None = None
    mean: bool = False

    def __post_init__(self) -> None:
        require(self.steps >= 1, f"sample.steps: expected >= 1, got {self.steps}")
        require(self.batch >= 1, f"sample.batch: expected >= 1, got {self.batch}")
        require(self.tile is None or self.tile >= 1, "sample.tile: expected >= 1 voxel or null")
        require(self.halo is None or self.halo >= 0, f"sample.halo: expected >= 0 voxels or null, got {self.halo}")


@dataclass(frozen=True)
class VDMTaskConfig:
    """The whole `task: vdm` config (configs/vdm-*.yaml).

    galaxies : count transform, 'unit' (0 → −1, 1 → +1) or 'standardize' (see transform.py).
    offset : f of the count transform y = log(n + f) (1: log1p).
    representation : 'counts' (diffuse the counts, round back) or 'rate' (diffuse a smooth expected
        count, Poisson draws back); see representation.py.
    smoothing : 'rate' only: Gaussian std [voxels] of the smooth target (0: the counts themselves).
    cascade : a trained two-phase run directory whose expected counts are an extra conditioning
        channel; the model then diffuses the residual to them ('rate' only). Relative paths are
        resolved from the working directory at training time and stored absolute.
    condition_params : 'auto' (the parameters all training boxes carry), 'none', or a list of names.
    slice_axis : 2-D models train on and sample slices normal to this axis.
    validation_crops : fixed validation crops on which the VLB [bits/dim] is measured.
    """

    task: Literal["vdm"] = "vdm"
    device: str = "auto"
    seed: int = 0
    data: DataConfig = field(default_factory=_data_default)
    model: VDMConfig = field(default_factory=VDMConfig)
    galaxies: Literal["unit", "standardize"] = "unit"
    offset: float = 1.0
    representation: Literal["counts", "rate"] = "counts"
    smoothing: float = 0.0
    cascade: str | None = None
    condition_params: ConditionChoice = "auto"
    slice_axis: int = 2
    validation_crops: int = 8
    train: TrainConfig = field(default_factory=_train_default)
    sample: SampleConfig = field(default_factory=SampleConfig)

    def __post_init__(self) -> None:
        require(self.data.pad == 0, f"data.pad: the diffusion model sees DM and galaxies on the same crop; "
                                    f"expected 0, got {self.data.pad}")
        mult = 2 ** (len(self.model.mults) - 1)
        require(self.data.crop % mult == 0, f"data.crop ({self.data.crop}) must be a multiple of {mult} "
                                            f"(the U-Net's {len(self.model.mults)} levels)")
        require(self.slice_axis in (0, 1, 2), f"slice_axis: expected 0, 1 or 2, got {self.slice_axis}")
        require(self.validation_crops >= 0, "validation_crops: expected >= 0")
        check_condition_params(self.condition_params)
        require(self.representation in REPRESENTATIONS,
                f"representation: expected one of {', '.join(REPRESENTATIONS)}, got {self.representation!r}")
        require(self.offset > 0, f"offset: expected > 0, got {self.offset}")
        require(self.smoothing >= 0, f"smoothing: expected >= 0 voxels, got {self.smoothing}")
        require(self.smoothing == 0 or self.representation == "rate",
                "smoothing: only the 'rate' representation diffuses a smoothed field")
        require(self.cascade is None or self.representation == "rate",
                "cascade: needs representation: rate (the residual is read back as a rate)")


def parse_config(config: dict[str, Any], where: str = "config") -> VDMTaskConfig:
    return from_dict(VDMTaskConfig, config, where)


class SliceDataset(torch.utils.data.Dataset):
    """2-D items from a CropDataset: one slice (normal to `axis`) of each augmented 3-D crop."""

    def __init__(self, crops: CropDataset, axis: int, seed: int) -> None:
        self.crops, self.axis, self.seed = crops, axis, seed

    def __len__(self) -> int:
        return len(self.crops)

    def __getitem__(self, n: int) -> dict[str, torch.Tensor]:
        item = self.crops[n]
        j = int(np.random.default_rng([self.seed, int(n), 7]).integers(item["target"].shape[1]))
        return {k: (v.select(self.axis + 1, j).contiguous() if v.ndim == 4 else v) for k, v in item.items()}


class VDMTask:
    """The VDM for :class:`galaxygen.training.trainer.Trainer`: VLB loss on crops (or slices)."""

    def __init__(self, model: VDM, cfg: VDMTaskConfig, train_boxes, val_boxes, galaxies: CountTransform,
                 params: ParamTransform, device: torch.device) -> None:
        self.model, self.cfg, self.galaxies, self.params, self.device = model, cfg, galaxies, params, device
        ds = CropDataset(train_boxes, cfg.data, seed=cfg.seed)
        self.train_dataset = SliceDataset(ds, cfg.slice_axis, cfg.seed) if cfg.model.dim == 2 else ds
        self.val_items: list[dict[str, torch.Tensor]] = []
        if val_boxes and cfg.validation_crops:
            # the VLB is measured on uniform crops, whatever the training focus
            vds = CropDataset(val_boxes, replace(cfg.data, augment=False, focus=0.0, unbiased=False), seed=cfg.seed + 1)
            vds = SliceDataset(vds, cfg.slice_axis, cfg.seed + 1) if cfg.model.dim == 2 else vds
            self.val_items = [vds[i] for i in range(cfg.validation_crops)]

    def terms(self, model, batch: dict[str, torch.Tensor], generator=None) -> dict[str, torch.Tensor]:
        """The loss terms per sample (B,) [bits/dim] of the (possibly DDP-wrapped) `model` on `batch`."""
        x, cond = diffusion_inputs(self.galaxies, batch)
        return model(x, cond, self.params.forward_batch(batch["params"]), generator=generator)

    def training_loss(self, model, batch):
        terms = self.terms(model, batch)
        metrics = {f"bpd_{k}": v.detach().mean() for k, v in terms.items()}
        g0, g1 = D.unwrap(model).schedule.endpoints()
        metrics.update(gamma_0=g0.detach(), gamma_1=g1.detach())
        objective = LossTerms(**terms).objective
        if "weight" in batch:  # data.unbiased: importance weights of focused crops (training.crops)
            objective = objective * batch["weight"].to(objective)
        return objective.mean(), metrics

    def validate(self, model) -> dict[str, float]:
        """VLB [bits/dim] on the fixed validation crops, with fixed times and noise."""
        if not self.val_items:
            return {}
        gen = torch.Generator(device=self.device).manual_seed(self.cfg.seed + 12345)
        sums: dict[str, float] = {}
        for item in self.val_items:
            batch = {k: v[None].to(self.device) for k, v in item.items()}
            for k, v in self.terms(model, batch, generator=gen).items():
                sums[k] = sums.get(k, 0.0) + float(v.detach().sum())
        n = len(self.val_items)
        out = {f"bpd_{k}": v / n for k, v in sums.items()}
        out["bpd"] = out["bpd_diffusion"] + out["bpd_prior"] + out["bpd_recon"]   # the VLB
        return out


def diffusion_inputs(galaxies: CountTransform, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, cond) of a batch: x the transformed target (the smoothed field ``smooth`` when present,
    else the counts), minus the transformed cascade rate ``rate`` when present, which then joins the
    DM channels of the condition. Shapes (B, 1, *grid) and (B, Cc, *grid)."""
    cond = batch["input"]
    x = galaxies.forward(batch["smooth"] if "smooth" in batch else batch["target"]).to(cond.device)
    if "rate" in batch:
        xr = galaxies.forward(batch["rate"]).to(cond.device)
        x, cond = x - xr, torch.cat([cond, xr], dim=1)
    return x, cond


def build_vdm(cfg: VDMTaskConfig, fitted: dict[str, Any]) -> VDM:
    """The configured VDM for the transforms `fitted` on the training boxes (transform.json):
    conditioning parameters, DM channels, the galaxy statistics of the Gaussian baseline."""
    model = VDM(cfg.model, n_params=len(fitted["params"]["names"]),
                cond_channels=len(fitted["dm"]["mean"]) + (cfg.cascade is not None))
    stats = fitted.get("galaxy_stats")
    if stats:
        model.set_data_stats(stats["mean"], max(stats["std"], 1e-3))
    return model


def train(config: dict[str, Any], boxes: Sequence[Path], run_dir: Path, *, resume: bool = False,
          overwrite: bool = False, device: str | None = None,
          rate_source: Callable[[str, torch.device], RateSource] | None = None) -> dict[str, Any]:
    """Train the VDM on `boxes` (split by ``data``) into `run_dir`; see the module docstring.
    `rate_source(run_dir, device)` builds a cascade's rate channel (the registry passes it)."""
    run = RunDir(run_dir)
    if config.get("cascade") is not None:
        config = {**config, "cascade": str(Path(config["cascade"]).resolve())}
    dist, cfg, config = run.start(config, parse_config, device, resume=resume, overwrite=overwrite,
                                  entries=RUN_ENTRIES)
    extras = TargetExtras(cfg, _rates(cfg, rate_source, dist.device))
    split, fitted = run.split(boxes, cfg.data, lambda split: _fit_transforms(cfg, split, extras), dist,
                              resume=resume)
    dm_tr = Transform.from_dict(fitted["dm"])
    params = ParamTransform.from_dict(fitted["params"])
    train_boxes = [extras.attach(load_region(r, dm_tr, cfg.data)) for r in split.train]
    val_boxes = [extras.attach(load_region(r, dm_tr, cfg.data)) for r in split.validation]
    torch.manual_seed(cfg.seed)
    task = VDMTask(build_vdm(cfg, fitted), cfg, train_boxes, val_boxes, CountTransform(**fitted["galaxies"]), params,
                   dist.device)
    trainer = Trainer(task, cfg.train, run.phase("vdm"), dist=dist, resume=resume, config=config, name="vdm")
    summary = {**run.summary("vdm", dist, split), "condition_params": list(params.names), "vdm": trainer.fit()}
    g0, g1 = trainer.eval_model().schedule.endpoints()
    summary["gamma"] = [float(g0.detach()), float(g1.detach())]
    return run.finish(summary, dist)


def _rates(cfg: VDMTaskConfig, rate_source, device: torch.device) -> RateSource | None:
    """The cascade's rate channel (None without a cascade)."""
    if cfg.cascade is None:
        return None
    if rate_source is None:
        raise GalaxygenError("cascade: train and predict a cascade through galaxygen.models.registry "
                             "(it builds the two-phase rate channel)")
    return rate_source(cfg.cascade, device)


class TargetExtras:
    """Per-box fields beside the counts, as `BoxData.extras` (cropped and rotated with them):
    ``smooth`` (the Gaussian-smoothed counts, `smoothing` > 0) and ``rate`` (the cascade's two-phase
    expected counts), computed once per box file."""

    def __init__(self, cfg: VDMTaskConfig, rates: RateSource | None) -> None:
        self.cfg, self.rates = cfg, rates
        self._cache: dict[Path, dict[str, np.ndarray]] = {}

    def fields(self, path: Path, box) -> dict[str, np.ndarray]:
        if path not in self._cache:
            out = {}
            if self.cfg.smoothing > 0:
                out["smooth"] = gaussian_smooth(box.galaxies, self.cfg.smoothing)
            if self.rates is not None:  # the rate source may take halos or velocities the VDM does not read
                out["rate"] = self.rates(read_box(path, catalogs=True, velocity=True))
            self._cache[path] = out
        return self._cache[path]

    def attach(self, b):
        """`b` (BoxData) with its extras added."""
        for k, v in self.fields(Path(b.region.path), b.box).items():
            b.extras[k] = torch.from_numpy(v)
        return b


def _fit_transforms(cfg: VDMTaskConfig, split: Split, extras: TargetExtras) -> dict[str, Any]:
    """DM transform (training boxes only), galaxy transform, parameter standardisation, suites, and
    the mean and spread of the diffused variable (the Gaussian baseline's prior)."""
    dm_tr = fit_transform(split.train, cfg.data)
    fields, targets, rates, plist, suites = [], [], [], [], set()
    for r in split.train:
        box = read_box(r.path, catalogs=False, velocity=False)
        mask = region_mask(r, box.grid)
        ex = extras.fields(Path(r.path), box)
        fields.append(box.galaxies[mask])
        targets.append(ex["smooth"][mask] if "smooth" in ex else box.galaxies[mask])
        if "rate" in ex:
            rates.append(ex["rate"][mask])
        plist.append(box.params)
        suites.add(box.suite)
    names = condition_names(cfg.condition_params, plist)
    galaxies = fit_count_transform(cfg.galaxies, fields, cfg.offset)
    xs = torch.cat([galaxies.forward(f).reshape(-1).double() for f in targets])
    if rates:
        xs = xs - torch.cat([galaxies.forward(f).reshape(-1).double() for f in rates])
    return {"dm": dm_tr.as_dict(), "galaxies": galaxies.as_dict(),
            "galaxy_stats": {"mean": float(xs.mean()), "std": float(xs.std()) if xs.numel() > 1 else 1.0},
            "params": ParamTransform.fit(names, plist).as_dict(), "trained_on": sorted(suites)}


# ----------------------------------------------------------------------------- prediction

def sample_counts(cfg: VDMTaskConfig, galaxies: CountTransform, x: torch.Tensor, rho: torch.Tensor | None,
                  seed: int) -> np.ndarray:
    """Integer counts (S, N, N, N) float32 of S sampled fields x (transformed units): rounded
    ('counts'), or Poisson draws of the sampled rate ('rate'; with a cascade, of ρ corrected by the
    sampled residual), sample k drawing with `representation.poisson_counts(·, seed, k)`."""
    if cfg.representation == "counts":
        return galaxies.inverse(x).cpu().numpy().astype(np.float32)
    lam = galaxies.rate(x) if rho is None else cascade_rate(rho, x, galaxies)
    return np.stack([poisson_counts(lam[k], seed, k) for k in range(x.shape[0])])


def load_run(run_dir: Path, device: torch.device) -> tuple[VDMTaskConfig, dict[str, Any], VDM]:
    """Config, transforms and the trained model (EMA weights when present, eval mode)."""
    run = RunDir(run_dir)
    cfg = parse_config(run.config(), where=f"{run_dir}/config.json")
    run.require_done(["vdm"])
    fitted = run.read(TRANSFORM)
    return cfg, fitted, run.load_weights(build_vdm(cfg, fitted), "vdm", device)


def prediction_files(run_dir: Path, name: str, out_dir: Path, *, samples: int = 1, mean: bool | None = None,
                     **_options: Any) -> list[Path]:
    """The files `predict` writes for the box named `name`: its samples, then the mean (`mean`, else
    the run config's ``sample.mean``)."""
    if mean is None:
        mean = parse_config(RunDir(run_dir).config(), where=f"{run_dir}/config.json").sample.mean
    files = [Path(out_dir) / f"{name}_r{k}.h5" for k in range(samples)]
    return files + [Path(out_dir) / f"{name}_mean.h5"] if mean else files


def predict(run_dir: Path, boxes: Sequence[Path], out_dir: Path, *, samples: int = 1, seed: int = 0,
            device: str = "auto", overwrite: bool = False, tile: int | None = None, batch: int | None = None,
            steps: int | None = None, mean: bool | None = None, halo: int | None = None,
            rate_source: Callable[[str, torch.device], RateSource] | None = None) -> list[Path]:
    """Write `samples` sampled prediction boxes per input box (and the mean if asked); see module doc.
    `rate_source`: as for `train` (a cascade's rate channel)."""
    check_predict_options(samples, halo)
    dev = resolve_device(device)
    cfg, saved, model = load_run(Path(run_dir), dev)
    rates = _rates(cfg, rate_source, dev)
    scfg = with_options(cfg.sample, tile=tile, batch=batch, steps=steps, mean=mean, halo=halo)
    dm_tr = Transform.from_dict(saved["dm"])
    galaxies = CountTransform(**saved["galaxies"])
    ptr = ParamTransform.from_dict(saved["params"])
    out_dir = Path(out_dir)
    written: list[Path] = []
    for path in progress(boxes, desc="predict", unit="box"):
        box = read_box(path, catalogs=True, velocity=dm_tr.velocity or rates is not None, allow_dm_only=True)
        files = prediction_files(run_dir, box.name, out_dir, samples=samples, mean=scfg.mean)
        outs, mean_path = files[:samples], (files[samples] if scfg.mean else None)
        for o in outs + ([mean_path] if mean_path else []):
            check_writable(o, overwrite)
        mult = model.net.multiple
        if any(s % mult for s in box.dm.shape):
            raise GalaxygenError(f"{path}: grid {box.grid} is not a multiple of {mult}, which the U-Net needs")
        cond = torch.from_numpy(dm_tr.inputs(box, str(path)))
        rho = None
        if rates is not None:
            rho = torch.from_numpy(rates(box))
            cond = torch.cat([cond, galaxies.forward(rho)[None]])
        params = ptr.forward(box.params, where=str(path)) if ptr.names else None
        x = sample_box(model, cond, params, samples=samples, seed=seed, steps=scfg.steps, batch=scfg.batch,
                       tile=scfg.tile, halo=scfg.halo, slice_axis=cfg.slice_axis, desc=box.name)
        counts = sample_counts(cfg, galaxies, x, rho, seed)                    # (S, N, N, N)
        common = {"model": "vdm", "trained_on": ",".join(saved.get("trained_on", [])), "seed": int(seed),
                  "source_path": path, "realisations": samples}
        extra = {"run": str(run_dir), "steps": int(scfg.steps), "dim": int(cfg.model.dim),
                 "representation": cfg.representation, **({"cascade": cfg.cascade} if cfg.cascade else {})}
        for k, o in enumerate(outs):
            pbox = prediction_box(box, counts[k], realisation=k, extra_meta=extra, **common,
                                  empty_note=f"the sampler returned an empty field ({scfg.steps} steps)")
            write_box(o, pbox, overwrite=overwrite)
            written.append(o)
        if mean_path is not None:
            pbox = prediction_box(box, counts.mean(axis=0), realisation=-1, extra_meta={**extra, "kind": "mean"},
                                  **common)
            write_box(mean_path, pbox, overwrite=overwrite)
            written.append(mean_path)
    return written
