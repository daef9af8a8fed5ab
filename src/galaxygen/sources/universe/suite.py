"""A suite of built-in boxes: a parameter set (`galaxygen.sources.universe.sets`), the per-box
pipeline, workers and resume.

Per box (docs/surrogate.md): 2LPT initial conditions -> cheap COLA run (the DM input: ``fields/dm`` NGP
counts, optional ``fields/dm_velocity``, FoF halos -> ``catalogs/halos``) -> accurate PM run from
the same ICs -> FoF halos -> galaxy-formation surrogate -> ``catalogs/galaxies`` and
``fields/galaxies`` (NGP counts). Each galaxy's ``host_halo`` points at the COLA halo whose centre
lies nearest its PM host among those whose R200 sphere overlaps the PM host's (periodic), -1 if
none; ``host_mass`` keeps the PM host's mass. Boxes are written atomically as
``OUT_DIR/<name>.h5``, so an interrupted run resumes by skipping the boxes already there (after
checking they were made with the same settings); ``params.csv`` lists the whole set. The boxes run
one after another or in worker processes (`galaxygen.runner`).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

import numpy as np

from galaxygen import __version__, runner
from galaxygen.box import Box, read_info, write_box
from galaxygen.config import require, to_dict
from galaxygen.cosmology.linear import Cosmology
from galaxygen.device import resolve_device
from galaxygen.errors import BoxFormatError, GalaxygenError
from galaxygen.halos.fof import find_halos
from galaxygen.halos.matching import match_hosts
from galaxygen.io import write_text
from galaxygen.mesh import paint
from galaxygen.outputs import check_file, record
from galaxygen.sources.universe.ics import initial_conditions
from galaxygen.sources.universe.nbody import run_cola, run_pm
from galaxygen.sources.universe.sets import FIDUCIAL, SETS, parameter_table, params_csv
from galaxygen.sources.universe.surrogate import get_variant, mass_unit_for, populate

COMMAND = "simulate"  # the name under which boxes are recorded as written (galaxygen.outputs)
STAGES = ("initial conditions", "COLA run", "COLA halos", "PM run", "PM halos", "galaxies", "write")


@dataclass(frozen=True)
class SimulateConfig:
    """Settings of `galaxygen simulate` (lengths Mpc/h)."""

    boxes: int | None = None  # cv, lh: boxes; 1p: values per parameter (None: sets.DEFAULT_BOXES)
    particles: int = 64
    grid: int | None = None  # voxels per side; None = particles
    box_size: float = 25.0
    redshift: float = 0.0
    galaxy_model: str = "tng-like"
    set: Literal["cv", "lh", "1p", "points"] = "cv"
    seed: int = 0
    values: tuple[tuple[str, float], ...] = ()  # parameters replacing the fiducial ones (sets.py)
    points: str | None = None                   # CSV file of a points set
    cola_steps: int = 10
    pm_steps: int = 40
    z_start: float = 49.0
    power: Literal["camb", "eh"] = "camb"
    mesh_factor: int = 2
    workers: int = 1
    device: str = "auto"
    velocities: bool = False
    linking_length: float = 0.2
    min_members: int = 20
    max_members_stored: int | None = 100
    overwrite: bool = False

    def __post_init__(self) -> None:
        require(self.boxes is None or self.boxes >= 1, f"boxes: expected >= 1, got {self.boxes}")
        require(self.particles >= 8, f"particles: expected >= 8 per side, got {self.particles}")
        require(self.grid is None or self.grid >= 1, f"grid: expected >= 1 voxels per side, got {self.grid}")
        require(self.box_size > 0, f"box_size: expected > 0 Mpc/h, got {self.box_size}")
        require(0 <= self.redshift < self.z_start,
                f"redshift: expected in [0, z_start={self.z_start}), got {self.redshift}")
        require(self.set in SETS, f"set: expected one of {', '.join(SETS)}, got {self.set!r}")
        require((self.set == "points") == (self.points is not None), "points: a points set and its CSV file go together")
        require(self.power in ("camb", "eh"), f"power: expected camb or eh, got {self.power!r}")
        require(self.cola_steps >= 1 and self.pm_steps >= 1, "cola_steps and pm_steps must be >= 1")
        require(self.workers >= 1, f"workers: expected >= 1, got {self.workers}")
        require(0 < self.linking_length < 1, f"linking_length: expected in (0, 1), got {self.linking_length}")
        require(self.min_members >= 2, f"min_members: expected >= 2, got {self.min_members}")
        require(self.max_members_stored is None or self.max_members_stored >= 1,
                f"max_members_stored: expected >= 1 or None, got {self.max_members_stored}")
        require(0 <= self.seed < 2**32, f"seed: expected in [0, 2^32), got {self.seed}")
        get_variant(self.galaxy_model)
        if self.set != "points":  # a points file is read (and checked) when the suite starts
            parameter_table(self.set, self.boxes, self.seed, dict(self.values))

    @property
    def voxels(self) -> int:
        return self.particles if self.grid is None else self.grid


def _provenance(cfg: SimulateConfig, row: dict) -> dict:
    """Meta attributes that identify a box's settings (also used to validate a resume)."""
    ic_seed, gal_seed = int(row["seed"]), int(row["galaxy_seed"])
    return {"generator": f"galaxygen {__version__} simulate", "particles": cfg.particles,
            "cola_steps": cfg.cola_steps, "pm_steps": cfg.pm_steps, "z_start": cfg.z_start,
            "power_spectrum": cfg.power,
            "mesh_factor": cfg.mesh_factor, "galaxy_model": cfg.galaxy_model,
            "galaxy_model_kind": "surrogate (stochastic galaxy model on PM halos; not hydrodynamics)",
            "galaxy_model_description": get_variant(cfg.galaxy_model).description,
            "ic_seed": ic_seed, "galaxy_seed": gal_seed, "set_seed": cfg.seed, "set": cfg.set,
            "linking_length": cfg.linking_length, "min_members": cfg.min_members}


