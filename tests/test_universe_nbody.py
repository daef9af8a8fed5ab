"""PM and COLA runs: linear growth on large scales, COLA vs PM, 2LPT vs PM, invariants."""

from __future__ import annotations

import math

import numba
import numpy as np
import pytest
import torch

from galaxygen.errors import ConfigError
from galaxygen.mesh import integer_frequencies, paint
from galaxygen.stats.power import power_spectrum
from galaxygen.constants import RHO_CRIT
from galaxygen.cosmology.linear import Cosmology, linear_power
from galaxygen.cosmology.growth import growth
from galaxygen.sources.universe.ics import initial_conditions
from galaxygen.sources.universe.nbody import make_force, run_cola, run_pm

from test_universe_ics import mode_averaged_power

COSMO = Cosmology()
N = 32


@pytest.fixture(scope="module")
def big_box():
    """1000 Mpc/h, 32³, fixed amplitude: every mode of the first bins is linear at z = 0."""
    ics = initial_conditions(COSMO, N, 1000.0, 1, z_start=49.0, fixed_amplitude=True, method="eh", device="cpu")
    return ics, run_pm(ics, steps=20), run_cola(ics, steps=10), run_pm(ics, steps=10, z_final=1.0)


@pytest.fixture(scope="module")
def small_box():
    """64 Mpc/h, 32³ (nonlinear at z = 0): COLA 10 steps and PM 40 steps from the same ICs."""
    ics = initial_conditions(COSMO, N, 64.0, 2, z_start=49.0, fixed_amplitude=True, method="eh", device="cpu")
    return ics, run_cola(ics, steps=10), run_pm(ics, steps=40)


def _power(parts, grid=N):
    return power_spectrum(paint(parts.pos, grid, parts.box_size, scheme="cic"), parts.box_size, scheme="cic")


def _direct_power(pos, box, j_max=4):
    """P(k) of particles by a direct Fourier sum over the modes 0 < |j| < j_max (no mass assignment,
    exact for a near-lattice), binned by floor(|j|); with the input spectrum averaged the same way."""
    r = range(-j_max + 1, j_max)
    js = [(a, b, c) for a in r for b in r for c in range(0, j_max)
          if 0 < a * a + b * b + c * c < j_max ** 2 and (c > 0 or b > 0 or (b == 0 and a > 0))]
    j = torch.tensor(js, dtype=torch.float64)
    phase = (pos.double() @ j.T) * (2 * math.pi / box)  # (n, modes)
    dk = torch.complex(torch.cos(phase).sum(0), -torch.sin(phase).sum(0)) / pos.shape[0]
    jj = j.norm(dim=1).numpy()
    bins = np.floor(jj).astype(int)
    p_in = linear_power(COSMO, 2 * math.pi / box * jj, method="eh")
    count = np.bincount(bins)[1:]
    return (np.bincount(bins, (dk.abs() ** 2).numpy() * box ** 3)[1:] / count,
            np.bincount(bins, p_in)[1:] / count)


def test_large_scale_growth_is_linear(big_box):
    """P(k, z) = P_lin(k) D1(z)² on the largest modes (fixed amplitude, within 3 %; measured: 2 %
    low in the first bin, from the ±0.5 % anisotropy of the lattice force response, see make_force)."""
    ics, pm, cola, pm_z1 = big_box
    d1_z1 = float(growth(COSMO.omega_m).d1(0.5))
    for parts, d1 in ((pm, 1.0), (cola, 1.0), (pm_z1, d1_z1)):
        p, p_lin = _direct_power(parts.pos, ics.box_size)
        np.testing.assert_allclose(p, p_lin * d1 ** 2, rtol=0.03)
    assert pm_z1.redshift == pytest.approx(1.0)


def _lowpass(field, n, j_max):
    """Keep the Lagrangian (lattice) Fourier modes |j| < j_max of an (n³, 3) particle field."""
    f = torch.fft.rfftn(field.double().T.reshape(3, n, n, n), dim=(1, 2, 3))
    jx, jy, jz = integer_frequencies(n)
    f = f * ((jx ** 2 + jy ** 2 + jz ** 2) < j_max ** 2)
    return torch.fft.irfftn(f, s=(n,) * 3, dim=(1, 2, 3)).reshape(3, -1).T


