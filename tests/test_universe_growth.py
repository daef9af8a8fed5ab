"""Growth functions from the ODEs against colossus and their own identities."""

from __future__ import annotations

import numpy as np
import pytest

from galaxygen.cosmology.growth import growth


def _colossus(omega_m):
    from colossus.cosmology import cosmology as cc

    return cc.setCosmology(f"gg_growth_{omega_m}", {"flat": True, "H0": 67.11, "Om0": omega_m, "Ob0": 0.049,
                                                    "sigma8": 0.8, "ns": 0.9624, "relspecies": False})


@pytest.mark.parametrize("omega_m", [0.1, 0.3, 0.5])
def test_d1_matches_colossus(omega_m):
    z = np.array([0.0, 0.3, 1.0, 2.0, 5.0, 20.0, 49.0, 127.0, 199.0])
    g = growth(omega_m)
    np.testing.assert_allclose(g.d1(1 / (1 + z)), _colossus(omega_m).growthFactor(z), rtol=1e-3)
    assert g.d1(1.0) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("omega_m", [0.1, 0.3, 0.5])
def test_growth_rates(omega_m):
    g = growth(omega_m)
    col = _colossus(omega_m)
    a = np.array([0.01, 0.1, 0.3, 0.6, 1.0])
    # f1 = dlnD/dlna from colossus by a central difference in ln a
    eps = 1e-4
    z_hi, z_lo = 1 / (a * np.exp(eps)) - 1, 1 / (a * np.exp(-eps)) - 1
    f_ref = (np.log(col.growthFactor(z_hi)) - np.log(col.growthFactor(z_lo))) / (2 * eps)
    np.testing.assert_allclose(g.f1(a), f_ref, rtol=1e-3)
    # D2: -3/7 D1² Ωm(a)^(-1/143) to 0.1 %; f2 ≈ 2 Ωm(a)^(6/11) is a fit good to ~2 % (Bouchet et al.
    # 1995, astro-ph/9406013); f2 is exactly dlnD2/dlna of our D2
    om_a = omega_m * a ** -3 / g.efunc(a) ** 2
    np.testing.assert_allclose(g.d2(a) / g.d1(a) ** 2, -3 / 7 * om_a ** (-1 / 143), rtol=1e-3)
    np.testing.assert_allclose(g.f2(a), 2 * om_a ** (6 / 11), rtol=2e-2)
    f2_num = (np.log(-g.d2(a * np.exp(eps))) - np.log(-g.d2(a * np.exp(-eps)))) / (2 * eps)
    np.testing.assert_allclose(g.f2(a), f2_num, rtol=1e-6)


@pytest.mark.parametrize("order", [1, 2])
def test_fastpm_factors_are_consistent(order):
    """G_f = a E dG_p/da (the kick of a linear mode is exact), checked by finite differences."""
    g = growth(0.3)
    a = np.array([0.02, 0.2, 0.7, 1.0])
    h = 1e-5 * a
    dgp = (g.gp(a + h, order) - g.gp(a - h, order)) / (2 * h)
    np.testing.assert_allclose(g.gf(a, order), a * g.efunc(a) * dgp, rtol=1e-6)
    # G_p = a³ E dD/da
    d = g.d1 if order == 1 else g.d2
    np.testing.assert_allclose(g.gp(a, order), a ** 3 * g.efunc(a) * (d(a + h) - d(a - h)) / (2 * h), rtol=1e-6)


def test_integrals():
    g = growth(1.0)  # Einstein-de Sitter: E = a^-3/2
    a0, a1 = 0.1, 0.5
    assert g.kick_integral(a0, a1) == pytest.approx(2 * (a1 ** 0.5 - a0 ** 0.5), rel=1e-9)
    assert g.drift_integral(a0, a1) == pytest.approx(-2 * (a1 ** -0.5 - a0 ** -0.5), rel=1e-9)
    np.testing.assert_allclose(g.d1([0.1, 0.5]), [0.1, 0.5], rtol=1e-8)


def test_out_of_range_scale_factor():
    with pytest.raises(ValueError):
        growth(0.3).d1(10.0)
