"""The galaxy-formation surrogate: occupation, variants, environment and assembly dependence,
feedback parameters, reproducibility, satellite placement, and host matching."""

from __future__ import annotations

import math

import numpy as np
import pytest

from galaxygen.errors import ConfigError
from galaxygen.halos.matching import match_hosts
from galaxygen.sources.universe.surrogate import (VARIANTS, best_precision_at_recall, conditional_scores, get_variant,
                                         mass_unit_for, occupation, occupied_probability, populate)

BOX = 50.0
MASS_UNIT = mass_unit_for(25.0, 128)  # 20 particles of a 128^3 box of 25 Mpc/h


def synthetic_halos(n=6000, seed=0, log_range=(0.0, 3.0)):
    """Halos with log-uniform masses (in mass units), random environment/concentration, members."""
    rng = np.random.default_rng(seed)
    mass = MASS_UNIT * 10 ** rng.uniform(*log_range, size=n)
    mass = np.sort(mass)[::-1]
    radius = 0.1 * (mass / MASS_UNIT) ** (1 / 3)
    n_mem = np.minimum(60, 20 + (mass / MASS_UNIT).astype(int))
    pos = rng.uniform(0, BOX, size=(n, 3))
    off = np.concatenate([[0], np.cumsum(n_mem)])
    u = rng.normal(size=(off[-1], 3))
    u *= (rng.random((off[-1], 1)) / np.linalg.norm(u, axis=1, keepdims=True))
    members = np.mod(np.repeat(pos, n_mem, axis=0) + u * np.repeat(radius, n_mem)[:, None], BOX)
    return {"pos": pos.astype(np.float32), "mass": mass, "n_particles": n_mem, "radius": radius,
            "concentration": rng.lognormal(np.log(8), 0.3, size=n), "environment": rng.lognormal(0, 1, size=n) - 1,
            "member_offset": off.astype(np.int64), "member_pos": members.astype(np.float32)}


def counts_per_halo(gal, n_halos):
    return np.bincount(gal["host"], minlength=n_halos)


def test_registry_has_two_distinct_variants_and_rejects_unknown_names():
    assert {"tng-like", "simba-like"} <= set(VARIANTS)
    assert all("surrogate" in v.description for v in VARIANTS.values())
    with pytest.raises(ConfigError, match="tng-like"):
        get_variant("hydro")


def test_conditional_scores_are_standard_normal_at_every_mass():
    rng = np.random.default_rng(1)
    mass = 10 ** rng.uniform(10, 14, 5000)
    x = np.log10(mass) * 3 + rng.normal(size=5000)  # strongly mass-correlated secondary property
    s = conditional_scores(mass, x)
    assert abs(np.corrcoef(s, np.log10(mass))[0, 1]) < 0.05  # the mass trend is removed
    assert abs(s.mean()) < 0.02 and abs(s.std() - 1) < 0.05
    assert np.corrcoef(s, x - 3 * np.log10(mass))[0, 1] > 0.6  # ... the scatter at fixed mass is kept
    small = conditional_scores(mass[:80], x[:80])  # a small box's catalogue: groups of 10
    assert abs(np.corrcoef(small, np.log10(mass[:80]))[0, 1]) < 0.3


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_occupation_and_stellar_mass_rise_with_halo_mass(name):
    halos = synthetic_halos()
    gal = populate(halos, BOX, name, {}, np.random.default_rng(2), mass_unit=MASS_UNIT)
    n = counts_per_halo(gal, len(halos["mass"]))
    bins = np.linspace(0, 3, 7)
    idx = np.digitize(np.log10(halos["mass"] / MASS_UNIT), bins) - 1
    mean = np.array([n[idx == b].mean() for b in range(6)])
    assert np.all(np.diff(mean) > 0), mean
    cen = gal["is_central"] == 1
    assert np.corrcoef(np.log10(gal["host_mass"][cen]), np.log10(gal["stellar_mass"][cen]))[0, 1] > 0.8
    assert np.all((gal["pos"] >= 0) & (gal["pos"] < BOX))
    # at most one central per halo, galaxies grouped by host, the central first
    assert np.bincount(gal["host"][cen]).max() == 1
    assert np.all(np.diff(gal["host"]) >= 0)
    first = np.r_[True, np.diff(gal["host"]) > 0]
    assert np.all(gal["is_central"][~first] == 0)


