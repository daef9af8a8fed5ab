"""Halo occupation distribution (HOD) models: mean occupation and random draws.

Three models, one registry (``MODELS``), masses in Msun/h and given as log10 parameters:

``seed3``  the design's 3-parameter form: N ~ Poisson((M/M1)^α) for M > M_min, else 0.
``central-satellite``  one central if M > M_min, plus Poisson((M/M1)^α) satellites
    (the common form, e.g. Pylians ``HOD_library``).
``zheng07``  Zheng et al. 2007 (arXiv:astro-ph/0703457, eqs. 2-3; halotools ``zheng07``):
    ⟨Ncen⟩ = ½[1 + erf((log10 M − log10 M_min)/σ_logM)],
    ⟨Nsat⟩ = ⟨Ncen⟩ ((M − M0)/M1)^α for M > M0, else 0.

Draws: a central is a Bernoulli variable with mean ⟨Ncen⟩ and satellites are Poisson with mean
((M − M0)/M1)^α, drawn only in halos that got a central, so the satellite mean is exactly the
formula above. In ``seed3`` the first galaxy of a halo is labelled its central (it is placed at
the halo centre), so ⟨Ncen⟩ = 1 − exp(−λ) and ⟨Nsat⟩ = λ − ⟨Ncen⟩ there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import ClassVar, Mapping

import numpy as np
from scipy.special import erf

from galaxygen.config import require
from galaxygen.errors import ConfigError


def _mass(mass) -> np.ndarray:
    """Halo masses as float64 [Msun/h]."""
    return np.asarray(mass, dtype=np.float64)


def _power(ratio: np.ndarray, alpha: float) -> np.ndarray:
    """ratio^α for ratio > 0, else 0 (no warnings for empty or zero entries)."""
    out = np.zeros_like(ratio)
    pos = ratio > 0
    out[pos] = np.exp(alpha * np.log(ratio[pos]))
    return out


@dataclass(frozen=True)
class HODModel:
    """Base class: parameters are the dataclass fields (log10 masses in Msun/h, α, σ_logM)."""

    name: ClassVar[str] = ""

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            require(isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isnan(v),
                    f"{self.name}: parameter {f.name} must be a number, got {v!r}")
            object.__setattr__(self, f.name, float(v))
        require(self.alpha >= 0, f"{self.name}: alpha must be >= 0, got {self.alpha}")

    @classmethod
    def param_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    def params(self) -> dict[str, float]:
        """Parameters as a plain dict (the keys of ``param_names``)."""
        return {k: getattr(self, k) for k in self.param_names()}

    # -- occupation ---------------------------------------------------------------------------
    def mean_central(self, mass) -> np.ndarray:
        """⟨Ncen|M⟩ for halo masses `mass` [Msun/h], shape (n,)."""
        raise NotImplementedError

    def mean_satellite(self, mass) -> np.ndarray:
        """⟨Nsat|M⟩ for halo masses `mass` [Msun/h], shape (n,)."""
        raise NotImplementedError

    def mean_occupation(self, mass) -> np.ndarray:
        """⟨N|M⟩ = ⟨Ncen|M⟩ + ⟨Nsat|M⟩, shape (n,)."""
        return self.mean_central(mass) + self.mean_satellite(mass)

    def second_moment(self, mass) -> np.ndarray:
        """⟨N(N−1)|M⟩, the pair count that sets the one-halo term (shape (n,))."""
        lam = self.satellite_rate(mass)
        return self.mean_central(mass) * (2.0 * lam + lam * lam)  # N = 1 + Poisson(λ) given a central

    def draw(self, mass, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One realisation: (n_central (n,) int64 in {0,1}, n_satellite (n,) int64)."""
        raise NotImplementedError


