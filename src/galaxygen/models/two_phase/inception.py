"""A 3-D Inception network (stacked parallel-branch blocks at full resolution), periodic padding.

Zhang et al. arXiv:1902.05965 use Inception blocks (Szegedy et al. arXiv:1409.4842) for the
classifier phase. There is no down-sampling (``align`` = 1), so the network commutes with every
periodic shift.
"""

from __future__ import annotations

import torch
from torch import nn

from galaxygen.errors import ConfigError
from galaxygen.models.two_phase.blocks import InceptionBlock, activation as make_act, conv, norm as make_norm


class Inception(nn.Module):
    """``Inception(in_channels, out_channels, *, width, depth, norm, activation)``.

    A 3³ stem to ``width`` channels, ``depth`` Inception blocks of ``width`` channels, a 1³ head
    with no activation. Input and output (B, C, n, n, n), any n.
    """

    config_keys = ("width", "depth", "norm", "activation")  # the ModelConfig fields it takes

    def __init__(self, in_channels: int, out_channels: int, *, width: int = 32, depth: int = 4,
                 norm: str = "batch", activation: str = "relu"):
        super().__init__()
        if width < 4 or depth < 1:
            raise ConfigError(f"model: inception needs width >= 4 and depth >= 1, got width={width}, depth={depth}")
        self.stem = nn.Sequential(conv(in_channels, width), make_norm(norm, width), make_act(activation))
        self.blocks = nn.Sequential(*[InceptionBlock(width, width, norm_kind=norm, act=activation)
                                      for _ in range(depth)])
        self.head = conv(width, out_channels, 1)
        self.align = 1
        self.receptive_radius = 1 + sum(b.radius for b in self.blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))
