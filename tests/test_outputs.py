"""--overwrite replaces only what galaxygen wrote: the record of outputs, and every command that replaces outputs."""

from __future__ import annotations

import json

import pytest

from evaluate_helpers import as_prediction, clustered_truth, write_set
from galaxygen.cli import main
from galaxygen.errors import GalaxygenError
from galaxygen.outputs import RECORD, check_file, claim_folder, record, staged_folder, written_by
from learn_helpers import tiny_config, write_learnable_boxes

pytestmark = pytest.mark.usefixtures("single_thread")


def _project(folder):
    """A user's project folder: notes, data and a config.json of their own."""
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "obs.csv").write_text("1,2,3\n")
    (folder / "notes.txt").write_text("my notes")
    (folder / "config.json").write_text('{"mine": true}')
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _contents(folder):
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_train_overwrite_refuses_a_project_folder_and_replaces_its_own_run(tmp_path, capsys):
    boxes = write_learnable_boxes(tmp_path / "boxes", n=2)
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(tiny_config(steps=2)))
    project = tmp_path / "project"
    before = _project(project)
    train = ["train", "--config", str(cfg), "--boxes", str(boxes), "--out"]
    assert main(train + [str(project), "--overwrite"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert str(project) in line and "config.json" in line and "notes.txt" in line and "--overwrite" in line
    assert _contents(project) == before  # nothing deleted, nothing written
    # without --overwrite a non-empty folder is refused too (the run is not mixed into it)
    (project / "config.json").unlink()
    assert main(train + [str(project)]) == 2
    assert str(project) in _one_line(capsys.readouterr().err)
    assert not (project / "config.json").exists() and not (project / RECORD).exists()

    run = tmp_path / "run"  # a folder galaxygen train wrote is replaced
    assert main(train + [str(run)]) == 0
    capsys.readouterr()
    (run / "classifier" / "stale.txt").write_text("inside a folder train created: part of the run")
    assert main(train + [str(run), "--overwrite"]) == 0
    capsys.readouterr()
    assert not (run / "classifier" / "stale.txt").exists() and (run / "classifier" / "done.json").is_file()
    assert written_by(run)["config.json"] == "train"
    # ... unless someone put something of their own next to it
    (run / "notes.txt").write_text("results look good")
    assert main(train + [str(run), "--overwrite"]) == 2
    assert "notes.txt" in _one_line(capsys.readouterr().err)
    assert (run / "notes.txt").read_text() == "results look good" and (run / "config.json").is_file()


def test_staged_folder_replaces_only_its_own_command_and_leaves_nothing_on_failure(tmp_path):
    out = tmp_path / "out"
    with staged_folder(out, "evaluate", overwrite=False) as tmp:
        assert tmp.parent == tmp_path and not out.exists()
        (tmp / "a.txt").write_text("1")
    assert sorted(p.name for p in out.iterdir()) == [RECORD, "a.txt"]
    assert written_by(out) == {"a.txt": "evaluate"}
    with pytest.raises(GalaxygenError, match="already exists"):
        with staged_folder(out, "evaluate", overwrite=False):
            pass
    with pytest.raises(GalaxygenError, match="not written there by galaxygen predict"):
        with staged_folder(out, "predict", overwrite=True):
            pass
    with pytest.raises(RuntimeError):  # a failure half-way leaves the old folder and no temporary one
        with staged_folder(out, "evaluate", overwrite=True) as tmp:
            (tmp / "b.txt").write_text("half")
            raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert (out / "a.txt").read_text() == "1" and not (out / "b.txt").exists()
    with staged_folder(out, "evaluate", overwrite=True) as tmp:
        (tmp / "b.txt").write_text("2")
    assert sorted(p.name for p in out.iterdir()) == [RECORD, "b.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    (tmp_path / "empty").mkdir()  # an existing empty folder is simply used
    with staged_folder(tmp_path / "empty", "evaluate", overwrite=False) as tmp:
        (tmp / "c.txt").write_text("3")
    assert (tmp_path / "empty" / "c.txt").read_text() == "3"


def test_files_are_replaced_only_when_recorded_as_the_same_commands(tmp_path):
    (tmp_path / "CV_0.h5").write_text("a user's file")
    with pytest.raises(GalaxygenError, match="already exists"):
        check_file(tmp_path / "CV_0.h5", "simulate", overwrite=False)
    with pytest.raises(GalaxygenError, match=r"CV_0\.h5 not written there by galaxygen simulate"):
        check_file(tmp_path / "CV_0.h5", "simulate", overwrite=True)
    record(tmp_path, "ingest", ["CV_0.h5"])
    with pytest.raises(GalaxygenError, match="galaxygen simulate"):  # another command's file
        check_file(tmp_path / "CV_0.h5", "simulate", overwrite=True)
    record(tmp_path, "simulate", ["CV_0.h5", "CV_1.h5"])
    assert check_file(tmp_path / "CV_0.h5", "simulate", overwrite=True) == tmp_path / "CV_0.h5"
    assert written_by(tmp_path) == {"CV_0.h5": "simulate", "CV_1.h5": "simulate"}
    (tmp_path / RECORD).write_text("not json")  # an unreadable record proves nothing
    with pytest.raises(GalaxygenError, match="not written there"):
        check_file(tmp_path / "CV_0.h5", "simulate", overwrite=True)


def test_claim_folder_clears_only_its_own_entries(tmp_path):
    demo = tmp_path / "demo"
    claim_folder(demo, "demo", ("demo.json", "boxes"), overwrite=False)
    (demo / "boxes").mkdir()
    (demo / "boxes" / "CV_0.h5").write_text("x")
    (demo / "demo.json").write_text("{}")
    with pytest.raises(GalaxygenError, match="already exists and is not empty"):
        claim_folder(demo, "demo", ("demo.json", "boxes"), overwrite=False)
    with pytest.raises(GalaxygenError, match="not written there by galaxygen train"):
        claim_folder(demo, "train", ("config.json",), overwrite=True)
    claim_folder(demo, "demo", ("demo.json", "boxes"), overwrite=True)
    assert sorted(p.name for p in demo.iterdir()) == [RECORD]


def test_evaluate_and_hod_overwrite_refuse_what_they_did_not_write(tmp_path, make_box, capsys):
    truth = clustered_truth(make_box, "CV_0", seed=0, grid=16)
    tdir = write_set(tmp_path / "truth", [truth])
    pdir = write_set(tmp_path / "pred", [as_prediction(truth, truth.galaxies)])
    before = _contents(tmp_path / "truth")
    # evaluate into the truth folder: refused, the truth boxes are kept
    assert main(["evaluate", "--truth", str(tdir), "--pred", f"p={pdir}", "--out", str(tdir), "--overwrite"]) == 2
    assert str(tdir) in _one_line(capsys.readouterr().err)
    assert _contents(tmp_path / "truth") == before
    # hod fit --out onto a user's file: refused
    hdir = write_set(tmp_path / "halos", [make_box(name="CV_0", seed=0)])
    before = _contents(hdir)
    (tmp_path / "hod.json").write_text('{"my": "fit"}')
    assert main(["hod", "fit", str(hdir), "--model", "seed3", "--out", str(tmp_path / "hod.json"), "--overwrite"]) == 2
    assert "hod.json" in _one_line(capsys.readouterr().err)
    assert (tmp_path / "hod.json").read_text() == '{"my": "fit"}'
    # a fit galaxygen wrote is replaced; populating into the boxes' own folder is refused
    fit = tmp_path / "fits" / "hod.json"
    assert main(["hod", "fit", str(hdir), "--model", "seed3", "--out", str(fit)]) == 0
    assert main(["hod", "fit", str(hdir), "--model", "seed3", "--out", str(fit), "--overwrite"]) == 0
    capsys.readouterr()
    assert main(["hod", "populate", str(fit), str(hdir), "--out", str(hdir), "--overwrite"]) == 2
    assert "CV_0.h5" in _one_line(capsys.readouterr().err)
    assert _contents(hdir) == before