@dataclass(frozen=True)
class Seed3(HODModel):
    """The design's 3-parameter HOD: N ~ Poisson((M/M1)^α) for M > M_min, else N = 0."""

    log10_m_min: float
    log10_m1: float
    alpha: float
    name: ClassVar[str] = "seed3"

    def rate(self, mass) -> np.ndarray:
        """λ(M) = (M/M1)^α for M > M_min, else 0."""
        m = _mass(mass)
        lam = _power(m / 10.0 ** self.log10_m1, self.alpha)
        return np.where(m > 10.0 ** self.log10_m_min, lam, 0.0)

    def mean_occupation(self, mass) -> np.ndarray:
        return self.rate(mass)

    def mean_central(self, mass) -> np.ndarray:
        return -np.expm1(-self.rate(mass))  # P(N >= 1): the first galaxy sits at the centre

    def mean_satellite(self, mass) -> np.ndarray:
        lam = self.rate(mass)
        return lam + np.expm1(-lam)

    def second_moment(self, mass) -> np.ndarray:
        return self.rate(mass) ** 2  # Poisson: ⟨N(N−1)⟩ = λ²

    def draw(self, mass, rng):
        n = rng.poisson(self.rate(mass)).astype(np.int64)
        cen = np.minimum(n, 1)
        return cen, n - cen


@dataclass(frozen=True)
class CentralSatellite(HODModel):
    """One central if M > M_min; satellites Poisson((M/M1)^α) in those halos."""

    log10_m_min: float
    log10_m1: float
    alpha: float
    name: ClassVar[str] = "central-satellite"

    def satellite_rate(self, mass) -> np.ndarray:
        """Satellite mean in a halo that has a central: (M/M1)^α."""
        return _power(_mass(mass) / 10.0 ** self.log10_m1, self.alpha)

    def mean_central(self, mass) -> np.ndarray:
        return (_mass(mass) > 10.0 ** self.log10_m_min).astype(np.float64)

    def mean_satellite(self, mass) -> np.ndarray:
        return self.mean_central(mass) * self.satellite_rate(mass)

    def draw(self, mass, rng):
        cen = self.mean_central(mass).astype(np.int64)
        sat = rng.poisson(self.satellite_rate(mass)).astype(np.int64) * cen
        return cen, sat


@dataclass(frozen=True)
class Zheng07(HODModel):
    """Zheng et al. 2007 (arXiv:astro-ph/0703457) five-parameter HOD.

    σ_logM is the width in log10 M; σ_logM = 0 gives a step at M_min (⟨Ncen⟩ = ½ at M = M_min).
    log10_m0 = -inf means M0 = 0.
    """

    log10_m_min: float
    sigma_log_m: float
    log10_m0: float
    log10_m1: float
    alpha: float
    name: ClassVar[str] = "zheng07"

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.sigma_log_m >= 0, f"zheng07: sigma_log_m must be >= 0, got {self.sigma_log_m}")

    def satellite_rate(self, mass) -> np.ndarray:
        """Satellite mean in a halo with a central: ((M − M0)/M1)^α for M > M0, else 0."""
        m = _mass(mass)
        return _power((m - 10.0 ** self.log10_m0) / 10.0 ** self.log10_m1, self.alpha)

    def mean_central(self, mass) -> np.ndarray:
        x = np.log10(np.maximum(_mass(mass), 1e-300)) - self.log10_m_min
        if self.sigma_log_m == 0:
            return np.where(x > 0, 1.0, np.where(x == 0, 0.5, 0.0))
        return 0.5 * (1.0 + erf(x / self.sigma_log_m))

    def mean_satellite(self, mass) -> np.ndarray:
        return self.mean_central(mass) * self.satellite_rate(mass)

    def draw(self, mass, rng):
        p = self.mean_central(mass)
        cen = (rng.random(p.shape) < p).astype(np.int64)
        sat = rng.poisson(self.satellite_rate(mass)).astype(np.int64) * cen
        return cen, sat


MODELS: dict[str, type[HODModel]] = {cls.name: cls for cls in (Seed3, CentralSatellite, Zheng07)}


def model_class(name: str) -> type[HODModel]:
    """The model class registered under `name` (``seed3``, ``central-satellite``, ``zheng07``)."""
    if name not in MODELS:
        raise ConfigError(f"unknown HOD model {name!r}; choose one of {sorted(MODELS)}")
    return MODELS[name]


def make_model(name: str, params: Mapping[str, float]) -> HODModel:
    """Build the model `name` from a dict of its parameters (all of them, no others)."""
    cls = model_class(name)
    want = set(cls.param_names())
    missing, extra = want - set(params), set(params) - want
    if missing or extra:
        raise ConfigError(f"{name}: parameters {sorted(want)} expected; missing {sorted(missing)}, "
                          f"unknown {sorted(extra)}")
    return cls(**{k: params[k] for k in cls.param_names()})
