"""Place HOD galaxies in halos and build prediction box files.

Centrals sit at the halo centre. Satellites sit on random member particles of their halo when the
catalogue lists members (``member_offset`` / ``member_pos``), else they are drawn from an NFW
profile (Navarro, Frenk & White 1997, arXiv:astro-ph/9611107) truncated at R200c, with the
Duffy et al. 2008 concentration–mass relation (arXiv:0804.2486) unless the halos carry a
``concentration`` column.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
from scipy.special import lambertw

from galaxygen.box import Box
from galaxygen.constants import RHO_CRIT
from galaxygen.errors import BoxFormatError
from galaxygen.mesh import paint
from galaxygen.models.hod.occupation import HODModel
from galaxygen.prediction import prediction_box


def r200c(mass, redshift: float = 0.0, omega_m: float = 0.3) -> np.ndarray:
    """Comoving radius [Mpc/h] enclosing 200 times the critical density at `redshift`.

    M = (4π/3) 200 ρ_c(z) r_phys³ with ρ_c(z) = ρ_c0 [Ωm (1+z)³ + 1 − Ωm] (flat ΛCDM);
    returned as comoving r = (1+z) r_phys. `mass` in Msun/h, shape (n,).
    """
    ez2 = omega_m * (1.0 + redshift) ** 3 + 1.0 - omega_m
    r_phys = (3.0 * np.asarray(mass, dtype=np.float64) / (4.0 * np.pi * 200.0 * RHO_CRIT * ez2)) ** (1 / 3)
    return r_phys * (1.0 + redshift)


def duffy08_concentration(mass, redshift: float = 0.0) -> np.ndarray:
    """NFW concentration c200c = 5.71 (M / 2e12)^-0.084 (1+z)^-0.47 (Duffy et al. 2008,
    arXiv:0804.2486, Table 1, full sample, Δ = 200c); `mass` in Msun/h."""
    return 5.71 * (np.asarray(mass, dtype=np.float64) / 2e12) ** -0.084 * (1.0 + redshift) ** -0.47


def nfw_radius(concentration, rng: np.random.Generator) -> np.ndarray:
    """Radii in units of R200 drawn from an NFW profile truncated at R200.

    Inverts the enclosed mass m(x) = ln(1+x) − x/(1+x), x = r/r_s, exactly:
    x = −1 − 1/W0(−exp(−1 − q)), q = u m(c), u ~ U(0,1) (Robotham & Howlett 2018,
    arXiv:1805.09550). `concentration` shape (n,); returns r/R200, shape (n,).
    """
    c = np.asarray(concentration, dtype=np.float64)
    q = rng.random(c.shape) * (np.log1p(c) - c / (1.0 + c))
    x = -1.0 - 1.0 / np.real(lambertw(-np.exp(-1.0 - q), 0))
    return np.clip(x / c, 0.0, 1.0)


def _unit_vectors(n: int, rng: np.random.Generator) -> np.ndarray:
    v = rng.normal(size=(n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def member_choice(offset: np.ndarray, host: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A member-particle row for each satellite of `host` (sorted or not), −1 for halos without
    members: distinct members while a halo has at least as many members as satellites (as
    Pylians' ``HOD_library``), uniformly with replacement otherwise."""
    out = np.full(len(host), -1, dtype=np.int64)
    halos, inv, n_sat = np.unique(host, return_inverse=True, return_counts=True)
    start, n_mem = offset[halos], offset[halos + 1] - offset[halos]
    distinct = (n_mem >= n_sat) & (n_mem > 0)
    # ranks of the satellites within their halo (0..n_sat-1)
    order = np.argsort(inv, kind="stable")
    first = np.concatenate([[0], np.cumsum(n_sat)[:-1]])
    rank = np.empty(len(host), dtype=np.int64)
    rank[order] = np.arange(len(host)) - np.repeat(first, n_sat)
    if distinct.any():
        # every member of these halos gets a random key; the n_sat smallest keys are chosen
        hd = np.flatnonzero(distinct)
        counts = n_mem[hd]
        lab = np.repeat(np.arange(len(hd)), counts)
        row = np.repeat(start[hd] - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts) + np.arange(counts.sum())
        srt = np.lexsort((rng.random(len(row)), lab))
        base = np.concatenate([[0], np.cumsum(counts)[:-1]])
        chosen = row[srt]                                     # members of each halo, shuffled
        slot = np.full(len(halos), -1, dtype=np.int64)
        slot[hd] = base
        sel = distinct[inv]
        out[sel] = chosen[slot[inv[sel]] + rank[sel]]
    repl = ~distinct[inv] & (n_mem[inv] > 0)
    if repl.any():
        h = inv[repl]
        out[repl] = start[h] + np.floor(rng.random(int(repl.sum())) * n_mem[h]).astype(np.int64)
    return out


