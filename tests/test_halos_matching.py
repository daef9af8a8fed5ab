"""`galaxygen.halos.matching.match_hosts`: both rules, k nearest or all candidates, against brute force."""

from __future__ import annotations

import numpy as np
import pytest

from galaxygen.errors import GalaxygenError
from galaxygen.halos.matching import match_hosts

L = 20.0


def brute_force(pos, halo_pos, halo_radius, rule, radius=None, k=None):
    """Every pair's periodic distance; the nearest passing halo among the k nearest (or all)."""
    d = pos[:, None, :] - halo_pos[None, :, :]
    d -= L * np.round(d / L)
    dist = np.sqrt((d**2).sum(axis=2))
    out = np.full(len(pos), -1)
    for i in range(len(pos)):
        order = np.argsort(dist[i], kind="stable")[:k]
        for j in order:
            ok = dist[i, j] < halo_radius[j] if rule == "inside" else dist[i, j] <= radius[i] + halo_radius[j]
            if ok:
                out[i] = j
                break
    return out


@pytest.mark.parametrize("k", [None, 1, 8])
@pytest.mark.parametrize("rule", ["inside", "overlap"])
def test_matches_brute_force(rule, k):
    rng = np.random.default_rng(3)
    halo_pos = rng.uniform(0, L, (800, 3))
    halo_radius = rng.uniform(0.1, 2.0, 800)
    pos = rng.uniform(-1, L + 1, (500, 3))  # outside the box too: wrapped
    radius = rng.uniform(0.0, 0.5, 500)
    want = brute_force(np.mod(pos, L), halo_pos, halo_radius, rule, radius, k)
    got = match_hosts(pos, halo_pos, halo_radius, L, rule=rule, radius=radius if rule == "overlap" else None, k=k)
    np.testing.assert_array_equal(got, want)
    assert (got >= 0).mean() > 0.2  # the test exercises matches


def test_all_candidates_find_a_large_halo_behind_small_ones():
    """With k=None a galaxy in the outskirts of a big halo finds it past many nearer small ones."""
    small = np.array([[10.0 + 0.05 * i, 10.0, 10.0] for i in range(1, 11)])
    halo_pos = np.vstack([small, [[12.0, 10.0, 10.0]]])
    halo_radius = np.r_[np.full(10, 0.01), 3.0]
    gal = np.array([[10.0, 10.0, 10.0]])
    assert match_hosts(gal, halo_pos, halo_radius, L, k=None).tolist() == [10]
    assert match_hosts(gal, halo_pos, halo_radius, L, k=8).tolist() == [-1]


def test_empty_inputs_and_bad_rules():
    z = np.zeros((0, 3))
    assert match_hosts(z, np.ones((2, 3)), np.ones(2), L).tolist() == []
    assert match_hosts(np.ones((2, 3)), z, np.zeros(0), L, k=None).tolist() == [-1, -1]
    with pytest.raises(GalaxygenError, match="rule"):
        match_hosts(np.ones((1, 3)), np.ones((1, 3)), np.ones(1), L, rule="nearest")
    with pytest.raises(GalaxygenError, match="radius"):
        match_hosts(np.ones((1, 3)), np.ones((1, 3)), np.ones(1), L, rule="overlap")
