"""`galaxygen ingest nbody`: one's own DM -> DM-only boxes. Each input kind (Gadget/AREPO and SWIFT
snapshots, single and multi-file; positions .npy and HDF5 datasets; density grids; float32 and
float64) reproduces a known grid exactly; mismatched units and voxel sizes are refused in one line;
`--like RUN` paints at a trained run's voxel size."""

from __future__ import annotations

import json
import logging

import h5py
import numpy as np
import pytest

from galaxygen.box import read_box
from galaxygen.cli import main
from galaxygen.errors import BoxFormatError
from galaxygen.sources.nbody.units import MPC_CM

L, N = 25.0, 8          # box [Mpc/h], voxels per side of the known grid


@pytest.fixture(scope="module")
def known():
    """A known grid of counts (N^3) and particles placed inside their voxels [Mpc/h] (shuffled)."""
    rng = np.random.default_rng(3)
    counts = rng.integers(0, 4, size=(N,) * 3)
    idx = np.repeat(np.argwhere(counts >= 0), counts.reshape(-1), axis=0)
    pos = (idx + rng.uniform(0.1, 0.9, size=idx.shape)) * (L / N)
    return counts.astype(np.float32), pos[rng.permutation(len(pos))]


def write_gadget(first, pos_file_units, box_file_units, *, n_files=1, unit_cm=None, dtype=np.float32,
                 omega_m=0.3, redshift=0.0):
    """A Gadget/AREPO-style snapshot (Header, PartType1/Coordinates); `unit_cm`: Header/UnitLength_in_cm."""
    n = len(pos_file_units)
    stem = first.name[: -len(".0.hdf5")] if n_files > 1 else first.name[: -len(".hdf5")]
    paths = [first] if n_files == 1 else [first.with_name(f"{stem}.{k}.hdf5") for k in range(n_files)]
    bounds = np.linspace(0, n, n_files + 1).astype(int)
    for k, path in enumerate(paths):
        with h5py.File(path, "w") as f:
            h = f.create_group("Header")
            h.attrs.update(BoxSize=box_file_units, Redshift=redshift, Time=1 / (1 + redshift), HubbleParam=0.7,
                           Omega0=omega_m, OmegaLambda=1 - omega_m, MassTable=np.zeros(6),
                           NumPart_Total=np.array([0, n, 0, 0, 0, 0], np.uint32),
                           NumPart_Total_HighWord=np.zeros(6, np.uint32), NumFilesPerSnapshot=n_files)
            if unit_cm is not None:
                h.attrs["UnitLength_in_cm"] = unit_cm
            f.create_dataset("PartType1/Coordinates", data=pos_file_units[bounds[k]:bounds[k + 1]].astype(dtype))
    return paths


def write_swift(path, pos_mpc, box_mpc, h=0.7):
    """A SWIFT-style snapshot: three BoxSize sides, lengths in Mpc without h, a Units and a Cosmology group."""
    with h5py.File(path, "w") as f:
        f.create_group("Header").attrs.update(
            BoxSize=np.full(3, box_mpc), Redshift=np.array([0.0]), NumPart_Total=np.array([0, len(pos_mpc), 0, 0, 0, 0, 0]),
            NumPart_Total_HighWord=np.zeros(7), NumFilesPerSnapshot=np.array([1]))
        f.create_group("Units").attrs["Unit length in cgs (U_L)"] = np.array([MPC_CM])
        f.create_group("Cosmology").attrs.update(h=np.array([h]), Omega_m=np.array([0.3]))
        f.create_dataset("PartType1/Coordinates", data=pos_mpc)


def ingest(*args):
    return main(["ingest", "nbody", *map(str, args)])


def report(capsys):
    out = capsys.readouterr()
    return json.loads(out.out), out.err


