"""PNG figures of an evaluation (matplotlib, Agg, no pyplot state), each written atomically.

Figures: galaxies as points over the projected DM slab, truth and predictions side by side; P(k)
with a ratio panel; r(k); the one-point PDF; the cross-prediction matrices; for a parameter sweep,
its slabs (truth and prediction at each value) and its P(k); for stochastic predictions (several
realisations), the same slab in several of their samples. Spectra are drawn up
to the grid's Nyquist wavenumber. Predictions with several realisations are drawn as their mean
with the 16-84 % band; an empty prediction (no galaxies) is named on the figure instead of drawn.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from galaxygen.io import atomic_path, check_writable

FIGURE_FILES = {"slices": "slices.png", "power": "power.png", "correlation": "correlation.png",
                "one_point": "one_point.png", "cross_matrix": "cross_matrix.png",
                "sweep_slices": "sweep_slices.png", "sweep_power": "sweep_power.png", "samples": "samples.png"}
DPI = 110
MAX_COLUMNS = 4  # panels per row of the slab figure
K_LABEL = r"$k$ [$h\,\mathrm{Mpc}^{-1}$] (up to $k_\mathrm{Nyq}$; dotted: $k_\mathrm{Nyq}/2$)"


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


# ------------------------------------------------------------------------------------------ slabs

def _panel_rows(slabs: Mapping[str, Mapping[str, Any]]) -> list[list[tuple[str, str | None]]]:
    """Rows of panels ``(label whose slab is drawn, prediction label or None for the truth)``: per
    truth box its truth, then every prediction shown on that box, at most MAX_COLUMNS to a row."""
    boxes: dict[tuple[str, str], list[str]] = {}
    for label, s in slabs.items():
        boxes.setdefault((s["suite"], s["name"]), []).append(label)
    rows = []
    for labels in boxes.values():
        panels = [(labels[0], None)] + [(label, label) for label in labels]
        rows += [panels[i:i + MAX_COLUMNS] for i in range(0, len(panels), MAX_COLUMNS)]
    return rows


def _galaxy_norm(values: np.ndarray):
    """One colour scale for the galaxies of every panel: linear from the smallest to the largest
    positive column value, logarithmic when they span more than a factor 30 (e.g. stellar mass)."""
    from matplotlib.colors import LogNorm, Normalize

    lo, hi = (float(values.min()), float(values.max())) if values.size else (1.0, 1.0)
    if hi > 30 * lo:
        return LogNorm(lo, hi)
    return Normalize(lo, hi if hi > lo else lo + 1.0)


def _amount(x: float) -> str:
    return f"{x:.0f}" if float(x).is_integer() else f"{x:.3g}"


def slices_figure(slabs: Mapping[str, Mapping[str, Any]], totals: Mapping[str, float] | None = None):
    """Galaxies as points over the projected DM slab: per truth box the truth, then each prediction
    (titled by its label).

    Parameters
    ----------
    slabs : prediction label -> dict(name, suite, dm, truth, pred, thickness, box_size): (N, N)
        sums along z over the slab of DM particles, true and predicted galaxies; the slab's
        thickness and the box side [Mpc/h] (`galaxygen.evaluate.pipeline.collect`).
    totals : prediction label -> galaxies in the whole prediction; 0 marks an empty prediction
        on its panel (without it, only a slab without galaxies is noted).

    Axes in Mpc/h; one colour scale for DM and one for galaxies, shared by every panel. A point
    is a column of the slab holding galaxies (at its centre), coloured by how many it holds.
    """
    from matplotlib.colors import LogNorm

    totals = totals or {}
    rows = _panel_rows(slabs)
    ncols = max((len(r) for r in rows), default=1)
    fig = _figure(2.6 * ncols + 1.9, 3.3 * max(1, len(rows)) + 0.4)
    axes = fig.subplots(max(1, len(rows)), ncols, squeeze=False)
    if not slabs:
        return fig
    first = next(iter(slabs.values()))
    n, size, thickness = first["dm"].shape[0], float(first["box_size"]), float(first["thickness"])
    dm_max = max(float(np.max(s["dm"])) for s in slabs.values())
    dm_norm = LogNorm(1.0, 1.0 + max(dm_max, 1.0))
    gal_all = np.concatenate([np.ravel(s[key]) for s in slabs.values() for key in ("truth", "pred")])
    gal_norm = _galaxy_norm(gal_all[gal_all > 0])
    marker = min(max(3.0, 1.5 * 2.2 * 72 / n), 7.0) ** 2  # [points^2]: ~1.5 pixels across, 3 to 7 points
    centres = (np.arange(n) + 0.5) * size / n
    dm_image = points = None
    for ax_row, row in zip(axes, rows):
        for ax, (slab_of, label) in zip(ax_row, row):
            s = slabs[slab_of]
            gal = np.asarray(s["truth"] if label is None else s["pred"])
            dm_image = ax.imshow(np.asarray(s["dm"]).T + 1.0, origin="lower", extent=(0, size, 0, size),
                                 cmap="Greys", norm=dm_norm, interpolation="nearest")
            i, j = np.nonzero(gal > 0)
            order = np.argsort(gal[i, j], kind="stable")  # the fullest columns drawn last, on top
            i, j = i[order], j[order]
            if i.size:
                points = ax.scatter(centres[i], centres[j], c=gal[i, j], cmap="autumn", norm=gal_norm, s=marker,
                                    edgecolors="k", linewidths=0.4)
            in_slab = float(gal.sum())
            title = f"truth: {s['name']} ({s['suite']})" if label is None else label
            ax.set_title(f"{title}\n{_amount(in_slab)} galaxies in the slab", fontsize=8)
            if label is not None:
                note = ("empty prediction:\n0 galaxies in all its boxes" if totals.get(label) == 0
                        else "no galaxies in this slab" if in_slab == 0 else None)
                if note:
                    ax.text(0.5, 0.5, note, transform=ax.transAxes, ha="center", va="center", fontsize=10,
                            color="C3", bbox=dict(boxstyle="round", fc="w", ec="C3", alpha=0.9))
            ax.set_xlabel(r"$x$ [$h^{-1}$Mpc]", fontsize=8)
            ax.set_ylabel(r"$y$ [$h^{-1}$Mpc]", fontsize=8)
            ax.tick_params(labelsize=7)
        for ax in ax_row[len(row):]:
            ax.set_visible(False)
    shown = [ax for ax in axes.flat if ax.get_visible()]
    shrink = min(0.8, 2.4 / (len(rows) + 1.5))  # colour bars about one row tall
    fig.colorbar(dm_image, ax=shown, shrink=shrink, label="1 + DM particles in the column")
    if points is not None:
        fig.colorbar(points, ax=shown, shrink=shrink, label="galaxies in the column (points)")
    fig.suptitle(f"Projected slab $0 \\leq z < {thickness:.3g}\\,h^{{-1}}$Mpc ({round(thickness * n / size)} of "
                 f"{n} voxels) of a {size:g} $h^{{-1}}$Mpc box: DM (grey) and galaxies (points)", fontsize=10)
    return fig


def sample_slabs(slabs: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The slabs of `slices_figure` for the samples figure: per prediction with several realisations,
    its truth then each kept realisation (``"<label>, sample <r>"``), one row group per prediction."""
    out: dict[str, dict[str, Any]] = {}
    for label, s in slabs.items():
        samples = s.get("samples") or {}
        if len(samples) < 2:
            continue
        for r, pred in samples.items():
            out[f"{label}, sample {r}"] = {**s, "pred": pred, "suite": f"{s['suite']}; {label}"}
    return out


