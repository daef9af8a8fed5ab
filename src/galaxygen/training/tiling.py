"""Whole-box inference by overlapping tiles with periodic padding.

A network with circular padding applied to one whole periodic box sees the box as the infinite
periodic field. Tiled inference cuts cubes of side ``tile + 2 halo`` out of the periodic field,
runs the network on batches of them and keeps each cube's central ``tile``; when the halo covers
the network's receptive field and tile starts fall on the network's down-sampling lattice
(multiples of ``align``), the stitched result equals the single pass whatever the tile size.
The exact halo is the network's receptive radius rounded up to ``align``
(:func:`galaxygen.training.receptive.exact_halo`), the default of the configs. When one window
(``tile + 2 halo``) would be at least as large as the box, the whole box is run in one pass
instead: exact (the network pads periodically) and no larger.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch

from galaxygen.errors import ConfigError
from galaxygen.progress import progress


def periodic_window(volume: torch.Tensor, start: tuple[int, int, int], size: int) -> torch.Tensor:
    """Cube ``volume[..., s0:s0+size, s1:s1+size, s2:s2+size]`` taken periodically.

    Parameters
    ----------
    volume : tensor (..., N0, N1, N2)
    start : int triple, may be negative or beyond N (wraps)
    size : side of the cube; may exceed N (the field repeats)
    """
    out = volume
    for axis, s in enumerate(start):
        n = volume.shape[volume.ndim - 3 + axis]
        idx = torch.remainder(torch.arange(s, s + size, device=volume.device), n)
        out = out.index_select(volume.ndim - 3 + axis, idx)
    return out


def tile_starts(n: int, tile: int) -> list[int]:
    """Starts of tiles of side `tile` covering [0, n) (the last one overlaps when n % tile != 0)."""
    if tile >= n:
        return [0]
    starts = list(range(0, n - tile + 1, tile))
    if starts[-1] + tile < n:
        starts.append(n - tile)
    return starts


def predict_tiled(fn: Callable[[torch.Tensor], torch.Tensor], volume: torch.Tensor | np.ndarray, *,
                  tile: int, halo: int, batch: int = 1, align: int = 1,
                  device: torch.device | str | None = None, out_device: torch.device | str = "cpu",
                  show_progress: bool = False, desc: str = "inference") -> torch.Tensor:
    """Apply `fn` to a periodic volume tile by tile and stitch the central parts.

    Parameters
    ----------
    fn : callable
        Maps a batch (B, C, s, s, s) with ``s = tile + 2 halo`` to (B, C_out, s, s, s) (a network
        with same-size output), called under ``torch.no_grad``.
    volume : tensor or array (C, N, N, N)
        The input field of one periodic box (N may differ per axis).
    tile : int
        Side of the central cube kept from each window [voxels]; clipped to N.
    halo : int
        Context on each side [voxels]; at least the network's receptive radius for exactness.
        When ``tile + 2 halo`` reaches every side of the box, `fn` runs once on the whole box.
    batch : int
        Windows per call of `fn`.
    align : int
        The network's down-sampling factor (2**levels); `tile` and `halo` must be multiples of it
        so that every window sits on the same pooling lattice as the whole box.
    device : where `fn` runs (default: the volume's device); out_device: where the result lives.

    Returns
    -------
    tensor (C_out, N, N, N) on `out_device`
    """
    vol = torch.as_tensor(volume)
    if vol.ndim != 4:
        raise ConfigError(f"predict_tiled: expected a (C, N, N, N) volume, got shape {tuple(vol.shape)}")
    if tile < 1 or halo < 0 or batch < 1:
        raise ConfigError(f"predict_tiled: tile >= 1, halo >= 0, batch >= 1 required, got {tile}, {halo}, {batch}")
    if tile % align or halo % align or any(n % align for n in vol.shape[1:]):
        raise ConfigError(f"predict_tiled: tile ({tile}), halo ({halo}) and the grid {tuple(vol.shape[1:])} "
                          f"must be multiples of the network's down-sampling factor {align}")
    device = torch.device(device) if device is not None else vol.device
    dims = vol.shape[1:]
    if all(tile + 2 * halo >= n for n in dims):  # one window would hold the whole box: one pass on it
        with torch.no_grad():
            res = fn(vol[None].to(device))
        if res.shape[0] != 1 or tuple(res.shape[2:]) != tuple(dims):
            raise ConfigError(f"predict_tiled: fn returned shape {tuple(res.shape)}, expected "
                              f"(1, C, {', '.join(map(str, dims))})")
        return res[0].to(out_device)
    tile_per_axis = [min(tile, n) for n in dims]
    side = [t + 2 * halo for t in tile_per_axis]
    if len(set(side)) != 1:
        raise ConfigError(f"predict_tiled: a tile of {tile} gives windows of unequal sides {side} on grid "
                          f"{tuple(dims)}; use a tile no larger than the smallest axis")
    t = tile_per_axis[0]
    starts = [(a, b, c) for a in tile_starts(dims[0], t) for b in tile_starts(dims[1], t)
              for c in tile_starts(dims[2], t)]
    out: torch.Tensor | None = None
    bar = progress(total=len(starts), desc=desc, unit="tile") if show_progress else None
    with torch.no_grad():
        for i in range(0, len(starts), batch):
            chunk = starts[i:i + batch]
            windows = torch.stack([periodic_window(vol, tuple(s - halo for s in st), side[0]) for st in chunk])
            res = fn(windows.to(device))
            if res.shape[0] != len(chunk) or tuple(res.shape[2:]) != (side[0],) * 3:
                raise ConfigError(f"predict_tiled: fn returned shape {tuple(res.shape)}, expected "
                                  f"({len(chunk)}, C, {side[0]}, {side[0]}, {side[0]})")
            res = res[:, :, halo:halo + t, halo:halo + t, halo:halo + t].to(out_device)
            if out is None:
                out = torch.empty((res.shape[1], *dims), dtype=res.dtype, device=out_device)
            for k, (a, b, c) in enumerate(chunk):
                out[:, a:a + t, b:b + t, c:c + t] = res[k]
            if bar is not None:
                bar.update(len(chunk))
    if bar is not None:
        bar.close()
    assert out is not None
    return out


# ----------------------------------------------------------------------------- prediction box files

def prediction_path(out_dir, name: str, realisation: int | None = None, realisations: int = 1) -> Path:
    """``<out>/<name>.h5``, or ``<out>/<name>_r<k>.h5`` when there are several realisations."""
    return Path(out_dir) / (f"{name}_r{realisation}.h5" if realisations > 1 else f"{name}.h5")
