"""Beyond one machine (docs/scale.md): --shard K/N and --dask on the one runner."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from galaxygen import runner
from galaxygen.box import read_box
from galaxygen.cli import main
from galaxygen.io import atomic_path
from galaxygen.outputs import written_by

SIMULATE = ["--boxes", "3", "--particles", "16", "--grid", "16", "--set", "lh", "--seed", "2",
            "--cola-steps", "2", "--pm-steps", "2", "--device", "cpu", "--power-spectrum", "eh"]


@pytest.fixture(scope="module")
def serial_set(tmp_path_factory):
    out = tmp_path_factory.mktemp("serial") / "set"
    assert main(["simulate", str(out), *SIMULATE]) == 0
    return out


def same_boxes(a: Path, b: Path) -> None:
    names = sorted(p.name for p in a.glob("*.h5"))
    assert names == sorted(p.name for p in b.glob("*.h5")) == ["LH_0.h5", "LH_1.h5", "LH_2.h5"]
    for name in names:
        x, y = read_box(a / name), read_box(b / name)
        assert np.array_equal(x.dm, y.dm) and np.array_equal(x.galaxies, y.galaxies)
        for cat in ("halos", "galaxy_catalog"):
            cx, cy = getattr(x, cat), getattr(y, cat)
            assert cx.keys() == cy.keys() and all(np.array_equal(cx[k], cy[k]) for k in cx), (name, cat)
        assert x.params == y.params and x.meta == y.meta


def test_shards_together_make_the_full_set_with_the_same_params_csv(serial_set, tmp_path, capsys):
    out = tmp_path / "sharded"
    for k in (2, 1):
        assert main(["simulate", str(out), *SIMULATE, "--shard", f"{k}/2"]) == 0
        names = [b["name"] for b in json.loads(capsys.readouterr().out)["boxes"]]
        assert names == (["LH_0", "LH_2"] if k == 1 else ["LH_1"])
    same_boxes(serial_set, out)
    assert (out / "params.csv").read_text() == (serial_set / "params.csv").read_text()
    # each shard kept its own part of the record: together they list every output, as one run's record does
    assert written_by(out) == written_by(serial_set)
    assert sorted(p.name for p in out.glob(".galaxygen-outputs*")) == [
        ".galaxygen-outputs.shard-1-of-2.json", ".galaxygen-outputs.shard-2-of-2.json"]
    # a resubmitted shard skips its finished boxes
    assert main(["simulate", str(out), *SIMULATE, "--shard", "2/2"]) == 0
    assert [b["status"] for b in json.loads(capsys.readouterr().out)["boxes"]] == ["skipped"]
    # --overwrite sees the whole record: a shard may replace its boxes
    assert main(["simulate", str(out), *SIMULATE, "--shard", "2/2", "--overwrite"]) == 0
    with pytest.raises(SystemExit):
        main(["simulate", str(out), *SIMULATE, "--shard", "3/2"])
    assert "K/N" in capsys.readouterr().err


@pytest.mark.timeout(300)
def test_dask_local_cluster_of_two_workers_equals_serial_bit_for_bit(serial_set, tmp_path, capsys):
    pytest.importorskip("distributed")
    out = tmp_path / "dask"
    assert main(["simulate", str(out), *SIMULATE, "--dask", "local:2"]) == 0
    assert [b["status"] for b in json.loads(capsys.readouterr().out)["boxes"]] == ["written"] * 3
    same_boxes(serial_set, out)
    assert (out / "params.csv").read_text() == (serial_set / "params.csv").read_text()


def fail_once(marker: str, out: str) -> str:
    """A task that raises the first time it runs (a transient failure), then writes `out`."""
    if not os.path.exists(marker):
        Path(marker).write_text("failed once")
        raise RuntimeError("injected failure")
    Path(out).write_text("done")
    return "ok"


def die_once_mid_write(marker: str, out: str) -> str:
    """A task whose worker process dies the first time, in the middle of writing `out`."""
    with atomic_path(out) as tmp:
        tmp.write_text("half")
        if not os.path.exists(marker):
            Path(marker).write_text("died once")
            os._exit(1)
        tmp.write_text("whole")
    return "ok"


def test_a_task_that_fails_once_is_retried_and_the_set_completes(tmp_path):
    pytest.importorskip("distributed")
    tasks = [runner.Task(f"t{i}", fail_once, (str(tmp_path / f"m{i}"), str(tmp_path / f"t{i}.txt")),
                         output=tmp_path / f"t{i}.txt") for i in range(3)]
    done = runner.run(runner.plan(tasks, command="test"), backend=runner.DaskBackend("local:2", processes=False))
    assert not done.failed and sorted(done.results) == ["t0", "t1", "t2"]
    assert all((tmp_path / f"t{i}.txt").read_text() == "done" for i in range(3))
    assert sorted(written_by(tmp_path)) == ["t0.txt", "t1.txt", "t2.txt"]
    # with no retries left, the failure is the item's, collected by name
    again = [runner.Task("u", fail_once, (str(tmp_path / "mu"), str(tmp_path / "u.txt")), output=tmp_path / "u.txt")]
    done = runner.run(runner.plan(again), backend=runner.DaskBackend("local:1", retries=0, processes=False))
    assert list(done.failed) == ["u"] and "injected" in str(done.failed["u"])


@pytest.mark.timeout(300)
def test_a_worker_killed_mid_box_leaves_no_partial_file_and_the_box_is_redone(tmp_path):
    pytest.importorskip("distributed")
    out = tmp_path / "box.txt"
    task = runner.Task("box", die_once_mid_write, (str(tmp_path / "marker"), str(out)), output=out)
    done = runner.run(runner.plan([task], command="test"), backend=runner.DaskBackend("local:1"))
    assert done.results == {"box": "ok"} and out.read_text() == "whole"
    assert (tmp_path / "marker").exists()  # it did die once
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == ["box.txt", "marker"]


def test_missing_dask_says_what_to_install_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    assert main(["simulate", str(tmp_path / "x"), *SIMULATE, "--dask", "local:2"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install galaxygen[dask]" in err
    assert not (tmp_path / "x").exists()


def test_predict_shards_share_the_folder_and_equal_one_run(tmp_path, capsys):
    from learn_helpers import tiny_config, write_learnable_boxes

    from galaxygen.models.registry import train

    boxes = write_learnable_boxes(tmp_path / "boxes", n=3)
    train(tiny_config(steps=2, phases=("regressor",)), boxes, tmp_path / "run")
    base = ["predict", str(tmp_path / "run"), str(boxes), "--counts", "poisson", "--samples", "2"]
    assert main(base + ["--out", str(tmp_path / "whole")]) == 0
    capsys.readouterr()
    for k in (1, 2):
        assert main(base + ["--out", str(tmp_path / "shards"), "--shard", f"{k}/2"]) == 0
        written = [Path(p).name for p in json.loads(capsys.readouterr().out)["predictions"]]
        assert written == (["CV_0_r0.h5", "CV_0_r1.h5", "CV_2_r0.h5", "CV_2_r1.h5"] if k == 1
                           else ["CV_1_r0.h5", "CV_1_r1.h5"])
    whole, shards = tmp_path / "whole", tmp_path / "shards"
    assert sorted(p.name for p in shards.glob("*.h5")) == sorted(p.name for p in whole.glob("*.h5"))
    for p in whole.glob("*.h5"):
        assert np.array_equal(read_box(p).galaxies, read_box(shards / p.name).galaxies)
    assert written_by(shards) == written_by(whole)
    # a resubmitted shard skips the boxes whose files are all there and redoes one cut short
    (shards / "CV_1_r1.h5").unlink()
    mtimes = {p.name: p.stat().st_mtime_ns for p in shards.glob("CV_*")}
    assert main(base + ["--out", str(shards), "--shard", "1/2"]) == 0
    assert main(base + ["--out", str(shards), "--shard", "2/2"]) == 0
    now = {p.name: p.stat().st_mtime_ns for p in shards.glob("CV_*")}
    assert [n for n in sorted(now) if now[n] != mtimes.get(n)] == ["CV_1_r0.h5", "CV_1_r1.h5"]
    assert np.array_equal(read_box(shards / "CV_1_r1.h5").galaxies, read_box(whole / "CV_1_r1.h5").galaxies)
