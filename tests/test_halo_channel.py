"""The halo input channel (``data.halos``): the COLA halo catalogue painted as an input beside the DM."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from galaxygen.box import read_header, write_box
from galaxygen.errors import GalaxygenError
from galaxygen.models import registry
from galaxygen.models.two_phase.task import load_run, network_outputs
from galaxygen.training.data import (HALO_MASS_UNIT, DataConfig, Region, Transform, box_fingerprint,
                                     fit_transform, halo_mass_grid)
from galaxygen.training.run_inputs import takes_halos

from learn_helpers import learnable_box, tiny_config

pytestmark = pytest.mark.usefixtures("single_thread")

L, N = 25.0, 16


def with_halos(box, shift: int = 0):
    """`box` with a halo catalogue: one halo at the centre of every voxel holding galaxies (mass 1e11 x
    its galaxies [Msun/h]), moved by `shift` voxels along x."""
    vox = np.argwhere(box.galaxies > 0)
    pos = ((vox + [shift, 0, 0]) % box.grid + 0.5) * box.box_size / box.grid
    mass = 1e11 * box.galaxies[tuple(vox.T)].astype(np.float64)
    return box.replace(halos={"pos": pos.astype(np.float32), "mass": mass})


def test_halo_mass_grid_is_the_ngp_sum_of_the_masses_periodic():
    h = L / N
    pos = np.array([[0.1, 0.1, 0.1],                 # voxel (0, 0, 0)
                    [h - 1e-4, 0.2, 0.3],            # the same voxel
                    [L - 1e-4, 3.5 * h, 0.0],        # last voxel along x
                    [L + 0.5 * h, 2.5 * h, -0.5 * h],  # outside: wraps to (0, 2, N-1)
                    [5.5 * h, 6.5 * h, 7.5 * h]])
    mass = np.array([1e10, 3e10, 2e11, 5e12, 7e9])
    grid = halo_mass_grid(pos, mass, L, N)
    want = np.zeros((N,) * 3)
    want[0, 0, 0] = 4.0
    want[N - 1, 3, 0] = 20.0
    want[0, 2, N - 1] = 500.0
    want[5, 6, 7] = 0.7
    np.testing.assert_allclose(grid, want, rtol=1e-12, atol=0)
    assert grid.sum() * HALO_MASS_UNIT == pytest.approx(mass.sum(), rel=1e-12)  # mass is conserved
    assert not halo_mass_grid(np.zeros((0, 3)), np.zeros(0), L, N).any()        # no halos: an empty channel


def test_the_transform_standardises_the_halo_channel_on_the_training_boxes(tmp_path):
    paths = []
    for i in range(2):
        paths.append(write_box(tmp_path / f"CV_{i}.h5", with_halos(learnable_box(f"CV_{i}", N, seed=i))))
    tr = fit_transform([Region(str(p), p.stem) for p in paths], DataConfig(halos=True))
    assert tr.halos and tr.channels == 2 and not tr.velocity
    boxes = [with_halos(learnable_box(f"CV_{i}", N, seed=i)) for i in range(2)]
    x = np.concatenate([np.log1p(halo_mass_grid(b.halos["pos"], b.halos["mass"], L, N)).ravel() for b in boxes])
    assert tr.mean[1] == pytest.approx(x.mean(), rel=1e-9) and tr.std[1] == pytest.approx(x.std(), rel=1e-9)
    assert Transform.from_dict(json.loads(json.dumps(tr.as_dict()))) == tr
    inputs = tr.inputs(boxes[0], "here")
    assert inputs.shape == (2, N, N, N)
    np.testing.assert_allclose(inputs[1] * tr.std[1] + tr.mean[1],
                               np.log1p(halo_mass_grid(boxes[0].halos["pos"], boxes[0].halos["mass"], L, N)),
                               rtol=1e-5, atol=1e-5)
    with pytest.raises(GalaxygenError, match=r"^odd\.h5: catalogs/halos \(pos, mass\) missing") as e:
        tr.inputs(learnable_box("odd", N), "odd.h5")
    assert "\n" not in str(e.value)
    old = {k: v for k, v in tr.as_dict().items() if k != "halos"}  # transform.json of an older run
    assert not Transform.from_dict({**old, "mean": [0.0], "std": [1.0]}).halos


@pytest.fixture(scope="module")
def halo_run(tmp_path_factory):
    """A tiny classifier+regressor run that takes the halo channel, trained on 3 boxes with halos."""
    tmp = tmp_path_factory.mktemp("halo-run")
    for i in range(3):
        write_box(tmp / "boxes" / f"CV_{i}.h5", with_halos(learnable_box(f"CV_{i}", N, seed=i)))
    config = tiny_config(steps=3, phases=("classifier", "regressor"), halos=True)
    registry.train(config, tmp / "boxes", tmp / "run")
    return tmp / "run"


def test_a_halo_run_reads_its_halo_channel(halo_run):
    assert takes_halos(halo_run) and json.loads((halo_run / "inputs.json").read_text())["halos"] is True
    cfg, transform, models = load_run(halo_run, torch.device("cpu"))
    assert transform.halos and transform.channels == 2
    box = with_halos(learnable_box("T", N, seed=7))

    def outputs(b):
        return network_outputs(cfg, transform, models, b, cfg.infer, torch.device("cpu"))

    prob, rate = outputs(box)
    prob2, rate2 = outputs(with_halos(learnable_box("T", N, seed=7)))
    np.testing.assert_array_equal(prob, prob2)  # the same halos: the same outputs
    np.testing.assert_array_equal(rate, rate2)
    moved_prob, moved_rate = outputs(with_halos(learnable_box("T", N, seed=7), shift=3))
    assert np.abs(moved_prob - prob).max() > 1e-4 and np.abs(moved_rate - rate).max() > 1e-4  # halos moved


def test_a_halo_run_refuses_a_box_without_halos_before_writing(halo_run, tmp_path):
    dm_only = learnable_box("DM", N, seed=9)
    path = write_box(tmp_path / "DM.h5", dm_only.replace(galaxies=np.zeros_like(dm_only.galaxies)), dm_only=True)
    with pytest.raises(GalaxygenError, match=r"DM\.h5: catalogs/halos \(pos, mass\) missing, and .* takes a halo channel") as e:
        registry.predict(halo_run, [path], tmp_path / "pred")
    assert "\n" not in str(e.value)
    assert not (tmp_path / "pred").exists() or not any((tmp_path / "pred").iterdir())
    # with its halos, the same DM-only box predicts
    path = write_box(tmp_path / "DMH.h5", with_halos(dm_only).replace(galaxies=np.zeros_like(dm_only.galaxies),
                                                                    name="DMH"), dm_only=True)
    out = registry.predict(halo_run, [path], tmp_path / "pred")
    assert [p.name for p in out] == ["DMH.h5"] and "galaxies" in read_header(out[0]).fields


def test_augmented_crops_keep_velocity_and_halo_channels(tmp_path):
    from galaxygen.training.crops import CropDataset, apply_symmetry
    from galaxygen.training.data import load_region, split_boxes

    path = write_box(tmp_path / "CV_0.h5", with_halos(learnable_box("CV_0", N, seed=0, velocity=True)))
    cfg = DataConfig(crop=4, pad=2, velocity=True, halos=True, validation=0.0)
    split = split_boxes([path], cfg)
    tr = fit_transform(split.train, cfg)
    assert tr.channels == 5 and tr.velocity and tr.halos
    aug = CropDataset([load_region(split.train[0], tr, cfg)], cfg, seed=5)
    plain = CropDataset(aug.boxes, DataConfig(crop=4, pad=2, velocity=True, halos=True, augment=False,
                                              validation=0.0), seed=5)
    for n in range(4):
        a, p = aug[n], plain[n]  # the same corner; the augmented crop is one symmetry of the plain one
        assert a["input"].shape == (5, 8, 8, 8)
        k = next(k for k in range(48) if torch.equal(apply_symmetry(p["input"][:1], k), a["input"][:1]))
        torch.testing.assert_close(a["input"][4:], apply_symmetry(p["input"][4:], k))  # the halo channel
        torch.testing.assert_close(a["input"][1:4], apply_symmetry(p["input"][1:4], k, vector=True))


def test_a_cascade_on_a_halo_run_needs_halos_too(halo_run, tmp_path):
    """A run whose config names a cascade on a halo run (a VDM cascade) needs catalogs/halos in its
    inputs as well: `takes_halos` follows the cascade, `check_inputs` refuses before any work."""
    from galaxygen.training.run_inputs import check_inputs

    vdm = tmp_path / "vdm-run"
    vdm.mkdir()
    (vdm / "inputs.json").write_text(json.dumps({"geometries": [], "boxes": [], "halos": False}))
    (vdm / "config.json").write_text(json.dumps({"task": "vdm", "cascade": str(halo_run)}))
    assert takes_halos(vdm)
    (vdm / "config.json").write_text(json.dumps({"task": "vdm", "cascade": None}))
    assert not takes_halos(vdm)
    (vdm / "config.json").write_text(json.dumps({"task": "vdm", "cascade": str(halo_run)}))
    dm_only = learnable_box("DM", N, seed=9)
    path = write_box(tmp_path / "DM.h5", dm_only.replace(galaxies=np.zeros_like(dm_only.galaxies)), dm_only=True)
    with pytest.raises(GalaxygenError, match=r"DM\.h5: catalogs/halos \(pos, mass\) missing, .*its cascade's"):
        check_inputs(vdm, [path])


def test_the_box_fingerprint_covers_the_halo_catalogue(tmp_path):
    """A run resumed on boxes whose halos changed (the DM did not) is refused: the fingerprint that
    `resume_split` compares hashes catalogs/halos; the galaxy catalogue, which training does not
    read, leaves it unchanged."""
    box = with_halos(learnable_box("CV_0", seed=0))
    write_box(tmp_path / "a.h5", box)
    write_box(tmp_path / "b.h5", with_halos(learnable_box("CV_0", seed=0), shift=1))
    moved = dict(box.halos, mass=box.halos["mass"] * 2)
    write_box(tmp_path / "c.h5", box.replace(halos=moved))
    pos = ((np.argwhere(box.galaxies > 0) + 0.25) * box.box_size / box.grid).astype(np.float32)
    write_box(tmp_path / "d.h5", box.replace(galaxy_catalog={"pos": pos}))
    write_box(tmp_path / "e.h5", box.replace(halos=None))
    fp = {k: box_fingerprint(tmp_path / f"{k}.h5") for k in "abcde"}
    assert fp["a"] != fp["b"] and fp["a"] != fp["c"] and fp["a"] != fp["e"]
    assert fp["d"] == fp["a"]