def test_variants_differ_measurably_on_the_same_halos():
    halos = synthetic_halos()
    out = {name: populate(halos, BOX, name, {}, np.random.default_rng(3), mass_unit=MASS_UNIT)
           for name in ("tng-like", "simba-like")}
    a, b = out["tng-like"], out["simba-like"]
    na, nb = len(a["pos"]), len(b["pos"])
    assert abs(na - nb) > 5 * math.sqrt(na + nb)
    # the satellite occupation grows with different slopes (alpha = 1.0 vs 0.8)
    log_m = np.log10(halos["mass"] / MASS_UNIT)
    def sat_slope(g):
        nsat = np.bincount(g["host"][g["is_central"] == 0], minlength=len(log_m))
        mid, top = (log_m > 2.0) & (log_m < 2.4), log_m > 2.6
        s = np.log(nsat[top].mean() / nsat[mid].mean()) / np.log(10) / (log_m[top].mean() - log_m[mid].mean())
        err = math.sqrt(1 / nsat[top].sum() + 1 / nsat[mid].sum()) / np.log(10) / 0.6
        return s, err
    (sa, ea), (sb, eb) = sat_slope(a), sat_slope(b)
    assert abs(sa - sb) > 4 * math.hypot(ea, eb), (sa, sb, ea, eb)
    # satellites sit further out in the simba-like variant (radially weighted member choice)
    def sat_radius(g):
        s = g["is_central"] == 0
        d = g["pos"][s] - halos["pos"][g["host"][s]]
        d -= BOX * np.round(d / BOX)
        return np.median(np.linalg.norm(d, axis=1) / halos["radius"][g["host"][s]])
    assert sat_radius(b) > 1.2 * sat_radius(a)


@pytest.mark.parametrize("name,sign", [("tng-like", 1), ("simba-like", -1)])
def test_environment_changes_occupation_at_fixed_mass(name, sign):
    """Halos of (nearly) one mass: the denser half holds more (tng-like) or fewer (simba-like)
    centrals, beyond the Poisson/binomial noise."""
    halos = synthetic_halos(n=8000, seed=4, log_range=(0.35, 0.55))  # around the central threshold
    gal = populate(halos, BOX, name, {}, np.random.default_rng(5), mass_unit=MASS_UNIT)
    cen = np.zeros(len(halos["mass"]))
    cen[gal["host"][gal["is_central"] == 1]] = 1
    dense = halos["environment"] > np.median(halos["environment"])
    p_hi, p_lo = cen[dense].mean(), cen[~dense].mean()
    err = math.sqrt(p_hi * (1 - p_hi) / dense.sum() + p_lo * (1 - p_lo) / (~dense).sum())
    assert sign * (p_hi - p_lo) > 5 * err
    # assembly bias too: for tng-like, concentrated halos hold more centrals at fixed mass
    if name == "tng-like":
        conc = halos["concentration"] > np.median(halos["concentration"])
        assert cen[conc].mean() - cen[~conc].mean() > 5 * err


def test_feedback_parameters_move_the_galaxy_numbers():
    halos = synthetic_halos()
    count = lambda **p: len(populate(halos, BOX, "tng-like", p, np.random.default_rng(6),  # noqa: E731
                                     mass_unit=MASS_UNIT)["pos"])
    n_fid = count()
    assert count(a_sn1=4.0) < n_fid - 5 * math.sqrt(n_fid) < n_fid + 5 * math.sqrt(n_fid) < count(a_sn1=0.25)
    sats = lambda **p: (populate(halos, BOX, "tng-like", p, np.random.default_rng(6),  # noqa: E731
                                 mass_unit=MASS_UNIT)["is_central"] == 0).sum()
    assert sats(a_agn1=4.0) < sats() - 5 * math.sqrt(sats())
    n_cen, n_sat = occupation(halos, get_variant("tng-like"), {"a_sn2": 2.0}, MASS_UNIT)
    n_cen0, _ = occupation(halos, get_variant("tng-like"), {}, MASS_UNIT)
    assert np.all(n_cen <= n_cen0 + 1e-12) and n_cen.sum() < n_cen0.sum()


def test_same_seed_same_catalogue_other_seed_other_catalogue():
    halos = synthetic_halos(n=1500)
    g1 = populate(halos, BOX, "simba-like", {}, np.random.default_rng(7), mass_unit=MASS_UNIT)
    g2 = populate(halos, BOX, "simba-like", {}, np.random.default_rng(7), mass_unit=MASS_UNIT)
    g3 = populate(halos, BOX, "simba-like", {}, np.random.default_rng(8), mass_unit=MASS_UNIT)
    assert all(np.array_equal(g1[k], g2[k]) for k in g1)
    assert len(g1["pos"]) != len(g3["pos"]) or not np.array_equal(g1["pos"], g3["pos"])


def test_satellites_sit_on_member_particles_with_small_offsets():
    halos = synthetic_halos(n=800)
    v = get_variant("tng-like")
    gal = populate(halos, BOX, v, {}, np.random.default_rng(9), mass_unit=MASS_UNIT)
    sat = np.flatnonzero(gal["is_central"] == 0)
    assert len(sat) > 20
    off = halos["member_offset"]
    for g in sat[:200]:
        h = gal["host"][g]
        d = halos["member_pos"][off[h]:off[h + 1]] - gal["pos"][g]
        d -= BOX * np.round(d / BOX)
        # nearest member within 5 sigma of the 3-D offset
        assert np.linalg.norm(d, axis=1).min() < 5 * v.sat_offset * halos["radius"][h] * math.sqrt(3)
    cen = np.flatnonzero(gal["is_central"] == 1)
    d = gal["pos"][cen] - halos["pos"][gal["host"][cen]]
    d -= BOX * np.round(d / BOX)
    assert np.all(np.linalg.norm(d, axis=1) < 6 * v.cen_offset * halos["radius"][gal["host"][cen]])


