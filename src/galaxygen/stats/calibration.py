"""Calibration of an ensemble of samples against the truth: rank histograms (PIT) and their χ².

For each element (voxel) the truth's rank among S samples, r = #{samples < truth} + a uniform
integer in [0, #{samples == truth}] (random tie-breaking, the randomised PIT of discrete
variables: Czado, Gneiting & Held 2009, doi:10.1111/j.1541-0420.2009.01191.x), lies in 0..S. If
truth and samples are exchangeable draws of the same distribution, r is uniform on 0..S
(Hamill 2001, doi:10.1175/1520-0493(2001)129<0550:IORHFV>2.0.CO;2): a U-shaped histogram means
under-dispersed (over-confident) samples, a hump over-dispersed ones, a slope a bias.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class RankHistogram:
    """Counts of the truth's rank 0..S, the χ² against uniform, its degrees of freedom (S) and p-value."""

    counts: list[int]
    chi2: float
    dof: int
    p_value: float

    def as_dict(self) -> dict:
        return {"counts": self.counts, "chi2": self.chi2, "dof": self.dof, "p_value": self.p_value}


def truth_ranks(truth: np.ndarray, samples: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rank (int, shape of `truth`) of each truth value among `samples` (S, *truth.shape), ties broken
    uniformly at random with `rng`."""
    t = np.asarray(truth)
    s = np.asarray(samples)
    if s.shape[1:] != t.shape:
        raise ValueError(f"samples {s.shape} do not match truth {t.shape} after the sample axis")
    below = (s < t).sum(axis=0)
    ties = (s == t).sum(axis=0)
    return below + np.floor(rng.random(t.shape) * (ties + 1)).astype(np.int64)


def rank_histogram(ranks: np.ndarray, n_samples: int) -> RankHistogram:
    """Histogram of ranks 0..S and Pearson's χ² against the uniform distribution (S degrees of freedom)."""
    r = np.asarray(ranks).ravel()
    counts = np.bincount(r, minlength=n_samples + 1)[: n_samples + 1]
    expected = r.size / (n_samples + 1)
    chi2 = float(((counts - expected) ** 2).sum() / expected) if r.size else float("nan")
    return RankHistogram([int(c) for c in counts], chi2, int(n_samples),
                         float(stats.chi2.sf(chi2, n_samples)) if r.size else float("nan"))
