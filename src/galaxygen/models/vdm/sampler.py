"""Ancestral sampling of the VDM: z_1 ~ N(0, I), then T − 1 steps of p(z_s | z_t), then x = x̂(z_{1/T}).

With s = (i−1)/T < t = i/T (arXiv:2107.00630 appendix A.4, eq. 32-34), writing
c = −expm1(γ_s − γ_t) = 1 − SNR(t)/SNR(s):

    z_s = (α_s/α_t) (z_t − σ_t c ε̂(z_t; γ_t)) + sqrt(σ_s² c) ε
        = (α_s/α_t)(1 − c) z_t + α_s c x̂(z_t; γ_t) + sqrt(σ_s² c) ε,   ε ~ N(0, I),

which is q(z_s | z_t, x) with x replaced by the network's estimate x̂ = (z_t − σ_t ε̂)/α_t.
The last step returns x̂ at t = 1/T itself (the noiseless last step of Ho et al. arXiv:2006.11239)
rather than a draw z_0/α₀: they differ by noise of std σ₀/α₀ (1e-3 at γ₀ = −13.3), and a model
whose x̂ is exactly a constant (a cascade with a zero residual) then returns exactly that constant.

Randomness comes only from an explicit torch.Generator, so the same seed gives the same samples;
`sample_seed(seed, k)` derives sample k's generator seed, so sample k is the same whatever the number
of samples asked for.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

from galaxygen.models.vdm.schedule import alpha_sigma
from galaxygen.models.vdm.vdm import VDM
from galaxygen.progress import progress
from galaxygen.training.receptive import exact_halo
from galaxygen.training.tiling import predict_tiled

DenoiseFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def sample_seed(seed: int, k: int) -> int:
    """Independent 63-bit seed for sample k of a run seeded `seed` (numpy SeedSequence)."""
    return int(np.random.SeedSequence([int(seed), int(k)]).generate_state(2, dtype=np.uint64)[0] >> np.uint64(1))


@torch.no_grad()
def _randn(shape: tuple[int, ...], generators: Sequence[torch.Generator], device: torch.device) -> torch.Tensor:
    if len(generators) == 1:
        return torch.randn(shape, device=device, generator=generators[0])
    return torch.stack([torch.randn(shape[1:], device=device, generator=g) for g in generators])


def ancestral_sample(model: VDM, shape: tuple[int, ...], *, steps: int,
                     generator: torch.Generator | Sequence[torch.Generator],
                     cond: torch.Tensor | None = None, params: torch.Tensor | None = None,
                     denoise_fn: DenoiseFn | None = None, device: torch.device | str | None = None,
                     desc: str = "") -> torch.Tensor:
    """Draw x ~ p(x | cond, params) of `shape` (B, C, *grid) with `steps` ancestral steps.

    Parameters
    ----------
    model : VDM
        The (EMA) model; its schedule gives γ(t).
    steps : int
        T, number of denoising steps (Ono et al. use 250).
    generator : torch.Generator, or one per batch row
        On `device`; the only source of randomness. With one generator per row, row b's sample
        depends only on its generator (not on the batch it is drawn in).
    cond, params : tensors or None
        (B, Cc, *grid) transformed DM, (B, n_params) standardised parameters.
    denoise_fn : callable (z, γ_t) -> x̂, optional
        Replaces ``model.denoise(z, γ_t, cond, params)``, e.g. by a tiled evaluation of whole boxes.

    Returns
    -------
    Tensor (B, C, *grid), float32: the sample in transformed units.
    """
    if steps < 1:
        raise ValueError(f"steps: expected >= 1, got {steps}")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    if denoise_fn is None:
        denoise_fn = lambda z, g: model.denoise(z, g, cond, params)  # noqa: E731
    gens = [generator] if isinstance(generator, torch.Generator) else list(generator)
    if len(gens) not in (1, shape[0]):
        raise ValueError(f"expected 1 or {shape[0]} generators, got {len(gens)}")
    z = _randn(shape, gens, device)
    times = torch.linspace(1.0, 0.0, steps + 1, device=device, dtype=torch.float64)
    gammas = model.gamma(times.float()).double()
    for i in progress(range(steps), desc=desc or "sampling", total=steps, leave=False):
        g_t, g_s = gammas[i], gammas[i + 1]
        x_hat = denoise_fn(z, g_t.float().expand(shape[0])).float()
        if i == steps - 1:
            return x_hat
        a_t, _ = alpha_sigma(g_t)
        a_s, s_s = alpha_sigma(g_s)
        c = -torch.expm1(g_s - g_t)
        mean = ((a_s / a_t) * (1 - c)).float() * z + (a_s * c).float() * x_hat
        noise = _randn(shape, gens, device)
        z = mean + (s_s * c.sqrt()).float() * noise
    raise AssertionError("unreachable")


def make_generators(seeds: Sequence[int], device: torch.device | str) -> list[torch.Generator]:
    """One torch.Generator per seed, on `device`."""
    return [torch.Generator(device=torch.device(device)).manual_seed(int(s)) for s in seeds]


def _tiled_denoise(model: VDM, cond: torch.Tensor, params: torch.Tensor | None, tile: int, halo: int,
                   batch: int) -> DenoiseFn:
    """x̂ for S whole boxes z (S, 1, N, N, N) by the shared tiled inference (periodic windows)."""
    def denoise_fn(z: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        s = z.shape[0]
        volume = torch.cat([z[:, 0], cond], dim=0)            # (S + Cc, N, N, N)

        def fn(w: torch.Tensor) -> torch.Tensor:              # (b, S + Cc, w, w, w)
            b = w.shape[0]
            zz = w[:, :s].reshape(b * s, 1, *w.shape[2:])
            cc = w[:, s:].repeat_interleave(s, dim=0)
            pp = None if params is None else params.expand(b * s, -1)
            out = model.denoise(zz, g[:1].expand(b * s), cc, pp)
            return out.reshape(b, s, *w.shape[2:])

        return predict_tiled(fn, volume, tile=tile, halo=halo, batch=batch, align=model.net.multiple,
                             out_device=z.device)[:, None]
    return denoise_fn


@torch.no_grad()
def sample_box(model: VDM, cond: torch.Tensor, params: torch.Tensor | None, *, samples: int, seed: int,
               steps: int, batch: int = 1, tile: int | None = None, halo: int | None = None, slice_axis: int = 2,
               desc: str = "sampling") -> torch.Tensor:
    """`samples` draws of the transformed galaxy field of one whole periodic box.

    Parameters
    ----------
    model : VDM (eval mode, on its device)
    cond : (Cc, N, N, N) transformed DM field; params : (n_params,) or None.
    samples, seed : sample k uses seeds derived from (seed, k) (`sample_seed`), so it is the same
        whatever `samples` and `batch`.
    steps : T ancestral steps.
    batch : 3-D: samples denoised together; 2-D: slices per network call.
    tile, halo : 3-D only: evaluate ε̂ by the shared tiled inference (`galaxygen.training.tiling`)
        with tiles of side `tile` and `halo` voxels of periodic context (multiples of the U-Net's
        down-sampling factor, to which `halo` is rounded up; halo None: the U-Net's receptive
        radius); tile None: the whole box at once (exact, the U-Net pads circularly).
    slice_axis : 2-D only: the box is cut into N slices normal to this axis, each sampled
        independently (no coherence between neighbouring slices).

    Returns
    -------
    (samples, N, N, N) float32 on the model's device, in transformed units.
    """
    device = next(model.parameters()).device
    cond = cond.to(device)
    params = None if params is None else params.to(device).reshape(1, -1)
    n = cond.shape[1:]
    out = torch.empty((samples, *n), device=device)
    if model.cfg.dim == 3:
        for k0 in range(0, samples, batch):
            ks = list(range(k0, min(samples, k0 + batch)))
            gens = make_generators([sample_seed(seed, k) for k in ks], device)
            if tile is None or tile >= max(n):
                cc = cond[None].expand(len(ks), *cond.shape)
                pp = None if params is None else params.expand(len(ks), -1)
                denoise_fn = lambda z, g, cc=cc, pp=pp: model.denoise(z, g, cc, pp)  # noqa: E731
            else:
                h = exact_halo(model.net.receptive_radius if halo is None else halo, model.net.multiple)
                denoise_fn = _tiled_denoise(model, cond, params, tile, h, batch)
            x = ancestral_sample(model, (len(ks), 1, *n), steps=steps, generator=gens, denoise_fn=denoise_fn,
                                 device=device, desc=f"{desc} {ks[0]}-{ks[-1]}")
            out[ks[0]:ks[-1] + 1] = x[:, 0]
        return out
    slices = cond.movedim(slice_axis + 1, 0)                     # (N_a, Cc, n1, n2)
    out_s = out.movedim(slice_axis + 1, 1)                        # (S, N_a, n1, n2), a view
    jobs = [(k, j) for k in range(samples) for j in range(slices.shape[0])]
    for i0 in range(0, len(jobs), batch):
        chunk = jobs[i0:i0 + batch]
        gens = make_generators([sample_seed(sample_seed(seed, k), j) for k, j in chunk], device)
        cc = slices[[j for _, j in chunk]]
        pp = None if params is None else params.expand(len(chunk), -1)
        x = ancestral_sample(model, (len(chunk), 1, *slices.shape[2:]), steps=steps, generator=gens, cond=cc,
                             params=pp, device=device, desc=f"{desc} slices {i0}/{len(jobs)}")
        for (k, j), xi in zip(chunk, x[:, 0]):
            out_s[k, j] = xi
    return out