def test_gadget_snapshot_single_file_kpc_h_from_the_header(tmp_path, known, capsys):
    counts, pos = known
    write_gadget(tmp_path / "snap_010.hdf5", pos * 1e3, L * 1e3, unit_cm=3.085678e21)
    assert ingest(tmp_path / "snap_010.hdf5", tmp_path / "out", "--grid", N, "--halos") == 0
    box = read_box(tmp_path / "out" / "snap_010.h5", allow_dm_only=True)
    assert np.array_equal(box.dm, counts) and box.box_size == pytest.approx(L) and box.grid == N
    assert box.source == "nbody" and box.suite == "nbody" and box.params == {"omega_m": 0.3}
    assert box.meta["length_unit"] == "kpc/h" and box.meta["n_dm_particles"] == len(pos)
    assert box.halos is not None and "halos_from" in box.meta
    with h5py.File(tmp_path / "out" / "snap_010.h5") as f:
        assert "fields/galaxies" not in f and "fields/dm" in f       # a DM-only box
    with pytest.raises(BoxFormatError, match="fields/galaxies: missing: a DM-only box can be predicted"):
        read_box(tmp_path / "out" / "snap_010.h5")
    assert main(["info", str(tmp_path / "out" / "snap_010.h5")]) == 0
    assert "none (a DM-only box)" in capsys.readouterr().out
    assert main(["power", str(tmp_path / "out" / "snap_010.h5"), "--field", "dm", "--json"]) == 0


