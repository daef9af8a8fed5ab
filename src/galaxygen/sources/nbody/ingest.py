"""Your own N-body run -> DM-only box files: one box per input, written as ``OUT_DIR/<name>.h5``.

An input is one of

* an HDF5 N-body snapshot of the Gadget / AREPO / SWIFT family (`snapshot`; a multi-file one by any
  of its parts ``<name>.<k>.hdf5``): ``fields/dm`` = NGP counts of its ``PartType1`` particles;
* a positions array, (n, 3) float32 / float64 (``.npy``, or ``FILE.h5:DATASET``), with the box
  size: NGP counts of the positions;
* a density grid, (M, M, M) (``.npy`` or ``FILE.h5:DATASET``), with the box size: the grid summed
  over blocks of voxels (the grid as it is at M voxels per side), as DM particles per voxel, or
  rescaled to a mean of `mean_count` per voxel when it holds another density (1 + delta, mass).

The box's name is the input's file name without its suffixes (``snap_033.0.hdf5`` -> ``snap_033``),
its source ``nbody``; it has no ``fields/galaxies`` (it is predicted, never trained on or scored).
The grid has `grid` voxels per side, or the voxel size of a trained run (`grid_for`, e.g.
`galaxygen.training.run_inputs.grid_like`), which refuses in one line when it cannot match. With
`halos`, galaxygen's FoF finds the halos (``catalogs/halos``; masses from Omega_m), so that the HOD
can populate the box too. Lengths in Mpc/h unless `length_unit` says otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable, Literal, Sequence

import numpy as np

from galaxygen.box import Box
from galaxygen.config import require
from galaxygen.constants import RHO_CRIT
from galaxygen.errors import ConfigError
from galaxygen.halos.fof import find_halos
from galaxygen.mesh import paint
from galaxygen.sources.camels.hdf5 import IngestError
from galaxygen.sources.camels.runner import IngestReport, run_boxes
from galaxygen.sources.camels.snapshot import paint_snapshot
from galaxygen.sources.nbody.arrays import (ArrayFile, check_grid, check_positions, coarsen, open_array,
                                            position_chunks)
from galaxygen.sources.nbody.snapshot import PART, first_parts, read_snapshot_header
from galaxygen.sources.nbody.units import REL_TOL, UNITS, length_factor
from galaxygen.sources.universe.sets import check_values

#: (box size [Mpc/h], redshift, where) -> voxels per side; raises GalaxygenError when it cannot match
GridFor = Callable[[float, float, str], int]
MAX_MEMBERS = 100   # member particles kept per FoF halo in the box file
OMEGA_TOL = 5e-3    # Omega_m given and Omega_m of a snapshot header agree to this


@dataclass(frozen=True)
class NbodyIngestConfig:
    """Options of `ingest_nbody` (see ``galaxygen ingest nbody --help``).

    grid : voxels per side N (None: `grid_for` decides; a density grid keeps its own)
    box_size : box side in `length_unit`, for positions and grids (a snapshot's header has it)
    length_unit : Mpc/h, kpc/h, Mpc or kpc; None: a snapshot's own, Mpc/h for arrays
    hubble : h, for lengths in Mpc or kpc without one in the file
    redshift : of the DM; None: a snapshot's own, 0 for arrays
    params : known parameters ((name, value) pairs: omega_m, sigma_8, a_sn1, ...); a snapshot's
        Omega_m fills omega_m
    halos : FoF halos (`linking_length` b, >= `min_members` members) -> ``catalogs/halos``
    mean_count : density grids: rescale to this mean of DM particles per voxel (None: as given)
    suite : the boxes' suite name
    chunk_particles : particles read at a time
    overwrite : replace boxes already there (default: skip them)
    """

    grid: int | None = None
    box_size: float | None = None
    length_unit: str | None = None
    hubble: float | None = None
    redshift: float | None = None
    params: tuple[tuple[str, float], ...] = ()
    halos: bool = False
    linking_length: float = 0.2
    min_members: int = 20
    mean_count: float | None = None
    suite: str = "nbody"
    chunk_particles: int = 1 << 22
    overwrite: bool = False

    def __post_init__(self) -> None:
        require(self.grid is None or self.grid >= 1, f"grid: expected >= 1 voxels per side, got {self.grid}")
        require(self.box_size is None or self.box_size > 0, f"box_size: expected > 0, got {self.box_size}")
        require(self.length_unit is None or self.length_unit in UNITS,
                f"length_unit: expected one of {', '.join(UNITS)}, got {self.length_unit!r}")
        require(self.hubble is None or 0 < self.hubble < 10, f"hubble: expected h in (0, 10), got {self.hubble}")
        require(self.redshift is None or self.redshift >= 0, f"redshift: expected >= 0, got {self.redshift}")
        require(self.mean_count is None or self.mean_count > 0, f"mean_count: expected > 0, got {self.mean_count}")
        require(0 < self.linking_length < 1, f"linking_length: expected in (0, 1), got {self.linking_length}")
        require(self.min_members >= 2, f"min_members: expected >= 2, got {self.min_members}")
        require(self.chunk_particles >= 1, "chunk_particles: expected >= 1")
        require(bool(self.suite), "suite: must not be empty")
        check_values(dict(self.params))


@dataclass(frozen=True)
class Input:
    """One input: its kind, its file (and dataset), and the name of its box."""

    kind: Literal["snapshot", "positions", "grid"]
    file: ArrayFile
    name: str


def _name(path: Path) -> str:
    m = PART.fullmatch(path.name)
    return m.group(1) if m else path.stem if path.suffix in (".npy", ".hdf5", ".h5") else path.name


def classify(text: str) -> Input:
    """The kind of an input given on the command line: ``FILE.npy`` and ``FILE.h5:DATASET`` are
    arrays (positions when 2-D, a grid when 3-D); another HDF5 file is a snapshot."""
    path, dataset = Path(text), None
    head, sep, tail = text.rpartition(":")
    if sep and tail and not Path(text).exists() and Path(head).is_file():
        path, dataset = Path(head), tail
    if dataset is None and path.suffix != ".npy":
        return Input("snapshot", ArrayFile(path), _name(path))
    src = ArrayFile(path, dataset)
    with open_array(src) as arr:
        ndim = len(arr.shape)
    if ndim not in (2, 3):
        raise IngestError(f"{src.label}: expected positions (n, 3) or a density grid (M, M, M), got shape "
                          f"{tuple(arr.shape)}")
    return Input("positions" if ndim == 2 else "grid", src, _name(path))


def _params(cfg: NbodyIngestConfig, header_omega_m: float, where: str) -> dict[str, float]:
    params = dict(cfg.params)
    if not math.isnan(header_omega_m):
        if "omega_m" in params and abs(params["omega_m"] - header_omega_m) > OMEGA_TOL:
            raise IngestError(f"{where}: mismatched Omega_m: the header says {header_omega_m:g}, --omega-m "
                              f"{params['omega_m']:g}")
        params.setdefault("omega_m", header_omega_m)
    return params


def _check_given(given: float | None, found: float, what: str, where: str) -> None:
    if given is not None and not math.isclose(given, found, rel_tol=REL_TOL, abs_tol=REL_TOL):
        raise IngestError(f"{where}: mismatched {what}: the header says {found:g}, the option {given:g}")


def _halos(positions: np.ndarray, box_size: float, params: dict[str, float], cfg: NbodyIngestConfig,
           where: str) -> tuple[dict, str]:
    if "omega_m" not in params:
        raise IngestError(f"{where}: --halos: the halo masses need Omega_m (none in the file): pass --omega-m")
    mass = params["omega_m"] * RHO_CRIT * box_size**3 / len(positions)
    halos = find_halos(positions, box_size, mass, linking_length=cfg.linking_length,
                       min_members=cfg.min_members, max_members_stored=MAX_MEMBERS)
    return dict(halos), (f"galaxygen-fof (b={cfg.linking_length:g}, >={cfg.min_members} members, "
                         f"<= {MAX_MEMBERS} members stored)")


def _snapshot_box(src: Input, cfg: NbodyIngestConfig, grid_for: GridFor | None) -> Box:
    where = src.file.label
    header = read_snapshot_header(src.file.path, length_unit=cfg.length_unit, hubble=cfg.hubble)
    _check_given(cfg.redshift, header.redshift, "redshift", where)
    if cfg.box_size is not None:
        _check_given(cfg.box_size * header.length_unit, header.box_size, "box size [Mpc/h]", where)
    params = _params(cfg, header.omega_m, where)
    grid = cfg.grid or grid_for(header.box_size, header.redshift, where)
    counts, _, positions = paint_snapshot(header, grid, chunk=cfg.chunk_particles, keep_positions=cfg.halos,
                                          desc=f"{src.name} particles")
    meta = {"n_dm_particles": header.n_particles, "snapshot_files": len(header.parts),
            "length_unit": header.length_name, "dm_units": "DM particles per voxel (NGP)"}
    if not math.isnan(header.hubble):
        meta["hubble"] = header.hubble
    halos = None
    if cfg.halos:
        halos, meta["halos_from"] = _halos(positions, header.box_size, params, cfg, where)
    return _box(src, cfg, header.box_size, grid, header.redshift, counts, params, halos, meta)


def _positions_box(src: Input, cfg: NbodyIngestConfig, grid_for: GridFor | None) -> Box:
    where = src.file.label
    unit = cfg.length_unit or "Mpc/h"
    factor = length_factor(unit, cfg.hubble, where)
    box, z = cfg.box_size * factor, cfg.redshift or 0.0
    params = dict(cfg.params)
    grid = cfg.grid or grid_for(box, z, where)
    counts, kept = np.zeros((grid,) * 3, dtype=np.float32), []
    with open_array(src.file) as arr:
        n = check_positions(arr, where)
        for pos in position_chunks(arr, box, factor, unit, cfg.chunk_particles, where):
            counts += paint(pos, grid, box, scheme="ngp").numpy()
            if cfg.halos:
                kept.append(pos.astype(np.float32))
    meta = {"n_dm_particles": n, "length_unit": unit, "dm_units": "DM particles per voxel (NGP)"}
    halos = None
    if cfg.halos:
        halos, meta["halos_from"] = _halos(np.concatenate(kept), box, params, cfg, where)
    return _box(src, cfg, box, grid, z, counts, params, halos, meta)


def _grid_box(src: Input, cfg: NbodyIngestConfig, grid_for: GridFor | None) -> Box:
    where = src.file.label
    unit = cfg.length_unit or "Mpc/h"
    box, z = cfg.box_size * length_factor(unit, cfg.hubble, where), cfg.redshift or 0.0
    with open_array(src.file) as arr:
        m = check_grid(arr, where)
        grid = cfg.grid or (grid_for(box, z, where) if grid_for else m)
        dm = coarsen(arr, grid, where)
    meta = {"length_unit": unit, "input_grid": m,
            "dm_units": "the density grid as given" + (f", summed over {m // grid}^3 voxels" if m != grid else "")}
    if cfg.mean_count is not None:
        mean = float(dm.mean(dtype=np.float64))
        if not mean > 0:
            raise IngestError(f"{where}: density grid: all zero, it cannot be rescaled to --mean-count")
        dm *= np.float32(cfg.mean_count / mean)
        meta["dm_units"] = f"{meta['dm_units']}, rescaled to a mean of {cfg.mean_count:g} per voxel"
    return _box(src, cfg, box, grid, z, dm, dict(cfg.params), None, meta)


def _box(src: Input, cfg: NbodyIngestConfig, box_size: float, grid: int, redshift: float, dm: np.ndarray,
         params: dict[str, float], halos: dict | None, meta: dict) -> Box:
    meta = {"ingested_from": src.file.label, "input_kind": src.kind, **meta}
    return Box(box_size=box_size, grid=grid, redshift=redshift, source="nbody", suite=cfg.suite, name=src.name,
               dm=dm, galaxies=np.zeros((grid,) * 3, np.float32), params=params, halos=halos, meta=meta)


BUILDERS = {"snapshot": _snapshot_box, "positions": _positions_box, "grid": _grid_box}


def ingest_nbody(inputs: Sequence[str | Path], out_dir: str | Path, cfg: NbodyIngestConfig,
                 grid_for: GridFor | None = None) -> IngestReport:
    """Write one DM-only box per input into `out_dir` (see the module doc); returns the report.

    Inputs are checked before any work (kinds, names that would collide, options they need); a box
    that fails (unreadable file, mismatched units, a voxel size `grid_for` refuses) is reported by
    name and the others still run; existing boxes are skipped unless ``cfg.overwrite``.
    """
    sources = [classify(str(p)) for p in first_parts([Path(str(t)) for t in inputs])]
    names: dict[str, str] = {}
    for s in sources:
        if s.name in names:
            raise IngestError(f"inputs {names[s.name]} and {s.file.label} would both be written as {s.name}.h5")
        names[s.name] = s.file.label
    kinds = {s.kind for s in sources}
    if kinds - {"snapshot"} and cfg.box_size is None:
        raise ConfigError("box_size: positions arrays and density grids need the box side (in length_unit)")
    if "grid" in kinds and cfg.halos:
        raise ConfigError("halos: a density grid has no particles to find halos in")
    if kinds - {"grid"} and cfg.grid is None and grid_for is None:
        raise ConfigError("grid: give the voxels per side, or a trained run to match (--like RUN)")
    jobs = [(s.name, partial(BUILDERS[s.kind], s, cfg, grid_for)) for s in sources]
    return run_boxes(jobs, out_dir, overwrite=cfg.overwrite, desc="ingest nbody", dm_only=True)
