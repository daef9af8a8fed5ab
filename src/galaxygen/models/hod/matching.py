"""Galaxy → host-halo matching and per-halo occupation counts, as a user with N-body halos has them.

Built-in boxes: the galaxy catalogue's ``host_halo`` column is the row of the host in the same
file's ``catalogs/halos`` (−1 = none). Otherwise (CAMELS: hydro galaxies, DM-only halos) each
galaxy goes to the nearest halo centre (periodic) that lies within that halo's ``radius``
[Mpc/h] (R200c from the mass when the catalogue has no radius column).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from galaxygen.box import Box
from galaxygen.errors import BoxFormatError
from galaxygen.models.hod.populate import r200c, require_halos

N_CANDIDATES = 8  # nearest halo centres examined per galaxy


def match_nearest(gal_pos: np.ndarray, halo_pos: np.ndarray, halo_radius: np.ndarray,
                  box_size: float) -> np.ndarray:
    """Host row for each galaxy: the nearest halo centre whose `halo_radius` contains it, else −1.

    Distances are periodic in a box of side `box_size` [Mpc/h]; positions (n,3), radii (m,).
    Of the `N_CANDIDATES` nearest centres, the closest one with distance < radius wins.
    """
    n_gal, n_halo = len(gal_pos), len(halo_pos)
    host = np.full(n_gal, -1, dtype=np.int64)
    if n_gal == 0 or n_halo == 0:
        return host
    tree = cKDTree(np.mod(np.asarray(halo_pos, dtype=np.float64), box_size), boxsize=box_size)
    k = min(N_CANDIDATES, n_halo)
    dist, idx = tree.query(np.mod(np.asarray(gal_pos, dtype=np.float64), box_size), k=k)
    dist, idx = dist.reshape(n_gal, k), idx.reshape(n_gal, k)
    inside = dist < np.asarray(halo_radius, dtype=np.float64)[idx]
    first = np.argmax(inside, axis=1)
    ok = inside[np.arange(n_gal), first]
    host[ok] = idx[ok, first[ok]]
    return host


@dataclass(frozen=True)
class Occupation:
    """Per-halo galaxy counts of one box.

    mass : (n,) halo masses [Msun/h]; n_gal : (n,) galaxies matched to each halo;
    n_galaxies : all galaxies of the box (matched or not); volume : box volume [(Mpc/h)^3];
    matching : "host_halo" or "nearest-halo"; n_unmatched : galaxies without a host.
    """

    mass: np.ndarray
    n_gal: np.ndarray
    n_galaxies: int
    volume: float
    matching: str
    n_unmatched: int


def box_occupation(box: Box, where: str | None = None) -> Occupation:
    """Match the galaxies of `box` to its halos and count them per halo."""
    where = where or f"box {box.name!r}"
    require_halos(box.halos, where)
    if box.galaxy_catalog is None or "pos" not in box.galaxy_catalog:
        raise BoxFormatError(f"{where}: catalogs/galaxies/pos: missing; fitting the HOD needs the "
                             "galaxy catalogue of the training box (positions, and host_halo if known)")
    halos, gal = box.halos, box.galaxy_catalog
    mass = np.asarray(halos["mass"], dtype=np.float64)
    n_halo, n_g = len(mass), len(gal["pos"])
    if "host_halo" in gal:
        host = np.asarray(gal["host_halo"], dtype=np.int64)
        if ((host < -1) | (host >= n_halo)).any():
            raise BoxFormatError(f"{where}: catalogs/galaxies/host_halo: expected rows of "
                                 f"catalogs/halos in [0, {n_halo}) or -1")
        matching = "host_halo"
    else:
        radius = (np.asarray(halos["radius"], dtype=np.float64) if "radius" in halos
                  else r200c(mass, box.redshift, float(box.params.get("omega_m", 0.3))))
        host = match_nearest(gal["pos"], halos["pos"], radius, box.box_size)
        matching = "nearest-halo"
    counts = np.bincount(host[host >= 0], minlength=n_halo).astype(np.int64)
    return Occupation(mass=mass, n_gal=counts, n_galaxies=int(n_g), volume=float(box.box_size) ** 3,
                      matching=matching, n_unmatched=int((host < 0).sum()))
