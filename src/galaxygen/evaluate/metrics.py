"""Metrics of one prediction against its truth: per box, pooled over boxes, spread over realisations.

Statistics (docs/evaluation.md, "What is measured"): voxel metrics with occupied = count > 0, pooled over all
voxels of the test boxes, also of the classifier mask where a prediction stores its expected counts
(``fields/galaxy_rate`` > 0: the voxels a realisation can populate, against the truth's occupancy); P(k) of delta = n / n_mean - 1 with the NGP window deconvolved (count
fields painted on the grid), cross-power and r(k) = P_xy / sqrt(P_xx P_yy) (Pylians XPk
conventions), all through `galaxygen.stats`; the one-point histogram of counts per voxel (a
continuous prediction is rounded to the nearest count); total galaxies. Spectra are averaged over
boxes before the ratio and r(k) are formed. Several realisations of one prediction give the mean
and the 16-84 % band of every number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from galaxygen.stats.classification import VoxelMetrics, one_point, voxel_metrics
from galaxygen.stats.power import cross_power, nyquist

SCHEME = "ngp"  # count fields: one object -> one voxel
BAND = (16.0, 84.0)  # percentiles of the realisation spread
ONE_POINT_MAX = 64  # the one-point histogram's last bin gathers voxels with >= this many galaxies


@dataclass(frozen=True)
class BoxStats:
    """Raw statistics of one prediction box against its truth box.

    k [h/Mpc], n_modes, p_ab / p_pred / p_true [(Mpc/h)^3] share one binning; hist_* are counts
    of voxels holding 0, 1, 2, ... galaxies; shot_noise_* = L^3 / N_gal [(Mpc/h)^3] (not subtracted).
    """

    voxels: VoxelMetrics
    pred_total: float
    truth_total: float
    k: np.ndarray
    n_modes: np.ndarray
    p_ab: np.ndarray
    p_pred: np.ndarray
    p_true: np.ndarray
    hist_pred: np.ndarray
    hist_true: np.ndarray
    shot_noise_pred: float = float("nan")
    shot_noise_true: float = float("nan")
    mask: VoxelMetrics | None = None  # galaxy_rate > 0 against truth > 0 (None: no galaxy_rate)


def _histogram(field: np.ndarray) -> np.ndarray:
    """Voxels holding 0, 1, ..., ONE_POINT_MAX (and more, in the last bin) galaxies (rounded)."""
    top = float(np.rint(np.max(field))) if np.size(field) else 0.0
    return np.asarray(one_point(field, int(min(max(top, 1.0), ONE_POINT_MAX))), dtype=np.float64)


def box_stats(pred: np.ndarray, truth: np.ndarray, box_size: float, *, rate: np.ndarray | None = None) -> BoxStats:
    """Statistics of a prediction grid against a truth grid, both (N, N, N) counts per voxel.

    Parameters
    ----------
    pred, truth : ndarray (N, N, N)
        Galaxies per voxel (the prediction may be non-integer).
    box_size : float
        Side of the periodic box [Mpc/h].
    rate : ndarray (N, N, N) or None
        The prediction's expected counts (``fields/galaxy_rate``): its support (> 0), the classifier
        mask, is scored against the truth's occupied voxels (``mask``).
    """
    pred = np.asarray(pred, dtype=np.float32)
    truth = np.asarray(truth, dtype=np.float32)
    if pred.shape != truth.shape:
        raise ValueError(f"prediction grid {pred.shape} differs from truth grid {truth.shape}")
    if truth.sum() <= 0:
        raise ValueError("the truth box holds no galaxies: P(k) of delta = n / n_mean - 1 is undefined")
    if pred.sum() > 0:
        cp = cross_power(pred, truth, box_size, scheme=SCHEME)
        p_ab, p_pred, p_true = cp.p_ab, cp.p_aa, cp.p_bb
    else:  # an empty prediction has no density contrast: its spectra are undefined
        cp = cross_power(truth, truth, box_size, scheme=SCHEME)
        p_true = cp.p_aa
        p_ab = p_pred = np.full_like(np.asarray(p_true, dtype=np.float64), np.nan)
    shot = lambda total: box_size ** 3 / total if total > 0 else float("nan")  # noqa: E731
    as_np = lambda a: np.asarray(a.detach().cpu() if hasattr(a, "detach") else a, dtype=np.float64)  # noqa: E731
    return BoxStats(voxels=voxel_metrics(pred, truth), pred_total=float(pred.sum(dtype=np.float64)),
                    truth_total=float(truth.sum(dtype=np.float64)), k=as_np(cp.k), n_modes=as_np(cp.n_modes),
                    p_ab=as_np(p_ab), p_pred=as_np(p_pred), p_true=as_np(p_true),
                    hist_pred=_histogram(pred), hist_true=_histogram(truth),
                    shot_noise_pred=shot(float(pred.sum(dtype=np.float64))),
                    shot_noise_true=shot(float(truth.sum(dtype=np.float64))),
                    mask=None if rate is None else voxel_metrics(np.asarray(rate) > 0, truth))


def _pad_sum(hists: Sequence[np.ndarray], length: int) -> np.ndarray:
    out = np.zeros(length)
    for h in hists:
        out[: len(h)] += h
    return out


def pool(stats: Sequence[BoxStats]) -> dict[str, Any]:
    """Pool the statistics of one realisation over its boxes.

    Voxel confusion counts and totals are summed, spectra averaged over boxes (then ratio =
    P_pred / P_true and r = P_ab / sqrt(P_pred P_true)), histograms summed and normalised.
    """
    if not stats:
        raise ValueError("nothing to pool")
    vm = stats[0].voxels
    for s in stats[1:]:
        vm = vm + s.voxels
    p_ab = np.mean([s.p_ab for s in stats], axis=0)
    p_pred = np.mean([s.p_pred for s in stats], axis=0)
    p_true = np.mean([s.p_true for s in stats], axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = p_pred / p_true
        r = p_ab / np.sqrt(p_pred * p_true)
    length = max(max(len(s.hist_pred), len(s.hist_true)) for s in stats)
    hp, ht = _pad_sum([s.hist_pred for s in stats], length), _pad_sum([s.hist_true for s in stats], length)
    pred_total = sum(s.pred_total for s in stats)
    truth_total = sum(s.truth_total for s in stats)
    masks = [s.mask for s in stats]
    extra = {}
    if all(m is not None for m in masks):  # the classifier mask's table, when every box stores its rates
        total = masks[0]
        for m in masks[1:]:
            total = total + m
        extra["mask_classification"] = {k: float(v) for k, v in total.as_dict().items()}
    return {**extra,
        "classification": {k: float(v) for k, v in vm.as_dict().items()},
        "galaxies": {"pred_total": pred_total, "truth_total": truth_total,
                     "ratio": pred_total / truth_total if truth_total else float("nan")},
        "power": {"k": stats[0].k, "n_modes": stats[0].n_modes, "p_true": p_true, "p_pred": p_pred,
                  "p_cross": p_ab, "ratio": ratio, "r": r,
                  "shot_noise_true": float(np.mean([s.shot_noise_true for s in stats])),
                  "shot_noise_pred": float(np.mean([s.shot_noise_pred for s in stats]))},
        "one_point": {"truth": ht / ht.sum(), "pred": hp / hp.sum()},
    }


def _band(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    values = np.asarray(values, dtype=np.float64)
    lo, hi = np.percentile(values, BAND, axis=0)
    return values.mean(axis=0), lo, hi


def combine(pooled: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean and 16-84 % band over realisations of `pool` outputs (one realisation: band = value).

    Scalars become their mean with ``<section>_band`` = {key: [p16, p84]}; curves get ``<key>``
    (mean), ``<key>_p16`` and ``<key>_p84``. Confusion counts are realisation means.
    """
    out: dict[str, Any] = {"realisations": len(pooled)}
    if "mask_classification" in pooled[0]:  # the same expected counts behind every realisation
        out["mask_classification"] = pooled[0]["mask_classification"]
    for section in ("classification", "galaxies"):
        keys = pooled[0][section].keys()
        mean, band = {}, {}
        for key in keys:
            m, lo, hi = _band([p[section][key] for p in pooled])
            mean[key], band[key] = float(m), [float(lo), float(hi)]
        out[section], out[f"{section}_band"] = mean, band
    first = pooled[0]["power"]
    power = {key: first[key] for key in ("k", "n_modes", "p_true", "shot_noise_true")}
    power["shot_noise_pred"] = float(np.mean([p["power"]["shot_noise_pred"] for p in pooled]))
    for key in ("p_pred", "p_cross", "ratio", "r"):
        power[key], power[f"{key}_p16"], power[f"{key}_p84"] = _band([p["power"][key] for p in pooled])
    out["power"] = power
    length = max(len(p["one_point"]["pred"]) for p in pooled)
    pad = lambda a: np.pad(a, (0, length - len(a)))  # noqa: E731
    one = {"counts": np.arange(length), "truth": pad(pooled[0]["one_point"]["truth"])}
    one["pred"], one["pred_p16"], one["pred_p84"] = _band([pad(p["one_point"]["pred"]) for p in pooled])
    out["one_point"] = one
    if len(pooled) > 1:
        out["per_realisation"] = [{"classification": p["classification"], "galaxies": p["galaxies"]}
                                  for p in pooled]
    return out


