"""HOD fits: known parameters recovered within errors, density imposed exactly, matching, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hod_helpers import hod_box

from galaxygen.errors import BoxFormatError, GalaxygenError
from galaxygen.models.hod.fit import fit_occupation
from galaxygen.halos.matching import match_hosts
from galaxygen.models.hod.matching import box_occupation
from galaxygen.models.hod.occupation import make_model
from galaxygen.synthetic.halos import halo_catalogue, halo_masses

TRUTH = {
    "seed3": {"log10_m_min": 12.0, "log10_m1": 12.8, "alpha": 0.9},
    "central-satellite": {"log10_m_min": 12.0, "log10_m1": 13.2, "alpha": 1.0},
    "zheng07": {"log10_m_min": 12.0, "sigma_log_m": 0.3, "log10_m0": 11.5, "log10_m1": 13.2, "alpha": 1.0},
}


@pytest.mark.parametrize("name", sorted(TRUTH))
def test_fit_recovers_known_parameters(name):
    rng = np.random.default_rng(2024)
    mass = halo_masses(rng, 20000)
    model = make_model(name, TRUTH[name])
    cen, sat = model.draw(mass, rng)
    n_gal = cen + sat
    res = fit_occupation(name, mass, n_gal, float(n_gal.sum()))
    # the density constraint holds exactly on the fit halos (far better than the 0.5 % asked)
    assert res.expected_count == pytest.approx(n_gal.sum(), rel=1e-9)
    assert res.names[0] == "log10_m_min" and set(res.names) == set(TRUTH[name])
    cov = np.asarray(res.covariance)
    np.testing.assert_allclose(cov, cov.T, atol=1e-12)
    assert np.all(np.linalg.eigvalsh(cov) > -1e-12)
    for k, true in TRUTH[name].items():
        err = res.errors[k]
        assert err > 0
        assert abs(res.params[k] - true) < 3 * err, (k, res.params[k], true, err)
    # M_min is the one the density gives for the fitted other parameters
    from galaxygen.models.hod.fit import solve_log_m_min

    others = {k: v for k, v in res.params.items() if k != "log10_m_min"}
    t = solve_log_m_min(name, others, mass, float(n_gal.sum()))
    assert not ((mass > 10 ** min(t, res.params["log10_m_min"])) & (mass <= 10 ** max(t, res.params["log10_m_min"]))).any()
    assert t == pytest.approx(res.params["log10_m_min"], abs=1e-6 if name == "zheng07" else 0.05)
    # and the well-measured ones are measured well (errors are not vacuous)
    assert res.errors["alpha"] < 0.05 and res.errors["log10_m1"] < 0.05
    assert res.errors["log10_m_min"] < 0.05


def test_fit_uncertainty_matches_scatter_between_realisations():
    """The reported error of alpha is the scatter of the estimate over independent samples."""
    model = make_model("seed3", TRUTH["seed3"])
    est, errs = [], []
    for seed in range(12):
        rng = np.random.default_rng(100 + seed)
        mass = halo_masses(rng, 4000)
        n = model.mean_occupation(mass)
        n_gal = rng.poisson(n)
        res = fit_occupation("seed3", mass, n_gal, float(n_gal.sum()))
        est.append(res.params["alpha"])
        errs.append(res.errors["alpha"])
    ratio = np.std(est, ddof=1) / np.mean(errs)
    assert 0.5 < ratio < 1.7, ratio


def test_density_constraint_with_galaxies_outside_the_model():
    """Galaxies in small halos and unmatched ones still count toward the target density."""
    rng = np.random.default_rng(7)
    mass = halo_masses(rng, 5000)
    n_gal = rng.poisson(0.05 + (mass / 1e13) ** 0.8)  # some galaxies in every mass range
    n_target = float(n_gal.sum() + 40)                 # plus 40 without a host
    for name in TRUTH:
        res = fit_occupation(name, mass, n_gal, n_target)
        m = make_model(name, res.params)
        assert m.mean_occupation(mass).sum() == pytest.approx(n_target, rel=1e-6)


def test_infeasible_density_is_a_clear_error():
    mass = np.full(100, 1e13)  # one mass group: central-satellite needs >= 100 galaxies
    with pytest.raises(GalaxygenError, match="density"):
        fit_occupation("central-satellite", mass, np.ones(100, dtype=int) * 0, 50.0)
    with pytest.raises(GalaxygenError, match="no galaxies"):
        fit_occupation("seed3", mass, np.zeros(100, dtype=int), 0.0)


def test_nearest_halo_matching_is_periodic_and_respects_radius():
    L = 10.0
    hpos = np.array([[0.2, 5.0, 5.0], [9.0, 5.0, 5.0], [5.0, 5.0, 5.0]])
    rad = np.array([0.5, 0.5, 0.05])
    gpos = np.array([[9.9, 5.0, 5.0],    # 0.3 from halo 0 across the boundary, 0.9 from halo 1
                     [8.8, 5.0, 5.0],    # halo 1
                     [5.1, 5.0, 5.0],    # 0.1 from halo 2 but outside its radius
                     [9.45, 5.0, 5.0]])  # 0.75 from halo 0, 0.45 from halo 1
    np.testing.assert_array_equal(match_hosts(gpos, hpos, rad, L), [0, 1, -1, 1])


def test_box_occupation_host_column_and_nearest_agree():
    rng = np.random.default_rng(9)
    model = make_model("central-satellite", TRUTH["central-satellite"])
    box = hod_box(model, rng, name="A", n_halos=1500)
    occ = box_occupation(box)
    assert occ.matching == "host_halo" and occ.n_unmatched == 0
    assert occ.n_gal.sum() == len(box.galaxy_catalog["pos"])
    cat = {k: v for k, v in box.galaxy_catalog.items() if k != "host_halo"}
    occ2 = box_occupation(box.replace(galaxy_catalog=cat))
    assert occ2.matching == "nearest-halo"
    # centrals sit on their host's centre: every central is matched to its own halo
    true_host = box.galaxy_catalog["host_halo"]
    agree = np.bincount(true_host, minlength=len(occ.mass))
    assert np.abs(occ2.n_gal - agree).sum() <= 0.05 * agree.sum()
    assert occ2.n_unmatched <= 0.05 * agree.sum()


def test_box_without_halos_names_what_is_missing(make_box):
    box = make_box(with_catalogs=False)
    with pytest.raises(BoxFormatError, match="catalogs/halos"):
        box_occupation(box)
    halos = {"pos": np.zeros((2, 3), np.float32), "n_particles": np.array([3, 4])}
    with pytest.raises(BoxFormatError, match="catalogs/halos/mass"):
        box_occupation(make_box().replace(halos=halos))
    with pytest.raises(BoxFormatError, match="catalogs/galaxies"):
        box_occupation(make_box().replace(galaxy_catalog=None))
    assert halo_catalogue(np.random.default_rng(0), 3, 10.0)["mass"].shape == (3,)


@pytest.mark.parametrize("name,params", [
    ("central-satellite", {"log10_m1": 13.0, "alpha": 1.0}),
    ("seed3", {"log10_m1": 12.8, "alpha": 0.9}),
    ("zheng07", {"sigma_log_m": 0.25, "log10_m0": 11.3, "log10_m1": 13.0, "alpha": 1.0}),
])
def test_m_min_from_density_is_exact_to_half_a_percent(name, params):
    from galaxygen.models.hod.fit import solve_log_m_min

    rng = np.random.default_rng(31)
    mass = halo_masses(rng, 20000)
    for n_target in (800.0, 1500.0, 2500.0):
        t = solve_log_m_min(name, params, mass, n_target)
        model = make_model(name, {**params, "log10_m_min": t})
        got = model.mean_occupation(mass).sum()
        assert got == pytest.approx(n_target, rel=5e-3)
        if name != "zheng07":  # a step: off by at most half the mass group at the threshold
            near = np.argsort(np.abs(np.log10(mass) - t))[:50]
            group = max(np.sum(make_model(name, {**params, "log10_m_min": 0.0}).mean_occupation(
                mass[mass == m])) for m in mass[near])
            assert abs(got - n_target) <= 0.5 * group + 1e-9
    with pytest.raises(GalaxygenError, match="cannot reach"):
        solve_log_m_min(name, params, mass, 1e6)


def test_m_min_agrees_with_pylians_hod(monkeypatch):
    """Pylians' HOD_library.hod_fast (central + satellites) finds M_min for given M1, α and density
    by bisection; ours must give the same expected density and the same threshold."""
    HOD_library = pytest.importorskip("HOD_library")
    from galaxygen.models.hod.fit import solve_log_m_min

    # HOD_library calls random.sample on a numpy array, which Python >= 3.11 refuses
    monkeypatch.setattr(HOD_library.random, "sample", lambda pop, k: list(np.asarray(pop)[:k]))
    rng = np.random.default_rng(4)
    L = 100.0
    halos = halo_catalogue(rng, 4000, L, members=True, max_members=40)
    off = halos["member_offset"]
    n_mem = np.diff(off)
    m1, alpha, density = 10 ** 13.0, 1.0, 1.5e-3
    with np.errstate(all="ignore"):
        ref = HOD_library.hod_fast(halos["member_pos"], np.zeros_like(halos["member_pos"]),
                                   np.arange(off[-1]), np.arange(off[-1]), halos["mass"], halos["pos"],
                                   np.zeros_like(halos["pos"]), np.full(len(n_mem), 10.0), n_mem, off[:-1],
                                   L, 1e10, 1e16, density, m1, alpha, 1)
    n_target = density * L ** 3
    t = solve_log_m_min("central-satellite", {"log10_m1": 13.0, "alpha": alpha}, halos["mass"], n_target)
    model = make_model("central-satellite", {"log10_m_min": t, "log10_m1": 13.0, "alpha": alpha})
    ours = model.mean_occupation(halos["mass"]).sum()
    theirs = make_model("central-satellite", {"log10_m_min": np.log10(ref.Mmin), "log10_m1": 13.0,
                                              "alpha": alpha}).mean_occupation(halos["mass"]).sum()
    assert ours == pytest.approx(n_target, rel=5e-3) and theirs == pytest.approx(n_target, rel=5e-3)
    # the same halos are occupied: no halo mass lies between the two thresholds
    lo, hi = sorted([10 ** t, ref.Mmin])
    assert not ((halos["mass"] > lo) & (halos["mass"] <= hi)).any() or abs(ours - theirs) < 0.005 * n_target
