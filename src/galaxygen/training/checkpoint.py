"""Checkpoints: what a Trainer saves and a resumed run or a prediction loads.

A checkpoint holds everything needed to continue a killed run exactly: model, optimiser, LR
scheduler, gradient scaler, EMA weights, step, early-stopping state, the RNG states of python,
numpy and torch (CPU and CUDA), and the resolved config. Files are written atomically.

A checkpoint holds only tensors and plain data (dicts, lists, tuples, numbers, strings, None): RNG
states are stored as tensors and lists, so checkpoints are read with ``torch.load(...,
weights_only=True)``, and a file carrying any other pickled object (which could run code when
unpickled) is refused.
"""

from __future__ import annotations

import pickle
import random
import re
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from galaxygen.errors import GalaxygenError
from galaxygen.io import atomic_path

# a phase folder (`galaxygen.training.trainer.Trainer`'s work_dir): its checkpoints and end mark
LAST, BEST, DONE = "checkpoints/last.pt", "checkpoints/best.pt", "done.json"


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
