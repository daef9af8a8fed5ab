"""Two phases: threshold search, losses, mask x counts, and a tiny model learning a tiny box end to end."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from galaxygen.box import read_box
from galaxygen.models.two_phase.losses import focal, poisson, weighted_ce, weighted_mse
from galaxygen.errors import ConfigError, GalaxygenError
from galaxygen.models.two_phase.counts import galaxy_counts
from galaxygen.models.two_phase.phases import threshold_for_recall, voxel_scores
from learn_helpers import tiny_config, write_learnable_boxes

pytestmark = pytest.mark.usefixtures("single_thread")


def test_threshold_search_hand_made_case():
    # 10 positives, 20 negatives; the positives' scores interleave with the negatives'
    pos = np.array([0.95, 0.9, 0.85, 0.8, 0.7, 0.6, 0.5, 0.4, 0.2, 0.1])
    neg = np.array([0.92, 0.75, 0.65, 0.55, 0.45, 0.35, 0.3, 0.25, 0.15, 0.05] + [0.01] * 10)
    scores, truth = np.r_[pos, neg], np.r_[np.ones(10, bool), np.zeros(20, bool)]
    r = threshold_for_recall(scores, truth, 0.8)
    # recall 0.8 needs the 8 best positives: threshold 0.4 keeps them and 5 negatives above 0.4
    assert r.threshold == 0.4 and r.recall == pytest.approx(0.8) and r.precision == pytest.approx(8 / 13)
    # brute force over all thresholds agrees
    best = max((voxel_scores(scores >= t, truth)["precision"], t) for t in np.unique(scores)
               if voxel_scores(scores >= t, truth)["recall"] >= 0.8)
    assert best == (r.precision, r.threshold)
    assert threshold_for_recall(scores, truth, 1.0).threshold == 0.1
    assert threshold_for_recall(scores, truth, 0.1).precision == 1.0  # 0.95 alone


def test_losses_known_values():
    z = torch.tensor([[-1.0, 0.5, 2.0]])
    y = torch.tensor([[1.0, 0.0, 1.0]])
    sp = torch.nn.functional.softplus
    expect = (4 * sp(-z[0, 0]) + sp(z[0, 1]) + 4 * sp(-z[0, 2])) / 3
    assert weighted_ce(z, y > 0, pos_weight=4.0) == pytest.approx(float(expect))
    assert focal(z, y > 0, gamma=0.0, pos_weight=4.0) == pytest.approx(float(expect))  # γ=0: weighted CE
    assert focal(z, y > 0, gamma=2.0, pos_weight=4.0) < weighted_ce(z, y > 0, pos_weight=4.0)
    mask = torch.tensor([[True, False, True]])
    assert weighted_mse(torch.tensor([[1.0, 5.0, 0.0]]), torch.tensor([[2.0, 0.0, 0.0]]), mask,
                        occupied_weight=3.0) == pytest.approx(3.0 / 2)
    lr = torch.zeros(3, requires_grad=True)  # Poisson NLL gradient vanishes at rate = counts
    counts = torch.tensor([0.5, 2.0, 3.0])
    poisson(lr + torch.log(counts), counts).backward()
    assert torch.allclose(lr.grad, torch.zeros(3), atol=1e-7)


def test_galaxy_counts_mask_times_counts():
    prob = np.array([0.9, 0.9, 0.1, 0.6])
    rate = np.array([2.4, 0.2, 5.0, 1.6])
    np.testing.assert_array_equal(galaxy_counts(prob, rate, 0.5), [2, 0, 0, 2])
    np.testing.assert_array_equal(galaxy_counts(prob, None, 0.5), [1, 1, 0, 1])
    np.testing.assert_array_equal(galaxy_counts(None, rate, None), [2, 0, 5, 2])
    a = galaxy_counts(prob, rate, 0.5, counts="poisson", rng=np.random.default_rng(1))
    b = galaxy_counts(prob, rate, 0.5, counts="poisson", rng=np.random.default_rng(1))
    np.testing.assert_array_equal(a, b)
    assert a[2] == 0
    big = galaxy_counts(None, np.full(20000, 3.0), None, counts="poisson", rng=np.random.default_rng(2))
    assert big.mean() == pytest.approx(3.0, abs=0.05) and big.var() == pytest.approx(3.0, rel=0.05)


def test_total_counts_keep_the_expected_total_in_the_likeliest_voxels():
    prob = np.array([0.9, 0.9, 0.9, 0.9, 0.1, 0.9])
    rate = np.array([0.32, 0.45, 1.2, 0.35, 0.9, 0.2])
    # kept: 0.32 + 0.45 + 1.2 + 0.35 + 0.2 = 2.52 (the 0.9 voxel is masked) -> 3 galaxies: floor
    # gives 1 (the 1.2 voxel), the largest remaining fractions (0.45, 0.35) the others; 'round' gives 1
    np.testing.assert_array_equal(galaxy_counts(prob, rate, 0.5, counts="total"), [0, 1, 1, 1, 0, 0])
    np.testing.assert_array_equal(galaxy_counts(prob, rate, 0.5, counts="round"), [0, 0, 1, 0, 0, 0])
    rng = np.random.default_rng(3)
    r = rng.gamma(0.3, 1.0, size=(16, 16, 16))
    c = galaxy_counts(None, r, None, counts="total")
    assert c.sum() == round(r.sum())
    assert np.all((c == np.floor(r)) | (c == np.floor(r) + 1))
    # the extra galaxies go to the largest fractional parts
    frac, got = r - np.floor(r), c > np.floor(r)
    assert frac[got].min() >= frac[~got].max()
    with pytest.raises(ConfigError, match="counts"):
        galaxy_counts(None, r, None, counts="floor")


def test_tiny_model_learns_tiny_box_and_predicts(tmp_path):
    from galaxygen.cli import main

    boxes = write_learnable_boxes(tmp_path / "boxes", n=3)
    config = tiny_config(steps=60, batch=4, phases=("classifier", "regressor"), validation=0.34)
    for phase in ("classifier", "regressor"):
        config[phase]["train"].update(eval_every=30, checkpoint_every=30, log_every=10)
    config["classifier"]["train"]["early_stopping"] = {"metric": "precision_at_recall", "mode": "max"}
    (tmp_path / "cfg.json").write_text(json.dumps(config))
    run = tmp_path / "run"
    assert main(["train", "--config", str(tmp_path / "cfg.json"), "--boxes", str(boxes), "--out", str(run),
                 "--set", "target_recall=0.9"]) == 0
    rows = list(csv.DictReader(open(run / "classifier" / "train_log.csv")))
    first, last = float(rows[0]["loss"]), float(rows[-1]["loss"])
    assert last < 0.5 * first
    assert float(rows[-1]["recall"]) > 0.85
    th = json.loads((run / "threshold.json").read_text())
    assert th["recall"] >= 0.9 and th["precision"] > 0.4  # occupancy is ~8 %: far better than chance
    reg = list(csv.DictReader(open(run / "regressor" / "train_log.csv")))
    assert float(reg[-1]["loss"]) < float(reg[0]["loss"])
    # predict: one file per input, named after the input, evaluation metadata
    assert main(["predict", str(run), str(boxes), "--out", str(tmp_path / "pred")]) == 0
    split = json.loads((run / "split.json").read_text())
    for r in split["train"]:
        truth, pred = read_box(r["path"]), read_box(tmp_path / "pred" / f"{r['name']}.h5")
        assert pred.source == "prediction" and pred.name == truth.name and pred.suite == truth.suite
        assert pred.meta["model"] == "two-phase:inception+unet" and pred.meta["trained_on"] == "test"
        np.testing.assert_array_equal(pred.dm, truth.dm)
        s = voxel_scores(pred.galaxies, truth.galaxies)
        assert s["recall"] > 0.8 and s["precision"] > 0.4
    assert main(["predict", str(run), str(boxes), "--out", str(tmp_path / "pred")]) == 2  # no overwrite
    assert main(["predict", str(run), str(boxes), "--out", str(tmp_path / "p2"), "--steps", "5"]) == 2  # VDM only
    # Poisson realisations: <name>_r<k>.h5, reproducible from the seed, different from each other
    one = tmp_path / "boxes" / "CV_0.h5"
    for out in ("s1", "s2"):
        assert main(["predict", str(run), str(one), "--out", str(tmp_path / out), "--counts", "poisson",
                     "--samples", "2", "--seed", "3"]) == 0
    r0, r1 = (read_box(tmp_path / "s1" / f"CV_0_r{k}.h5") for k in (0, 1))
    assert (r0.meta["realisation"], r1.meta["realisation"], r1.meta["realisations"]) == (0, 1, 2)
    assert not np.array_equal(r0.galaxies, r1.galaxies)
    np.testing.assert_array_equal(r0.galaxies, read_box(tmp_path / "s2" / "CV_0_r0.h5").galaxies)


def test_train_command_errors_name_the_problem(tmp_path, capsys):
    from galaxygen.cli import main

    boxes = write_learnable_boxes(tmp_path / "boxes", n=2)
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(tiny_config()))
    assert main(["train", "--config", str(cfg), "--boxes", str(boxes), "--out", str(tmp_path / "r"),
                 "--set", "classifier.model.widht=3"]) == 2
    assert "widht" in capsys.readouterr().err
    assert main(["train", "--config", str(cfg), "--boxes", str(boxes), "--out", str(tmp_path / "r"),
                 "--set", "task=gan"]) == 2
    assert "two_phase" in capsys.readouterr().err
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "config.json").write_text("{}")
    assert main(["train", "--config", str(cfg), "--boxes", str(boxes), "--out", str(tmp_path / "r")]) == 2
    assert "--resume" in capsys.readouterr().err


def test_regressor_alone(tmp_path):
    from galaxygen.models.registry import predict, train

    boxes = write_learnable_boxes(tmp_path / "boxes", n=2)
    config = tiny_config(steps=2, phases=("regressor",))
    summary = train(config, boxes, tmp_path / "run")
    assert "classifier" not in summary and summary["regressor"]["steps"] == 2
    assert not (tmp_path / "run" / "threshold.json").exists()
    (out,) = predict(tmp_path / "run", [boxes / "CV_0.h5"], tmp_path / "pred", counts="total")
    pred = read_box(out)
    assert pred.meta["model"] == "two-phase:unet" and "threshold" not in pred.meta
    assert np.all(pred.galaxies == np.rint(pred.galaxies)) and pred.galaxies.min() >= 0
    # every prediction stores the expected counts it realises: 'total' keeps their sum
    assert pred.galaxy_rate is not None and pred.galaxy_rate.dtype == np.float32
    assert pred.galaxies.sum() == np.rint(pred.galaxy_rate.sum(dtype=np.float64))
    # structured realisations: seeded, numbered, same expected counts behind each
    outs = predict(tmp_path / "run", [boxes / "CV_0.h5"], tmp_path / "s", counts="structured", samples=2, seed=4)
    again = predict(tmp_path / "run", [boxes / "CV_0.h5"], tmp_path / "s2", counts="structured", samples=1, seed=4)
    r0, r1, a0 = (read_box(p) for p in (*outs, *again))
    assert (r0.meta["counts"], r0.meta["realisation"], r1.meta["realisation"]) == ("structured", 0, 1)
    np.testing.assert_array_equal(r0.galaxies, a0.galaxies)
    assert not np.array_equal(r0.galaxies, r1.galaxies)
    np.testing.assert_array_equal(r0.galaxy_rate, pred.galaxy_rate)
    assert not r0.galaxies[r0.galaxy_rate == 0].any()


def test_classifier_alone_refuses_samples_that_would_all_be_its_mask(tmp_path):
    from galaxygen.errors import GalaxygenError
    from galaxygen.models.registry import predict, train

    boxes = write_learnable_boxes(tmp_path / "boxes", n=2)
    train(tiny_config(steps=2, phases=("classifier",)), boxes, tmp_path / "run")
    with pytest.raises(GalaxygenError, match="no regressor"):
        predict(tmp_path / "run", [boxes / "CV_0.h5"], tmp_path / "s", counts="poisson", samples=2, seed=1)
    assert not (tmp_path / "s").exists()
    (one,) = predict(tmp_path / "run", [boxes / "CV_0.h5"], tmp_path / "p", counts="poisson", seed=1)
    assert np.array_equal(read_box(one).galaxies, read_box(one).galaxy_rate)  # the mask, 0 or 1


def test_crop_weights_make_the_loss_the_weighted_mean_over_crops():
    """data.unbiased: the phases' losses are Σ_crops w·(crop's loss) / Σ w (self-normalised importance
    sampling; `galaxygen.models.two_phase.phases.crop_weights`)."""
    from galaxygen.models.two_phase.phases import crop_weights

    torch.manual_seed(0)
    out, y = torch.randn(3, 1, 4, 4, 4), torch.poisson(torch.full((3, 1, 4, 4, 4), 0.3))
    w = torch.tensor([0.5, 2.0, 0.0])
    assert crop_weights({"target": y}, y) is None
    mask = crop_weights({"target": y, "weight": w}, y)
    assert mask.shape == y.shape
    per_crop = torch.stack([poisson(out[i], y[i]) for i in range(3)])
    torch.testing.assert_close(poisson(out, y, mask), (w * per_crop).sum() / w.sum())
    per_crop = torch.stack([weighted_ce(out[i], y[i] > 0, pos_weight=3.0) for i in range(3)])
    torch.testing.assert_close(weighted_ce(out, y > 0, mask, pos_weight=3.0), (w * per_crop).sum() / w.sum())


def test_the_regressor_starts_at_the_mean_count_of_its_voxels(tmp_path):
    """calibrate_head: the head's bias is log(mean count) over the kept voxels (Poisson), the mean count
    itself for an MSE loss; with its weights zeroed the network's rate is that mean everywhere."""
    from galaxygen.models.two_phase.losses import LossConfig, rate_from_output
    from galaxygen.models.two_phase.networks import ModelConfig, build_network
    from galaxygen.models.two_phase.phases import calibrate_head
    from galaxygen.training.data import DataConfig, fit_transform, load_region, split_boxes

    boxes = sorted(write_learnable_boxes(tmp_path, n=2).glob("*.h5"))
    cfg = DataConfig(validation=0.0)
    split = split_boxes(boxes, cfg)
    tr = fit_transform(split.train, cfg)
    loaded = [load_region(r, tr, cfg) for r in split.train]
    keep = loaded[0].target > 0
    keep[:4] = True
    loaded[0].extras["keep"] = keep.float()
    want = (float(loaded[0].target[keep].sum()) + float(loaded[1].target.sum())) / (int(keep.sum()) + 16 ** 3)
    net = build_network(ModelConfig(name="unet", width=4, depth=1), 1, 1)
    assert calibrate_head(net, loaded, LossConfig(name="poisson")) == pytest.approx(want)
    assert float(net.head.bias.detach()) == pytest.approx(np.log(want), rel=1e-6)
    with torch.no_grad():
        net.head.weight.zero_()
        rate = rate_from_output(net.eval()(loaded[0].inputs[None]), LossConfig(name="poisson"))
    torch.testing.assert_close(rate, torch.full_like(rate, want))
    calibrate_head(net, loaded, LossConfig(name="weighted_mse"))
    assert float(net.head.bias.detach()) == pytest.approx(want, rel=1e-6)


