"""CAMELS (Gadget/Arepo HDF5) N-body snapshots: header, unit checks, chunked painting.

Units on disk: ``Header/BoxSize`` and ``PartType1/Coordinates`` in comoving kpc/h,
``PartType1/Velocities`` in sqrt(a) km/s (multiply by sqrt(a) for peculiar km/s),
``Header/MassTable`` in 1e10 Msun/h. galaxygen uses Mpc/h, km/s and Msun/h.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from galaxygen.constants import RHO_CRIT
from galaxygen.mesh import paint
from galaxygen.progress import progress
from galaxygen.sources.camels.hdf5 import IngestError, file_parts, open_h5, read_attrs, read_dataset

KPC = 1e-3          # kpc/h -> Mpc/h
MASS_UNIT = 1e10    # 1e10 Msun/h -> Msun/h


@dataclass(frozen=True)
class SnapshotHeader:
    """What galaxygen needs from a snapshot header, converted to its units."""

    parts: tuple[Path, ...]   # the files of the snapshot
    box_size: float           # [Mpc/h]
    redshift: float
    scale_factor: float
    hubble: float             # h
    omega_m: float
    omega_l: float
    particle_mass: float      # DM particle mass [Msun/h]
    n_particles: int          # DM particles in the whole snapshot
    length_unit: float = KPC  # Mpc/h per length unit of the file (BoxSize, Coordinates)
    length_name: str = "kpc/h"


def read_header(first: Path) -> SnapshotHeader:
    """Read and check the header of the snapshot whose first file is `first`.

    Raises IngestError for missing attributes and for units that are not CAMELS' (the DM particle
    mass must equal Omega0 rho_crit BoxSize^3 / N within 2 %, which fails if BoxSize is not in
    kpc/h or MassTable not in 1e10 Msun/h).
    """
    parts = tuple(file_parts(first))
    a = read_attrs(parts[0], "Header", ["BoxSize", "Redshift", "Time", "HubbleParam", "Omega0",
                                         "OmegaLambda", "MassTable", "NumPart_Total"])
    npart = np.asarray(a["NumPart_Total"], dtype=np.int64)
    with open_h5(parts[0]) as f:
        high = f["Header"].attrs.get("NumPart_Total_HighWord")
    if high is not None:
        npart = npart + (np.asarray(high, dtype=np.int64) << 32)
    n = int(npart[1])
    box_kpc = float(a["BoxSize"])
    mass = float(np.asarray(a["MassTable"])[1]) * MASS_UNIT
    if n <= 0:
        raise IngestError(f"{first}: Header/NumPart_Total[1] = {n}: no DM particles")
    if mass <= 0:
        raise IngestError(f"{first}: Header/MassTable[1] = 0: per-particle DM masses are not supported")
    box = box_kpc * KPC
    expected = float(a["Omega0"]) * RHO_CRIT * box**3 / n
    if not abs(mass / expected - 1) < 0.02:
        raise IngestError(
            f"{first}: wrong units: DM particle mass MassTable[1] = {mass / MASS_UNIT:.6g} (1e10 Msun/h) but "
            f"Omega0 rho_crit BoxSize^3 / N = {expected / MASS_UNIT:.6g} with BoxSize = {box_kpc:g} taken as kpc/h; "
            f"expected CAMELS units (kpc/h, 1e10 Msun/h)")
    return SnapshotHeader(parts=parts, box_size=box, redshift=float(a["Redshift"]),
                          scale_factor=float(a["Time"]), hubble=float(a["HubbleParam"]),
                          omega_m=float(a["Omega0"]), omega_l=float(a["OmegaLambda"]), particle_mass=mass,
                          n_particles=n)


def iter_particles(header: SnapshotHeader, *, velocities: bool = False, chunk: int = 1 << 22):
    """Yield DM particles chunk by chunk: ``(pos (m,3) float64 Mpc/h in [0, L), vel (m,3) km/s | None)``.

    At most `chunk` particles are in memory at once (plus their float64 copies). Coordinates
    outside [0, BoxSize] (beyond rounding) raise IngestError as wrong units; the number of
    particles read must equal the header's NumPart_Total[1].
    """
    sqrt_a = np.sqrt(header.scale_factor)
    seen = 0
    for part in header.parts:
        with open_h5(part) as f:
            if "PartType1" not in f:
                continue
            key = "PartType1/Coordinates"
            if key not in f:
                raise IngestError(f"{part}: dataset '{key}' missing")
            n = f[key].shape[0]
            if f[key].ndim != 2 or f[key].shape[1] != 3:
                raise IngestError(f"{part}: dataset '{key}' has shape {f[key].shape}, expected (n, 3)")
            if velocities and "PartType1/Velocities" not in f:
                raise IngestError(f"{part}: dataset 'PartType1/Velocities' missing (needed for --velocities)")
            for start in range(0, n, chunk):
                rows = slice(start, min(start + chunk, n))
                pos = box_positions(read_dataset(f, key, rows), header.box_size, header.length_unit,
                                    header.length_name, f"{part}: '{key}'")
                vel = None
                if velocities:
                    vel = read_dataset(f, "PartType1/Velocities", rows).astype(np.float64) * sqrt_a
                seen += len(pos)
                yield pos, vel
    if seen != header.n_particles:
        raise IngestError(f"{header.parts[0]}: read {seen} DM particles, Header/NumPart_Total[1] says "
                          f"{header.n_particles} (incomplete snapshot)")


def box_positions(raw: np.ndarray, box_size: float, unit: float, unit_name: str, where: str) -> np.ndarray:
    """Positions (n, 3) read from a file, in a length unit worth `unit` Mpc/h (called `unit_name`), as
    float64 Mpc/h in [0, `box_size`); IngestError (wrong units) naming `where` when they leave the
    box [0, box_size] beyond rounding."""
    pos = np.array(raw, dtype=np.float64)  # a copy: `raw` may be a read-only memory map
    if len(pos):
        box_file = box_size / unit
        lo, hi = pos.min(), pos.max()
        if not (lo >= -1e-3 * box_file and hi <= box_file * 1.001):
            raise IngestError(f"{where}: wrong units: positions span [{lo:g}, {hi:g}], outside the box "
                              f"[0, {box_file:g}] {unit_name}")
    pos *= unit
    pos %= box_size
    pos[pos >= box_size] -= box_size
    return pos


def paint_snapshot(header: SnapshotHeader, grid: int, *, velocities: bool = False, chunk: int = 1 << 22,
                   keep_positions: bool = False, desc: str = "particles"):
    """NGP particle counts per voxel (and the mean velocity per voxel) of a snapshot, chunk by chunk.

    Returns
    -------
    counts : ndarray float32 (grid, grid, grid)
        DM particles per voxel (sums exactly to the particle number).
    velocity : ndarray float32 (3, grid, grid, grid) or None
        Mean DM peculiar velocity per voxel [km/s], 0 in empty voxels (with `velocities`).
    positions : ndarray float32 (n, 3) or None
        All positions [Mpc/h] (with `keep_positions`, for the FoF fallback); None otherwise.
    """
    box = header.box_size
    # float32 sums: counts stay exact integers up to 2^24 per voxel; velocities need no more
    counts = np.zeros((grid,) * 3, dtype=np.float32)
    velocity = np.zeros((3,) + (grid,) * 3, dtype=np.float32) if velocities else None
    kept = []
    bar = progress(total=header.n_particles, desc=desc, leave=False, unit="part")
    for pos, vel in iter_particles(header, velocities=velocities, chunk=chunk):
        counts += _np(paint(pos, grid, box, scheme="ngp"))
        if velocity is not None:
            for c in range(3):
                velocity[c] += _np(paint(pos, grid, box, scheme="ngp", weights=vel[:, c]))
        if keep_positions:
            kept.append(pos.astype(np.float32))
        bar.update(len(pos))
        del pos, vel
    bar.close()
    if velocity is not None:  # sums -> means, in place; empty voxels stay 0
        np.divide(velocity, counts, out=velocity, where=counts > 0)
    positions = np.concatenate(kept) if keep_positions else None
    return counts, velocity, positions


def _np(field) -> np.ndarray:
    """A painted grid (torch tensor or ndarray) as a numpy array on the CPU."""
    if hasattr(field, "detach"):
        return field.detach().cpu().numpy()
    return np.asarray(field)
