"""Galaxy fields from an expected-count (rate) field: the structured, halo-like realisation.

Independent Poisson draws per voxel (`numpy.random.Generator.poisson`) have the right mean but not
the structure of a galaxy field: a halo's expected galaxies are smeared over several voxels by the
regressor, and independent draws give it none, one or two galaxies at random voxels. Halo
occupation models split a halo's galaxies into one central (a Bernoulli variable, at the halo
centre) and satellites (Poisson, around it) (Berlind & Weinberg 2002, arXiv:astro-ph/0109001;
Zheng et al. 2005, arXiv:astro-ph/0408564). `structured_counts` applies that split to the rate
field's peaks:

1. regions (`peak_regions`): every voxel with rate > 0 climbs to the highest of its 26 periodic
   neighbours and itself (steepest ascent; ties broken by voxel index), until a local maximum — a
   rate peak, the centre of one halo-like region (the watershed basins of the rate field);
2. per region R with expected count lam_R = sum of its rates: a central with probability
   p_R = min(1, lam_R); its voxel is drawn from c_v, the "water-filled" share of p_R over R's
   voxels in decreasing rate, c_v = min(rate_v, max(0, p_R - sum of the higher rates)): the peak
   voxel first, the next ones only when the peak's rate cannot hold p_R;
3. satellites: Poisson(rate_v - c_v) per voxel (the residual rates).

So the expected count of every voxel is c_v + (rate_v - c_v) = rate_v exactly: the mean of many
realisations is the rate field (tested), while a region with lam_R >= 1 always has its central,
at its peak when the peak's rate reaches 1.

`sharpen_rates` (the "sharper rates" lever) redistributes the rates inside each region as a score
to a power gamma, rescaled to the region's total: the same number of galaxies per region,
concentrated towards the peak (score = rate and gamma = 1: unchanged). The two-phase network scores
a voxel by rate × classifier probability (both networks agreeing on the peak), its regions being
those of that score. The realisation's expected counts are then the sharpened
rates, which is what a prediction box stores as ``fields/galaxy_rate``.

`central_sharpened` sharpens the central and the satellites apart: the central's share c_v is
water-filled over the rates sharpened with one power (at the peak of the score), while the region's
satellites, lam_R - p_R on average, are spread as the score to another, smaller power, as an HOD puts
its central at the halo centre and spreads its satellites over the halo profile. Expected counts
c_v + s_v; `structured_counts` draws the central from c and the satellites from s when given `central`.
"""

from __future__ import annotations

import itertools

import numpy as np

from galaxygen.errors import ConfigError

_SHIFTS = [s for s in itertools.product((-1, 0, 1), repeat=3) if s != (0, 0, 0)]


def peak_regions(rate: np.ndarray) -> np.ndarray:
    """The rate peak (flat voxel index) each voxel climbs to; -1 where rate <= 0.

    Parameters
    ----------
    rate : (N, N, N) float, expected galaxies per voxel (periodic box)

    Returns
    -------
    int64 (N, N, N): flat index ``(i N + j) N + k`` of the local maximum reached by steepest ascent
    over the 26 periodic neighbours (ties: the higher flat index is the higher voxel), -1 for voxels
    with no rate.
    """
    r = np.asarray(rate, dtype=np.float64)
    if r.ndim != 3:
        raise ConfigError(f"peak_regions: expected a (N, N, N) rate grid, got shape {r.shape}")
    n = r.size
    # a strict order of the voxels: rank by (rate, flat index)
    rank = np.empty(n, dtype=np.int64)
    rank[np.lexsort((np.arange(n), r.ravel()))] = np.arange(n)
    rank = rank.reshape(r.shape)
    index = np.arange(n, dtype=np.int64).reshape(r.shape)
    best_rank, parent = rank.copy(), index.copy()
    for s in _SHIFTS:
        nb_rank = np.roll(rank, s, axis=(0, 1, 2))
        higher = nb_rank > best_rank
        best_rank = np.where(higher, nb_rank, best_rank)
        parent = np.where(higher, np.roll(index, s, axis=(0, 1, 2)), parent)
    parent = parent.ravel()
    while True:  # pointer jumping: every voxel to the root of its ascent path
        nxt = parent[parent]
        if np.array_equal(nxt, parent):
            break
        parent = nxt
    out = parent.reshape(r.shape)
    return np.where(r > 0, out, -1)


