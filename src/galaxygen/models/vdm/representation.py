"""What the diffusion model diffuses, and how a sample becomes integer galaxy counts.

Two representations of the sparse count field n (galaxies per voxel), chosen by ``representation``:

- ``counts``: the diffused variable is the count transform of n itself (`transform.CountTransform`);
  a sample is rounded back to integers (`CountTransform.inverse`).
- ``rate``: the diffused variable is the transform of a smooth expected-count field λ, the counts
  convolved with a periodic Gaussian of ``smoothing`` voxels (standard deviation; 0: the counts
  themselves), which keeps the total (the kernel's k = 0 mode is 1). A sample λ is turned into
  counts by a Poisson draw, n ~ Poisson(λ) (a Cox process: the point-process step of
  arXiv:2403.10648's discussion of sparse tracers). The draw of sample k of a run seeded `seed`
  uses ``numpy.random.default_rng([seed, k, POISSON_STREAM])``, so it is reproducible and
  independent of the diffusion's own noise.

Cascade (``cascade``: a trained two-phase run): the two-phase network's expected counts ρ (its
regressor's rate, masked by its classifier as for its own Poisson counts; `RateSource`) are an extra
conditioning channel, and the model diffuses the residual d = x(λ) − x(ρ) in transformed units. A sample d gives
λ = ρ + (ρ + f)·expm1(d·scale) (f, scale: the count transform's offset and scale), which is
exactly ρ when d = 0: a cascade whose residual is zero samples exactly Poisson(ρ).
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import torch

from galaxygen.errors import ConfigError
from galaxygen.mesh import integer_frequencies, irfft3, rfft3
from galaxygen.models.vdm.transform import CountTransform

#: A cascade's rate channel: box -> the expected counts ρ (N, N, N) float32 of a trained run on it.
#: Built from the run directory by `galaxygen.models.registry.expected_counts` (families do not
#: import each other, so the registry hands it to the VDM task).
RateSource = Callable[[Any], np.ndarray]

POISSON_STREAM = 0x504F4953  # "POIS": the third SeedSequence word of a sample's Poisson draw
REPRESENTATIONS = ("counts", "rate")


def gaussian_smooth(field: np.ndarray, sigma: float) -> np.ndarray:
    """Periodic Gaussian smoothing of a cubic (N, N, N) field, kernel std `sigma` [voxels].

    In Fourier space W(k) = exp(−½ (2π j σ / N)²) per axis (j the integer wavenumber), so W(0) = 1
    and the sum of the field is kept; negative round-off is clipped to 0. float32 output.
    """
    f = np.asarray(field, dtype=np.float64)
    if sigma <= 0:
        return f.astype(np.float32)
    n = f.shape[0]
    if f.shape != (n, n, n):
        raise ConfigError(f"gaussian_smooth: expected a cubic field, got shape {f.shape}")
    kx, ky, kz = (2 * math.pi * j.double() / n for j in integer_frequencies(n))
    w = torch.exp(-0.5 * sigma * sigma * (kx ** 2 + ky ** 2 + kz ** 2))
    out = irfft3(rfft3(torch.from_numpy(f)) * w, (n, n, n)).numpy()
    return np.clip(out, 0.0, None).astype(np.float32)


def poisson_counts(rate: torch.Tensor | np.ndarray, seed: int, k: int) -> np.ndarray:
    """Poisson(rate) counts (float32, same shape) drawn with default_rng([seed, k, POISSON_STREAM])."""
    lam = np.asarray(torch.as_tensor(rate).detach().cpu().numpy(), dtype=np.float64)
    rng = np.random.default_rng([int(seed), int(k), POISSON_STREAM])
    return rng.poisson(np.clip(lam, 0.0, None)).astype(np.float32)


def cascade_rate(rho: torch.Tensor, residual: torch.Tensor, transform: CountTransform) -> torch.Tensor:
    """λ = ρ + (ρ + f)·expm1(d·scale), capped at the transform's max_count; = ρ exactly for d = 0.

    ρ (any shape) is the two-phase expected count, d the sampled residual in transformed units.
    """
    rho = rho.to(residual.device).float()
    d = residual.float() * transform.scale
    if transform.max_count is not None:
        d = torch.minimum(d, math.log(transform.max_count + transform.offset) - torch.log(rho + transform.offset))
    return (rho + (rho + transform.offset) * torch.expm1(d)).clamp_min(0.0)
