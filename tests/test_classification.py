"""Voxel metrics and one-point statistics on hand-made cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from galaxygen.stats.classification import VoxelMetrics, one_point, pooled, total_count, voxel_metrics


def test_hand_made_confusion():
    truth = np.array([0, 0, 1, 2, 0, 3, 0, 0], dtype=np.float32)
    pred = np.array([0, 1, 1, 0, 0, 2, 0, 0.5], dtype=np.float32)
    m = voxel_metrics(pred, truth)
    assert (m.tp, m.fp, m.fn, m.tn) == (2, 2, 1, 3)
    assert m.accuracy == pytest.approx(5 / 8)
    assert m.precision == pytest.approx(2 / 4)
    assert m.recall == pytest.approx(2 / 3)
    assert m.f1 == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))


def test_perfect_and_empty_predictions():
    truth = np.zeros((4, 4, 4), dtype=np.float32)
    truth[1, 2, 3] = 2
    m = voxel_metrics(truth, truth)
    assert m.precision == m.recall == m.f1 == m.accuracy == 1.0
    empty = voxel_metrics(np.zeros_like(truth), truth)
    assert empty.recall == 0.0 and math.isnan(empty.precision)


def test_pooling_is_over_voxels_not_boxes():
    t1, p1 = np.array([1, 0]), np.array([1, 0])          # perfect
    t2, p2 = np.array([1, 1, 1, 0]), np.array([0, 0, 1, 1])
    m = pooled([(p1, t1), (p2, t2)])
    assert m == VoxelMetrics(tp=2, fp=1, fn=2, tn=1)
    assert m.recall == pytest.approx(2 / 4)  # not the mean of per-box recalls (1 and 1/3)


def test_one_point_histogram_and_totals():
    f = np.array([0, 0, 1, 1, 1, 2, 5, 7], dtype=np.float32)
    np.testing.assert_array_equal(one_point(f), [2, 3, 1, 0, 0, 1, 0, 1])
    np.testing.assert_array_equal(one_point(f, max_count=3), [2, 3, 1, 2])
    assert one_point(f).sum() == f.size
    assert total_count(f) == 17.0


def test_shape_mismatch_is_an_error():
    from galaxygen.errors import GalaxygenError
    with pytest.raises(GalaxygenError, match="shapes differ"):
        voxel_metrics(np.zeros(3), np.zeros(4))
