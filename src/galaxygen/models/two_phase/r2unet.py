"""R2U-Net: recurrent residual U-Net (Alom et al. arXiv:1802.06955) in 3-D with periodic padding.

Every block (encoder, bottleneck, decoder) is a :class:`~galaxygen.models.two_phase.blocks.RRCNNBlock` whose
two recurrent layers each apply their shared convolution t+1 times: the recurrence count t is
honoured by every block, not only by some of them.
"""

from __future__ import annotations

from galaxygen.models.two_phase.blocks import RRCNNBlock
from galaxygen.models.two_phase.unet import UNet


class R2UNet(UNet):
    """``R2UNet(in_channels, out_channels, *, width, depth, t, norm, activation, n_params)``; see UNet."""

    config_keys = UNet.config_keys + ("t",)

    def __init__(self, in_channels: int, out_channels: int, *, width: int = 16, depth: int = 3, t: int = 2,
                 norm: str = "batch", activation: str = "relu", max_width: int | None = None, n_params: int = 0):
        self.t = t
        super().__init__(in_channels, out_channels, width=width, depth=depth, norm=norm, activation=activation,
                         max_width=max_width, n_params=n_params,
                         block=lambda cin, cout: RRCNNBlock(cin, cout, t=t, norm_kind=norm, act=activation))
