"""The large-scale P(k) model used by the χ² fit agrees with the mean of populated realisations."""

from __future__ import annotations

import numpy as np
import pytest

from galaxygen.models.hod.fit_pk import model_power, ngp_voxel, pk_data, reduced_grid
from galaxygen.models.hod.occupation import make_model
from galaxygen.synthetic.halos import halo_catalogue


@pytest.mark.parametrize("name,params", [
    ("seed3", {"log10_m_min": 11.6, "log10_m1": 12.3, "alpha": 1.0}),
    ("central-satellite", {"log10_m_min": 11.6, "log10_m1": 12.6, "alpha": 1.0}),
])
def test_model_power_is_the_mean_spectrum_of_draws(name, params):
    from galaxygen.stats.power import power_spectrum

    L, n = 50.0, 16
    rng = np.random.default_rng(8)
    halos = halo_catalogue(rng, 2500, L)
    model = make_model(name, params)
    voxel = ngp_voxel(halos["pos"], n, L)
    d = pk_data(np.ones((n,) * 3, np.float32), halos["pos"], halos["mass"], L, 1.0, "test")
    assert d.grid == n
    expect = model_power(model, d)
    reps = 60
    ps_keep = power_spectrum(np.ones((n,) * 3, np.float32), L, scheme="ngp", k_max=1.0).n_modes > 0
    spectra = []
    for _ in range(reps):
        cen, sat = model.draw(halos["mass"], rng)
        field = np.bincount(voxel, weights=cen + sat, minlength=n ** 3).reshape((n,) * 3)
        spectra.append(power_spectrum(field.astype(np.float32), L, scheme="ngp", k_max=1.0).power[ps_keep])
    spectra = np.array(spectra)
    mean, err = spectra.mean(axis=0), spectra.std(axis=0, ddof=1) / np.sqrt(reps)
    chi2 = lambda model_pk: float(np.sum(((mean - model_pk) / err) ** 2))  # noqa: E731
    n_bins = len(mean)
    assert n_bins >= 6
    assert chi2(expect) < n_bins + 4 * np.sqrt(2 * n_bins), (mean, expect, err)
    # the test can tell: dropping the Poisson term 1/n̄ (or, for central-satellite, treating the
    # centrals as Poisson too) is rejected
    w = model.mean_occupation(halos["mass"])
    assert chi2(expect - L ** 3 / w.sum()) > 2.5 * chi2(expect) + 10
    if name == "central-satellite":
        wrong = expect + L ** 3 * (np.sum(w * w) - np.sum(model.second_moment(halos["mass"]))) / w.sum() ** 2
        assert chi2(wrong) > 2.5 * chi2(expect) + 10


def test_reduced_grid_keeps_nyquist_above_twice_k_max():
    assert reduced_grid(256, 25.0, 1.0) == 16  # Nyquist pi*16/25 = 2.01 >= 2; pi*8/25 would not be
    for grid, L, kmax in ((256, 25.0, 1.0), (64, 100.0, 0.3), (30, 10.0, 0.5)):
        m = reduced_grid(grid, L, kmax)
        assert grid % m == 0 and np.pi * m / L >= 2 * kmax
