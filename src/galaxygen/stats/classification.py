"""Voxel metrics of predicted vs true galaxy fields, and one-point statistics.

A voxel is occupied when its count is > 0. Metrics are pooled over all voxels of all boxes
(docs/statistics.md, "Voxel metrics"): accuracy (TP+TN)/all, precision TP/(TP+FP), recall TP/(TP+FN),
F1 = 2 P R / (P + R). Undefined ratios (0/0) are NaN, never silently 0 or 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from galaxygen.errors import GalaxygenError


def _ratio(num: int, den: int) -> float:
    return num / den if den else float("nan")


@dataclass(frozen=True)
class VoxelMetrics:
    """Confusion counts of occupied (> 0) voxels; summable with ``+`` to pool boxes."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def __add__(self, other: "VoxelMetrics") -> "VoxelMetrics":
        return VoxelMetrics(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn, self.tn + other.tn)

    @property
    def total(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

    @property
    def accuracy(self) -> float:
        return _ratio(self.tp + self.tn, self.total)

    @property
    def precision(self) -> float:
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float:
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> float:
        return _ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn)

    def as_dict(self) -> dict:
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn, "tn": self.tn, "accuracy": self.accuracy,
                "precision": self.precision, "recall": self.recall, "f1": self.f1}


def _numpy(x, name: str) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def voxel_metrics(pred, truth) -> VoxelMetrics:
    """Confusion counts of occupied voxels (count > 0) of `pred` against `truth` (same shape)."""
    p, t = _numpy(pred, "pred") > 0, _numpy(truth, "truth") > 0
    if p.shape != t.shape:
        raise GalaxygenError(f"voxel metrics: shapes differ, prediction {p.shape} vs truth {t.shape}")
    tp = int(np.count_nonzero(p & t))
    fp = int(np.count_nonzero(p)) - tp
    fn = int(np.count_nonzero(t)) - tp
    return VoxelMetrics(tp=tp, fp=fp, fn=fn, tn=int(p.size) - tp - fp - fn)


def pooled(pairs: Iterable[tuple[object, object]]) -> VoxelMetrics:
    """Voxel metrics pooled over (prediction, truth) pairs of many boxes."""
    total = VoxelMetrics()
    for pred, truth in pairs:
        total = total + voxel_metrics(pred, truth)
    return total


def one_point(field, max_count: int | None = None) -> np.ndarray:
    """Histogram of counts per voxel: entry c = number of voxels holding c galaxies.

    Counts are rounded to integers; with `max_count`, the last entry gathers all counts ≥ max_count.
    """
    c = np.rint(_numpy(field, "field")).astype(np.int64).ravel()
    if c.size and c.min() < 0:
        raise GalaxygenError("one-point histogram: negative counts")
    hist = np.bincount(c, minlength=(max_count + 1) if max_count is not None else 1)
    if max_count is not None and len(hist) > max_count + 1:
        hist = np.concatenate([hist[:max_count], [hist[max_count:].sum()]])
    return hist


def total_count(field) -> float:
    """Sum of a count field (float64)."""
    return float(_numpy(field, "field").sum(dtype=np.float64))
