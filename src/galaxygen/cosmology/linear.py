"""Flat ΛCDM cosmology and its linear matter power spectrum (CAMB, or the Eisenstein-Hu fit).

Units: k in h/Mpc, P(k) in (Mpc/h)^3, lengths in Mpc/h, masses in Msun/h. The background used by
the growth functions and the N-body dynamics is matter + Λ (radiation neglected, as in N-body
codes); CAMB's full physics sets only the *shape* of P(k), which is normalised to σ8 at z = 0 and
scaled to other redshifts with the growth factor D1 of `galaxygen.cosmology.growth` (back-scaling,
so that the N-body runs reproduce P_lin(k, z) exactly on large scales).
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np

from galaxygen.config import require
from galaxygen.constants import RHO_CRIT
from galaxygen.cosmology.growth import growth
from galaxygen.errors import ConfigError

#: CAMB is run up to this wavenumber [h/Mpc]; beyond it the EH shape continues the table.
CAMB_KMAX = 60.0

METHODS = ("camb", "eh")


@dataclasses.dataclass(frozen=True)
class Cosmology:
    """Flat ΛCDM parameters; defaults are the CAMELS fixed values (arXiv:2010.00619).

    Attributes
    ----------
    omega_m, omega_b : total matter and baryon density today (Ωm includes Ωb).
    sigma_8 : rms linear density contrast in 8 Mpc/h top-hat spheres at z = 0.
    h : H0 / (100 km/s/Mpc).
    n_s : primordial spectral index.
    t_cmb : CMB temperature [K] (enters the transfer function only).
    """

    omega_m: float = 0.3
    sigma_8: float = 0.8
    omega_b: float = 0.049
    h: float = 0.6711
    n_s: float = 0.9624
    t_cmb: float = 2.7255

    def __post_init__(self) -> None:
        require(0.0 < self.omega_b < self.omega_m <= 1.0,
                f"cosmology: need 0 < omega_b < omega_m <= 1, got omega_b={self.omega_b}, "
                f"omega_m={self.omega_m}")
        require(0.0 < self.sigma_8 < 5.0, f"cosmology.sigma_8: expected in (0, 5), got {self.sigma_8}")
        require(0.2 < self.h < 2.0, f"cosmology.h: expected in (0.2, 2), got {self.h}")
        require(0.5 < self.n_s < 1.5, f"cosmology.n_s: expected in (0.5, 1.5), got {self.n_s}")
        require(0.0 < self.t_cmb < 10.0, f"cosmology.t_cmb: expected in (0, 10) K, got {self.t_cmb}")

    @property
    def omega_lambda(self) -> float:
        """Ω_Λ = 1 − Ωm (flat, radiation neglected)."""
        return 1.0 - self.omega_m

    def efunc(self, a):
        """E(a) = H(a)/H0 = sqrt(Ωm a^-3 + Ω_Λ)."""
        a = np.asarray(a, dtype=np.float64)
        return np.sqrt(self.omega_m * a ** -3 + self.omega_lambda)

    def omega_m_at(self, a):
        """Ωm(a) = Ωm a^-3 / E(a)^2."""
        a = np.asarray(a, dtype=np.float64)
        return self.omega_m * a ** -3 / self.efunc(a) ** 2

    def particle_mass(self, box_size: float, n_per_side: int) -> float:
        """Mass of one of n_per_side^3 equal particles filling the box [Msun/h]."""
        return RHO_CRIT * self.omega_m * (box_size / n_per_side) ** 3

    def linear_power(self, k, z: float = 0.0, method: str = "camb"):
        """Linear matter P(k, z) [(Mpc/h)^3] at k [h/Mpc]; see `linear_power`."""
        return linear_power(self, k, z, method=method)


# ------------------------------------------------------------------------------------------
# Eisenstein & Hu 1998 (astro-ph/9709112), transfer function with baryon wiggles
# ------------------------------------------------------------------------------------------

def eh_transfer(cosmo: Cosmology, k) -> np.ndarray:
    """Eisenstein & Hu (1998) transfer function T(k), k in h/Mpc (eqs. 2-24 of astro-ph/9709112)."""
    k = np.asarray(k, dtype=np.float64) * cosmo.h  # 1/Mpc
    om, ob = cosmo.omega_m, cosmo.omega_b
    h2 = cosmo.h ** 2
    wm, wb = om * h2, ob * h2
    fb = ob / om
    fc = 1.0 - fb
    th = cosmo.t_cmb / 2.7
    z_eq = 2.50e4 * wm * th ** -4                                    # eq. 2
    k_eq = 7.46e-2 * wm * th ** -2                                   # eq. 3
    b1 = 0.313 * wm ** -0.419 * (1 + 0.607 * wm ** 0.674)            # eq. 4
    b2 = 0.238 * wm ** 0.223
    z_d = 1291 * wm ** 0.251 / (1 + 0.659 * wm ** 0.828) * (1 + b1 * wb ** b2)
    r_d = 31.5 * wb * th ** -4 * (1e3 / z_d)                          # eq. 5
    r_eq = 31.5 * wb * th ** -4 * (1e3 / z_eq)
    s = (2 / (3 * k_eq) * math.sqrt(6 / r_eq)                         # eq. 6
         * math.log((math.sqrt(1 + r_d) + math.sqrt(r_d + r_eq)) / (1 + math.sqrt(r_eq))))
    k_silk = 1.6 * wb ** 0.52 * wm ** 0.73 * (1 + (10.4 * wm) ** -0.95)  # eq. 7
    a1 = (46.9 * wm) ** 0.670 * (1 + (32.1 * wm) ** -0.532)           # eq. 11
    a2 = (12.0 * wm) ** 0.424 * (1 + (45.0 * wm) ** -0.582)
    alpha_c = a1 ** -fb * a2 ** (-fb ** 3)
    bb1 = 0.944 / (1 + (458 * wm) ** -0.708)                          # eq. 12
    bb2 = (0.395 * wm) ** -0.0266
    beta_c = 1 / (1 + bb1 * (fc ** bb2 - 1))
    q = k / (13.41 * k_eq)                                            # eq. 10
    ks = k * s

    def t0(alpha, beta):                                              # eqs. 19-20
        lg = np.log(np.e + 1.8 * beta * q)
        c = 14.2 / alpha + 386.0 / (1 + 69.9 * q ** 1.08)
        return lg / (lg + c * q * q)

    f = 1 / (1 + (ks / 5.4) ** 4)                                     # eq. 18
    t_c = f * t0(1.0, beta_c) + (1 - f) * t0(alpha_c, beta_c)         # eq. 17
    y = (1 + z_eq) / (1 + z_d)
    sy = math.sqrt(1 + y)
    g = y * (-6 * sy + (2 + 3 * y) * math.log((sy + 1) / (sy - 1)))   # eq. 15
    alpha_b = 2.07 * k_eq * s * (1 + r_d) ** -0.75 * g                # eq. 14
    beta_node = 8.41 * wm ** 0.435                                    # eq. 23
    beta_b = 0.5 + fb + (3 - 2 * fb) * math.sqrt((17.2 * wm) ** 2 + 1)  # eq. 24
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        s_tilde = s / (1 + (beta_node / ks) ** 3) ** (1 / 3)          # eq. 22
        x = k * s_tilde
        j0 = np.where(x > 1e-8, np.sin(x) / np.where(x > 1e-8, x, 1.0), 1.0)
        t_b = (t0(1.0, 1.0) / (1 + (ks / 5.2) ** 2)                   # eq. 21
               + alpha_b / (1 + (beta_b / ks) ** 3) * np.exp(-(k / k_silk) ** 1.4)) * j0
    t = fb * t_b + fc * t_c                                           # eq. 16
    return np.where(k > 0, t, 1.0)


# ------------------------------------------------------------------------------------------
# σ8 normalisation and tabulated spectra
# ------------------------------------------------------------------------------------------

def tophat_sigma(k: np.ndarray, pk: np.ndarray, radius: float = 8.0) -> float:
    """σ(R) = sqrt(∫ dk k^2 P(k) W(kR)^2 / 2π^2) for a tabulated P on a log-spaced k grid."""
    x = k * radius
    w = np.where(x > 1e-4, 3 * (np.sin(x) - x * np.cos(x)) / np.where(x > 1e-4, x, 1.0) ** 3,
                 1 - x * x / 10)
    integrand = k ** 3 * pk * w * w / (2 * math.pi ** 2)  # d sigma^2 / d ln k
    return float(math.sqrt(np.trapezoid(integrand, np.log(k))))


_LOGK = np.linspace(math.log(1e-5), math.log(1e3), 4001)  # table grid, ln(k h/Mpc)


def _shape_key(cosmo: Cosmology) -> tuple:
    return (cosmo.omega_m, cosmo.omega_b, cosmo.h, cosmo.n_s, cosmo.t_cmb)


@functools.lru_cache(maxsize=64)
def _eh_table(key: tuple) -> np.ndarray:
    """ln P on `_LOGK` for the EH shape, normalised to σ8 = 1."""
    cosmo = Cosmology(omega_m=key[0], omega_b=key[1], h=key[2], n_s=key[3], t_cmb=key[4])
    k = np.exp(_LOGK)
    pk = k ** cosmo.n_s * eh_transfer(cosmo, k) ** 2
    return np.log(pk / tophat_sigma(k, pk) ** 2)


@functools.lru_cache(maxsize=64)
def _camb_table(key: tuple) -> np.ndarray:
    """ln P on `_LOGK` from CAMB at z = 0 (σ8 = 1), continued by the EH shape outside CAMB's range."""
    import camb

    omega_m, omega_b, h, n_s, t_cmb = key
    pars = camb.CAMBparams()
    pars.set_cosmology(H0=100 * h, ombh2=omega_b * h * h, omch2=(omega_m - omega_b) * h * h,
                       mnu=0.0, num_massive_neutrinos=0, TCMB=t_cmb)
    pars.InitPower.set_params(As=2e-9, ns=n_s)
    pars.set_matter_power(redshifts=[0.0], kmax=CAMB_KMAX * h, nonlinear=False)
    pars.WantCls = False
    results = camb.get_results(pars)
    kc, _, pc = results.get_linear_matter_power_spectrum(hubble_units=True, k_hunit=True)
    lkc, lpc = np.log(kc), np.log(pc[0])
    eh = _eh_table(key)
    out = np.interp(_LOGK, lkc, lpc)
    lo, hi = _LOGK < lkc[0], _LOGK > lkc[-1]
    out[lo] = eh[lo] + (lpc[0] - np.interp(lkc[0], _LOGK, eh))
    out[hi] = eh[hi] + (lpc[-1] - np.interp(lkc[-1], _LOGK, eh))
    k = np.exp(_LOGK)
    return out - 2 * math.log(tophat_sigma(k, np.exp(out)))


