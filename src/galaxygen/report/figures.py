"""PNG figures of an evaluation (matplotlib, Agg, no pyplot state), each written atomically.

Figures: DM / truth / prediction slices side by side; P(k) with a ratio panel; r(k); the
one-point PDF; the cross-prediction matrices. Predictions with several realisations are drawn as
their mean with the 16-84 % band.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from galaxygen.io import atomic_path, check_writable

FIGURE_FILES = {"slices": "slices.png", "power": "power.png", "correlation": "correlation.png",
                "one_point": "one_point.png", "cross_matrix": "cross_matrix.png"}
DPI = 110


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def save(fig, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write `fig` as PNG to `path` atomically; returns the path."""
    with atomic_path(path, overwrite=overwrite) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    return Path(path)


def _colors(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return [cmap(i % 10) for i in range(n)]


def slices_figure(slabs: Mapping[str, Mapping[str, Any]]):
    """One row per prediction: DM, truth galaxies, predicted galaxies (projected slab, log colour)."""
    from matplotlib.colors import LogNorm

    labels = list(slabs)
    fig = _figure(10.5, 3.3 * max(1, len(labels)))
    axes = fig.subplots(max(1, len(labels)), 3, squeeze=False)
    for row, label in enumerate(labels):
        s = slabs[label]
        gal_max = max(float(s["truth"].max()), float(s["pred"].max()), 1.0)
        panels = (("dm", f"DM  ({s['name']})", "Greys", max(float(s["dm"].max()), 1.0)),
                  ("truth", f"truth galaxies ({s['suite']})", "magma", gal_max),
                  ("pred", f"prediction: {label}", "magma", gal_max))
        for col, (key, title, cmap, vmax) in enumerate(panels):
            ax = axes[row, col]
            im = ax.imshow(s[key].T + 1.0, origin="lower", cmap=cmap, norm=LogNorm(vmin=1.0, vmax=vmax + 1.0),
                           interpolation="nearest")
            ax.set_title(title, fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
            fig.colorbar(im, ax=ax, shrink=0.8, label="1 + count in slab")
    fig.suptitle(f"projected slabs of {next(iter(slabs.values()))['thickness']:.3g} Mpc/h" if slabs else "")
    return fig


def _band(ax, k, res, key, color, label):
    p = res["power"]
    y = np.asarray(p[key], dtype=float)
    ax.plot(k, y, color=color, label=label)
    if res["realisations"] > 1:
        ax.fill_between(k, np.asarray(p[f"{key}_p16"], float), np.asarray(p[f"{key}_p84"], float),
                        color=color, alpha=0.25, lw=0)


def _k_limit(ax, metrics):
    ax.axvline(metrics["truth"]["k_limit"], color="0.6", ls=":", lw=1)


def power_figure(metrics: Mapping[str, Any]):
    """P(k) of truth and predictions (top) and P_pred / P_true (bottom); dotted: half Nyquist."""
    preds = metrics["predictions"]
    fig = _figure(6.5, 6.0)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    colors = _colors(len(preds))
    truths: dict[tuple, Mapping[str, Any]] = {}  # one truth curve per set of tested-on suites
    for res in preds.values():
        truths.setdefault(tuple(res["tested_on"]), res)
    for i, (suites, res) in enumerate(truths.items()):
        label = "truth" if len(truths) == 1 else f"truth ({', '.join(suites)})"
        top.loglog(np.asarray(res["power"]["k"], float), np.asarray(res["power"]["p_true"], float), color="k",
                   lw=2, ls=("-", "--", ":", "-.")[i % 4], label=label)
    first = next(iter(truths.values()))
    shot = first["power"].get("shot_noise_true")
    if shot is not None and np.isfinite(shot):
        top.axhline(shot, color="0.5", ls="--", lw=1, label="truth shot noise $1/\\bar n$")
    for c, (label, res) in zip(colors, preds.items()):
        k = np.asarray(res["power"]["k"], float)
        _band(top, k, res, "p_pred", c, label)
        _band(bottom, k, res, "ratio", c, label)
    bottom.axhline(1.0, color="k", lw=1)
    ratios = np.concatenate([np.asarray(r["power"]["ratio"], float) for r in preds.values()])
    ratios = ratios[np.isfinite(ratios) & (ratios > 0)]
    if ratios.size and (ratios.max() > 3 or ratios.min() < 1 / 3):
        bottom.set_yscale("log")
    for ax in (top, bottom):
        _k_limit(ax, metrics)
    top.set_ylabel(r"$P(k)$ [$(h^{-1}\mathrm{Mpc})^3$]")
    bottom.set_ylabel(r"$P_\mathrm{pred}/P_\mathrm{true}$")
    bottom.set_xlabel(r"$k$ [$h\,\mathrm{Mpc}^{-1}$]")
    bottom.set_xscale("log")
    top.legend(fontsize=8, loc="upper right")
    return fig


def correlation_figure(metrics: Mapping[str, Any]):
    """Cross-correlation coefficient r(k) of each prediction with the truth."""
    preds = metrics["predictions"]
    fig = _figure(6.5, 4.0)
    ax = fig.subplots()
    for c, (label, res) in zip(_colors(len(preds)), preds.items()):
        _band(ax, np.asarray(res["power"]["k"], float), res, "r", c, label)
    ax.axhline(1.0, color="k", lw=1)
    _k_limit(ax, metrics)
    ax.set_xscale("log")
    ax.set_xlabel(r"$k$ [$h\,\mathrm{Mpc}^{-1}$]")
    ax.set_ylabel(r"$r(k) = P_\times / \sqrt{P_\mathrm{pred} P_\mathrm{true}}$")
    ax.legend(fontsize=8, loc="upper right")
    return fig


def one_point_figure(metrics: Mapping[str, Any]):
    """Fraction of voxels holding 0, 1, 2, ... galaxies (prediction rounded to counts)."""
    preds = metrics["predictions"]
    fig = _figure(6.5, 4.0)
    ax = fig.subplots()
    first = next(iter(preds.values()))["one_point"]
    ax.step(first["counts"], first["truth"], where="mid", color="k", lw=2, label="truth")
    for c, (label, res) in zip(_colors(len(preds)), preds.items()):
        one = res["one_point"]
        x = np.asarray(one["counts"], float)
        ax.step(x, one["pred"], where="mid", color=c, label=label)
        if res["realisations"] > 1:
            ax.fill_between(x, one["pred_p16"], one["pred_p84"], step="mid", color=c, alpha=0.25, lw=0)
    ax.set_yscale("log")
    ax.set_xlabel("galaxies per voxel")
    ax.set_ylabel("fraction of voxels")
    ax.legend(fontsize=8, loc="upper right")
    return fig


def cross_matrix_figure(matrices: Mapping[str, Mapping[str, Any]]):
    """Per model family: heat maps of F1 and of min r(k) (rows trained on, columns tested on)."""
    fig = _figure(9.0, 3.6 * len(matrices))
    axes = fig.subplots(len(matrices), 2, squeeze=False)
    for row, (fam, m) in enumerate(matrices.items()):
        for col, key, title in ((0, "f1", "F1"), (1, "min_r", "min r(k), k < k_Nyq/2")):
            ax = axes[row, col]
            data = np.array([[np.nan if v is None else v for v in r] for r in m[key]], dtype=float)
            im = ax.imshow(data, cmap="viridis", vmin=0.0, vmax=1.0)
            for (i, j), v in np.ndenumerate(data):
                ax.text(j, i, "—" if np.isnan(v) else f"{v:.3f}", ha="center", va="center",
                        color="w" if np.isnan(v) or v < 0.6 else "k")
            ax.set_xticks(range(len(m["cols_tested_on"])), m["cols_tested_on"])
            ax.set_yticks(range(len(m["rows_trained_on"])), m["rows_trained_on"])
            ax.set_xlabel("tested on")
            ax.set_ylabel("trained on")
            ax.set_title(f"{fam}: {title}", fontsize=10)
            fig.colorbar(im, ax=ax, shrink=0.8)
    return fig


def write_all(metrics: Mapping[str, Any], slabs: Mapping[str, Mapping[str, Any]], out_dir: str | os.PathLike,
              *, overwrite: bool = False) -> dict[str, Path]:
    """Write every figure that applies into `out_dir`; returns {figure key: path}."""
    out_dir = Path(out_dir)
    makers = {"slices": lambda: slices_figure(slabs), "power": lambda: power_figure(metrics),
              "correlation": lambda: correlation_figure(metrics), "one_point": lambda: one_point_figure(metrics)}
    if metrics.get("cross_matrix"):
        makers["cross_matrix"] = lambda: cross_matrix_figure(metrics["cross_matrix"])
    for key in makers:
        check_writable(out_dir / FIGURE_FILES[key], overwrite)
    return {key: save(make(), out_dir / FIGURE_FILES[key], overwrite=overwrite) for key, make in makers.items()}
