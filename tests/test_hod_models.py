"""HOD models: mean occupation against the formulas, limits, draws, and satellite placement."""

from __future__ import annotations

import math

import numpy as np
import pytest

from galaxygen.errors import ConfigError
from galaxygen.models.hod.occupation import MODELS, make_model
from galaxygen.models.hod.populate import duffy08_concentration, nfw_radius, populate, r200c

MASS = np.array([1e10, 5e11, 1e12 - 1.0, 1e12 + 1e6, 3e12, 1e13, 1e14, 7e14])


def test_seed3_mean_is_power_law_above_threshold():
    m = make_model("seed3", {"log10_m_min": 12.0, "log10_m1": 13.0, "alpha": 0.8})
    expect = [(x / 1e13) ** 0.8 if x > 1e12 else 0.0 for x in MASS]
    np.testing.assert_allclose(m.mean_occupation(MASS), expect, rtol=1e-12, atol=0)
    # the first galaxy is the central: <Ncen> = P(N >= 1) = 1 - exp(-lambda)
    np.testing.assert_allclose(m.mean_central(MASS), [1 - math.exp(-e) for e in expect], rtol=1e-12)
    np.testing.assert_allclose(m.mean_central(MASS) + m.mean_satellite(MASS), expect, rtol=1e-12)


def test_central_satellite_mean():
    m = make_model("central-satellite", {"log10_m_min": 12.0, "log10_m1": 13.5, "alpha": 1.1})
    cen = [1.0 if x > 1e12 else 0.0 for x in MASS]
    sat = [c * (x / 10 ** 13.5) ** 1.1 for c, x in zip(cen, MASS)]
    np.testing.assert_allclose(m.mean_central(MASS), cen)
    np.testing.assert_allclose(m.mean_satellite(MASS), sat, rtol=1e-12)
    np.testing.assert_allclose(m.mean_occupation(MASS), np.add(cen, sat), rtol=1e-12)


def test_zheng07_mean_matches_paper_formula():
    p = {"log10_m_min": 12.02, "sigma_log_m": 0.26, "log10_m0": 11.38, "log10_m1": 13.31, "alpha": 1.06}
    m = make_model("zheng07", p)
    for x, ncen, nsat in zip(MASS, m.mean_central(MASS), m.mean_satellite(MASS)):
        c = 0.5 * (1 + math.erf((math.log10(x) - p["log10_m_min"]) / p["sigma_log_m"]))
        s = c * ((x - 10 ** p["log10_m0"]) / 10 ** p["log10_m1"]) ** p["alpha"] if x > 10 ** p["log10_m0"] else 0
        assert ncen == pytest.approx(c, rel=1e-12, abs=1e-300)
        assert nsat == pytest.approx(s, rel=1e-12, abs=1e-300)
    # <Ncen> = 1/2 exactly at M_min
    assert m.mean_central(np.array([10 ** 12.02]))[0] == pytest.approx(0.5, abs=1e-12)


def test_zheng07_reduces_to_central_satellite():
    cs = make_model("central-satellite", {"log10_m_min": 12.0, "log10_m1": 13.2, "alpha": 0.9})
    mass = np.geomspace(1e10, 1e15, 301)
    mass = mass[np.abs(np.log10(mass) - 12.0) > 1e-6]  # the step's own point differs (1/2)
    for sigma in (1e-4, 0.0):
        z = make_model("zheng07", {"log10_m_min": 12.0, "sigma_log_m": sigma, "log10_m0": -np.inf,
                                   "log10_m1": 13.2, "alpha": 0.9})
        np.testing.assert_allclose(z.mean_central(mass), cs.mean_central(mass), atol=1e-12)
        np.testing.assert_allclose(z.mean_satellite(mass), cs.mean_satellite(mass), rtol=1e-10, atol=1e-12)
        rng_a, rng_b = np.random.default_rng(3), np.random.default_rng(3)
        ca, sa = cs.draw(mass, rng_a)
        cz, sz = z.draw(mass, rng_b)
        np.testing.assert_array_equal(ca, cz)