def test_large_scale_velocities_are_linear(big_box):
    """Peculiar velocities follow v = a H (f1 D1 Ψ1 + f2 D2 Ψ2) on large scales at z = 0."""
    ics, pm, cola, _ = big_box
    v_lin = _lowpass(ics.velocities(1.0), N, 4)
    for parts in (pm, cola):
        v = _lowpass(parts.vel, N, 4)
        slope = float((v * v_lin).sum() / (v_lin * v_lin).sum())
        corr = float((v * v_lin).sum() / (v.norm() * v_lin.norm()))
        assert slope == pytest.approx(1.0, abs=0.03) and corr > 0.99


def test_cola_matches_pm(small_box):
    """COLA (10 steps) vs PM (40 steps): P(k) within 4 % up to half the particle Nyquist frequency."""
    ics, cola, pm = small_box
    pc, pp = _power(cola, 2 * N), _power(pm, 2 * N)
    k_half_nyq = 0.5 * math.pi * N / ics.box_size
    sel = pc.k <= k_half_nyq
    assert sel.sum() >= 5
    np.testing.assert_allclose(pc.power[sel], pp.power[sel], rtol=0.04)
    # and both are far from linear theory there: the test compares nonlinear power
    lin = mode_averaged_power(COSMO, 2 * N, ics.box_size)
    bins = np.floor(pp.k[sel] / (2 * math.pi / ics.box_size)).astype(int)
    assert np.max(pp.power[sel] / lin[bins]) > 1.5


def test_2lpt_matches_pm_started_earlier():
    """At a = 0.02, 2LPT positions equal a PM run from z = 127 (to 4 % rms of the displacement), and
    the PM − Zel'dovich difference is the 2LPT term (regression slope 1 ± 0.2): the sign of D2 Ψ2."""
    box = 200.0
    ics = initial_conditions(COSMO, N, box, 3, z_start=49.0, method="eh", device="cpu")
    pm = run_pm(ics, steps=10, z_init=127.0, z_final=49.0)
    q = ics.lattice()
    d_pm = torch.remainder(pm.pos - q + box / 2, box) - box / 2
    g = growth(COSMO.omega_m)
    d1, d2 = ics.psi1 * float(g.d1(0.02)), ics.psi2 * float(g.d2(0.02))
    err_2lpt = float((d_pm - d1 - d2).norm() / d_pm.norm())
    err_za = float((d_pm - d1).norm() / d_pm.norm())
    assert err_2lpt < 0.04 and err_2lpt < err_za
    slope = float(((d_pm - d1) * d2).sum() / (d2 * d2).sum())
    assert slope == pytest.approx(1.0, abs=0.2)
    v_err = float((pm.vel - ics.velocities()).norm() / pm.vel.norm())
    assert v_err < 0.1


def test_mass_and_momentum_conservation(small_box):
    ics, cola, pm = small_box
    for parts in (cola, pm):
        assert parts.pos.dtype == torch.float32 and parts.vel.dtype == torch.float32
        assert parts.pos.shape == (N ** 3, 3) and parts.n_per_side == N
        assert float(parts.pos.min()) >= 0.0 and float(parts.pos.max()) < parts.box_size
        rho = paint(parts.pos, N, parts.box_size)
        assert float(rho.double().sum()) == pytest.approx(N ** 3, rel=1e-6)
        assert parts.particle_mass * N ** 3 == pytest.approx(RHO_CRIT * COSMO.omega_m * 64.0 ** 3, rel=1e-12)
        # PM forces are pair-antisymmetric on average: the mean velocity stays ~0
        assert float(parts.vel.double().mean(0).norm()) < 1e-3 * float(parts.vel.double().std())
        # particles stay in ID (lattice) order: displacements are small compared with the box
        d = torch.remainder(parts.pos - ics.lattice() + 32.0, 64.0) - 32.0
        assert float(d.abs().median()) < 8.0


