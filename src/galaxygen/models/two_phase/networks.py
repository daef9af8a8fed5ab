"""The two-phase networks: their registry (name -> class), their config, and how one is built.

Every network is ``cls(in_channels, out_channels, n_params=P, **options)`` where its ``config_keys``
name the :class:`ModelConfig` fields it takes, so :func:`build_network` needs no case per network;
``n_params`` > 0 conditions it on that many box parameters (`film`), called as ``net(x, params)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import nn

from galaxygen.config import require
from galaxygen.models.two_phase.blocks import ACTIVATIONS, NORMS
from galaxygen.models.two_phase.inception import Inception
from galaxygen.models.two_phase.r2unet import R2UNet
from galaxygen.models.two_phase.unet import UNet
from galaxygen.training.receptive import exact_halo

NETWORKS: dict[str, type[nn.Module]] = {"inception": Inception, "r2unet": R2UNet, "unet": UNet}


@dataclass(frozen=True)
class ModelConfig:
    """Network choice. name : 'inception', 'r2unet' or 'unet'; width : channels of the first
    level; depth : Inception blocks or U-Net down-sampling levels; t : R2U-Net recurrence count;
    norm : 'batch', 'group' or 'none'; max_width : cap on U-Net widths (None: no cap)."""

    name: str = "r2unet"
    width: int = 16
    depth: int = 3
    t: int = 2
    norm: Literal["batch", "group", "none"] = "batch"
    activation: str = "relu"
    max_width: int | None = None

    def __post_init__(self) -> None:
        require(self.name in NETWORKS, f"model.name: {self.name!r} is not one of {sorted(NETWORKS)}")
        require(self.width >= 1, f"model.width: expected >= 1, got {self.width}")
        require(self.depth >= 0, f"model.depth: expected >= 0, got {self.depth}")
        require(self.t >= 1, f"model.t: expected >= 1, got {self.t}")
        require(self.norm in NORMS, f"model.norm: expected one of {NORMS}")
        require(self.activation in ACTIVATIONS, f"model.activation: expected one of {sorted(ACTIVATIONS)}")


def build_network(cfg: ModelConfig, in_channels: int, out_channels: int, n_params: int = 0) -> nn.Module:
    """The configured network (fresh weights from torch's global generator), conditioned on
    `n_params` box parameters when > 0; every network has ``align`` and ``receptive_radius``."""
    cls = NETWORKS[cfg.name]
    return cls(in_channels, out_channels, n_params=n_params, **{k: getattr(cfg, k) for k in cls.config_keys})


def halo_for(model: nn.Module, requested: int | None = None) -> int:
    """Tile halo [voxels]: `requested` (or the model's receptive radius), rounded up to ``align``."""
    h = int(getattr(model, "receptive_radius", 0)) if requested is None else int(requested)
    return exact_halo(h, int(getattr(model, "align", 1)))
