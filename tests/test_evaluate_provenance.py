"""A prediction is never scored against the wrong truth: evaluate checks what each prediction was
made from (hashes of the input's fields/dm, fields/galaxies, params) and refuses a truth box that is
itself a prediction."""

from __future__ import annotations

import numpy as np
import pytest

from evaluate_helpers import as_prediction, clustered_truth, write_set
from galaxygen.box import read_box, write_box
from galaxygen.prediction import made_from, prediction_box
from galaxygen.cli import main
from galaxygen.errors import GalaxygenError
from galaxygen.evaluate import compute


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


def test_prediction_records_what_it_was_made_from(make_box, tmp_path):
    box = make_box(name="CV_0", grid=16)
    write_box(tmp_path / "CV_0.h5", box)
    pred = prediction_box(read_box(tmp_path / "CV_0.h5"), box.galaxies, model="m", trained_on="A", seed=7,
                          source_path=tmp_path / "CV_0.h5")
    write_box(tmp_path / "pred.h5", pred)
    meta = read_box(tmp_path / "pred.h5").meta
    assert meta["made_from_dm"] == made_from(box)["made_from_dm"]
    assert meta["made_from_galaxies"] == made_from(box)["made_from_galaxies"]
    assert meta["made_from_params"] == made_from(box)["made_from_params"]
    assert meta["seed"] == 7 and meta["made_from_file"] == str(tmp_path / "CV_0.h5")
    # a different DM, galaxy field or parameter set gives a different record
    other = box.replace(dm=box.dm + np.float32(1))
    assert made_from(other)["made_from_dm"] != meta["made_from_dm"]
    assert made_from(box.replace(params={**box.params, "omega_m": 0.31}))["made_from_params"] != meta["made_from_params"]
    # an input without galaxies (DM only) records no galaxy hash
    assert "made_from_galaxies" not in made_from(box.replace(galaxies=np.zeros_like(box.galaxies)))


def test_test_prediction_against_training_box_of_same_name_is_refused(make_box, tmp_path, capsys):
    # the reported case: predictions of the test box CV_0 scored against the training box CV_0
    train_box = clustered_truth(make_box, "CV_0", seed=0, grid=16)
    test_box = clustered_truth(make_box, "CV_0", seed=5, grid=16)
    write_set(tmp_path / "train", [train_box])
    pred_dir = write_set(tmp_path / "pred", [as_prediction(test_box, test_box.galaxies)])
    out = tmp_path / "out"
    assert main(["evaluate", "--truth", str(tmp_path / "train"), "--pred", f"net={pred_dir}", "--out", str(out)]) == 2
    err = _one_line_error(capsys)
    assert str(pred_dir / "CV_0.h5") in err and str(tmp_path / "train" / "CV_0.h5") in err
    assert "was not made from" in err and "fields/dm" in err
    assert not out.exists()


def test_same_dm_other_galaxies_or_params_is_refused(make_box, tmp_path):
    truth = clustered_truth(make_box, "CV_0", seed=0, grid=16)
    tdir = write_set(tmp_path / "truth", [truth])
    # made from a box with the same DM but another galaxy model's galaxies
    other_gal = truth.replace(galaxies=np.roll(truth.galaxies, 3, axis=2))
    d = write_set(tmp_path / "gal", [as_prediction(other_gal, other_gal.galaxies)])
    with pytest.raises(GalaxygenError, match=r"gal/CV_0\.h5 was not made from .*truth/CV_0\.h5 \(fields/galaxies differ"):
        compute([tdir], {"p": [d]})
    other_par = truth.replace(params={**truth.params, "sigma_8": 0.9})
    d = write_set(tmp_path / "par", [as_prediction(other_par, truth.galaxies)])
    with pytest.raises(GalaxygenError, match=r"par/CV_0\.h5 was not made from .*\(params differ"):
        compute([tdir], {"p": [d]})
    # a prediction made from the DM alone (no galaxies in its input) is checked on DM and params
    dm_only = truth.replace(galaxies=np.zeros_like(truth.galaxies))
    d = write_set(tmp_path / "dm_only", [as_prediction(dm_only, truth.galaxies)])
    assert compute([tdir], {"p": [d]})[0]["predictions"]["p"]["classification"]["f1"] == 1.0


def test_prediction_given_as_truth_is_refused(make_box, tmp_path, capsys):
    truth = clustered_truth(make_box, "CV_0", seed=0, grid=16)
    pred_dir = write_set(tmp_path / "pred", [as_prediction(truth, truth.galaxies)])
    out = tmp_path / "out"
    # a prediction against itself gave F1 = 1.000
    assert main(["evaluate", "--truth", str(pred_dir), "--pred", f"self={pred_dir}", "--out", str(out)]) == 2
    err = _one_line_error(capsys)
    assert str(pred_dir / "CV_0.h5") in err and "is a prediction" in err and "--truth" in err
    assert not out.exists()


def test_truth_given_as_prediction_and_unrecorded_predictions_are_refused(make_box, tmp_path, capsys):
    truth = clustered_truth(make_box, "CV_0", seed=0, grid=16)
    tdir = write_set(tmp_path / "truth", [truth])
    assert main(["evaluate", "--truth", str(tdir), "--pred", f"t={tdir}", "--out", str(tmp_path / "o")]) == 2
    err = _one_line_error(capsys)
    assert "is not a prediction box (source 'synthetic')" in err and str(tdir / "CV_0.h5") in err
    # a prediction box written without the record (an older galaxygen) cannot be checked
    old = truth.replace(source="prediction", meta={"model": "old", "trained_on": "A"})
    d = write_set(tmp_path / "old", [old])
    assert main(["evaluate", "--truth", str(tdir), "--pred", f"old={d}", "--out", str(tmp_path / "o")]) == 2
    assert "does not record what it was made from" in _one_line_error(capsys)
    assert not (tmp_path / "o").exists()


def test_empty_truth_box_is_refused(make_box, tmp_path):
    truth = clustered_truth(make_box, "CV_0", seed=0, grid=16)
    empty = truth.replace(galaxies=np.zeros_like(truth.galaxies))
    tdir = write_set(tmp_path / "truth", [empty])
    d = write_set(tmp_path / "p", [as_prediction(truth, truth.galaxies)])
    with pytest.raises(GalaxygenError, match=r"truth/CV_0\.h5: fields/galaxies: the truth box holds no galaxies"):
        compute([tdir], {"p": [d]})


def test_matched_pair_records_pass(make_box, tmp_path):
    truth = clustered_truth(make_box, "CV_0", seed=0, grid=16)
    tdir = write_set(tmp_path / "truth", [truth])
    d = write_set(tmp_path / "p", [as_prediction(read_box(tdir / "CV_0.h5"), truth.galaxies)])
    metrics, _ = compute([tdir], {"p": [d]})
    assert metrics["predictions"]["p"]["classification"]["f1"] == 1.0 and metrics["warnings"] == []