def test_determinism_and_seed_dependence():
    def run(seed):
        ics = initial_conditions(COSMO, 16, 50.0, seed, method="eh", device="cpu")
        return run_cola(ics, steps=3), run_pm(ics, steps=3, mesh_factor=1)

    a, b, c = run(4), run(4), run(5)
    for x, y in zip(a, b):
        assert torch.equal(x.pos, y.pos) and torch.equal(x.vel, y.vel)
    assert not torch.equal(a[0].pos, c[0].pos)


def test_independent_of_thread_count():
    torch_threads, numba_threads = torch.get_num_threads(), numba.get_num_threads()
    out = []
    try:
        for t in (1, 2):
            torch.set_num_threads(t)
            numba.set_num_threads(min(t, numba.config.NUMBA_NUM_THREADS))
            ics = initial_conditions(COSMO, 16, 50.0, 8, method="eh", device="cpu")
            out.append((ics.psi2.clone(), run_cola(ics, steps=2), run_pm(ics, steps=2)))
    finally:
        torch.set_num_threads(torch_threads)
        numba.set_num_threads(numba_threads)
    (p1, c1, m1), (p2, c2, m2) = out
    assert torch.equal(p1, p2)
    for x, y in ((c1, c2), (m1, m2)):
        assert torch.equal(x.pos, y.pos) and torch.equal(x.vel, y.vel)


@pytest.mark.parametrize("mesh_factor,j_max,tol", [(2, N // 4, 0.015), (1, N // 8, 0.03)])
def test_force_on_a_perturbed_lattice_is_its_displacement(mesh_factor, j_max, tol):
    """Linear response of the default force on the particle lattice (the early universe): a lattice
    displaced by D1 Ψ1 feels g = D1 Ψ1, bin by bin in Lagrangian Fourier space."""
    box, a = 1000.0, 0.02
    ics = initial_conditions(COSMO, N, box, 1, method="eh", device="cpu", order=1)
    g = growth(COSMO.omega_m)
    disp = ics.psi1 * float(g.d1(a))
    force = make_force(N, box, mesh_factor, torch.device("cpu"))(ics.lattice() + disp)
    fg = torch.fft.rfftn(force.double().T.reshape(3, N, N, N), dim=(1, 2, 3))
    fd = torch.fft.rfftn(disp.double().T.reshape(3, N, N, N), dim=(1, 2, 3))
    jx, jy, jz = integer_frequencies(N)
    bins = torch.floor(torch.sqrt((jx ** 2 + jy ** 2 + jz ** 2).double())).long().ravel()
    num = torch.bincount(bins, (fg * fd.conj()).real.sum(0).ravel())
    den = torch.bincount(bins, (fd.abs() ** 2).sum(0).ravel())
    response = (num / den)[1:j_max + 1].numpy()
    np.testing.assert_allclose(response, 1.0, atol=tol)


def test_bad_run_arguments():
    ics = initial_conditions(COSMO, 8, 20.0, 0, method="eh", device="cpu")
    with pytest.raises(ConfigError, match="mesh_factor"):
        run_pm(ics, mesh_factor=3)
    with pytest.raises(ConfigError, match="cosmology"):
        run_cola(ics, Cosmology(omega_m=0.4))
    with pytest.raises(ConfigError, match="z_init"):
        run_pm(ics, z_init=0.0, z_final=1.0)
    with pytest.raises(ConfigError, match="steps"):
        run_cola(ics, steps=0)


def test_time_steps():
    from galaxygen.sources.universe.nbody import time_steps

    for schedule in ("linear", "sqrt", "log"):
        a = time_steps(0.02, 1.0, 10, schedule)
        assert a.shape == (11,) and a[0] == pytest.approx(0.02) and a[-1] == pytest.approx(1.0)
        assert np.all(np.diff(a) > 0)
    np.testing.assert_allclose(np.diff(time_steps(0.1, 0.5, 4, "linear")), 0.1)
    np.testing.assert_allclose(np.diff(np.log(time_steps(0.1, 0.5, 4, "log"))), math.log(5) / 4)
    with pytest.raises(ConfigError, match="schedule"):
        time_steps(0.1, 1.0, 4, "cubic")