def test_count_calibration_makes_the_expected_total_the_true_one(tmp_path):
    """calibrate_counts: the rates are scaled (calibration.json) so that the expected counts the
    predictions store (fields/galaxy_rate, after the classifier mask and the sharpening, which keeps
    region totals) add up to the true galaxies of the training and validation boxes; the same run
    trained without it predicts the unscaled total that calibration.json records."""
    from galaxygen.models.registry import predict, train

    boxes = write_learnable_boxes(tmp_path / "boxes", n=3)
    paths = sorted(boxes.glob("*.h5"))
    config = {**tiny_config(steps=4, phases=("classifier", "regressor")), "counts": "structured",
              "sharpen": 3.0, "sharpen_satellites": 1.0}
    config["regressor"]["loss"] = {"name": "poisson"}
    summary = train(config, boxes, tmp_path / "run")
    cal = json.loads((tmp_path / "run" / "calibration.json").read_text())
    n_true = sum(float(read_box(p).galaxies.sum()) for p in paths)
    assert summary["calibration"] == cal and sorted(r["name"] for r in cal["regions"]) == ["CV_0", "CV_1", "CV_2"]
    assert cal["n_true"] == n_true and cal["count_scale"] == pytest.approx(n_true / cal["n_expected"])
    assert abs(cal["count_scale"] - 1.0) > 0.02  # four steps leave the rates off: the scale does something
    scaled = predict(tmp_path / "run", paths, tmp_path / "pred", seed=1)
    assert sum(float(read_box(p).galaxy_rate.sum(dtype=np.float64)) for p in scaled) == pytest.approx(n_true, rel=1e-4)
    assert read_box(scaled[0]).meta["count_scale"] == pytest.approx(cal["count_scale"])

    # killed after the regressor, before the calibration pass: predict refuses, --resume calibrates
    (tmp_path / "run" / "calibration.json").unlink()
    with pytest.raises(GalaxygenError, match="calibration.json.*--resume"):
        predict(tmp_path / "run", paths[:1], tmp_path / "refused", seed=1)
    assert not (tmp_path / "refused").exists()
    train(config, boxes, tmp_path / "run", resume=True)
    assert json.loads((tmp_path / "run" / "calibration.json").read_text()) == cal

    train({**config, "calibrate_counts": False}, boxes, tmp_path / "raw")
    assert not (tmp_path / "raw" / "calibration.json").exists()
    raw = predict(tmp_path / "raw", paths, tmp_path / "pred_raw", seed=1)
    assert sum(float(read_box(p).galaxy_rate.sum(dtype=np.float64)) for p in raw) == pytest.approx(
        cal["n_expected"], rel=1e-4)
