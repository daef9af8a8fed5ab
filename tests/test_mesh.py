"""Mass assignment: conservation, periodic wrapping, Pylians agreement, readout, windows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from galaxygen.mesh import irfft3, paint, readout, rfft3, window

L = 25.0
SCHEMES = ("ngp", "cic", "tsc")


@pytest.fixture(scope="module")
def particles():
    return np.random.default_rng(3).uniform(0, L, size=(20000, 3)).astype(np.float32)


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("backend", ("numba", "torch"))
def test_mass_is_conserved(particles, scheme, backend):
    w = np.random.default_rng(1).uniform(0.5, 2.0, len(particles)).astype(np.float32)
    g = paint(particles, 16, L, scheme=scheme, weights=w, backend=backend)
    assert g.dtype == torch.float32 and g.shape == (16, 16, 16)
    assert float(g.double().sum()) == pytest.approx(float(w.astype(np.float64).sum()), rel=1e-6)
    assert float(g.min()) >= 0


@pytest.mark.parametrize("scheme", SCHEMES)
def test_positions_wrap_periodically(particles, scheme):
    shift = np.array([L, -2 * L, 3 * L], dtype=np.float64)
    a = paint(particles.astype(np.float64), 16, L, scheme=scheme)
    b = paint(particles.astype(np.float64) + shift, 16, L, scheme=scheme)
    np.testing.assert_allclose(a.numpy(), b.numpy(), atol=2e-5)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_shift_by_whole_voxels_rolls_the_grid(particles, scheme):
    h = L / 16
    a = paint(particles, 16, L, scheme=scheme).numpy()
    b = paint(particles.astype(np.float64) + np.array([2 * h, 0, -3 * h]), 16, L, scheme=scheme).numpy()
    np.testing.assert_allclose(np.roll(a, (2, 0, -3), axis=(0, 1, 2)), b, atol=2e-5)


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("grid", (16, 32))
def test_agrees_with_pylians(particles, scheme, grid):
    masl = pytest.importorskip("MAS_library")
    ours = paint(particles, grid, L, scheme=scheme).numpy()
    ref = np.zeros((grid,) * 3, dtype=np.float32)
    # Pylians puts grid nodes at i*h, galaxygen at voxel centres (i + 1/2) h
    masl.MA(((particles - 0.5 * L / grid) % L).astype(np.float32), ref, L, scheme.upper(), verbose=False)
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5 * ref.max())


def test_ngp_counts_particles_per_voxel():
    pos = np.array([[0.1, 0.1, 0.1], [1.4, 0.2, 0.3], [24.99, 12.6, 0.0], [25.0, 0.0, 0.0]])
    g = paint(pos, 10, L, scheme="ngp").numpy()
    # voxels are 2.5 Mpc/h: 0.1 and 1.4 share voxel 0, and x = L wraps onto it too
    assert g[0, 0, 0] == 3 and g[9, 5, 0] == 1 and g.sum() == 4


def test_thread_count_does_not_change_result(particles):
    import numba
    old = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        a = paint(particles, 16, L, scheme="tsc").numpy()
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        b = paint(particles, 16, L, scheme="tsc").numpy()
    finally:
        numba.set_num_threads(old)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_readout_is_adjoint_of_paint(particles, scheme):
    # <paint(w), f> = <w, readout(f)> for any field f and weights w
    rng = np.random.default_rng(5)
    field = rng.normal(size=(2, 16, 16, 16))
    w = rng.normal(size=len(particles))
    painted = paint(particles, 16, L, scheme=scheme, weights=w).double().numpy()
    read = readout(torch.from_numpy(field), particles, L, scheme=scheme).numpy()
    assert read.shape == (len(particles), 2)
    for c in range(2):
        assert np.sum(painted * field[c]) == pytest.approx(np.sum(w * read[:, c]), rel=1e-5)
    torch_read = readout(torch.from_numpy(field[0]), particles, L, scheme=scheme, backend="torch").numpy()
    np.testing.assert_allclose(torch_read, read[:, 0], rtol=1e-10, atol=1e-10)


def test_readout_of_linear_field_is_exact_for_cic_and_tsc():
    # CIC and TSC interpolate a linear function exactly (away from the periodic seam)
    n, h = 32, L / 32
    x = (np.arange(n) + 0.5) * h
    field = np.broadcast_to(x[:, None, None], (n, n, n)).astype(np.float64).copy()
    pos = np.random.default_rng(0).uniform(3, L - 3, size=(500, 3))
    for scheme in ("cic", "tsc"):
        np.testing.assert_allclose(readout(field, pos, L, scheme=scheme).numpy(), pos[:, 0], atol=1e-10)


def test_window_deconvolution_makes_schemes_agree():
    # particles drawn from 1 + A cos(2 pi j x / L): the mode's painted amplitude is damped by the
    # scheme's window W^2; divided by it, NGP, CIC and TSC agree (aliasing is tiny at j = 3 of 16)
    from galaxygen.stats.power import power_spectrum

    rng = np.random.default_rng(2)
    n, j, amp = 16, 3, 0.5
    x = rng.uniform(0, L, 600000)
    x = x[rng.uniform(0, 1 + amp, x.size) < 1 + amp * np.cos(2 * np.pi * j * x / L)]
    pos = np.stack([x, rng.uniform(0, L, x.size), rng.uniform(0, L, x.size)], axis=1)
    k_j = 2 * np.pi * j / L
    raw, deconv = {}, {}
    for scheme in SCHEMES:
        g = paint(pos, n, L, scheme=scheme)
        raw[scheme] = power_spectrum(g, L, scheme=None)
        deconv[scheme] = power_spectrum(g, L, scheme=scheme)
    b = int(np.argmin(abs(raw["ngp"].k - k_j)))
    # the bin at k_j holds 6 modes, only one of them carries the wave: compare its excess power
    excess = {s: (deconv[s].power[b] - deconv[s].shot_noise) for s in SCHEMES}
    for s in ("cic", "tsc"):
        assert excess[s] == pytest.approx(excess["ngp"], rel=0.02)
    w = {s: float(window(n, s)[j, 0, 0]) for s in SCHEMES}
    for s, p in (("ngp", 1), ("cic", 2), ("tsc", 3)):
        assert w[s] == pytest.approx(np.sinc(j / n) ** p)
        assert float(window(n, s)[n // 2, 0, 0]) == pytest.approx((2 / np.pi) ** p)
    ratio = raw["tsc"].power[b] / raw["ngp"].power[b]
    assert ratio < 0.9  # without deconvolution TSC has visibly less power than NGP at this k


def test_bad_scheme_and_shape():
    from galaxygen.errors import GalaxygenError
    with pytest.raises(GalaxygenError, match="scheme 'pcs' unknown"):
        paint(np.zeros((3, 3)), 8, L, scheme="pcs")
    with pytest.raises(GalaxygenError, match=r"expected shape \(n, 3\)"):
        paint(np.zeros((3, 2)), 8, L)


@pytest.mark.parametrize("grid", (16, 24, 32))
def test_fft_helpers_are_thread_invariant_and_equal_torch(grid):
    """rfft3 / irfft3 give bit-identical results at 1 and 2 torch threads (MKL's own 3-D transform
    does not), and agree with torch.fft.rfftn / irfftn to float32 rounding."""
    x = torch.randn((grid,) * 3, generator=torch.Generator().manual_seed(grid))
    old = torch.get_num_threads()
    out = []
    try:
        for t in (1, 2):
            torch.set_num_threads(t)
            k = rfft3(x)
            out.append((k, irfft3(k, x.shape)))
    finally:
        torch.set_num_threads(old)
    (k1, x1), (k2, x2) = out
    assert torch.equal(k1, k2) and torch.equal(x1, x2)
    ref = torch.fft.rfftn(x.double())
    assert k1.shape == ref.shape
    np.testing.assert_allclose(k1.numpy(), ref.numpy(), atol=2e-5 * float(ref.abs().max()))
    np.testing.assert_allclose(x1.numpy(), x.numpy(), atol=1e-5)
