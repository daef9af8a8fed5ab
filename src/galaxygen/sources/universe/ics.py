"""Gaussian initial conditions: white noise → linear density → 1LPT and 2LPT displacements.

Conventions (see docs/universe.md):

* Fourier modes use δ(x) = (1/N³) Σ_k δ̃_k e^{i k·x} (torch ``irfftn``), so a Gaussian field with
  spectrum P has ⟨|δ̃_k|²⟩ = N⁶ P(k) / V.
* The noise of a mode is a pure function of (seed, integer wavevector): two hashed uniforms give
  its amplitude r and phase θ (Box-Muller), w = r/√2 · e^{iθ}, ⟨|w|²⟩ = 1. A grid of N³ particles
  therefore holds exactly the modes of any smaller grid (|j| < N/2 on every axis), at no more memory
  than its own field: users can refine a box at the same seed. Nyquist modes (|j| = N/2) are zero.
* Fixed amplitude (Angulo & Pontzen 2016, arXiv:1603.05253): |w| = 1, same phases. Paired: w → −w.
* Particles sit on the lattice q = i L/N (ID = (i N + j) N + k): halfway between the nodes of a
  1× or 2× CIC force mesh (whose nodes are voxel centres), where the CIC response is smooth; a
  particle exactly on a node sits on the kink of the CIC kernel and halves the linear force.
* 2LPT (Scoccimarro 1998, astro-ph/9711187): x = q + D1 Ψ1 + D2 Ψ2 with Ψ1(k) = i k δ(k)/k²
  (∇·Ψ1 = −δ) and Ψ2(k) = −i k S(k)/k² (∇·Ψ2 = S), S = Σ_{i<j} (Ψ1_{i,i} Ψ1_{j,j} − Ψ1_{i,j}²),
  D2 < 0 from `galaxygen.cosmology.growth`. Peculiar velocity v = a H(a) (f1 D1 Ψ1 + f2 D2 Ψ2).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from galaxygen.config import require
from galaxygen.device import resolve_device
from galaxygen.mesh import integer_frequencies, irfft3, rfft3
from galaxygen.cosmology.linear import Cosmology, linear_power
from galaxygen.cosmology.growth import growth

_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_OFFSET = 1 << 20  # wavevector components are encoded in 21 bits each


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser (Steele et al. 2014) on uint64 arrays (wrapping arithmetic)."""
    z = x + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def _uniform(h: np.ndarray) -> np.ndarray:
    """uint64 hash → float64 uniform in (0, 1)."""
    return ((h >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0 ** -53


def mode_noise(seed: int, jx, jy, jz, *, fixed_amplitude: bool = False) -> np.ndarray:
    """Complex white noise of the modes with integer wavevectors (jx, jy, jz) (broadcast arrays).

    Hermitian: noise(−j) = conj(noise(j)); depends only on (seed, j), never on a grid size.
    ⟨|w|²⟩ = 1 (|w| = 1 with `fixed_amplitude`). Returns complex128.
    """
    jx, jy, jz = np.broadcast_arrays(*(np.asarray(v, dtype=np.int64) for v in (jx, jy, jz)))
    # canonical half-space: jz > 0, or jz == 0 and (jy > 0, or jy == 0 and jx >= 0)
    canon = (jz > 0) | ((jz == 0) & ((jy > 0) | ((jy == 0) & (jx >= 0))))
    sgn = np.where(canon, 1, -1)
    code = (((jx * sgn + _OFFSET).astype(np.uint64))
            | ((jy * sgn + _OFFSET).astype(np.uint64) << np.uint64(21))
            | ((jz * sgn + _OFFSET).astype(np.uint64) << np.uint64(42)))
    base = _splitmix64(code ^ _splitmix64(np.uint64(seed % (1 << 64)) + np.zeros(1, np.uint64)))
    theta = 2 * math.pi * _uniform(_splitmix64(base ^ np.uint64(0x1)))
    if fixed_amplitude:
        amp = 1.0
    else:
        amp = np.sqrt(-np.log(_uniform(_splitmix64(base ^ np.uint64(0x2)))))  # r/√2, r² ~ 2 Exp(1)
    return amp * np.exp(1j * sgn * theta)


def white_noise(seed: int, grid: int, *, fixed_amplitude: bool = False) -> torch.Tensor:
    """Noise of every mode on the rfftn grid (N, N, N//2+1), complex64 (CPU); DC and Nyquist = 0."""
    require(grid >= 2, f"grid: expected >= 2 particles per side, got {grid}")
    out = torch.zeros((grid, grid, grid // 2 + 1), dtype=torch.complex64)
    jx, jy, jz = (t.numpy() for t in integer_frequencies(grid))
    rows = max(1, (1 << 20) // (grid * (grid // 2 + 1)))
    nyq = grid // 2 if grid % 2 == 0 else None
    for i0 in range(0, grid, rows):
        sl = slice(i0, min(grid, i0 + rows))
        w = mode_noise(seed, jx[sl], jy, jz, fixed_amplitude=fixed_amplitude)
        if nyq is not None:
            w[(np.abs(jx[sl]) == nyq) | (np.abs(jy) == nyq) | (jz == nyq)] = 0
        if i0 == 0:
            w[0, 0, 0] = 0
        out[sl] = torch.from_numpy(w.astype(np.complex64))
    return out


def linear_density_k(cosmo: Cosmology, grid: int, box_size: float, seed: int, *, z: float = 0.0,
                     fixed_amplitude: bool = False, paired: bool = False, method: str = "camb",
                     offset: float = 0.5, device="auto") -> torch.Tensor:
    """Fourier modes δ̃_L(k) (N, N, N//2+1) complex64 of the linear density at redshift z.

    ⟨|δ̃_k|²⟩ = N⁶ P_lin(k, z)/V; ``irfftn`` gives δ at the points (i + offset) L/N (0.5: voxel
    centres, the box-file convention; 0: the particle lattice).
    """
    dev = resolve_device(device)
    noise = white_noise(seed, grid, fixed_amplitude=fixed_amplitude)
    jx, jy, jz = integer_frequencies(grid)
    n2 = (jx ** 2 + jy ** 2 + jz ** 2)  # (N, N, N//2+1) int64
    kf = 2 * math.pi / box_size
    p = linear_power(cosmo, kf * np.sqrt(np.arange(int(n2.max()) + 1, dtype=np.float64)), z, method=method)
    amp = torch.from_numpy(grid ** 3 * np.sqrt(p / box_size ** 3).astype(np.float32))[n2]
    del n2
    delta = noise * amp
    if offset:  # move the sample points from i L/N to (i + offset) L/N
        delta *= torch.exp(2j * math.pi * offset / grid * (jx + jy + jz).to(torch.float64)).to(torch.complex64)
    if paired:
        delta = -delta
    return delta.to(dev)


def linear_density(cosmo: Cosmology, grid: int, box_size: float, seed: int, **kwargs) -> torch.Tensor:
    """Linear density contrast δ_L at the voxel centres, (N, N, N) float32; see `linear_density_k`."""
    return irfft3(linear_density_k(cosmo, grid, box_size, seed, **kwargs), (grid,) * 3)


def lattice(n_per_side: int, box_size: float, *, device=None) -> torch.Tensor:
    """Unperturbed particle positions q = i L/N, (n³, 3) float32 in ID order [Mpc/h]."""
    c = torch.arange(n_per_side, device=device, dtype=torch.float64) * (box_size / n_per_side)
    q = torch.empty((n_per_side ** 3, 3), dtype=torch.float32, device=device)
    view = q.view(n_per_side, n_per_side, n_per_side, 3)
    view[..., 0] = c.view(-1, 1, 1).to(torch.float32)
    view[..., 1] = c.view(1, -1, 1).to(torch.float32)
    view[..., 2] = c.view(1, 1, -1).to(torch.float32)
    return q


@dataclasses.dataclass(frozen=True)
class InitialConditions:
    """Lagrangian displacement fields on the particle lattice (z-independent, D1(a=1) = 1).

    Attributes
    ----------
    cosmology : Cosmology
    box_size : float [Mpc/h]
    n_per_side : int, particles per side N (n = N³ particles in ID order).
    seed : int
    a_start : float, scale factor at which runs start by default.
    psi1 : torch.Tensor (n, 3) float32 [Mpc/h], first-order displacement for D1 = 1.
    psi2 : torch.Tensor (n, 3) float32 or None (order 1) [Mpc/h], second-order field for D2 = 1.
    order, fixed_amplitude, paired, method : how they were made.
    """

    cosmology: Cosmology
    box_size: float
    n_per_side: int
    seed: int
    a_start: float
    psi1: torch.Tensor
    psi2: torch.Tensor | None
    order: int = 2
    fixed_amplitude: bool = False
    paired: bool = False
    method: str = "camb"

    @property
    def z_start(self) -> float:
        return 1.0 / self.a_start - 1.0

    @property
    def n_particles(self) -> int:
        return self.n_per_side ** 3

    @property
    def device(self) -> torch.device:
        return self.psi1.device

    @property
    def particle_mass(self) -> float:
        """Mass per particle [Msun/h]."""
        return self.cosmology.particle_mass(self.box_size, self.n_per_side)

    def lattice(self) -> torch.Tensor:
        """Unperturbed positions q (n, 3) float32 [Mpc/h]."""
        return lattice(self.n_per_side, self.box_size, device=self.device)

    def displacement(self, a: float | None = None) -> torch.Tensor:
        """LPT displacement D1 Ψ1 + D2 Ψ2 at scale factor a (default a_start), (n, 3) float32."""
        a = self.a_start if a is None else float(a)
        g = growth(self.cosmology.omega_m)
        s = self.psi1 * float(g.d1(a))
        if self.psi2 is not None:
            s.add_(self.psi2, alpha=float(g.d2(a)))
        return s

    def positions(self, a: float | None = None) -> torch.Tensor:
        """LPT positions at a, wrapped into [0, L), (n, 3) float32 [Mpc/h]."""
        return torch.remainder(self.lattice() + self.displacement(a), self.box_size)

    def velocities(self, a: float | None = None) -> torch.Tensor:
        """LPT peculiar velocities v = a H (f1 D1 Ψ1 + f2 D2 Ψ2) at a, (n, 3) float32 [km/s]."""
        a = self.a_start if a is None else float(a)
        g = growth(self.cosmology.omega_m)
        ah = 100.0 * a * float(g.efunc(a))  # a H(a) in km/s per Mpc/h
        v = self.psi1 * float(ah * g.f1(a) * g.d1(a))
        if self.psi2 is not None:
            v.add_(self.psi2, alpha=float(ah * g.f2(a) * g.d2(a)))
        return v


def initial_conditions(cosmo: Cosmology, n_particles: int, box_size: float, seed: int, *,
                       z_start: float = 49.0, order: int = 2, fixed_amplitude: bool = False,
                       paired: bool = False, device="auto", method: str = "camb") -> InitialConditions:
    """Gaussian 1LPT/2LPT initial conditions for N³ particles in a periodic box.

    Parameters
    ----------
    cosmo : Cosmology
    n_particles : int, particles per side N (the IC grid is N³; N³ particles).
    box_size : float [Mpc/h]
    seed : int, the realisation (modes are shared with any other N at this seed).
    z_start : float, default start redshift of the runs (positions/velocities at it by default).
    order : 1 (Zel'dovich) or 2 (2LPT).
    fixed_amplitude, paired : Angulo & Pontzen (2016) variance suppression.
    device : "auto", "cpu", "cuda", ...
    method : "camb" or "eh", the linear spectrum.

    Returns
    -------
    InitialConditions with psi1 (and psi2) as (N³, 3) float32 tensors on `device`.
    """
    require(isinstance(n_particles, int) and n_particles >= 2,
            f"n_particles: expected an integer >= 2 (particles per side), got {n_particles!r}")
    require(box_size > 0, f"box_size: expected > 0 Mpc/h, got {box_size}")
    require(order in (1, 2), f"order: expected 1 or 2, got {order}")
    require(-1.0 < z_start < 1e5 - 1, f"z_start: expected in (-1, 99999), got {z_start}")
    dev = resolve_device(device)
    n = n_particles
    delta = linear_density_k(cosmo, n, box_size, seed, fixed_amplitude=fixed_amplitude,
                             paired=paired, method=method, offset=0.0, device=dev)
    k = [t.to(torch.float32) * (2 * math.pi / box_size) for t in integer_frequencies(n, device=dev)]
    inv_k2 = _inverse_k2(k, n)
    delta.mul_(inv_k2)  # δ/k², zero at DC and Nyquist
    shape = (n,) * 3

    def real(fk: torch.Tensor) -> torch.Tensor:
        return irfft3(fk, shape).reshape(-1)

    psi1 = torch.empty((n ** 3, 3), dtype=torch.float32, device=dev)
    for c in range(3):
        psi1[:, c] = real(1j * k[c] * delta)
    psi2 = None
    if order == 2:
        diag = [real(-(k[c] * k[c]) * delta) for c in range(3)]
        src = diag[0] * diag[1] + diag[0] * diag[2] + diag[1] * diag[2]
        del diag
        for a, b in ((0, 1), (0, 2), (1, 2)):
            src.sub_(real(-(k[a] * k[b]) * delta) ** 2)
        del delta
        src_k = rfft3(src.view(shape))
        del src
        src_k.mul_(inv_k2)
        psi2 = torch.empty_like(psi1)
        for c in range(3):
            psi2[:, c] = real(-1j * k[c] * src_k)
    return InitialConditions(cosmology=cosmo, box_size=float(box_size), n_per_side=n, seed=int(seed),
                             a_start=1.0 / (1.0 + z_start), psi1=psi1, psi2=psi2, order=order,
                             fixed_amplitude=fixed_amplitude, paired=paired, method=method)


def _inverse_k2(k: list[torch.Tensor], grid: int) -> torch.Tensor:
    """1/k² on the rfftn grid (float32), zero at k = 0 and on the Nyquist planes."""
    k2 = k[0] ** 2 + k[1] ** 2 + k[2] ** 2
    inv = torch.where(k2 > 0, 1.0 / torch.where(k2 > 0, k2, 1.0), 0.0)
    if grid % 2 == 0:
        j = [t for t in integer_frequencies(grid, device=k2.device)]
        nyq = (j[0].abs() == grid // 2) | (j[1].abs() == grid // 2) | (j[2] == grid // 2)
        inv = torch.where(nyq, 0.0, inv)
    return inv.to(torch.float32)
