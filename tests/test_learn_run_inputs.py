"""`predict` checks its inputs against the run's training boxes (inputs.json): a box of the training
split gets a warning; another box size, voxel size or redshift is refused unless --allow-mismatch."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from learn_helpers import learnable_box, tiny_config, write_learnable_boxes
from galaxygen.box import read_box, write_box
from galaxygen.fingerprint import array_hash
from galaxygen.cli import main

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A two-step classifier run on CV_0..CV_2 (16^3, 25 Mpc/h, z = 0)."""
    import torch

    from galaxygen.models.registry import train

    d = tmp_path_factory.mktemp("run_inputs")
    boxes = write_learnable_boxes(d / "boxes", n=3)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(tiny_config(steps=2), boxes, d / "run")
    finally:
        torch.set_num_threads(n)
    return d


def test_run_records_geometry_and_box_hashes(run):
    rec = json.loads((run / "run" / "inputs.json").read_text())
    assert rec["geometries"] == [{"box_size": 25.0, "grid": 16, "voxel_size": 25.0 / 16, "redshift": 0.0}]
    split = json.loads((run / "run" / "split.json").read_text())
    by_name = {b["name"]: b for b in rec["boxes"]}
    for which in ("train", "validation"):
        for r in split[which]:
            assert by_name[r["name"]]["split"] == which
            assert by_name[r["name"]]["dm"] == array_hash(read_box(r["path"]).dm)


def test_predict_on_a_training_box_warns(run, tmp_path, caplog):
    split = json.loads((run / "run" / "split.json").read_text())
    train_name = split["train"][0]["name"]
    with caplog.at_level(logging.WARNING, logger="galaxygen"):
        assert main(["predict", str(run / "run"), str(run / "boxes" / f"{train_name}.h5"), "--out",
                     str(tmp_path / "p1")]) == 0
    assert f"{train_name}.h5: box {train_name!r} was in the run's train split" in caplog.text
    caplog.clear()
    # recognised by content, not by path or name: a renamed copy is still a training box
    write_box(tmp_path / "copy.h5", read_box(run / "boxes" / f"{train_name}.h5").replace(name="LH_0"))
    with caplog.at_level(logging.WARNING, logger="galaxygen"):
        assert main(["predict", str(run / "run"), str(tmp_path / "copy.h5"), "--out", str(tmp_path / "p2")]) == 0
    assert "box 'LH_0' was in the run's train split" in caplog.text
    caplog.clear()
    # a box the run never saw: no warning
    write_box(tmp_path / "new.h5", learnable_box("CV_9", seed=9))
    with caplog.at_level(logging.WARNING, logger="galaxygen"):
        assert main(["predict", str(run / "run"), str(tmp_path / "new.h5"), "--out", str(tmp_path / "p3")]) == 0
    assert "split" not in caplog.text


@pytest.mark.parametrize("change, said", [({"box_size": 50.0}, "box size 50 Mpc/h (trained on 25)"),
                                          ({"grid": 32}, "voxel size 0.7812 Mpc/h (trained on 1.562)"),
                                          ({"redshift": 1.0}, "redshift 1 (trained on 0)")])
def test_predict_refuses_other_geometry_unless_allowed(run, tmp_path, capsys, caplog, change, said):
    grid = change.get("grid", 16)
    box = learnable_box("CV_9", grid=grid, seed=9, box_size=change.get("box_size", 25.0))
    if "redshift" in change:
        box = box.replace(redshift=change["redshift"])
    write_box(tmp_path / "other.h5", box)
    out = tmp_path / "pred"
    args = ["predict", str(run / "run"), str(tmp_path / "other.h5"), "--out", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert str(tmp_path / "other.h5") in err and said in err and "--allow-mismatch" in err
    assert not out.exists()
    with caplog.at_level(logging.WARNING, logger="galaxygen"):
        assert main(args + ["--allow-mismatch"]) == 0
    assert said in caplog.text  # still said, as a warning
    assert read_box(out / "CV_9.h5").source == "prediction"


def test_a_dm_only_box_predicts_and_is_refused_as_truth(run, tmp_path, capsys):
    """One's own DM: positions -> `ingest nbody --like RUN` (a box without fields/galaxies) -> predict;
    evaluate and train refuse it (nothing to score or learn)."""
    rng = np.random.default_rng(0)
    dm = learnable_box("CV_7", seed=7).dm                                  # particles per 25/16 Mpc/h voxel
    idx = np.repeat(np.argwhere(dm >= 0), dm.reshape(-1).astype(int), axis=0)
    np.save(tmp_path / "mine.npy", ((idx + rng.uniform(0.05, 0.95, idx.shape)) * 25.0 / 16).astype(np.float32))
    assert main(["ingest", "nbody", str(tmp_path / "mine.npy"), str(tmp_path / "dm"), "--like", str(run / "run"),
                 "--box-size", "25", "--omega-m", "0.3"]) == 0
    capsys.readouterr()
    box = read_box(tmp_path / "dm" / "mine.h5", allow_dm_only=True)
    assert np.array_equal(box.dm, dm) and box.grid == 16
    out = tmp_path / "pred"
    assert main(["predict", str(run / "run"), str(tmp_path / "dm" / "mine.h5"), "--out", str(out)]) == 0
    pred = read_box(out / "mine.h5")
    assert pred.source == "prediction" and np.array_equal(pred.dm, dm) and pred.params == {"omega_m": 0.3}
    assert pred.meta["made_from_dm"] == array_hash(dm) and "made_from_galaxies" not in pred.meta
    capsys.readouterr()
    assert main(["evaluate", "--truth", str(tmp_path / "dm" / "mine.h5"), "--pred", f"net={out / 'mine.h5'}",
                 "--out", str(tmp_path / "eval")]) == 2
    assert "fields/galaxies: missing: a DM-only box can be predicted, not trained on or scored" in \
        capsys.readouterr().err
    assert main(["train", "--config", "two-phase-small", "--boxes", str(tmp_path / "dm"),
                 "--out", str(tmp_path / "run2")]) == 2
    assert "a DM-only box can be predicted, not trained on" in capsys.readouterr().err
