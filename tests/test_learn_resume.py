"""--resume does not depend on the working directory, and refuses boxes that are not the run's own."""

from __future__ import annotations

import csv
import json

import pytest

from galaxygen.box import write_box
from galaxygen.cli import main
from learn_helpers import learnable_box, tiny_config, write_learnable_boxes

pytestmark = pytest.mark.usefixtures("single_thread")


def _start_and_kill(tmp_path, monkeypatch):
    """A run started in tmp_path/a with relative --boxes, killed (Ctrl-C) after its first checkpoint."""
    from galaxygen.training import trainer

    here = tmp_path / "a"
    write_learnable_boxes(here / "boxes", n=3)
    config = tiny_config(steps=4)
    config["classifier"]["train"].update(checkpoint_every=2, eval_every=2)
    (here / "cfg.json").write_text(json.dumps(config))
    real_save = trainer.save_checkpoint

    def save_then_kill(path, state):
        real_save(path, state)
        raise KeyboardInterrupt

    monkeypatch.chdir(here)
    monkeypatch.setattr(trainer, "save_checkpoint", save_then_kill)
    assert main(["train", "--config", "cfg.json", "--boxes", "boxes", "--out", "run"]) == 130
    monkeypatch.undo()
    assert not (here / "run" / "classifier" / "done.json").exists()
    return here


def test_resume_from_another_working_directory(tmp_path, monkeypatch):
    here = _start_and_kill(tmp_path, monkeypatch)
    split = json.loads((here / "run" / "split.json").read_text())
    for region in split["train"] + split["validation"]:
        assert region["path"] == str(here / "boxes" / f"{region['name']}.h5")  # absolute
    elsewhere = tmp_path / "b"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["train", "--config", "../a/cfg.json", "--boxes", "../a/boxes", "--out", "../a/run", "--resume"]) == 0
    done = json.loads((here / "run" / "classifier" / "done.json").read_text())
    assert done["steps"] == 4
    rows = list(csv.DictReader(open(here / "run" / "classifier" / "train_log.csv")))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]  # continued from the checkpoint at step 2


def test_resume_refuses_boxes_that_differ_from_the_runs(tmp_path, monkeypatch, capsys):
    here = _start_and_kill(tmp_path, monkeypatch)
    capsys.readouterr()
    checkpoint = here / "run" / "classifier" / "checkpoints" / "last.pt"
    before = checkpoint.read_bytes()
    resume = ["train", "--config", str(here / "cfg.json"), "--out", str(here / "run"), "--resume", "--boxes"]
    # same name, other content
    write_box(here / "boxes" / "CV_1.h5", learnable_box("CV_1", seed=7), overwrite=True)
    assert main(resume + [str(here / "boxes")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "CV_1" in err and "differs in content" in err and "split.json" in err
    # a box missing, or one the run did not start with
    write_box(here / "boxes" / "CV_1.h5", learnable_box("CV_1", seed=1), overwrite=True)  # the original again
    assert main(resume + [str(here / "boxes" / "CV_0.h5"), str(here / "boxes" / "CV_1.h5")]) == 2
    assert "missing ['CV_2']" in capsys.readouterr().err
    write_box(here / "more" / "CV_3.h5", learnable_box("CV_3", seed=3))
    assert main(resume + [str(here / "boxes"), str(here / "more")]) == 2
    assert "not in the run ['CV_3']" in capsys.readouterr().err
    assert checkpoint.read_bytes() == before and not (here / "run" / "classifier" / "done.json").exists()
    # the same boxes (rewritten, identical content) resume
    assert main(resume + [str(here / "boxes")]) == 0
