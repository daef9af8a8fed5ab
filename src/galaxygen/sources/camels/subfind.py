"""Halo and galaxy catalogues from CAMELS Subfind files (``groups_NNN`` / ``fof_subhalo_tab_NNN``).

Units on disk: positions and radii in comoving kpc/h, masses in 1e10 Msun/h, ``SubhaloVel`` in
km/s (peculiar), ``GroupVel`` in km/s / a. A galaxy is a subhalo with stars: stellar mass is
``SubhaloMassType[:, 4]`` (column 5 is black holes), the default cut is at least 20 star particles
(``SubhaloLenType[:, 4] >= 20``), or a stellar-mass threshold instead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from galaxygen.sources.camels.hdf5 import IngestError, concat_columns, file_parts, open_h5
from galaxygen.sources.camels.snapshot import KPC, MASS_UNIT

STARS = 4  # particle type of stars in Gadget/Arepo outputs


def _header_time(path: Path) -> float | None:
    with open_h5(path) as f:
        if "Header" in f and "Time" in f["Header"].attrs:
            return float(f["Header"].attrs["Time"])
    return None


def _positions(raw: np.ndarray, box_size: float, where: str) -> np.ndarray:
    """kpc/h -> Mpc/h in [0, L), checking that the values are kpc/h inside the box."""
    raw = np.asarray(raw, dtype=np.float64)
    if raw.ndim != 2 or raw.shape[1] != 3:
        raise IngestError(f"{where}: expected shape (n, 3), got {raw.shape}")
    if len(raw) and (raw.min() < -1e-3 * box_size / KPC or raw.max() > 1.001 * box_size / KPC):
        raise IngestError(f"{where}: wrong units: positions span [{raw.min():g}, {raw.max():g}], outside the box "
                          f"[0, {box_size / KPC:g}] kpc/h")
    pos = (raw * KPC) % box_size
    pos[pos >= box_size] -= box_size
    return pos.astype(np.float32)


def read_halos(first: Path, box_size: float) -> dict[str, np.ndarray]:
    """FoF groups of an N-body Subfind catalogue as a galaxygen halo catalogue.

    Returns columns ``pos`` (n,3) [Mpc/h], ``mass`` (FoF mass, Msun/h), ``m200c`` [Msun/h],
    ``radius`` (R_200c, Mpc/h), ``n_particles`` (DM particles), and ``vel`` (n,3) [km/s] when the
    file has ``GroupVel``.
    """
    parts = file_parts(first)
    cols = concat_columns(parts, "Group", ["GroupPos", "GroupMass", "Group_M_Crit200", "Group_R_Crit200",
                                           "GroupLenType"], optional=["GroupVel"])
    if not cols:
        z3 = np.zeros((0, 3), np.float32)
        return {"pos": z3, "mass": np.zeros(0), "m200c": np.zeros(0), "radius": np.zeros(0, np.float32),
                "n_particles": np.zeros(0, np.int64)}
    out = {
        "pos": _positions(cols["GroupPos"], box_size, f"{first}: Group/GroupPos"),
        "mass": cols["GroupMass"].astype(np.float64) * MASS_UNIT,
        "m200c": cols["Group_M_Crit200"].astype(np.float64) * MASS_UNIT,
        "radius": (cols["Group_R_Crit200"].astype(np.float64) * KPC).astype(np.float32),
        "n_particles": np.asarray(cols["GroupLenType"])[:, 1].astype(np.int64),
    }
    a = _header_time(parts[0])
    if "GroupVel" in cols and a:
        out["vel"] = (cols["GroupVel"].astype(np.float64) / a).astype(np.float32)
    return out


def read_galaxies(first: Path, box_size: float, *, min_star_particles: int | None = 20,
                  min_stellar_mass: float | None = None) -> dict[str, np.ndarray]:
    """Galaxies (subhalos with stars passing the cut) of a hydro Subfind catalogue.

    Parameters
    ----------
    first : first file of the catalogue
    box_size : [Mpc/h]
    min_star_particles : keep subhalos with ``SubhaloLenType[:, 4] >= min_star_particles``
    min_stellar_mass : or, when given, with stellar mass ``SubhaloMassType[:, 4]`` >= this [Msun/h]

    Returns
    -------
    dict
        ``pos`` (n,3) [Mpc/h], ``stellar_mass`` [Msun/h], ``is_central`` int8 (the subhalo is its
        group's ``GroupFirstSub``), ``subhalo_index`` and ``hydro_group`` (row in the hydro
        catalogue, int64), ``n_star_particles``, ``vel`` (n,3) [km/s] when present. ``host_halo``
        is added by the caller (`galaxygen.halos.matching.match_hosts`).
    """
    parts = file_parts(first)
    sub = concat_columns(parts, "Subhalo", ["SubhaloPos", "SubhaloMassType", "SubhaloLenType", "SubhaloGrNr"],
                         optional=["SubhaloVel"])
    grp = concat_columns(parts, "Group", ["GroupFirstSub"])
    if not sub:
        return {"pos": np.zeros((0, 3), np.float32), "stellar_mass": np.zeros(0), "is_central": np.zeros(0, np.int8),
                "subhalo_index": np.zeros(0, np.int64), "hydro_group": np.zeros(0, np.int64),
                "n_star_particles": np.zeros(0, np.int64)}
    mtype, ltype = np.asarray(sub["SubhaloMassType"]), np.asarray(sub["SubhaloLenType"])
    for key, arr in (("SubhaloMassType", mtype), ("SubhaloLenType", ltype)):
        if arr.ndim != 2 or arr.shape[1] <= STARS:
            raise IngestError(f"{first}: Subhalo/{key} has shape {arr.shape}, expected (n, 6)")
    mstar = mtype[:, STARS].astype(np.float64) * MASS_UNIT
    nstar = ltype[:, STARS].astype(np.int64)
    keep = mstar >= min_stellar_mass if min_stellar_mass is not None else nstar >= int(min_star_particles or 0)
    keep &= nstar > 0
    idx = np.flatnonzero(keep)
    group = np.asarray(sub["SubhaloGrNr"]).astype(np.int64)[idx]
    first_sub = np.asarray(grp.get("GroupFirstSub", np.zeros(0)), dtype=np.int64)
    if len(group) and (group.max() >= len(first_sub) or group.min() < 0):
        raise IngestError(f"{first}: Subhalo/SubhaloGrNr points past the {len(first_sub)} groups of Group/GroupFirstSub")
    out = {
        "pos": _positions(sub["SubhaloPos"][idx], box_size, f"{first}: Subhalo/SubhaloPos"),
        "stellar_mass": mstar[idx],
        "is_central": (first_sub[group] == idx).astype(np.int8) if len(idx) else np.zeros(0, np.int8),
        "subhalo_index": idx.astype(np.int64),
        "hydro_group": group,
        "n_star_particles": nstar[idx],
    }
    if "SubhaloVel" in sub:
        out["vel"] = np.asarray(sub["SubhaloVel"])[idx].astype(np.float32)
    return out
