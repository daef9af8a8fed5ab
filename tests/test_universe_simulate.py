"""`galaxygen simulate`: CV / LH parameter sets, the CSV table, and end-to-end boxes at 32^3 with
parallel workers and resume."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from galaxygen.box import read_box
from galaxygen.cli import main
from galaxygen.sources.universe.sets import LH_RANGES, parameter_table, params_csv


def test_cv_set_is_fiducial_with_distinct_seeds():
    rows = parameter_table("cv", 5, seed=3)
    assert [r["name"] for r in rows] == [f"CV_{i}" for i in range(5)]
    assert all(r["omega_m"] == 0.3 and r["sigma_8"] == 0.8 and r["a_sn1"] == 1.0 for r in rows)
    assert len({r["seed"] for r in rows}) == 5
    assert parameter_table("cv", 5, seed=3) == rows
    assert parameter_table("cv", 5, seed=4)[0]["seed"] != rows[0]["seed"]


def test_lh_set_is_a_latin_hypercube_in_the_camels_ranges():
    n = 12
    rows = parameter_table("lh", n, seed=1)
    for key, (lo, hi, log) in LH_RANGES.items():
        v = np.array([r[key] for r in rows])
        assert np.all((v >= lo) & (v <= hi))
        u = np.log(v / lo) / np.log(hi / lo) if log else (v - lo) / (hi - lo)
        # one value in each of the n equal-probability strata
        assert sorted(np.floor(u * n).astype(int).tolist()) == list(range(n))
    assert parameter_table("lh", n, seed=1) == rows


def test_params_csv_round_trips():
    rows = parameter_table("lh", 3, seed=2)
    back = list(csv.DictReader(params_csv(rows).splitlines()))
    assert [b["name"] for b in back] == ["LH_0", "LH_1", "LH_2"]
    for r, b in zip(rows, back):
        assert float(b["omega_m"]) == r["omega_m"] and int(b["seed"]) == r["seed"]


def ngp_counts(pos, grid, box):
    idx = np.floor(np.asarray(pos, np.float64) / box * grid).astype(int) % grid
    out = np.zeros((grid,) * 3)
    np.add.at(out, (idx[:, 0], idx[:, 1], idx[:, 2]), 1)
    return out


@pytest.mark.slow
def test_simulate_end_to_end_writes_valid_boxes_and_resumes(tmp_path, capsys):
    out = tmp_path / "suite"
    args = ["simulate", str(out), "--boxes", "2", "--particles", "32", "--grid", "16", "--set", "lh",
            "--seed", "5", "--cola-steps", "10", "--pm-steps", "10", "--device", "cpu", "--velocities",
            "--power-spectrum", "eh"]
    assert main(args + ["--workers", "2"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert [b["status"] for b in summary["boxes"]] == ["written", "written"]
    table = list(csv.DictReader((out / "params.csv").read_text().splitlines()))
    for row, entry in zip(table, summary["boxes"]):
        box = read_box(entry["path"])
        assert box.name == row["name"] and box.source == "synthetic" and box.suite == "tng-like"
        assert box.grid == 16 and box.box_size == 25.0
        assert box.params["omega_m"] == pytest.approx(float(row["omega_m"]))
        assert box.params["seed"] == float(row["seed"])
        assert box.meta["particles"] == 32 and box.meta["cola_steps"] == 10 and box.meta["pm_steps"] == 10
        assert "surrogate" in box.meta["galaxy_model_kind"]
        assert box.dm.sum() == 32**3  # every COLA particle counted once
        gal, halos = box.galaxy_catalog, box.halos
        assert len(gal["pos"]) > 0 and box.galaxies.sum() == len(gal["pos"])
        assert np.array_equal(box.galaxies, ngp_counts(gal["pos"], 16, 25.0))
        assert np.all((gal["host_halo"] >= -1) & (gal["host_halo"] < len(halos["mass"])))
        # most PM hosts have a COLA counterpart (10 COLA steps; with 5, COLA misses many small halos)
        assert (gal["host_halo"] >= 0).mean() > 0.7
        matched = gal["host_halo"] >= 0
        d = gal["pos"][matched] - halos["pos"][gal["host_halo"][matched]]
        d -= 25.0 * np.round(d / 25.0)
        assert np.median(np.linalg.norm(d, axis=1)) < 0.5
        assert np.all(np.diff(halos["mass"]) <= 0) and halos["n_particles"].min() >= 20
        assert box.dm_velocity.shape == (3, 16, 16, 16)
        assert np.all(box.dm_velocity[:, box.dm == 0] == 0)
        assert 50 < np.abs(box.dm_velocity[:, box.dm > 0]).mean() < 2000  # km/s, not Mpc/h or a
    first = read_box(out / "LH_1.h5")

    # resume: nothing to do, files untouched
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.glob("*.h5")}
    assert main(args) == 0
    assert [b["status"] for b in json.loads(capsys.readouterr().out)["boxes"]] == ["skipped", "skipped"]
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.h5")} == mtimes
    # an interrupted run (one box missing) redoes only that box, reproducibly
    (out / "LH_1.h5").unlink()
    assert main(args) == 0
    assert [b["status"] for b in json.loads(capsys.readouterr().out)["boxes"]] == ["skipped", "written"]
    again = read_box(out / "LH_1.h5")
    assert np.array_equal(again.dm, first.dm)
    assert np.array_equal(again.galaxy_catalog["pos"], first.galaxy_catalog["pos"])
    # other settings on the same folder are refused, not mixed
    assert main(args + ["--pm-steps", "11"]) == 2
    assert "different" in capsys.readouterr().err


def test_simulate_rejects_bad_options(tmp_path, capsys):
    assert main(["simulate", str(tmp_path / "x"), "--boxes", "0"]) == 2
    assert "boxes" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["simulate", str(tmp_path / "x"), "--galaxy-model", "nope"])
