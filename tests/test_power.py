"""Power spectra: Pylians agreement, known answers (plane wave, Poisson shot noise), r(k)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from galaxygen.mesh import paint
from galaxygen.stats.power import cross_power, power_spectrum

L = 25.0


@pytest.fixture(scope="module")
def two_fields():
    rng = np.random.default_rng(7)
    a = rng.uniform(0, L, size=(30000, 3))
    # b: the same particles displaced (correlated on large scales only) plus extra ones
    b = np.concatenate([(a + rng.normal(0, 0.6, a.shape)) % L, rng.uniform(0, L, size=(5000, 3))])
    return a.astype(np.float32), b.astype(np.float32)


@pytest.mark.parametrize("scheme", ("ngp", "cic", "tsc"))
@pytest.mark.parametrize("grid", (32, 33))
def test_auto_and_cross_agree_with_pylians(two_fields, scheme, grid):
    pkl = pytest.importorskip("Pk_library")
    a, b = (paint(p, grid, L, scheme=scheme).numpy() for p in two_fields)
    da, db = ((f / f.mean() - 1).astype(np.float32) for f in (a, b))
    ours = power_spectrum(a, L, scheme=scheme)
    ref = pkl.Pk(da, L, 0, scheme.upper(), 1, verbose=False)
    np.testing.assert_allclose(ours.k, ref.k3D, rtol=1e-6)
    np.testing.assert_allclose(ours.power, ref.Pk[:, 0], rtol=1e-4)
    np.testing.assert_array_equal(ours.n_modes, ref.Nmodes3D)
    cp = cross_power(a, b, L, scheme=scheme)
    xref = pkl.XPk([da, db], L, 0, [scheme.upper()] * 2, 1)
    np.testing.assert_allclose(cp.p_ab, xref.XPk[:, 0, 0], rtol=1e-4, atol=1e-4 * np.abs(xref.XPk[:, 0, 0]).max())
    r_ref = xref.XPk[:, 0, 0] / np.sqrt(xref.Pk[:, 0, 0] * xref.Pk[:, 0, 1])
    np.testing.assert_allclose(cp.r, r_ref, atol=1e-4)
    np.testing.assert_allclose(cp.p_aa, ours.power, rtol=1e-10)


def test_plane_wave_power_lands_in_one_bin():
    n, j = 32, 5
    x = (np.arange(n) + 0.5) / n
    field = 1.0 + 0.3 * np.cos(2 * np.pi * j * x)[:, None, None] * np.ones((1, n, n))
    ps = power_spectrum(field, L, scheme=None, counts=False)
    k_f = 2 * math.pi / L
    hit = np.flatnonzero(ps.power > 1e-12 * ps.power.max())
    # one bin, [j, j+1) k_F; its k is the mean |k| of all its modes
    assert len(hit) == 1 and j * k_f <= ps.k[hit[0]] < (j + 1) * k_f
    # Parseval: a cosine of amplitude A has variance A^2/2 = sum over its 2 modes of P/V; one counted
    assert ps.power[hit[0]] * ps.n_modes[hit[0]] == pytest.approx(0.5 * 0.3 ** 2 * L ** 3 / 2, rel=1e-6)  # float32 FFT


def _aliased_shot_noise_factor(n: int, scheme: str) -> np.ndarray:
    """Mean over each fundamental-width bin of C(k) / W(k)^2 (Jing 2005, astro-ph/0409240, eq. 20):
    the expected deconvolved power of Poisson points in units of 1/n."""
    j = np.fft.fftfreq(n, 1.0 / n)
    s2 = [np.sin(np.pi * ji / n) ** 2 for ji in np.meshgrid(j, j, j, indexing="ij")]
    c = {"ngp": lambda s: 1.0 + 0 * s, "cic": lambda s: 1 - 2 / 3 * s,
         "tsc": lambda s: 1 - s + 2 / 15 * s ** 2}[scheme]
    p = {"ngp": 1, "cic": 2, "tsc": 3}[scheme]
    jj = np.meshgrid(j, j, j, indexing="ij")
    ratio = np.prod([c(si) / np.sinc(ji / n) ** (2 * p) for si, ji in zip(s2, jj)], axis=0)
    kbin = np.floor(np.sqrt(sum(ji ** 2 for ji in jj)) + 1e-9).astype(int).ravel()
    sums = np.bincount(kbin, weights=ratio.ravel())
    counts = np.bincount(kbin)
    return (sums / np.maximum(counts, 1))[1:]


@pytest.mark.parametrize("scheme", ("ngp", "cic", "tsc"))
def test_poisson_points_give_shot_noise(scheme):
    rng = np.random.default_rng(11)
    n_part, n = 400000, 32
    pos = rng.uniform(0, L, size=(n_part, 3))
    ps = power_spectrum(paint(pos, n, L, scheme=scheme), L, scheme=scheme)
    assert ps.shot_noise == pytest.approx(L ** 3 / n_part)
    below = ps.k < math.pi * n / L
    # deconvolved, P(k) of Poisson points follows the aliased window C(k)/W(k)^2 in expectation:
    # ~1 on large scales for every scheme, rising towards Nyquist for NGP
    expected = _aliased_shot_noise_factor(n, scheme)[: len(ps.k)] * ps.shot_noise
    pull = (ps.power - expected) / (ps.power / np.sqrt(ps.n_modes))
    assert np.all(np.abs(pull[below]) < 5)
    pooled = np.sum((ps.power / expected * ps.n_modes)[below]) / ps.n_modes[below].sum()
    assert pooled == pytest.approx(1.0, abs=0.03)  # ~8000 modes: 1 % noise
    if scheme == "ngp":
        # without deconvolution, NGP shot noise is exactly flat at 1/n (sum of aliased sinc^2 = 1)
        raw = power_spectrum(paint(pos, n, L, scheme="ngp"), L, scheme=None)
        flat = np.sum((raw.power * raw.n_modes)[below]) / raw.n_modes[below].sum()
        assert flat == pytest.approx(raw.shot_noise, rel=0.03)


def test_identical_fields_have_unit_r_and_transfer(two_fields):
    a = paint(two_fields[0], 16, L, scheme="ngp")
    cp = cross_power(a, a, L)
    np.testing.assert_allclose(cp.r, 1.0, rtol=1e-12)
    np.testing.assert_allclose(cp.transfer, 1.0, rtol=1e-12)
    cp2 = cross_power(a, 2 * a, L)  # δ is scale free
    np.testing.assert_allclose(cp2.r, 1.0, rtol=1e-12)


def test_bin_width_and_k_max(two_fields):
    a = paint(two_fields[0], 32, L, scheme="cic")
    k_f = 2 * math.pi / L
    fine = power_spectrum(a, L, scheme="cic")
    wide = power_spectrum(a, L, scheme="cic", bin_width=2 * k_f, k_max=10 * k_f)
    assert wide.k.max() <= 10 * k_f and wide.n_modes.sum() < fine.n_modes.sum()
    # total power in the modes kept is the same however they are binned
    keep = fine.k <= 10 * k_f + 1e-9
    assert np.sum(wide.power * wide.n_modes) == pytest.approx(np.sum((fine.power * fine.n_modes)[keep]),
                                                              rel=0.05)


def test_empty_field_is_a_clear_error():
    from galaxygen.errors import GalaxygenError
    with pytest.raises(GalaxygenError, match="mean"):
        power_spectrum(np.zeros((8, 8, 8)), L)
