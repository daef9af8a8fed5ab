"""CAMELS simulations -> box files: N-body twin = input, hydro Subfind galaxies = target.

For each simulation ``<Set>_<i>`` of a hydro suite (Villaescusa-Navarro et al. arXiv:2010.00619):

* ``fields/dm``: NGP counts per voxel of the DM particles of the N-body twin ``<Suite>_DM``,
  read in chunks (kpc/h -> Mpc/h); with `velocities`, ``fields/dm_velocity`` = mean DM peculiar
  velocity per voxel [km/s] (snapshot velocities x sqrt(a)).
* ``catalogs/halos``: the twin's FoF groups from its Subfind file when present
  (``source_halos = "subfind"``), else galaxygen's own FoF (b = 0.2, >= 20 members) on the twin's
  particles (``source_halos = "galaxygen-fof"``).
* ``catalogs/galaxies`` and ``fields/galaxies`` (NGP counts): subhalos of the hydro run with at
  least `min_star_particles` star particles, or stellar mass >= `min_stellar_mass`. ``host_halo``
  is the N-body halo whose centre is nearest to the galaxy among those within their own radius
  (R_200c) of it, -1 if none: hydro and N-body halos are different objects, so this matching by
  position is how a galaxy is tied to the DM-only halo a user of N-body data would see.
* params from the ``CosmoAstroSeed_<Suite>_L25n256_<Set>.txt`` file, parsed by its header line, or
  the older layout's ``Sims/<Suite>/CosmoAstroSeed_params.txt`` (all sets, no header) or a file in
  the simulation's own folder (``CosmoAstro_params.txt``). With no parameter file at all, Omega_m
  comes from the snapshot header (CV sets: the fiducial values), the unknown parameters are left
  out, the box's ``meta/params_source`` says so and the run warns (``IngestReport.warnings``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from galaxygen.box import Box
from galaxygen.config import require
from galaxygen.halos.fof import find_halos
from galaxygen.halos.matching import match_hosts
from galaxygen.mesh import paint
from galaxygen.sources.camels.hdf5 import IngestError
from galaxygen.sources.camels.layout import SimFiles, discover, locate, sim_folders
from galaxygen.sources.camels.params import (CAMELS_COLUMNS, find_params_file, find_sim_params_file, header_params,
                                            params_for, parse_params, read_sim_params)
from galaxygen.sources.camels.runner import IngestReport, run_boxes
from galaxygen.sources.camels.snapshot import paint_snapshot, read_header
from galaxygen.sources.camels.subfind import read_galaxies, read_halos

MAX_MEMBERS = 100  # member particles kept per FoF halo in the box file (an even stride through them)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CamelsIngestConfig:
    """Options of `ingest_camels` (see ``galaxygen ingest camels --help``).

    Attributes
    ----------
    suite : hydro suite, e.g. "IllustrisTNG", "SIMBA", "Astrid"; the twin is ``suite + "_DM"``
    set_name : simulation set, e.g. "CV", "LH", "1P", "EX"
    sims : indices i of ``<Set>_<i>`` to ingest; None = every simulation of the set found
    snapshot : snapshot number; None = the one at `redshift` (090 or 033 at z = 0)
    redshift : wanted redshift when `snapshot` is None
    grid : voxels per side N
    min_star_particles : galaxy cut on ``SubhaloLenType[:, 4]`` (used when min_stellar_mass is None)
    min_stellar_mass : galaxy cut on ``SubhaloMassType[:, 4]`` [Msun/h], replaces the particle cut
    params_file : explicit parameter file; None = search the suite's tree
    velocities : also store the mean DM velocity per voxel [km/s]
    overwrite : rewrite existing box files (default: skip them, i.e. resume)
    chunk_particles : particles read per chunk (memory bound)
    """

    suite: str
    set_name: str = "CV"
    sims: tuple[int, ...] | None = None
    snapshot: int | None = None
    redshift: float = 0.0
    grid: int = 256
    min_star_particles: int = 20
    min_stellar_mass: float | None = None
    params_file: str | None = None
    velocities: bool = False
    overwrite: bool = False
    chunk_particles: int = 1 << 22

    def __post_init__(self) -> None:
        require(bool(self.suite) and not self.suite.endswith("_DM"),
                f"suite: give the hydro suite (e.g. IllustrisTNG), not {self.suite!r}; its N-body twin is found by itself")
        require(bool(self.set_name), "set: must not be empty")
        require(self.grid >= 1, f"grid: expected a positive voxel count per side, got {self.grid}")
        require(self.min_star_particles >= 1, f"min_star_particles: expected >= 1, got {self.min_star_particles}")
        require(self.min_stellar_mass is None or self.min_stellar_mass > 0,
                f"min_stellar_mass: expected a positive mass in Msun/h, got {self.min_stellar_mass}")
        require(self.chunk_particles >= 1, "chunk_particles: expected >= 1")
        require(self.snapshot is None or self.snapshot >= 0, f"snapshot: expected >= 0, got {self.snapshot}")

    @property
    def cut(self) -> str:
        """The galaxy cut in words (stored in the box meta)."""
        if self.min_stellar_mass is not None:
            return f"SubhaloMassType[:,4] >= {self.min_stellar_mass:g} Msun/h"
        return f"SubhaloLenType[:,4] >= {self.min_star_particles}"


def ingest_simulation(files: SimFiles, cfg: CamelsIngestConfig, params: dict[str, float] | None,
                      params_path: Path | None = None) -> Box:
    """Build the box of one simulation from its located files (see the module docstring).

    `params` None: no parameter file; Omega_m from the snapshot header (`header_params`).
    """
    header = read_header(files.dm_snapshot)
    if params is None:
        params, params_source = header_params(header.omega_m, cfg.set_name)
    else:
        params_source = f"parameter file {params_path}" if params_path else "given by the caller"
    if "omega_m" in params and abs(params["omega_m"] - header.omega_m) > 5e-3:
        raise IngestError(f"{params_path}: Omega_m = {params['omega_m']:g} for {files.name} but the snapshot "
                          f"{files.dm_snapshot} has Omega0 = {header.omega_m:g}: wrong parameter file or row")
    fof = files.dm_groups is None
    counts, velocity, positions = paint_snapshot(header, cfg.grid, velocities=cfg.velocities,
                                                 chunk=cfg.chunk_particles, keep_positions=fof,
                                                 desc=f"{files.name} particles")
    if fof:
        halos = dict(find_halos(positions, header.box_size, header.particle_mass, linking_length=0.2, min_members=20,
                                max_members_stored=MAX_MEMBERS))
        del positions
    else:
        halos = read_halos(files.dm_groups, header.box_size)
    gal = read_galaxies(files.hydro_groups, header.box_size, min_star_particles=cfg.min_star_particles,
                        min_stellar_mass=cfg.min_stellar_mass)
    gal["host_halo"] = match_hosts(gal["pos"], halos["pos"], halos["radius"], header.box_size, k=None)
    galaxies = np.asarray(_np(paint(gal["pos"].astype(np.float64), cfg.grid, header.box_size, scheme="ngp")),
                          dtype=np.float32) if len(gal["pos"]) else np.zeros((cfg.grid,) * 3, np.float32)
    meta = {
        "dm_snapshot": str(files.dm_snapshot),
        "dm_snapshot_files": int(len(header.parts)),
        "dm_groups": str(files.dm_groups) if files.dm_groups else "",
        "hydro_groups": str(files.hydro_groups),
        "params_file": str(params_path) if params_path else "",
        "params_source": params_source,
        "snapshot": int(files.snapshot),
        "layout": files.layout,
        "galaxy_cut": cfg.cut,
        "halos_from": f"galaxygen-fof (b=0.2, >=20 members, <= {MAX_MEMBERS} members stored)" if fof else "subfind (twin FoF groups)",
        "host_halo": "nearest N-body halo centre within its radius (R200c), -1 if none",
        "particle_mass": float(header.particle_mass),
        "n_dm_particles": int(header.n_particles),
        "hubble": float(header.hubble),
        "dm_units": "DM particles per voxel (NGP)",
        "galaxies_units": "galaxies per voxel (NGP)",
    }
    return Box(box_size=header.box_size, grid=cfg.grid, redshift=header.redshift, source="camels",
               suite=cfg.suite, name=files.name, dm=counts, galaxies=galaxies, params=params,
               dm_velocity=velocity, halos=halos, galaxy_catalog=gal, meta=meta)


def _np(field):
    return field.detach().cpu().numpy() if hasattr(field, "detach") else np.asarray(field)


def load_params_table(root: Path, cfg: CamelsIngestConfig) -> tuple[dict[str, dict[str, float]] | None, Path | None]:
    """The parameter table of the set: the explicit ``params_file``, else a CosmoAstroSeed file found
    under `root` (`find_params_file`); ``(None, None)`` when there is none."""
    path = Path(cfg.params_file) if cfg.params_file else find_params_file(root, cfg.suite, cfg.set_name)
    if path is None:
        return None, None
    return parse_params(path, headerless=CAMELS_COLUMNS), path


def ingest_camels(root: str | Path, out_dir: str | Path, cfg: CamelsIngestConfig) -> IngestReport:
    """Ingest the simulations of one CAMELS set into ``out_dir/<Set>_<i>.h5`` box files.

    Resumable (existing boxes are skipped unless ``cfg.overwrite``); a simulation that fails is
    recorded in the report with its reason and the others still run.

    Parameters come from the set's table, else from a file in each simulation's folder, else from
    the snapshot header (`ingest_simulation`); simulations ingested without a parameter file are
    named in one warning (logged, and in ``report.warnings``).

    Raises
    ------
    IngestError
        Before any box, when `root` does not exist, no simulation of the set is found, or the
        explicit parameter file is missing, or a parameter file is unreadable.
    """
    root = Path(root)
    if not root.is_dir():
        raise IngestError(f"{root}: CAMELS root folder not found")
    table, table_path = load_params_table(root, cfg)
    without_params: dict[str, str] = {}   # simulation -> what its box's params hold
    if cfg.sims is not None:
        names = [f"{cfg.set_name}_{i}" for i in cfg.sims]
    else:
        names = discover(root, cfg.suite, cfg.set_name)
        if not names:
            raise IngestError(f"{root}: no simulation {cfg.set_name}_* of suite {cfg.suite} found in either layout "
                              f"(Sims/{cfg.suite}/L25n256/{cfg.set_name}/ or Sims/{cfg.suite}/)")

    def job(name: str):
        def build() -> Box:
            if table is not None:
                index = int(name.rsplit("_", 1)[1]) if name.rsplit("_", 1)[-1].isdigit() else None
                params, params_path = params_for(table, name, index, table_path), table_path
            else:
                params_path = find_sim_params_file(sim_folders(root, cfg.suite, cfg.set_name, name))
                params = read_sim_params(params_path, name) if params_path else None
            files = locate(root, cfg.suite, cfg.set_name, name, snapshot=cfg.snapshot, redshift=cfg.redshift)
            box = ingest_simulation(files, cfg, params, params_path)
            if params is None:
                without_params[name] = box.meta["params_source"]
            return box
        return name, build

    report = run_boxes([job(n) for n in names], out_dir, overwrite=cfg.overwrite,
                       desc=f"{cfg.suite} {cfg.set_name}")
    names = [n for n in report.written if n in without_params]
    if names:
        message = (f"{cfg.suite} {_names(names)}: {without_params[names[0]]} "
                   f"(give --params FILE to have them)")
        log.warning(message)
        report.warnings.append(message)
    return report


def _names(names: list[str], at_most: int = 5) -> str:
    return ", ".join(names[:at_most]) + (f", ... ({len(names) - at_most} more)" if len(names) > at_most else "")