def _sorted_regions(rate: np.ndarray, regions: np.ndarray):
    """The voxels with rate > 0 sorted by (region, decreasing rate, index): their flat indices, region
    labels, rates, and each region's first position and total."""
    r = rate.ravel().astype(np.float64)
    lab = regions.ravel()
    vox = np.flatnonzero(lab >= 0)
    order = np.lexsort((vox, -r[vox], lab[vox]))
    vox = vox[order]
    lab_s, r_s = lab[vox], r[vox]
    starts = np.flatnonzero(np.r_[True, lab_s[1:] != lab_s[:-1]]) if len(vox) else np.zeros(0, np.int64)
    totals = np.add.reduceat(r_s, starts) if len(vox) else np.zeros(0)
    return vox, lab_s, r_s, starts, totals


def sharpen_rates(rate: np.ndarray, gamma: float, regions: np.ndarray | None = None,
                  score: np.ndarray | None = None) -> np.ndarray:
    """Rates redistributed inside each peak region as score**gamma, keeping the region's total.

    rate (N, N, N) >= 0; gamma > 0; score (N, N, N) >= 0: what ranks the voxels (None: the rate
    itself, and gamma = 1 leaves the rates unchanged; the two-phase network passes rate × classifier
    probability); regions: `peak_regions(score)` (computed when None; pass the regions the
    realisation uses rather than recomputing them from float32 values that may tie).
    Returns float32 (N, N, N) with the same total as `rate` in every region.
    """
    if not gamma > 0:
        raise ConfigError(f"sharpen: expected a power > 0, got {gamma}")
    rate = np.clip(np.asarray(rate, dtype=np.float64), 0.0, None)
    if gamma == 1.0 and score is None:
        return rate.astype(np.float32)
    score = rate if score is None else np.clip(np.asarray(score, dtype=np.float64), 0.0, None) * (rate > 0)
    regions = peak_regions(score) if regions is None else np.where(score > 0, regions, -1)
    vox, _, s_s, starts, _ = _sorted_regions(score, regions)
    if not len(vox):
        return np.zeros(rate.shape, np.float32)
    sizes = np.diff(np.r_[starts, len(vox)])
    totals = np.add.reduceat(rate.ravel()[vox], starts)
    # relative to each region's highest score (the first of its sorted voxels) to keep s**gamma in range
    w = (s_s / np.repeat(s_s[starts], sizes)) ** gamma
    scale = np.repeat(totals / np.add.reduceat(w, starts), sizes)
    out = np.zeros(rate.size)
    out[vox] = w * scale
    return out.reshape(rate.shape).astype(np.float32)


def central_shares(rate: np.ndarray, regions: np.ndarray) -> np.ndarray:
    """c_v (module doc, step 2): each region's central probability p_R = min(1, lam_R) water-filled over
    its voxels in decreasing rate, c_v = min(rate_v, max(0, p_R - sum of the higher rates)).

    rate (N, N, N) >= 0, regions: their `peak_regions` (-1 where rate is 0). Returns float64 (N, N, N),
    summing to p_R over each region."""
    rate = np.clip(np.asarray(rate, dtype=np.float64), 0.0, None)
    vox, _, r_s, starts, totals = _sorted_regions(rate, np.where(rate > 0, regions, -1))
    sizes = np.diff(np.r_[starts, len(vox)])
    cum = np.cumsum(r_s)
    before = np.repeat(np.r_[0.0, cum[:-1]][starts] if len(vox) else np.zeros(0), sizes)
    above = cum - r_s - before  # the rates of the region's higher voxels
    out = np.zeros(rate.size)
    out[vox] = np.clip(np.repeat(np.minimum(totals, 1.0), sizes) - above, 0.0, r_s)
    return out.reshape(rate.shape)


