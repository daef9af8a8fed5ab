"""Building blocks of the 3-D networks, all with circular (periodic) padding.

Every convolution pads periodically, so a network applied to a whole periodic box commutes with
periodic shifts (by multiples of its down-sampling factor). Each block knows its receptive radius
[voxels of its own resolution], which tiled inference uses to choose the halo.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from galaxygen.errors import ConfigError

NORMS = ("batch", "group", "none")
ACTIVATIONS = {"relu": nn.ReLU, "leaky_relu": lambda: nn.LeakyReLU(0.1), "gelu": nn.GELU, "silu": nn.SiLU}


def conv(cin: int, cout: int, kernel: int = 3) -> nn.Conv3d:
    """k³ convolution with circular padding (same-size output)."""
    return nn.Conv3d(cin, cout, kernel, padding=kernel // 2, padding_mode="circular" if kernel > 1 else "zeros")


def norm(kind: str, channels: int) -> nn.Module:
    """Normalisation layer. 'batch' (the default; local at inference, so tiling is exact),
    'group' (per-sample statistics over the whole input: not tile-independent), 'none'."""
    if kind == "batch":
        return nn.BatchNorm3d(channels)
    if kind == "group":
        groups = next(g for g in (8, 4, 2, 1) if channels % g == 0)
        return nn.GroupNorm(groups, channels)
    if kind == "none":
        return nn.Identity()
    raise ConfigError(f"model.norm: {kind!r} is not one of {list(NORMS)}")


def activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ConfigError(f"model.activation: {name!r} is not one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


class ConvBlock(nn.Module):
    """Two (conv 3³ → norm → activation) layers: the plain U-Net block. Radius 2."""

    def __init__(self, cin: int, cout: int, *, norm_kind: str = "batch", act: str = "relu"):
        super().__init__()
        self.body = nn.Sequential(conv(cin, cout), norm(norm_kind, cout), activation(act),
                                  conv(cout, cout), norm(norm_kind, cout), activation(act))
        self.radius = 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class RecurrentConv(nn.Module):
    """Recurrent convolutional layer of R2U-Net (Alom et al. arXiv:1802.06955, eq. 1-2).

    One shared conv → norm → activation f is applied t+1 times: h_0 = f(x), h_k = f(x + h_{k-1}).
    Radius t+1.
    """

    def __init__(self, channels: int, t: int, *, norm_kind: str = "batch", act: str = "relu"):
        super().__init__()
        if t < 1:
            raise ConfigError(f"model.t: the recurrence count must be >= 1, got {t}")
        self.t = t
        self.f = nn.Sequential(conv(channels, channels), norm(norm_kind, channels), activation(act))
        self.radius = t + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.f(x)
        for _ in range(self.t):
            h = self.f(x + h)
        return h


class RRCNNBlock(nn.Module):
    """Recurrent residual block: 1³ conv to the new width, two recurrent layers, residual sum.

    Radius 2 (t + 1).
    """

    def __init__(self, cin: int, cout: int, *, t: int = 2, norm_kind: str = "batch", act: str = "relu"):
        super().__init__()
        self.proj = conv(cin, cout, 1)
        self.body = nn.Sequential(RecurrentConv(cout, t, norm_kind=norm_kind, act=act),
                                  RecurrentConv(cout, t, norm_kind=norm_kind, act=act))
        self.radius = 2 * (t + 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x)
        return x + self.body(x)


class CircularMaxPool(nn.Module):
    """k³ max pooling with stride 1 and periodic padding (Inception's pool branch). Radius k//2."""

    def __init__(self, kernel: int = 3):
        super().__init__()
        self.kernel = kernel
        self.radius = kernel // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.kernel // 2
        return F.max_pool3d(F.pad(x, (p,) * 6, mode="circular"), self.kernel, stride=1)


class InceptionBlock(nn.Module):
    """Parallel 1³, 1³→3³, 1³→5³ and pool3³→1³ branches, concatenated, then norm and activation
    (Szegedy et al. arXiv:1409.4842, in 3-D as in Zhang et al. arXiv:1902.05965). Radius 2.
    A residual connection is added when input and output widths agree.
    """

    def __init__(self, cin: int, cout: int, *, norm_kind: str = "batch", act: str = "relu"):
        super().__init__()
        b = [cout // 4] * 4
        b[0] += cout - sum(b)
        self.branches = nn.ModuleList([
            conv(cin, b[0], 1),
            nn.Sequential(conv(cin, b[1], 1), activation(act), conv(b[1], b[1], 3)),
            nn.Sequential(conv(cin, b[2], 1), activation(act), conv(b[2], b[2], 5)),
            nn.Sequential(CircularMaxPool(3), conv(cin, b[3], 1)),
        ])
        self.post = nn.Sequential(norm(norm_kind, cout), activation(act))
        self.residual = cin == cout
        self.radius = 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.post(torch.cat([br(x) for br in self.branches], dim=1))
        return x + y if self.residual else y
