"""Counts ↔ continuous fields for the diffusion model (documented in docs/diffusion.md).

The diffusion runs on continuous fields. Counts per voxel n (galaxies or DM particles) are mapped
with y = log1p(n) and then an affine map x = (y − shift) / scale:

- ``unit`` (the default for galaxies): shift = scale = ln(2)/2, so an empty voxel is x = −1 and a
  voxel with one galaxy is x = +1 (2 galaxies → 2.17, 10 → 5.92), the [−1, 1] range for which the
  VDM schedule (γ from −13.3 to 5) was designed (arXiv:2107.00630). With over 99 % of voxels
  empty, a standardisation would put one galaxy ~20 standard deviations out, which the prior
  at γ(1) could not reach; the fixed map keeps the gap between 0 and 1 galaxy at 2 units.
- ``standardize`` (the default for DM, as Ono et al. arXiv:2403.10648): shift and scale are the
  mean and standard deviation of log1p(n) over the training boxes.

Back to counts (galaxies): n = round(min(max(expm1(x·scale + shift), 0), max_count)), i.e. a voxel
holds a galaxy when expm1 of the sample is at least 0.5 (x ≥ 2·ln(1.5)/ln(2) − 1 ≈ 0.17 in the
``unit`` map). ``max_count`` (twice the largest count per voxel of the training boxes, at least 2)
caps what an untrained or diverging model could produce (expm1 overflows float32 near 88).

``offset`` f generalises log1p to y = log(n + f) (f = 1: log1p, the default). The ``rate``
representation (`representation.py`) diffuses a smooth, non-integer expected-count field λ with a
small f (0.1 in the configs: empty → −1, one galaxy → +1 as above, 0.05 galaxies → −0.58), read back
as λ = max(exp(y) − f, 0) (`rate`) and turned into counts by a Poisson draw.

The conditioning parameters are standardised by `galaxygen.training.params.ParamTransform`,
shared with the conditioned two-phase network.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import numpy as np
import torch

from galaxygen.errors import ConfigError


@dataclass(frozen=True)
class CountTransform:
    """x = (log1p(n) − shift) / scale and back; see the module docstring."""

    shift: float
    scale: float
    max_count: float | None = None
    offset: float = 1.0

    def __post_init__(self) -> None:
        if not (self.offset > 0 and self.scale > 0):
            raise ConfigError(f"count transform: offset and scale must be > 0, got {self.offset}, {self.scale}")

    @classmethod
    def unit(cls, offset: float = 1.0) -> "CountTransform":
        """The fixed map with n = 0 → −1 and n = 1 → +1 for y = log(n + offset)."""
        lo, hi = math.log(offset), math.log1p(offset)
        return cls(shift=(lo + hi) / 2.0, scale=(hi - lo) / 2.0, offset=float(offset))

    @classmethod
    def fit(cls, fields: Iterable[np.ndarray], offset: float = 1.0) -> "CountTransform":
        """Standardise log(counts + offset) over all voxels of `fields` (streamed, float64 sums)."""
        n = s1 = s2 = 0.0
        for f in fields:
            y = np.log(np.asarray(f, dtype=np.float64) + offset)
            n, s1, s2 = n + y.size, s1 + y.sum(), s2 + (y * y).sum()
        if n == 0:
            raise ConfigError("cannot fit a transform on no boxes")
        mean = s1 / n
        std = math.sqrt(max(s2 / n - mean * mean, 0.0))
        return cls(shift=float(mean), scale=float(std) if std > 1e-8 else 1.0, offset=float(offset))

    def forward(self, counts: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Counts (any shape, ≥ 0) -> continuous field, float32 tensor."""
        c = torch.as_tensor(counts, dtype=torch.float32).clamp_min(0)
        y = torch.log1p(c) if self.offset == 1.0 else torch.log(c + self.offset)
        return (y - self.shift) / self.scale

    def rate(self, x: torch.Tensor) -> torch.Tensor:
        """Continuous field -> non-negative expected counts λ = max(exp(y) − offset, 0), capped at
        `max_count` (float32)."""
        y = x.float() * self.scale + self.shift
        if self.max_count is not None:
            y = y.clamp_max(math.log(self.max_count + self.offset))
        lam = torch.expm1(y) if self.offset == 1.0 else torch.exp(y) - self.offset
        return lam.clamp_min(0.0)

    def inverse(self, x: torch.Tensor) -> torch.Tensor:
        """Continuous field -> non-negative integer counts (float32), rounding in count space."""
        return torch.round(self.rate(x))

    def with_max_count(self, fields: Iterable[np.ndarray]) -> "CountTransform":
        """A copy capped at 2 × the largest count in `fields` (at least 2)."""
        top = max((float(np.max(f)) for f in fields if np.size(f)), default=1.0)
        return CountTransform(self.shift, self.scale, max(2.0, 2.0 * top), self.offset)

    def as_dict(self) -> dict[str, float | None]:
        return {"shift": self.shift, "scale": self.scale, "max_count": self.max_count, "offset": self.offset}


def fit_count_transform(kind: str, fields: Iterable[np.ndarray], offset: float = 1.0) -> CountTransform:
    """'unit' (fixed map) or 'standardize' (fit on `fields`), capped by `fields`' largest count;
    y = log(n + offset)."""
    fields = list(fields)
    if kind == "unit":
        return CountTransform.unit(offset).with_max_count(fields)
    if kind == "standardize":
        return CountTransform.fit(fields, offset).with_max_count(fields)
    raise ConfigError(f"transform {kind!r}: expected 'unit' or 'standardize'")