def _to_numpy(t) -> np.ndarray:
    return t.detach().cpu().numpy()


def cola_dm(cfg: SimulateConfig, row: dict, dev, done: Callable[[str], None]) -> tuple:
    """The DM input of one parameter row: 2LPT initial conditions and the COLA run at ``cfg.redshift``.

    Returns ``(ics, cola, dm, dm_velocity)``: the initial conditions and the COLA particles
    (`galaxygen.sources.universe.nbody.Particles`, positions [Mpc/h]), ``dm`` the NGP counts per voxel,
    float32 (G, G, G) with G = ``cfg.voxels``, and ``dm_velocity`` the mean COLA velocity per voxel
    [km/s], float32 (3, G, G, G), or None unless ``cfg.velocities``. Calls `done` after the first two
    of `STAGES`.
    """
    n, L, grid = cfg.particles, cfg.box_size, cfg.voxels
    cosmo = Cosmology(omega_m=row["omega_m"], sigma_8=row["sigma_8"])
    ics = initial_conditions(cosmo, n, L, int(row["seed"]), z_start=cfg.z_start, device=dev, method=cfg.power)
    done(STAGES[0])
    cola = run_cola(ics, cosmo, steps=cfg.cola_steps, mesh_factor=cfg.mesh_factor, z_final=cfg.redshift,
                    device=dev)
    dm = paint(cola.pos, grid, L, scheme="ngp")
    dm_velocity = None
    if cfg.velocities:
        occupied = dm.clamp(min=1.0)
        dm_velocity = np.stack([_to_numpy(paint(cola.pos, grid, L, scheme="ngp", weights=cola.vel[:, d])
                                          / occupied) for d in range(3)]).astype(np.float32)
    done(STAGES[1])
    return ics, cola, _to_numpy(dm).astype(np.float32), dm_velocity


