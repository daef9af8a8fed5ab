"""Checkpoints and run directories.

A checkpoint holds everything needed to continue a killed run exactly: model, optimiser, LR
scheduler, gradient scaler, EMA weights, step, early-stopping state, the RNG states of python,
numpy and torch (CPU and CUDA), and the resolved config. Files are written atomically.

A checkpoint holds only tensors and plain data (dicts, lists, tuples, numbers, strings, None): RNG
states are stored as tensors and lists, so checkpoints are read with ``torch.load(...,
weights_only=True)``, and a file carrying any other pickled object (which could run code when
unpickled) is refused.
"""

from __future__ import annotations

import json
import pickle
import random
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from galaxygen.errors import ConfigError, GalaxygenError
from galaxygen.io import atomic_path, write_json
from galaxygen.outputs import claim_folder


def rng_state() -> dict[str, Any]:
    """RNG states of python, numpy and torch (CPU and every CUDA device) as tensors and plain data.

    ``python``: [version, the 625 ints of the Mersenne Twister, gauss_next]; ``numpy``: the legacy
    global generator's MT19937 key (int64 tensor of 624 words), ``pos``, ``has_gauss``, ``gauss``;
    ``torch`` / ``cuda``: uint8 tensors.
    """
    version, internal, gauss_next = random.getstate()
    _, key, pos, has_gauss, gauss = np.random.get_state()
    state = {"python": [int(version), [int(v) for v in internal], gauss_next],
             "numpy": {"key": torch.from_numpy(key.astype(np.int64)), "pos": int(pos),
                       "has_gauss": int(has_gauss), "gauss": float(gauss)},
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    version, internal, gauss_next = state["python"]
    random.setstate((int(version), tuple(int(v) for v in internal), gauss_next))
    np_state = state["numpy"]
    np.random.set_state(("MT19937", np_state["key"].cpu().numpy().astype(np.uint32), int(np_state["pos"]),
                         int(np_state["has_gauss"]), float(np_state["gauss"])))
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def save_checkpoint(path: str | Path, state: Mapping[str, Any]) -> Path:
    """Write `state` with torch.save to a temporary file, then rename onto `path`."""
    path = Path(path)
    with atomic_path(path, overwrite=True) as tmp:
        torch.save(dict(state), tmp)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (tensors and plain data only).

    The file is unpickled with ``weights_only=True``: a checkpoint carrying any other Python object
    (e.g. one crafted to run code when loaded) is refused with a :class:`GalaxygenError`.
    """
    path = Path(path)
    if not path.is_file():
        raise GalaxygenError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL (\S+)", str(exc))
        what = f" ({found.group(1)})" if found else ""
        raise GalaxygenError(f"{path}: refused: the checkpoint holds a pickled Python object{what}, not only "
                             f"tensors and plain data; galaxygen does not load it, as unpickling it could run "
                             f"code") from None
    except Exception as exc:  # noqa: BLE001 - corrupt file: name it
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise GalaxygenError(f"{path}: not a readable checkpoint ({first})") from None
    if not isinstance(state, dict):
        raise GalaxygenError(f"{path}: not a galaxygen checkpoint (holds a {type(state).__name__}, expected a dict)")
    return state


def prepare_run_dir(run_dir: str | Path, config: Mapping[str, Any], *, resume: bool, overwrite: bool = False,
                    write: bool = True, entries: Sequence[str] = ()) -> dict[str, Any]:
    """Create a run directory holding ``config.json``, or reopen it for ``resume``.

    A new run needs a new or empty directory; with `overwrite` it may replace a run that
    `galaxygen train` wrote there (only the entries recorded in its ``.galaxygen-outputs.json``: a
    folder holding anything else is refused, see :mod:`galaxygen.outputs`). `entries` are the
    top-level files and folders the task writes besides ``config.json`` (recorded for a later
    `--overwrite`). A resumed run uses the saved config (the given one must equal it, apart from
    the device). Returns the config to use. Only the caller with ``write=True`` (rank 0) writes.
    """
    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.json"
    if resume:
        if not cfg_path.is_file():
            raise GalaxygenError(f"{run_dir}: nothing to resume (no config.json); drop --resume to start a run")
        saved = json.loads(cfg_path.read_text())
        changed = sorted(k for k in set(saved) | set(config)
                         if saved.get(k) != config.get(k) and k not in ("device",))
        if changed and config:
            raise ConfigError(f"{run_dir}: --resume with a config that differs from the saved run in {changed}; "
                              f"resume with the same config (it is in {cfg_path})")
        return saved
    if cfg_path.exists() and not overwrite:
        raise GalaxygenError(f"{run_dir}: already holds a run (config.json); pass --resume to continue it "
                             f"or --overwrite to start again")
    if write:
        claim_folder(run_dir, "train", ("config.json", *entries), overwrite=overwrite)
        write_json(cfg_path, dict(config), overwrite=True)
    return dict(config)


def start_run(config: Mapping[str, Any], run_dir: str | Path, device: str | None, *, resume: bool,
              overwrite: bool = False, entries: Sequence[str] = ()):
    """Start a (possibly distributed) training run; returns (DistInfo, resolved config dict).

    Every process joins the process group; rank 0 prepares `run_dir` (checks resume / overwrite and
    writes config.json; `entries` as in :func:`prepare_run_dir`) and all ranks continue with the
    config it resolved.
    """
    from galaxygen.training import distributed as D

    info = D.init_distributed(device)
    resolved = D.broadcast_object(prepare_run_dir(run_dir, config, resume=resume, overwrite=overwrite,
                                                  write=info.is_main, entries=entries) if info.is_main else None)
    D.barrier()
    return info, resolved


def read_run_config(run_dir: str | Path) -> dict[str, Any]:
    """The resolved config of a run directory."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise GalaxygenError(f"{run_dir}: not a run directory (no config.json)")
    return json.loads(path.read_text())
