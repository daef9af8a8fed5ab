"""`galaxygen simulate` at chosen parameters: values given as options, a points file, the 1p set."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from galaxygen.box import read_box
from galaxygen.cli import main
from galaxygen.errors import ConfigError
from galaxygen.sources.universe.sets import FIDUCIAL, LH_RANGES, ONE_P_LOG, parameter_table, params_csv

PARAMS = tuple(FIDUCIAL)


def test_cv_set_at_given_values_keeps_the_others_fiducial():
    rows = parameter_table("cv", 3, seed=0, base={"omega_m": 0.25, "sigma_8": 0.85, "a_sn1": 2.0})
    for r in rows:
        assert (r["omega_m"], r["sigma_8"], r["a_sn1"]) == (0.25, 0.85, 2.0)
        assert all(r[k] == 1.0 for k in ("a_agn1", "a_sn2", "a_agn2"))
    assert len({r["seed"] for r in rows}) == 3
    # without values: the fiducial CV set, as before
    assert all(r[k] == FIDUCIAL[k] for r in parameter_table("cv", 2, seed=0) for k in PARAMS)


def test_one_p_set_varies_one_parameter_at_a_time_over_its_range():
    rows = parameter_table("1p", 5, seed=7)
    assert len(rows) == 1 + 6 * 4
    base = rows[0]
    assert base["name"] == "1P_base" and all(base[k] == FIDUCIAL[k] for k in PARAMS)
    assert len({(r["seed"], r["galaxy_seed"]) for r in rows}) == 1       # one seed for the whole set
    for j, key in enumerate(PARAMS, 1):
        mine = [r for r in rows if r["name"].startswith(f"1P_p{j}_")]
        assert [r["name"] for r in mine] == [f"1P_p{j}_{k}" for k in ("n2", "n1", "1", "2")]
        for r in mine:
            assert [k for k in PARAMS if r[k] != base[k]] == [key]
        values = [mine[0][key], mine[1][key], base[key], mine[2][key], mine[3][key]]
        lo, hi, _ = LH_RANGES[key]
        assert values[0] == pytest.approx(lo) and values[-1] == pytest.approx(hi)
        steps = np.diff(np.log(values)) if key in ONE_P_LOG else np.diff(values)
        assert np.allclose(steps[:2], steps[0]) and np.allclose(steps[2:], steps[2])
    a_sn1 = [r["a_sn1"] for r in rows if r["name"].startswith("1P_p3_")]
    assert a_sn1 == pytest.approx([0.25, 0.5, 2.0, 4.0])               # as CAMELS' 1P: even in log


def test_one_p_set_around_given_values_and_its_refusals():
    rows = parameter_table("1p", 3, seed=0, base={"a_sn1": 2.0})
    assert rows[0]["a_sn1"] == 2.0 and [r["a_sn1"] for r in rows if r["name"].startswith("1P_p3_")] == \
        pytest.approx([0.25, 4.0])
    assert all(r["a_sn1"] == 2.0 for r in rows if not r["name"].startswith("1P_p3_"))
    with pytest.raises(ConfigError, match="odd"):
        parameter_table("1p", 4, seed=0)
    with pytest.raises(ConfigError, match="omega_m: 0.6 lies outside the CAMELS range"):
        parameter_table("1p", 5, seed=0, base={"omega_m": 0.6})
    with pytest.raises(ConfigError, match="lh set draws all six"):
        parameter_table("lh", 4, seed=0, base={"omega_m": 0.2})
    with pytest.raises(ConfigError, match=r"omega_m: 1.5 is out of range"):
        parameter_table("cv", 1, seed=0, base={"omega_m": 1.5})


def test_points_file_one_box_a_row(tmp_path):
    path = tmp_path / "points.csv"
    path.write_text("name,Omega_m,sigma_8,A_SN1,seed\n"
                    "low,0.2,0.7,0.5,11\n"
                    "# a comment line\n"
                    "high,0.4,0.9,3.0,12\n")
    rows = parameter_table("points", None, seed=0, base={"a_agn2": 1.5}, points=path)
    assert [r["name"] for r in rows] == ["low", "high"]
    assert (rows[0]["omega_m"], rows[0]["sigma_8"], rows[0]["a_sn1"], rows[0]["seed"]) == (0.2, 0.7, 0.5, 11)
    assert rows[1]["a_agn2"] == 1.5 and rows[1]["a_agn1"] == 1.0      # from the values given, else fiducial
    back = list(csv.DictReader(params_csv(rows).splitlines()))
    assert [b["name"] for b in back] == ["low", "high"] and float(back[1]["a_sn1"]) == 3.0
    # params.csv of any set is a points file: the same names, parameters and IC seeds again
    lh = parameter_table("lh", 3, seed=2)
    path.write_text(params_csv(lh))
    again = parameter_table("points", None, seed=2, points=path)
    assert [{k: r[k] for k in ("name", *PARAMS, "seed")} for r in again] == \
        [{k: r[k] for k in ("name", *PARAMS, "seed")} for r in lh]
    # without name and seed columns: P_<i>, seeds from (seed, i)
    path.write_text("omega_m\n0.2\n0.3\n")
    rows = parameter_table("points", None, seed=0, points=path)
    assert [r["name"] for r in rows] == ["P_0", "P_1"] and rows[0]["seed"] != rows[1]["seed"]


@pytest.mark.parametrize("text, said", [
    ("omega_m,omega_b\n0.3,0.05\n", "unknown column(s) ['omega_b']"),
    ("omega_m\nabc\n", ":2: not a number"),
    ("name,omega_m\na,0.3\na,0.2\n", ":3: name 'a' repeats"),
    ("omega_m\n0.3,0.2\n", ":2: 2 values, the header names 1"),
    ("omega_m\n", "a header but no rows"),
    ("sigma_8\n-1\n", ":2: sigma_8: -1 is out of range"),
])
def test_points_file_refusals_name_file_and_line(tmp_path, text, said):
    path = tmp_path / "p.csv"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        parameter_table("points", None, seed=0, points=path)
    assert str(path) in str(err.value) and said in str(err.value)


FAST = ["--particles", "16", "--cola-steps", "2", "--pm-steps", "2", "--power-spectrum", "eh", "--device", "cpu"]


def test_simulate_at_given_values_and_from_points(tmp_path, capsys):
    out = tmp_path / "at"
    args = ["simulate", str(out), "--boxes", "1", "--omega-m", "0.25", "--sigma-8", "0.85", "--a-sn1", "2", *FAST]
    assert main(args) == 0
    entry = json.loads(capsys.readouterr().out)["boxes"][0]
    box = read_box(entry["path"])
    assert box.params == {"omega_m": 0.25, "sigma_8": 0.85, "a_sn1": 2.0, "a_agn1": 1.0, "a_sn2": 1.0,
                          "a_agn2": 1.0, "seed": box.params["seed"]}
    table = list(csv.DictReader((out / "params.csv").read_text().splitlines()))
    assert table[0]["name"] == "CV_0" and float(table[0]["omega_m"]) == 0.25

    points = tmp_path / "points.csv"
    points.write_text("name,omega_m,a_agn1,seed\nmine,0.35,3,42\n")
    assert main(["simulate", str(tmp_path / "pts"), "--points", str(points), *FAST]) == 0
    box = read_box(json.loads(capsys.readouterr().out)["boxes"][0]["path"])
    assert box.name == "mine" and box.params["seed"] == 42.0 and box.meta["ic_seed"] == 42
    assert box.params["omega_m"] == 0.35 and box.params["a_agn1"] == 3.0 and box.params["sigma_8"] == 0.8


@pytest.mark.parametrize("extra, said", [
    (["--set", "lh", "--omega-m", "0.2"], "--omega-m: an lh set draws all six"),
    (["--omega-m", "2"], "--omega-m: 2 is out of range"),
    (["--set", "1p", "--boxes", "4"], "--boxes: a 1p set takes an odd number"),
    (["--points", "p.csv", "--boxes", "2"], "--boxes: a --points file makes one box per row"),
])
def test_simulate_refuses_bad_values(tmp_path, capsys, extra, said):
    assert main(["simulate", str(tmp_path / "x"), *extra]) == 2
    assert said in capsys.readouterr().err
