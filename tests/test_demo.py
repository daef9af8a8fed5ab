"""`galaxygen demo` end to end at the tiny size: every available part really runs, the report renders."""

from __future__ import annotations

import json
import re

import numpy as np

from galaxygen.box import read_box

from galaxygen.cli import main
from galaxygen.pipelines.demo import STAGES, SUBDIRS
from galaxygen.outputs import written_by

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_demo_tiny_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--size", "tiny", "--device", "cpu"]) == 0
    text = capsys.readouterr().out
    state = json.loads((out / "demo.json").read_text())
    assert state["status"] == "finished" and set(state["stages"]) == {name for name, _ in STAGES}
    assert all(s["status"] == "done" for s in state["stages"].values()), state["stages"]
    produced = {label for label in state["predictions"]}
    for prefix in ("hod_", "two-phase_", "vdm_"):
        assert any(label.startswith(prefix) for label in produced), produced
    report = (out / "report" / "report.html").read_text()
    for src in re.findall(r"<img src='([^']+)'", report):
        assert (out / "report" / src).read_bytes()[:8] == PNG_SIGNATURE
    metrics = json.loads((out / "report" / "metrics.json").read_text())
    assert set(metrics["predictions"]) == produced
    for label, res in metrics["predictions"].items():
        assert 0.0 <= res["classification"]["recall"] <= 1.0
        assert res["galaxies"]["truth_total"] > 0
        assert res["tested_on"], label
    vdm = [res for label, res in metrics["predictions"].items() if label.startswith("vdm_")]
    assert vdm and all(res["galaxies"]["pred_total"] > 0 for res in vdm)  # the cascade's samples hold galaxies
    mat = metrics["cross_matrix"]["two-phase"]
    assert len(mat["rows_trained_on"]) == 2 and len(mat["cols_tested_on"]) == 2
    variants = mat["rows_trained_on"]
    for v in variants:  # Poisson draws of the two-phase rates, on the variant's own test boxes
        res = metrics["predictions"][f"two-phase_{v}_poisson"]
        assert res["realisations"] == 2 and res["tested_on"] == [v]
    assert mat["predictions"][0][0] == [f"two-phase_{variants[0]}", f"two-phase_{variants[0]}_poisson"]
    pairs = {(e["prediction"], e["baseline"], e["tested_on"]) for e in metrics["versus_baseline"]}
    assert {(f"two-phase_{v}", f"hod_{v}", t) for v in variants for t in variants} <= pairs
    for v in variants:  # the terminal and the report show the in-domain comparison with the HOD
        assert f"two-phase_{v} vs hod_{v} on {v}: F1 " in text
    assert "<h2>Against the HOD</h2>" in report and f">two-phase_{variants[0]}_poisson<" in report
    assert "report:" in text
    # the A_SN1 sweep: truth and prediction at three values, from one set of initial conditions
    sweep = metrics["sweep"]
    assert sweep["parameter"] == "a_sn1" and [e["value"] for e in sweep["entries"]] == [0.25, 1.0, 4.0]
    dms = [read_box(e["truth"], catalogs=False).dm for e in sweep["entries"]]
    assert all(np.array_equal(dms[0], d) for d in dms[1:])  # the same DM, only A_SN1 differs
    for e in sweep["entries"]:
        truth, pred = read_box(e["truth"], catalogs=False), read_box(e["prediction"], catalogs=False)
        assert truth.params["a_sn1"] == e["value"] and pred.params["a_sn1"] == e["value"]
        assert e["n_true"] == truth.galaxies.sum() > 0 and e["n_pred"] == pred.galaxies.sum()
        assert len(e["k"]) == len(e["p_true"]) == len(e["p_pred"]) == len(e["r"])
    assert len({e["n_true"] for e in sweep["entries"]}) > 1  # the galaxies follow A_SN1
    transform = json.loads((out / "runs" / "two-phase_sweep" / "transform.json").read_text())
    assert transform["params"]["names"] == ["a_sn1"]  # conditioned on the parameter swept, on it alone
    assert "<h2>Parameter sweep: a_sn1</h2>" in report
    for key in ("sweep_slices", "sweep_power"):
        assert f"<img src='{key}.png'" in report and metrics["figures"][key] == f"{key}.png"
    # a second run into the same folder is refused without --overwrite; with it, only the demo's own
    # entries (recorded when it started) would be cleared
    assert main(["demo", "--out", str(out), "--size", "tiny"]) == 2
    assert written_by(out) == {name: "demo" for name in ("demo.json", *SUBDIRS)}


def test_demo_refuses_to_clear_a_foreign_folder(tmp_path, capsys):
    (tmp_path / "mine.txt").write_text("keep me")
    assert main(["demo", "--out", str(tmp_path), "--size", "tiny", "--overwrite"]) == 2
    assert "mine.txt not written there by galaxygen demo" in capsys.readouterr().err
    assert (tmp_path / "mine.txt").read_text() == "keep me"



def test_parallel_jobs_one_per_core_on_cpu_at_most_one_per_job():
    from galaxygen.pipelines.demo import parallel_jobs

    assert parallel_jobs("cpu", 2, cpus=2) == 2
    assert parallel_jobs("cpu", 2, cpus=1) == 1
    assert parallel_jobs("cpu", 3, cpus=16) == 3
    assert parallel_jobs("cpu", 1, cpus=16) == 1
