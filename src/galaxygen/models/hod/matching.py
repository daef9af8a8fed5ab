"""Galaxy → host-halo matching and per-halo occupation counts, as a user with N-body halos has them.

Built-in boxes: the galaxy catalogue's ``host_halo`` column is the row of the host in the same
file's ``catalogs/halos`` (−1 = none). Otherwise (CAMELS: hydro galaxies, DM-only halos) each
galaxy goes to the nearest of its 8 nearest halo centres (periodic) that lies within that halo's
``radius`` [Mpc/h] (R200c from the mass when the catalogue has no radius column); see
`galaxygen.halos.matching.match_hosts`, rule "inside".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from galaxygen.box import Box
from galaxygen.errors import BoxFormatError
from galaxygen.halos.matching import match_hosts
from galaxygen.models.hod.populate import r200c, require_halos

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
        host = match_hosts(gal["pos"], halos["pos"], radius, box.box_size)
        matching = "nearest-halo"
    counts = np.bincount(host[host >= 0], minlength=n_halo).astype(np.int64)
    return Occupation(mass=mass, n_gal=counts, n_galaxies=int(n_g), volume=float(box.box_size) ** 3,
                      matching=matching, n_unmatched=int((host < 0).sum()))
