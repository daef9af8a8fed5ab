"""Structured realisations of a rate field (models/two_phase/realisation.py, counts 'structured')."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from galaxygen.errors import ConfigError
from galaxygen.models.two_phase.counts import expected_counts, galaxy_counts
from galaxygen.models.two_phase.realisation import peak_regions, sharpen_rates, structured_counts


def _blobs(n: int = 16) -> np.ndarray:
    """A rate field of halo-like Gaussian blobs (one across the periodic edge), peak rates 0.3 to 3."""
    x = np.arange(n)
    rate = np.zeros((n, n, n))
    for centre, amp, width in (((4, 4, 4), 3.0, 1.0), ((11, 5, 9), 0.6, 0.8), ((0, 12, 12), 1.2, 0.9),
                               ((8, 12, 2), 0.3, 0.7)):
        d2 = sum(np.minimum(np.abs(x - c), n - np.abs(x - c)).reshape([-1 if a == i else 1 for a in range(3)]) ** 2
                 for i, c in enumerate(centre))
        rate += amp * np.exp(-0.5 * d2 / width ** 2)
    rate[rate < 0.01] = 0.0
    return rate


def test_peak_regions_find_the_blobs_across_the_periodic_edge():
    rate = _blobs()
    reg = peak_regions(rate)
    peaks = np.unique(reg[reg >= 0])
    n = rate.shape[0]
    assert sorted(np.unravel_index(peaks, rate.shape)[0].tolist()) == [0, 4, 8, 11]
    assert np.ravel_multi_index((4, 4, 4), rate.shape) in peaks
    assert (reg[rate == 0] == -1).all() and (reg[rate > 0] >= 0).all()
    # the blob centred on x = 0 spans x = n-1 and x = 1: one region across the edge
    assert reg[n - 1, 12, 12] == reg[1, 12, 12] == np.ravel_multi_index((0, 12, 12), rate.shape)
    # every peak is the highest voxel of its region
    for p in peaks:
        assert rate.ravel()[p] == rate[reg == p].max()


def test_mean_of_many_draws_is_the_rate_field_within_poisson_error():
    rate = _blobs()
    reg = peak_regions(rate)
    draws = 3000
    total = np.zeros_like(rate)
    for i in range(draws):
        total += structured_counts(rate, np.random.default_rng([7, i]), reg)
    occupied = rate > 0
    # the count's variance is at most its rate (central: Bernoulli, satellites: Poisson), so the
    # chi-square with Poisson variances is bounded by the chi-square law of as many degrees of freedom
    z = (total / draws - rate)[occupied] / np.sqrt(rate[occupied] / draws)
    dof = int(occupied.sum())
    assert (z ** 2).sum() < stats.chi2.ppf(0.999, dof)
    assert np.abs(z).max() < 5.0
    assert total[~occupied].sum() == 0


def test_one_central_at_the_peak_of_each_full_region():
    rate = _blobs()
    reg = peak_regions(rate)
    peak = np.ravel_multi_index((4, 4, 4), rate.shape)  # peak rate 3 >= 1: the central always there
    weak = np.ravel_multi_index((8, 12, 2), rate.shape)   # region total > 1 with a peak rate of 0.3
    assert rate[reg == weak].sum() > 1.0
    for i in range(200):
        g = structured_counts(rate, np.random.default_rng(i), reg)
        assert g.ravel()[peak] >= 1
        assert g[reg == weak].sum() >= 1  # a region expecting >= 1 galaxy always holds its central
        assert np.array_equal(g, np.rint(g)) and g.dtype == np.float32


def test_structured_field_holds_fewer_empty_halos_than_poisson():
    """The point of the central/satellite split: the number in a region varies less than Poisson."""
    rate = _blobs()
    reg = peak_regions(rate)
    labels = [p for p in np.unique(reg[reg >= 0]) if rate[reg == p].sum() >= 1.0]
    empty_s = empty_p = 0
    for i in range(300):
        rng = np.random.default_rng(i)
        s = structured_counts(rate, rng, reg)
        p = rng.poisson(rate)
        empty_s += sum(s[reg == lab].sum() == 0 for lab in labels)
        empty_p += sum(p[reg == lab].sum() == 0 for lab in labels)
    assert empty_s == 0 and empty_p > 0


def test_same_seed_same_field_other_seed_other_field():
    rate = _blobs()
    a = galaxy_counts(None, rate, None, counts="structured", rng=np.random.default_rng([3, 0]))
    b = galaxy_counts(None, rate, None, counts="structured", rng=np.random.default_rng([3, 0]))
    c = galaxy_counts(None, rate, None, counts="structured", rng=np.random.default_rng([3, 1]))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    with pytest.raises(ConfigError, match="structured counts need a random generator"):
        galaxy_counts(None, rate, None, counts="structured")


def test_the_mask_and_sharpening_shape_the_expected_counts():
    rate = _blobs()
    prob = np.where(np.arange(16)[:, None, None] < 8, 0.9, 0.1) * np.ones_like(rate)  # mask: x < 8
    lam = expected_counts(prob, rate, 0.5)
    np.testing.assert_allclose(lam[:8], rate[:8], rtol=1e-6)
    assert not lam[8:].any()
    g = galaxy_counts(prob, rate, 0.5, counts="structured", rng=np.random.default_rng(0))
    assert not g[8:].any() and g[:8].sum() > 0
    reg = peak_regions(rate)
    sharp = sharpen_rates(rate, 3.0, reg)
    for p in np.unique(reg[reg >= 0]):  # same total per region, a larger share at the peak
        sel = reg == p
        assert sharp[sel].sum() == pytest.approx(rate[sel].sum(), rel=1e-5)
        if sel.sum() > 1:
            assert sharp.ravel()[p] / sharp[sel].sum() > rate.ravel()[p] / rate[sel].sum()
    np.testing.assert_array_equal(sharpen_rates(rate, 1.0), rate.astype(np.float32))
    np.testing.assert_allclose(expected_counts(None, rate, None, sharpen=3.0), sharp, rtol=1e-6)
    with pytest.raises(ConfigError, match="sharpen"):
        sharpen_rates(rate, 0.0)


def test_sharpening_by_a_score_keeps_region_totals_and_follows_the_score():
    """With a classifier, the sharpening score is rate × probability: the regions are the score's,
    each keeps its total rate, and the voxel the score ranks first gets the largest share."""
    rate = _blobs()
    prob = np.random.default_rng(5).uniform(0.2, 1.0, rate.shape)
    score = rate * prob
    reg = peak_regions(score)
    sharp = sharpen_rates(rate, 4.0, reg, score=score)
    for p in np.unique(reg[reg >= 0]):
        sel = reg == p
        assert sharp[sel].sum() == pytest.approx(rate[sel].sum(), rel=1e-5)
        assert sharp.ravel()[p] == sharp[sel].max()
    # gamma 1: the rates follow the score, proportional to it inside each region
    flat = sharpen_rates(rate, 1.0, reg, score=score)
    for p in np.unique(reg[reg >= 0]):
        sel = reg == p
        np.testing.assert_allclose(flat[sel] / score[sel], flat[sel].sum() / score[sel].sum(), rtol=1e-5)
    # the expected counts of a two-phase prediction use that score; their realisations keep the mean
    lam = expected_counts(prob, rate, 0.1, sharpen=4.0)
    np.testing.assert_allclose(lam, sharpen_rates(rate * (prob >= 0.1), 4.0, score=score * (prob >= 0.1)), rtol=1e-5)
    total = sum(galaxy_counts(prob, rate, 0.1, counts="structured", sharpen=4.0, rng=np.random.default_rng([9, i]))
                for i in range(1500))
    occ = lam > 0
    z = (total / 1500 - lam)[occ] / np.sqrt(lam[occ] / 1500)
    assert (z ** 2).sum() < stats.chi2.ppf(0.999, int(occ.sum()))


def test_sharpening_keeps_the_rate_of_kept_voxels_whose_probability_is_zero():
    """threshold 0 keeps every voxel; those with a classifier probability of exactly 0 (a float32 sigmoid
    underflow) still carry their rate: sharpening keeps the box's expected total."""
    rng = np.random.default_rng(5)
    rate = rng.gamma(0.5, 0.2, size=(12, 12, 12)).astype(np.float32)
    prob = rng.random((12, 12, 12)).astype(np.float32)
    prob[rng.random(prob.shape) < 0.3] = 0.0
    masked = expected_counts(prob, rate, 0.0)
    sharp = expected_counts(prob, rate, 0.0, sharpen=3.0)
    assert masked.sum() == pytest.approx(rate.sum(), rel=1e-6)
    assert sharp.sum() == pytest.approx(masked.sum(), rel=1e-5)
    assert (sharp[prob == 0] >= 0).all() and not np.allclose(sharp, masked)


