"""From the two-phase network's outputs to galaxies: expected counts, their calibration and realisations.

The expected counts of a box are the regressor's rate (clipped at 0, times the run's count scale)
times the classifier mask (prob >= threshold), optionally sharpened inside each peak region of
rate × probability (`realisation.sharpen_rates`, `realisation.central_sharpened`); a prediction stores
them as ``fields/galaxy_rate`` and realises them as integer counts by a `COUNTS` mode: structured (a
central per peak, Poisson satellites: `realisation.structured_counts`), Poisson with a seed, rounded,
or rounded keeping the total (`largest_remainder`). `count_scale` is the calibration of the rates'
total (docs/training.md, "Count calibration").
"""

from __future__ import annotations

import numpy as np

from galaxygen.errors import ConfigError
from galaxygen.models.two_phase.realisation import central_sharpened, peak_regions, sharpen_rates, structured_counts

COUNTS = ("round", "total", "poisson", "structured")
STOCHASTIC = ("poisson", "structured")  # modes drawn with a random generator (several samples make sense)


def expected_counts(prob: np.ndarray | None, rate: np.ndarray | None, threshold: float | None, *,
                    sharpen: float = 1.0, regions: np.ndarray | None = None,
                    sharpen_satellites: float | None = None) -> np.ndarray:
    """The expected galaxies per voxel (N, N, N) float32 that `galaxy_counts` realises: the regressor's
    rate (clipped at 0) times the classifier mask (prob >= threshold); with `sharpen` != 1, its rates
    redistributed inside each peak region of the score as score**sharpen, keeping the region's total
    (`realisation.sharpen_rates`; score = rate × prob with a classifier, else the rate; `regions`:
    `sharpening_regions`), or with `sharpen_satellites` the central by score**sharpen and the
    satellites by score**sharpen_satellites (`realisation.central_sharpened`); without a regressor
    the mask itself (one galaxy per kept voxel). What a prediction box stores as ``fields/galaxy_rate``."""
    masked = _masked(prob, rate, threshold)
    if rate is None or (sharpen == 1.0 and sharpen_satellites is None):
        return masked
    regions = sharpening_regions(prob, masked) if regions is None else regions
    return _sharpened(prob, masked, sharpen, regions, sharpen_satellites)[0]


def count_scale(n_true: float, n_expected: float) -> float:
    """The factor on the regressor's rates that makes the expected galaxy number equal the true one,
    ``n_true / n_expected`` (totals over the same voxels; sharpening keeps region totals, so the masked
    rates' total is the expected number). 1 when nothing is expected (nothing to scale)."""
    if not (n_true >= 0 and n_expected >= 0):
        raise ValueError(f"count_scale: totals must be >= 0, got {n_true}, {n_expected}")
    return n_true / n_expected if n_expected > 0 else 1.0


def _masked(prob, rate, threshold) -> np.ndarray:
    """The regressor's rate (clipped at 0) times the classifier mask, float32 (N, N, N); the mask alone
    without a regressor."""
    if rate is None:
        if prob is None:
            raise ConfigError("galaxy_counts: need a classifier probability or a regressor rate")
        return (prob >= threshold).astype(np.float32)
    out = np.clip(rate, 0.0, None).astype(np.float32)
    return out if prob is None else out * (prob >= threshold)


def _sharpened(prob, masked, sharpen, regions, sharpen_satellites) -> tuple[np.ndarray, np.ndarray | None]:
    """The sharpened expected counts of the masked rates in their `regions` and the central shares of a
    separate satellite sharpening (else None)."""
    score = None if prob is None else sharpening_score(prob, masked)
    if sharpen_satellites is not None:
        return central_sharpened(masked, sharpen, sharpen_satellites, regions, score)
    return sharpen_rates(masked, sharpen, regions, score=score), None


def sharpening_score(prob: np.ndarray, masked: np.ndarray) -> np.ndarray:
    """What ranks the voxels for sharpening: the masked rate times the classifier probability (float64),
    the probability floored at 1e-30 so that a kept voxel whose probability is 0 (threshold 0, or a
    float32 sigmoid underflow) still ranks, last, and keeps its rate in its region's total."""
    return np.asarray(masked, np.float64) * np.maximum(np.asarray(prob, np.float64), 1e-30)


