"""Shared helpers of the evaluate tests: truth boxes and prediction boxes made from them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from galaxygen.box import Box, write_box
from galaxygen.prediction import prediction_box


def clustered_truth(make_box, name: str, seed: int, grid: int = 32, suite: str = "A") -> Box:
    """A truth box with a few hundred galaxies in halos (make_box) plus a Poisson background."""
    box = make_box(name=name, grid=grid, seed=seed, n_halos=200, suite=suite, with_catalogs=False)
    rng = np.random.default_rng(1000 + seed)
    extra = rng.poisson(0.03, size=(grid,) * 3).astype(np.float32)
    return box.replace(galaxies=box.galaxies + extra)


def as_prediction(truth: Box, galaxies: np.ndarray, *, model: str = "test:model", trained_on: str = "A",
                  realisation: int | None = None, realisations: int | None = None) -> Box:
    """A prediction box made from `truth` holding `galaxies` (the shared prediction meta of box.py)."""
    return prediction_box(truth, galaxies, model=model, trained_on=trained_on, seed=0, realisation=realisation,
                          realisations=realisations, extra_meta={"run": "tests"})


def write_set(folder: Path, boxes: list[Box], suffix: str = "") -> Path:
    """Write boxes as `<name><suffix>.h5` into `folder`; returns the folder."""
    for b in boxes:
        write_box(folder / f"{b.name}{suffix}.h5", b)
    return folder
