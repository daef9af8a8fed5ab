"""Losses of the two phases, on voxel grids (B, 1, n, n, n), with an optional voxel mask.

Classifier (logits, no activation on the last layer): class-weighted binary cross-entropy, where
``pos_weight`` multiplies the loss of occupied voxels so that false negatives cost more (Zhang et
al. arXiv:1902.05965), or the focal loss (Lin et al. arXiv:1708.02002). Regressor: MSE with extra
weight on occupied voxels, or the Poisson negative log-likelihood of counts given a log-rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

import torch
import torch.nn.functional as F

from galaxygen.config import require

Loss = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]


@dataclass(frozen=True)
class LossConfig:
    """name : 'weighted_ce' | 'focal' (classifier), 'weighted_mse' | 'poisson' (regressor).

    pos_weight : weight of occupied voxels in the cross-entropy (and alpha-balance of focal);
    gamma : focal exponent; occupied_weight : MSE weight of occupied voxels (1 elsewhere).
    """

    name: Literal["weighted_ce", "focal", "weighted_mse", "poisson"] = "weighted_ce"
    pos_weight: float = 20.0
    gamma: float = 2.0
    occupied_weight: float = 5.0

    def __post_init__(self) -> None:
        require(self.pos_weight > 0, f"loss.pos_weight: expected > 0, got {self.pos_weight}")
        require(self.gamma >= 0, f"loss.gamma: expected >= 0, got {self.gamma}")
        require(self.occupied_weight > 0, f"loss.occupied_weight: expected > 0, got {self.occupied_weight}")

    @property
    def kind(self) -> str:
        return "classifier" if self.name in ("weighted_ce", "focal") else "regressor"


def _masked_mean(per_voxel: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return per_voxel.mean()
    m = mask.to(per_voxel.dtype)
    return (per_voxel * m).sum() / m.sum().clamp_min(1.0)


def weighted_ce(logits: torch.Tensor, occupied: torch.Tensor, mask: torch.Tensor | None = None, *,
                pos_weight: float = 20.0) -> torch.Tensor:
    """Binary cross-entropy on logits, occupied voxels weighted by `pos_weight`."""
    w = torch.as_tensor(pos_weight, dtype=logits.dtype, device=logits.device)
    per = F.binary_cross_entropy_with_logits(logits, occupied.to(logits.dtype), pos_weight=w, reduction="none")
    return _masked_mean(per, mask)


def focal(logits: torch.Tensor, occupied: torch.Tensor, mask: torch.Tensor | None = None, *,
          gamma: float = 2.0, pos_weight: float = 20.0) -> torch.Tensor:
    """Focal loss (1 - p_t)^γ · CE, occupied voxels weighted by `pos_weight` (arXiv:1708.02002)."""
    y = occupied.to(logits.dtype)
    ce = F.binary_cross_entropy_with_logits(logits, y, reduction="none")
    p_t = torch.exp(-ce)
    w = 1.0 + (pos_weight - 1.0) * y
    return _masked_mean(w * (1 - p_t) ** gamma * ce, mask)


def weighted_mse(pred: torch.Tensor, counts: torch.Tensor, mask: torch.Tensor | None = None, *,
                 occupied_weight: float = 5.0) -> torch.Tensor:
    """Squared error of predicted counts, occupied voxels weighted by `occupied_weight`."""
    w = 1.0 + (occupied_weight - 1.0) * (counts > 0).to(pred.dtype)
    return _masked_mean(w * (pred - counts) ** 2, mask)


def poisson(log_rate: torch.Tensor, counts: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Poisson negative log-likelihood of `counts` for rate exp(log_rate) (constant log k! dropped)."""
    return _masked_mean(torch.exp(log_rate) - counts * log_rate, mask)


def make_loss(cfg: LossConfig) -> Loss:
    """A loss ``(output, target_counts, mask) -> scalar`` for the configured name."""
    if cfg.name == "weighted_ce":
        return lambda out, y, m=None: weighted_ce(out, y > 0, m, pos_weight=cfg.pos_weight)
    if cfg.name == "focal":
        return lambda out, y, m=None: focal(out, y > 0, m, gamma=cfg.gamma, pos_weight=cfg.pos_weight)
    if cfg.name == "weighted_mse":
        return lambda out, y, m=None: weighted_mse(out, y, m, occupied_weight=cfg.occupied_weight)
    return lambda out, y, m=None: poisson(out, y, m)


def rate_from_output(output: torch.Tensor, cfg: LossConfig) -> torch.Tensor:
    """Expected counts per voxel from the regressor's raw output (exp for Poisson, clamp ≥ 0 for MSE)."""
    return torch.exp(output) if cfg.name == "poisson" else output.clamp_min(0.0)
