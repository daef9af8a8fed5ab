"""Degenerate results are said out loud: on the terminal (logging, -v/-q), in the output files
(hod.json, prediction boxes, metrics.json) and in report.html."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from evaluate_helpers import as_prediction, clustered_truth, write_set
from hod_helpers import hod_box
from galaxygen.box import read_box, write_box
from galaxygen.cli import main
from galaxygen.models.hod.fit import fit_occupation
from galaxygen.models.hod.occupation import make_model
from galaxygen.synthetic.halos import halo_masses


@pytest.fixture
def warnings_log(caplog):
    """Records of the galaxygen loggers at WARNING and above (whatever an earlier -q set)."""
    with caplog.at_level(logging.WARNING, logger="galaxygen"):
        yield caplog


def test_hod_parameter_at_its_bound_is_reported():
    # one galaxy in every halo whatever its mass: no threshold, no slope to fit
    mass = halo_masses(np.random.default_rng(0), 2000)
    flat = np.ones(len(mass), dtype=np.int64)
    warned = fit_occupation("seed3", mass, flat, float(flat.sum())).warnings()
    assert any(w.startswith("HOD fit (seed3): alpha = 0.001") and "edge of its search range [0.001, 4]" in w
               for w in warned)
    assert any("log10_m_min" in w and "edge of its search range" in w for w in warned)
    z = fit_occupation("zheng07", mass, flat, float(flat.sum())).warnings()
    assert any("sigma_log_m = 2 is at the edge" in w for w in z)
    # a well-posed fit says nothing
    rng = np.random.default_rng(1)
    good = make_model("seed3", {"log10_m_min": 11.8, "log10_m1": 12.6, "alpha": 0.9})
    n_cen, n_sat = good.draw(mass, rng)
    n = n_cen + n_sat
    assert fit_occupation("seed3", mass, n, float(n.sum())).warnings() == []


def test_hod_fit_without_matched_halos_is_said_in_every_output(tmp_path, capsys):
    model = make_model("seed3", {"log10_m_min": 11.8, "log10_m1": 12.6, "alpha": 0.9})
    rng = np.random.default_rng(3)
    boxes = [hod_box(model, rng, name=f"CV_{i}", n_halos=1500) for i in range(2)]
    lost = boxes[0].galaxy_catalog
    boxes[0] = boxes[0].replace(galaxy_catalog={**lost, "host_halo": np.full(len(lost["pos"]), -1)})
    for b in boxes:
        write_box(tmp_path / "train" / f"{b.name}.h5", b)
    fit = tmp_path / "hod.json"
    assert main(["hod", "fit", str(tmp_path / "train"), "--model", "seed3", "--out", str(fit)]) == 0
    err = capsys.readouterr().err
    said = f"{tmp_path / 'train' / 'CV_0.h5'}: none of its {len(lost['pos'])} galaxies lies in a halo"
    assert f"galaxygen hod: warning: {said}" in err
    assert any(w.startswith(said) for w in json.loads(fit.read_text())["warnings"])
    # populating carries the fit's warnings into the prediction boxes ...
    assert main(["hod", "populate", str(fit), str(tmp_path / "train" / "CV_1.h5"), "--out", str(tmp_path / "p")]) == 0
    capsys.readouterr()
    assert said in read_box(tmp_path / "p" / "CV_1.h5").meta["warnings"]
    # ... and evaluating them into the terminal, metrics.json and the report
    out = tmp_path / "eval"
    assert main(["evaluate", "--truth", str(tmp_path / "train" / "CV_1.h5"), "--pred", f"hod={tmp_path / 'p'}",
                 "--out", str(out)]) == 0
    assert said in capsys.readouterr().err
    assert any(w.startswith(said) for w in json.loads((out / "metrics.json").read_text())["warnings"])
    assert said in (out / "report.html").read_text()


def test_empty_prediction_and_empty_baseline_are_said(make_box, tmp_path, capsys):
    truth = clustered_truth(make_box, "CV_0", seed=0, grid=16)
    tdir = write_set(tmp_path / "truth", [truth])
    rng = np.random.default_rng(0)
    thin = np.where(rng.random(truth.galaxies.shape) < 0.5, truth.galaxies, 0)
    preds = {"net": write_set(tmp_path / "net", [as_prediction(truth, thin, model="two-phase:t")]),
             "hod": write_set(tmp_path / "hod", [as_prediction(truth, np.zeros_like(truth.galaxies),
                                                                model="hod:seed3")])}
    capsys.readouterr()
    out = tmp_path / "out"
    args = ["evaluate", "--truth", str(tdir), *(a for k, d in preds.items() for a in ("--pred", f"{k}={d}")),
            "--out", str(out)]
    assert main(args) == 0
    captured = capsys.readouterr()
    empty = "prediction 'hod' holds no galaxies in any of its 1 boxes"
    baseline = "baseline 'hod' holds no galaxies on A: 'net' beats it trivially"
    assert f"galaxygen evaluate: warning: {empty}" in captured.err and baseline in captured.err
    assert "warning: " + baseline in captured.out  # the versus-the-HOD line says it too
    metrics = json.loads((out / "metrics.json").read_text())
    assert any(w.startswith(empty) for w in metrics["warnings"]) and baseline in metrics["warnings"]
    assert any(w.startswith(empty) for w in metrics["predictions"]["hod"]["warnings"])
    (entry,) = metrics["versus_baseline"]
    assert entry["wins"] and entry["warnings"] == [baseline]  # it does "win": say why that means nothing
    html = (out / "report.html").read_text()
    assert "<h2>Warnings</h2>" in html and "holds no galaxies in any of its 1 boxes" in html
    assert "✓" not in html and "⚠" in html  # no quiet tick against an empty baseline
    # -q: nothing on the terminal, the files still say it
    assert main(["-q", *args[:-1], str(tmp_path / "quiet")]) == 0
    assert "warning" not in capsys.readouterr().err
    assert json.loads((tmp_path / "quiet" / "metrics.json").read_text())["warnings"] == metrics["warnings"]
    # -v: also what it did
    assert main([*args[:-1], str(tmp_path / "verbose"), "-v"]) == 0
    err = capsys.readouterr().err
    assert "galaxygen evaluate: info: prediction 'net': 1 boxes x 1 realisations, each made from its truth box" in err
    assert empty in err


def test_empty_prediction_box_is_flagged_when_written(make_box, warnings_log):
    from galaxygen.prediction import prediction_box

    box = make_box(name="CV_3", grid=16)
    pred = prediction_box(box, np.zeros_like(box.galaxies), model="two-phase:t", trained_on="A", seed=0,
                          realisation=1, realisations=2)
    msg = "two-phase:t prediction for box 'CV_3' (realisation 1) holds no galaxies"
    assert msg in warnings_log.text and pred.meta["warnings"] == msg
    assert "warnings" not in prediction_box(box, box.galaxies, model="m", trained_on="A", seed=0).meta


def test_sampler_returning_empty_fields_is_said(box_dir, tmp_path, monkeypatch, capsys):
    import torch

    from galaxygen.models.vdm import task as vdm_task
    from galaxygen.models.registry import train

    config = {"task": "vdm", "device": "cpu", "seed": 1,
              "data": {"crop": 16, "pad": 0, "focus": 0.0, "validation": 0.25},
              "model": {"dim": 3, "width": 8, "mults": [1, 2], "groups": 4, "baseline": "gaussian"},
              "validation_crops": 1, "train": {"steps": 1, "batch_size": 1, "eval_every": 1,
                                               "checkpoint_every": 1, "log_every": 1},
              "sample": {"steps": 2, "batch": 2}}
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(config, box_dir, tmp_path / "run")
    finally:
        torch.set_num_threads(n)

    def empty_sampler(model, cond, params, *, samples, **kw):  # far below the 0.5-galaxy rounding threshold
        return torch.full((samples, *cond.shape[1:]), -50.0)

    monkeypatch.setattr(vdm_task, "sample_box", empty_sampler)
    assert main(["predict", str(tmp_path / "run"), str(box_dir / "CV_3.h5"), "--out", str(tmp_path / "p"),
                 "--samples", "2"]) == 0
    err = capsys.readouterr().err
    for k in range(2):
        msg = f"vdm prediction for box 'CV_3' (realisation {k}) holds no galaxies: the sampler returned an empty field"
        assert f"galaxygen predict: warning: {msg}" in err
        assert msg in read_box(tmp_path / "p" / f"CV_3_r{k}.h5").meta["warnings"]


def test_verbosity_flags_before_or_after_the_command(make_box, tmp_path, capsys):
    from galaxygen.cli import build_parser
    from galaxygen.cli.verbosity import level

    parser = build_parser()
    assert level(parser.parse_args(["info", "x.h5"])) == logging.WARNING
    assert level(parser.parse_args(["-v", "info", "x.h5"])) == logging.INFO
    assert level(parser.parse_args(["info", "x.h5", "-vv"])) == logging.DEBUG
    assert level(parser.parse_args(["hod", "fit", "b.h5", "--model", "seed3", "--out", "o", "-q"])) == logging.ERROR
    with pytest.raises(SystemExit):
        parser.parse_args(["info", "x.h5", "-v", "-q"])
    capsys.readouterr()
