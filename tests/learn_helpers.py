"""Small learnable boxes for the learn tests: galaxies are a local function of the DM field."""

from __future__ import annotations

import numpy as np


def learnable_box(name: str = "CV_0", grid: int = 16, seed: int = 0, box_size: float = 25.0,
                  velocity: bool = False, suite: str = "test"):
    """A Box whose galaxies follow the DM: counts = clip(floor((dm - 14) / 6), 0, 3).

    DM: Poisson counts of a log-normal field (smoothed Gaussian noise), so a few per cent of the
    voxels are occupied and a tiny network can learn the map.
    """
    from scipy.ndimage import gaussian_filter

    from galaxygen.box import Box

    rng = np.random.default_rng(seed)
    g = gaussian_filter(rng.normal(size=(grid,) * 3), 1.0, mode="wrap")
    g /= g.std()
    dm = rng.poisson(6.0 * np.exp(0.8 * g)).astype(np.float32)
    gal = np.clip(np.floor((dm - 14.0) / 6.0), 0, 3).astype(np.float32)
    vel = rng.normal(0, 100, size=(3,) + (grid,) * 3).astype(np.float32) if velocity else None
    params = {"omega_m": 0.3, "sigma_8": 0.8, "seed": float(seed)}
    return Box(box_size=box_size, grid=grid, redshift=0.0, source="synthetic", suite=suite, name=name,
               dm=dm, galaxies=gal, params=params, dm_velocity=vel)


def write_learnable_boxes(folder, n: int = 3, grid: int = 16, velocity: bool = False):
    """Write boxes CV_0..CV_{n-1} to `folder`; returns the folder."""
    from galaxygen.box import write_box

    for i in range(n):
        write_box(folder / f"CV_{i}.h5", learnable_box(f"CV_{i}", grid, seed=i, velocity=velocity))
    return folder


def tiny_config(steps: int = 4, batch: int = 4, phases=("classifier",), norm: str = "batch", **data) -> dict:
    """A two-phase config of tiny networks for 16^3 boxes (seconds on a CPU)."""
    train = {"steps": steps, "batch_size": batch, "lr": 3e-2, "warmup_steps": 1, "eval_every": steps,
             "checkpoint_every": steps, "log_every": 1, "schedule": "cosine"}
    return {"task": "two_phase", "device": "cpu", "seed": 0, "phases": list(phases),
            "data": {"crop": 8, "pad": 4, "focus": 0.5, "validation": 0.34, **data},
            "classifier": {"model": {"name": "inception", "width": 8, "depth": 1, "norm": norm},
                           "loss": {"name": "weighted_ce", "pos_weight": 5.0},
                           "train": {**train, "early_stopping": {"metric": None}}},
            "regressor": {"model": {"name": "unet", "width": 4, "depth": 1, "norm": norm},
                          "loss": {"name": "weighted_mse"}, "train": {**train, "early_stopping": {"metric": None}}},
            "infer": {"tile": 8, "halo": 4, "batch": 2}}


def ddp_worker(rank: int, world: int, port: int, config: dict, boxes: str, run_dir: str) -> None:
    """One process of a gloo DDP run, set up as torchrun would (environment variables)."""
    import os

    import torch

    torch.set_num_threads(1)
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port), GALAXYGEN_NO_PROGRESS="1")
    from galaxygen.training import distributed as D
    from galaxygen.models.registry import train

    try:
        train(config, boxes, run_dir)
    finally:
        D.cleanup()
