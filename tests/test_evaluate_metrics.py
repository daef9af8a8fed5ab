"""Evaluation metrics: identity, known perturbations (shift, thinning), realisations, matching errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from evaluate_helpers import as_prediction, clustered_truth, write_set
from galaxygen.errors import GalaxygenError
from galaxygen.evaluate import compute, evaluate, versus_baseline_text
from galaxygen.prediction import prediction_box


@pytest.fixture
def truths(make_box):
    return [clustered_truth(make_box, f"CV_{i}", seed=i) for i in range(2)]


@pytest.fixture
def truth_dir(tmp_path, truths):
    return write_set(tmp_path / "truth", truths)


def test_identical_prediction_is_perfect(tmp_path, truths, truth_dir):
    pred = write_set(tmp_path / "same", [as_prediction(t, t.galaxies) for t in truths])
    evaluate([truth_dir], {"same": [pred]}, tmp_path / "out")
    m = json.loads((tmp_path / "out" / "metrics.json").read_text())["predictions"]["same"]
    cl = m["classification"]
    assert cl["recall"] == 1.0 and cl["precision"] == 1.0 and cl["f1"] == 1.0 and cl["accuracy"] == 1.0
    occupied = sum(int((t.galaxies > 0).sum()) for t in truths)
    assert cl["tp"] == occupied and cl["fp"] == 0 and cl["fn"] == 0
    assert cl["tp"] + cl["tn"] == 2 * 32 ** 3
    np.testing.assert_allclose(m["power"]["r"], 1.0, rtol=1e-9)
    np.testing.assert_allclose(m["power"]["ratio"], 1.0, rtol=1e-9)
    np.testing.assert_allclose(m["power"]["p_pred"], m["power"]["p_true"], rtol=1e-9)
    assert m["galaxies"]["ratio"] == 1.0
    assert m["galaxies"]["truth_total"] == pytest.approx(sum(float(t.galaxies.sum()) for t in truths))
    np.testing.assert_allclose(m["one_point"]["pred"], m["one_point"]["truth"])
    assert m["summary"]["max_abs_ratio_dev"] < 1e-9 and m["summary"]["min_r"] > 1 - 1e-9


def test_shifted_field_decorrelates_at_high_k_keeping_power(tmp_path, truths, truth_dir):
    # A periodic shift by one voxel keeps |delta_k| (P ratio = 1 at every k) and multiplies the
    # cross-spectrum by cos(k.s): r(k) stays ~1 at the fundamental and falls towards Nyquist.
    pred = write_set(tmp_path / "shift", [as_prediction(t, np.roll(t.galaxies, 1, axis=0)) for t in truths])
    metrics, _ = compute([truth_dir], {"shift": [pred]})
    m = metrics["predictions"]["shift"]
    k, r, ratio = (np.asarray(m["power"][x]) for x in ("k", "r", "ratio"))
    np.testing.assert_allclose(ratio, 1.0, rtol=1e-6)  # float32 grids: a roll is exact to rounding
    dx = 25.0 / 32
    assert r[0] > 0.97
    assert r[0] == pytest.approx(np.sinc(k[0] * dx / np.pi), abs=0.02)  # shell average of cos(k_x dx)
    high = k > 0.5 * metrics["truth"]["k_limit"]
    assert r[high].max() < r[0] - 0.05
    s = m["summary"]
    assert s["max_abs_ratio_dev"] < 1e-6
    assert s["min_r"] < 0.8 and s["k_at_min_r"] > 0.5 * s["k_limit"]
    assert m["galaxies"]["ratio"] == pytest.approx(1.0)
    assert m["classification"]["recall"] < 0.5  # the galaxies moved off their voxels


def test_thinned_galaxies_lose_recall_not_precision(tmp_path, truths, truth_dir):
    rng = np.random.default_rng(7)
    thinned = [np.where(rng.random(t.galaxies.shape) < 0.5, t.galaxies, 0).astype(np.float32) for t in truths]
    pred = write_set(tmp_path / "thin", [as_prediction(t, g) for t, g in zip(truths, thinned)])
    metrics, _ = compute([truth_dir], {"thin": [pred]})
    m = metrics["predictions"]["thin"]
    cl = m["classification"]
    kept = sum(int((g > 0).sum()) for g in thinned)
    occupied = sum(int((t.galaxies > 0).sum()) for t in truths)
    assert cl["precision"] == 1.0 and cl["fp"] == 0
    assert cl["recall"] == pytest.approx(kept / occupied)
    assert 0.35 < cl["recall"] < 0.65
    total = sum(float(g.sum()) for g in thinned) / sum(float(t.galaxies.sum()) for t in truths)
    assert m["galaxies"]["ratio"] == pytest.approx(total) and total < 0.7
    assert m["summary"]["min_r"] < 0.95  # random thinning adds noise uncorrelated with the truth


def test_realisations_give_mean_and_band(tmp_path, truths, truth_dir):
    rng = np.random.default_rng(3)
    boxes = []
    keep = (1.0, 0.6, 0.3)
    for r, frac in enumerate(keep):
        for t in truths:
            g = np.where(rng.random(t.galaxies.shape) < frac, t.galaxies, 0).astype(np.float32)
            boxes.append(as_prediction(t, g, model="vdm", realisation=r, realisations=len(keep)))
    from galaxygen.box import write_box
    folder = tmp_path / "vdm"
    for b in boxes:
        write_box(folder / f"{b.name}_r{b.meta['realisation']}.h5", b)
    mean_dir = tmp_path / "vdm_mean"
    for t in truths:  # the mean of the samples, as the diffusion model writes it beside them
        mean = as_prediction(t, t.galaxies, model="vdm", realisation=-1, realisations=len(keep))
        mean = mean.replace(meta={**mean.meta, "kind": "mean"})
        write_box(folder / f"{t.name}_mean.h5", mean)
        write_box(mean_dir / f"{t.name}_mean.h5", mean)
    metrics, _ = compute([truth_dir], {"vdm": [folder], "vdm_mean": [mean_dir]})
    m = metrics["predictions"]["vdm"]
    assert m["realisations"] == 3 and len(m["per_realisation"]) == 3
    assert sorted(m["ignored_files"]) == sorted(str(folder / f"{t.name}_mean.h5") for t in truths)
    assert metrics["predictions"]["vdm_mean"]["realisations"] == 1
    assert metrics["predictions"]["vdm_mean"]["classification"]["recall"] == 1.0
    recalls = [p["classification"]["recall"] for p in m["per_realisation"]]
    assert recalls[0] == 1.0 and recalls[0] > recalls[1] > recalls[2]
    assert m["classification"]["recall"] == pytest.approx(np.mean(recalls))
    lo, hi = m["classification_band"]["recall"]
    assert lo == pytest.approx(np.percentile(recalls, 16)) and hi == pytest.approx(np.percentile(recalls, 84))
    assert lo < m["classification"]["recall"] < hi
    p16, p84 = np.asarray(m["power"]["r_p16"]), np.asarray(m["power"]["r_p84"])
    assert (p16 <= np.asarray(m["power"]["r"]) + 1e-12).all() and (np.asarray(m["power"]["r"]) <= p84 + 1e-12).all()


def test_cross_prediction_matrix(tmp_path, make_box):
    truth = {s: [clustered_truth(make_box, "CV_0", seed=i, suite=s, grid=16)] for i, s in enumerate("AB")}
    tdir = tmp_path / "truth"
    for s, boxes in truth.items():
        write_set(tdir / s, boxes)
    rng = np.random.default_rng(0)
    preds = {}
    for trained in "AB":
        for tested in "AB":
            t = truth[tested][0]
            g = t.galaxies if trained == tested else np.where(rng.random(t.galaxies.shape) < 0.5, t.galaxies, 0)
            preds[f"net_{trained}_on_{tested}"] = [write_set(tmp_path / f"{trained}{tested}",
                                                             [as_prediction(t, g, model="two-phase:test",
                                                                            trained_on=trained)])]
    metrics, _ = compute([tdir / "A", tdir / "B"], preds)
    mat = metrics["cross_matrix"]["two-phase"]
    assert mat["rows_trained_on"] == ["A", "B"] and mat["cols_tested_on"] == ["A", "B"]
    assert mat["f1"][0][0] == 1.0 and mat["f1"][1][1] == 1.0
    assert mat["f1"][0][1] < 1.0 and mat["f1"][1][0] < 1.0
    assert mat["min_r"][0][0] == pytest.approx(1.0) and mat["min_r"][0][1] < 1.0
    assert mat["predictions"][0][1] == ["net_A_on_B"]


def test_matching_errors_name_the_files(tmp_path, make_box, truths, truth_dir):
    stranger = as_prediction(truths[0].replace(name="LH_9"), truths[0].galaxies)
    d = write_set(tmp_path / "stranger", [stranger])
    with pytest.raises(GalaxygenError, match=r"LH_9\.h5.*no truth box"):
        compute([truth_dir], {"p": [d]})
    small = make_box(name="CV_0", grid=16, suite="A", with_catalogs=False)
    d = write_set(tmp_path / "small", [as_prediction(small, small.galaxies)])
    with pytest.raises(GalaxygenError, match=r"small/CV_0\.h5 \(16\^3.*CV_0\.h5 \(32\^3"):
        compute([truth_dir], {"p": [d]})
    twice = write_set(tmp_path / "twice", [as_prediction(truths[0], truths[0].galaxies)])
    write_set(twice, [as_prediction(truths[0], truths[0].galaxies)], suffix="_copy")
    with pytest.raises(GalaxygenError, match=r"CV_0.*CV_0_copy\.h5.*both realisation 0"):
        compute([truth_dir], {"p": [twice]})


def test_headline_per_suite_and_versus_the_hod(tmp_path, make_box):
    # Suites A and B; "net" (trained on A) is exact on A and shifted on B; the HOD fitted on A is
    # thinned on both. In-domain (A) the net beats the HOD in every number and every k bin; on B
    # its shift loses r(k) at high k, which the per-suite rows must show rather than pool away.
    truth = {s: clustered_truth(make_box, "CV_0", seed=i, suite=s) for i, s in enumerate("AB")}
    tdir = tmp_path / "truth"
    for s, t in truth.items():
        write_set(tdir / s, [t])
    rng = np.random.default_rng(3)
    net = [as_prediction(t, t.galaxies if s == "A" else np.roll(t.galaxies, 1, axis=0), model="two-phase:t",
                         trained_on="A") for s, t in truth.items()]
    hod = [as_prediction(t, np.where(rng.random(t.galaxies.shape) < 0.5, t.galaxies, 0), model="hod:seed3",
                         trained_on="A") for t in truth.values()]
    other = [as_prediction(truth["A"], truth["A"].galaxies, model="vdm", trained_on="B")]  # no HOD fitted on B
    hod_z = [as_prediction(t, t.galaxies, model="hod:zheng07", trained_on="A") for t in truth.values()]
    empty = [as_prediction(truth["A"], np.zeros_like(truth["A"].galaxies), model="vdm", trained_on="A")]
    preds = {label: [write_set(tmp_path / label / b.suite, [b]) for b in boxes]
             for label, boxes in (("net", net), ("hod", hod), ("other", other), ("hod_z", hod_z), ("empty", empty))}
    metrics, _ = compute([tdir / "A", tdir / "B"], preds)
    rows = {(r["prediction"], r["tested_on"]): r for r in metrics["headline"]}
    assert sorted(rows) == [("empty", "A"), ("hod", "A"), ("hod", "B"), ("hod_z", "A"), ("hod_z", "B"),
                            ("net", "A"), ("net", "B"), ("other", "A")]
    assert rows[("net", "A")]["f1"] == 1.0 and rows[("net", "B")]["recall"] < 0.5
    assert rows[("net", "A")]["min_r"] == pytest.approx(1.0) and rows[("net", "B")]["min_r"] < 0.9
    vs = {(e["prediction"], e["tested_on"]): e for e in metrics["versus_baseline"]}
    assert sorted(vs) == [("empty", "A"), ("net", "A"), ("net", "B")]  # "other": no HOD fitted on its suite
    assert {e["baseline"] for e in vs.values()} == {"hod"}  # of two HODs on one suite, the first by label
    assert vs[("empty", "A")]["wins"] == []  # no galaxies: F1 0, r(k) undefined (NaN never wins)
    line = next(x for x in versus_baseline_text(metrics["versus_baseline"]).splitlines() if x.startswith("empty"))
    assert "min r(k) - vs " in line and "nan" not in line
    a, b = vs[("net", "A")], vs[("net", "B")]
    assert a["baseline"] == "hod" and a["wins"] == ["f1", "min_r", "max_abs_ratio_dev"]
    assert a["f1"][0] == 1.0 and a["f1"][1] == pytest.approx(rows[("hod", "A")]["f1"])
    assert a["k_bins"] > 3 and a["pk_closer_bins"] == a["k_bins"] and a["r_higher_bins"] == a["k_bins"]
    assert "f1" not in b["wins"]  # a one-voxel shift misses almost every galaxy voxel
    assert b["pk_closer_bins"] == b["k_bins"]  # but keeps |delta_k|: P(k) exact, the thinned HOD's is not


def test_classifier_mask_table_from_the_stored_rates(tmp_path, truths, truth_dir):
    """A prediction storing fields/galaxy_rate gets the classifier mask's table (rate > 0 vs truth > 0)
    beside its realisation's, in metrics.json and report.html; one without it gets none."""
    rng = np.random.default_rng(3)
    boxes, masks = [], []
    for t in truths:
        # a mask keeping every occupied voxel and as many empty ones: recall 1, precision 1/2
        occ = t.galaxies > 0
        empty = np.flatnonzero(~occ.ravel())
        extra = np.zeros(occ.size, bool)
        extra[rng.choice(empty, int(occ.sum()), replace=False)] = True
        mask = occ | extra.reshape(occ.shape)
        masks.append(mask)
        pred = prediction_box(t, t.galaxies, model="test:model", trained_on="A", seed=0,
                              galaxy_rate=np.where(mask, 0.5, 0.0).astype(np.float32))
        boxes.append(pred)
    pred_dir = write_set(tmp_path / "masked", boxes)
    plain = write_set(tmp_path / "plain", [as_prediction(t, t.galaxies) for t in truths])
    metrics = evaluate([truth_dir], {"masked": [pred_dir], "plain": [plain]}, tmp_path / "out")
    m = metrics["predictions"]["masked"]["mask_classification"]
    assert m["recall"] == 1.0 and m["precision"] == pytest.approx(0.5)
    kept = sum(int(k.sum()) for k in masks)
    assert m["tp"] + m["fp"] == kept and m["accuracy"] == pytest.approx(1 - kept / 2 / (2 * 32 ** 3))
    assert "mask_classification" not in metrics["predictions"]["plain"]
    page = (tmp_path / "out" / "report.html").read_text()
    table = page.split("<h2>Classification</h2>", 1)[1].split("</table>", 1)[0]
    assert "classifier mask (galaxy_rate &gt; 0)" in table
    assert "<td class='s'>masked</td><td>1.000</td>" not in table  # accuracy < 1: a mask with empty voxels
    assert "<td class='s'>masked</td>" in table and "<td class='s'>plain</td>" not in table
    assert f"<td>{m['recall']:.3f}</td><td>{m['precision']:.3f}</td>" in table
