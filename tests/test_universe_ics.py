"""Initial conditions: mode noise, the linear density spectrum, LPT displacements and velocities."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from galaxygen.errors import ConfigError
from galaxygen.mesh import integer_frequencies
from galaxygen.stats.power import power_spectrum
from galaxygen.cosmology.linear import Cosmology, linear_power
from galaxygen.cosmology.growth import growth
from galaxygen.sources.universe.ics import (initial_conditions, lattice, linear_density, linear_density_k,
                                   white_noise)

COSMO = Cosmology()


def mode_averaged_power(cosmo, grid, box_size, z=0.0):
    """Input P averaged over the independent modes of each bin floor(|j|) (power_spectrum's bins).

    On the rfftn half space the kz = 0 plane holds each mode and its conjugate: weight 1/2.
    """
    jx, jy, jz = np.broadcast_arrays(*(t.numpy() for t in integer_frequencies(grid)))
    jj = np.sqrt(jx ** 2 + jy ** 2 + jz ** 2).ravel()
    w = np.where(jz.ravel() == 0, 0.5, 1.0)
    keep = jj > 0
    p = linear_power(cosmo, 2 * math.pi / box_size * jj[keep], z, method="eh")
    b = np.floor(jj[keep]).astype(int)
    return np.bincount(b, p * w[keep]) / np.maximum(np.bincount(b, w[keep]), 1e-30)


def test_noise_is_hermitian_unit_and_grid_independent():
    small, large = white_noise(7, 16), white_noise(7, 32)
    # Hermitian: a round trip through real space leaves the modes unchanged
    np.testing.assert_allclose(torch.fft.rfftn(torch.fft.irfftn(large, s=(32,) * 3)), large, atol=1e-5)
    # the modes of the small grid (|j| < 8) are the same numbers in the large grid
    j = np.r_[0:8, -7:0]
    np.testing.assert_array_equal(small[j][:, j][:, :, :8].numpy(), large[j][:, j][:, :, :8].numpy())
    # Nyquist planes and the mean are zero; unit variance elsewhere
    assert large[16].abs().max() == 0 and large[:, 16].abs().max() == 0 and large[..., 16].abs().max() == 0
    assert large[0, 0, 0] == 0
    power = (large.abs() ** 2)[large.abs() > 0]
    assert power.mean().item() == pytest.approx(1.0, abs=0.02)
    fixed = white_noise(7, 32, fixed_amplitude=True)
    nz = fixed.abs() > 0
    np.testing.assert_allclose(fixed.abs()[nz].numpy(), 1.0, rtol=1e-6)
    np.testing.assert_allclose(torch.angle(fixed[nz]).numpy(), torch.angle(large[nz]).numpy(), atol=1e-5)
    assert not torch.equal(white_noise(8, 16), small)


def test_linear_density_spectrum_matches_input():
    """Fixed amplitude: the measured P(k) of δ_L equals the input spectrum within 1 % in every bin."""
    grid, box = 32, 100.0
    delta = linear_density(COSMO, grid, box, 3, fixed_amplitude=True, method="eh", device="cpu")
    assert abs(delta.mean().item()) < 1e-6
    ps = power_spectrum(1.0 + delta, box, scheme=None)
    ref = mode_averaged_power(COSMO, grid, box)
    nb = grid // 2  # bins below the Nyquist frequency hold no zeroed modes
    sel = (ps.k > 0) & (ps.k < nb * 2 * math.pi / box)
    bins = np.floor(ps.k[sel] / (2 * math.pi / box)).astype(int)
    np.testing.assert_allclose(ps.power[sel], ref[bins], rtol=1e-2)


def test_random_amplitude_spectrum_is_unbiased():
    grid, box = 32, 100.0
    delta = linear_density(COSMO, grid, box, 11, method="eh", device="cpu", z=1.0)
    ps = power_spectrum(1.0 + delta, box, scheme=None)
    ref = mode_averaged_power(COSMO, grid, box, z=1.0)
    sel = (ps.k > 0) & (ps.k < grid // 2 * 2 * math.pi / box)
    bins = np.floor(ps.k[sel] / (2 * math.pi / box)).astype(int)
    ratio = ps.power[sel] / ref[bins]
    # each bin scatters as sqrt(1/n_modes); the mode-weighted mean over all bins within 3 sigma
    w = ps.n_modes[sel]
    assert np.average(ratio, weights=w) == pytest.approx(1.0, abs=3 / math.sqrt(w.sum()))


def test_same_seed_same_large_scales_at_any_resolution():
    box = 50.0
    lo = linear_density_k(COSMO, 16, box, 5, offset=0.0, method="eh", device="cpu") / 16 ** 3
    hi = linear_density_k(COSMO, 32, box, 5, offset=0.0, method="eh", device="cpu") / 32 ** 3
    j = np.r_[0:8, -7:0]
    np.testing.assert_allclose(hi[j][:, j][:, :, :8].numpy(), lo[j][:, j][:, :, :8].numpy(), rtol=1e-5, atol=1e-12)
    # the displacement fields then agree on the shared lattice points up to the extra small-scale modes
    a = initial_conditions(COSMO, 16, box, 5, method="eh", device="cpu", order=1).psi1
    b = initial_conditions(COSMO, 32, box, 5, method="eh", device="cpu", order=1).psi1
    b = b.view(32, 32, 32, 3)[::2, ::2, ::2].reshape(-1, 3)
    assert torch.corrcoef(torch.stack([a.ravel(), b.ravel()]))[0, 1] > 0.9


def _spectral_divergence(field, n, box):
    k = [t.double() * 2 * math.pi / box for t in integer_frequencies(n)]
    f = field.double().T.reshape(3, n, n, n)
    return torch.fft.irfftn(sum(1j * k[c] * torch.fft.rfftn(f[c]) for c in range(3)), s=(n,) * 3)


def test_lpt_fields_satisfy_their_equations():
    """∇·Ψ1 = −δ_L and ∇·Ψ2 = Σ_{i<j}(Ψ1_{i,i}Ψ1_{j,j} − Ψ1_{i,j}²) (Scoccimarro 1998)."""
    n, box = 32, 100.0
    ics = initial_conditions(COSMO, n, box, 2, method="eh", device="cpu")
    delta = linear_density(COSMO, n, box, 2, method="eh", device="cpu", offset=0.0).double()
    div1 = _spectral_divergence(ics.psi1, n, box)
    assert ((div1 + delta).norm() / delta.norm()).item() < 1e-5
    # second-order source from spectral derivatives of Ψ1
    k = [t.double() * 2 * math.pi / box for t in integer_frequencies(n)]
    p1 = [torch.fft.rfftn(ics.psi1.double().T.reshape(3, n, n, n)[c]) for c in range(3)]
    d = [[torch.fft.irfftn(1j * k[b] * p1[a], s=(n,) * 3) for b in range(3)] for a in range(3)]
    src = sum(d[a][a] * d[b][b] - d[a][b] * d[b][a] for a in range(3) for b in range(a + 1, 3))
    src = torch.fft.irfftn(torch.fft.rfftn(src) * _no_nyquist(n), s=(n,) * 3)
    div2 = _spectral_divergence(ics.psi2, n, box)
    assert ((div2 - src).norm() / src.norm()).item() < 1e-4


def _no_nyquist(n):
    j = integer_frequencies(n)
    return ((j[0].abs() < n // 2) & (j[1].abs() < n // 2) & (j[2] < n // 2)).double()


def test_lpt_positions_and_velocities():
    n, box = 16, 50.0
    ics = initial_conditions(COSMO, n, box, 4, z_start=30.0, method="eh", device="cpu")
    g = growth(COSMO.omega_m)
    a = 1 / 31
    assert ics.z_start == pytest.approx(30.0)
    pos = ics.positions()
    assert pos.dtype == torch.float32 and pos.shape == (n ** 3, 3)
    assert pos.min() >= 0 and pos.max() < box
    # v = a H dx/dlna: compare with a central difference of the LPT trajectory
    eps = 1e-3
    dx = ics.displacement(a * math.exp(eps)).double() - ics.displacement(a * math.exp(-eps)).double()
    v_num = 100 * a * float(g.efunc(a)) * dx / (2 * eps)
    v = ics.velocities().double()
    assert ((v - v_num).norm() / v.norm()).item() < 1e-4
    np.testing.assert_allclose(lattice(2, 10.0).numpy(), [[0, 0, 0], [0, 0, 5], [0, 5, 0], [0, 5, 5],
                                                          [5, 0, 0], [5, 0, 5], [5, 5, 0], [5, 5, 5]])


def test_paired_and_first_order():
    a = initial_conditions(COSMO, 16, 50.0, 9, method="eh", device="cpu")
    b = initial_conditions(COSMO, 16, 50.0, 9, method="eh", device="cpu", paired=True)
    np.testing.assert_allclose(b.psi1.numpy(), -a.psi1.numpy(), atol=1e-6)
    np.testing.assert_allclose(b.psi2.numpy(), a.psi2.numpy(), rtol=1e-4, atol=1e-6)  # quadratic
    c = initial_conditions(COSMO, 16, 50.0, 9, method="eh", device="cpu", order=1)
    assert c.psi2 is None and torch.equal(c.psi1, a.psi1)


@pytest.mark.parametrize("kwargs", [dict(n_particles=1), dict(box_size=-1.0), dict(order=3), dict(z_start=-2.0)])
def test_bad_arguments(kwargs):
    args = dict(n_particles=8, box_size=10.0, order=2, z_start=49.0)
    args.update(kwargs)
    n, box = args.pop("n_particles"), args.pop("box_size")
    with pytest.raises(ConfigError):
        initial_conditions(COSMO, n, box, 0, method="eh", device="cpu", **args)
