"""Data pipeline: cube symmetries (vectors included), splits, transform statistics, crops."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from galaxygen.box import write_box
from galaxygen.errors import ConfigError
from galaxygen.training.crops import SYMMETRIES, CropDataset, StreamSampler, apply_symmetry
from galaxygen.training.data import DataConfig, fit_transform, load_region, split_boxes
from learn_helpers import learnable_box, write_learnable_boxes

pytestmark = pytest.mark.usefixtures("single_thread")


def _grad(phi: torch.Tensor) -> torch.Tensor:
    """Periodic central-difference gradient (3, N, N, N) of phi (N, N, N)."""
    return torch.stack([(torch.roll(phi, -1, i) - torch.roll(phi, 1, i)) / 2 for i in range(3)])


def test_48_distinct_symmetries_and_vector_fields_follow():
    assert len(SYMMETRIES) == 48
    phi = torch.randn(1, 6, 6, 6)
    images = {apply_symmetry(phi, k).numpy().tobytes() for k in range(48)}
    assert len(images) == 48
    for k in range(48):  # a gradient field transforms like the gradient of the transformed scalar
        torch.testing.assert_close(apply_symmetry(_grad(phi[0]), k, vector=True), _grad(apply_symmetry(phi, k)[0]))


def test_split_by_whole_boxes_and_transform_from_training_only(tmp_path):
    boxes = sorted(write_learnable_boxes(tmp_path, n=4).glob("*.h5"))
    cfg = DataConfig(validation=0.25, test=0.25, split_seed=3)
    split = split_boxes(boxes, cfg)
    names = [[r.name for r in part] for part in (split.train, split.validation, split.test)]
    assert [len(n) for n in names] == [2, 1, 1]
    assert len(set(sum(names, []))) == 4 and all(r.hi is None for r in split.train)
    assert split_boxes(boxes, cfg) == split  # the seed fixes it
    tr = fit_transform(split.train, cfg)
    dm = np.concatenate([np.log1p(learnable_box(n, seed=int(n[3:])).dm).ravel() for n in names[0]])
    assert tr.mean[0] == pytest.approx(dm.mean(), rel=1e-6) and tr.std[0] == pytest.approx(dm.std(), rel=1e-6)
    named = split_boxes(boxes, DataConfig(train_boxes=("CV_0",), validation_boxes=("CV_2",)))
    assert [r.name for r in named.train] == ["CV_0"] and [r.name for r in named.validation] == ["CV_2"]
    with pytest.raises(ConfigError, match="CV_9"):
        split_boxes(boxes, DataConfig(train_boxes=("CV_9",)))


def test_single_box_slabs_keep_crops_out_of_validation(tmp_path):
    box = learnable_box(grid=16)
    marker = np.broadcast_to(np.arange(16, dtype=np.float32)[:, None, None], (16, 16, 16)).copy()
    write_box(tmp_path / "one.h5", box.replace(galaxies=marker))  # galaxies hold the x index
    cfg = DataConfig(crop=4, pad=2, validation=0.25, augment=False, focus=0.5)
    split = split_boxes([tmp_path / "one.h5"], cfg)
    assert (split.train[0].lo, split.train[0].hi, split.validation[0].lo, split.validation[0].hi) == (0, 12, 12, 16)
    tr = fit_transform(split.train, cfg)
    ds = CropDataset([load_region(split.train[0], tr, cfg)], cfg, seed=0)
    xs = torch.stack([ds[n]["target"] for n in range(200)])
    assert xs.min() >= 0 and xs.max() <= 11  # never a validation voxel (x >= 12)
    with pytest.raises(ConfigError, match="wider than the training slab"):
        CropDataset([load_region(split.validation[0], tr, DataConfig(crop=8))], DataConfig(crop=8))


def test_crops_are_deterministic_aligned_and_focused(tmp_path):
    boxes = sorted(write_learnable_boxes(tmp_path, n=2, velocity=True).glob("*.h5"))
    cfg = DataConfig(crop=5, pad=3, focus=1.0, jitter=0.0, velocity=True, validation=0.0)
    split = split_boxes(boxes, cfg)
    tr = fit_transform(split.train, cfg)
    ds = CropDataset([load_region(r, tr, cfg) for r in split.train], cfg, seed=7)
    for n in (0, 5, 99):
        a, b = ds[n], ds[n]
        assert all(torch.equal(a[k].nan_to_num(), b[k].nan_to_num()) for k in a)
        assert a["input"].shape == (4, 11, 11, 11) and a["target"].shape == (1, 5, 5, 5)
        # the centre of the input is the target's region: galaxies = f(dm) voxel by voxel
        dm = np.rint(np.expm1(a["input"][0, 3:8, 3:8, 3:8].numpy() * tr.std[0] + tr.mean[0]))
        np.testing.assert_array_equal(np.clip(np.floor((dm - 14) / 6), 0, 3), a["target"][0].numpy())
        assert a["target"][0, 2, 2, 2] > 0  # focus=1, no jitter: centred on a galaxy (odd crop: symmetric)
    assert not torch.equal(ds[0]["input"], ds[1]["input"])


def test_stream_sampler_splits_the_global_batch():
    one = list(zip(range(12), StreamSampler(4, 0, 1, start_step=1, stop_step=4)))
    ranks = [list(StreamSampler(4, r, 2, start_step=1, stop_step=4)) for r in range(2)]
    assert sorted(ranks[0] + ranks[1]) == [i for _, i in one] == list(range(4, 16))
    with pytest.raises(ConfigError):
        StreamSampler(5, 0, 2)


def test_focus_on_halos_centres_crops_on_halo_voxels(tmp_path, make_box):
    box = make_box(grid=16, seed=4)
    n = box.grid
    vox = np.floor(box.halos["pos"] / box.box_size * n).astype(int) % n
    marker = np.zeros((n,) * 3, np.float32)
    marker[vox[:, 0], vox[:, 1], vox[:, 2]] = 1.0  # "galaxies" = 1 exactly on halo voxels
    write_box(tmp_path / "h.h5", box.replace(galaxies=marker))
    cfg = DataConfig(crop=5, pad=2, focus=1.0, focus_on="halos", jitter=0.0, validation=0.0)
    split = split_boxes([tmp_path / "h.h5"], cfg)
    ds = CropDataset([load_region(split.train[0], fit_transform(split.train, cfg), cfg)], cfg, seed=1)
    assert all(ds[i]["target"][0, 2, 2, 2] == 1.0 for i in range(30))
    uniform = CropDataset(ds.boxes, DataConfig(crop=5, pad=2, focus=0.0, validation=0.0), seed=1)
    assert np.mean([float(uniform[i]["target"][0, 2, 2, 2]) for i in range(100)]) < 0.5


def test_corner_density_is_the_law_of_the_drawn_corners():
    """Against a brute-force enumeration of the focused draw: every focus voxel (a repeated one counts
    twice), every jitter, corner = v + jitter - crop // 2 (mod N)."""
    from galaxygen.training.crops import corner_density

    n, cfg = 8, DataConfig(crop=4, pad=0, focus=0.7, jitter=1.0)
    focus = np.array([[0, 0, 0], [7, 3, 5], [7, 3, 5], [2, 6, 1]])
    j = 2  # int(1.0 * 4 / 2)
    want = np.full((n,) * 3, (1 - cfg.focus) / n ** 3)
    for v in focus:
        for d in np.ndindex(2 * j + 1, 2 * j + 1, 2 * j + 1):
            c = (v + np.array(d) - j - cfg.crop // 2) % n
            want[tuple(c)] += cfg.focus / (len(focus) * (2 * j + 1) ** 3)
    got = corner_density(focus, n, cfg)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=0)
    assert got.sum() == pytest.approx(1.0, rel=1e-12)
    np.testing.assert_array_equal(corner_density(focus[:0], n, cfg), np.full((n,) * 3, 1.0 / n ** 3))
    with pytest.raises(ConfigError, match="data.unbiased: the focus jitter"):
        corner_density(focus, 4, cfg)


