"""Bad CAMELS inputs: each gives a clear error naming the simulation and the cause; the others still finish."""

from __future__ import annotations

import json

import numpy as np
import pytest

from galaxygen.cli import main
from galaxygen.errors import GalaxygenError
from galaxygen.sources.camels.camels import CamelsIngestConfig, ingest_camels
from galaxygen.synthetic.camels import write_camels_tree

L = "L25n256"


@pytest.fixture(scope="module")
def damaged(tmp_path_factory):
    """A 2024-layout tree of four simulations: CV_0 intact, CV_1 without twin, CV_2 missing a key,
    CV_3 with a truncated snapshot. Ingested once through the command line."""
    import h5py

    root = tmp_path_factory.mktemp("camels")
    write_camels_tree(root, indices=(0, 1, 2, 3))
    for p in (root / "Sims" / "IllustrisTNG_DM" / L / "CV" / "CV_1").iterdir():
        p.unlink()
    (root / "Sims" / "IllustrisTNG_DM" / L / "CV" / "CV_1").rmdir()
    with h5py.File(root / "FOF_Subfind" / "IllustrisTNG" / L / "CV" / "CV_2" / "groups_090.hdf5", "r+") as f:
        del f["Subhalo/SubhaloLenType"]
    snap = root / "Sims" / "IllustrisTNG_DM" / L / "CV" / "CV_3" / "snapshot_090.hdf5"
    data = snap.read_bytes()
    snap.write_bytes(data[: len(data) // 2])
    out = root.parent / "out"
    return root, out


def test_failures_reported_by_name_and_others_finish(damaged, capsys):
    root, out = damaged
    code = main(["ingest", "camels", str(root), str(out), "--suite", "IllustrisTNG", "--set", "CV",
                 "--sims", "0-3", "--grid", "16"])
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert code == 1
    assert summary["written"] == ["CV_0"] and summary["n_failed"] == 3
    failed = summary["failed"]
    assert "N-body twin IllustrisTNG_DM/CV_1 not found" in failed["CV_1"]
    assert "Subhalo/SubhaloLenType" in failed["CV_2"] and "missing" in failed["CV_2"]
    assert "snapshot_090.hdf5" in failed["CV_3"] and "truncated or corrupt" in failed["CV_3"]
    assert "CV_3 failed" in captured.err and "1 written" in captured.err
    assert (out / "CV_0.h5").is_file() and not (out / "CV_1.h5").exists()
    assert not list(out.glob(".*.tmp"))  # nothing half-written


def test_wrong_units_rejected(tmp_path):
    """A snapshot whose BoxSize and coordinates are in Mpc/h (not CAMELS' kpc/h) is refused."""
    import h5py

    root = tmp_path / "camels"
    write_camels_tree(root, indices=(0,))
    snap = root / "Sims" / "IllustrisTNG_DM" / L / "CV" / "CV_0" / "snapshot_090.hdf5"
    with h5py.File(snap, "r+") as f:
        f["Header"].attrs["BoxSize"] = 25.0
        f["PartType1/Coordinates"][...] = f["PartType1/Coordinates"][...] / 1000
    report = ingest_camels(root, tmp_path / "out", CamelsIngestConfig(suite="IllustrisTNG", grid=16))
    assert "wrong units" in report.failed["CV_0"] and "kpc/h" in report.failed["CV_0"]


def test_coordinates_outside_box_rejected(tmp_path):
    import h5py

    root = tmp_path / "camels"
    write_camels_tree(root, indices=(0,))
    snap = root / "Sims" / "IllustrisTNG_DM" / L / "CV" / "CV_0" / "snapshot_090.hdf5"
    with h5py.File(snap, "r+") as f:
        f["PartType1/Coordinates"][...] = f["PartType1/Coordinates"][...] * 1000  # pc/h, say
    report = ingest_camels(root, tmp_path / "out", CamelsIngestConfig(suite="IllustrisTNG", grid=16))
    assert "wrong units" in report.failed["CV_0"] and "outside the box" in report.failed["CV_0"]


def test_missing_multifile_part_and_param_mismatch(tmp_path):
    root = tmp_path / "camels"
    write_camels_tree(root, layout="pre-2024", indices=(0, 1), n_files=2)
    (root / "Sims" / "IllustrisTNG_DM" / "CV_0" / "snap_033.1.hdf5").unlink()
    # a parameter file whose rows belong to other simulations: Omega_m disagrees with the snapshot
    bad = root / "params.txt"
    bad.write_text("#Name Omega_m sigma_8 A_SN1 A_AGN1 A_SN2 A_AGN2 seed\nCV_1 0.45 0.8 1 1 1 1 3\n"
                   "CV_0 0.30 0.8 1 1 1 1 4\n")
    report = ingest_camels(root, tmp_path / "out", CamelsIngestConfig(suite="IllustrisTNG", grid=16, params_file=str(bad)))
    assert "missing" in report.failed["CV_0"] and "snap_033.1.hdf5" in report.failed["CV_0"]
    assert "Omega_m = 0.45" in report.failed["CV_1"] and "wrong parameter file or row" in report.failed["CV_1"]


def test_missing_params_file_and_empty_root(tmp_path, capsys):
    root = tmp_path / "camels"
    write_camels_tree(root, indices=(0,))
    missing = root / "none.txt"
    with pytest.raises(GalaxygenError, match=f"{missing}: parameter file not found"):
        ingest_camels(root, tmp_path / "out", CamelsIngestConfig(suite="IllustrisTNG", grid=16,
                                                                 params_file=str(missing)))
    assert not (tmp_path / "out").exists()
    code = main(["ingest", "camels", str(tmp_path / "nowhere"), str(tmp_path / "out"), "--suite", "SIMBA"])
    assert code == 2 and "CAMELS root folder not found" in capsys.readouterr().err
    with pytest.raises(GalaxygenError, match="not IllustrisTNG_DM|hydro suite"):
        CamelsIngestConfig(suite="IllustrisTNG_DM")


def test_sims_option_parsing():
    from galaxygen.sources.camels.runner import parse_index_list

    assert parse_index_list("0-3,7, 9") == (0, 1, 2, 3, 7, 9)
    assert parse_index_list("0-26") == tuple(range(27))
    for bad in ("3-1", "a", "1-"):
        with pytest.raises(GalaxygenError, match="--sims"):
            parse_index_list(bad)
    assert np.array_equal(parse_index_list("5"), [5])
