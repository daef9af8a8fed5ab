"""`task: vdm` end to end (2-D and 3-D, library and CLI), transforms, save/load, config errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from galaxygen.box import read_box
from galaxygen.models.vdm.transform import CountTransform, fit_count_transform
from galaxygen.training.params import ParamTransform, auto_param_names
from galaxygen.errors import ConfigError

pytestmark = pytest.mark.usefixtures("single_thread")


def test_count_transform_round_trip_and_unit_map():
    unit = CountTransform.unit()
    counts = torch.tensor([0.0, 1.0, 2.0, 3.0, 10.0, 57.0])
    x = unit.forward(counts)
    assert x[0].item() == pytest.approx(-1.0) and x[1].item() == pytest.approx(1.0)
    assert torch.equal(unit.inverse(x), counts)
    # the rounding threshold in count space is 0.5 galaxies
    thr = (math.log1p(0.5) - unit.shift) / unit.scale
    assert unit.inverse(torch.tensor([thr - 1e-3, thr + 1e-3])).tolist() == [0.0, 1.0]
    assert unit.inverse(torch.tensor([-50.0])).item() == 0.0  # never negative
    capped = fit_count_transform("unit", [np.array([0.0, 3.0]), np.array([1.0])])
    assert capped.max_count == 6.0
    assert capped.inverse(torch.tensor([1e4, float(capped.forward(torch.tensor(4.0)))])).tolist() == [6.0, 4.0]
    rng = np.random.default_rng(0)
    fields = [rng.poisson(0.3, size=(8, 8, 8)).astype(np.float32) for _ in range(3)]
    std = CountTransform.fit(fields)
    y = np.log1p(np.concatenate([f.ravel() for f in fields]).astype(np.float64))
    assert std.shift == pytest.approx(y.mean()) and std.scale == pytest.approx(y.std())
    assert torch.equal(std.inverse(std.forward(fields[0])), torch.from_numpy(fields[0]))


def test_param_transform_log_amplitudes_and_batch_path_agree():
    plist = [{"omega_m": 0.2 + 0.1 * i, "sigma_8": 0.8, "a_sn1": 10 ** (i - 1.0), "seed": i} for i in range(3)]
    names = auto_param_names(plist)
    assert names == ("omega_m", "sigma_8", "a_sn1")
    tr = ParamTransform.fit(names, plist)
    assert tr.std[1] == 1.0  # constant sigma_8 keeps scale 1
    v = [tr.forward(p) for p in plist]
    assert [round(float(t[2]), 6) for t in v] == pytest.approx([-1.224745, 0.0, 1.224745])  # log10 standardised
    from galaxygen.box import PARAM_NAMES
    raw = torch.tensor([[p.get(k, float("nan")) for k in PARAM_NAMES] for p in plist], dtype=torch.float32)
    assert torch.allclose(tr.forward_batch(raw), torch.stack(v), atol=1e-5)  # the training path
    with pytest.raises(ConfigError, match="a_sn1"):
        tr.forward({"omega_m": 0.3, "sigma_8": 0.8}, where="box.h5")


def _config(dim: int, steps: int = 3) -> dict:
    return {"task": "vdm", "device": "cpu", "seed": 1,
            "data": {"crop": 16, "pad": 0, "focus": 0.0, "validation": 0.25},
            "model": {"dim": dim, "width": 8, "mults": [1, 2], "groups": 4, "baseline": "gaussian"},
            "validation_crops": 2,
            "train": {"steps": steps, "batch_size": 2, "lr": 1e-3, "ema_decay": 0.5, "eval_every": steps,
                      "checkpoint_every": steps, "log_every": 1},
            "sample": {"steps": 3, "batch": 8, "mean": True}}


def test_vdm_3d_end_to_end_cli(box_dir, tmp_path):
    import yaml

    from galaxygen.cli import main

    cfg_path = tmp_path / "vdm.yaml"
    cfg_path.write_text(yaml.safe_dump(_config(3)))
    run = tmp_path / "run"
    assert main(["train", "--config", str(cfg_path), "--boxes", str(box_dir), "--out", str(run)]) == 0
    for f in ("config.json", "split.json", "transform.json", "summary.json", "vdm/done.json",
              "vdm/checkpoints/last.pt"):
        assert (run / f).is_file(), f
    out = tmp_path / "pred"
    args = ["predict", str(run), str(box_dir / "CV_0.h5"), "--out", str(out), "--samples", "2", "--seed", "4"]
    assert main(args) == 0
    truth = read_box(box_dir / "CV_0.h5")
    r0, r1, mean = (read_box(out / f"CV_0_{s}.h5") for s in ("r0", "r1", "mean"))
    for k, b in enumerate((r0, r1)):
        assert b.source == "prediction" and b.name == "CV_0" and b.suite == truth.suite
        assert np.array_equal(b.dm, truth.dm)
        assert b.meta["model"] == "vdm" and b.meta["realisation"] == k and b.meta["realisations"] == 2
        assert b.meta["trained_on"] == "test" and b.meta["run"] == str(run)
        assert (b.galaxies >= 0).all() and np.array_equal(b.galaxies, np.round(b.galaxies))
    assert not np.array_equal(r0.galaxies, r1.galaxies)
    assert mean.meta["kind"] == "mean" and mean.meta["realisation"] == -1
    assert np.allclose(mean.galaxies, (r0.galaxies + r1.galaxies) / 2)
    # saved run -> same samples again with the same seed; refuses to overwrite without --overwrite
    assert main(args) == 2
    assert main(args + ["--overwrite"]) == 0
    assert np.array_equal(read_box(out / "CV_0_r0.h5").galaxies, r0.galaxies)


def test_vdm_2d_end_to_end_and_save_load_same_samples(box_dir, tmp_path):
    from galaxygen.models.vdm.sampler import sample_box
    from galaxygen.models.vdm.task import load_run
    from galaxygen.training.data import Transform
    from galaxygen.models.registry import predict, train

    summary = train(_config(2), box_dir, tmp_path / "run")
    assert summary["task"] == "vdm" and summary["vdm"]["steps"] == 3
    assert summary["condition_params"] == ["omega_m", "sigma_8", "a_sn1", "a_agn1", "a_sn2", "a_agn2"]
    assert math.isfinite(summary["vdm"]["last_validation"]["bpd"])
    paths = predict(tmp_path / "run", [box_dir / "CV_1.h5"], tmp_path / "pred", samples=1, seed=0, device="cpu")
    assert [p.name for p in paths] == ["CV_1_r0.h5", "CV_1_mean.h5"]
    pred = read_box(paths[0])
    assert pred.galaxies.shape == (16, 16, 16) and pred.meta["dim"] == 2
    # the EMA weights saved in the run give the same samples after loading (no hidden state)
    cfg, saved, model = load_run(tmp_path / "run", torch.device("cpu"))
    box = read_box(box_dir / "CV_1.h5")
    cond = torch.from_numpy(Transform.from_dict(saved["dm"]).apply(box.dm))
    params = ParamTransform.from_dict(saved["params"]).forward(box.params)
    x = sample_box(model, cond, params, samples=1, seed=0, steps=3, batch=8, slice_axis=cfg.slice_axis)
    assert np.array_equal(CountTransform(**saved["galaxies"]).inverse(x)[0].numpy(), pred.galaxies)


def test_vdm_config_errors_name_the_key(box_dir, tmp_path):
    from galaxygen.models.registry import train

    bad = _config(3)
    bad["data"]["pad"] = 4
    with pytest.raises(ConfigError, match="data.pad"):
        train(bad, box_dir, tmp_path / "a")
    bad = _config(3)
    bad["condition_params"] = ["omega_m", "h0"]
    with pytest.raises(ConfigError, match="condition_params"):
        train(bad, box_dir, tmp_path / "b")
    bad = _config(3)
    bad["data"]["crop"] = 12
    bad["model"]["mults"] = [1, 2, 2, 2]
    with pytest.raises(ConfigError, match="data.crop"):
        train(bad, box_dir, tmp_path / "c")


def test_vdm_2d_rate_representation_with_parameters(box_dir, tmp_path):
    """2-D, conditioned on the parameters, diffusing the smoothed rate with the weighted loss:
    integer Poisson samples, non-empty (an untrained model samples the training data's occupation)."""
    from galaxygen.models.registry import predict, train

    cfg = _config(2)
    cfg.update(representation="rate", offset=0.1, smoothing=1.0)
    cfg["model"].update(weighting="sigmoid", prediction="v")
    summary = train(cfg, box_dir, tmp_path / "run")
    assert len(summary["condition_params"]) == 6
    assert math.isfinite(summary["vdm"]["last_validation"]["bpd"])
    paths = predict(tmp_path / "run", [box_dir / "CV_1.h5"], tmp_path / "pred", samples=2, seed=0, device="cpu")
    r0, r1 = (read_box(p) for p in paths[:2])
    assert r0.meta["representation"] == "rate" and r0.meta["dim"] == 2
    for b in (r0, r1):
        assert b.galaxies.sum() > 0 and np.array_equal(b.galaxies, np.round(b.galaxies)) and (b.galaxies >= 0).all()
    assert not np.array_equal(r0.galaxies, r1.galaxies)


def test_unbiased_focus_weights_the_vdm_loss(box_dir, tmp_path, monkeypatch):
    """data.unbiased: the training objective is the mean of weight x per-crop objective (the same
    times and noise); the validation crops stay uniform."""
    from galaxygen.models.vdm import task as vdm_task
    from galaxygen.models.vdm.vdm import LossTerms
    from galaxygen.training.crops import CropDataset

    kept = {}

    class Capture(vdm_task.Trainer):
        def __init__(self, task, *args, **kwargs):
            kept["task"] = task
            super().__init__(task, *args, **kwargs)

    monkeypatch.setattr(vdm_task, "Trainer", Capture)
    cfg = _config(3, steps=1)
    cfg["data"] = {**cfg["data"], "focus": 0.5, "unbiased": True}
    vdm_task.train(cfg, sorted(box_dir.glob("*.h5")), tmp_path / "run")
    task = kept["task"]
    assert all("weight" not in item for item in task.val_items)  # the VLB on uniform crops
    items = [task.train_dataset[i] for i in range(2)]
    batch = {k: torch.stack([it[k] for it in items]) for k in items[0]}
    assert batch["weight"].shape == (2,) and not torch.equal(batch["weight"], torch.ones(2))
    model = task.model.train()
    torch.manual_seed(11)
    loss, _ = task.training_loss(model, batch)
    torch.manual_seed(11)
    per_crop = LossTerms(**task.terms(model, batch)).objective
    torch.testing.assert_close(loss, (batch["weight"] * per_crop).mean())
    assert isinstance(task.train_dataset, CropDataset) and task.train_dataset.density
