"""The VDM's schedule, loss terms, U-Net and ancestral sampler (Kingma et al. arXiv:2107.00630)."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from galaxygen.models.vdm.sampler import ancestral_sample, sample_box, sample_seed
from galaxygen.models.vdm.schedule import LinearSchedule, MonotoneNetSchedule, alpha_sigma
from galaxygen.models.vdm.unet import DiffusionUNet
from galaxygen.models.vdm.vdm import VDM, VDMConfig

pytestmark = pytest.mark.usefixtures("single_thread")

LN2 = math.log(2.0)


def _grid_is_monotone(schedule, n: int = 401) -> bool:
    t = torch.linspace(0, 1, n)
    with torch.no_grad():
        g = schedule(t)
    return bool((g[1:] - g[:-1] >= -1e-6).all())


@pytest.mark.parametrize("kind", ["linear", "monotone_net"])
def test_schedule_monotone_before_and_after_training(kind):
    torch.manual_seed(0)
    model = VDM(VDMConfig(dim=2, schedule=kind, width=8, mults=(1,), groups=4, schedule_features=64))
    sch = model.schedule
    g0, g1 = (float(v.detach()) for v in sch.endpoints())
    with torch.no_grad():
        assert float(sch(torch.tensor(0.0))) == pytest.approx(-13.3, abs=1e-4)
        assert float(sch(torch.tensor(1.0))) == pytest.approx(5.0, abs=1e-4)
    assert _grid_is_monotone(sch)
    # γ'(t) agrees with finite differences and is non-negative
    t = torch.linspace(0.05, 0.95, 7)
    h = 1e-3
    fd = (sch(t + h) - sch(t - h)) / (2 * h)
    assert torch.allclose(sch.derivative(t), fd.detach(), rtol=1e-2, atol=1e-2)
    # training steps: the VLB on data plus an adversarial term that rewards γ(0.3) > γ(0.7)
    opt = torch.optim.Adam(model.parameters(), lr=0.2)
    gen = torch.Generator().manual_seed(1)
    for _ in range(5):
        x = torch.randn(4, 1, 8, 8, generator=gen)
        loss = model(x, torch.randn(4, 1, 8, 8, generator=gen), generator=gen)
        total = sum(v.mean() for v in loss.values()) - 10 * (sch(torch.tensor(0.3)) - sch(torch.tensor(0.7)))
        opt.zero_grad()
        total.backward()
        opt.step()
    assert _grid_is_monotone(sch)
    g0b, g1b = (float(v.detach()) for v in sch.endpoints())
    assert math.isfinite(g0b) and math.isfinite(g1b)
    assert g1b > g0b
    assert abs(g0b - g0) > 0.1 and abs(g1b - g1) > 0.1  # the endpoints are learned
    assert (sch.derivative(torch.linspace(0, 1, 51)) >= 0).all()


def test_alpha_sigma_variance_preserving():
    gamma = torch.linspace(-20, 20, 201, dtype=torch.float64)
    a, s = alpha_sigma(gamma)
    assert torch.allclose(a ** 2 + s ** 2, torch.ones_like(gamma), atol=1e-12)
    assert torch.allclose(torch.log(a ** 2 / s ** 2), -gamma, atol=1e-8)  # SNR = exp(-γ)


def test_loss_terms_finite_add_up_and_match_closed_forms():
    torch.manual_seed(0)
    cfg = VDMConfig(dim=3, width=8, mults=(1, 2), groups=4, data_noise=0.0)
    model = VDM(cfg, n_params=2)
    gen = torch.Generator().manual_seed(0)
    x = 2 * torch.randn(3, 1, 8, 8, 8, generator=gen)
    cond, params = torch.randn(3, 1, 8, 8, 8, generator=gen), torch.randn(3, 2, generator=gen)
    terms = model.loss_terms(x, cond, params, generator=gen)
    for v in (terms.diffusion, terms.prior, terms.recon, terms.total):
        assert v.shape == (3,) and torch.isfinite(v).all()
    assert torch.allclose(terms.total, terms.diffusion + terms.prior + terms.recon)
    terms.total.mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    g0, g1 = -13.3, 5.0
    d = x[0].numel()
    # prior: KL(N(α1 x, σ1²) || N(0,1)) in bits/dim, exact
    var1 = 1 / (1 + math.exp(-g1))
    prior = 0.5 * ((1 - var1) * x ** 2 + var1 - math.log(var1) - 1).flatten(1).sum(1) / (d * LN2)
    assert torch.allclose(terms.prior, prior, rtol=1e-5)
    # reconstruction: E[-ln N(x; z0/α0, e^γ0)] = ½(ln(2π e^γ0) + 1) per dim
    assert terms.recon.mean().item() == pytest.approx(0.5 * (math.log(2 * math.pi) + g0 + 1) / LN2, abs=0.05)
    # diffusion: a fresh U-Net predicts ε̂ = 0 (zero-initialised output), so E = ½ γ' E||ε||² = ½ (γ1 − γ0)
    assert terms.diffusion.mean().item() == pytest.approx(0.5 * (g1 - g0) / LN2, rel=0.03)


def _oracle(a: float, s: float):
    """Exact ε̂ = E[ε | z_t, c] for x ~ N(a c, s²): σ (z − α a c) / (α² s² + σ²), and x̂ = (z − σ ε̂)/α."""
    def predict(z, gamma, cond, params=None):
        al, si = alpha_sigma(gamma.reshape(-1, *([1] * (z.ndim - 1))))
        eps = si * (z - al * a * cond) / (al ** 2 * s ** 2 + si ** 2)
        return eps, (z - si * eps) / al
    return predict


def test_exact_denoiser_gives_true_distribution_and_entropy():
    """With the exact denoiser the sampler draws N(a c, s²) and the VLB is the true entropy."""
    a, s = 1.0, 0.5
    model = VDM(VDMConfig(dim=2, width=8, mults=(1,), groups=4, data_noise=0.0))
    model.predict = _oracle(a, s)
    c = torch.tensor([-1.0, 0.0, 1.0]).repeat(683)[:2048].view(32, 1, 8, 8)
    x = ancestral_sample(model, c.shape, steps=250, generator=torch.Generator().manual_seed(1), cond=c)
    for v in (-1.0, 0.0, 1.0):
        assert x[c == v].mean().item() == pytest.approx(a * v, abs=0.04)
        assert x[c == v].std().item() == pytest.approx(s, rel=0.05)
    # VLB with the exact denoiser = NLL of the data (up to the endpoint terms, < 0.01 bit here)
    gen = torch.Generator().manual_seed(2)
    c = torch.tensor([-1.0, 0.0, 1.0]).repeat(21846)[:65536].view(65536, 1, 1, 1)
    data = a * c + s * torch.randn(c.shape, generator=gen)
    nll = ((0.5 * math.log(2 * math.pi * s * s) + (data - a * c) ** 2 / (2 * s * s)).mean() / LN2).item()
    vlb = torch.stack([model.loss_terms(data, c, generator=gen).total.mean() for _ in range(50)]).mean()
    assert vlb.item() == pytest.approx(nll, abs=0.04)  # Monte-Carlo error of the estimate ~0.01 bit
    assert nll == pytest.approx(0.5 * math.log2(2 * math.pi * math.e * s * s), abs=0.03)


def test_gaussian_baseline_untrained_model_samples_the_data_gaussian():
    """baseline='gaussian' with a fresh (zero-output) U-Net is the exact denoiser of N(μ, s²)."""
    model = VDM(VDMConfig(dim=2, width=4, mults=(1,), groups=2, baseline="gaussian"))
    model.set_data_stats(-0.7, 0.3)
    x = ancestral_sample(model, (64, 1, 4, 4), steps=250, generator=torch.Generator().manual_seed(0),
                         cond=torch.zeros(64, 1, 4, 4))
    assert x.mean().item() == pytest.approx(-0.7, abs=0.03)
    assert x.std().item() == pytest.approx(0.3, rel=0.05)
    state = model.state_dict()
    assert float(state["data_mean"]) == pytest.approx(-0.7) and float(state["data_std"]) == pytest.approx(0.3)


@pytest.mark.parametrize("dim", [2, 3])
def test_unet_periodic_shift_equivariance(dim):
    torch.manual_seed(0)
    net = DiffusionUNet(1, 1, dim=dim, cond_channels=1, width=8, mults=(1, 2), groups=4, n_params=1)
    for p in net.parameters():  # leave the zero initialisation so the output is not trivially 0
        torch.nn.init.normal_(p, std=0.1)
    n = 8
    z, c = torch.randn(2, 1, *(n,) * dim), torch.randn(2, 1, *(n,) * dim)
    gamma, params = torch.tensor([-3.0, 1.0]), torch.randn(2, 1)
    out = net(z, gamma, c, params)
    assert out.shape == z.shape
    dims = tuple(range(2, 2 + dim))
    shift = (2,) * dim  # a multiple of 2^(levels-1) = 2
    out_shifted = net(torch.roll(z, shift, dims), gamma, torch.roll(c, shift, dims), params)
    assert torch.allclose(out_shifted, torch.roll(out, shift, dims), atol=1e-5)
    # the parameters and γ do change the output
    assert not torch.allclose(net(z, gamma, c, params + 1), out)
    assert not torch.allclose(net(z, gamma + 1, c, params), out)


def test_toy_conditional_gaussian_recovered_by_training():
    """x = a·cond + s·noise: a short training run's EMA samples give mean a·cond and spread s."""
    a, s = 1.0, 0.5
    torch.manual_seed(0)
    model = VDM(VDMConfig(dim=2, width=16, mults=(1,), blocks=1, groups=4, gamma_min=-8.0, gamma_max=6.0))
    ema = copy.deepcopy(model).requires_grad_(False)
    steps = 300
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 1 - i / steps)
    gen = torch.Generator().manual_seed(0)
    for _ in range(steps):
        c = torch.randn(128, 1, 4, 4, generator=gen)
        x = a * c + s * torch.randn(c.shape, generator=gen)
        loss = model.loss_terms(x, c, generator=gen).total.mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        with torch.no_grad():
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.lerp_(pm, 0.02)
    c = torch.tensor([-1.0, 0.0, 1.0]).repeat(256)[:768].view(48, 1, 4, 4)
    xs = ancestral_sample(ema, c.shape, steps=250, generator=torch.Generator().manual_seed(1), cond=c)
    for v in (-1.0, 0.0, 1.0):
        assert xs[c == v].mean().item() == pytest.approx(a * v, abs=0.15)
        assert xs[c == v].std().item() == pytest.approx(s, rel=0.15)


