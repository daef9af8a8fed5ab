"""A 3-D U-Net with periodic padding (Ronneberger et al. arXiv:1505.04597), the reference network.

The encoder has ``depth`` down-sampling steps (2³ max pooling); widths double at each level
(``width · 2^l``); the decoder up-samples with 2³ transposed convolutions (stride 2, no overlap)
and concatenates the skip connections. The last layer is a 1³ convolution with no activation
(logits or raw regression outputs). The block type is a parameter, so R2U-Net reuses this class.
With ``n_params`` > 0 every block's output is modulated by the box parameters (`film`).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from galaxygen.errors import ConfigError
from galaxygen.models.two_phase.blocks import ConvBlock, conv
from galaxygen.models.two_phase.film import conditioning, films, modulate
from galaxygen.training.receptive import chain_radius


class UNet(nn.Module):
    """U-Net ``(in_channels, out_channels, *, width, depth, norm, activation, n_params)``.

    Input (B, in_channels, n, n, n) with n a multiple of ``align`` = 2**depth, and with
    ``n_params`` > 0 the standardised box parameters (B, n_params); output (B, out_channels, n, n, n).
    Periodic-shift equivariant for shifts that are multiples of ``align``.
    """

    config_keys = ("width", "depth", "norm", "activation", "max_width")  # the ModelConfig fields it takes

    def __init__(self, in_channels: int, out_channels: int, *, width: int = 16, depth: int = 3,
                 norm: str = "batch", activation: str = "relu", max_width: int | None = None,
                 block: Callable[..., nn.Module] | None = None, n_params: int = 0):
        super().__init__()
        if width < 1 or depth < 0:
            raise ConfigError(f"model: width >= 1 and depth >= 0 required, got width={width}, depth={depth}")
        make = block or (lambda cin, cout: ConvBlock(cin, cout, norm_kind=norm, act=activation))
        widths = [min(width * 2 ** l, max_width or width * 2 ** l) for l in range(depth + 1)]
        self.depth, self.align = depth, 2 ** depth
        self.enc = nn.ModuleList()
        cin = in_channels
        for l in range(depth):
            self.enc.append(make(cin, widths[l]))
            cin = widths[l]
        self.pool = nn.MaxPool3d(2)
        self.bottom = make(cin, widths[depth])
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        for l in reversed(range(depth)):
            self.up.append(nn.ConvTranspose3d(widths[l + 1], widths[l], 2, stride=2))
            self.dec.append(make(2 * widths[l], widths[l]))
        self.head = conv(widths[0], out_channels, 1)
        # blocks in forward order: encoder, bottom, decoder (made last: an unconditioned network's weights
        # are drawn as before)
        self.cond = conditioning(n_params, widths[:depth] + [widths[depth]] + widths[:depth][::-1])
        # encoder blocks and 2x pooling down, the bottom block, 2x transposed convolutions and decoder
        # blocks up (the 1x1 head adds nothing): r_bottom 2^depth + sum_l (r_enc + r_dec + 1) 2^l
        chain = [layer for enc in self.enc for layer in (("conv", enc.radius), ("pool", 2))]
        chain.append(("conv", self.bottom.radius))
        chain += [layer for dec in self.dec for layer in (("up", 2), ("conv", dec.radius))]
        self.receptive_radius = chain_radius(chain)

    def forward(self, x: torch.Tensor, params: torch.Tensor | None = None) -> torch.Tensor:
        if any(n % self.align for n in x.shape[2:]):
            raise ConfigError(f"model input: spatial shape {tuple(x.shape[2:])} must be a multiple of {self.align}")
        mods = iter(films(self.cond, params, x.shape[0]) or [None] * (2 * self.depth + 1))
        skips = []
        for block in self.enc:
            x = modulate(block(x), next(mods))
            skips.append(x)
            x = self.pool(x)
        x = modulate(self.bottom(x), next(mods))
        for up, dec in zip(self.up, self.dec):
            x = modulate(dec(torch.cat([up(x), skips.pop()], dim=1)), next(mods))
        return self.head(x)
