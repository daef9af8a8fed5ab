"""`evaluate`: every named prediction against the same truth boxes -> metrics.json, figures, report.html.

Boxes are streamed: each truth box is read once and compared with every prediction box made for
it, so memory holds one truth box and one prediction box at a time.

Degenerate results are said out loud: the warnings prediction boxes carry (an HOD fit at a bound, an
empty sample), predictions holding no galaxies, a baseline holding none. They are logged, listed in
metrics.json (``warnings``, and per prediction) and shown at the top of the report.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from galaxygen.box import read_header
from galaxygen.errors import GalaxygenError
from galaxygen.evaluate.inputs import Prediction, TruthBox, group_prediction, load_fields, load_prediction, read_truth
from galaxygen.evaluate.metrics import box_stats, combine, k_below, k_nyquist, pool, summary
from galaxygen.io import write_json
from galaxygen.outputs import staged_folder
from galaxygen.progress import progress
from galaxygen.report import figures, html
from galaxygen.stats.power import cross_power

log = logging.getLogger(__name__)

METRICS_VERSION = 2  # 2: headline rows per tested-on suite, per_suite power curves, versus_baseline
HEADLINE_KEYS = ("prediction", "model", "trained_on", "tested_on", "realisations", "accuracy", "precision",
                 "recall", "f1", "total_ratio", "max_abs_ratio_dev", "min_r")


SAMPLE_SLABS = 3  # realisations of a stochastic prediction shown side by side (figures.samples_figure)


def _slab(field: np.ndarray, thickness: int) -> np.ndarray:
    """Sum of the first `thickness` voxel planes along z: a (N, N) projected slice."""
    return np.asarray(field[:, :, :thickness], dtype=np.float64).sum(axis=2)


def collect(truth: Mapping[tuple[str, str], TruthBox], predictions: Sequence[Prediction]):
    """Run `box_stats` for every (prediction, realisation, truth box); also keep one slab per prediction.

    Returns ``(stats, slabs)``: stats[label][realisation][truth key] -> BoxStats; slabs[label] ->
    dict(name, suite, dm, truth, pred, thickness, box_size, samples) of the prediction's first box
    (realisation 0 or the lowest): (N, N) sums over the first N/16 planes along z, the slab's
    thickness and the box side [Mpc/h]; samples: {realisation: (N, N) predicted slab} of that box
    for up to SAMPLE_SLABS realisations (the spread of a stochastic prediction).
    """
    stats: dict[str, dict[int, dict]] = {p.label: {r: {} for r in p.realisations} for p in predictions}
    slabs: dict[str, dict[str, Any]] = {}
    needed = sorted({key for p in predictions for key in p.truth_keys})
    for key in progress(needed, desc="evaluate", unit="box"):
        t = truth[key]
        dm, gal = load_fields(t.path)
        thick = max(1, t.grid // 16)
        for p in predictions:
            for r, boxes in p.realisations.items():
                if key not in boxes:
                    continue
                pgal, prate = load_prediction(boxes[key])
                stats[p.label][r][key] = box_stats(pgal, gal, t.box_size, rate=prate)
                if p.label not in slabs:
                    slabs[p.label] = {"name": t.name, "suite": t.suite, "dm": _slab(dm, thick),
                                      "truth": _slab(gal, thick), "pred": _slab(pgal, thick),
                                      "thickness": thick * t.box_size / t.grid, "box_size": t.box_size,
                                      "key": key, "samples": {}}
                samples = slabs[p.label]["samples"]
                if slabs[p.label]["key"] == key and len(samples) < SAMPLE_SLABS:
                    samples[r] = _slab(pgal, thick)
    return stats, slabs


def _result(per_real: Mapping[int, Mapping], keys: Sequence, k_limit: float) -> dict[str, Any]:
    pooled = [pool([boxes[k] for k in keys]) for _, boxes in sorted(per_real.items())]
    res = combine(pooled)
    res["summary"] = summary(res, k_limit)
    return res


def cross_matrices(results: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per model family: rows = trained-on suite, columns = tested-on suite; cells F1 and min r(k).

    A family appears when its predictions fill at least two distinct cells. A cell with several
    predictions keeps the first by name and lists all of them.
    """
    fams: dict[str, dict[tuple[str, str], list[tuple[str, dict]]]] = {}
    for label, res in sorted(results.items()):
        for suite, sres in res["per_suite"].items():
            fams.setdefault(res["family"], {}).setdefault((res["trained_on"], suite), []).append((label, sres))
    out = {}
    for fam, cells in sorted(fams.items()):
        if len(cells) < 2:
            continue
        rows = sorted({a for a, _ in cells})
        cols = sorted({b for _, b in cells})
        f1 = [[None] * len(cols) for _ in rows]
        min_r = [[None] * len(cols) for _ in rows]
        names = [[None] * len(cols) for _ in rows]
        for (a, b), entries in cells.items():
            i, j = rows.index(a), cols.index(b)
            f1[i][j] = entries[0][1]["summary"]["f1"]
            min_r[i][j] = entries[0][1]["summary"]["min_r"]
            names[i][j] = [lab for lab, _ in entries]
        out[fam] = {"rows_trained_on": rows, "cols_tested_on": cols, "f1": f1, "min_r": min_r,
                    "predictions": names}
    return out


