"""Galaxy-formation *surrogate*: a stochastic galaxy model on FoF halos (no hydrodynamics).

The built-in universe has no hydro code, so its "hydro" target is this model, applied to the halos
of the accurate (PM) run. It is deliberately richer than the 3-parameter HOD (docs/surrogate.md):

* centrals: <N_cen> = 1/2 [1 + erf((log M - log M_min,i) / sigma)] (Zheng et al. 2005,
  astro-ph/0408564), where the threshold of halo i moves with its environment and concentration
  at fixed mass (decorated HOD, Hearin et al. 2016, arXiv:1512.03050) and with the supernova
  parameters A_SN1, A_SN2;
* satellites: N_sat ~ Poisson(<N_cen> (M / M1_i)^alpha), M1_i moving with A_AGN1, environment and
  concentration; placed on member particles (weighted by radius) with small Gaussian offsets;
* stellar masses from a Moster et al. (2013, arXiv:1205.5807) stellar-to-halo relation whose
  low-mass slope follows A_SN1 and high-mass slope A_AGN2, with log-normal scatter.

Named variants (`VARIANTS`) give clearly different galaxy-halo connections, standing in for two
hydro codes; the box attribute ``suite`` is the variant's name. Masses are in units of a
resolution mass `mass_unit` [Msun/h] (see `mass_unit_for`), so that the number of galaxies scales
with the number of halos a box resolves.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy.special import erf, ndtri

from galaxygen.config import require
from galaxygen.constants import RHO_CRIT
from galaxygen.errors import ConfigError
from galaxygen.mesh import paint

FIDUCIAL_OMEGA_M = 0.3


@dataclass(frozen=True)
class SurrogateVariant:
    """Parameters of one surrogate galaxy-halo connection (dex are log10; scores are N(0,1)).

    log_mmin : log10(M_min / mass_unit) of centrals at fiducial feedback and mean secondaries.
    sigma_logm : width of the central occupation step [dex].
    log_m1 : log10(M1 / M_min) of satellites.
    alpha : satellite slope.
    env_cen, conc_cen : shift of log M_min [dex] per unit environment / concentration score.
    env_sat, conc_sat : shift of log M1 [dex] per unit score.
    sn1, sn2 : d log M_min / d log10 A_SN1, A_SN2.
    agn1 : d log M1 / d log10 A_AGN1.
    shmr_log_m1, shmr_n, shmr_beta, shmr_gamma : Moster et al. (2013) relation
        M*/M = 2 N [(M/M_1)^-beta + (M/M_1)^gamma]^-1 (M_1 in Msun/h).
    shmr_scatter : log-normal scatter of M* at fixed M [dex].
    beta_sn, gamma_agn : d beta / d log10 A_SN1, d gamma / d log10 A_AGN2.
    sat_stellar_factor : stellar mass of a satellite relative to a central of its infall mass.
    sat_radial : satellites pick member particles with weight (r/R200 + 0.05)^sat_radial.
    cen_offset, sat_offset : Gaussian position offsets per axis, in units of R200.
    """

    name: str
    description: str
    log_mmin: float
    sigma_logm: float
    log_m1: float
    alpha: float
    env_cen: float
    conc_cen: float
    env_sat: float
    conc_sat: float
    sn1: float
    sn2: float
    agn1: float
    shmr_log_m1: float
    shmr_n: float
    shmr_beta: float
    shmr_gamma: float
    shmr_scatter: float
    beta_sn: float
    gamma_agn: float
    sat_stellar_factor: float
    sat_radial: float
    cen_offset: float
    sat_offset: float

    def __post_init__(self) -> None:
        require(self.sigma_logm > 0, f"surrogate {self.name}: sigma_logm must be > 0")
        require(self.alpha > 0, f"surrogate {self.name}: alpha must be > 0")
        require(self.shmr_scatter >= 0, f"surrogate {self.name}: shmr_scatter must be >= 0")
        require(self.cen_offset >= 0 and self.sat_offset >= 0, f"surrogate {self.name}: offsets must be >= 0")

    def as_dict(self) -> dict:
        return asdict(self)


VARIANTS: dict[str, SurrogateVariant] = {
    v.name: v for v in (
        SurrogateVariant(
            name="tng-like",
            description="surrogate standing in for IllustrisTNG: smooth central step, positive "
                        "assembly bias (early-forming, concentrated and dense-environment halos host "
                        "centrals at lower mass), satellites trace the dark matter",
            log_mmin=0.40, sigma_logm=0.30, log_m1=1.15, alpha=1.0,
            env_cen=-0.10, conc_cen=-0.12, env_sat=0.0, conc_sat=0.10,
            sn1=0.25, sn2=0.15, agn1=0.20,
            shmr_log_m1=11.44, shmr_n=0.0351, shmr_beta=1.376, shmr_gamma=0.608, shmr_scatter=0.18,
            beta_sn=0.30, gamma_agn=0.15, sat_stellar_factor=0.8,
            sat_radial=0.0, cen_offset=0.02, sat_offset=0.02),
        SurrogateVariant(
            name="simba-like",
            description="surrogate standing in for SIMBA: sharp central step, environmental "
                        "quenching of centrals in dense regions, more satellites there and in the "
                        "outskirts of halos, flatter satellite slope, stronger AGN dependence",
            log_mmin=0.55, sigma_logm=0.12, log_m1=0.85, alpha=0.8,
            env_cen=0.15, conc_cen=0.0, env_sat=-0.20, conc_sat=0.0,
            sn1=0.15, sn2=0.25, agn1=0.40,
            shmr_log_m1=11.60, shmr_n=0.0250, shmr_beta=1.10, shmr_gamma=0.80, shmr_scatter=0.25,
            beta_sn=0.20, gamma_agn=0.30, sat_stellar_factor=0.5,
            sat_radial=1.0, cen_offset=0.06, sat_offset=0.05),
    )
}


def get_variant(name: str) -> SurrogateVariant:
    """The registered surrogate variant `name` (ConfigError listing the names otherwise)."""
    try:
        return VARIANTS[name]
    except KeyError:
        raise ConfigError(f"galaxy model {name!r} unknown; expected one of {sorted(VARIANTS)}") from None


def mass_unit_for(box_size: float, n_particles: int, min_members: int = 20) -> float:
    """Resolution mass unit [Msun/h]: `min_members` particles at the fiducial Omega_m = 0.3.

    ``min_members * 0.3 * rho_crit * L^3 / N^3``; thresholds of the surrogate are multiples of it,
    so a box of 256^3 particles in 25 Mpc/h holds ~1.9e4 galaxies (tng-like; 128^3: ~2.8e3;
    32^3: a few tens), the CAMELS order.
    """
    return min_members * FIDUCIAL_OMEGA_M * RHO_CRIT * box_size**3 / float(n_particles) ** 3


def conditional_scores(mass: np.ndarray, x: np.ndarray, group: int = 50) -> np.ndarray:
    """Normal score of `x` among halos of similar mass (consecutive groups in mass order).

    Groups hold about `group` halos, fewer (down to 10) for catalogues of under 10 `group` halos,
    so that small boxes still compare halos of similar mass.

    Returns Phi^-1((rank + 1/2) / n_group) within each group: N(0, 1)-distributed at every mass,
    independent of mass by construction (Hearin et al. 2016's conditional percentiles). NaN in `x`
    scores 0.
    """
    n = len(mass)
    out = np.zeros(n)
    if n == 0:
        return out
    order = np.argsort(mass, kind="stable")
    group = int(np.clip(n // 10, 10, group))
    n_groups = max(1, n // group)
    for chunk in np.array_split(order, n_groups):
        vals = x[chunk]
        ok = np.isfinite(vals)
        if ok.sum() < 2:
            continue
        ranks = np.argsort(np.argsort(vals[ok], kind="stable"), kind="stable")
        out[chunk[ok]] = ndtri((ranks + 0.5) / ok.sum())
    return out


def _log10(params: dict, key: str) -> float:
    v = float(params.get(key, 1.0))
    if not v > 0:
        raise ConfigError(f"params: {key} must be > 0 for the galaxy surrogate, got {v}")
    return math.log10(v)


def occupation(halos: dict, variant: SurrogateVariant, params: dict, mass_unit: float
               ) -> tuple[np.ndarray, np.ndarray]:
    """Mean central and satellite numbers per halo, <N_cen> (h,) and <N_sat> (h,)."""
    mass = np.asarray(halos["mass"], dtype=np.float64)
    env = conditional_scores(mass, np.asarray(halos["environment"], dtype=np.float64))
    conc = conditional_scores(mass, np.asarray(halos["concentration"], dtype=np.float64))
    log_mmin = (math.log10(mass_unit) + variant.log_mmin + variant.sn1 * _log10(params, "a_sn1")
                + variant.sn2 * _log10(params, "a_sn2"))
    log_mmin_i = log_mmin + variant.env_cen * env + variant.conc_cen * conc
    log_m1_i = (log_mmin + variant.log_m1 + variant.agn1 * _log10(params, "a_agn1")
                + variant.env_sat * env + variant.conc_sat * conc)
    log_m = np.log10(mass)
    n_cen = 0.5 * (1.0 + erf((log_m - log_mmin_i) / variant.sigma_logm))
    n_sat = n_cen * 10.0 ** (variant.alpha * (log_m - log_m1_i))
    return n_cen, n_sat


def stellar_mass(halo_mass: np.ndarray, variant: SurrogateVariant, params: dict,
                 rng: np.random.Generator) -> np.ndarray:
    """Stellar mass [Msun/h] of galaxies in halos (or subhalos) of mass `halo_mass` [Msun/h].

    Moster et al. (2013, arXiv:1205.5807) eq. 2 with feedback-dependent slopes, times
    10^N(0, scatter).
    """
    beta = variant.shmr_beta + variant.beta_sn * _log10(params, "a_sn1")
    gamma = variant.shmr_gamma - variant.gamma_agn * _log10(params, "a_agn2")
    x = np.asarray(halo_mass, dtype=np.float64) / 10.0**variant.shmr_log_m1
    ratio = 2 * variant.shmr_n / (x ** (-beta) + x ** gamma)
    return halo_mass * ratio * 10.0 ** rng.normal(0.0, variant.shmr_scatter, size=np.shape(halo_mass))


def _pick_members(halos: dict, hosts: np.ndarray, box_size: float, radial: float,
                  rng: np.random.Generator) -> np.ndarray:
    """A member particle of halo hosts[j] for each j, drawn with weight (r/R200 + 0.05)^radial.

    Vectorised inverse-CDF sampling on the cumulative weights of all members (with replacement).
    """
    off = np.asarray(halos["member_offset"])
    mpos = np.asarray(halos["member_pos"], dtype=np.float64)
    n_mem = np.diff(off)
    owner = np.repeat(np.arange(len(n_mem)), n_mem)
    d = mpos - np.asarray(halos["pos"], dtype=np.float64)[owner]
    d -= box_size * np.round(d / box_size)
    r = np.sqrt((d * d).sum(1)) / np.maximum(np.asarray(halos["radius"], dtype=np.float64)[owner], 1e-12)
    cum = np.concatenate([[0.0], np.cumsum((r + 0.05) ** radial)])
    lo, hi = cum[off[hosts]], cum[off[hosts + 1]]
    pick = np.searchsorted(cum, lo + rng.random(len(hosts)) * (hi - lo), side="right") - 1
    return mpos[np.clip(pick, off[hosts], off[hosts + 1] - 1)]


def populate(halos: dict, box_size: float, variant: SurrogateVariant | str, params: dict,
             rng: np.random.Generator, *, mass_unit: float) -> dict:
    """Draw a galaxy catalogue on a halo catalogue (the surrogate's "hydro" galaxies).

    Parameters
    ----------
    halos : dict
        `find_halos` columns: ``pos`` (h,3) [Mpc/h], ``mass`` [Msun/h], ``radius`` [Mpc/h],
        ``concentration``, ``environment``, ``member_offset`` (h+1,), ``member_pos`` (m,3).
    box_size : float [Mpc/h]
    variant : SurrogateVariant or its registered name
    params : dict
        Astrophysics parameters ``a_sn1 a_agn1 a_sn2 a_agn2`` (missing ones = 1, fiducial).
    rng : numpy.random.Generator
    mass_unit : float
        Resolution mass [Msun/h] (see `mass_unit_for`).

    Returns
    -------
    dict: ``pos`` (g,3) float32 [Mpc/h] in [0, L), ``stellar_mass`` (g,) [Msun/h], ``is_central``
    int8, ``host`` int64 (row of `halos`), ``host_mass`` (g,) [Msun/h]; centrals first within each
    host, hosts in halo order.
    """
    if isinstance(variant, str):
        variant = get_variant(variant)
    mass = np.asarray(halos["mass"], dtype=np.float64)
    n_halos = len(mass)
    n_cen_mean, n_sat_mean = occupation(halos, variant, params, mass_unit)
    has_cen = rng.random(n_halos) < n_cen_mean
    n_sat = rng.poisson(n_sat_mean)
    centres = np.asarray(halos["pos"], dtype=np.float64)
    r200 = np.asarray(halos["radius"], dtype=np.float64)
    cen_host = np.flatnonzero(has_cen)
    sat_host = np.repeat(np.arange(n_halos), n_sat)
    cen_pos = centres[cen_host] + rng.normal(size=(len(cen_host), 3)) * (variant.cen_offset * r200[cen_host])[:, None]
    sat_pos = _pick_members(halos, sat_host, box_size, variant.sat_radial, rng)
    sat_pos = sat_pos + rng.normal(size=(len(sat_host), 3)) * (variant.sat_offset * r200[sat_host])[:, None]
    # infall masses of satellites: log-uniform between the resolution unit and a tenth of the host
    lo = math.log10(mass_unit)
    hi = np.log10(np.maximum(0.1 * mass[sat_host], mass_unit))
    sub_mass = np.concatenate([mass[cen_host], 10.0 ** (lo + rng.random(len(sat_host)) * (hi - lo))])
    host = np.concatenate([cen_host, sat_host]).astype(np.int64)
    central = np.concatenate([np.ones(len(cen_host)), np.zeros(len(sat_host))]).astype(np.int8)
    pos = np.concatenate([cen_pos, sat_pos]).reshape(-1, 3)
    mstar = stellar_mass(sub_mass, variant, params, rng)
    mstar = np.where(central == 1, mstar, mstar * variant.sat_stellar_factor)
    order = np.lexsort((1 - central, host))  # by host, central first
    pos = np.mod(pos[order], box_size).astype(np.float32)
    pos[pos >= box_size] = 0.0  # float32 rounding of values just below L
    host, central, mstar = host[order], central[order], mstar[order]
    return {"pos": pos, "stellar_mass": mstar, "is_central": central, "host": host,
            "host_mass": mass[host]}


def occupied_probability(halos: dict, box_size: float, grid: int, variant: SurrogateVariant | str,
                         params: dict, *, mass_unit: float, realisations: int = 100,
                         seed: int = 0) -> np.ndarray:
    """P(a voxel holds at least one galaxy) under the surrogate on these halos, by Monte Carlo.

    The surrogate is stochastic (Bernoulli centrals, Poisson satellites on random members), so no
    prediction from the dark matter, however good, can place every galaxy. Given these halos this is
    the best one can know: the frequency with which `realisations` independent `populate` draws
    (seeds ``[seed, k]``) occupy each voxel (NGP, as `galaxygen simulate` paints). Ranking voxels by
    it is the Bayes-optimal classifier of galaxies drawn on *these* halos; `best_precision_at_recall`
    turns it into the highest voxel precision any model can expect at a recall. A built-in box
    stores the COLA run's halos while its galaxies were drawn on the PM run's, so against a box's
    own galaxies the ranking reaches far less (`benchmarks/bench_train.py`, `surrogate_limit`).

    Returns (grid, grid, grid) float64 in [0, 1]; its standard error is ≤ 0.5 / sqrt(realisations).
    """
    require(realisations >= 1, f"realisations: expected >= 1, got {realisations}")
    variant = get_variant(variant) if isinstance(variant, str) else variant
    hits = np.zeros((grid,) * 3, dtype=np.int32)
    for k in range(realisations):
        gal = populate(halos, box_size, variant, params, np.random.default_rng([seed, k]), mass_unit=mass_unit)
        if len(gal["pos"]):
            hits += np.asarray(paint(gal["pos"], grid, box_size, scheme="ngp")) > 0
    return hits / realisations


def best_precision_at_recall(prob: np.ndarray, target_recall: float) -> float:
    """Expected voxel precision of the Bayes-optimal ranking at an expected recall.

    prob : P(voxel occupied), any shape (e.g. `occupied_probability`). Keeping the voxels of highest
    probability until their expected number of occupied voxels, sum(prob kept), reaches
    target_recall × sum(prob) gives the largest expected true positives for the number kept
    (Neyman-Pearson); the precision is sum(prob kept) / number kept.
    """
    require(0.0 < target_recall <= 1.0, f"target_recall: expected in (0, 1], got {target_recall}")
    p = np.sort(np.asarray(prob, dtype=np.float64).ravel())[::-1]
    tp = np.cumsum(p)
    if tp[-1] <= 0:
        raise ConfigError("best_precision_at_recall: no voxel can be occupied (all probabilities 0)")
    kept = int(np.searchsorted(tp, target_recall * tp[-1] * (1 - 1e-12))) + 1
    return float(tp[kept - 1] / kept)