@pytest.mark.parametrize("name,params", [
    ("seed3", {"log10_m_min": 11.5, "log10_m1": 12.5, "alpha": 1.0}),
    ("central-satellite", {"log10_m_min": 11.5, "log10_m1": 12.5, "alpha": 1.0}),
    ("zheng07", {"log10_m_min": 12.0, "sigma_log_m": 0.3, "log10_m0": 11.5, "log10_m1": 12.5, "alpha": 1.0}),
])
def test_draws_have_model_mean_and_variance(name, params):
    model = make_model(name, params)
    mass = np.array([10 ** 11.9, 10 ** 12.2, 10 ** 13.0])
    reps = 40000
    rng = np.random.default_rng(11)
    cen, sat = model.draw(np.repeat(mass, reps), rng)
    n = (cen + sat).reshape(len(mass), reps)
    s = sat.reshape(len(mass), reps)
    mean_n, mean_s = model.mean_occupation(mass), model.mean_satellite(mass)
    np.testing.assert_allclose(n.mean(axis=1), mean_n, atol=5 * np.sqrt(mean_n.max() / reps) + 1e-3)
    np.testing.assert_allclose(s.mean(axis=1), mean_s, atol=5 * np.sqrt(mean_s.max() / reps) + 1e-3)
    # variance: Poisson for seed3 totals and for satellites in halos with a central
    has_c = cen.reshape(len(mass), reps) == 1
    for i in range(len(mass)):
        if name == "seed3":
            lam = mean_n[i]
            assert n[i].var() == pytest.approx(lam, rel=0.05)
        elif has_c[i].sum() > 1000:
            lam = model.satellite_rate(mass[i:i + 1])[0]
            assert s[i][has_c[i]].var() == pytest.approx(lam, rel=0.05)
            assert s[i][has_c[i]].mean() == pytest.approx(lam, rel=0.03)
    # second factorial moment matches the formula used by the P(k) model
    np.testing.assert_allclose((n * (n - 1)).mean(axis=1), model.second_moment(mass), rtol=0.05, atol=2e-3)


def test_registry_and_bad_parameters():
    assert set(MODELS) == {"seed3", "central-satellite", "zheng07"}
    with pytest.raises(ConfigError, match="unknown HOD model"):
        make_model("nope", {})
    with pytest.raises(ConfigError, match="missing"):
        make_model("seed3", {"log10_m_min": 12.0})
    with pytest.raises(ConfigError, match="alpha"):
        make_model("seed3", {"log10_m_min": 12.0, "log10_m1": 13.0, "alpha": -1.0})


def test_r200_and_concentration_match_colossus():
    colossus = pytest.importorskip("colossus")
    from colossus.cosmology import cosmology
    from colossus.halo import concentration, mass_so

    cosmology.setCosmology("planck18")
    cosmo = cosmology.getCurrent()
    mass = np.array([1e11, 1e12, 1e13, 1e14])
    for z in (0.0, 1.0):
        ref = mass_so.M_to_R(mass, z, "200c") / 1e3 * (1 + z)  # physical kpc/h -> comoving Mpc/h
        np.testing.assert_allclose(r200c(mass, z, cosmo.Om0), ref, rtol=2e-3)
        ref_c = concentration.concentration(mass, "200c", z, model="duffy08")
        np.testing.assert_allclose(duffy08_concentration(mass, z), ref_c, rtol=1e-3)
    assert colossus is not None


def test_nfw_radii_follow_the_enclosed_mass():
    rng = np.random.default_rng(5)
    c = 7.0
    r = nfw_radius(np.full(200000, c), rng)
    assert r.min() >= 0 and r.max() <= 1
    mu = lambda x: np.log1p(x) - x / (1 + x)  # noqa: E731
    for q in (0.1, 0.3, 0.5, 0.8):
        assert (r < q).mean() == pytest.approx(mu(c * q) / mu(c), abs=0.004)


