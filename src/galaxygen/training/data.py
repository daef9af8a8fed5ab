"""Training data from box files: the data config, splits, the input transform, boxes in memory.

* Splits are by whole boxes (lists of names, or fractions drawn with a seed) or, for a single box,
  by contiguous slabs along one axis; never by random voxels, whose neighbours (in the other split)
  share their structures (docs/training.md, "Data").
* The input transform is log1p followed by standardisation, with statistics from the training
  boxes only; it is saved in the run directory (``transform.json``).
* A loaded region (:class:`BoxData`) holds the transformed input, the target counts and the voxels
  crops focus on; `galaxygen.training.crops` cuts the training crops from it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import numpy as np
import torch

from galaxygen.box import PARAM_NAMES, Box, read_box, read_header
from galaxygen.catalog import voxel_index
from galaxygen.config import require
from galaxygen.errors import ConfigError, GalaxygenError
from galaxygen.fingerprint import array_hash, fingerprint, params_hash


@dataclass(frozen=True)
class DataConfig:
    """How crops are drawn and boxes split.

    crop : target cube side [voxels]; pad : input context on each side [voxels].
    focus : share of crops centred on a galaxy/halo (``focus_on``), the rest uniform.
    unbiased : give each crop the weight p_uniform / p_drawn (`galaxygen.training.crops.corner_density`),
        so that a loss weighted by it has the expectation it has over uniform crops (whole boxes only).
    augment : draw one of the 48 cube symmetries per crop.
    velocity : add the 3 DM velocity channels (boxes must hold ``fields/dm_velocity``).
    halos : add a halo channel, log1p of the FoF halo mass centred in each voxel (`halo_mass_grid`;
        boxes must hold ``catalogs/halos``): the HOD's information, the talk's "focus training on halos".
    validation, test : fractions of the boxes (or of the slab axis for one box) held out.
    train_boxes, validation_boxes, test_boxes : explicit box names (override the fractions).
    """

    crop: int = 32
    pad: int = 16
    focus: float = 0.5
    focus_on: Literal["galaxies", "halos"] = "galaxies"
    jitter: float = 0.5
    unbiased: bool = False
    augment: bool = True
    velocity: bool = False
    halos: bool = False
    log1p: bool = True
    standardise: bool = True
    validation: float = 0.25
    test: float = 0.0
    split_seed: int = 0
    slab_axis: int = 0
    train_boxes: tuple[str, ...] | None = None
    validation_boxes: tuple[str, ...] | None = None
    test_boxes: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        require(self.crop >= 1, f"data.crop: expected >= 1 voxel, got {self.crop}")
        require(self.pad >= 0, f"data.pad: expected >= 0 voxels, got {self.pad}")
        require(0.0 <= self.focus <= 1.0, f"data.focus: expected a share in [0, 1], got {self.focus}")
        require(0.0 <= self.jitter <= 1.0, f"data.jitter: expected a fraction of the crop in [0, 1], got {self.jitter}")
        require(not self.unbiased or self.focus < 1.0,
                f"data.unbiased: needs data.focus < 1 (uniform crops must be drawn too), got {self.focus}")
        require(0.0 <= self.validation < 1.0 and 0.0 <= self.test < 1.0 and self.validation + self.test < 1.0,
                f"data.validation + data.test: expected fractions summing below 1, got {self.validation}, {self.test}")
        require(self.slab_axis in (0, 1, 2), f"data.slab_axis: expected 0, 1 or 2, got {self.slab_axis}")


# ----------------------------------------------------------------------------- splits

@dataclass(frozen=True)
class Region:
    """A box file, or a contiguous slab ``[lo, hi)`` of it along ``axis`` (hi=None: whole box)."""

    path: str
    name: str
    axis: int = 0
    lo: int = 0
    hi: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "name": self.name, "axis": self.axis, "lo": self.lo, "hi": self.hi}


@dataclass(frozen=True)
class BoxRecord:
    """A box a run started with: its name, absolute path and :func:`box_fingerprint`."""

    name: str
    path: str
    fingerprint: str

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "path": self.path, "fingerprint": self.fingerprint}


@dataclass(frozen=True)
class Split:
    """Regions for training, validation and test; `boxes` records every box given (all of them, also
    those an explicit name list leaves unused), so that `--resume` can check it gets the same ones."""

    train: tuple[Region, ...]
    validation: tuple[Region, ...]
    test: tuple[Region, ...] = ()
    boxes: tuple[BoxRecord, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: [r.as_dict() for r in getattr(self, k)] for k in ("train", "validation", "test")}
        out["boxes"] = [b.as_dict() for b in self.boxes]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Split":
        parts = {k: tuple(Region(**r) for r in data.get(k, [])) for k in ("train", "validation", "test")}
        return cls(**parts, boxes=tuple(BoxRecord(**b) for b in data.get("boxes", [])))


def box_fingerprint(path: str | Path) -> str:
    """Content hash (`galaxygen.fingerprint`) of what training reads from a box file: grid, box size,
    redshift, params, its grids (DM, galaxies, DM velocity) and its halo catalogue (``catalogs/halos``
    pos and mass: the halo channel and halo-focused crops). Meta and the galaxy catalogue are left out."""
    box = read_box(path, catalogs=True, velocity=True)
    parts = {"grid": repr(box.grid), "box_size": repr(float(box.box_size)), "redshift": repr(float(box.redshift)),
             "params": params_hash(box.params), "dm": array_hash(box.dm), "galaxies": array_hash(box.galaxies)}
    if box.dm_velocity is not None:
        parts["dm_velocity"] = array_hash(box.dm_velocity)
    for key in ("pos", "mass"):
        if box.halos is not None and key in box.halos:
            parts[f"halos/{key}"] = array_hash(np.asarray(box.halos[key]))
    return fingerprint(parts)


def box_records(paths: Sequence[str | Path]) -> tuple[BoxRecord, ...]:
    """Name (the file's ``name`` attribute), absolute path and fingerprint of each box file."""
    out = []
    for p in paths:
        path = os.path.abspath(p)
        out.append(BoxRecord(read_header(path).name, path, box_fingerprint(path)))
    names = [b.name for b in out]
    if len(set(names)) != len(names):
        raise ConfigError(f"box names must be unique within a training set, got {sorted(names)}")
    return tuple(out)


def resume_split(split: Split, paths: Sequence[str | Path], where: str) -> Split:
    """The saved split of a run being resumed, pointed at the box files `paths` given now.

    They must be the boxes the run started with: the same names and the same content (fingerprints
    recorded in `where`, the run's split.json); their absolute paths replace the recorded ones, so a
    run resumes from any working directory, also after its boxes moved. A split saved without box
    records (an older run) is returned as it is.
    """
    if not split.boxes:
        return split
    now = {b.name: b for b in box_records(paths)}
    saved = {b.name: b for b in split.boxes}
    if set(now) != set(saved):
        diff = [f"{label} {names}" for label, names in (("missing", sorted(set(saved) - set(now))),
                                                         ("not in the run", sorted(set(now) - set(saved)))) if names]
        raise ConfigError(f"--boxes: not the boxes this run started with (recorded in {where}): "
                          f"{', '.join(diff)}; resume with the same boxes or start a new run")
    for name, b in sorted(now.items()):
        if b.fingerprint != saved[name].fingerprint:
            raise GalaxygenError(f"{b.path}: box {name!r} differs in content from the one this run started "
                                 f"with ({saved[name].path}, fingerprint in {where}); resume with the same "
                                 f"boxes or start a new run")
    def repoint(part: tuple[Region, ...]) -> tuple[Region, ...]:
        return tuple(replace(r, path=now[r.name].path) for r in part)
    return Split(repoint(split.train), repoint(split.validation), repoint(split.test),
                 tuple(now[b.name] for b in split.boxes))


def split_boxes(paths: Sequence[str | Path], cfg: DataConfig) -> Split:
    """Split box files into train / validation / test, by whole boxes or (one box) by slabs.

    Names come from the files (``read_info``-cheap attribute read); regions hold absolute paths and
    the split records every box's fingerprint (see :func:`resume_split`). With explicit name lists
    the boxes not named are unused; with fractions, ``round(fraction * n)`` boxes (at least one for
    a positive validation fraction) are drawn with ``split_seed``.
    """
    if not paths:
        raise ConfigError("no box files to train on")
    records = box_records(paths)
    names, paths = [b.name for b in records], [b.path for b in records]
    by_name = dict(zip(names, paths))
    if cfg.train_boxes is not None:
        def pick(lst, key):
            missing = [n for n in (lst or ()) if n not in by_name]
            if missing:
                raise ConfigError(f"data.{key}: no box named {missing}; found {sorted(names)}")
            return tuple(Region(by_name[n], n) for n in (lst or ()))
        split = Split(pick(cfg.train_boxes, "train_boxes"), pick(cfg.validation_boxes, "validation_boxes"),
                      pick(cfg.test_boxes, "test_boxes"))
    elif len(paths) == 1:
        n = read_header(paths[0]).grid
        n_val = int(round(cfg.validation * n))
        n_test = int(round(cfg.test * n))
        n_train = n - n_val - n_test
        a = cfg.slab_axis
        split = Split((Region(paths[0], names[0], a, 0, n_train),),
                      (Region(paths[0], names[0], a, n_train, n_train + n_val),) if n_val else (),
                      (Region(paths[0], names[0], a, n_train + n_val, n),) if n_test else ())
    else:
        order = np.random.default_rng(cfg.split_seed).permutation(len(paths))
        n_val = max(1, int(round(cfg.validation * len(paths)))) if cfg.validation > 0 else 0
        n_test = int(round(cfg.test * len(paths)))
        if n_val + n_test >= len(paths):
            raise ConfigError(f"data.validation/test: {len(paths)} boxes leave none for training")
        regions = [Region(paths[i], names[i]) for i in order]
        split = Split(tuple(sorted(regions[n_val + n_test:], key=lambda r: r.name)),
                      tuple(sorted(regions[:n_val], key=lambda r: r.name)),
                      tuple(sorted(regions[n_val:n_val + n_test], key=lambda r: r.name)))
    if not split.train:
        raise ConfigError("the split leaves no training boxes")
    return replace(split, boxes=records)


def region_mask(region: Region, grid: int) -> np.ndarray:
    """Boolean (N,N,N) mask of the voxels in `region`."""
    mask = np.zeros((grid,) * 3, dtype=bool)
    sl = [slice(None)] * 3
    sl[region.axis] = slice(region.lo, grid if region.hi is None else region.hi)
    mask[tuple(sl)] = True
    return mask


# ----------------------------------------------------------------------------- transform

HALO_MASS_UNIT = 1e10  # [Msun/h], the unit of the halo channel's masses


def halo_mass_grid(pos: np.ndarray, mass: np.ndarray, box_size: float, grid: int) -> np.ndarray:
    """(N, N, N) float64: total mass [HALO_MASS_UNIT] of the halos whose centre `pos` (h, 3) [Mpc/h,
    periodic] lies in each voxel (NGP), from their masses `mass` (h,) [Msun/h]; zero where none is."""
    flat = voxel_index(np.asarray(pos, np.float64).reshape(-1, 3), grid, box_size)
    out = np.bincount(flat, weights=np.asarray(mass, np.float64) / HALO_MASS_UNIT, minlength=grid ** 3)
    return out.astype(np.float64).reshape((grid,) * 3)


def halos_missing(where: str, run: str) -> str:
    """The one-line error for an input without the halo catalogue that `run` (a name) needs."""
    return (f"{where}: catalogs/halos (pos, mass) missing, and {run} takes a halo channel (data.halos: true, its "
            f"own or its cascade's): make the box with `galaxygen simulate`, or ingest it with --halos")


def box_halo_grid(box: Box, where: str) -> np.ndarray:
    """`halo_mass_grid` of a box's ``catalogs/halos``; GalaxygenError naming `where` when it has none."""
    if box.halos is None or "pos" not in box.halos or "mass" not in box.halos:
        raise GalaxygenError(halos_missing(where, "the run"))
    return halo_mass_grid(box.halos["pos"], box.halos["mass"], box.box_size, box.grid)

@dataclass(frozen=True)
class Transform:
    """Input transform x -> (f(x) - mean) / std per channel, f = log1p for DM counts.

    Channel 0 is the DM count, channels 1-3 (optional) the DM velocity [km/s] (standardised, no
    log), the last (``halos``) the halo mass grid (`halo_mass_grid`, log1p like the DM).
    ``target_mean``/``target_std`` are the same statistics of log1p(galaxies) for models that
    regress a standardised target (e.g. the diffusion model).
    """

    log1p: bool
    mean: tuple[float, ...]
    std: tuple[float, ...]
    target_mean: float = 0.0
    target_std: float = 1.0
    halos: bool = False

    @property
    def channels(self) -> int:
        return len(self.mean)

    @property
    def velocity(self) -> bool:
        """Whether channels 1-3 are the DM velocity."""
        return self.channels - 1 - int(self.halos) == 3

    def apply(self, dm: np.ndarray, velocity: np.ndarray | None = None,
              halo_mass: np.ndarray | None = None) -> np.ndarray:
        """(C, N, N, N) float32 network input from DM counts (N,N,N), velocity (3,N,N,N) and the halo
        mass grid (N,N,N) (`halo_mass_grid`), each used when the transform takes it."""
        x = np.log1p(dm) if self.log1p else dm
        chans = [x[None]]
        if self.velocity:
            if velocity is None:
                raise ConfigError("the model takes DM velocity channels but the box has no fields/dm_velocity")
            chans.append(velocity)
        if self.halos:
            if halo_mass is None:
                raise ConfigError("the model takes a halo channel but no halo mass grid was given")
            chans.append(np.log1p(halo_mass)[None])
        out = np.concatenate(chans, axis=0).astype(np.float32)
        mean = np.asarray(self.mean, np.float32)[:, None, None, None]
        std = np.asarray(self.std, np.float32)[:, None, None, None]
        return (out - mean) / std

    def inputs(self, box: Box, where: str) -> np.ndarray:
        """`apply` to a box's DM, velocity and halos (`box_halo_grid`; `where` names the box in errors)."""
        return self.apply(box.dm, box.dm_velocity, box_halo_grid(box, where) if self.halos else None)

    def apply_target(self, galaxies: np.ndarray | torch.Tensor):
        """Standardised log1p of galaxy counts."""
        lib = torch if isinstance(galaxies, torch.Tensor) else np
        return (lib.log1p(galaxies) - self.target_mean) / self.target_std

    def invert_target(self, y):
        """Counts from a standardised log1p target (inverse of :meth:`apply_target`)."""
        lib = torch if isinstance(y, torch.Tensor) else np
        return lib.expm1(y * self.target_std + self.target_mean)

    def as_dict(self) -> dict[str, Any]:
        return {"log1p": self.log1p, "mean": list(self.mean), "std": list(self.std),
                "target_mean": self.target_mean, "target_std": self.target_std, "halos": self.halos}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Transform":
        return cls(bool(d["log1p"]), tuple(map(float, d["mean"])), tuple(map(float, d["std"])),
                   float(d.get("target_mean", 0.0)), float(d.get("target_std", 1.0)), bool(d.get("halos", False)))


def fit_transform(regions: Sequence[Region], cfg: DataConfig) -> Transform:
    """Statistics of the transformed inputs over the training regions only (float64 sums)."""
    nch = 1 + 3 * cfg.velocity + cfg.halos
    s1, s2, cnt = np.zeros(nch), np.zeros(nch), 0
    t1 = t2 = 0.0
    for r in regions:
        box = read_box(r.path, catalogs=cfg.halos, velocity=cfg.velocity)
        m = region_mask(r, box.grid)
        x = np.log1p(box.dm[m].astype(np.float64)) if cfg.log1p else box.dm[m].astype(np.float64)
        chans = [x]
        if cfg.velocity:
            if box.dm_velocity is None:
                raise ConfigError(f"{r.path}: data.velocity is true but the box has no fields/dm_velocity")
            chans += [box.dm_velocity[i][m].astype(np.float64) for i in range(3)]
        if cfg.halos:
            chans.append(np.log1p(box_halo_grid(box, r.path)[m]))
        for i, c in enumerate(chans):
            s1[i] += c.sum()
            s2[i] += (c * c).sum()
        g = np.log1p(box.galaxies[m].astype(np.float64))
        t1 += g.sum()
        t2 += (g * g).sum()
        cnt += int(m.sum())
    mean = s1 / cnt
    std = np.sqrt(np.maximum(s2 / cnt - mean ** 2, 0.0))
    tm = t1 / cnt
    ts = math.sqrt(max(t2 / cnt - tm * tm, 0.0))
    if not cfg.standardise:
        mean, std = np.zeros(nch), np.ones(nch)
    std = np.where(std > 0, std, 1.0)
    return Transform(cfg.log1p, tuple(map(float, mean)), tuple(map(float, std)), float(tm), float(ts if ts > 0 else 1.0),
                     cfg.halos)


# ----------------------------------------------------------------------------- loaded boxes

@dataclass(eq=False)
class BoxData:
    """A region of one box in memory: transformed input, target counts, focus voxels, extras."""

    region: Region
    box: Box
    inputs: torch.Tensor          # (C, N, N, N) float32, transformed
    target: torch.Tensor          # (N, N, N) float32 counts
    params: torch.Tensor          # (len(PARAM_NAMES),) float32, NaN where unknown
    focus: np.ndarray             # (m, 3) int voxel indices inside the region
    extras: dict[str, torch.Tensor] = field(default_factory=dict)  # (N, N, N) each

    @property
    def grid(self) -> int:
        return self.box.grid

    def mask(self) -> np.ndarray:
        return region_mask(self.region, self.box.grid)


def load_region(region: Region, transform: Transform, cfg: DataConfig) -> BoxData:
    """Read a region's box, transform its input and list its focus voxels."""
    box = read_box(region.path, catalogs=cfg.focus_on == "halos" or transform.halos, velocity=cfg.velocity)
    inputs = torch.from_numpy(transform.inputs(box, region.path))
    n = box.grid
    if cfg.focus_on == "halos" and box.halos is not None and "pos" in box.halos:
        vox = np.stack(np.unravel_index(voxel_index(box.halos["pos"], n, box.box_size), (n, n, n)), axis=1)
    else:
        vox = np.argwhere(box.galaxies > 0)
    inside = region_mask(region, n)[vox[:, 0], vox[:, 1], vox[:, 2]] if len(vox) else np.zeros(0, bool)
    params = torch.tensor([box.params.get(k, float("nan")) for k in PARAM_NAMES], dtype=torch.float32)
    return BoxData(region, box, inputs, torch.from_numpy(box.galaxies), params, vox[inside])
