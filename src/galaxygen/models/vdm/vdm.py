"""The variational diffusion model (Kingma et al. arXiv:2107.00630) conditioned on DM and parameters.

Continuous-time VDM with a learned noise schedule γ(t) (`schedule.py`) and an ε-predicting U-Net
(`unet.py`). The loss is the negative variational lower bound of log p(x | DM, params), as three
terms, each per sample in bits per dimension (divided by D·ln 2, D = voxels × channels):

- diffusion (eq. 17 of the paper): ½ γ'(t) ‖ε − ε̂(z_t; γ_t, DM, params)‖², t ~ U(0, 1) with
  antithetic sampling over the batch (t_b = (u + b/B) mod 1, §5.3 / the paper's code), z_t = α_t x + σ_t ε;
- prior (latent) KL(q(z_1 | x) ‖ N(0, I)) = ½ Σ (α₁² x² + σ₁² − ln σ₁² − 1);
- reconstruction −ln p(x | z_0) with a Gaussian decoder p(x | z_0) = N(x; z_0/α₀, s²),
  s² = σ₀²/α₀² + data_noise² = exp(γ₀) + data_noise² (σ₀²/α₀² is the spread of q(z_0|x)
  rescaled; `data_noise` [transformed units] bounds the likelihood of the nearly discrete count field
  so that γ₀ cannot run to −∞), evaluated at one draw z_0 ~ q(z_0 | x).

The three add up to the negative ELBO in bits per dimension.

Training may use a *weighted* diffusion loss instead (Kingma & Gao 2023, arXiv:2303.00848, eq. 6):
½ w(λ_t) γ'(t) ‖ε − ε̂‖² with λ = −γ the log-SNR and the sigmoid weighting w(λ) = sigmoid(b − λ)
(`weighting: sigmoid`, b = `weight_bias`): monotone in t, so still an ELBO of noise-augmented data
(their §4), and it down-weights the nearly noiseless times that dominate the plain VLB's gradient.
The VLB terms are still computed (the same ‖ε − ε̂‖²) and reported in bits/dim.

The network predicts ε (`prediction: eps`) or v = α ε − σ x (`prediction: v`, Salimans & Ho
arXiv:2202.00512), from which ε̂ = σ z + α v̂ and x̂ = α z − σ v̂. The sampler uses x̂, computed
so that a zero network output on top of the Gaussian baseline gives that baseline's posterior
mean exactly (a zero-spread baseline: x̂ = μ to the bit).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from galaxygen.config import require
from galaxygen.models.vdm.schedule import alpha_sigma, build_schedule
from galaxygen.models.vdm.unet import DiffusionUNet

LN2 = math.log(2.0)


@dataclass(frozen=True)
class VDMConfig:
    """The model: schedule, decoder and U-Net (a run directory stores it as JSON).

    Attributes
    ----------
    dim : 2 or 3
        Train and sample on 2-D slices or on 3-D crops / boxes.
    schedule : 'linear' | 'monotone_net'
        Learned γ(t): linear with learned endpoints, or the paper's monotone network.
    gamma_min, gamma_max : float
        Initial γ(0) and γ(1) (the paper's −13.3 and 5); also the fixed range of the time embedding.
    schedule_features : int
        Hidden units of the monotone network (paper: 1024).
    data_noise : float
        Floor of the decoder's standard deviation, in transformed units.
    antithetic : bool
        Antithetic (stratified) sampling of t over the batch.
    baseline : 'none' | 'gaussian'
        'gaussian': the network predicts the residual to the exact denoiser of a per-voxel Gaussian
        prior N(μ, s²) with the training data's mean and spread (buffers ``data_mean``,
        ``data_std``): ε̂ = σ (z − α μ) / (α² s² + σ²) + U-Net. An untrained model then samples
        N(μ, s²) (nearly empty boxes) instead of the unit-variance noise of ε̂ = 0.
        'point': the same with μ = 0, s = 0 (a point prior at x = 0): an untrained model samples
        exactly 0 — for a cascade, whose x is the residual to its rate channel, exactly the rates.
    prediction : 'eps' | 'v'
        What the U-Net outputs: ε, or v = α ε − σ x (arXiv:2202.00512).
    weighting : 'vlb' | 'sigmoid'
        Training loss: the plain VLB, or the sigmoid-weighted diffusion term w(λ) = sigmoid(b − λ)
        of Kingma & Gao 2023 (arXiv:2303.00848) plus the prior and reconstruction terms.
    weight_bias : float
        b of the sigmoid weighting.
    width, mults, blocks, groups, dropout
        U-Net size (Ono et al. arXiv:2403.10648: width 48, 4 levels).
    """

    dim: int = 3
    schedule: Literal["linear", "monotone_net"] = "linear"
    gamma_min: float = -13.3
    gamma_max: float = 5.0
    schedule_features: int = 1024
    data_noise: float = 1e-3
    antithetic: bool = True
    baseline: Literal["none", "gaussian", "point"] = "none"
    prediction: Literal["eps", "v"] = "eps"
    weighting: Literal["vlb", "sigmoid"] = "vlb"
    weight_bias: float = 2.0
    width: int = 32
    mults: tuple[int, ...] = (1, 2, 2)
    blocks: int = 1
    groups: int = 8
    dropout: float = 0.0

    def __post_init__(self) -> None:
        require(self.dim in (2, 3), f"model.dim: expected 2 or 3, got {self.dim}")
        require(self.gamma_max > self.gamma_min,
                f"model.gamma_max ({self.gamma_max}) must exceed model.gamma_min ({self.gamma_min})")
        require(self.schedule_features >= 1, "model.schedule_features: expected a positive integer")
        require(self.data_noise >= 0, f"model.data_noise: expected >= 0, got {self.data_noise}")
        require(self.width >= 1 and self.blocks >= 1 and len(self.mults) >= 1 and all(m >= 1 for m in self.mults),
                "model.width, model.blocks, model.mults: expected positive integers and at least one level")
        require(0.0 <= self.dropout < 1.0, f"model.dropout: expected [0, 1), got {self.dropout}")
        require(self.prediction in ("eps", "v"), f"model.prediction: expected 'eps' or 'v', got {self.prediction!r}")
        require(self.weighting in ("vlb", "sigmoid"),
                f"model.weighting: expected 'vlb' or 'sigmoid', got {self.weighting!r}")
        require(self.baseline in ("none", "gaussian", "point"),
                f"model.baseline: expected 'none', 'gaussian' or 'point', got {self.baseline!r}")


def sigmoid_weight(gamma: torch.Tensor, bias: float) -> torch.Tensor:
    """w(λ) = sigmoid(b − λ) at λ = −γ (Kingma & Gao 2023, arXiv:2303.00848 §5)."""
    return torch.sigmoid(bias + gamma)


@dataclass
class LossTerms:
    """Per-sample loss terms (B,) in bits per dimension; `total` = diffusion + prior + recon.
    `weighted`: the weighted diffusion term (None when training on the plain VLB)."""

    diffusion: torch.Tensor
    prior: torch.Tensor
    recon: torch.Tensor
    weighted: torch.Tensor | None = None

    @property
    def total(self) -> torch.Tensor:
        """The negative VLB per sample (B,) [bits/dim]."""
        return self.diffusion + self.prior + self.recon

    @property
    def objective(self) -> torch.Tensor:
        """What training minimises (B,): the VLB, or the weighted diffusion term + prior + recon."""
        return self.total if self.weighted is None else self.weighted + self.prior + self.recon


class VDM(nn.Module):
    """Schedule γ(t) + ε-network; `loss_terms` gives the VLB, `eps` the network's prediction."""

    def __init__(self, cfg: VDMConfig, *, n_params: int = 0, cond_channels: int = 1, channels: int = 1) -> None:
        super().__init__()
        self.cfg = cfg
        self.schedule = build_schedule(cfg.schedule, cfg.gamma_min, cfg.gamma_max, cfg.schedule_features)
        self.net = DiffusionUNet(channels, channels, dim=cfg.dim, cond_channels=cond_channels, width=cfg.width,
                        mults=cfg.mults, blocks=cfg.blocks, groups=cfg.groups, n_params=n_params,
                        dropout=cfg.dropout, gamma_range=(cfg.gamma_min, cfg.gamma_max))
        self.register_buffer("data_mean", torch.tensor(0.0))
        self.register_buffer("data_std", torch.tensor(1.0))

    def set_data_stats(self, mean: float, std: float) -> None:
        """Mean and standard deviation of the training data [transformed units] (baseline denoiser)."""
        self.data_mean.fill_(float(mean))
        self.data_std.fill_(float(std))

    def gamma(self, t: torch.Tensor) -> torch.Tensor:
        """γ(t) for t in [0, 1] (any shape)."""
        return self.schedule(t)

    def predict(self, z: torch.Tensor, gamma: torch.Tensor, cond: torch.Tensor | None,
                params: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(ε̂, x̂) at z_t (both shaped like z): the network's prediction of the noise and of the data.

        With the Gaussian baseline N(μ, s²) the network adds a residual r (in ε units) to the exact
        denoiser: ε̂ = σ(z − αμ)/(α²s² + σ²) + r, x̂ = μ + α s²(z − αμ)/(α²s² + σ²) − (σ/α) r
        (the same pair as x̂ = (z − σ ε̂)/α, written so that r = 0 gives the baseline exactly).
        """
        out = self.net(z, gamma, cond, params).float()
        g = gamma.reshape(-1, *([1] * (z.ndim - 1))).float()
        a, s = alpha_sigma(g)
        z = z.float()
        if self.cfg.baseline in ("gaussian", "point"):
            r = a * out if self.cfg.prediction == "v" else out
            mean, var = (self.data_mean, self.data_std ** 2) if self.cfg.baseline == "gaussian" else (0.0, 0.0)
            den = a * a * var + s * s
            dev = z - a * mean
            return s * dev / den + r, mean + a * var * dev / den - (s / a) * r
        if self.cfg.prediction == "v":
            return s * z + a * out, a * z - s * out
        return out, (z - s * out) / a

    def eps(self, z: torch.Tensor, gamma: torch.Tensor, cond: torch.Tensor | None,
            params: torch.Tensor | None) -> torch.Tensor:
        """ε̂(z_t; γ_t, cond, params), same shape as z."""
        return self.predict(z, gamma, cond, params)[0]

    def denoise(self, z: torch.Tensor, gamma: torch.Tensor, cond: torch.Tensor | None,
                params: torch.Tensor | None) -> torch.Tensor:
        """x̂(z_t; γ_t, cond, params) = E[x | z_t] as the model sees it, same shape as z."""
        return self.predict(z, gamma, cond, params)[1]

    def sample_times(self, batch: int, device: torch.device, generator: torch.Generator | None) -> torch.Tensor:
        """t (B,) in [0, 1): antithetic t_b = (u + b/B) mod 1, or independent uniforms."""
        if self.cfg.antithetic:
            u = torch.rand((), device=device, generator=generator)
            return torch.remainder(u + torch.arange(batch, device=device) / batch, 1.0)
        return torch.rand(batch, device=device, generator=generator)

    def loss_terms(self, x: torch.Tensor, cond: torch.Tensor | None = None, params: torch.Tensor | None = None,
                   *, generator: torch.Generator | None = None, t: torch.Tensor | None = None) -> LossTerms:
        """The three VLB terms per sample [bits/dim] for data x (B, C, *grid) in transformed units."""
        b = x.shape[0]
        spatial = (1,) * (x.ndim - 1)
        per_dim = 1.0 / (x[0].numel() * LN2)
        x = x.float()
        ones = torch.ones((), device=x.device)
        # reconstruction: -ln N(x; z0/α0, exp(γ0) + data_noise²) at one z0 ~ q(z0|x)
        g0 = self.gamma(0.0 * ones)
        a0, s0 = alpha_sigma(g0)
        eps0 = torch.randn(x.shape, device=x.device, generator=generator)
        x_hat = (a0 * x + s0 * eps0) / a0
        var = torch.exp(g0) + self.cfg.data_noise ** 2
        nll = 0.5 * (torch.log(2 * math.pi * var) + (x - x_hat) ** 2 / var)
        recon = nll.flatten(1).sum(1) * per_dim
        # prior: KL(N(α1 x, σ1²) || N(0, 1))
        g1 = self.gamma(ones)
        var1 = torch.sigmoid(g1)
        kl = 0.5 * ((1 - var1) * x ** 2 + var1 - torch.log(var1) - 1)
        prior = kl.flatten(1).sum(1) * per_dim
        # diffusion: ½ γ'(t) ||ε − ε̂||²
        if t is None:
            t = self.sample_times(b, x.device, generator)
        g_t = self.gamma(t)
        dg_t = self.schedule.derivative(t)
        a_t, s_t = alpha_sigma(g_t.view(b, *spatial))
        eps = torch.randn(x.shape, device=x.device, generator=generator)
        z_t = a_t * x + s_t * eps
        eps_hat = self.eps(z_t, g_t, cond, params).float()
        mse = ((eps - eps_hat) ** 2).flatten(1).sum(1)
        diffusion = 0.5 * dg_t * mse * per_dim
        weighted = None
        if self.cfg.weighting == "sigmoid":
            weighted = diffusion * sigmoid_weight(g_t, self.cfg.weight_bias)
        return LossTerms(diffusion=diffusion, prior=prior.expand(b) if prior.ndim == 0 else prior, recon=recon,
                         weighted=weighted)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None, params: torch.Tensor | None = None,
                *, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Per-sample loss terms {'diffusion', 'prior', 'recon'} and, when weighted, 'weighted' (B,)
        [bits/dim] (a dict, so that a DDP-wrapped model can be called directly)."""
        terms = self.loss_terms(x, cond, params, generator=generator)
        out = {"diffusion": terms.diffusion, "prior": terms.prior, "recon": terms.recon}
        if terms.weighted is not None:
            out["weighted"] = terms.weighted
        return out
