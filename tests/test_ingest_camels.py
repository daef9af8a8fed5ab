"""CAMELS ingest on fake trees of both layouts: counts per voxel, galaxies and the cut, params, units."""

from __future__ import annotations

import numpy as np
import pytest

from galaxygen.box import read_box
from galaxygen.sources.camels.camels import CamelsIngestConfig, ingest_camels
from galaxygen.synthetic.camels import PARAM_HEADER, write_camels_tree

GRID = 16


def _cfg(**kw):
    return CamelsIngestConfig(**{"suite": "IllustrisTNG", "set_name": "CV", "grid": GRID, **kw})


def _check_box(box, t, *, min_star=20):
    """The ingested box against what the fake files hold."""
    # DM: NGP particle counts, exactly
    np.testing.assert_array_equal(box.dm, t["counts"])
    assert box.dm.sum() == len(t["pos_kpc"])
    assert box.box_size == pytest.approx(25.0) and box.grid == GRID and box.source == "camels"
    # params by name, whatever the column order of the file
    for k, v in t["params"].items():
        assert box.params[k] == pytest.approx(v, abs=1e-5), k
    # galaxies: the star-particle cut, positions in Mpc/h, stellar mass from column 4 (not 5) in Msun/h
    keep = np.flatnonzero(t["nstar"] >= min_star)
    cat = box.galaxy_catalog
    np.testing.assert_array_equal(cat["subhalo_index"], keep)
    np.testing.assert_allclose(cat["pos"], t["sub_pos_mpc"][keep] % 25.0, atol=1e-5)
    np.testing.assert_allclose(cat["stellar_mass"], t["mstar"][keep], rtol=1e-6)
    np.testing.assert_array_equal(cat["is_central"], t["central"][keep].astype(np.int8))
    np.testing.assert_array_equal(cat["host_halo"], t["host"][keep])
    # fields/galaxies: NGP counts of the kept galaxies
    expect = np.zeros((GRID,) * 3, np.float32)
    ijk = np.floor(t["sub_pos_mpc"][keep] / (25.0 / GRID)).astype(int) % GRID
    np.add.at(expect, tuple(ijk.T), 1)
    np.testing.assert_array_equal(box.galaxies, expect)
    # halos: kpc/h -> Mpc/h, 1e10 Msun/h -> Msun/h
    np.testing.assert_allclose(box.halos["pos"], t["halo_pos_mpc"], atol=1e-5)
    np.testing.assert_allclose(box.halos["radius"], 0.6, rtol=1e-6)
    np.testing.assert_allclose(box.halos["mass"], np.linspace(50, 10, 5) * 1e10, rtol=1e-6)
    np.testing.assert_array_equal(box.halos["n_particles"], np.linspace(5000, 1000, 5).astype(int))


def test_2024_layout_counts_galaxies_params(tmp_path):
    truth = write_camels_tree(tmp_path / "camels", layout="2024")
    report = ingest_camels(tmp_path / "camels", tmp_path / "out", _cfg())
    assert report.ok and report.written == ["CV_0", "CV_1"]
    for name, t in truth.items():
        box = read_box(tmp_path / "out" / f"{name}.h5")
        assert box.name == name and box.suite == "IllustrisTNG" and box.redshift == pytest.approx(0.0)
        assert box.meta["snapshot"] == 90 and box.meta["layout"] == "2024"
        assert box.meta["galaxy_cut"] == "SubhaloLenType[:,4] >= 20"
        assert "groups_090.hdf5" in box.meta["hydro_groups"] and box.dm_velocity is None
        _check_box(box, t)


def test_pre2024_layout_multifile_blosc_and_reordered_params(tmp_path):
    order = ["Name", "seed", "A_AGN2", "Omega_m", "A_SN2", "sigma_8", "A_AGN1", "A_SN1"]
    assert sorted(order) == sorted(PARAM_HEADER)
    truth = write_camels_tree(tmp_path / "camels", layout="pre-2024", n_files=3, blosc=True, params_order=order,
                              indices=(2,))
    dm = tmp_path / "camels" / "Sims" / "IllustrisTNG_DM" / "CV_2"
    assert sorted(p.name for p in dm.glob("snap_*")) == ["snap_033.0.hdf5", "snap_033.1.hdf5", "snap_033.2.hdf5"]
    import h5py
    import hdf5plugin  # noqa: F401
    with h5py.File(dm / "snap_033.1.hdf5") as f:  # really Blosc-compressed
        assert str(hdf5plugin.BLOSC_ID) in f["PartType1/Coordinates"]._filters
    # a small chunk forces several chunks per file part
    report = ingest_camels(tmp_path / "camels", tmp_path / "out", _cfg(chunk_particles=500))
    assert report.ok, report.failed
    box = read_box(tmp_path / "out" / "CV_2.h5")
    assert box.meta["snapshot"] == 33 and box.meta["dm_snapshot_files"] == 3 and box.meta["layout"] == "pre-2024"
    _check_box(box, truth["CV_2"])