def test_unbiased_weights_give_focused_crops_the_uniform_expectation(tmp_path):
    """The mean galaxy count of focused crops is biased high; weighted by p_uniform / p_drawn it is the
    box mean (Monte Carlo, within 4 standard errors)."""
    boxes = sorted(write_learnable_boxes(tmp_path, n=2).glob("*.h5"))
    cfg = DataConfig(crop=4, pad=0, focus=0.8, unbiased=True, validation=0.0)
    split = split_boxes(boxes, cfg)
    tr = fit_transform(split.train, cfg)
    ds = CropDataset([load_region(r, tr, cfg) for r in split.train], cfg, seed=3)
    items = [ds[i] for i in range(3000)]
    y = np.array([float(it["target"].mean()) for it in items])
    w = np.array([float(it["weight"]) for it in items])
    truth = np.mean([learnable_box(f"CV_{i}", seed=i).galaxies.mean() for i in range(2)])
    assert y.mean() > 1.5 * truth  # the focus enriches the crops in galaxies
    wy = w * y
    assert abs(wy.mean() - truth) < 4 * wy.std() / np.sqrt(len(wy))
    assert w.mean() == pytest.approx(1.0, abs=4 * w.std() / np.sqrt(len(w)))
    assert "weight" not in CropDataset(ds.boxes, DataConfig(crop=4, pad=0, focus=0.8), seed=3)[0]
    with pytest.raises(ConfigError, match="data.unbiased: needs data.focus < 1"):
        DataConfig(focus=1.0, unbiased=True)  # no uniform crops: the weights could not unbias
    one = split_boxes(boxes[:1], DataConfig(crop=4, validation=0.25))  # a single box: slabs
    with pytest.raises(ConfigError, match="split in slabs"):
        CropDataset([load_region(one.train[0], tr, cfg)], cfg, seed=0)
