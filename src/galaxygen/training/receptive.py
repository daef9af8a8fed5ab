"""Receptive radius of a network, exactly, from its chain of layers; the exact tiling halo.

A convolutional network acts on each axis separately (its dependency set is a box), so its
receptive field follows from 1-D interval arithmetic along its longest chain of layers (skip
connections are shorter chains, whose intervals the longest one contains). Down-sampling makes
the interval depend on the output voxel's position on the coarse lattice, so every position
modulo the total down-sampling factor is tried and the worst is kept: a perturbation of an input
voxel farther than the radius (Chebyshev distance) never changes an output voxel, and for some
output voxel one at the radius does (for generic weights; tested by perturbation).
"""

from __future__ import annotations

from typing import Sequence

Layer = tuple[str, int]

LAYERS = ("conv", "pool", "down", "up")


def chain_radius(layers: Sequence[Layer]) -> int:
    """Receptive radius [voxels] of `layers`, applied in order, whose output has the input's
    resolution (every down-sampling is undone by an up-sampling, as in a U-Net).

    Each layer is ``(kind, k)``:

    * ``("conv", r)``: a stencil of radius r at the current resolution (a (2r+1)-wide kernel, or a
      block of radius r);
    * ``("pool", f)``: f-fold down-sampling by non-overlapping cells (max pool of side and stride f):
      coarse j reads fine ``[f j, f j + f - 1]``;
    * ``("down", r)``: stride-2 convolution of radius r padded by r: coarse j reads fine
      ``[2 j - r, 2 j + r]``;
    * ``("up", f)``: f-fold up-sampling (nearest neighbour, or a transposed convolution with kernel
      = stride = f): fine i reads coarse ``i // f``.
    """
    period = 1
    for kind, k in layers:
        if kind not in LAYERS:
            raise ValueError(f"chain_radius: unknown layer kind {kind!r}; expected one of {LAYERS}")
        period *= k if kind == "pool" else 2 if kind == "down" else 1
    radius = 0
    for i in range(period):  # output voxels at every position of the coarsest lattice
        lo = hi = i
        for kind, k in reversed(layers):  # from the output back to the input
            if kind == "conv":
                lo, hi = lo - k, hi + k
            elif kind == "pool":
                lo, hi = k * lo, k * hi + k - 1
            elif kind == "down":
                lo, hi = 2 * lo - k, 2 * hi + k
            else:
                lo, hi = lo // k, hi // k
        radius = max(radius, i - lo, hi - i)
    return radius


def exact_halo(radius: int, align: int = 1) -> int:
    """The smallest tiling halo [voxels] that is exact: `radius` rounded up to a multiple of `align`
    (the network's down-sampling factor, on whose lattice tiles must start)."""
    return -(-int(radius) // int(align)) * int(align)
