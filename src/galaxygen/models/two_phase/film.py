"""Parameter conditioning of the two-phase networks: a learned embedding that modulates every block.

The standardised box parameters p (B, P) (`galaxygen.training.params.ParamTransform`) go through an
MLP to an embedding e (B, E); each conditioned block gets its own linear map of e to a per-channel
scale γ and shift β, and its output h (B, C, n, n, n) becomes h·(1 + γ) + β (FiLM, Perez et al.
arXiv:1709.07871). The maps start at zero, so an untrained conditioned network computes exactly
what the same network without conditioning computes. γ and β are the same at every voxel, so
conditioning changes no receptive radius and tiled inference stays exact.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from galaxygen.errors import ConfigError

EMBED = 64  # width of the parameter embedding

Film = tuple[torch.Tensor, torch.Tensor]  # (scale γ, shift β), each (B, C)


class Conditioning(nn.Module):
    """``Conditioning(n_params, channels)``: the embedding MLP and one FiLM map per block of
    ``channels[i]`` output channels; ``forward(p)`` gives their (γ, β) in block order."""

    def __init__(self, n_params: int, channels: Sequence[int], embed: int = EMBED):
        super().__init__()
        if n_params < 1:
            raise ConfigError(f"conditioning: expected >= 1 parameter, got {n_params}")
        self.n_params = n_params
        self.embed = nn.Sequential(nn.Linear(n_params, embed), nn.SiLU(), nn.Linear(embed, embed), nn.SiLU())
        self.films = nn.ModuleList(nn.Linear(embed, 2 * c) for c in channels)
        for f in self.films:  # identity at the start
            nn.init.zeros_(f.weight)
            nn.init.zeros_(f.bias)

    def forward(self, params: torch.Tensor) -> list[Film]:
        if params.ndim != 2 or params.shape[1] != self.n_params:
            raise ConfigError(f"conditioning: expected parameters (B, {self.n_params}), got {tuple(params.shape)}")
        e = self.embed(params.float())
        return [tuple(f(e).chunk(2, dim=1)) for f in self.films]  # type: ignore[misc]


def conditioning(n_params: int, channels: Sequence[int]) -> Conditioning | None:
    """The conditioning of a network whose blocks output `channels`, or None without parameters."""
    return Conditioning(n_params, channels) if n_params else None


def films(cond: Conditioning | None, params: torch.Tensor | None, batch: int) -> list[Film | None] | None:
    """The (γ, β) of every block for `params` (B, P), or None for an unconditioned network.

    A conditioned network refuses to run without parameters, an unconditioned one with them.
    """
    if cond is None:
        if params is not None:
            raise ConfigError("model: parameters given to a network trained without conditioning")
        return None
    if params is None:
        raise ConfigError(f"model: the network is conditioned on {cond.n_params} parameters; none given")
    if params.shape[0] != batch:
        raise ConfigError(f"model: {params.shape[0]} parameter vectors for a batch of {batch}")
    return cond(params)  # type: ignore[return-value]


def modulate(h: torch.Tensor, film: Film | None) -> torch.Tensor:
    """h (B, C, ...) · (1 + γ) + β per sample and channel; h itself without conditioning."""
    if film is None:
        return h
    scale, shift = film
    shape = scale.shape + (1,) * (h.ndim - 2)
    return h * (1 + scale.reshape(shape).to(h.dtype)) + shift.reshape(shape).to(h.dtype)
