"""Small learnable boxes for the learn tests: galaxies are a local function of the DM field."""

from __future__ import annotations

import numpy as np


def learnable_box(name: str = "CV_0", grid: int = 16, seed: int = 0, box_size: float = 25.0,
                  velocity: bool = False, suite: str = "test"):
    """A Box whose galaxies follow the DM: counts = clip(floor((dm - 14) / 6), 0, 3).

    DM: Poisson counts of a log-normal field (smoothed Gaussian noise), so a few per cent of the
    voxels are occupied and a tiny network can learn the map.
    """
    from scipy.ndimage import gaussian_filter

    from galaxygen.box import Box

    rng = np.random.default_rng(seed)
    g = gaussian_filter(rng.normal(size=(grid,) * 3), 1.0, mode="wrap")
    g /= g.std()
    dm = rng.poisson(6.0 * np.exp(0.8 * g)).astype(np.float32)
    gal = np.clip(np.floor((dm - 14.0) / 6.0), 0, 3).astype(np.float32)
    vel = rng.normal(0, 100, size=(3,) + (grid,) * 3).astype(np.float32) if velocity else None
    params = {"omega_m": 0.3, "sigma_8": 0.8, "seed": float(seed)}
    return Box(box_size=box_size, grid=grid, redshift=0.0, source="synthetic", suite=suite, name=name,
               dm=dm, galaxies=gal, params=params, dm_velocity=vel)


def write_learnable_boxes(folder, n: int = 3, grid: int = 16, velocity: bool = False):
    """Write boxes CV_0..CV_{n-1} to `folder`; returns the folder."""
    from galaxygen.box import write_box

    for i in range(n):
        write_box(folder / f"CV_{i}.h5", learnable_box(f"CV_{i}", grid, seed=i, velocity=velocity))
    return folder
