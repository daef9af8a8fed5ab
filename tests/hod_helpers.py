"""Shared builders for the HOD tests: FoF-like halo catalogues and boxes with galaxies drawn
from a known HOD."""

from __future__ import annotations

import numpy as np

PARTICLE_MASS = 1e10  # Msun/h: FoF masses are multiples of it, as in a real catalogue


def halo_masses(rng: np.random.Generator, n: int, *, slope: float = -0.9, n_min: int = 10,
                m_max: float = 1e15) -> np.ndarray:
    """n halo masses [Msun/h] from dn/dlnM ∝ M^slope above n_min particles, in particle units."""
    lo = n_min * PARTICLE_MASS
    u = rng.random(n)
    m = (lo ** slope + u * (m_max ** slope - lo ** slope)) ** (1.0 / slope)
    return np.maximum(np.round(m / PARTICLE_MASS), n_min) * PARTICLE_MASS


def halo_catalogue(rng: np.random.Generator, n: int, box_size: float, *, members: bool = False,
                   max_members: int = 30) -> dict[str, np.ndarray]:
    """Halos uniform in the box; with `members`, up to `max_members` member particles each,
    Gaussian around the centre with a 0.1 Mpc/h spread."""
    mass = halo_masses(rng, n)
    pos = rng.uniform(0, box_size, size=(n, 3)).astype(np.float32)
    halos = {"pos": pos, "mass": mass, "n_particles": (mass / PARTICLE_MASS).astype(np.int64)}
    if members:
        n_mem = np.minimum(halos["n_particles"], max_members)
        off = np.concatenate([[0], np.cumsum(n_mem)]).astype(np.int64)
        mpos = np.repeat(pos, n_mem, axis=0) + rng.normal(0, 0.1, size=(int(off[-1]), 3))
        halos["member_offset"] = off
        halos["member_pos"] = (np.mod(mpos, box_size)).astype(np.float32)
    return halos


def ngp_counts(pos: np.ndarray, grid: int, box_size: float) -> np.ndarray:
    """Independent NGP painting for the tests: voxel i covers [i L/N, (i+1) L/N)."""
    ijk = np.floor(np.asarray(pos, dtype=np.float64) * (grid / box_size)).astype(np.int64) % grid
    flat = (ijk[:, 0] * grid + ijk[:, 1]) * grid + ijk[:, 2]
    return np.bincount(flat, minlength=grid ** 3).reshape((grid,) * 3).astype(np.float32)


def hod_box(model, rng: np.random.Generator, *, name: str, n_halos: int = 3000,
            box_size: float = 50.0, grid: int = 16, suite: str = "truth", members: bool = False,
            with_host: bool = True):
    """A Box whose galaxies are one realisation of `model` in its halos (NGP-painted counts)."""
    from galaxygen.box import Box
    from galaxygen.models.hod.populate import populate

    halos = halo_catalogue(rng, n_halos, box_size, members=members)
    cat = populate(model, halos, box_size, rng)
    cat["stellar_mass"] = np.full(len(cat["pos"]), 1e10)
    if not with_host:
        del cat["host_halo"]
    dm = rng.poisson(4.0, size=(grid,) * 3).astype(np.float32)
    return Box(box_size=box_size, grid=grid, redshift=0.0, source="synthetic", suite=suite, name=name,
               dm=dm, galaxies=ngp_counts(cat["pos"], grid, box_size),
               params={"omega_m": 0.3, "sigma_8": 0.8}, halos=halos, galaxy_catalog=cat)