def central_sharpened(rate: np.ndarray, gamma: float, satellite_gamma: float, regions: np.ndarray,
                      score: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The central and the satellites sharpened apart (module doc): the expected counts c + s and the
    central share c, both (N, N, N). c = `central_shares` of `sharpen_rates(rate, gamma, regions,
    score)` (p_R at the peak of the score); s = `sharpen_rates(rate, satellite_gamma, regions, score)`
    × (lam_R - p_R) / lam_R, the region's satellites. Every region keeps its total lam_R.
    Returns (float32 expected counts, float64 central shares)."""
    rate = np.clip(np.asarray(rate, dtype=np.float64), 0.0, None)
    regions = np.where(rate > 0, regions, -1)
    central = central_shares(sharpen_rates(rate, gamma, regions, score), regions)
    spread = sharpen_rates(rate, satellite_gamma, regions, score).astype(np.float64)
    vox, _, r_s, starts, totals = _sorted_regions(rate, regions)
    sizes = np.diff(np.r_[starts, len(vox)])
    sat = np.zeros(rate.size)
    keep = np.where(totals > 0, (totals - np.minimum(totals, 1.0)) / np.where(totals > 0, totals, 1.0), 0.0)
    sat[vox] = spread.ravel()[vox] * np.repeat(keep, sizes)
    return (central + sat.reshape(rate.shape)).astype(np.float32), central


def structured_counts(rate: np.ndarray, rng: np.random.Generator, regions: np.ndarray | None = None,
                      central: np.ndarray | None = None) -> np.ndarray:
    """One structured realisation of the rate field (module doc): centrals at the rate peaks,
    satellites Poisson around them; the expected count of every voxel equals its rate.

    Parameters
    ----------
    rate : (N, N, N) expected galaxies per voxel (>= 0; negative values are treated as 0)
    rng : numpy Generator, the only randomness (same state -> same field)
    regions : `peak_regions(rate)`, computed when None
    central : (N, N, N) the central's share c_v of each voxel (`central_sharpened`; 0 <= c_v <= rate_v,
        at most 1 per region); None: `central_shares(rate, regions)`. Satellites: Poisson(rate - c).

    Returns
    -------
    float32 (N, N, N) whole numbers of galaxies per voxel.
    """
    rate = np.clip(np.asarray(rate, dtype=np.float64), 0.0, None)
    regions = peak_regions(rate) if regions is None else regions
    regions = np.where(rate > 0, regions, -1)
    central = central_shares(rate, regions) if central is None else np.clip(np.asarray(central, np.float64), 0.0, rate)
    # the region's voxels by decreasing central share: those with c_v > 0 first (a prefix: water-filled)
    vox, _, share, starts, p_cen = _sorted_regions(central, regions)
    if len(p_cen) and p_cen.max() > 1.0 + 1e-6:
        raise ConfigError(f"structured_counts: central shares sum to {p_cen.max():.6g} > 1 in a region: expected "
                          f"at most one central per region (pass the regions the shares were made for)")
    p_cen = np.where(p_cen > 1.0 - 1e-9, 1.0, p_cen)  # a full region always holds its central
    out = np.zeros(rate.size, dtype=np.int64)
    # satellites: Poisson on the residual rates (draw first: fixed order of the generator's use)
    out[vox] = rng.poisson(np.clip(rate.ravel()[vox] - share, 0.0, None))
    u = rng.random(len(starts))
    has_central = u < p_cen
    # the central's voxel: first in decreasing share where the region's running sum of c_v exceeds u
    cum_share = np.cumsum(share)
    base = np.r_[0.0, cum_share[:-1]][starts] if len(vox) else np.zeros(0)
    pos = np.searchsorted(cum_share, base[has_central] + u[has_central], side="right")
    # the voxels with c_v > 0 are a prefix of each region (decreasing share): rounding of the running
    # sums can only push the search past that prefix's last voxel, never onto a voxel with c_v = 0
    last = starts + np.add.reduceat((share > 0).astype(np.int64), starts) - 1 if len(vox) else starts
    pos = np.minimum(pos, last[has_central])
    np.add.at(out, vox[pos], 1)
    return out.reshape(rate.shape).astype(np.float32)
