"""`galaxygen generate RUN`: chosen parameters in, galaxy fields and catalogues out (docs/generate.md).

Per sample k (a box of its own initial conditions, seeds derived from (seed, k) as box k of a cv
set, `galaxygen.sources.universe.sets`): the six parameters (those not given: fiducial) -> 2LPT
initial conditions -> COLA -> DM painted (NGP) at the geometry the run was trained on (box size,
grid, redshift of its ``inputs.json``; FoF halos on the COLA particles too when the run takes a halo
channel) -> the run's network (`galaxygen.models.registry`, any task)
-> ``fields/galaxies`` -> a galaxy catalogue placed in the voxels of that field
(`galaxygen.catalog.place_galaxies`) -> ``catalogs/galaxies/pos``.

Output folder, written whole (`galaxygen.outputs.staged_folder`: an interrupted run leaves
nothing): ``<name>.h5`` per sample (names ``gen_<k>``; a prediction box of the box format with the
catalogue), ``dm/<name>.h5`` the DM-only input box (for `galaxygen predict` with another run, or
`galaxygen evaluate` against a truth), ``generate.json`` the settings and the seconds per stage.
The COLA settings (particles, steps, starting redshift, spectrum, mesh) are those recorded in the
run's first training box when it was made by `galaxygen simulate`, else the simulate defaults
with as many particles per side as voxels; ``particles`` replaces the particle count.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from galaxygen import __version__
from galaxygen.box import read_box, read_header, write_box
from galaxygen.catalog import place_galaxies
from galaxygen.config import require, to_dict
from galaxygen.errors import BoxFormatError, GalaxygenError
from galaxygen.io import write_json
from galaxygen.models.registry import predict_into
from galaxygen.outputs import staged_folder
from galaxygen.progress import progress
from galaxygen.sources.universe import suite
from galaxygen.sources.universe.sets import FIDUCIAL, parameter_table
from galaxygen.training.run import SPLIT, RunDir
from galaxygen.training.run_inputs import INPUTS, takes_halos

COMMAND = "generate"
#: COLA settings a training box made by `galaxygen simulate` records in its meta -> SimulateConfig field
DM_SETTINGS = {"particles": "particles", "cola_steps": "cola_steps", "z_start": "z_start",
               "power_spectrum": "power", "mesh_factor": "mesh_factor"}
STAGES = ("initial conditions", "COLA run", "network", "catalogue")
CATALOG_RULE = ("each galaxy of fields/galaxies inside the voxel that counts it: on a DM particle of "
                "that voxel chosen at random (distinct while enough), uniform in the voxel where it has none")


@dataclass(frozen=True)
class GenerateConfig:
    """Settings of `galaxygen generate` (besides the run and the output folder)."""

    values: tuple[tuple[str, float], ...] = ()  # parameters replacing the fiducial ones
    seed: int = 0
    samples: int = 1             # boxes, each from its own initial conditions
    particles: int | None = None  # per side; None: the training boxes' (recorded), else the grid
    device: str = "auto"
    overwrite: bool = False

    def __post_init__(self) -> None:
        require(self.samples >= 1, f"samples: expected >= 1, got {self.samples}")
        require(self.particles is None or self.particles >= 8,
                f"particles: expected >= 8 per side, got {self.particles}")
        require(0 <= self.seed < 2**32, f"seed: expected in [0, 2^32), got {self.seed}")


def run_geometry(run_dir: Path) -> dict[str, float]:
    """Box size [Mpc/h], grid and redshift of the run's (first) training geometry, from inputs.json."""
    RunDir(run_dir).config()  # "not a run directory" when it is none
    path = Path(run_dir) / INPUTS
    geometries = json.loads(path.read_text()).get("geometries") if path.is_file() else None
    if not geometries:
        raise GalaxygenError(f"{run_dir}: no training geometry recorded ({INPUTS} missing or empty: trained by "
                             f"an older galaxygen); generate needs the box size, grid and redshift it was trained on")
    return geometries[0]


def training_dm_settings(run_dir: Path) -> dict[str, Any]:
    """The COLA settings (SimulateConfig fields) recorded in the run's first readable training box
    made by `galaxygen simulate`; {} when none is at hand."""
    try:
        regions = RunDir(run_dir).read(SPLIT).get("train", [])
    except (OSError, ValueError):
        return {}
    for region in regions:
        try:
            meta = read_header(region["path"]).meta
        except (BoxFormatError, OSError, KeyError, TypeError):
            continue
        if "particles" in meta and "cola_steps" in meta:
            return {field: meta[key].item() if hasattr(meta[key], "item") else meta[key]
                    for key, field in DM_SETTINGS.items() if key in meta}
    return {}