def dm_box(cfg: SimulateConfig, row: dict, *, suite: str, generator: str,
           stage: Callable[[str], None] | None = None, halos: bool = False) -> tuple:
    """A DM-only Box of one parameter row (ICs and COLA, no galaxies: write it with
    ``write_box(..., dm_only=True)``) and its COLA particle positions, float32 (n³, 3) [Mpc/h].

    Its suite is `suite`; its meta records the DM settings and ``generator`` (e.g. ``"galaxygen 0.x generate"``); its
    params the six parameters and the ICs seed. `halos`: also the COLA FoF halos (``catalogs/halos``, as
    `simulate_box` finds them), else none. `stage(name)` is called after the first two of `STAGES`
    (the halos are part of the second).
    """
    dev = resolve_device(cfg.device)
    done = stage or (lambda _name: None)
    _, cola, dm, dm_velocity = cola_dm(cfg, row, dev, lambda name: None if name == STAGES[1] else done(name))
    cat = None
    if halos:
        cat = find_halos(cola.pos, cfg.box_size, cola.particle_mass, vel=cola.vel, linking_length=cfg.linking_length,
                         min_members=cfg.min_members, max_members_stored=cfg.max_members_stored)
    done(STAGES[1])
    meta = {k: v for k, v in _provenance(cfg, row).items() if k in _DM_META}
    if halos:
        meta.update(n_halos_cola=len(cat["mass"]), linking_length=cfg.linking_length, min_members=cfg.min_members)
    params = {k: row[k] for k in FIDUCIAL}
    box = Box(box_size=cfg.box_size, grid=cfg.voxels, redshift=cfg.redshift, source="synthetic", suite=suite,
              name=row["name"], dm=dm, galaxies=np.zeros_like(dm), params={**params, "seed": float(row["seed"])},
              dm_velocity=dm_velocity, halos=cat, meta={**meta, "generator": generator})
    return box, _to_numpy(cola.pos).astype(np.float32)


def simulate_box(cfg: SimulateConfig, row: dict, stage: Callable[[str], None] | None = None) -> Box:
    """Run the whole pipeline for one parameter row; returns the Box (not written).

    `stage(name)` is called as each of `STAGES` (but "write") completes.
    """
    done = stage or (lambda _name: None)
    dev = resolve_device(cfg.device)
    meta = _provenance(cfg, row)
    n, L, grid = cfg.particles, cfg.box_size, cfg.voxels
    cosmo = Cosmology(omega_m=row["omega_m"], sigma_8=row["sigma_8"])
    ics, cola, dm, dm_velocity = cola_dm(cfg, row, dev, done)
    halos = find_halos(cola.pos, L, cola.particle_mass, vel=cola.vel, linking_length=cfg.linking_length,
                       min_members=cfg.min_members, max_members_stored=cfg.max_members_stored)
    del cola
    done(STAGES[2])
    pm = run_pm(ics, cosmo, steps=cfg.pm_steps, mesh_factor=cfg.mesh_factor, z_final=cfg.redshift, device=dev)
    del ics
    done(STAGES[3])
    pm_halos = find_halos(pm.pos, L, pm.particle_mass, vel=pm.vel, linking_length=cfg.linking_length,
                          min_members=cfg.min_members)
    del pm
    done(STAGES[4])
    rng = np.random.default_rng(meta["galaxy_seed"])
    params = {k: row[k] for k in FIDUCIAL}
    gal = populate(pm_halos, L, get_variant(cfg.galaxy_model), params, rng,
                   mass_unit=mass_unit_for(L, n, cfg.min_members))
    host = gal.pop("host")
    gal["host_halo"] = match_hosts(pm_halos["pos"][host], halos["pos"], halos["radius"], L, rule="overlap",
                                   radius=pm_halos["radius"][host])
    galaxies = _to_numpy(paint(gal["pos"], grid, L, scheme="ngp")).astype(np.float32)
    done(STAGES[5])
    meta.update(n_halos_cola=len(halos["mass"]), n_halos_pm=len(pm_halos["mass"]),
                n_galaxies=len(gal["pos"]), mass_unit=mass_unit_for(L, n, cfg.min_members),
                max_members_stored=-1 if cfg.max_members_stored is None else cfg.max_members_stored)
    return Box(box_size=L, grid=grid, redshift=cfg.redshift, source="synthetic", suite=cfg.galaxy_model,
               name=row["name"], dm=dm, galaxies=galaxies, params={**params, "seed": float(row["seed"])},
               dm_velocity=dm_velocity, halos=halos, galaxy_catalog=gal, meta=meta)


_DM_META = ("particles", "cola_steps", "z_start", "power_spectrum", "mesh_factor", "ic_seed", "set_seed")
_IDENTITY = ("particles", "cola_steps", "pm_steps", "z_start", "power_spectrum", "mesh_factor",
             "galaxy_model", "ic_seed", "galaxy_seed", "linking_length", "min_members")