def _tiny_model(dim: int, mults=(1, 2)) -> VDM:
    torch.manual_seed(0)
    model = VDM(VDMConfig(dim=dim, width=8, mults=mults, groups=4), n_params=1)
    for p in model.net.parameters():
        torch.nn.init.normal_(p, std=0.05)
    return model.eval()


@pytest.mark.parametrize("dim", [2, 3])
def test_same_seed_same_samples_whatever_the_batching(dim):
    model = _tiny_model(dim)
    cond, params = torch.randn(1, 8, 8, 8), torch.randn(1)
    kw = dict(steps=3, slice_axis=1)
    a = sample_box(model, cond, params, samples=3, seed=5, batch=2, **kw)
    b = sample_box(model, cond, params, samples=3, seed=5, batch=2, **kw)
    assert torch.equal(a, b)
    one = sample_box(model, cond, params, samples=1, seed=5, batch=1, **kw)  # sample 0 alone
    assert torch.allclose(one[0], a[0], atol=1e-5)
    other = sample_box(model, cond, params, samples=1, seed=6, **kw)
    assert not torch.allclose(other[0], a[0])
    assert not torch.allclose(a[0], a[1])  # samples differ from each other
    assert sample_seed(5, 0) != sample_seed(5, 1) != sample_seed(6, 0)


