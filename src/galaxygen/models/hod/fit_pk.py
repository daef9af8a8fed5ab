"""Optional HOD fit by χ² on the large-scale galaxy power spectrum (as Zhang et al. 2019,
arXiv:1902.05965, compare their HOD on P(k)), with the number density imposed exactly.

Model spectrum of a box (deterministic, no random draws): halo centres painted (NGP) with weights
⟨N|M⟩ give P_w(k) with shot noise SN_w = V Σ⟨N⟩² / (Σ⟨N⟩)²; the HOD galaxies have on large
scales P_g(k) = P_w(k) + [1/n̄ + V Σ⟨N(N−1)⟩ / N² − SN_w] ⟨1/W²⟩(k) (Poisson noise plus the
one-halo pair term of galaxies sharing a halo, positions at the halo centre; white noise is
divided by the NGP window like everything else, Jing 2005, astro-ph/0409240). The data are the raw
(shot-noise-included) P(k) of ``fields/galaxies``; bins with k ≤ k_max, Gaussian errors
σ² = 2 P² / N_modes. Grids are reduced by summing voxel blocks (exact for NGP counts) to the
smallest grid whose Nyquist frequency is at least 2 k_max.

Free parameters: step models (log10 M_min, α) with M1 from the density; zheng07 (log10 M1, α,
σ_logM, log10 M0) with M_min from the density (as in `galaxygen.models.hod.fit`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from galaxygen.errors import GalaxygenError
from galaxygen.models.hod.fit import ALPHA_BOUNDS, LikelihoodFit, _Zheng07
from galaxygen.models.hod.occupation import make_model
from galaxygen.models.hod.uncertainty import add_derived, covariance_from_hessian, hessian
from galaxygen.stats.power import power_spectrum


@dataclass(frozen=True)
class PkData:
    """One training box reduced for the P(k) fit: halo pos (n,3) [Mpc/h], mass (n,) [Msun/h],
    their NGP voxels, the box side [Mpc/h], the reduced grid, the truth spectrum's k, P, N_modes,
    and the bin average of 1/W²(k) (what white noise becomes once the NGP window is divided out)."""

    pos: np.ndarray
    mass: np.ndarray
    voxel: np.ndarray
    box_size: float
    grid: int
    k: np.ndarray
    power: np.ndarray
    n_modes: np.ndarray
    noise_shape: np.ndarray
    k_max: float


def _block_sum(field: np.ndarray, f: int) -> np.ndarray:
    n = field.shape[0] // f
    return field.reshape(n, f, n, f, n, f).sum(axis=(1, 3, 5))


def reduced_grid(grid: int, box_size: float, k_max: float) -> int:
    """Smallest grid grid/2^j (dividing `grid`) with Nyquist π n / L ≥ 2 k_max."""
    n = grid
    while n % 2 == 0 and np.pi * (n // 2) / box_size >= 2 * k_max:
        n //= 2
    return n


def ngp_voxel(pos: np.ndarray, grid: int, box_size: float) -> np.ndarray:
    """Flat NGP voxel index of positions (n,3) [Mpc/h] (voxel i covers [i L/N, (i+1) L/N), as
    `galaxygen.mesh.paint`), so the fit can re-weight fixed halos with one bincount per step."""
    ijk = np.floor(np.asarray(pos, dtype=np.float64) * (grid / box_size)).astype(np.int64) % grid
    return (ijk[:, 0] * grid + ijk[:, 1]) * grid + ijk[:, 2]


def pk_data(galaxies: np.ndarray, halo_pos, halo_mass, box_size: float, k_max: float,
            where: str) -> PkData:
    """Truth P(k) of a galaxy count grid at k ≤ k_max, with the halos it will be modelled by."""
    grid = galaxies.shape[0]
    n = reduced_grid(grid, box_size, k_max)
    field = _block_sum(np.asarray(galaxies, dtype=np.float64), grid // n).astype(np.float32)
    ps = power_spectrum(field, box_size, scheme="ngp", k_max=k_max)
    keep = ps.n_modes > 0
    if keep.sum() < 2:
        raise GalaxygenError(f"{where}: fewer than 2 P(k) bins below k_max = {k_max} h/Mpc "
                             f"(fundamental {2 * np.pi / box_size:.3g} h/Mpc); raise --k-max")
    pos = np.asarray(halo_pos, dtype=np.float64)
    spike = np.zeros((n,) * 3, np.float32)
    spike[0, 0, 0] = 1.0  # flat |FFT|^2: its deconvolved spectrum is L^3 <1/W^2> per bin
    shape = power_spectrum(spike, box_size, scheme="ngp", k_max=k_max, counts=False).power[keep] / box_size ** 3
    return PkData(pos=pos.astype(np.float32), mass=np.asarray(halo_mass, np.float64),
                  voxel=ngp_voxel(pos, n, box_size), box_size=float(box_size), grid=n, k=ps.k[keep],
                  power=ps.power[keep], n_modes=ps.n_modes[keep], noise_shape=shape,
                  k_max=float(k_max))


def model_power(model, d: PkData) -> np.ndarray:
    """Large-scale P_g(k) [(Mpc/h)^3] of the HOD `model` in box `d` (see module doc), at d.k."""
    w = model.mean_occupation(d.mass)
    tot = w.sum()
    if not tot > 0:
        return np.full_like(d.power, np.inf)
    field = np.bincount(d.voxel, weights=w, minlength=d.grid ** 3).reshape((d.grid,) * 3).astype(np.float32)
    ps = power_spectrum(field, d.box_size, scheme="ngp", k_max=d.k_max, counts=False)
    pw = ps.power[ps.n_modes > 0]
    vol = d.box_size ** 3
    sn_w = vol * float(np.sum(w * w)) / tot ** 2
    pairs = vol * float(np.sum(model.second_moment(d.mass))) / tot ** 2
    return pw + (vol / tot + pairs - sn_w) * d.noise_shape


def _full_params(model_name: str, phi: np.ndarray, mass: np.ndarray, n_target: float,
                 zheng: _Zheng07 | None) -> dict[str, float] | None:
    """All parameters from the free ones under the density constraint (None if impossible)."""
    if model_name == "zheng07":
        t = zheng.log10_m_min(phi)
        if t is None:
            return None
        return {"log10_m_min": t, **dict(zip(_Zheng07.free, map(float, phi)))}
    log10_m_min, alpha = map(float, phi)
    above = mass > 10.0 ** log10_m_min
    budget = n_target - (above.sum() if model_name == "central-satellite" else 0.0)
    if not above.any() or budget <= 0 or not ALPHA_BOUNDS[0] <= alpha <= ALPHA_BOUNDS[1]:
        return None
    x = np.log(mass[above] / mass.max())
    wsum = np.exp(alpha * x).sum()
    log10_m1 = np.log10(mass.max()) - np.log10(budget / wsum) / alpha
    return {"log10_m_min": log10_m_min, "log10_m1": float(log10_m1), "alpha": alpha}


def fit_power(model_name: str, data: list[PkData], n_target: float, start: LikelihoodFit) -> LikelihoodFit:
    """Minimise χ² of the large-scale P(k) over the boxes `data`, from the likelihood fit `start`."""
    mass = np.concatenate([d.mass for d in data])
    zheng = None
    if model_name == "zheng07":
        n_gal = np.zeros(len(mass), dtype=np.int64)  # only the density solver is used
        zheng = _Zheng07(mass, n_gal, n_target)
        names_free = _Zheng07.free
    else:
        names_free = ("log10_m_min", "alpha")

    def chi2(phi, bounded: bool = True) -> float:
        if zheng is not None:
            if bounded and any(not a <= v <= b for v, (a, b) in zip(phi, zheng.bounds)):
                return np.inf
            if phi[2] <= 0 or phi[1] < 0:
                return np.inf
        params = _full_params(model_name, np.asarray(phi), mass, n_target, zheng)
        if params is None:
            return np.inf
        model = make_model(model_name, params)
        total = 0.0
        for d in data:
            pm = model_power(model, d)
            total += float(np.sum((pm - d.power) ** 2 * d.n_modes / (2.0 * d.power ** 2)))
        return total

    x0 = np.array([start.params[k] for k in names_free])
    res = minimize(chi2, x0, method="Nelder-Mead",
                   options={"xatol": 1e-3, "fatol": 1e-3, "maxiter": 300 * len(x0)})
    if not np.isfinite(res.fun):
        raise GalaxygenError(f"HOD P(k) fit ({model_name}): no parameters reach the target density")
    phi = res.x
    errs = start.errors
    h = np.array([min(max(errs.get(k, 0.0), 0.02 if k.startswith("log10") else 0.01), 0.2)
                  for k in names_free])
    for i, k in enumerate(names_free):
        if k in ("alpha", "sigma_log_m"):
            h[i] = min(h[i], phi[i] / 2.1)
    hess = hessian(lambda p: 0.5 * chi2(p, bounded=False), phi, h)
    cov_free, singular = covariance_from_hessian(hess)
    params = _full_params(model_name, phi, mass, n_target, zheng)
    names = tuple(start.names)
    # derived parameter: propagate by a numerical Jacobian of the constraint
    derived = [n for n in names if n not in names_free][0]
    jac = np.zeros(len(names_free))
    for i in range(len(names_free)):
        e = np.zeros(len(names_free))
        e[i] = h[i]
        hi, lo = (_full_params(model_name, phi + s * e, mass, n_target, zheng) for s in (1, -1))
        if hi is not None and lo is not None:
            jac[i] = (hi[derived] - lo[derived]) / (2 * h[i])
    small = add_derived(cov_free, jac, h)                    # (derived, free...) order
    src = [derived] + list(names_free)
    perm = [src.index(n) for n in names]
    full = small[np.ix_(perm, perm)]
    expected = float(make_model(model_name, params).mean_occupation(mass).sum())
    return LikelihoodFit(model_name, params, names, full, -0.5 * float(res.fun), expected,
                         extra={"chi2": float(res.fun), "n_bins": int(sum(len(d.k) for d in data)),
                                "hessian_singular": bool(singular)},
                         bounds=dict(zip(names_free, zheng.bounds)) if zheng is not None else {"alpha": ALPHA_BOUNDS})