def headline(results: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per prediction and tested-on suite, with the numbers a reader looks at first
    (keys HEADLINE_KEYS): a model trained on one galaxy model and tested on two gets two rows, so
    that in-domain and cross-model numbers are never pooled."""
    rows = []
    for label, res in results.items():
        for suite, sres in res["per_suite"].items():
            s = sres["summary"]
            rows.append({"prediction": label, "model": res["model"], "trained_on": res["trained_on"],
                         "tested_on": suite, "realisations": sres["realisations"],
                         **{k: s[k] for k in HEADLINE_KEYS[5:]}})
    return rows


BASELINE_KEYS = (("f1", "max"), ("min_r", "max"), ("max_abs_ratio_dev", "min"))


def versus_baseline(results: Mapping[str, Mapping[str, Any]], k_limit: float,
                    baseline_family: str = "hod") -> list[dict[str, Any]]:
    """Every prediction against the baseline (the HOD) fitted on the same suite, tested on the same suite.

    Per pair: the summary numbers of both (``f1``, ``min_r``, ``max_abs_ratio_dev`` as
    ``[prediction, baseline]``), ``wins`` (the keys where the prediction is better), and per k bin
    below `k_limit` [h/Mpc]: ``pk_closer_bins`` (bins where |P_pred/P_true − 1| is smaller than the
    baseline's) and ``r_higher_bins`` (bins where r(k) is higher), out of ``k_bins``. A NaN number
    (an empty prediction has no r(k)) never wins. Of several baselines fitted on one suite the first
    by label is used, as in `cross_matrices`. ``warnings`` says when the baseline holds no galaxies
    (every win against it is then trivial).
    """
    base: dict[tuple[str, str], tuple[str, Mapping[str, Any]]] = {}
    for label, res in sorted(results.items()):
        if res["family"] == baseline_family:
            for suite, sres in res["per_suite"].items():
                base.setdefault((res["trained_on"], suite), (label, sres))
    out = []
    for label, res in results.items():
        if res["family"] == baseline_family:
            continue
        for suite, sres in res["per_suite"].items():
            if (res["trained_on"], suite) not in base:
                continue
            blabel, bres = base[(res["trained_on"], suite)]
            p, b = sres["summary"], bres["summary"]
            empty = not bres["galaxies"]["pred_total"] > 0
            sel = k_below(np.asarray(sres["power"]["k"]), k_limit)
            dev_p = np.abs(np.asarray(sres["power"]["ratio"])[sel] - 1.0)
            dev_b = np.abs(np.asarray(bres["power"]["ratio"])[sel] - 1.0)
            r_p, r_b = np.asarray(sres["power"]["r"])[sel], np.asarray(bres["power"]["r"])[sel]
            entry = {"prediction": label, "baseline": blabel, "trained_on": res["trained_on"], "tested_on": suite,
                     **{key: [p[key], b[key]] for key, _ in BASELINE_KEYS},
                     "wins": [key for key, better in BASELINE_KEYS
                              if (p[key] > b[key] if better == "max" else p[key] < b[key])],
                     "k_bins": int(sel.sum()), "pk_closer_bins": int((dev_p < dev_b).sum()),
                     "r_higher_bins": int((r_p > r_b).sum()),
                     "warnings": [f"baseline {blabel!r} holds no galaxies on {suite}: {label!r} beats it "
                                  f"trivially"] if empty else []}
            out.append(entry)
    return out


def versus_baseline_text(entries: Sequence[Mapping[str, Any]]) -> str:
    """One line per prediction-vs-baseline pair (for the terminal)."""
    names = {"f1": "F1", "min_r": "min r(k)", "max_abs_ratio_dev": "max |P ratio - 1|"}
    lines = []
    for e in entries:
        nums = ", ".join(f"{names[key]} {_cell('{:.3f}', e[key][0])} vs {_cell('{:.3f}', e[key][1])}"
                         for key, _ in BASELINE_KEYS)
        wins = ", ".join(names[k] for k in e["wins"]) or "nothing"
        lines.append(f"{e['prediction']} vs {e['baseline']} on {e['tested_on']}: {nums}; better in {wins}; "
                     f"P(k) closer in {e['pk_closer_bins']}/{e['k_bins']} k bins, "
                     f"r(k) higher in {e['r_higher_bins']}/{e['k_bins']}"
                     + "".join(f" (warning: {w})" for w in e.get("warnings", [])))
    return "\n".join(lines)


def _cell(fmt: str, value: Any) -> str:
    """A terminal table cell: '-' for a missing or non-finite number."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "-"
    return fmt.format(value)


def headline_text(rows: Sequence[Mapping[str, Any]]) -> str:
    """The headline rows as a plain-text table (for the terminal)."""
    cols = (("prediction", "{}"), ("trained_on", "{}"), ("tested_on", "{}"), ("recall", "{:.3f}"),
            ("precision", "{:.3f}"), ("f1", "{:.3f}"), ("total_ratio", "{:.3f}"),
            ("max_abs_ratio_dev", "{:.3f}"), ("min_r", "{:.3f}"))

    cells = [[c for c, _ in cols]] + [[_cell(f, row.get(c)) for c, f in cols] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(cols))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in cells)


def empty_boxes_warning(label: str, stats: Mapping[int, Mapping[tuple[str, str], Any]]) -> str | None:
    """One line when boxes of prediction `label` hold no galaxies (stats[realisation][truth key] ->
    BoxStats), None otherwise."""
    several = len(stats) > 1
    boxes = [(r, key) for r, per in sorted(stats.items()) for key in sorted(per)]
    empty = [f"{name}" + (f" (realisation {r})" if several else "")
             for r, (suite, name) in boxes if not stats[r][(suite, name)].pred_total > 0]
    if not empty:
        return None
    if len(empty) == len(boxes):
        return (f"prediction {label!r} holds no galaxies in any of its {len(boxes)} boxes: its F1 is 0 and its "
                f"P(k) and r(k) are undefined")
    shown = ", ".join(empty[:5]) + (", ..." if len(empty) > 5 else "")
    return f"prediction {label!r}: {len(empty)} of {len(boxes)} boxes hold no galaxies ({shown})"


@dataclass(frozen=True)
class Sweep:
    """One parameter varied over boxes: ``truth[i]`` (a box at ``values[i]`` of `parameter`, e.g.
    ``a_sn1``) and ``predictions[i]`` (a prediction box made from it)."""

    parameter: str
    values: tuple[float, ...]
    truth: tuple[Path, ...]
    predictions: tuple[Path, ...]

    def __post_init__(self) -> None:
        if not (len(self.values) == len(self.truth) == len(self.predictions) >= 1):
            raise GalaxygenError(f"sweep of {self.parameter}: expected as many truth and prediction boxes as "
                                 f"values (>= 1), got {len(self.values)}, {len(self.truth)}, {len(self.predictions)}")


def sweep_metrics(sweep: Sweep) -> tuple[dict[str, Any], dict[str, Any]]:
    """Truth against prediction at each value of a parameter sweep.

    Returns ``(metrics, slabs)``: metrics = {parameter, k_nyquist, k_limit (k_Nyq/2 [h/Mpc]), entries:
    [{value, name, truth, prediction, n_true, n_pred, n_ratio, k, p_true, p_pred [(Mpc/h)^3], r, mean_r
    (mean r(k) below k_limit)}]}; slabs: one per value for `figures.slices_figure`, titled by the value.
    P(k) of the NGP counts with the window deconvolved, shot noise not subtracted.
    """
    entries, slabs = [], {}
    k_nyq = k_limit = None
    for value, truth_path, pred_path in zip(sweep.values, sweep.truth, sweep.predictions):
        dm, gal = load_fields(Path(truth_path))
        _, pgal = load_fields(Path(pred_path))
        t = read_header(truth_path)
        k_nyq = k_nyquist(t.grid, t.box_size)
        k_limit = 0.5 * k_nyq
        cp = cross_power(pgal, gal, t.box_size)  # a: prediction, b: truth
        below = (cp.k < k_limit) & (cp.n_modes > 0)
        n_true, n_pred = float(gal.sum()), float(pgal.sum())
        entries.append({"value": float(value), "name": t.name, "truth": str(truth_path), "prediction": str(pred_path),
                        "n_true": n_true, "n_pred": n_pred, "n_ratio": n_pred / n_true if n_true else float("nan"),
                        "k": cp.k.tolist(), "p_true": cp.p_bb.tolist(), "p_pred": cp.p_aa.tolist(),
                        "r": cp.r.tolist(), "mean_r": float(np.nanmean(cp.r[below])) if below.any() else float("nan")})
        thick = max(1, t.grid // 16)
        title = f"{sweep.parameter} = {value:g}"
        slabs[f"prediction, {title}"] = {"name": t.name, "suite": title, "dm": _slab(dm, thick),
                                         "truth": _slab(gal, thick), "pred": _slab(pgal, thick),
                                         "thickness": thick * t.box_size / t.grid, "box_size": t.box_size}
    return {"parameter": sweep.parameter, "k_nyquist": k_nyq, "k_limit": k_limit, "entries": entries}, slabs


def compute(truth_paths: Sequence[str | os.PathLike],
            predictions: Mapping[str, Sequence[str | os.PathLike]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """All metrics (the content of metrics.json) and the slabs for the slice figure.

    Parameters
    ----------
    truth_paths : box files or folders of box files (the truth)
    predictions : prediction label -> box files or folders (its boxes, all realisations)
    """
    if not predictions:
        raise GalaxygenError("no predictions given (use --pred NAME=BOX ...)")
    truth = read_truth(truth_paths)
    preds = [group_prediction(label, paths, truth) for label, paths in predictions.items()]
    for p in preds:
        log.info(f"prediction {p.label!r}: {len(p.truth_keys)} boxes x {len(p.realisations)} realisations, "
                 f"each made from its truth box")
    first = next(iter(truth.values()))
    k_limit = 0.5 * k_nyquist(first.grid, first.box_size)
    stats, slabs = collect(truth, preds)
    results: dict[str, Any] = {}
    for p in preds:
        res = _result(stats[p.label], p.truth_keys, k_limit)
        res.update(model=p.model, family=p.family, trained_on=p.trained_on, tested_on=p.tested_on,
                   boxes=[{"suite": s, "name": n,
                           "files": [str(p.realisations[r][(s, n)]) for r in p.realisations]}
                          for s, n in p.truth_keys],
                   ignored_files=[str(x) for x in p.ignored])
        res["per_suite"] = {suite: _result(stats[p.label], [k for k in p.truth_keys if k[0] == suite], k_limit)
                            for suite in p.tested_on}
        res["warnings"] = list(p.warnings) + [w for w in [empty_boxes_warning(p.label, stats[p.label])] if w]
        for sres in res["per_suite"].values():  # keep per-suite entries small: k, ratio and r curves only
            for key in ("one_point", "per_realisation", "mask_classification"):
                sres.pop(key, None)
            sres["power"] = {key: sres["power"][key] for key in ("k", "ratio", "r")}
        results[p.label] = res
    vs = versus_baseline(results, k_limit)
    warnings = list(dict.fromkeys([w for res in results.values() for w in res["warnings"]]
                                  + [w for e in vs for w in e["warnings"]]))
    for w in warnings:
        log.warning(w)
    metrics = {
        "version": METRICS_VERSION,
        "truth": {"grid": first.grid, "box_size": first.box_size,
                  "k_nyquist": k_nyquist(first.grid, first.box_size), "k_limit": k_limit,
                  "window": "ngp", "boxes": [{"suite": h.suite, "name": h.name, "path": str(h.path)}
                                             for h in truth.values()]},
        "predictions": results,
        "cross_matrix": cross_matrices(results),
        "headline": headline(results),
        "versus_baseline": vs,
        "warnings": warnings,
    }
    return metrics, slabs


def evaluate(truth_paths: Sequence[str | os.PathLike], predictions: Mapping[str, Sequence[str | os.PathLike]],
             out_dir: str | os.PathLike, *, overwrite: bool = False, sweep: Sweep | None = None) -> dict[str, Any]:
    """Evaluate predictions against truth boxes; write metrics.json, PNG figures and report.html.

    `out_dir` is written whole: into a temporary folder beside it, renamed into place at the end, so
    an interrupted evaluation leaves nothing. Fails before any work if `out_dir` exists with content
    and `overwrite` is False, or holds anything `galaxygen evaluate` did not write there (see
    :mod:`galaxygen.outputs`). A `sweep` (truth and prediction at several values of one parameter,
    on boxes of their own) adds ``sweep`` to the metrics (`sweep_metrics`), its figures and a report
    section. Returns the metrics dict with ``files`` (paths written) added.
    """
    out_dir = Path(out_dir)
    with staged_folder(out_dir, "evaluate", overwrite=overwrite) as tmp:
        metrics, slabs = compute(truth_paths, predictions)
        sweep_slabs = None
        if sweep is not None:
            metrics["sweep"], sweep_slabs = sweep_metrics(sweep)
        figs = figures.write_all(metrics, slabs, tmp, sweep_slabs=sweep_slabs)
        write_json(tmp / "metrics.json", {**metrics, "figures": {k: p.name for k, p in figs.items()}})
        html.write_report(metrics, figs, tmp / "report.html")
    metrics["figures"] = {k: str(out_dir / p.name) for k, p in figs.items()}
    metrics["files"] = {"metrics": str(out_dir / "metrics.json"), "report": str(out_dir / "report.html")}
    return metrics