def _check_existing(path: Path, cfg: SimulateConfig, row: dict) -> None:
    """Refuse an existing box file that is not this box with these settings (resume)."""
    try:
        info = read_info(path)
    except BoxFormatError as exc:
        raise GalaxygenError(f"{path}: exists but is not a valid box ({exc}); remove it or pass --overwrite") from exc
    want = _provenance(cfg, row)
    have = {**info["meta"], "grid": info["grid"], "box_size": info["box_size"], "redshift": info["redshift"]}
    diff = [k for k in _IDENTITY if have.get(k) != want[k]]
    diff += [k for k, v in (("grid", cfg.voxels), ("box_size", cfg.box_size), ("redshift", cfg.redshift))
             if not math.isclose(float(have[k]), float(v))]
    if cfg.velocities and not info["has_dm_velocity"]:
        diff.append("velocities")
    if diff:
        raise GalaxygenError(f"{path}: exists with different settings ({', '.join(diff)}); "
                             "choose another OUT_DIR or pass --overwrite")


def _write_params(out_dir: Path, rows: list[dict], overwrite: bool, part: str | None = None) -> Path:
    """Write the whole set's table (`part`: the shard's record part). Shards running at once all write
    the same text, each by an atomic rename, so whichever lands last leaves the same whole file."""
    path = out_dir / "params.csv"
    text = params_csv(rows)
    if path.exists() and path.read_text() == text:
        return path
    if path.exists() and not overwrite:
        raise GalaxygenError(f"{path}: exists with a different parameter table; choose another OUT_DIR "
                             "or pass --overwrite")
    write_text(check_file(path, COMMAND, overwrite), text, overwrite=True)
    record(out_dir, COMMAND, [path.name], part=part)
    return path


def simulate_and_write(cfg: SimulateConfig, row: dict, path: Path, report: Callable[[str], None]) -> dict:
    """Simulate and write one box (a `galaxygen.runner` task of len(STAGES) steps, reported by name)."""
    t0 = time.perf_counter()
    box = simulate_box(cfg, row, report)
    write_box(path, box, overwrite=cfg.overwrite)
    report(STAGES[-1])
    return {"name": row["name"], "path": str(path), "status": "written", "seconds": time.perf_counter() - t0,
            "n_halos": int(box.meta["n_halos_cola"]), "n_galaxies": int(box.meta["n_galaxies"])}


def _skipped(path: Path) -> dict:
    info = read_info(path)
    return {"name": info["name"], "path": str(path), "status": "skipped", "seconds": 0.0,
            "n_halos": info["halos"]["count"] if info["halos"] else 0, "n_galaxies": int(info["n_galaxies"])}


def simulate_suite(out_dir: str | os.PathLike, cfg: SimulateConfig, scale: runner.Scale | None = None) -> dict:
    """Simulate a parameter set (cv, lh, 1p or points; see `sets`), or `scale`'s shard of it, into
    `out_dir` (resumable, on `scale`'s backend, `galaxygen.runner`; default: `cfg.workers` local
    processes); returns a JSON-ready summary.

    Returns ``{"out_dir", "params_csv", "config", "boxes": [{name, path, status ("written" or
    "skipped"), seconds, n_halos, n_galaxies}]}`` (the shard's boxes). ``params.csv`` always lists
    the whole set. A box that fails does not stop the others; the first failure is raised once
    they are done.
    """
    scale = scale or runner.Scale(workers=cfg.workers)
    out = Path(out_dir)
    rows = parameter_table(cfg.set, cfg.boxes, cfg.seed, dict(cfg.values), cfg.points)
    by_name = {r["name"]: r for r in rows}
    paths = {r["name"]: out / f"{r['name']}.h5" for r in rows}
    tasks = [runner.Task(r["name"], simulate_and_write, (cfg, r, paths[r["name"]]), output=paths[r["name"]],
                         steps=len(STAGES)) for r in rows]
    planned = runner.plan(tasks, command=COMMAND, overwrite=cfg.overwrite,
                          check=lambda t: _check_existing(t.output, cfg, by_name[t.name]), shard=scale.shard)
    out.mkdir(parents=True, exist_ok=True)
    csv_path = _write_params(out, rows, cfg.overwrite, planned.part)
    report = runner.run(planned, backend=scale.backend(len(planned.todo)), desc=f"simulate {len(planned.todo)} box(es)",
                        unit="stage")
    if report.failed:
        raise next(iter(report.failed.values()))
    results = {**{t.name: _skipped(t.output) for t in planned.skipped}, **report.results}
    return {"out_dir": str(out), "params_csv": str(csv_path), "config": to_dict(cfg),
            "boxes": [results[r["name"]] for r in rows if r["name"] in results]}