def test_tiled_sampling_equals_whole_box():
    """ε̂ by the shared tiled inference (halo ≥ receptive radius) = the whole periodic box at once.

    GroupNorm statistics are global (per window), so tiles agree with the whole box only without
    it: the norms are replaced by identities here to test the tiling and sample stacking exactly.
    """
    model = _tiny_model(3, mults=(1,))  # receptive radius 12 voxels (6 ResBlocks of 2 convs, in/out convs)
    for name, mod in list(model.net.named_modules()):
        for child_name, child in list(mod.named_children()):
            if isinstance(child, torch.nn.GroupNorm):
                setattr(mod, child_name, torch.nn.Identity())
    assert model.net.receptive_radius == 12
    cond, params = torch.randn(1, 40, 40, 40), torch.randn(1)  # windows of 10 + 2 x 12 < 40: really tiled
    whole = sample_box(model, cond, params, samples=2, seed=1, steps=1, batch=2)
    tiled = sample_box(model, cond, params, samples=2, seed=1, steps=1, batch=2, tile=10)  # halo: the radius
    assert torch.allclose(whole, tiled, atol=1e-4)
    short = sample_box(model, cond, params, samples=2, seed=1, steps=1, batch=2, tile=10, halo=4)
    assert not torch.allclose(whole, short, atol=1e-4)


def _weighted_closed_form(s: float, bias: float, g0: float, g1: float) -> tuple[float, float]:
    """E[weighted diffusion term] and E[VLB diffusion term] [bits/dim] for x ~ N(0, s²) and the
    exact denoiser: ½ ∫ w(γ) s²/(s² + e^γ) dγ over [γ₀, γ₁] (the MMSE of ε is α²s²/(α²s² + σ²)),
    with w = sigmoid(b + γ) (Kingma & Gao 2023): with u = e^γ, k = e^b, partial fractions give
    ½ k s²/(k s² − 1) [ln((1 + k u)/(s² + u))]; unweighted, ½ [ln(u/(s² + u))]."""
    k, s2 = math.exp(bias), s * s
    u0, u1 = math.exp(g0), math.exp(g1)
    weighted = 0.5 * k * s2 / (k * s2 - 1) * (math.log((1 + k * u1) / (s2 + u1)) - math.log((1 + k * u0) / (s2 + u0)))
    vlb = 0.5 * (math.log(u1 / (s2 + u1)) - math.log(u0 / (s2 + u0)))
    return weighted / LN2, vlb / LN2