def samples_figure(slabs: Mapping[str, Mapping[str, Any]]):
    """The spread of stochastic predictions: per prediction with several realisations, the truth's slab
    and the same slab in each of its kept samples (`sample_slabs`), drawn like `slices_figure`."""
    return slices_figure(sample_slabs(slabs))


# --------------------------------------------------------------------------------------- spectra

def _up_to_nyquist(k, metrics: Mapping[str, Any]) -> np.ndarray:
    """Bins with k <= the grid's Nyquist wavenumber (bool mask): beyond it only the corners of the
    grid's k cube are left, all aliased."""
    return np.asarray(k, float) <= metrics["truth"]["k_nyquist"] * (1 + 1e-9)


def _band(ax, k, res, key, color, label, sel):
    p = res["power"]
    ax.plot(k[sel], np.asarray(p[key], dtype=float)[sel], color=color, label=label)
    if res["realisations"] > 1:
        ax.fill_between(k[sel], np.asarray(p[f"{key}_p16"], float)[sel], np.asarray(p[f"{key}_p84"], float)[sel],
                        color=color, alpha=0.25, lw=0)


def _curves(ax, metrics: Mapping[str, Any], key: str, bottom=None, bottom_key: str = "") -> list[str]:
    """Each prediction's `key` curve (and `bottom_key` on `bottom`) up to k_Nyq; returns the empty
    predictions (no finite value), which get no line: see `_legend`."""
    preds = metrics["predictions"]
    empty = []
    for color, (label, res) in zip(_colors(len(preds)), preds.items()):
        k = np.asarray(res["power"]["k"], float)
        sel = _up_to_nyquist(k, metrics)
        if not np.isfinite(np.asarray(res["power"][key], float)[sel]).any():
            empty.append(label)
            continue
        _band(ax, k, res, key, color, label, sel)
        if bottom is not None:
            _band(bottom, k, res, bottom_key, color, label, sel)
    return empty