def test_match_hosts_is_periodic_and_respects_the_radius():
    halo_pos = np.array([[0.2, 10.0, 10.0], [25.0, 25.0, 25.0]])
    hosts = np.array([[49.9, 10.0, 10.0], [25.5, 25.0, 25.0], [40.0, 40.0, 40.0]])
    radius = np.array([0.5, 0.4, 1.0])
    def overlap(hosts, radius, halo_pos, box, halo_radius=None):  # the rule suite.py matches PM hosts with
        return match_hosts(hosts, halo_pos, halo_radius, box, rule="overlap", radius=radius)

    assert overlap(hosts, radius, halo_pos, BOX).tolist() == [0, -1, -1]
    assert overlap(hosts, radius * 2, halo_pos, BOX).tolist() == [0, 1, -1]
    # overlapping spheres: the halos' own radii count too; the nearest overlapping one wins
    assert overlap(hosts, radius, halo_pos, BOX, halo_radius=np.array([0.1, 0.2])).tolist() == [0, 1, -1]
    two = np.array([[10.0, 10.0, 10.0], [10.6, 10.0, 10.0]])
    assert overlap(np.array([[10.4, 10, 10]]), np.array([0.1]), two, BOX,
                   halo_radius=np.array([1.0, 0.3])).tolist() == [1]


def test_mass_unit_scales_with_resolution():
    assert mass_unit_for(25.0, 256) == pytest.approx(mass_unit_for(25.0, 128) / 8)
    assert mass_unit_for(25.0, 256) == pytest.approx(20 * 0.3 * 2.775e11 * (25 / 256) ** 3, rel=1e-3)


def test_a_box_without_halos_gives_an_empty_catalogue():
    from galaxygen.halos.fof import find_halos

    halos = find_halos(np.random.default_rng(0).uniform(0, 25, size=(4096, 3)), 25.0, 1e10)
    assert len(halos["mass"]) == 0 and halos["member_offset"].tolist() == [0]
    gal = populate(halos, 25.0, "simba-like", {}, np.random.default_rng(0), mass_unit=1e10)
    assert gal["pos"].shape == (0, 3) and gal["is_central"].dtype == np.int8 and gal["host"].dtype == np.int64


def test_best_precision_at_recall_on_a_hand_made_field():
    prob = np.array([0.0, 0.5, 1.0, 0.0, 0.5, 1.0])  # 3 occupied voxels expected
    # recall 2/3: the two certain voxels; 0.8: add one half-voxel (2.5 / 3 >= 0.8) -> 2.5 / 3
    assert best_precision_at_recall(prob, 2 / 3) == pytest.approx(1.0)
    assert best_precision_at_recall(prob, 0.8) == pytest.approx(2.5 / 3)
    assert best_precision_at_recall(prob, 1.0) == pytest.approx(3 / 4)
    with pytest.raises(ConfigError, match="target_recall"):
        best_precision_at_recall(prob, 1.5)


def test_occupied_probability_is_the_central_probability_of_isolated_small_halos():
    # small, isolated halos: satellites are rare, so P(centre voxel occupied) = <N_cen> (+ <N_sat>)
    halos = synthetic_halos(n=40, seed=3, log_range=(0.2, 0.6))
    v = get_variant("tng-like")
    n_cen, n_sat = occupation(halos, v, {}, MASS_UNIT)
    grid, reps = 32, 400
    prob = occupied_probability(halos, BOX, grid, v, {}, mass_unit=MASS_UNIT, realisations=reps)
    assert prob.min() >= 0 and prob.max() <= 1
    # every galaxy voxel of an independent draw is one the Monte Carlo found possible
    gal = populate(halos, BOX, v, {}, np.random.default_rng(12345), mass_unit=MASS_UNIT)
    vox = np.floor(gal["pos"] / (BOX / grid)).astype(int) % grid
    assert np.all(prob[tuple(vox.T)] > 0)
    # summed over the voxels, the expected occupied count is the expected number of galaxy voxels
    centre = np.floor(halos["pos"] / (BOX / grid)).astype(int) % grid
    p_centre = prob[tuple(centre.T)]
    expected = n_cen + n_sat * (1 - n_cen)  # upper bound of P(>= 1) when satellites add voxels
    assert np.all(p_centre <= np.minimum(expected, 1) + 4 * 0.5 / math.sqrt(reps))
    assert np.all(p_centre >= n_cen - 4 * np.sqrt(n_cen * (1 - n_cen) / reps) - 1e-9)
    assert abs(p_centre.mean() - n_cen.mean()) < 0.05
