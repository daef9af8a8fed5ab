"""CAMELS parameter files: read by their header line, whatever the column order; clear errors."""

from __future__ import annotations

import pytest

from galaxygen.errors import GalaxygenError
from galaxygen.sources.camels.params import (CAMELS_COLUMNS, CMD_COLUMNS, find_params_file, params_for,
                                     parse_params)
from galaxygen.synthetic.camels import PARAM_HEADER, sim_params, write_params_file


def test_header_order_does_not_matter(tmp_path):
    a = parse_params(write_params_file(tmp_path / "a.txt", range(3)))
    order = ["seed", "A_AGN2", "Name", "sigma_8", "A_SN2", "Omega_m", "A_AGN1", "A_SN1"]
    b = parse_params(write_params_file(tmp_path / "b.txt", range(3), order=order))
    assert a.keys() == b.keys() == {"CV_0", "CV_1", "CV_2"}
    for name in a:
        assert a[name] == pytest.approx(b[name])
        assert a[name] == pytest.approx(sim_params(int(name[3:])), abs=1e-5)
    assert sorted(order) == sorted(PARAM_HEADER)


def test_extra_columns_comments_and_single_row_file(tmp_path):
    p = tmp_path / "p.txt"
    p.write_text("# parameters of the CV set\n# Name Omega_m sigma_8 A_SN1 A_AGN1 A_SN2 A_AGN2 Omega_b seed\n"
                 "CV_7 0.3 0.8 1.0 1.0 1.0 1.0 0.049 7\n")
    table = parse_params(p)
    assert table == {"CV_7": {"omega_m": 0.3, "sigma_8": 0.8, "a_sn1": 1.0, "a_agn1": 1.0, "a_sn2": 1.0,
                              "a_agn2": 1.0, "seed": 7.0}}
    # an older per-simulation file: no Name column, one row, other order
    q = tmp_path / "q.txt"
    q.write_text("#seed sigma_8 Omega_m A_SN1 A_SN2 A_AGN1 A_AGN2\n12 0.75 0.35 2.0 0.9 0.5 1.1\n")
    row = params_for(parse_params(q), "LH_12", 12, q)
    assert row["omega_m"] == 0.35 and row["sigma_8"] == 0.75 and row["a_agn1"] == 0.5 and row["seed"] == 12


def test_headerless_cmd_file_and_lookup_by_index(tmp_path):
    p = tmp_path / "params_CV_IllustrisTNG.txt"
    p.write_text("0.30 0.80 1.0 1.0 1.0 1.0\n0.31 0.79 1.1 1.2 1.3 1.4\n")
    with pytest.raises(GalaxygenError, match="header line"):
        parse_params(p)
    table = parse_params(p, headerless=CMD_COLUMNS)
    assert params_for(table, "CV_1", 1, p) == {"omega_m": 0.31, "sigma_8": 0.79, "a_sn1": 1.1, "a_agn1": 1.2,
                                                 "a_sn2": 1.3, "a_agn2": 1.4}
    with pytest.raises(GalaxygenError, match="no row for simulation 'CV_5'"):
        params_for(table, "CV_5", 5, p)


def test_bad_rows_named(tmp_path):
    p = tmp_path / "bad.txt"
    p.write_text("#Name Omega_m sigma_8 A_SN1 A_AGN1 A_SN2 A_AGN2 seed\nCV_0 0.3 0.8 1 1 1 1\n")
    with pytest.raises(GalaxygenError, match=r"bad.txt:2: 7 columns, the header names 8"):
        parse_params(p)
    p.write_text("#Name Omega_m sigma_8 A_SN1 A_AGN1 A_SN2 A_AGN2 seed\nCV_0 0.3 x 1 1 1 1 2\n")
    with pytest.raises(GalaxygenError, match=r"'sigma_8': 'x' is not a number"):
        parse_params(p)
    with pytest.raises(GalaxygenError, match="not found"):
        parse_params(tmp_path / "none.txt")


def test_found_in_suite_tree_but_not_the_twins(tmp_path):
    root = tmp_path
    write_params_file(root / "Sims" / "IllustrisTNG_DM" / "L25n256" / "CV" / "CosmoAstroSeed_IllustrisTNG_DM_L25n256_CV.txt", [0])
    assert find_params_file(root, "IllustrisTNG", "CV") is None
    doc = write_params_file(root / "docs" / "params" / "IllustrisTNG" / "CosmoAstroSeed_IllustrisTNG_L25n256_CV.txt", [0])
    assert find_params_file(root, "IllustrisTNG", "CV") == doc
    deep = write_params_file(root / "Sims" / "IllustrisTNG" / "L25n256" / "CV" / "CosmoAstroSeed_IllustrisTNG_L25n256_CV.txt", [0])
    assert find_params_file(root, "IllustrisTNG", "CV") == deep
    assert find_params_file(root, "IllustrisTNG", "LH") is None


def test_per_simulation_file_formats(tmp_path):
    from galaxygen.sources.camels.params import read_sim_params

    six = {"omega_m": 0.35, "sigma_8": 0.75, "a_sn1": 2.0, "a_agn1": 0.5, "a_sn2": 0.9, "a_agn2": 1.1}
    p = tmp_path / "CosmoAstro_params.txt"
    p.write_text("0.35 0.75 2.0 0.5 0.9 1.1\n")
    assert read_sim_params(p, "LH_7") == six
    p.write_text("0.35\n0.75\n2.0\n0.5\n0.9\n1.1\n")  # one value per line (np.loadtxt reads both alike)
    assert read_sim_params(p, "LH_7") == six
    q = tmp_path / "CosmoAstroSeed_params.txt"
    q.write_text("  LH_7 0.35 0.75 2.0 0.5 0.9 1.1 4242\n")
    assert read_sim_params(q, "LH_7") == {**six, "seed": 4242.0}
    with pytest.raises(GalaxygenError, match=r"CosmoAstroSeed_params.txt: holds simulation 'LH_7', not 'LH_8'"):
        read_sim_params(q, "LH_8")
    q.write_text("#seed sigma_8 Omega_m A_SN1 A_SN2 A_AGN1 A_AGN2\n4242 0.75 0.35 2.0 0.9 0.5 1.1\n")
    assert read_sim_params(q, "LH_7") == {**six, "seed": 4242.0}
    p.write_text("0.35 0.75 2.0 0.5\n")
    with pytest.raises(GalaxygenError, match=r"CosmoAstro_params.txt: 4 values; expected 6 or 7"):
        read_sim_params(p, "LH_7")
    p.write_text("0.35 0.75 2.0 0.5 x 1.1\n")
    with pytest.raises(GalaxygenError, match=r"a_sn2: 'x' is not a number"):
        read_sim_params(p, "LH_7")


def test_suite_file_of_the_older_layout(tmp_path):
    from galaxygen.synthetic.camels import write_suite_params_file

    path = write_suite_params_file(tmp_path / "Sims" / "SIMBA" / "CosmoAstroSeed_params.txt",
                                   [("LH_0", 5), ("CV_0", 0), ("1P_3", 3)])
    assert find_params_file(tmp_path, "SIMBA", "CV") == path
    assert find_params_file(tmp_path / "Sims", "SIMBA", "CV") == path  # ROOT may be Sims/
    with pytest.raises(GalaxygenError, match="header line"):
        parse_params(path)
    table = parse_params(path, headerless=CAMELS_COLUMNS)
    assert table["CV_0"] == pytest.approx(sim_params(0), abs=1e-5)
    assert table["LH_0"] == pytest.approx(sim_params(5), abs=1e-5)
