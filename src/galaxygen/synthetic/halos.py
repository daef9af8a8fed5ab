"""FoF-like halo catalogues with a power-law mass function, in the box format's columns."""

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
    """Halos uniform in the box [Mpc/h] (columns pos (n,3), mass [Msun/h], n_particles); with `members`,
    up to `max_members` member particles each (member_offset (n+1,), member_pos (m,3) [Mpc/h]),
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
