"""What a run was trained on, to check what it is later asked to predict: ``inputs.json``.

Written at train time beside ``split.json`` (both tasks)::

    {"geometries": [{"box_size": 25.0, "grid": 32, "voxel_size": 0.78125, "redshift": 0.0}, ...],
     "boxes": [{"name": "CV_0", "suite": "A", "split": "train", "dm": "<sha256 of fields/dm>"}, ...],
     "halos": false}

``geometries`` are the distinct (box size [Mpc/h], grid, redshift) of the training and validation
boxes; ``boxes`` every box of the split with the hash of its DM field (`galaxygen.fingerprint.array_hash`),
so that a box is recognised by its content whatever its path or name; ``halos`` whether the run
takes a halo channel (``data.halos``), so that its inputs need ``catalogs/halos``.

`grid_like` (``galaxygen ingest nbody --like RUN``) paints one's own DM at the run's voxel size.
`check_inputs` (run by ``galaxygen predict``) refuses an input whose box size, voxel size or
redshift differ from every training geometry (a network is not trained for other scales or
epochs) unless ``allow_mismatch``, and warns when an input was in the run's training or validation
split (its prediction is then no test of the model).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from galaxygen.box import Box, read_box, read_header
from galaxygen.fingerprint import array_hash
from galaxygen.training.data import halos_missing
from galaxygen.errors import GalaxygenError
from galaxygen.io import write_json

INPUTS = "inputs.json"
SPLITS = ("train", "validation", "test")
BOX_RTOL = 1e-6   # box and voxel sizes agree to this relative tolerance
Z_TOL = 1e-3      # redshifts agree to this (absolute and relative) tolerance

log = logging.getLogger(__name__)


def geometry(box: Box) -> dict[str, float]:
    """Box size [Mpc/h], grid, voxel size [Mpc/h] and redshift of a box."""
    return {"box_size": box.box_size, "grid": box.grid, "voxel_size": box.voxel_size, "redshift": box.redshift}


def inputs_record(split, halos: bool = False) -> dict[str, Any]:
    """The content of inputs.json for a `galaxygen.training.data.Split` and whether the run takes a halo
    channel (reads each box file once)."""
    boxes, geometries, seen = [], [], {}
    for which in SPLITS:
        for region in getattr(split, which):
            if region.path not in seen:
                seen[region.path] = read_box(region.path, catalogs=False, velocity=False)
            box = seen[region.path]
            boxes.append({"name": box.name, "suite": box.suite, "split": which, "dm": array_hash(box.dm)})
            if which != "test" and geometry(box) not in geometries:
                geometries.append(geometry(box))
    return {"geometries": geometries, "boxes": boxes, "halos": bool(halos)}


def write_inputs(run_dir: Path, split, halos: bool = False) -> Path:
    """Write ``run_dir/inputs.json`` for `split` (atomically, replacing an older one)."""
    return write_json(Path(run_dir) / INPUTS, inputs_record(split, halos), overwrite=True)


def takes_halos(run_dir: str | Path) -> bool:
    """Whether the run's inputs need ``catalogs/halos``: it takes a halo channel (its inputs.json), or it
    is a cascade (``cascade`` in its config.json) on a run that does. False without those files."""
    path, config = Path(run_dir) / INPUTS, Path(run_dir) / "config.json"
    if path.is_file() and json.loads(path.read_text()).get("halos", False):
        return True
    cascade = json.loads(config.read_text()).get("cascade") if config.is_file() else None
    return bool(cascade) and takes_halos(cascade)


def _differences(g: dict[str, float], ref: dict[str, float]) -> list[str]:
    out = []
    if not np.isclose(g["box_size"], ref["box_size"], rtol=BOX_RTOL, atol=0):
        out.append(f"box size {g['box_size']:g} Mpc/h (trained on {ref['box_size']:g})")
    if not np.isclose(g["voxel_size"], ref["voxel_size"], rtol=BOX_RTOL, atol=0):
        out.append(f"voxel size {g['voxel_size']:.4g} Mpc/h (trained on {ref['voxel_size']:.4g})")
    if not np.isclose(g["redshift"], ref["redshift"], rtol=Z_TOL, atol=Z_TOL):
        out.append(f"redshift {g['redshift']:g} (trained on {ref['redshift']:g})")
    return out


def grid_like(run_dir: str | Path, box_size: float, redshift: float, where: str) -> int:
    """Voxels per side that paint a box of `box_size` [Mpc/h] at `redshift` at the voxel size of the
    run's training boxes (``galaxygen ingest nbody --like RUN``).

    Raises GalaxygenError in one line naming `where` when the run has no inputs.json, or when no
    training geometry can match: the box is not a whole number of the run's voxels, or the redshift
    differs. A box size the run was not trained on is a warning (`check_inputs` refuses it unless
    ``allow_mismatch``).
    """
    path = Path(run_dir) / INPUTS
    if not path.is_file():
        raise GalaxygenError(f"{where}: --like {run_dir}: no {INPUTS} (not a run, or trained by an older "
                             f"galaxygen): give the grid (--grid N)")
    why = []
    for ref in json.loads(path.read_text()).get("geometries") or []:
        n = max(1, round(box_size / ref["voxel_size"]))
        if not np.isclose(box_size / n, ref["voxel_size"], rtol=BOX_RTOL, atol=0):
            why.append(f"a {box_size:g} Mpc/h box is not a whole number of its {ref['voxel_size']:.6g} Mpc/h "
                       f"voxels ({box_size / ref['voxel_size']:.6g})")
        elif not np.isclose(redshift, ref["redshift"], rtol=Z_TOL, atol=Z_TOL):
            why.append(f"it was trained at redshift {ref['redshift']:g}, this DM is at {redshift:g}")
        else:
            if not np.isclose(box_size, ref["box_size"], rtol=BOX_RTOL, atol=0):
                log.warning(f"{where}: a {box_size:g} Mpc/h box, {run_dir} was trained on {ref['box_size']:g} "
                            f"Mpc/h boxes: `galaxygen predict` needs --allow-mismatch for it")
            return n
    raise GalaxygenError(f"{where}: cannot be painted at the voxel size of {run_dir}: "
                         f"{'; '.join(why) or 'it records no training geometry'}")


def check_inputs(run_dir: str | Path, paths: Sequence[Path], *, allow_mismatch: bool = False) -> None:
    """Check the boxes a run is asked to predict against what it was trained on (see module doc).

    Raises GalaxygenError naming the first input whose box size, voxel size or redshift differ from
    every training geometry, unless `allow_mismatch` (then it is a warning), and the first input
    without ``catalogs/halos`` when the run needs them (`takes_halos`; always). Logs a warning for every
    input that was in the run's training or validation split. A run without inputs.json (trained by
    an older galaxygen) is not checked, with a warning.
    """
    path = Path(run_dir) / INPUTS
    if not path.is_file():
        log.warning(f"{run_dir}: no {INPUTS} (trained by an older galaxygen): the inputs' geometry and "
                    f"training split are not checked")
        return
    record = json.loads(path.read_text())
    geometries = record.get("geometries") or []
    used = {}
    for entry in record.get("boxes", []):
        if entry["split"] != "test":
            used.setdefault(entry["dm"], []).append(entry["split"])
    mismatched, halos = [], takes_halos(run_dir)
    for p in paths:
        if halos and "halos" not in read_header(p).catalogs:
            raise GalaxygenError(halos_missing(str(p), str(run_dir)))
        box = read_box(p, catalogs=False, velocity=False, allow_dm_only=True)
        g = geometry(box)
        diffs = [_differences(g, ref) for ref in geometries]
        if diffs and all(diffs):
            mismatched.append(f"{p}: {', '.join(diffs[0])} differ from the run's training boxes")
        splits = used.get(array_hash(box.dm))
        if splits:
            log.warning(f"{p}: box {box.name!r} was in the run's {' and '.join(dict.fromkeys(splits))} split; "
                        f"its prediction is no test of the model")
    log.info(f"{len(paths)} inputs checked against the {len(geometries)} training geometries of {run_dir}")
    if mismatched and not allow_mismatch:
        more = f" ({len(mismatched) - 1} more inputs differ)" if len(mismatched) > 1 else ""
        raise GalaxygenError(f"{mismatched[0]}{more}; pass --allow-mismatch to predict anyway")
    for m in mismatched:
        log.warning(f"{m} (--allow-mismatch)")