def _legend(ax, empty: list[str], loc: str) -> None:
    """The legend; empty predictions are named in its title (they have no line)."""
    title = f"not drawn, 0 galaxies (empty): {', '.join(empty)}" if empty else None
    if ax.get_legend_handles_labels()[0] or title:
        legend = ax.legend(fontsize=8, loc=loc, title=title, title_fontsize=8)
        legend.get_title().set_color("C3")


def _k_axis(ax, metrics: Mapping[str, Any]) -> None:
    """Log k axis ending at k_Nyq, ticks at 1, 2, 5 x 10^n written plainly; dotted: the summary
    limit k_Nyq/2."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.axvline(metrics["truth"]["k_limit"], color="0.6", ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_xlim(right=metrics["truth"]["k_nyquist"])
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def power_figure(metrics: Mapping[str, Any]):
    """P(k) of truth and predictions (top) and P_pred / P_true (bottom) up to k_Nyq; dotted: k_Nyq/2."""
    preds = metrics["predictions"]
    fig = _figure(6.5, 6.0)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    truths: dict[tuple, Mapping[str, Any]] = {}  # one truth curve per set of tested-on suites
    for res in preds.values():
        truths.setdefault(tuple(res["tested_on"]), res)
    for i, (suites, res) in enumerate(truths.items()):
        label = "truth" if len(truths) == 1 else f"truth ({', '.join(suites)})"
        k = np.asarray(res["power"]["k"], float)
        sel = _up_to_nyquist(k, metrics)
        top.loglog(k[sel], np.asarray(res["power"]["p_true"], float)[sel], color="k", lw=2.5,
                   ls=("-", "--", ":", "-.")[i % 4], label=label)
    first = next(iter(truths.values()))
    shot = first["power"].get("shot_noise_true")
    if shot is not None and np.isfinite(shot):
        top.axhline(shot, color="0.5", ls="--", lw=1, label="truth shot noise $1/\\bar n$")
    empty = _curves(top, metrics, "p_pred", bottom, "ratio")
    bottom.axhline(1.0, color="k", lw=1)
    ratios = np.concatenate([np.asarray(r["power"]["ratio"], float)[_up_to_nyquist(r["power"]["k"], metrics)]
                             for r in preds.values()])
    ratios = ratios[np.isfinite(ratios) & (ratios > 0)]
    if ratios.size and (ratios.max() > 3 or ratios.min() < 1 / 3):
        bottom.set_yscale("log")
    for ax in (top, bottom):
        _k_axis(ax, metrics)
    top.set_ylabel(r"$P(k)$ [$(h^{-1}\mathrm{Mpc})^3$]")
    bottom.set_ylabel(r"$P_\mathrm{pred}/P_\mathrm{true}$")
    bottom.set_xlabel(K_LABEL)
    _legend(top, empty, "best")
    return fig


def correlation_figure(metrics: Mapping[str, Any]):
    """Cross-correlation coefficient r(k) of each prediction with the truth, up to k_Nyq."""
    fig = _figure(6.5, 4.0)
    ax = fig.subplots()
    empty = _curves(ax, metrics, "r")
    ax.axhline(1.0, color="k", lw=1)
    ax.axhline(0.0, color="0.6", lw=0.8)
    _k_axis(ax, metrics)
    ax.set_xlabel(K_LABEL)
    ax.set_ylabel(r"$r(k) = P_\times / \sqrt{P_\mathrm{pred} P_\mathrm{true}}$")
    _legend(ax, empty, "lower left")
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


# ------------------------------------------------------------------------------- cross prediction

MATRIX_PANELS = (("f1", "F1", "viridis", (0.0, 1.0)),
                 ("min_r", r"min $r(k)$, $k < k_\mathrm{Nyq}/2$", "RdBu", (-1.0, 1.0)))  # r < 0 in red


def _text_color(rgba) -> str:
    """Black on light cells, white on dark ones."""
    r, g, b = rgba[:3]
    return "k" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "w"


def cross_matrix_figure(matrices: Mapping[str, Mapping[str, Any]]):
    """Per model family: heat maps of F1 in [0, 1] and of min r(k) in [-1, 1] (rows trained on,
    columns tested on); a cell without a number (no prediction, or an empty one: r undefined) is
    grey with a dash."""
    from matplotlib import colormaps

    fig = _figure(9.0, 3.6 * len(matrices))
    axes = fig.subplots(len(matrices), 2, squeeze=False)
    for row, (fam, m) in enumerate(matrices.items()):
        for col, (key, title, cmap, (lo, hi)) in enumerate(MATRIX_PANELS):
            ax = axes[row, col]
            data = np.array([[np.nan if v is None else v for v in r] for r in m[key]], dtype=float)
            im = ax.imshow(data, cmap=colormaps[cmap].with_extremes(bad="0.8"), vmin=lo, vmax=hi)
            for (i, j), v in np.ndenumerate(data):
                ax.text(j, i, "—" if np.isnan(v) else f"{v:.3f}", ha="center", va="center",
                        color="k" if np.isnan(v) else _text_color(im.cmap(im.norm(v))))
            ax.set_xticks(range(len(m["cols_tested_on"])), m["cols_tested_on"])
            ax.set_yticks(range(len(m["rows_trained_on"])), m["rows_trained_on"])
            ax.set_xlabel("tested on")
            ax.set_ylabel("trained on")
            ax.set_title(f"{fam}: {title}", fontsize=10)
            fig.colorbar(im, ax=ax, shrink=0.8)
    return fig


def sweep_power_figure(sweep: Mapping[str, Any]):
    """A parameter sweep's P(k): truth (solid) and prediction (dashed) at each value, one colour per
    value (top), P_pred / P_true (bottom), up to k_Nyq; dotted: k_Nyq/2.

    `sweep`: ``galaxygen.evaluate.pipeline.sweep_metrics``'s metrics (entries with k, p_true, p_pred).
    """
    entries = sweep["entries"]
    fig = _figure(6.5, 6.0)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    axis = {"truth": {"k_nyquist": sweep["k_nyquist"], "k_limit": sweep["k_limit"]}}
    for color, e in zip(_colors(len(entries)), entries):
        k = np.asarray(e["k"], float)
        sel = _up_to_nyquist(k, axis) & (k > 0)
        p_true, p_pred = np.asarray(e["p_true"], float)[sel], np.asarray(e["p_pred"], float)[sel]
        label = f"{sweep['parameter']} = {e['value']:g}"
        top.loglog(k[sel], p_true, color=color, lw=2, label=f"truth, {label}")
        top.loglog(k[sel], p_pred, color=color, lw=1.5, ls="--", label=f"prediction, {label}")
        with np.errstate(divide="ignore", invalid="ignore"):
            bottom.plot(k[sel], p_pred / p_true, color=color, lw=1.5, ls="--")
    bottom.axhline(1.0, color="k", lw=1)
    for ax in (top, bottom):
        _k_axis(ax, axis)
    top.set_ylabel(r"$P(k)$ [$(h^{-1}\mathrm{Mpc})^3$]")
    bottom.set_ylabel(r"$P_\mathrm{pred}/P_\mathrm{true}$")
    bottom.set_xlabel(K_LABEL)
    top.legend(fontsize=7, loc="best")
    fig.suptitle(f"Parameter sweep: galaxy P(k) at {len(entries)} values of {sweep['parameter']}", fontsize=10)
    return fig


def write_all(metrics: Mapping[str, Any], slabs: Mapping[str, Mapping[str, Any]], out_dir: str | os.PathLike,
              *, overwrite: bool = False, sweep_slabs: Mapping[str, Mapping[str, Any]] | None = None
              ) -> dict[str, Path]:
    """Write every figure that applies into `out_dir`; returns {figure key: path}. With ``metrics["sweep"]``
    (and its `sweep_slabs`), also the sweep's slab and P(k) figures."""
    out_dir = Path(out_dir)
    totals = {label: res["galaxies"]["pred_total"] for label, res in metrics["predictions"].items()}
    makers = {"slices": lambda: slices_figure(slabs, totals), "power": lambda: power_figure(metrics),
              "correlation": lambda: correlation_figure(metrics), "one_point": lambda: one_point_figure(metrics)}
    if sample_slabs(slabs):
        makers["samples"] = lambda: samples_figure(slabs)
    if metrics.get("cross_matrix"):
        makers["cross_matrix"] = lambda: cross_matrix_figure(metrics["cross_matrix"])
    if metrics.get("sweep"):
        makers["sweep_slices"] = lambda: slices_figure(sweep_slabs or {})
        makers["sweep_power"] = lambda: sweep_power_figure(metrics["sweep"])
    for key in makers:
        check_writable(out_dir / FIGURE_FILES[key], overwrite)
    return {key: save(make(), out_dir / FIGURE_FILES[key], overwrite=overwrite) for key, make in makers.items()}