def test_gadget_snapshot_multi_file_float64_with_length_unit(tmp_path, known, capsys):
    counts, pos = known
    parts = write_gadget(tmp_path / "snap.0.hdf5", pos * 1e3, L * 1e3, n_files=3, dtype=np.float64)
    # all parts given (a shell glob): one box
    assert ingest(*parts, tmp_path / "out", "--grid", N, "--length-unit", "kpc/h") == 0
    summary, _ = report(capsys)
    assert summary["written"] == ["snap"]
    box = read_box(tmp_path / "out" / "snap.h5", allow_dm_only=True)
    assert np.array_equal(box.dm, counts) and box.meta["snapshot_files"] == 3
    # a coarser grid is the same particles: counts summed over 2^3 blocks
    assert ingest(parts[0], tmp_path / "coarse", "--grid", N // 2, "--length-unit", "kpc/h") == 0
    coarse = read_box(tmp_path / "coarse" / "snap.h5", allow_dm_only=True).dm
    assert np.array_equal(coarse, counts.reshape(4, 2, 4, 2, 4, 2).sum(axis=(1, 3, 5)))


def test_swift_snapshot_lengths_without_h(tmp_path, known):
    counts, pos = known
    h = 0.7
    write_swift(tmp_path / "swift_0007.hdf5", pos / h, L / h, h=h)      # Mpc/h -> Mpc
    assert ingest(tmp_path / "swift_0007.hdf5", tmp_path / "out", "--grid", N) == 0
    box = read_box(tmp_path / "out" / "swift_0007.h5", allow_dm_only=True)
    assert np.array_equal(box.dm, counts) and box.box_size == pytest.approx(L)
    assert box.meta["length_unit"] == "Mpc" and box.params["omega_m"] == 0.3


def test_positions_npy_and_hdf5_dataset(tmp_path, known):
    counts, pos = known
    np.save(tmp_path / "pos32.npy", pos.astype(np.float32))
    with h5py.File(tmp_path / "mine.h5", "w") as f:
        f.create_dataset("dm/pos", data=pos * 1e3)                        # float64, kpc/h
    assert ingest(tmp_path / "pos32.npy", tmp_path / "out", "--grid", N, "--box-size", L, "--chunk", 100,
                  "--omega-m", 0.25, "--a-sn1", 2) == 0
    box = read_box(tmp_path / "out" / "pos32.h5", allow_dm_only=True)
    assert np.array_equal(box.dm, counts) and box.params == {"omega_m": 0.25, "a_sn1": 2.0}
    assert ingest(f"{tmp_path / 'mine.h5'}:dm/pos", tmp_path / "out2", "--grid", N, "--box-size", L * 1e3,
                  "--length-unit", "kpc/h") == 0
    box = read_box(tmp_path / "out2" / "mine.h5", allow_dm_only=True)
    assert np.array_equal(box.dm, counts) and box.box_size == pytest.approx(L)
    assert box.meta["ingested_from"].endswith("mine.h5:dm/pos") and box.meta["input_kind"] == "positions"


def test_density_grid_as_given_summed_and_rescaled(tmp_path, known):
    counts, _ = known
    np.save(tmp_path / "grid.npy", counts.astype(np.float64))
    assert ingest(tmp_path / "grid.npy", tmp_path / "out", "--box-size", L) == 0
    box = read_box(tmp_path / "out" / "grid.h5", allow_dm_only=True)
    assert np.array_equal(box.dm, counts) and box.grid == N and box.meta["input_kind"] == "grid"
    assert ingest(tmp_path / "grid.npy", tmp_path / "half", "--box-size", L, "--grid", N // 2) == 0
    half = read_box(tmp_path / "half" / "grid.h5", allow_dm_only=True).dm
    assert np.array_equal(half, counts.reshape(4, 2, 4, 2, 4, 2).sum(axis=(1, 3, 5)))
    np.save(tmp_path / "delta1.npy", (counts / counts.mean()).astype(np.float32))     # 1 + delta
    assert ingest(tmp_path / "delta1.npy", tmp_path / "mean", "--box-size", L, "--mean-count", 6) == 0
    assert read_box(tmp_path / "mean" / "delta1.h5", allow_dm_only=True).dm.mean() == pytest.approx(6.0)


@pytest.mark.parametrize("case, said", [
    ("header kpc/h, --length-unit Mpc/h",
     "mismatched units: the file gives lengths in kpc/h (Header/UnitLength_in_cm), --length-unit says Mpc/h"),
    ("no unit anywhere", "no length unit in the file"),
    ("positions in kpc/h, box in Mpc/h", "wrong units: positions span"),
    ("grid not dividing", "5 voxels per side do not divide the density grid's 8"),
    ("negative grid", "negative values (an overdensity delta? give 1 + delta"),
    ("header redshift 0, --redshift 1", "mismatched redshift: the header says 0, the option 1"),
    ("header Omega_m 0.3, --omega-m 0.2", "mismatched Omega_m: the header says 0.3, --omega-m 0.2"),
])
def test_mismatches_are_refused_in_one_line(tmp_path, known, capsys, case, said):
    counts, pos = known
    snap, npy = tmp_path / "snap.hdf5", tmp_path / "a.npy"
    args = {
        "header kpc/h, --length-unit Mpc/h": (write_gadget, [snap, pos * 1e3, L * 1e3], {"unit_cm": 3.085678e21},
                                              [snap, "--grid", N, "--length-unit", "Mpc/h"]),
        "no unit anywhere": (write_gadget, [snap, pos * 1e3, L * 1e3], {}, [snap, "--grid", N]),
        "positions in kpc/h, box in Mpc/h": (np.save, [npy, pos * 1e3], {}, [npy, "--grid", N, "--box-size", L]),
        "grid not dividing": (np.save, [npy, counts], {}, [npy, "--grid", 5, "--box-size", L]),
        "negative grid": (np.save, [npy, counts - 1], {}, [npy, "--box-size", L]),
        "header redshift 0, --redshift 1": (write_gadget, [snap, pos, L], {"unit_cm": MPC_CM},
                                            [snap, "--grid", N, "--redshift", 1]),
        "header Omega_m 0.3, --omega-m 0.2": (write_gadget, [snap, pos, L], {"unit_cm": MPC_CM},
                                              [snap, "--grid", N, "--omega-m", 0.2]),
    }[case]
    write, a, kw, cli = args
    write(*a, **kw)
    assert ingest(*cli, tmp_path / "out") == 1
    _, err = report(capsys)
    failed = [line for line in err.splitlines() if "failed:" in line]
    assert len(failed) == 1 and said in failed[0], err
    assert not list((tmp_path / "out").glob("*.h5"))


def test_inputs_and_options_checked_before_any_work(tmp_path, known, capsys):
    counts, pos = known
    np.save(tmp_path / "a.npy", pos)
    (tmp_path / "b").mkdir()
    np.save(tmp_path / "b" / "a.npy", pos)
    for extra, said in ((["--grid", N], "--box-size: positions arrays and density grids need the box side"),
                        (["--box-size", L], "--grid: give the voxels per side, or a trained run to match"),
                        (["--grid", N, "--box-size", L, "--omega-m", "1.5"], "--omega-m: 1.5 is out of range")):
        assert ingest(tmp_path / "a.npy", tmp_path / "out", *extra) == 2
        assert said in capsys.readouterr().err
    assert ingest(tmp_path / "a.npy", tmp_path / "b" / "a.npy", tmp_path / "out", "--grid", N, "--box-size", L) == 2
    assert "would both be written as a.h5" in capsys.readouterr().err
    np.save(tmp_path / "g.npy", counts)
    assert ingest(tmp_path / "g.npy", tmp_path / "out", "--box-size", L, "--halos") == 2
    assert "--halos: a density grid has no particles" in capsys.readouterr().err
    parts = write_gadget(tmp_path / "s.0.hdf5", pos, L, n_files=2, unit_cm=MPC_CM)
    assert ingest(parts[1], tmp_path / "out", "--grid", N) == 2
    assert "part 1 of a multi-file snapshot: give its first part" in capsys.readouterr().err


# ----------------------------------------------------------------------------- --like RUN and predict

def write_run_inputs(run, box_size=25.0, grid=16, redshift=0.0):
    run.mkdir(parents=True, exist_ok=True)
    geometry = {"box_size": box_size, "grid": grid, "voxel_size": box_size / grid, "redshift": redshift}
    (run / "inputs.json").write_text(json.dumps({"geometries": [geometry], "boxes": []}))
    return run


def test_like_paints_at_the_runs_voxel_size_or_refuses(tmp_path, known, capsys, caplog):
    counts, pos = known
    run = write_run_inputs(tmp_path / "run")                      # voxels of 25/16 Mpc/h at z = 0
    np.save(tmp_path / "a.npy", pos)
    assert ingest(tmp_path / "a.npy", tmp_path / "out", "--like", run, "--box-size", L) == 0
    assert read_box(tmp_path / "out" / "a.h5", allow_dm_only=True).grid == 16
    np.save(tmp_path / "big.npy", pos * 2)
    with caplog.at_level(logging.WARNING, logger="galaxygen"):
        assert ingest(tmp_path / "big.npy", tmp_path / "out", "--like", run, "--box-size", 2 * L) == 0
    assert read_box(tmp_path / "out" / "big.h5", allow_dm_only=True).grid == 32
    assert "needs --allow-mismatch" in caplog.text
    capsys.readouterr()
    for extra, said in ((["--box-size", 30], "a 30 Mpc/h box is not a whole number of its 1.5625 Mpc/h voxels"),
                        (["--box-size", L, "--redshift", 1], "it was trained at redshift 0, this DM is at 1")):
        assert ingest(tmp_path / "a.npy", tmp_path / "bad", "--like", run, *extra) == 1
        failed = [ln for ln in capsys.readouterr().err.splitlines() if "failed:" in ln]
        assert len(failed) == 1 and "cannot be painted at the voxel size of" in failed[0] and said in failed[0]
    assert ingest(tmp_path / "a.npy", tmp_path / "bad", "--like", tmp_path, "--box-size", L) == 1
    assert "no inputs.json" in capsys.readouterr().err
