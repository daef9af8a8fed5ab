"""Cosmology: the linear power spectrum (CAMB and Eisenstein-Hu) and its σ8 normalisation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import simpson

from galaxygen.errors import ConfigError
from galaxygen.cosmology.linear import Cosmology, eh_transfer, linear_power


def _sigma_r(cosmo, method, radius=8.0):
    """σ(R) by Simpson's rule on a fine grid (independent of the table's own integration)."""
    lnk = np.linspace(math.log(1e-4), math.log(50.0), 40001)
    k = np.exp(lnk)
    x = k * radius
    w = 3 * (np.sin(x) - x * np.cos(x)) / x ** 3
    return math.sqrt(simpson(k ** 3 * linear_power(cosmo, k, method=method) * w * w / (2 * math.pi ** 2), x=lnk))


def test_defaults_are_camels_fixed_values():
    c = Cosmology()
    assert (c.omega_b, c.h, c.n_s, c.omega_m, c.sigma_8) == (0.049, 0.6711, 0.9624, 0.3, 0.8)
    # particle mass: ρ_crit Ωm (L/N)³ with ρ_crit = 2.775e11 h² Msun/Mpc³
    assert c.particle_mass(25.0, 256) == pytest.approx(2.775e11 * 0.3 * (25 / 256) ** 3, rel=1e-3)


def test_eisenstein_hu_matches_colossus():
    from colossus.cosmology import power_spectrum as ps

    c = Cosmology(omega_m=0.27, omega_b=0.045, h=0.7)
    k = np.logspace(-4, 2, 200)
    ref = ps.modelEisenstein98(k, c.h, c.omega_m, c.omega_b, c.t_cmb)
    np.testing.assert_allclose(eh_transfer(c, k), ref, rtol=1e-8)


#: one CAMB cosmology for all CAMB tests (the CAMB run is cached per cosmology)
CAMB_COSMO = Cosmology(omega_m=0.25, sigma_8=0.9)


@pytest.mark.parametrize("method", ["eh", "camb"])
def test_sigma8_normalisation(method):
    assert _sigma_r(CAMB_COSMO, method) == pytest.approx(0.9, rel=2e-3)


def test_camb_spectrum_agrees_with_camb_itself():
    """Our CAMB table, normalised to σ8, equals CAMB's own spectrum rescaled by CAMB's σ8."""
    import camb

    c = CAMB_COSMO
    pars = camb.CAMBparams()
    pars.set_cosmology(H0=100 * c.h, ombh2=c.omega_b * c.h ** 2, omch2=(c.omega_m - c.omega_b) * c.h ** 2,
                       mnu=0.0, num_massive_neutrinos=0, TCMB=c.t_cmb)
    pars.InitPower.set_params(As=2e-9, ns=c.n_s)
    pars.set_matter_power(redshifts=[0.0], kmax=5.0 * c.h, nonlinear=False)
    res = camb.get_results(pars)
    k, _, p = res.get_linear_matter_power_spectrum(hubble_units=True, k_hunit=True)
    sel = (k > 1e-3) & (k < 4.0)
    ref = p[0][sel] * (c.sigma_8 / res.get_sigma8_0()) ** 2
    np.testing.assert_allclose(linear_power(c, k[sel], method="camb"), ref, rtol=5e-3)
    # the EH fit follows CAMB's shape to a few per cent, wiggles included
    ratio = linear_power(c, k[sel], method="eh") / ref
    assert np.all(np.abs(ratio - 1) < 0.06)


def test_redshift_scaling_is_growth_squared():
    from colossus.cosmology import cosmology as cc

    c = Cosmology()
    col = cc.setCosmology("gg_test", {"flat": True, "H0": 100 * c.h, "Om0": c.omega_m, "Ob0": c.omega_b,
                                      "sigma8": c.sigma_8, "ns": c.n_s, "relspecies": False})
    k = np.logspace(-2, 1, 7)
    for z in (1.0, 49.0):
        ratio = linear_power(c, k, z, method="eh") / linear_power(c, k, method="eh")
        np.testing.assert_allclose(ratio, col.growthFactor(z) ** 2, rtol=1e-3)
    assert linear_power(c, np.array([0.0]), method="eh")[0] == 0.0


@pytest.mark.parametrize("kwargs", [dict(omega_m=0.04), dict(omega_b=-0.1), dict(sigma_8=0.0),
                                    dict(h=5.0), dict(n_s=2.0)])
def test_invalid_cosmology_is_rejected(kwargs):
    with pytest.raises(ConfigError):
        Cosmology(**kwargs)


def test_unknown_method_is_rejected():
    with pytest.raises(ConfigError, match="method"):
        linear_power(Cosmology(), [0.1], method="halofit")
