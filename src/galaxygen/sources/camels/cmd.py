"""CAMELS Multifield Dataset (CMD) 3-D grids -> box files (Villaescusa-Navarro et al. arXiv:2109.10915).

Files ``Grids_<field>_<suite>_<set>_<N>_z=<z>.npy`` hold arrays (n_sims, N, N, N), read memory-mapped,
one box per index i (name ``<Set>_<i>``):

* input ``Grids_Mtot_Nbody_<Suite>_<Set>_<N>_z=<z>.npy`` (total mass of the N-body twin) ->
  ``fields/dm`` in DM particles per voxel: mass per voxel divided by the particle mass
  m_p = Omega_m rho_crit L^3 / 256^3 of that simulation (CAMELS L25n256 runs have 256^3 DM
  particles), so the mean is 256^3 / N^3 and the field is what painting the twin's particles
  would give up to the mass-assignment scheme CMD used;
* target ``Grids_Mstar_<Suite>_<Set>_<N>_z=<z>.npy`` -> ``fields/galaxies`` = stellar mass per
  voxel [Msun/h]. CMD has no galaxy-count field, so this box's target is a regression target,
  not counts; ``meta/galaxies_units`` says so.

CMD stores these fields as densities [(Msun/h)/(kpc/h)^3]; a copy holding mass per voxel
[Msun/h] is recognised too (`units="auto"`): the mean of the N-body total mass must equal
Omega_m rho_crit (mass is conserved), which identifies the unit and catches wrong ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from galaxygen.box import Box
from galaxygen.config import require
from galaxygen.constants import RHO_CRIT
from galaxygen.sources.camels.hdf5 import IngestError
from galaxygen.sources.camels.params import CMD_COLUMNS, params_for, parse_params
from galaxygen.sources.camels.runner import IngestReport, run_boxes
from galaxygen.sources.camels.snapshot import KPC


@dataclass(frozen=True)
class CmdIngestConfig:
    """Options of `ingest_cmd` (see ``galaxygen ingest cmd --help``).

    suite : hydro suite ("IllustrisTNG", "SIMBA", "Astrid"); set_name : "CV", "LH", "1P", "EX"
    grid : N in the file names (128, 256 or 512); redshift : z in the file names
    sims : indices to ingest, None = all; params_file : explicit parameter file
    units : "auto", "density" [(Msun/h)/(kpc/h)^3] or "mass" [Msun/h per voxel]
    box_size : [Mpc/h]; n_particles_side : DM particles per side of the N-body runs
    """

    suite: str
    set_name: str = "CV"
    grid: int = 256
    redshift: float = 0.0
    sims: tuple[int, ...] | None = None
    params_file: str | None = None
    units: Literal["auto", "density", "mass"] = "auto"
    box_size: float = 25.0
    n_particles_side: int = 256
    overwrite: bool = False

    def __post_init__(self) -> None:
        require(bool(self.suite), "suite: must not be empty")
        require(self.grid >= 1, f"grid: expected a positive size, got {self.grid}")
        require(self.units in ("auto", "density", "mass"), f"units: expected auto, density or mass, got {self.units!r}")
        require(self.box_size > 0, f"box_size: expected a positive size in Mpc/h, got {self.box_size}")
        require(self.n_particles_side >= 1, f"n_particles_side: expected >= 1, got {self.n_particles_side}")


def find_grid(root: Path, field: str, cfg: CmdIngestConfig) -> Path:
    """The file ``Grids_<field>_<suite>_<set>_<N>_z=<z>.npy`` below `root` at ``cfg.redshift``."""
    pattern = f"Grids_{field}_{cfg.suite}_{cfg.set_name}_{cfg.grid}_z=*.npy"
    found = sorted(root.rglob(pattern)) if root.is_dir() else []
    for path in found:
        m = re.search(r"_z=([0-9.]+)\.npy$", path.name)
        if m and abs(float(m.group(1).rstrip(".")) - cfg.redshift) < 1e-3:
            return path
    raise IngestError(f"{root}: no {pattern.replace('z=*', f'z={cfg.redshift:.2f}')}"
                      + (f" (found {', '.join(p.name for p in found)})" if found else ""))


def load_cmd_params(root: Path, cfg: CmdIngestConfig) -> tuple[dict[str, dict[str, float]], Path]:
    """Parameter table: explicit file, else ``params_<Set>_<Suite>.txt`` or a CosmoAstroSeed file below `root`.

    Files with a header are read by it; header-less CMD files by the documented column order
    Omega_m sigma_8 A_SN1 A_AGN1 A_SN2 A_AGN2, one row per simulation index.
    """
    if cfg.params_file:
        path = Path(cfg.params_file)
    else:
        names = [f"params_{cfg.set_name}_{cfg.suite}.txt", f"params_{cfg.suite}_{cfg.set_name}.txt",
                 f"CosmoAstroSeed_{cfg.suite}_L25n256_{cfg.set_name}.txt"]
        hits = [p for n in names for p in sorted(root.rglob(n))]
        if not hits:
            raise IngestError(f"{root}: no parameter file ({' / '.join(names)}) found; pass --params FILE "
                              f"(Omega_m is needed to convert mass into particle counts)")
        path = hits[0]
    return parse_params(path, headerless=CMD_COLUMNS), path


def _open(path: Path, n_grid: int) -> np.ndarray:
    try:
        arr = np.load(path, mmap_mode="r")
    except (OSError, ValueError) as exc:
        raise IngestError(f"{path}: not a readable .npy file, truncated or corrupt ({exc})") from exc
    if arr.ndim != 4 or arr.shape[1:] != (n_grid,) * 3:
        raise IngestError(f"{path}: shape {arr.shape}, expected (n_sims, {n_grid}, {n_grid}, {n_grid})")
    return arr


def mass_per_voxel(raw: np.ndarray, omega_m: float, cfg: CmdIngestConfig, where: str) -> tuple[np.ndarray, str]:
    """Total-mass grid -> mass per voxel [Msun/h] and the unit found ("density" or "mass").

    The mean over the box must be Omega_m rho_crit (per (kpc/h)^3 for a density, times the voxel
    volume for mass per voxel) within 5 %; otherwise the units are wrong and IngestError names them.
    """
    voxel_kpc3 = (cfg.box_size / KPC / cfg.grid) ** 3
    mean_rho = omega_m * RHO_CRIT * KPC**3            # (Msun/h) / (kpc/h)^3
    expected = {"density": mean_rho, "mass": mean_rho * voxel_kpc3}
    mean = float(np.mean(raw, dtype=np.float64))
    units = [cfg.units] if cfg.units != "auto" else ["density", "mass"]
    for unit in units:
        if abs(mean / expected[unit] - 1) < 0.05:
            scale = voxel_kpc3 if unit == "density" else 1.0
            return np.asarray(raw, dtype=np.float64) * scale, unit
    raise IngestError(f"{where}: wrong units: mean {mean:.6g}, expected {expected['density']:.6g} (Msun/h)/(kpc/h)^3 "
                      f"as a density or {expected['mass']:.6g} Msun/h per voxel for Omega_m = {omega_m:g}")


def cmd_box(index: int, mtot: np.ndarray, mstar: np.ndarray, params: dict[str, float], cfg: CmdIngestConfig,
            files: tuple[Path, Path, Path]) -> Box:
    """The box of simulation `index` from the memory-mapped Mtot (N-body) and Mstar (hydro) grids."""
    name = f"{cfg.set_name}_{index}"
    if "omega_m" not in params:
        raise IngestError(f"{files[2]}: no Omega_m for {name}")
    omega_m = params["omega_m"]
    mass, unit = mass_per_voxel(mtot[index], omega_m, cfg, f"{files[0]}[{index}]")
    particle_mass = omega_m * RHO_CRIT * cfg.box_size**3 / cfg.n_particles_side**3
    dm = (mass / particle_mass).astype(np.float32)
    scale = (cfg.box_size / KPC / cfg.grid) ** 3 if unit == "density" else 1.0
    stars = (np.asarray(mstar[index], dtype=np.float64) * scale).astype(np.float32)
    if (stars < 0).any() or (dm < 0).any():
        raise IngestError(f"{files[0] if (dm < 0).any() else files[1]}[{index}]: negative masses")
    meta = {
        "dm_file": str(files[0]), "galaxies_file": str(files[1]), "params_file": str(files[2]), "index": int(index),
        "cmd_units": unit, "particle_mass": float(particle_mass),
        "dm_units": f"DM particles per voxel: CMD Mtot mass per voxel / particle mass (Omega_m rho_crit L^3 / "
                    f"{cfg.n_particles_side}^3)",
        "galaxies_units": "stellar mass per voxel [Msun/h] (CMD Mstar): a regression target, NOT galaxy counts",
        "galaxies_quantity": "stellar_mass",
    }
    return Box(box_size=cfg.box_size, grid=cfg.grid, redshift=cfg.redshift, source="cmd", suite=cfg.suite,
               name=name, dm=dm, galaxies=stars, params=params, meta=meta)


def ingest_cmd(root: str | Path, out_dir: str | Path, cfg: CmdIngestConfig) -> IngestReport:
    """Ingest CMD 3-D grids into ``out_dir/<Set>_<i>.h5`` box files (resumable, failures collected)."""
    root = Path(root)
    if not root.is_dir():
        raise IngestError(f"{root}: CMD folder not found")
    dm_path = find_grid(root, "Mtot_Nbody", cfg)
    star_path = find_grid(root, "Mstar", cfg)
    mtot, mstar = _open(dm_path, cfg.grid), _open(star_path, cfg.grid)
    if len(mtot) != len(mstar):
        raise IngestError(f"{dm_path} holds {len(mtot)} grids but {star_path} holds {len(mstar)}")
    table, params_path = load_cmd_params(root, cfg)
    indices = cfg.sims if cfg.sims is not None else tuple(range(len(mtot)))
    bad = [i for i in indices if i >= len(mtot)]
    if bad:
        raise IngestError(f"{dm_path}: holds {len(mtot)} grids, no index {bad[0]}")

    def job(i: int):
        def build() -> Box:
            params = params_for(table, f"{cfg.set_name}_{i}", i, params_path)
            return cmd_box(i, mtot, mstar, params, cfg, (dm_path, star_path, params_path))
        return f"{cfg.set_name}_{i}", build

    return run_boxes([job(i) for i in indices], out_dir, overwrite=cfg.overwrite, desc=f"CMD {cfg.suite} {cfg.set_name}")
