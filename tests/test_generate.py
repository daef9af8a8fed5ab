"""`galaxygen generate`: parameters -> COLA DM -> a trained run -> galaxy field and catalogue."""

from __future__ import annotations

import json

import numpy as np
import pytest

from galaxygen.box import read_box, read_header, write_box
from galaxygen.catalog import voxel_index
from galaxygen.cli import main
from galaxygen.mesh import paint
from galaxygen.sources.universe.sets import FIDUCIAL

from learn_helpers import learnable_box, tiny_config

pytestmark = pytest.mark.usefixtures("single_thread")

#: COLA settings recorded in the training boxes, as `galaxygen simulate` records them (fast ones)
DM_META = {"particles": 32, "cola_steps": 2, "z_start": 19.0, "power_spectrum": "eh", "mesh_factor": 1}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny regressor-only two-phase run trained on 16^3 boxes of 25 Mpc/h that record COLA settings."""
    from galaxygen.models.registry import train

    tmp = tmp_path_factory.mktemp("generate")
    for i in range(2):
        box = learnable_box(f"CV_{i}", 16, seed=i)
        write_box(tmp / "boxes" / f"CV_{i}.h5", box.replace(meta={**box.meta, **DM_META}))
    config = {**tiny_config(steps=3, phases=("regressor",)), "counts": "poisson"}
    train(config, tmp / "boxes", tmp / "run")
    return tmp / "run"


def _gen(run, out, *extra):
    return main(["-q", "generate", str(run), "--out", str(out), "--device", "cpu", *extra])


def test_generate_writes_field_catalogue_and_dm(run, tmp_path, capsys):
    assert _gen(run, tmp_path / "a", "--a-sn1", "2", "--seed", "5", "--samples", "2") == 0
    summary = json.loads(capsys.readouterr().out)
    assert [b["name"] for b in summary["boxes"]] == ["gen_0", "gen_1"]
    assert summary["simulate"]["particles"] == 32 and summary["simulate"]["cola_steps"] == 2  # from the boxes
    total = 0
    for name in ("gen_0", "gen_1"):
        box = read_box(tmp_path / "a" / f"{name}.h5")
        dm = read_box(tmp_path / "a" / "dm" / f"{name}.h5", allow_dm_only=True)
        assert read_header(tmp_path / "a" / "dm" / f"{name}.h5").fields == ("dm",)  # a DM-only box
        assert (box.grid, box.box_size, box.redshift, box.source) == (16, 25.0, 0.0, "prediction")
        assert box.params == {**FIDUCIAL, "a_sn1": 2.0, "seed": box.params["seed"]}  # not given: fiducial
        np.testing.assert_array_equal(box.dm, dm.dm)
        assert dm.dm.sum() == 32 ** 3
        pos = box.galaxy_catalog["pos"]
        total += len(pos)
        assert len(pos) == box.galaxies.sum() == box.meta["n_galaxies"]
        assert np.all((pos >= 0) & (pos < 25.0))
        # the catalogue's galaxies fall in the voxels the field counts them in
        np.testing.assert_array_equal(paint(pos, 16, 25.0, scheme="ngp").numpy(), box.galaxies)
        # the expected counts the field realises are stored beside it
        assert box.galaxy_rate is not None and box.galaxy_rate.shape == (16,) * 3 and box.galaxy_rate.sum() > 0
        assert "galaxy_rate" not in read_header(tmp_path / "a" / "dm" / f"{name}.h5").fields
    assert total > 0


def test_same_seed_same_boxes_other_seed_other_boxes(run, tmp_path):
    for out, seed in (("a", "1"), ("b", "1"), ("c", "2")):
        assert _gen(run, tmp_path / out, "--seed", seed, "--omega-m", "0.25") == 0
    a, b, c = (read_box(tmp_path / o / "gen_0.h5") for o in "abc")
    np.testing.assert_array_equal(a.galaxies, b.galaxies)
    np.testing.assert_array_equal(a.galaxy_catalog["pos"], b.galaxy_catalog["pos"])
    np.testing.assert_array_equal(a.dm, b.dm)
    assert not np.array_equal(a.dm, c.dm) and not np.array_equal(a.galaxies, c.galaxies)
    assert a.params["omega_m"] == 0.25 and a.params["sigma_8"] == FIDUCIAL["sigma_8"]


def test_galaxies_sit_on_dm_particles_of_their_voxel(run, tmp_path, monkeypatch):
    """With the COLA particles at hand: a galaxy in a voxel with DM is exactly on one of its particles."""
    from galaxygen.pipelines import generate as gen

    kept = {}
    real = gen.suite.dm_box

    def spy(*args, **kwargs):
        box, particles = real(*args, **kwargs)
        kept["particles"] = particles
        return box, particles

    monkeypatch.setattr(gen.suite, "dm_box", spy)
    assert _gen(run, tmp_path / "a", "--particles", "24") == 0
    box = read_box(tmp_path / "a" / "gen_0.h5")
    assert box.dm.sum() == 24 ** 3
    pos, particles = box.galaxy_catalog["pos"], np.mod(kept["particles"], 25.0).astype(np.float32)
    on_particle = np.array([(particles == p).all(1).any() for p in pos], bool)
    has_dm = box.dm.reshape(-1)[voxel_index(pos, 16, 25.0)] > 0
    assert len(pos) > 0
    np.testing.assert_array_equal(on_particle, has_dm)


def test_bad_options_one_line_exit_2(run, tmp_path, capsys):
    for args, word in (([str(tmp_path / "nope")], "not a run"), ([str(run), "--particles", "-4"], "--particles"),
                       ([str(run), "--omega-m", "-1"], "--omega-m"), ([str(run), "--samples", "0"], "--samples")):
        assert main(["generate", *args, "--out", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err.strip()
        assert word in err and len(err.splitlines()) == 1, err
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("mine")
    assert _gen(run, tmp_path / "full") == 2
    assert "--overwrite" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_a_diffusion_run_generates_too(make_box, tmp_path):
    """Any task: a tiny VDM run, its first sample (not the mean) becomes the field of the catalogue."""
    from galaxygen.models.registry import train

    from test_diffusion_task import _config

    for i in range(3):
        box = make_box(name=f"CV_{i}", seed=i)
        write_box(tmp_path / "boxes" / f"CV_{i}.h5", box.replace(meta={**box.meta, **DM_META}))
    train(_config(3, steps=2), tmp_path / "boxes", tmp_path / "run")
    assert _gen(tmp_path / "run", tmp_path / "out", "--sigma-8", "0.9") == 0
    box = read_box(tmp_path / "out" / "gen_0.h5")
    assert box.meta["model"] == "vdm" and box.meta["realisation"] == 0 and box.params["sigma_8"] == 0.9
    np.testing.assert_array_equal(paint(box.galaxy_catalog["pos"], 16, 25.0, scheme="ngp").numpy(), box.galaxies)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [".galaxygen-outputs.json", "dm", "gen_0.h5",
                                                                     "generate.json"]


def test_a_halo_run_generates_from_cola_halos(tmp_path):
    """A run taking the halo channel (data.halos): generate finds the COLA halos, stores them in the DM
    box, and the network reads them (the same DM without them is refused)."""
    from galaxygen.halos.fof import find_halos
    from galaxygen.models.registry import predict, train
    from galaxygen.errors import GalaxygenError
    from galaxygen.pipelines import generate as gen

    from test_halo_channel import with_halos

    for i in range(2):
        box = with_halos(learnable_box(f"CV_{i}", 16, seed=i))
        meta = {**box.meta, **DM_META, "cola_steps": 8}  # enough steps for FoF halos at 32^3 particles
        write_box(tmp_path / "boxes" / f"CV_{i}.h5", box.replace(meta=meta))
    train({**tiny_config(steps=2, phases=("regressor",), halos=True), "counts": "poisson"}, tmp_path / "boxes",
          tmp_path / "run")
    kept = {}
    real = gen.suite.dm_box

    def spy(*args, **kwargs):
        box, particles = real(*args, **kwargs)
        kept.update(particles=particles, box=box)
        return box, particles

    gen.suite.dm_box, saved = spy, gen.suite.dm_box
    try:
        assert _gen(tmp_path / "run", tmp_path / "out", "--seed", "3", "--sigma-8", "1.0") == 0
    finally:
        gen.suite.dm_box = saved
    dm_path = tmp_path / "out" / "dm" / "gen_0.h5"
    assert "halos" in read_header(dm_path).catalogs
    halos = read_box(dm_path, allow_dm_only=True).halos
    want = find_halos(kept["particles"], 25.0, 1.0)  # unit particle mass: masses are member counts
    assert len(halos["mass"]) == len(want["mass"]) > 0  # the FoF halos of the COLA particles
    members = halos["mass"] / halos["mass"].min() * want["mass"].min()
    np.testing.assert_allclose(np.sort(members), np.sort(want["mass"]), rtol=1e-6)
    bare = kept["box"].replace(halos=None)
    write_box(tmp_path / "bare.h5", bare, dm_only=True)
    with pytest.raises(GalaxygenError, match=r"catalogs/halos \(pos, mass\) missing"):
        predict(tmp_path / "run", [tmp_path / "bare.h5"], tmp_path / "pred")