def sharpening_regions(prob: np.ndarray | None, masked: np.ndarray) -> np.ndarray:
    """The peak regions (`realisation.peak_regions`) of the sharpening score (`sharpening_score`; the
    masked rate alone without a classifier)."""
    return peak_regions(masked if prob is None else sharpening_score(prob, masked))


def galaxy_counts(prob: np.ndarray | None, rate: np.ndarray | None, threshold: float | None, *,
            counts: str = "round", rng: np.random.Generator | None = None, sharpen: float = 1.0,
            sharpen_satellites: float | None = None) -> np.ndarray:
    """Galaxies per voxel from the expected counts `expected_counts(prob, rate, threshold, sharpen,
    sharpen_satellites)`.

    counts:
    * 'round': each voxel's rate rounded (a voxel needs rate >= 0.5 to hold a galaxy);
    * 'total': rounded so that the box holds round(sum of the kept rates) galaxies, by the largest
      remainder method (Hamilton apportionment): every kept voxel gets floor(rate), and the voxels
      with the largest fractional parts one more, until the total is reached (ties by voxel index).
      The galaxies sit in the likeliest voxels: the best voxel metrics, but a field more clustered
      than the truth;
    * 'poisson': Poisson(rate) draws with `rng` (one realisation of the stochastic field);
    * 'structured': a central at each rate peak and Poisson satellites around it, with `rng`
      (`realisation.structured_counts`; Berlind & Weinberg 2002, Zheng et al. 2005): each voxel's
      expected count is its rate, as for 'poisson', with the structure of halo occupation.
    Without a regressor (rate None) each kept voxel holds one galaxy; without a classifier (prob
    None) the counts are used everywhere.
    """
    if counts not in COUNTS:
        raise ConfigError(f"counts: expected one of {COUNTS}, got {counts!r}")
    if rate is None:
        return expected_counts(prob, rate, threshold)
    return realise(*realisation_inputs(prob, rate, threshold, counts=counts, sharpen=sharpen,
                                       sharpen_satellites=sharpen_satellites), counts, rng)


def realisation_inputs(prob: np.ndarray | None, rate: np.ndarray | None, threshold: float | None, *,
                       counts: str, sharpen: float = 1.0,
                       sharpen_satellites: float | None = None) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """What `realise` needs, computed once per box for any number of realisations: the expected counts
    (`expected_counts`, float32 (N, N, N)), the peak regions the structured mode and sharpening use
    (`realisation.peak_regions` of the sharpening score; None when neither applies) and the central
    shares of a separate satellite sharpening (else None)."""
    masked = _masked(prob, rate, threshold)
    if rate is None:
        return masked, None, None
    if sharpen != 1.0 or sharpen_satellites is not None:
        regions = sharpening_regions(prob, masked)
        lam, central = _sharpened(prob, masked, sharpen, regions, sharpen_satellites)
        return lam, regions, central
    return masked, (peak_regions(masked) if counts == "structured" else None), None


def realise(lam: np.ndarray, regions: np.ndarray | None, central: np.ndarray | None, counts: str,
            rng: np.random.Generator | None) -> np.ndarray:
    """Galaxies per voxel (float32 whole numbers) from expected counts `lam`, their `regions` and central
    shares (`realisation_inputs`) by the mode `counts` (see `galaxy_counts`)."""
    if counts in STOCHASTIC and rng is None:
        raise ConfigError(f"galaxy_counts: {counts} counts need a random generator (seed)")
    if counts == "poisson":
        return rng.poisson(lam).astype(np.float32)
    if counts == "structured":
        return structured_counts(lam, rng, regions, central)
    if counts == "round":
        return np.rint(lam).astype(np.float32)
    return largest_remainder(lam)


def largest_remainder(rate: np.ndarray) -> np.ndarray:
    """Integer counts with total round(sum(rate)), each floor(rate) or floor(rate) + 1: the voxels
    with the largest fractional parts get the extra one (Hamilton's method; ties by flat index).
    Same shape as `rate` (>= 0), float32."""
    r = np.asarray(rate, dtype=np.float64)
    base = np.floor(r)
    extra = int(round(float(r.sum()))) - int(base.sum())
    out = base.ravel()
    if extra > 0:
        frac = (r - base).ravel()
        top = np.argsort(-frac, kind="stable")[:extra]
        out[top] += 1.0
    return out.reshape(r.shape).astype(np.float32)
