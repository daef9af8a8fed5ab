"""report.html: the headline table, the figures and the cross-prediction matrices on one page."""

from __future__ import annotations

import html
import math
import os
from pathlib import Path
from typing import Any, Mapping

from galaxygen.io import write_text

COLUMNS = (("prediction", "prediction", "s"), ("model", "model", "s"), ("trained_on", "trained on", "s"),
           ("tested_on", "tested on", "s"), ("realisations", "realisations", "d"),
           ("accuracy", "accuracy", "p"), ("precision", "precision", "p"), ("recall", "recall", "p"),
           ("f1", "F1", "f"), ("total_ratio", "N<sub>gal</sub> pred / true", "f"),
           ("max_abs_ratio_dev", "max |P<sub>pred</sub>/P<sub>true</sub> − 1|", "f"),
           ("min_r", "min r(k)", "f"))
CAPTIONS = {
    "slices": "A projected slab of a test box: galaxies (points, coloured by their number in the column) "
              "over the DM input (grey), the truth and each prediction side by side; axes in Mpc/h.",
    "samples": "The spread of stochastic predictions: the same slab of the same test box in several "
               "samples (realisations) of each prediction that has more than one, beside the truth.",
    "power": "Galaxy power spectrum of truth and predictions (top) and their ratio (bottom) up to the grid "
             "Nyquist wavenumber; shaded: 16–84 % over realisations; dotted line: half the Nyquist wavenumber "
             "(the limit of the summary numbers).",
    "correlation": "Cross-correlation coefficient r(k) between prediction and truth, up to the Nyquist "
                   "wavenumber.",
    "one_point": "One-point distribution: fraction of voxels holding n galaxies.",
    "cross_matrix": "Cross prediction: rows = galaxy model trained on, columns = galaxy model tested on.",
    "sweep_slices": "Parameter sweep: the same projected slab at each value (one row per value; the same "
                    "initial conditions, so the same DM), the truth beside the parameter-conditioned prediction.",
    "sweep_power": "Parameter sweep: galaxy P(k) of truth (solid) and prediction (dashed) at each value, and "
                   "their ratio; up to the Nyquist wavenumber, dotted line: half of it.",
}
STYLE = """body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:4px 8px;text-align:right}
th{background:#eee}td.s{text-align:left}figure{margin:1.5em 0}img{max-width:100%}
figcaption{color:#555;font-size:90%}.note{color:#555;font-size:90%}
.warn{background:#fff3cd;color:#7a4b00;text-align:left}div.warn{border:1px solid #e0b84c;padding:0 1em}"""