def test_redshift_choice_velocities_and_stellar_mass_cut(tmp_path):
    truth = write_camels_tree(tmp_path / "camels", redshifts=(0.0, 0.5), indices=(0,))
    cfg = _cfg(redshift=0.5, velocities=True, min_stellar_mass=0.05e10)
    report = ingest_camels(tmp_path / "camels", tmp_path / "out", cfg)
    assert report.ok, report.failed
    box = read_box(tmp_path / "out" / "CV_0.h5")
    t = truth["CV_0"]
    assert box.meta["snapshot"] == 89 and box.redshift == pytest.approx(0.5)
    # mean peculiar velocity per voxel [km/s]: the file holds v / sqrt(a)
    grid_idx = np.floor(t["pos_kpc"].astype(np.float64) / (25000.0 / GRID)).astype(int)
    flat = np.ravel_multi_index(grid_idx.T, (GRID,) * 3)
    for c in range(3):
        s = np.bincount(flat, weights=t["vel"][:, c].astype(np.float64), minlength=GRID**3)
        n = np.bincount(flat, minlength=GRID**3)
        mean = np.divide(s, n, out=np.zeros_like(s), where=n > 0).reshape((GRID,) * 3)
        np.testing.assert_allclose(box.dm_velocity[c], mean, rtol=1e-4, atol=1e-3)
    # the stellar-mass cut: 0.05e10 Msun/h = 39.4 star particles of 1.27e7 -> 100 and 500 pass, 20 and 21 do not
    keep = np.flatnonzero(t["mstar"] >= 0.05e10)
    assert set(t["nstar"][keep]) == {100, 500}
    np.testing.assert_array_equal(box.galaxy_catalog["subhalo_index"], keep)
    assert box.meta["galaxy_cut"].startswith("SubhaloMassType[:,4] >= ")
    assert box.galaxies.sum() == len(keep)


def test_root_may_be_the_sims_folder(tmp_path):
    truth = write_camels_tree(tmp_path / "camels", indices=(1,))
    report = ingest_camels(tmp_path / "camels" / "Sims", tmp_path / "out", _cfg(sims=(1,)))
    assert report.ok, report.failed
    _check_box(read_box(tmp_path / "out" / "CV_1.h5"), truth["CV_1"])


def test_resume_and_overwrite(tmp_path):
    write_camels_tree(tmp_path / "camels", indices=(0,))
    first = ingest_camels(tmp_path / "camels", tmp_path / "out", _cfg())
    assert first.written == ["CV_0"]
    again = ingest_camels(tmp_path / "camels", tmp_path / "out", _cfg())
    assert again.written == [] and again.skipped == ["CV_0"]
    forced = ingest_camels(tmp_path / "camels", tmp_path / "out", _cfg(overwrite=True, min_star_particles=100))
    assert forced.written == ["CV_0"]
    assert read_box(tmp_path / "out" / "CV_0.h5").meta["galaxy_cut"] == "SubhaloLenType[:,4] >= 100"


def test_fof_fallback_without_twin_catalogue(tmp_path):
    pytest.importorskip("galaxygen.halos.fof")
    import h5py

    # clump 100 particles tightly around each twin halo centre so that FoF finds them
    root = tmp_path / "camels"
    truth = write_camels_tree(root, indices=(0,), twin_groups=False)
    t = truth["CV_0"]
    snap = root / "Sims" / "IllustrisTNG_DM" / "L25n256" / "CV" / "CV_0" / "snapshot_090.hdf5"
    rng = np.random.default_rng(5)
    pos = t["pos_kpc"].copy()
    for h, c in enumerate(t["halo_pos_mpc"]):
        pos[h * 100:(h + 1) * 100] = ((c + rng.normal(0, 0.02, (100, 3))) % 25.0) * 1000
    with h5py.File(snap, "r+") as f:
        f["PartType1/Coordinates"][...] = pos
    report = ingest_camels(root, tmp_path / "out", _cfg())
    assert report.ok, report.failed
    box = read_box(tmp_path / "out" / "CV_0.h5")
    assert box.meta["halos_from"].startswith("galaxygen-fof")
    big = box.halos["n_particles"] >= 90
    assert big.sum() == 5
    for c in t["halo_pos_mpc"]:
        d = box.halos["pos"][big] - c
        d -= 25.0 * np.round(d / 25.0)
        assert np.sqrt((d**2).sum(1)).min() < 0.05
    centrals = box.galaxy_catalog["is_central"] == 1
    in_halo = t["host"][box.galaxy_catalog["subhalo_index"]] >= 0
    assert (box.galaxy_catalog["host_halo"][in_halo & centrals] >= 0).all()
    assert (box.galaxy_catalog["host_halo"][~in_halo] == -1).all()


