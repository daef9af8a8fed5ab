"""Training crops: random periodic crops of loaded boxes with the cube's symmetries, and the sample
stream each process draws.

* A crop is a cube of ``crop`` target voxels with ``pad`` voxels of input context on each side,
  cut from the periodic box; a share ``focus`` of crops is centred (with jitter) on a galaxy or halo
  ("focus training on halos"); each crop gets one of the 48 symmetries of the cube, velocity
  components permuted and sign-flipped with the axes.
* With ``data.unbiased`` each crop carries ``weight`` = p_uniform / p_drawn of its corner
  (`corner_density`): importance weights, so that a loss weighted by them has the expectation of
  the loss over uniform crops, whatever the focus: a generative model learns the true distribution
  of galaxy fields and a Poisson regressor calibrated rates, not ones enriched in galaxies.
* Sample ``n`` of a :class:`CropDataset` depends only on (seed, n), so training is reproducible,
  resumable, and the same global batch is drawn whatever the number of processes
  (:class:`StreamSampler`).
"""

from __future__ import annotations

import itertools
from typing import Iterator, Sequence

import numpy as np
import torch
from scipy.ndimage import uniform_filter1d
from torch.utils.data import Dataset, Sampler

from galaxygen.errors import ConfigError
from galaxygen.training.data import BoxData, DataConfig
from galaxygen.training.tiling import periodic_window


# ----------------------------------------------------------------------------- symmetries

SYMMETRIES: tuple[tuple[tuple[int, int, int], tuple[bool, bool, bool]], ...] = tuple(
    (perm, flips) for perm in itertools.permutations(range(3))
    for flips in itertools.product((False, True), repeat=3))
"""The 48 symmetries of the cube: an axis permutation and a flip per (permuted) axis."""


def apply_symmetry(x: torch.Tensor, k: int, vector: bool = False) -> torch.Tensor:
    """Symmetry `k` of the cube applied to x (C, N, N, N).

    With ``vector=True`` x holds the 3 components of a vector field (C == 3): components are
    permuted with the axes and negated along flipped axes.
    """
    perm, flips = SYMMETRIES[k]
    y = x.permute(0, *(p + 1 for p in perm))
    dims = [i + 1 for i in range(3) if flips[i]]
    if dims:
        y = y.flip(dims)
    if vector:
        sign = torch.tensor([-1.0 if f else 1.0 for f in flips], dtype=y.dtype)[:, None, None, None]
        y = y[list(perm)] * sign
    return y.contiguous()


# ----------------------------------------------------------------------------- crops

def jitter_radius(cfg: DataConfig) -> int:
    """Half-width J [voxels] of a focused crop's jitter: its centre is a focus voxel + U{-J..J}³."""
    return int(cfg.jitter * cfg.crop / 2)