def fmt(value: Any, kind: str) -> str:
    """A table cell: s string, d integer, f 3 significant decimals, p percent."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if kind == "s":
        return html.escape(str(value))
    if kind == "d":
        return str(int(value))
    if kind == "p":
        return f"{100.0 * float(value):.2f} %"
    return f"{float(value):.3f}"


def headline_table(rows: list[Mapping[str, Any]]) -> str:
    """The headline numbers as an HTML table."""
    head = "".join(f"<th>{title}</th>" for _, title, _ in COLUMNS)
    body = "".join("<tr>" + "".join(f'<td class="{kind}">{fmt(row.get(key), kind)}</td>'
                                    for key, _, kind in COLUMNS) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def versus_table(entries: list[Mapping[str, Any]]) -> str:
    """Each prediction against the HOD fitted on the same galaxy model, on the same test boxes."""
    head = ("<tr><th>prediction</th><th>HOD</th><th>tested on</th><th>F1</th><th>min r(k)</th>"
            "<th>max |P<sub>pred</sub>/P<sub>true</sub> − 1|</th><th>k bins with P(k) closer</th>"
            "<th>k bins with r(k) higher</th></tr>")
    rows = []
    for e in entries:
        notes = e.get("warnings") or []
        mark = " ⚠" if notes else " ✓"  # a win against a degenerate baseline is no win
        pair = "".join(f"<td>{fmt(e[key][0], 'f')} vs {fmt(e[key][1], 'f')}"
                       f"{mark if key in e['wins'] else ''}</td>" for key in ("f1", "min_r", "max_abs_ratio_dev"))
        rows.append(f"<tr><td class='s'>{html.escape(e['prediction'])}</td><td class='s'>"
                    f"{html.escape(e['baseline'])}</td><td class='s'>{html.escape(e['tested_on'])}</td>{pair}"
                    f"<td>{e['pk_closer_bins']} / {e['k_bins']}</td><td>{e['r_higher_bins']} / {e['k_bins']}</td></tr>")
        if notes:
            rows.append(f"<tr><td class='warn' colspan='8'>⚠ {'; '.join(html.escape(w) for w in notes)}</td></tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def mask_table(predictions: Mapping[str, Mapping[str, Any]]) -> str:
    """The classifier masks' table (the talk's): accuracy, recall and precision of the voxels each
    prediction's expected counts allow (``fields/galaxy_rate`` > 0) against the truth's occupied voxels,
    beside the same numbers of its realisation; empty string when no prediction stores its rates."""
    rows = []
    for label, res in predictions.items():
        m = res.get("mask_classification")
        if m is None:
            continue
        c = res["classification"]
        rows.append(f"<tr><td class='s'>{html.escape(label)}</td>"
                    + "".join(f"<td>{fmt(m[k], 'f')}</td>" for k in ("accuracy", "recall", "precision"))
                    + "".join(f"<td>{fmt(c[k], 'f')}</td>" for k in ("accuracy", "recall", "precision")) + "</tr>")
    if not rows:
        return ""
    head = ("<tr><th rowspan='2'>prediction</th><th colspan='3'>classifier mask (galaxy_rate &gt; 0)</th>"
            "<th colspan='3'>realisation (galaxies &gt; 0)</th></tr><tr>"
            + "<th>accuracy</th><th>recall</th><th>precision</th>" * 2 + "</tr>")
    return f"<h2>Classification</h2><table>{head}{''.join(rows)}</table>"


def warnings_list(warnings: list[str]) -> str:
    """The degenerate results of the evaluation as a highlighted list (empty string when none)."""
    if not warnings:
        return ""
    items = "".join(f"<li>{html.escape(w)}</li>" for w in warnings)
    return f"<div class='warn'><h2>Warnings</h2><ul>{items}</ul></div>"


def matrix_table(m: Mapping[str, Any], key: str) -> str:
    """One cross-prediction matrix (rows trained on, columns tested on) as an HTML table."""
    cols = m["cols_tested_on"]
    head = "<th>trained on ↓ / tested on →</th>" + "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join(f'<tr><td class="s">{html.escape(r)}</td>'
                   + "".join(f"<td>{fmt(v, 'f')}</td>" for v in m[key][i]) + "</tr>"
                   for i, r in enumerate(m["rows_trained_on"]))
    return f"<table><tr>{head}</tr>{body}</table>"


def sweep_section(sweep: Mapping[str, Any], figures: Mapping[str, Path]) -> str:
    """The parameter sweep: per value, the galaxy numbers and the mean r(k) below k_Nyq/2; its figures."""
    name = html.escape(sweep["parameter"])
    head = "".join(f"<th>{h}</th>" for h in (name, "box", "N<sub>gal</sub> true", "N<sub>gal</sub> pred",
                                               "pred / true", f"mean r(k), k &lt; {sweep['k_limit']:.3g} h/Mpc"))
    rows = "".join(f"<tr><td>{e['value']:g}</td><td class='s'>{html.escape(e['name'])}</td>"
                   f"<td>{fmt(e['n_true'], 'd')}</td><td>{fmt(e['n_pred'], 'd')}</td>"
                   f"<td>{fmt(e['n_ratio'], 'f')}</td><td>{fmt(e['mean_r'], 'f')}</td></tr>"
                   for e in sweep["entries"])
    parts = [f"<h2>Parameter sweep: {name}</h2><table><tr>{head}</tr>{rows}</table>"]
    for key in ("sweep_slices", "sweep_power"):
        if key in figures:
            parts.append(f"<figure><img src='{html.escape(Path(figures[key]).name)}' alt='{key}'>"
                         f"<figcaption>{CAPTIONS[key]}</figcaption></figure>")
    return "\n".join(parts)


def render(metrics: Mapping[str, Any], figures: Mapping[str, Path]) -> str:
    """The report page; figures are referenced by file name (they sit beside report.html)."""
    t = metrics["truth"]
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>galaxygen evaluation</title>"
             f"<style>{STYLE}</style></head><body><h1>galaxygen evaluation</h1>",
             f"<p class='note'>{len(t['boxes'])} truth boxes, {t['grid']}<sup>3</sup> voxels in "
             f"{t['box_size']:g} Mpc/h; P(k) with the {t['window'].upper()} window deconvolved; summary "
             f"numbers over k &lt; {t['k_limit']:.3g} h/Mpc (half the grid Nyquist "
             f"{t['k_nyquist']:.3g} h/Mpc). Voxel metrics pooled over all test voxels, occupied = count &gt; 0. "
             f"Several realisations: mean (band 16–84 % in metrics.json).</p>",
             warnings_list(metrics.get("warnings", [])),
             "<h2>Headline</h2>", headline_table(metrics["headline"]), mask_table(metrics["predictions"])]
    if metrics.get("versus_baseline"):
        parts += ["<h2>Against the HOD</h2>", versus_table(metrics["versus_baseline"])]
    for key in ("slices", "samples", "power", "correlation", "one_point"):
        if key in figures:
            parts.append(f"<figure><img src='{html.escape(Path(figures[key]).name)}' alt='{key}'>"
                         f"<figcaption>{CAPTIONS[key]}</figcaption></figure>")
    if metrics.get("cross_matrix"):
        parts.append("<h2>Cross prediction</h2>")
        for fam, m in metrics["cross_matrix"].items():
            parts.append(f"<h3>{html.escape(fam)}: F1</h3>{matrix_table(m, 'f1')}"
                         f"<h3>{html.escape(fam)}: min r(k)</h3>{matrix_table(m, 'min_r')}")
        if "cross_matrix" in figures:
            parts.append(f"<figure><img src='{html.escape(Path(figures['cross_matrix']).name)}' "
                         f"alt='cross_matrix'><figcaption>{CAPTIONS['cross_matrix']}</figcaption></figure>")
    if metrics.get("sweep"):
        parts.append(sweep_section(metrics["sweep"], figures))
    parts.append("<p class='note'>All numbers: metrics.json beside this page.</p></body></html>\n")
    return "\n".join(parts)


def write_report(metrics: Mapping[str, Any], figures: Mapping[str, Path], path: str | os.PathLike, *,
                 overwrite: bool = False) -> Path:
    """Write report.html atomically; returns its path."""
    return write_text(path, render(metrics, figures), overwrite=overwrite)
