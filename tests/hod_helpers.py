"""Shared builders for the HOD tests: boxes with galaxies drawn from a known HOD (halos from
:mod:`galaxygen.synthetic.halos`)."""

from __future__ import annotations

import numpy as np

from galaxygen.synthetic.halos import halo_catalogue


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
