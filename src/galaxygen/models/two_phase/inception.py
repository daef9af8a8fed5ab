"""A 3-D Inception network (stacked parallel-branch blocks at full resolution), periodic padding.

Zhang et al. arXiv:1902.05965 use Inception blocks (Szegedy et al. arXiv:1409.4842) for the
classifier phase. There is no down-sampling (``align`` = 1), so the network commutes with every
periodic shift. With ``n_params`` > 0 the stem's and every block's output are modulated by the box
parameters (`film`).
"""

from __future__ import annotations

import torch
from torch import nn

from galaxygen.errors import ConfigError
from galaxygen.models.two_phase.blocks import InceptionBlock, activation as make_act, conv, norm as make_norm
from galaxygen.models.two_phase.film import conditioning, films, modulate


class Inception(nn.Module):
    """``Inception(in_channels, out_channels, *, width, depth, norm, activation, n_params)``.

    A 3³ stem to ``width`` channels, ``depth`` Inception blocks of ``width`` channels, a 1³ head
    with no activation. Input and output (B, C, n, n, n), any n; with ``n_params`` > 0 also the
    standardised box parameters (B, n_params).
    """

    config_keys = ("width", "depth", "norm", "activation")  # the ModelConfig fields it takes

    def __init__(self, in_channels: int, out_channels: int, *, width: int = 32, depth: int = 4,
                 norm: str = "batch", activation: str = "relu", n_params: int = 0):
        super().__init__()
        if width < 4 or depth < 1:
            raise ConfigError(f"model: inception needs width >= 4 and depth >= 1, got width={width}, depth={depth}")
        self.stem = nn.Sequential(conv(in_channels, width), make_norm(norm, width), make_act(activation))
        self.blocks = nn.Sequential(*[InceptionBlock(width, width, norm_kind=norm, act=activation)
                                      for _ in range(depth)])
        self.head = conv(width, out_channels, 1)
        self.cond = conditioning(n_params, [width] * (depth + 1))  # made last: weights drawn as before
        self.align = 1
        self.receptive_radius = 1 + sum(b.radius for b in self.blocks)

    def forward(self, x: torch.Tensor, params: torch.Tensor | None = None) -> torch.Tensor:
        mods = films(self.cond, params, x.shape[0]) or [None] * (len(self.blocks) + 1)
        x = modulate(self.stem(x), mods[0])
        for block, film in zip(self.blocks, mods[1:]):
            x = modulate(block(x), film)
        return self.head(x)