def test_placement_centrals_at_centre_satellites_on_members_or_nfw():
    from galaxygen.synthetic.halos import halo_catalogue

    rng = np.random.default_rng(2)
    L = 50.0
    model = make_model("central-satellite", {"log10_m_min": 11.5, "log10_m1": 12.3, "alpha": 1.0})
    halos = halo_catalogue(rng, 400, L, members=True)
    cat = populate(model, halos, L, rng)
    cen = cat["is_central"] == 1
    np.testing.assert_allclose(cat["pos"][cen], halos["pos"][cat["host_halo"][cen]], atol=1e-5)
    members = {tuple(p) for p in halos["member_pos"]}
    sat = np.flatnonzero(~cen)
    assert len(sat) > 50 and all(tuple(cat["pos"][i]) in members for i in sat)
    off, h = halos["member_offset"], cat["host_halo"]
    for i in sat[:50]:  # on a member of its own host
        own = halos["member_pos"][off[h[i]]:off[h[i] + 1]]
        assert (np.abs(own - cat["pos"][i]).sum(axis=1) == 0).any()
    # without members: NFW within R200 of the host (periodic distance)
    plain = {k: halos[k] for k in ("pos", "mass")}
    cat = populate(model, plain, L, np.random.default_rng(4))
    sat = cat["is_central"] == 0
    d = cat["pos"][sat] - plain["pos"][cat["host_halo"][sat]]
    d = (d + L / 2) % L - L / 2
    dist = np.linalg.norm(d, axis=1)
    rad = r200c(plain["mass"][cat["host_halo"][sat]])
    assert (dist <= rad * (1 + 1e-4) + 1e-5).all() and np.median(dist / rad) < 0.5
    assert (cat["pos"] >= 0).all() and (cat["pos"] < L).all()


def test_member_choice_distinct_when_possible():
    from galaxygen.models.hod.populate import member_choice

    offset = np.array([0, 5, 5, 8, 20])          # halo sizes 5, 0, 3, 12
    host = np.array([3, 0, 0, 2, 3, 2, 2, 2, 1, 3, 0, 0, 0, 3])  # 5, 1, 4, 4 satellites
    rng = np.random.default_rng(1)
    counts = np.zeros(20)
    for _ in range(300):
        pick = member_choice(offset, host, rng)
        for h in range(4):
            rows = pick[host == h]
            if h == 1:
                assert (rows == -1).all()                       # no members: NFW instead
                continue
            assert ((rows >= offset[h]) & (rows < offset[h + 1])).all()
            if h != 2:                                          # halo 2: 4 satellites, 3 members
                assert len(set(rows)) == len(rows)
        counts += np.bincount(pick[pick >= 0], minlength=20)
    # uniform over the members of each halo: halo 0 has all 5 members chosen every time
    np.testing.assert_allclose(counts[:5], 300)
    assert counts[8:20].min() > 0.5 * counts[8:20].mean()


def test_empty_population_is_a_valid_prediction_said_out_loud(make_box, caplog):
    from galaxygen.models.hod.populate import populate_box

    box = make_box(name="E_0")
    model = make_model("zheng07", {"log10_m_min": 16.0, "sigma_log_m": 0.1, "log10_m0": 11.0,
                                   "log10_m1": 16.5, "alpha": 1.0})
    with caplog.at_level("WARNING"):
        pred = populate_box(box, model, np.random.default_rng(0), model="hod:zheng07", trained_on="A", seed=0)
    assert pred.galaxy_catalog["pos"].shape == (0, 3) and pred.galaxies.sum() == 0
    assert pred.source == "prediction" and pred.name == "E_0" and pred.dm is box.dm
    assert "'E_0' holds no galaxies" in caplog.text and "holds no galaxies" in pred.meta["warnings"]