def power_table(cosmo: Cosmology, method: str = "camb") -> tuple[np.ndarray, np.ndarray]:
    """(k [h/Mpc], P(k, z=0) [(Mpc/h)^3]) tabulated on 4001 log-spaced points, σ8-normalised.

    CAMB results are cached per cosmology (in memory), so many calls cost one CAMB run.
    """
    if method not in METHODS:
        raise ConfigError(f"power spectrum method {method!r} unknown; expected one of {list(METHODS)}")
    table = _camb_table(_shape_key(cosmo)) if method == "camb" else _eh_table(_shape_key(cosmo))
    return np.exp(_LOGK), np.exp(table) * cosmo.sigma_8 ** 2


def linear_power(cosmo: Cosmology, k, z: float = 0.0, method: str = "camb") -> np.ndarray:
    """Linear matter power spectrum P(k, z) [(Mpc/h)^3] at k [h/Mpc] (float64 ndarray).

    P(k, 0) is CAMB's linear spectrum (``method="camb"``) or the Eisenstein-Hu fit with BAO
    wiggles (``"eh"``, astro-ph/9709112), normalised to σ8; P(k, z) = P(k, 0) D1(z)^2 with the
    ΛCDM growth factor (D1(z=0) = 1). P(0) = 0.
    """
    k = np.asarray(k, dtype=np.float64)
    kt, pt = power_table(cosmo, method)
    with np.errstate(divide="ignore"):
        lk = np.log(np.where(k > 0, k, 1.0))
    p = np.exp(np.interp(lk, np.log(kt), np.log(pt)))
    p = np.where(k > 0, p, 0.0)
    if z != 0.0:
        p = p * float(growth(cosmo.omega_m).d1(1.0 / (1.0 + z))) ** 2
    return p