def simulate_config(run_dir: Path, cfg: GenerateConfig) -> suite.SimulateConfig:
    """The DM settings of `generate`: the run's geometry, the training boxes' COLA settings, `cfg`."""
    geo = run_geometry(run_dir)
    dm = training_dm_settings(run_dir)
    grid = int(geo["grid"])
    particles = cfg.particles or int(dm.get("particles", grid))
    return suite.SimulateConfig(**{**dm, "particles": particles}, grid=grid, box_size=float(geo["box_size"]),
                                redshift=float(geo["redshift"]), set="cv", boxes=cfg.samples, seed=cfg.seed,
                                values=cfg.values, device=cfg.device)


def _generate_one(run_dir: Path, sim: suite.SimulateConfig, row: dict, tmp: Path, device: str,
                  step) -> tuple[dict[str, float], int]:
    """One sample into the staged folder `tmp`; returns the seconds per stage and the galaxy count."""
    seconds, t0 = {}, time.perf_counter()

    def stage(name: str) -> None:
        nonlocal t0
        now = time.perf_counter()
        seconds[name] = round(now - t0, 3)
        t0 = now
        step(name)

    box, particles = suite.dm_box(sim, row, suite=COMMAND, generator=f"galaxygen {__version__} generate", stage=stage,
                                  halos=takes_halos(run_dir))
    dm_path = write_box(tmp / "dm" / f"{row['name']}.h5", box, dm_only=True)
    raw = tmp / ".network"
    raw.mkdir()
    pred_path = predict_into(run_dir, [dm_path], raw, seed=int(row["galaxy_seed"]), device=device)[0]  # not a mean
    stage(STAGES[2])
    pred = read_box(pred_path, catalogs=True, velocity=True)
    pos = place_galaxies(pred.galaxies, particles, pred.box_size, np.random.default_rng([int(row["galaxy_seed"]), 1]))
    out = pred.replace(galaxy_catalog={"pos": pos},
                       meta={**pred.meta, "catalog_rule": CATALOG_RULE, "made_from_file": f"dm/{row['name']}.h5",
                             "n_galaxies": len(pos)})
    write_box(tmp / f"{row['name']}.h5", out)
    shutil.rmtree(raw)
    stage(STAGES[3])
    return seconds, len(pos)


def generate(run_dir: str | os.PathLike, out_dir: str | os.PathLike, cfg: GenerateConfig) -> dict:
    """Generate `cfg.samples` boxes at the chosen parameters with the trained run into `out_dir` (module
    doc); returns a JSON-ready summary ``{out_dir, run, config, simulate, boxes: [{name, path, dm,
    n_galaxies, params, seconds: {stage: s}}], seconds}``."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    t_start = time.perf_counter()
    sim = simulate_config(run_dir, cfg)
    rows = [{**r, "name": f"gen_{i}"} for i, r in enumerate(parameter_table("cv", cfg.samples, cfg.seed,
                                                                            dict(cfg.values)))]
    boxes = []
    with staged_folder(out_dir, COMMAND, overwrite=cfg.overwrite) as tmp:
        bar = progress(total=len(rows) * len(STAGES), desc=f"generate {len(rows)} box(es)", unit="stage")
        try:
            for row in rows:
                def step(what: str, name: str = row["name"]) -> None:
                    bar.set_postfix_str(f"{name}: {what}", refresh=False)
                    bar.update(1)

                seconds, n = _generate_one(run_dir, sim, row, tmp, cfg.device, step)
                boxes.append({"name": row["name"], "path": str(out_dir / f"{row['name']}.h5"),
                              "dm": str(out_dir / "dm" / f"{row['name']}.h5"), "n_galaxies": n,
                              "params": {k: row[k] for k in (*FIDUCIAL, "seed")},
                              "seconds": seconds})
        finally:
            bar.close()
        summary = {"out_dir": str(out_dir), "run": str(run_dir), "config": to_dict(cfg), "simulate": to_dict(sim),
                   "boxes": boxes, "seconds": round(time.perf_counter() - t_start, 3)}
        write_json(tmp / "generate.json", summary)
    return summary
