"""The report renders: report.html, every figure it references exists and is a readable PNG; the CLI."""

from __future__ import annotations

import json
import re

import numpy as np

from evaluate_helpers import as_prediction, clustered_truth, write_set
from galaxygen.cli import main

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _check_report(out):
    html = (out / "report.html").read_text()
    srcs = re.findall(r"<img src='([^']+)'", html)
    assert srcs, "the report shows no figure"
    for src in srcs:
        path = out / src
        assert path.read_bytes()[:8] == PNG_SIGNATURE
        from PIL import Image
        with Image.open(path) as im:
            im.verify()
        import matplotlib.image
        img = matplotlib.image.imread(path)
        assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
        assert float(np.ptp(img[..., :3])) > 0.1  # something is drawn
    return html, srcs


def test_cli_writes_report_and_refuses_to_overwrite(tmp_path, make_box, capsys):
    truths = [clustered_truth(make_box, f"CV_{i}", seed=i, grid=16, suite=s) for i, s in enumerate("AB")]
    tdir = write_set(tmp_path / "truth", truths)
    rng = np.random.default_rng(1)
    # net_X is trained on suite X: exact on X's box, shifted (worse) on the other suite's box
    nets = {x: write_set(tmp_path / f"net_{x}", [as_prediction(t, t.galaxies if t.suite == x else
                                                               np.roll(t.galaxies, 1, axis=1),
                                                               model="net:test", trained_on=x) for t in truths])
            for x in "AB"}
    samples = tmp_path / "samples"
    for r in range(3):
        write_set(samples, [as_prediction(t, rng.poisson(t.galaxies).astype(np.float32), model="vdm",
                                          trained_on="A,B", realisation=r, realisations=3) for t in truths],
                  suffix=f"_r{r}")
    out = tmp_path / "out"
    argv = ["evaluate", "--truth", str(tdir), "--pred", f"net_A={nets['A']}", "--pred", f"net_B={nets['B']}",
            "--pred", f"vdm={samples}", "--out", str(out)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "report:" in text and "net_A" in text and "vdm" in text
    html, srcs = _check_report(out)
    assert {"slices.png", "power.png", "correlation.png", "one_point.png", "cross_matrix.png"} <= set(srcs)
    metrics = json.loads((out / "metrics.json").read_text())
    assert [(row["prediction"], row["tested_on"]) for row in metrics["headline"]] == [
        ("net_A", "A"), ("net_A", "B"), ("net_B", "A"), ("net_B", "B"), ("vdm", "A"), ("vdm", "B")]
    assert metrics["predictions"]["vdm"]["realisations"] == 3
    for row in metrics["headline"]:
        assert f">{row['prediction']}<" in html
    assert "Cross prediction" in html
    mat = metrics["cross_matrix"]["net"]
    assert mat["rows_trained_on"] == ["A", "B"] and mat["cols_tested_on"] == ["A", "B"]
    assert mat["f1"][0][0] == 1.0 and mat["f1"][1][1] == 1.0 and max(mat["f1"][0][1], mat["f1"][1][0]) < 0.5
    vdm = metrics["cross_matrix"]["vdm"]  # trained on both, tested on each: one row, two columns
    assert vdm["rows_trained_on"] == ["A,B"] and vdm["cols_tested_on"] == ["A", "B"]
    before = (out / "metrics.json").stat().st_mtime_ns
    assert main(argv) == 2
    assert "already exists" in capsys.readouterr().err
    assert (out / "metrics.json").stat().st_mtime_ns == before


def test_cli_bad_pred_spec(tmp_path, capsys):
    assert main(["evaluate", "--truth", str(tmp_path), "--pred", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "NAME=BOX" in capsys.readouterr().err
