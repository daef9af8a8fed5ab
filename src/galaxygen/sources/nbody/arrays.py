"""Positions arrays and density grids from ``.npy`` files or HDF5 datasets, read piece by piece.

A positions array is (n, 3), float32 or float64, in a length unit the caller names; a density grid
is (M, M, M), any real type, holding DM particles per voxel (or a density the caller rescales).
Both are memory-mapped (``.npy``) or sliced (HDF5), so that at most a chunk of particles or a slab
of the grid is in memory at once.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import h5py
import numpy as np

from galaxygen.sources.camels.hdf5 import IngestError, open_h5
from galaxygen.sources.camels.snapshot import box_positions


@dataclass(frozen=True)
class ArrayFile:
    """A ``.npy`` file (`dataset` None) or dataset `dataset` of an HDF5 file."""

    path: Path
    dataset: str | None = None

    @property
    def label(self) -> str:
        return f"{self.path}:{self.dataset}" if self.dataset else str(self.path)


@contextlib.contextmanager
def open_array(src: ArrayFile) -> Iterator:
    """The array of `src`, sliceable without loading it whole (a memory map or an h5py Dataset)."""
    if src.dataset is None:
        if not src.path.is_file():
            raise IngestError(f"{src.path}: no such file")
        try:
            arr = np.load(src.path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise IngestError(f"{src.path}: not a readable .npy array ({exc})") from exc
        yield arr
        return
    with open_h5(src.path) as f:
        obj = f.get(src.dataset)
        if not isinstance(obj, h5py.Dataset):
            raise IngestError(f"{src.label}: no such dataset in the file")
        yield obj


def check_positions(arr, where: str) -> int:
    """Number of particles of a positions array; IngestError unless (n, 3) float32 / float64."""
    if len(arr.shape) != 2 or arr.shape[1] != 3:
        raise IngestError(f"{where}: positions: expected shape (n, 3), got {tuple(arr.shape)}")
    if arr.dtype not in (np.float32, np.float64):
        raise IngestError(f"{where}: positions: expected float32 or float64, got {arr.dtype}")
    if arr.shape[0] == 0:
        raise IngestError(f"{where}: positions: no particles")
    return int(arr.shape[0])


def position_chunks(arr, box_size: float, unit: float, unit_name: str, chunk: int,
                    where: str) -> Iterator[np.ndarray]:
    """Chunks of at most `chunk` positions (m, 3), float64 Mpc/h in [0, `box_size`), from an array in
    a unit worth `unit` Mpc/h; IngestError (wrong units) for positions outside the box."""
    for start in range(0, arr.shape[0], chunk):
        yield box_positions(arr[start:start + chunk], box_size, unit, unit_name, where)


def check_grid(arr, where: str) -> int:
    """Voxels per side M of a density grid; IngestError unless (M, M, M) of real numbers."""
    shape = tuple(arr.shape)
    if len(shape) != 3 or len(set(shape)) != 1:
        raise IngestError(f"{where}: density grid: expected shape (M, M, M), got {shape}")
    if arr.dtype.kind not in "fiu":
        raise IngestError(f"{where}: density grid: expected real numbers, got {arr.dtype}")
    return shape[0]


def coarsen(arr, grid: int, where: str) -> np.ndarray:
    """A density grid (M, M, M) summed over blocks of f^3 voxels into (grid, grid, grid) float32, M = f
    grid (f = 1: the grid as it is), one slab at a time.

    Raises IngestError when `grid` does not divide M, or for NaN, infinite or negative values.
    """
    m = arr.shape[0]
    if grid < 1 or m % grid:
        raise IngestError(f"{where}: {grid} voxels per side do not divide the density grid's {m}: a grid is only "
                          f"summed into coarser voxels by a whole factor")
    f = m // grid
    out = np.empty((grid,) * 3, dtype=np.float32)
    for i in range(grid):
        slab = np.asarray(arr[i * f:(i + 1) * f], dtype=np.float64)
        if not np.isfinite(slab).all():
            raise IngestError(f"{where}: density grid: contains NaN or infinite values")
        if (slab < 0).any():
            raise IngestError(f"{where}: density grid: negative values (an overdensity delta? give 1 + delta, "
                              f"with --mean-count)")
        out[i] = slab.reshape(f, grid, f, grid, f).sum(axis=(0, 2, 4))
    return out