def test_the_central_and_the_satellites_sharpened_apart():
    """central_sharpened: each region keeps its total; its central (p_R = min(1, lam_R)) sits at the peak
    of the sharpened rates, its satellites (lam_R - p_R) follow the rates to their own power (1: the
    rates themselves); the structured draws from (expected, central) have that mean, and a region
    whose central share is 1 at its peak always holds a galaxy there."""
    from galaxygen.models.two_phase.realisation import central_sharpened, central_shares

    rate = _blobs()
    reg = peak_regions(rate)
    lam, central = central_sharpened(rate, 8.0, 1.0, reg)
    for p in np.unique(reg[reg >= 0]):
        sel = reg == p
        total = rate[sel].sum()
        assert lam[sel].sum() == pytest.approx(total, rel=1e-5)
        assert central[sel].sum() == pytest.approx(min(1.0, total), rel=1e-9)
        np.testing.assert_allclose(lam[sel] - central[sel], rate[sel] * (total - min(1.0, total)) / total,
                                   rtol=1e-5, atol=1e-7)
    peak = np.ravel_multi_index((4, 4, 4), rate.shape)
    assert central.ravel()[peak] == pytest.approx(1.0)
    np.testing.assert_allclose(central_shares(rate, reg)[reg == peak].sum(), 1.0)
    for p in np.unique(reg[reg >= 0]):  # each region's largest central share is at its peak
        sel = reg == p
        assert central.ravel()[p] == central[sel].max() > 0
    # shares summing over 1 in a region (regions not those the shares were made for) are refused
    with pytest.raises(ConfigError, match="central shares sum to"):
        structured_counts(lam, np.random.default_rng(0), np.where(reg >= 0, 0, -1), central)
    draws = 2000
    total = np.zeros_like(rate)
    for i in range(draws):
        g = structured_counts(lam, np.random.default_rng([11, i]), reg, central)
        assert g.ravel()[peak] >= 1
        total += g
    occ = lam > 0
    z = (total / draws - lam)[occ] / np.sqrt(lam[occ] / draws)
    assert (z ** 2).sum() < stats.chi2.ppf(0.999, int(occ.sum()))
    # through the two-phase path: expected_counts stores lam, galaxy_counts draws around it
    np.testing.assert_allclose(expected_counts(None, rate, None, sharpen=8.0, sharpen_satellites=1.0), lam, rtol=1e-6)
    a = galaxy_counts(None, rate, None, counts="structured", sharpen=8.0, sharpen_satellites=1.0,
                      rng=np.random.default_rng(4))
    np.testing.assert_array_equal(a, structured_counts(lam, np.random.default_rng(4), reg, central))
