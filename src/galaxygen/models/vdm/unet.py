"""ε-predicting U-Net for the variational diffusion model (2-D or 3-D, periodic).

A DDPM/VDM-style U-Net (Ho et al. arXiv:2006.11239; Kingma et al. arXiv:2107.00630 appendix B):
ResNet blocks with GroupNorm and SiLU, a time embedding computed from γ(t) (sinusoidal features
of the normalised γ, then an MLP) added inside every block, strided-conv downsampling and
nearest-neighbour upsampling with skip connections. Every convolution pads circularly, so the
network respects the periodic box (it commutes with shifts by multiples of 2^(levels−1) voxels).

Conditioning (the design): the DM field enters by channel concatenation with z_t; the
simulation parameters (Ωm, σ8, A_SN1, A_AGN1, A_SN2, A_AGN2, standardised) enter through an
MLP embedding added to the time embedding.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from galaxygen.training.receptive import chain_radius


def _conv(dim: int, cin: int, cout: int, k: int = 3, stride: int = 1) -> nn.Module:
    cls = nn.Conv3d if dim == 3 else nn.Conv2d
    return cls(cin, cout, k, stride=stride, padding=k // 2, padding_mode="circular" if k > 1 else "zeros")


def _norm(channels: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(groups, channels), channels)


def timestep_embedding(t: torch.Tensor, features: int, scale: float = 1000.0) -> torch.Tensor:
    """Sinusoidal features of t (B,) -> (B, features) (Vaswani et al.; Ho et al. 2020)."""
    half = features // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / max(half - 1, 1))
    args = (scale * t.float())[:, None] * freqs[None]
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=1)
    return F.pad(emb, (0, features % 2))


class ResBlock(nn.Module):
    """GN → SiLU → conv → GN·(1 + scale) + shift → SiLU → dropout → conv, plus a (1×1) skip.

    (scale, shift) come from the time/parameter embedding (the "scale-shift norm" of Dhariwal &
    Nichol arXiv:2105.05233), so the noise level can modulate features multiplicatively.
    """

    def __init__(self, dim: int, cin: int, cout: int, emb_dim: int, groups: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = _norm(cin, groups)
        self.conv1 = _conv(dim, cin, cout)
        self.emb = nn.Linear(emb_dim, 2 * cout)
        self.norm2 = _norm(cout, groups)
        self.drop = nn.Dropout(dropout)
        self.conv2 = _conv(dim, cout, cout)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = _conv(dim, cin, cout, k=1) if cin != cout else nn.Identity()
        self.dim = dim

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(emb).view(emb.shape[0], -1, *([1] * self.dim)).chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(self.drop(F.silu(h)))
        return self.skip(x) + h


def unet_radius(levels: int, blocks: int, mid: int = 2) -> int:
    """Receptive radius [voxels] of the U-Net's convolutions (conv_in, the ResBlocks' two 3-wide
    convolutions, stride-2 down-sampling, nearest up-sampling + 3-wide conv, conv_out).

    GroupNorm normalises by statistics over the whole input, so an output voxel also depends on
    every input voxel through them: a tiled pass with this halo differs from the whole-box pass
    only by the per-window statistics (it is exact for the network without normalisation).
    """
    chain: list[tuple[str, int]] = [("conv", 1)]
    for level in range(levels):
        chain += [("conv", 2)] * blocks + ([("down", 1)] if level < levels - 1 else [])
    chain += [("conv", 2)] * mid
    for level in reversed(range(levels)):
        chain += [("conv", 2)] * (blocks + 1) + ([("up", 2), ("conv", 1)] if level > 0 else [])
    return chain_radius(chain + [("conv", 1)])


class DiffusionUNet(nn.Module):
    """ε̂(z_t; γ_t, DM, params) on (B, C, N, N[, N]) periodic grids.

    Parameters
    ----------
    in_channels : int
        Channels of z_t (the galaxy field; 1).
    out_channels : int
        Channels of ε̂ (= in_channels).
    dim : 2 or 3
        Spatial dimensions.
    cond_channels : int
        Conditioning channels concatenated to z_t (the transformed DM field; 1).
    width : int
        Channels at the first level (Ono et al. arXiv:2403.10648: 48).
    mults : sequence of int
        Channel multiplier per level; len(mults) levels, each but the last halving the grid.
    blocks : int
        ResNet blocks per level.
    n_params : int
        Number of conditioning parameters (0: none).
    gamma_range : (float, float)
        γ values mapped to 0 and 1 before the sinusoidal time embedding (fixed, so that the
        embedding does not move when the learned schedule's endpoints do).
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 1, *, dim: int = 3, cond_channels: int = 1,
                 width: int = 32, mults: Sequence[int] = (1, 2, 2), blocks: int = 1, groups: int = 8,
                 n_params: int = 0, dropout: float = 0.0, gamma_range: tuple[float, float] = (-13.3, 5.0)) -> None:
        super().__init__()
        if dim not in (2, 3):
            raise ValueError(f"dim must be 2 or 3, got {dim}")
        self.dim, self.levels, self.n_params = dim, len(mults), int(n_params)
        self.gamma_range = (float(gamma_range[0]), float(gamma_range[1]))
        emb_dim = 4 * width
        self.time_features = width
        self.time_mlp = nn.Sequential(nn.Linear(width, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.param_mlp = (nn.Sequential(nn.Linear(self.n_params, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
                          if self.n_params else None)
        self.conv_in = _conv(dim, in_channels + cond_channels, width)
        chans = [width * m for m in mults]
        skips = [width]
        self.down = nn.ModuleList()
        c = width
        for i, ch in enumerate(chans):
            for _ in range(blocks):
                self.down.append(ResBlock(dim, c, ch, emb_dim, groups, dropout))
                c = ch
                skips.append(c)
            if i < len(chans) - 1:
                self.down.append(_conv(dim, c, c, stride=2))
                skips.append(c)
        self.mid = nn.ModuleList([ResBlock(dim, c, c, emb_dim, groups, dropout) for _ in range(2)])
        self.up = nn.ModuleList()
        for i, ch in reversed(list(enumerate(chans))):
            for _ in range(blocks + 1):
                self.up.append(ResBlock(dim, c + skips.pop(), ch, emb_dim, groups, dropout))
                c = ch
            if i > 0:
                self.up.append(_conv(dim, c, c))
        self.norm_out = _norm(c, groups)
        self.conv_out = _conv(dim, c, out_channels)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)
        self.receptive_radius = unet_radius(self.levels, blocks, len(self.mid))

    @property
    def multiple(self) -> int:
        """Grid sizes must be divisible by this (2^(levels−1))."""
        return 2 ** (self.levels - 1)

    def embed(self, gamma: torch.Tensor, params: torch.Tensor | None) -> torch.Tensor:
        """Time embedding from γ (B,), plus the parameter embedding of params (B, n_params)."""
        lo, hi = self.gamma_range
        emb = self.time_mlp(timestep_embedding((gamma - lo) / (hi - lo), self.time_features))
        if self.param_mlp is not None:
            if params is None:
                raise ValueError("this network was built with parameter conditioning; params are required")
            emb = emb + self.param_mlp(params.to(emb.dtype))
        return emb

    def forward(self, z: torch.Tensor, gamma: torch.Tensor, cond: torch.Tensor | None = None,
                params: torch.Tensor | None = None) -> torch.Tensor:
        """ε̂ for z (B, C, *grid), γ (B,) or scalar, cond (B, Cc, *grid), params (B, n_params)."""
        if any(s % self.multiple for s in z.shape[2:]):
            raise ValueError(f"grid {tuple(z.shape[2:])} is not divisible by {self.multiple} "
                             f"({self.levels} U-Net levels)")
        gamma = gamma.reshape(-1).expand(z.shape[0]) if gamma.numel() == 1 else gamma.reshape(-1)
        emb = self.embed(gamma, params)
        h = self.conv_in(torch.cat([z, cond], dim=1) if cond is not None else z)
        hs = [h]
        for layer in self.down:
            h = layer(h, emb) if isinstance(layer, ResBlock) else layer(h)
            hs.append(h)
        for layer in self.mid:
            h = layer(h, emb)
        for layer in self.up:
            if isinstance(layer, ResBlock):
                h = layer(torch.cat([h, hs.pop()], dim=1), emb)
            else:
                h = layer(F.interpolate(h, scale_factor=2, mode="nearest"))
        return self.conv_out(F.silu(self.norm_out(h)))