def corner_density(focus: np.ndarray, grid: int, cfg: DataConfig) -> np.ndarray:
    """(N, N, N) float64: probability that a crop of a whole periodic box has its lower corner at each
    voxel, ``(1 - f) / N³ + f K(u)`` (`CropDataset.corner`): uniform corners with probability 1 - f,
    else a focus voxel v drawn uniformly from the M of `focus` (m, 3) and the corner
    ``v + U{-J..J}³ - crop // 2``, so that ``K(u) = #{v : u + crop//2 - v ∈ [-J, J]³ (mod N)} / (M (2J+1)³)``.
    Sums to 1 over the box. Without focus voxels the crops are uniform."""
    n, f = grid, cfg.focus
    uniform = np.full((n,) * 3, 1.0 / n ** 3)
    if not len(focus) or f == 0:
        return uniform
    w = 2 * jitter_radius(cfg) + 1
    if w > n:
        raise ConfigError(f"data.unbiased: the focus jitter ({w} voxels wide) is wider than the box ({n} voxels): "
                          f"lower data.jitter or data.crop")
    flat = np.ravel_multi_index(tuple(np.asarray(focus, np.int64).T % n), (n,) * 3)
    count = np.bincount(flat, minlength=n ** 3).reshape((n,) * 3).astype(np.float64)
    for axis in range(3):  # periodic box sum over the (2J+1)^3 window centred on each voxel
        count = uniform_filter1d(count, w, axis=axis, mode="wrap") * w
    count = np.roll(count, shift=-(cfg.crop // 2), axis=(0, 1, 2))  # centre = corner + crop // 2
    return (1.0 - f) * uniform + f * np.maximum(count, 0.0) / (len(focus) * w ** 3)


class CropDataset(Dataset):
    """Random periodic crops over a list of BoxData; item n depends only on (seed, n).

    Each item is a dict: ``input`` (C, crop+2pad, ...) float32, ``target`` (1, crop, crop, crop)
    counts, ``params`` (7,) and each extra field (1, crop, crop, crop). The dataset is unbounded:
    any non-negative index is valid (``len`` is a nominal epoch, one crop per target volume).
    """

    def __init__(self, boxes: Sequence[BoxData], cfg: DataConfig, seed: int = 0):
        if not boxes:
            raise ConfigError("no training boxes")
        self.boxes = list(boxes)
        self.cfg = cfg
        self.seed = int(seed)
        for b in self.boxes:
            width = (b.grid if b.region.hi is None else b.region.hi) - b.region.lo
            if width < cfg.crop:
                raise ConfigError(f"data.crop ({cfg.crop}) is wider than the training slab of {b.region.name} "
                                  f"({width} voxels): crops would reach into held-out voxels")
        vols = np.array([b.mask().sum() for b in self.boxes], np.float64)
        self.weights = vols / vols.sum()
        self.velocity = cfg.velocity
        self.density: list[np.ndarray] = []
        if cfg.unbiased:
            for b in self.boxes:
                if b.region.hi is not None and b.region.hi - b.region.lo < b.grid:
                    raise ConfigError(f"data.unbiased: {b.region.name} is split in slabs (one training box); "
                                      f"the crop weights need whole training boxes")
                self.density.append(corner_density(b.focus, b.grid, cfg))

    def __len__(self) -> int:
        total = sum(b.mask().sum() for b in self.boxes)
        return max(1, int(total // self.cfg.crop ** 3))

    def corner(self, rng: np.random.Generator, b: BoxData) -> np.ndarray:
        """Lower corner of the target crop (voxels; may wrap), with the crop inside the region."""
        cfg, n, r = self.cfg, b.grid, b.region
        c = cfg.crop
        if len(b.focus) and rng.random() < cfg.focus:
            centre = b.focus[rng.integers(len(b.focus))]
            jit = rng.integers(-jitter_radius(cfg), jitter_radius(cfg) + 1, size=3)
            corner = centre + jit - c // 2
        else:
            corner = rng.integers(0, n, size=3)
        hi = n if r.hi is None else r.hi
        width = hi - r.lo
        if width < n:  # keep the target inside the slab along its axis
            span = max(width - c, 0)
            corner[r.axis] = r.lo + int(np.clip(corner[r.axis] - r.lo, 0, span))
        return corner

    def __getitem__(self, n: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, int(n)])
        i = rng.choice(len(self.boxes), p=self.weights)
        b = self.boxes[i]
        corner = self.corner(rng, b)
        cfg = self.cfg
        x = periodic_window(b.inputs, tuple(int(v) - cfg.pad for v in corner), cfg.crop + 2 * cfg.pad)
        y = periodic_window(b.target[None], tuple(int(v) for v in corner), cfg.crop)
        extras = {k: periodic_window(v[None], tuple(int(c) for c in corner), cfg.crop) for k, v in b.extras.items()}
        if cfg.augment:
            k = int(rng.integers(len(SYMMETRIES)))
            if self.velocity:  # DM, the velocity vector, then any further scalar channel (halos)
                x = torch.cat([apply_symmetry(x[:1], k), apply_symmetry(x[1:4], k, vector=True),
                               apply_symmetry(x[4:], k)])
            else:
                x = apply_symmetry(x, k)
            y = apply_symmetry(y, k)
            extras = {name: apply_symmetry(v, k) for name, v in extras.items()}
        item = {"input": x.contiguous(), "target": y.contiguous(), "params": b.params}
        if self.density:
            dens = self.density[i][tuple(int(v) % b.grid for v in corner)]
            item["weight"] = torch.tensor(1.0 / (b.grid ** 3 * dens), dtype=torch.float32)
        item.update({name: v.contiguous() for name, v in extras.items()})
        return item


class StreamSampler(Sampler[int]):
    """Infinite stream of sample ids for one rank: global batch s holds ids [s B, (s+1) B).

    Rank r of W takes the contiguous share ``[s B + r b, s B + (r+1) b)`` with b = B / W, so W
    processes together see exactly the global batch of one process. Starts at ``start_step``
    (resume) and stops after ``stop_step`` when given.
    """

    def __init__(self, global_batch: int, rank: int = 0, world_size: int = 1, start_step: int = 0,
                 stop_step: int | None = None):
        if global_batch % world_size:
            raise ConfigError(f"train.batch_size ({global_batch}) must be a multiple of the number of "
                              f"processes ({world_size})")
        self.B, self.rank, self.world = global_batch, rank, world_size
        self.b = global_batch // world_size
        self.start, self.stop = start_step, stop_step

    def __iter__(self) -> Iterator[int]:
        step = self.start
        while self.stop is None or step < self.stop:
            base = step * self.B + self.rank * self.b
            yield from range(base, base + self.b)
            step += 1

    def __len__(self) -> int:
        if self.stop is None:
            return 2 ** 62
        return max(0, self.stop - self.start) * self.b