def satellite_positions(halos: Mapping[str, np.ndarray], host: np.ndarray, box_size: float,
                        rng: np.random.Generator, *, redshift: float = 0.0,
                        omega_m: float = 0.3) -> np.ndarray:
    """Positions [Mpc/h] (len(host), 3) for satellites of the halos `host` (row indices).

    A halo with members puts its satellites on distinct random member particles (`member_choice`);
    a halo without members (or a catalogue without them) uses the NFW profile.
    """
    pos = np.asarray(halos["pos"], dtype=np.float64)[host]
    nfw = np.ones(len(host), dtype=bool)
    if "member_offset" in halos and len(host):
        pick = member_choice(np.asarray(halos["member_offset"], dtype=np.int64), host, rng)
        has = pick >= 0
        pos[has] = np.asarray(halos["member_pos"], dtype=np.float64)[pick[has]]
        nfw = ~has
    if nfw.any():
        mass = np.asarray(halos["mass"], dtype=np.float64)[host[nfw]]
        if "radius" in halos:
            rad = np.asarray(halos["radius"], dtype=np.float64)[host[nfw]]
        else:
            rad = r200c(mass, redshift, omega_m)
        if "concentration" in halos:
            conc = np.asarray(halos["concentration"], dtype=np.float64)[host[nfw]]
            conc = np.where(np.isfinite(conc) & (conc > 0), conc, duffy08_concentration(mass, redshift))
        else:
            conc = duffy08_concentration(mass, redshift)
        r = nfw_radius(conc, rng) * rad
        pos[nfw] += r[:, None] * _unit_vectors(int(nfw.sum()), rng)
    return np.mod(pos, box_size)


def require_halos(halos: Mapping[str, np.ndarray] | None, where: str) -> None:
    """Fail with a message naming what is missing when a box lacks a usable halo catalogue."""
    if halos is None:
        raise BoxFormatError(f"{where}: catalogs/halos: missing; the HOD needs a halo catalogue "
                             "(columns pos [Mpc/h] and mass [Msun/h]) from the N-body run")
    for col in ("pos", "mass"):
        if col not in halos:
            raise BoxFormatError(f"{where}: catalogs/halos/{col}: missing; the HOD needs halo "
                                 "positions (pos [Mpc/h]) and masses (mass [Msun/h])")


def populate(model: HODModel, halos: Mapping[str, np.ndarray], box_size: float,
             rng: np.random.Generator, *, redshift: float = 0.0, omega_m: float = 0.3,
             where: str = "halos") -> dict[str, np.ndarray]:
    """One HOD realisation in a halo catalogue.

    Returns a galaxy catalogue: ``pos`` (n,3) float32 [Mpc/h], ``is_central`` (n,) int8,
    ``host_halo`` (n,) int64 (row in `halos`). Centrals come first, then satellites.
    """
    require_halos(halos, where)
    mass = np.asarray(halos["mass"], dtype=np.float64)
    n_cen, n_sat = model.draw(mass, rng)
    cen_host = np.flatnonzero(n_cen > 0).astype(np.int64)
    sat_host = np.repeat(np.arange(len(mass), dtype=np.int64), n_sat)
    cen_pos = np.mod(np.asarray(halos["pos"], dtype=np.float64)[cen_host], box_size)
    sat_pos = satellite_positions(halos, sat_host, box_size, rng, redshift=redshift, omega_m=omega_m)
    pos = np.concatenate([cen_pos, sat_pos]).reshape(-1, 3)
    # float32 rounding can land exactly on box_size; keep positions in [0, L)
    pos32 = pos.astype(np.float32)
    pos32[pos32 >= np.float32(box_size)] = 0.0
    return {"pos": pos32,
            "is_central": np.concatenate([np.ones(len(cen_host), np.int8), np.zeros(len(sat_host), np.int8)]),
            "host_halo": np.concatenate([cen_host, sat_host])}


def paint_counts(pos: np.ndarray, grid: int, box_size: float) -> np.ndarray:
    """Galaxies per voxel (NGP), float32 (grid, grid, grid), via `galaxygen.mesh.paint`."""
    field = paint(np.asarray(pos, dtype=np.float32).reshape(-1, 3), grid, box_size, scheme="ngp")
    field = field.detach().cpu().numpy() if hasattr(field, "detach") else np.asarray(field)
    return np.asarray(field, dtype=np.float32)


def populate_box(box: Box, hod: HODModel, rng: np.random.Generator, **provenance: Any) -> Box:
    """The prediction box made from `box` by one HOD realisation in its halos (catalogue + NGP counts).

    `provenance`: the keywords of `galaxygen.prediction.prediction_box` (model, trained_on, seed, ...).
    The DM velocity grid is not copied (predictions carry the input ``fields/dm`` only).
    """
    where = f"box {box.name!r}"
    require_halos(box.halos, where)
    cat = populate(hod, box.halos, box.box_size, rng, redshift=box.redshift,
                   omega_m=float(box.params.get("omega_m", 0.3)), where=where)
    counts = paint_counts(cat["pos"], box.grid, box.box_size)
    return prediction_box(box.replace(dm_velocity=None), counts, galaxy_catalog=cat, **provenance)
