"""Evaluation: predictions against truth boxes (voxel metrics, P(k), r(k), one-point, cross matrix).

``evaluate(truth_paths, {label: paths}, out_dir)`` writes metrics.json, PNG figures and
report.html; ``compute`` returns the metrics without writing. See docs/evaluation.md.
"""

from galaxygen.evaluate.inputs import Prediction, group_prediction, parse_pred_spec, read_truth
from galaxygen.evaluate.metrics import box_stats, combine, k_nyquist, pool, summary
from galaxygen.evaluate.pipeline import (HEADLINE_KEYS, compute, cross_matrices, evaluate, headline, headline_text,
                                         versus_baseline, versus_baseline_text)

__all__ = ["HEADLINE_KEYS", "Prediction", "box_stats", "combine", "compute", "cross_matrices", "evaluate",
           "group_prediction", "headline", "headline_text", "k_nyquist", "parse_pred_spec", "pool", "read_truth",
           "summary", "versus_baseline", "versus_baseline_text"]
