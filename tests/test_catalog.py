"""The galaxy catalogue of a galaxy field: every galaxy in the voxel that counts it, on its DM."""

from __future__ import annotations

import numpy as np
import pytest

from galaxygen.catalog import place_galaxies, voxel_index
from galaxygen.errors import GalaxygenError
from galaxygen.mesh import paint


def _field_and_particles(grid=8, box=10.0, seed=0):
    rng = np.random.default_rng(seed)
    counts = rng.poisson(0.6, size=(grid,) * 3).astype(np.float32)
    half = np.zeros((grid,) * 3, bool)
    half[: grid // 2] = True  # particles only in the lower half of the box (in x)
    particles = rng.uniform(0, box, size=(3000, 3))
    particles[:, 0] *= 0.5 - 1e-9
    particles[:5] = [[0.0, 0.0, 0.0], [box - 1e-7, 1.0, 1.0], [-0.1, 2.0, 2.0], [box, 3.0, 3.0], [2.5, 2.5, 2.5]]
    return counts, particles, box, half


def test_ngp_of_the_catalogue_is_the_field_and_galaxies_sit_on_particles():
    counts, particles, box, half = _field_and_particles()
    pos = place_galaxies(counts, particles, box, np.random.default_rng(1))
    assert pos.dtype == np.float32 and pos.shape == (int(counts.sum()), 3)
    assert np.all((pos >= 0) & (pos < box))
    np.testing.assert_array_equal(paint(pos, 8, box, scheme="ngp").numpy(), counts)
    wrapped = np.mod(particles, box).astype(np.float32)
    wrapped[wrapped >= np.float32(box)] = 0
    occupied = np.bincount(voxel_index(wrapped, 8, box), minlength=8 ** 3) > 0
    on_particle = (pos[:, None, :] == wrapped[None]).all(-1).any(1)
    in_occupied = occupied[voxel_index(pos, 8, box)]
    assert in_occupied.any() and (~in_occupied).any()
    np.testing.assert_array_equal(on_particle, in_occupied)  # on a particle exactly where the voxel has some


def test_distinct_particles_while_enough_and_seeded():
    counts = np.zeros((4, 4, 4))
    counts[1, 2, 3] = 3
    particles = (np.array([1, 2, 3]) + np.random.default_rng(0).uniform(0.1, 0.9, size=(5, 3))) * 2.5
    a = place_galaxies(counts, particles, 10.0, np.random.default_rng(7))
    assert len(np.unique(a, axis=0)) == 3
    np.testing.assert_array_equal(a, place_galaxies(counts, particles, 10.0, np.random.default_rng(7)))
    draws = {place_galaxies(counts, particles, 10.0, np.random.default_rng(s)).tobytes() for s in range(10)}
    assert len(draws) > 1
    many = place_galaxies(counts * 3, particles, 10.0, np.random.default_rng(0))  # 9 galaxies, 5 particles
    assert len(np.unique(many, axis=0)) == 5


def test_empty_field_and_bad_counts():
    assert place_galaxies(np.zeros((4, 4, 4)), np.zeros((0, 3)), 5.0, np.random.default_rng()).shape == (0, 3)
    for bad in (np.full((4, 4, 4), 0.5), -np.ones((4, 4, 4)), np.ones((4, 4, 5))):
        with pytest.raises(GalaxygenError, match="galaxy counts"):
            place_galaxies(bad, np.zeros((1, 3)), 5.0, np.random.default_rng())


def test_float32_positions_inside_the_box_give_the_same_catalogue():
    """Positions already float32 in [0, L) (what `generate` passes) skip the float64 wrap: the catalogue
    is the one their float64 copy gives, and one float32 position equal to L still wraps to 0."""
    counts, particles, box, _ = _field_and_particles()
    inside = np.mod(particles, box).astype(np.float32)
    inside[inside >= np.float32(box)] = 0
    a = place_galaxies(counts, inside, box, np.random.default_rng(3))
    np.testing.assert_array_equal(a, place_galaxies(counts, inside.astype(np.float64), box, np.random.default_rng(3)))
    edge = inside.copy()
    edge[0] = [box, 0.5, 0.5]  # float32 value L: outside [0, L)
    np.testing.assert_array_equal(paint(place_galaxies(counts, edge, box, np.random.default_rng(3)), 8, box,
                                        scheme="ngp").numpy(), counts)