def summary(result: dict[str, Any], k_limit: float) -> dict[str, float]:
    """Headline numbers of a `combine` result, over bins with 0 < k < `k_limit` [h/Mpc].

    ``max_abs_ratio_dev`` = worst |P_pred/P_true - 1|, ``min_r`` = lowest r(k), with the k where
    they occur; ``mean_r``; voxel accuracy, precision, recall, F1; total galaxies ratio.
    """
    pw = result["power"]
    k = np.asarray(pw["k"])
    sel = k_below(k, k_limit)
    dev = np.abs(np.asarray(pw["ratio"])[sel] - 1.0)
    r = np.asarray(pw["r"])[sel]
    ks = k[sel]
    finite_dev, finite_r = np.isfinite(dev), np.isfinite(r)
    out = {"k_limit": float(k_limit), "n_k_bins": int(sel.sum())}
    if finite_dev.any():
        i = int(np.nanargmax(np.where(finite_dev, dev, -np.inf)))
        out.update(max_abs_ratio_dev=float(dev[i]), k_at_max_ratio_dev=float(ks[i]))
    else:
        out.update(max_abs_ratio_dev=float("nan"), k_at_max_ratio_dev=float("nan"))
    if finite_r.any():
        j = int(np.nanargmin(np.where(finite_r, r, np.inf)))
        out.update(min_r=float(r[j]), k_at_min_r=float(ks[j]), mean_r=float(r[finite_r].mean()))
    else:
        out.update(min_r=float("nan"), k_at_min_r=float("nan"), mean_r=float("nan"))
    cl = result["classification"]
    out.update({key: float(cl[key]) for key in ("accuracy", "precision", "recall", "f1")})
    out["total_ratio"] = float(result["galaxies"]["ratio"])
    return out


def k_below(k: np.ndarray, k_limit: float) -> np.ndarray:
    """The bins the summary numbers are taken over: 0 < k < `k_limit` [h/Mpc] (bool mask of `k`)."""
    return (k > 0) & (k < k_limit)


def k_nyquist(grid: int, box_size: float) -> float:
    """Nyquist wavenumber pi N / L [h/Mpc] of an N^3 grid in a box of side L [Mpc/h]."""
    return float(nyquist(grid, box_size))
