"""Shared fixtures: small box files built in memory or on disk (16^3-32^3 grids), one torch thread."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("GALAXYGEN_NO_PROGRESS", "1")


def small_box(name: str = "CV_0", grid: int = 16, box_size: float = 25.0, seed: int = 0,
              n_halos: int = 40, source: str = "synthetic", suite: str = "test", with_catalogs: bool = True):
    """A small valid Box: Poisson DM counts, halos with members, galaxies in the halos."""
    from galaxygen.box import Box

    rng = np.random.default_rng(seed)
    dm = rng.poisson(8.0, size=(grid,) * 3).astype(np.float32)
    halo_pos = rng.uniform(0, box_size, size=(n_halos, 3)).astype(np.float32)
    mass = 10 ** rng.uniform(10.5, 13.5, size=n_halos)
    n_mem = np.maximum(20, (mass / 1e10).astype(np.int64) // 10)
    offset = np.concatenate([[0], np.cumsum(n_mem)]).astype(np.int64)
    members = (np.repeat(halo_pos, n_mem, axis=0)
               + rng.normal(0, 0.2, size=(offset[-1], 3))).astype(np.float32) % box_size
    halos = {"pos": halo_pos, "mass": mass, "n_particles": n_mem,
             "member_offset": offset, "member_pos": members}
    n_gal = rng.poisson(np.maximum(mass / 3e11, 0.0) ** 0.9)
    host = np.repeat(np.arange(n_halos), n_gal)
    gpos = (halo_pos[host] + rng.normal(0, 0.1, size=(len(host), 3))).astype(np.float32) % box_size
    is_central = np.zeros(len(host), dtype=np.int8)
    if len(host):
        is_central[np.r_[0, np.flatnonzero(np.diff(host)) + 1]] = 1
    galaxies = np.zeros((grid,) * 3, dtype=np.float32)
    idx = np.floor(gpos / box_size * grid).astype(np.int64) % grid
    np.add.at(galaxies, (idx[:, 0], idx[:, 1], idx[:, 2]), 1.0)
    gcat = {"pos": gpos, "stellar_mass": 10 ** rng.uniform(8.5, 11, size=len(host)),
            "is_central": is_central, "host_halo": host.astype(np.int64)}
    params = {"omega_m": 0.3, "sigma_8": 0.8, "a_sn1": 1.0, "a_agn1": 1.0, "a_sn2": 1.0,
              "a_agn2": 1.0, "seed": float(seed)}
    return Box(box_size=box_size, grid=grid, redshift=0.0, source=source, suite=suite, name=name,
               dm=dm, galaxies=galaxies, params=params,
               halos=halos if with_catalogs else None,
               galaxy_catalog=gcat if with_catalogs else None)


@pytest.fixture
def make_box():
    """Factory fixture: ``make_box(name=..., grid=..., seed=...)`` -> Box (see `small_box`)."""
    return small_box


@pytest.fixture
def box_dir(tmp_path):
    """A folder with four small box files CV_0..CV_3 (16^3)."""
    from galaxygen.box import write_box

    d = tmp_path / "boxes"
    for i in range(4):
        write_box(d / f"CV_{i}.h5", small_box(name=f"CV_{i}", seed=i))
    return d


@pytest.fixture
def single_thread():
    """One torch thread (restored afterwards): on a shared 2-core machine OpenMP spinning of tiny
    convolutions costs 10-30x (measured). Modules of small-network tests opt in with
    ``pytestmark = pytest.mark.usefixtures("single_thread")``."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