@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_sigmoid_weighted_loss_matches_closed_form_on_gaussian_toy(prediction):
    """Sigmoid weighting (arXiv:2303.00848) with the exact denoiser of N(0, s²) (the Gaussian
    baseline with a fresh, zero-output U-Net) has the closed-form expectation; the VLB stays reported."""
    s, bias = 0.5, 2.0
    model = VDM(VDMConfig(dim=2, width=4, mults=(1,), groups=2, baseline="gaussian", prediction=prediction,
                          weighting="sigmoid", weight_bias=bias))
    model.set_data_stats(0.0, s)
    g0, g1 = (float(v.detach()) for v in model.schedule.endpoints())
    want_w, want_vlb = _weighted_closed_form(s, bias, g0, g1)
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        terms = [model.loss_terms(s * torch.randn(512, 1, 16, 16, generator=gen), torch.zeros(512, 1, 16, 16),
                                  generator=gen) for _ in range(4)]
    weighted = torch.cat([t.weighted for t in terms]).mean().item()
    vlb = torch.cat([t.diffusion for t in terms]).mean().item()
    assert weighted == pytest.approx(want_w, rel=0.03)
    assert vlb == pytest.approx(want_vlb, rel=0.03)
    assert want_w < 0.8 * want_vlb   # the weighting really changes the objective
    t = terms[0]
    assert torch.allclose(t.objective, t.weighted + t.prior + t.recon)
    assert torch.allclose(t.total, t.diffusion + t.prior + t.recon)


def test_v_prediction_is_consistent_with_the_forward_process():
    """z = α x̂ + σ ε̂ for any network output, with and without the baseline."""
    for baseline in ("none", "gaussian"):
        torch.manual_seed(0)
        model = VDM(VDMConfig(dim=2, width=8, mults=(1,), groups=4, prediction="v", baseline=baseline))
        model.set_data_stats(-0.5, 0.4)
        for p in model.net.parameters():
            torch.nn.init.normal_(p, std=0.1)
        z, g = torch.randn(3, 1, 8, 8), torch.tensor([-6.0, 0.0, 4.0])
        eps, x = model.predict(z, g, torch.randn(3, 1, 8, 8), None)
        a, si = alpha_sigma(g.view(-1, 1, 1, 1))
        assert torch.allclose(a * x + si * eps, z, atol=1e-5)
        assert not torch.allclose(eps, model.predict(z, g, torch.zeros(3, 1, 8, 8), None)[0])


def test_sampler_recovers_a_known_conditional_distribution_and_is_calibrated():
    """x | c ~ N(a c, s²) with its exact denoiser: the samples' mean and spread are a c and s, the
    truth's rank among 9 samples is uniform (χ² of the rank histogram), and the same seeds give the
    same samples; a sampler whose spread is half the truth's fails the same calibration check."""
    from galaxygen.stats.calibration import rank_histogram, truth_ranks

    a, s, n_samples = 1.0, 0.5, 9
    model = VDM(VDMConfig(dim=2, width=8, mults=(1,), groups=4))
    c = torch.tensor([-1.0, 0.0, 1.0]).repeat(342)[:1024].view(1, 1, 32, 32)
    truth = a * c + s * torch.randn(c.shape, generator=torch.Generator().manual_seed(99))

    def draw(spread: float, seed: int) -> torch.Tensor:
        model.predict = _oracle(a, spread)
        gens = [torch.Generator().manual_seed(seed + k) for k in range(n_samples)]
        with torch.no_grad():
                return ancestral_sample(model, (n_samples, 1, 32, 32), steps=100, generator=gens,
                                    cond=c.expand(n_samples, -1, -1, -1))[:, 0]

    xs = draw(s, 0)
    for v in (-1.0, 0.0, 1.0):
        sel = (c[0, 0] == v).expand_as(xs)
        assert xs[sel].mean().item() == pytest.approx(a * v, abs=0.04)
        assert xs[sel].std().item() == pytest.approx(s, rel=0.06)
    rng = np.random.default_rng(0)
    hist = rank_histogram(truth_ranks(truth[0, 0].numpy(), xs.numpy(), rng), n_samples)
    assert sum(hist.counts) == 1024 and hist.p_value > 1e-3
    narrow = rank_histogram(truth_ranks(truth[0, 0].numpy(), draw(s / 2, 0).numpy(), rng), n_samples)
    assert narrow.p_value < 1e-6 and narrow.counts[0] + narrow.counts[-1] > 3 * 1024 / (n_samples + 1)  # U shape
    assert torch.equal(draw(s, 0), xs) and not torch.equal(draw(s, 1), xs)
