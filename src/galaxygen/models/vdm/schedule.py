"""Learned monotone noise schedules γ(t) of the variational diffusion model.

Kingma et al. 2021 (arXiv:2107.00630), §3.2 and appendix H: the forward process is
z_t = α_t x + σ_t ε with α_t² = sigmoid(−γ(t)), σ_t² = sigmoid(γ(t)) (variance preserving,
α_t² + σ_t² = 1) and signal-to-noise ratio SNR(t) = exp(−γ(t)). γ must increase with t.

Two schedules, both with *learned endpoints* γ(0) = γ₀ and γ(1) = γ₁ = γ₀ + softplus(d) > γ₀:

- ``linear``: γ(t) = γ₀ + (γ₁ − γ₀) t.
- ``monotone_net``: the monotone network of the VDM paper (appendix H), γ̃(t) = l₁(t) +
  l₃(φ(l₂(t))) / n with non-negative weights (|w|) and φ a sigmoid, rescaled to the learned
  endpoints: γ(t) = γ₀ + (γ₁ − γ₀)·(γ̃(t) − γ̃(0)) / (γ̃(1) − γ̃(0)). Monotone for any weights.

Both return γ(t) for a tensor t of any shape, and γ'(t) = dγ/dt (needed by the continuous-time
diffusion loss, eq. 17 of the paper).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def alpha_sigma(gamma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(α, σ) from γ: α² = sigmoid(−γ), σ² = sigmoid(γ) (arXiv:2107.00630 eq. 4)."""
    return torch.sigmoid(-gamma).sqrt(), torch.sigmoid(gamma).sqrt()


def _inverse_softplus(y: float) -> float:
    return y + math.log(-math.expm1(-y))


class _EndpointSchedule(nn.Module):
    """Learned endpoints γ₀ (free) and γ₁ = γ₀ + softplus(d) (> γ₀)."""

    def __init__(self, gamma_min: float, gamma_max: float) -> None:
        super().__init__()
        if not gamma_max > gamma_min:
            raise ValueError(f"gamma_max ({gamma_max}) must exceed gamma_min ({gamma_min})")
        self.gamma_0 = nn.Parameter(torch.tensor(float(gamma_min)))
        self.log_range = nn.Parameter(torch.tensor(_inverse_softplus(gamma_max - gamma_min)))

    def endpoints(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(γ(0), γ(1)) as 0-d tensors."""
        return self.gamma_0, self.gamma_0 + F.softplus(self.log_range)

    def derivative(self, t: torch.Tensor) -> torch.Tensor:
        """γ'(t), same shape as t (autograd through the schedule; keeps the graph)."""
        with torch.enable_grad():
            t = t.detach().requires_grad_(True)
            g = self(t)
            (dg,) = torch.autograd.grad(g.sum(), t, create_graph=True)
        return dg


class LinearSchedule(_EndpointSchedule):
    """γ(t) = γ₀ + (γ₁ − γ₀) t with learned γ₀ and γ₁ > γ₀ (arXiv:2107.00630 §5.3)."""

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        g0, g1 = self.endpoints()
        return g0 + (g1 - g0) * t

    def derivative(self, t: torch.Tensor) -> torch.Tensor:
        g0, g1 = self.endpoints()
        return (g1 - g0).expand_as(t)


class MonotoneNetSchedule(_EndpointSchedule):
    """The VDM paper's monotone network (appendix H) rescaled to learned endpoints.

    γ̃(t) = w₁ t + Σ_j |w₃ⱼ| φ(|w₂ⱼ| (2t − 1) + b₂ⱼ) / n, φ(u) = 2·sigmoid(u) − 1; all slopes
    non-negative so γ̃ (and γ) never decreases. `features` = n (1024 in the paper).
    """

    def __init__(self, gamma_min: float, gamma_max: float, features: int = 1024) -> None:
        super().__init__(gamma_min, gamma_max)
        self.features = int(features)
        self.w1 = nn.Parameter(torch.tensor(1.0))
        self.w2 = nn.Parameter(torch.randn(self.features))
        self.b2 = nn.Parameter(torch.zeros(self.features))
        self.w3 = nn.Parameter(torch.randn(self.features))

    def raw(self, t: torch.Tensor) -> torch.Tensor:
        """γ̃(t), unnormalised monotone function."""
        u = (2.0 * t - 1.0).unsqueeze(-1) * self.w2.abs() + self.b2      # (..., n)
        h = 2.0 * (torch.sigmoid(u) - 0.5)
        return self.w1.abs() * t + (h * self.w3.abs()).sum(-1) / self.features

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        g0, g1 = self.endpoints()
        ends = self.raw(torch.tensor([0.0, 1.0], device=t.device, dtype=t.dtype))
        # γ̃(1) − γ̃(0) ≥ |w1| ≥ 0; the 1e-6 guards the degenerate all-zero-slope case
        frac = (self.raw(t) - ends[0]) / (ends[1] - ends[0] + 1e-6)
        return g0 + (g1 - g0) * frac


SCHEDULES = {"linear": LinearSchedule, "monotone_net": MonotoneNetSchedule}


def build_schedule(kind: str, gamma_min: float, gamma_max: float, features: int = 1024) -> _EndpointSchedule:
    """A schedule by name ('linear' or 'monotone_net'), initialised to γ(0)=gamma_min, γ(1)=gamma_max."""
    if kind == "linear":
        return LinearSchedule(gamma_min, gamma_max)
    if kind == "monotone_net":
        return MonotoneNetSchedule(gamma_min, gamma_max, features)
    raise ValueError(f"unknown schedule {kind!r}; expected one of {sorted(SCHEDULES)}")
