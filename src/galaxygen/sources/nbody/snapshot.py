"""Gadget / AREPO / SWIFT HDF5 snapshot headers -> `galaxygen.sources.camels.snapshot.SnapshotHeader`.

What is read: ``Header/BoxSize`` (a number, or SWIFT's three equal sides), ``Header/Redshift``,
``Header/NumPart_Total`` (+ ``NumPart_Total_HighWord``), h and Omega_m from ``Header`` (HubbleParam,
Omega0, OmegaLambda) or SWIFT's ``Cosmology`` group (h, Omega_m, Omega_lambda), and the length unit
(`galaxygen.sources.nbody.units`). Particles are ``PartType1/Coordinates``, read in chunks by
`galaxygen.sources.camels.snapshot.iter_particles`; a multi-file snapshot is given by its first
part ``<name>.0.hdf5`` (the others are found from ``Header/NumFilesPerSnapshot``).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from galaxygen.constants import RHO_CRIT
from galaxygen.sources.camels.hdf5 import IngestError, file_parts, open_h5
from galaxygen.sources.camels.snapshot import SnapshotHeader
from galaxygen.sources.nbody.units import REL_TOL, header_length, resolve_length

PART = re.compile(r"(.*)\.(\d+)\.hdf5")


def _first(attrs_list, keys) -> float | None:
    """The first of `keys` found in any of the attribute sets, as a float (first element of an array)."""
    for attrs in attrs_list:
        for key in keys:
            if key in attrs:
                return float(np.asarray(attrs[key]).reshape(-1)[0])
    return None


def first_parts(paths: list[Path]) -> list[Path]:
    """`paths` with the parts of a multi-file snapshot (``name.<k>.hdf5``) given as its first part only.

    Raises IngestError for a later part given without part 0.
    """
    out, seen = [], set()
    given = {p.resolve() for p in paths}
    for p in paths:
        m = PART.fullmatch(p.name)
        if m is None:
            out.append(p)
            continue
        first = p.with_name(f"{m.group(1)}.0.hdf5")
        if first.resolve() not in given:
            raise IngestError(f"{p}: part {m.group(2)} of a multi-file snapshot: give its first part {first}")
        if first.resolve() not in seen:
            seen.add(first.resolve())
            out.append(first)
    return out


def read_snapshot_header(first: Path, *, length_unit: str | None = None, hubble: float | None = None
                         ) -> SnapshotHeader:
    """The header of the snapshot whose first file is `first`, in galaxygen units (see module doc).

    `length_unit` (a name of `units.UNITS`) must agree with the unit the file records, or replaces
    it when it records none; `hubble` (h) is needed for Mpc or kpc without one in the file. Unknown
    Omega_m, h: NaN; the DM particle mass is Omega_m rho_crit L^3 / N (all matter in the DM
    particles of an N-body run), NaN without Omega_m.

    Raises IngestError naming the file for a missing or non-cubic box, no DM particles, unknown or
    mismatched units.
    """
    first = Path(first)
    parts = tuple(file_parts(first))
    where = str(first)
    with open_h5(parts[0]) as f:
        if "Header" not in f:
            raise IngestError(f"{where}: group 'Header' missing: not an N-body snapshot (for an array inside "
                              f"an HDF5 file, give FILE:DATASET)")
        head = dict(f["Header"].attrs)
        cosmo = dict(f["Cosmology"].attrs) if "Cosmology" in f else {}
        if "BoxSize" not in head or "NumPart_Total" not in head:
            raise IngestError(f"{where}: attribute 'Header/BoxSize' or 'Header/NumPart_Total' missing")
        sides = np.asarray(head["BoxSize"], dtype=np.float64).reshape(-1)
        h_file = _first([head, cosmo], ["HubbleParam", "h"])
        if hubble is not None and h_file is not None and not math.isclose(hubble, h_file, rel_tol=REL_TOL):
            raise IngestError(f"{where}: mismatched Hubble parameter: the file says h = {h_file:g}, --hubble {hubble:g}")
        h = h_file if h_file is not None else hubble
        recorded = header_length(f, h, where)
    if not np.allclose(sides, sides[0], rtol=1e-6):
        raise IngestError(f"{where}: Header/BoxSize: a box of sides {sides.tolist()} is not cubic")
    npart = np.asarray(head["NumPart_Total"], dtype=np.int64)
    if "NumPart_Total_HighWord" in head:
        npart = npart + (np.asarray(head["NumPart_Total_HighWord"], dtype=np.int64) << 32)
    n = int(npart[1]) if len(npart) > 1 else 0
    if n <= 0:
        raise IngestError(f"{where}: Header/NumPart_Total[1] = {n}: no DM particles (PartType1)")
    factor, name = resolve_length(recorded, length_unit, h, where)
    box = float(sides[0]) * factor
    redshift = _first([head, cosmo], ["Redshift"])
    if redshift is None:
        raise IngestError(f"{where}: attribute 'Header/Redshift' missing")
    omega_m = _first([head, cosmo], ["Omega0", "Omega_m"])
    omega_l = _first([head, cosmo], ["OmegaLambda", "Omega_lambda"])
    nan = math.nan
    return SnapshotHeader(parts=parts, box_size=box, redshift=redshift, scale_factor=1.0 / (1.0 + redshift),
                          hubble=nan if h is None else h, omega_m=nan if omega_m is None else omega_m,
                          omega_l=nan if omega_l is None else omega_l,
                          particle_mass=nan if omega_m is None else omega_m * RHO_CRIT * box**3 / n,
                          n_particles=n, length_unit=factor, length_name=name)
