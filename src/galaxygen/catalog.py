"""A galaxy catalogue from a galaxy field: each galaxy placed inside the voxel that counts it.

Rule (`place_galaxies`): voxel ``v`` holding ``c`` galaxies and ``m`` DM particles (NGP, the
voxel convention of `galaxygen.mesh`: voxel i covers [i h, (i+1) h)) puts its galaxies on ``c``
of its particles chosen at random, distinct while ``c <= m`` (the particles are taken in a random
order, cycling through them again beyond ``m``); a voxel without particles puts them uniformly
inside itself, at least `EDGE` voxel sides away from its faces (so that float32 rounding keeps them
in). NGP painting of the catalogue (``galaxygen.mesh.paint(pos, grid, box_size, scheme="ngp")``)
gives the galaxy field back exactly.
"""

from __future__ import annotations

import numpy as np

from galaxygen.errors import GalaxygenError

EDGE = 1e-4  # uniform placements stay this fraction of a voxel side inside the voxel


def voxel_index(pos: np.ndarray, grid: int, box_size: float) -> np.ndarray:
    """Flat index ``(i * G + j) * G + k`` of the voxel holding each position, int64 (n,).

    `pos` (n, 3) [Mpc/h], wrapped periodically; the arithmetic of `galaxygen.mesh`'s NGP painting
    (float64 ``x * grid / box_size``, floored).
    """
    u = np.asarray(pos, dtype=np.float64) * (grid / float(box_size))
    u -= grid * np.floor(u / grid)
    ijk = np.floor(u).astype(np.int64)
    ijk[ijk >= grid] = 0  # rounding of a tiny negative coordinate
    return (ijk[:, 0] * grid + ijk[:, 1]) * grid + ijk[:, 2]


def place_galaxies(counts: np.ndarray, particles: np.ndarray, box_size: float,
                   rng: np.random.Generator) -> np.ndarray:
    """Positions of the galaxies of a count field, by the module's rule.

    Parameters
    ----------
    counts : array (G, G, G) of non-negative whole numbers
        Galaxies per voxel (e.g. ``fields/galaxies``).
    particles : array (m, 3)
        DM particle positions [comoving Mpc/h] (any values; wrapped into [0, box_size)).
    box_size : float
        Side of the periodic box [comoving Mpc/h].
    rng : numpy Generator
        The only source of randomness (same generator state -> same catalogue).

    Returns
    -------
    float32 array (n, 3) [comoving Mpc/h] in [0, box_size), n = counts.sum(), galaxies ordered by
    voxel (flat index) and, on particles, at particle positions exactly (as float32).
    """
    counts = np.asarray(counts)
    grid = counts.shape[0]
    if counts.ndim != 3 or counts.shape != (grid,) * 3:
        raise GalaxygenError(f"galaxy counts: expected a cubic (G, G, G) grid, got shape {counts.shape}")
    if not np.all(np.isfinite(counts)) or np.any(counts < 0) or np.any(counts != np.round(counts)):
        raise GalaxygenError("galaxy counts: expected non-negative whole numbers per voxel")
    flat = counts.reshape(-1).astype(np.int64)
    pos = np.asarray(particles).reshape(-1, 3)
    if not (pos.dtype == np.float32 and (len(pos) == 0 or (pos.min() >= 0 and pos.max() < np.float32(box_size)))):
        pos = np.mod(pos.astype(np.float64), box_size).astype(np.float32)
        pos[pos >= np.float32(box_size)] = 0.0  # float32 rounding up to the box side wraps to 0
    pvox = voxel_index(pos, grid, box_size)
    useful = np.flatnonzero(flat[pvox] > 0)  # only particles of voxels that hold galaxies can be picked
    pvox = pvox[useful]
    order = useful[np.lexsort((rng.random(len(pvox)), pvox))]  # those particles by voxel, random within one
    per_voxel = np.bincount(pvox, minlength=grid ** 3)
    first = np.cumsum(per_voxel) - per_voxel

    gvox = np.repeat(np.arange(grid ** 3), flat)
    rank = np.arange(len(gvox)) - np.repeat(np.cumsum(flat) - flat, flat)  # galaxy's rank in its voxel
    m = per_voxel[gvox]
    on_particle = m > 0
    out = np.empty((len(gvox), 3), dtype=np.float32)
    pick = first[gvox[on_particle]] + rank[on_particle] % m[on_particle]
    out[on_particle] = pos[order[pick]]
    empty = gvox[~on_particle]
    ijk = np.stack(np.unravel_index(empty, (grid,) * 3), axis=1)
    u = rng.uniform(EDGE, 1.0 - EDGE, size=(len(empty), 3))
    out[~on_particle] = ((ijk + u) * (box_size / grid)).astype(np.float32)
    return out