def test_older_layout_suite_params_file_without_header_is_found(tmp_path):
    truth = write_camels_tree(tmp_path / "camels", layout="pre-2024", indices=(0, 2), params="suite")
    report = ingest_camels(tmp_path / "camels", tmp_path / "out", _cfg())
    assert report.ok and report.written == ["CV_0", "CV_2"] and report.warnings == []
    for name, t in truth.items():
        box = read_box(tmp_path / "out" / f"{name}.h5")
        _check_box(box, t)  # every parameter, seed included, from the CV_<i> row (not LH_<i>)
        assert box.meta["params_file"].endswith("Sims/IllustrisTNG/CosmoAstroSeed_params.txt")


@pytest.mark.parametrize("layout", ["pre-2024", "2024"])
def test_per_simulation_params_file_is_found(tmp_path, layout):
    truth = write_camels_tree(tmp_path / "camels", layout=layout, indices=(1,), params="sim")
    report = ingest_camels(tmp_path / "camels", tmp_path / "out", _cfg())
    assert report.ok, report.failed
    box = read_box(tmp_path / "out" / "CV_1.h5")
    expected = {k: v for k, v in truth["CV_1"]["params"].items() if k != "seed"}  # the file has no seed
    assert box.params == pytest.approx(expected, abs=1e-5)
    assert box.meta["params_file"].endswith("CV_1/CosmoAstro_params.txt")
    assert report.warnings == []


def test_no_params_file_takes_omega_m_from_the_header_and_warns(tmp_path, caplog):
    truth = write_camels_tree(tmp_path / "camels", set_name="LH", indices=(3, 4), params="none")
    with caplog.at_level("WARNING", logger="galaxygen.sources.camels.camels"):
        report = ingest_camels(tmp_path / "camels", tmp_path / "out", _cfg(set_name="LH"))
    assert report.ok and report.written == ["LH_3", "LH_4"], report.failed
    for name, t in truth.items():
        box = read_box(tmp_path / "out" / f"{name}.h5")
        assert box.params == {"omega_m": pytest.approx(t["params"]["omega_m"], abs=1e-9)}  # 0.33, 0.34
        assert "omega_m from the snapshot header" in box.meta["params_source"]
        assert box.meta["params_file"] == ""
        np.testing.assert_array_equal(box.dm, t["counts"])
    [message] = report.warnings
    assert "LH_3, LH_4" in message and "sigma_8, a_sn1, a_agn1, a_sn2, a_agn2, seed" in message
    assert message in caplog.text


def test_no_params_file_cv_set_gets_the_fiducial_values_said_in_meta(tmp_path):
    truth = write_camels_tree(tmp_path / "camels", indices=(0,), params="none")
    report = ingest_camels(tmp_path / "camels", tmp_path / "out", _cfg())
    assert report.ok, report.failed
    box = read_box(tmp_path / "out" / "CV_0.h5")
    assert box.params == pytest.approx({"omega_m": truth["CV_0"]["params"]["omega_m"], "sigma_8": 0.8,
                                        "a_sn1": 1.0, "a_agn1": 1.0, "a_sn2": 1.0, "a_agn2": 1.0})
    assert "fiducial" in box.meta["params_source"] and "seed" in box.meta["params_source"]
    assert "seed" in report.warnings[0]


def test_cli_without_params_file_goes_on_and_reports_the_warning(tmp_path, capsys):
    import json

    from galaxygen.cli import main

    truth = write_camels_tree(tmp_path / "camels", layout="pre-2024", set_name="LH", indices=(5,), params="none")
    code = main(["ingest", "camels", str(tmp_path / "camels"), str(tmp_path / "out"), "--suite", "IllustrisTNG",
                 "--set", "LH", "--grid", str(GRID)])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0 and summary["written"] == ["LH_5"]
    assert "no parameter file" in summary["warnings"][0]
    assert read_box(tmp_path / "out" / "LH_5.h5").params["omega_m"] == pytest.approx(truth["LH_5"]["params"]["omega_m"])
