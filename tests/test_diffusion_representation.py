"""The VDM's sparse-count representations: smoothing, Poisson step, the two-phase cascade."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from galaxygen.box import read_box
from galaxygen.models.vdm.representation import cascade_rate, gaussian_smooth, poisson_counts
from galaxygen.models.vdm.sampler import sample_box
from galaxygen.models.vdm.task import parse_config, sample_counts
from galaxygen.models.vdm.transform import CountTransform
from galaxygen.models.vdm.vdm import VDM, VDMConfig
from learn_helpers import tiny_config

pytestmark = pytest.mark.usefixtures("single_thread")


def test_gaussian_smoothing_keeps_the_total_and_the_kernel_width():
    n, sigma = 32, 1.5
    f = np.zeros((n, n, n), np.float32)
    f[0, 5, 31] = 3.0                                     # a point across the periodic boundary
    s = gaussian_smooth(f, sigma)
    assert s.sum() == pytest.approx(3.0, rel=1e-5) and (s >= 0).all()
    # the kernel is a periodic Gaussian of std sigma along each axis, centred on the point
    prof = s.sum(axis=(1, 2))
    d = np.minimum(np.arange(n), n - np.arange(n))      # distance to voxel 0, periodic
    assert np.sqrt((prof * d ** 2).sum() / prof.sum()) == pytest.approx(sigma, rel=0.02)
    assert np.array_equal(gaussian_smooth(f, 0.0), f)


def test_poisson_step_reproducible_and_unbiased():
    lam = np.full((16, 16, 16), 0.3, np.float32)
    a, b, c = poisson_counts(lam, 7, 0), poisson_counts(lam, 7, 0), poisson_counts(lam, 7, 1)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert a.mean() == pytest.approx(0.3, abs=0.03) and a.var() == pytest.approx(0.3, rel=0.1)


def test_rate_transform_round_trip():
    tr = CountTransform.unit(0.1)
    lam = torch.tensor([0.0, 0.05, 1.0, 4.2])
    x = tr.forward(lam)
    assert x[0].item() == pytest.approx(-1.0) and x[2].item() == pytest.approx(1.0)
    assert torch.allclose(tr.rate(x), lam, atol=1e-6)
    rho = torch.tensor([0.0, 0.3, 2.0])
    assert torch.equal(cascade_rate(rho, torch.zeros(3), tr), rho)       # zero residual: ρ to the bit
    d = tr.forward(torch.tensor([1.0, 1.0, 1.0])) - tr.forward(rho)     # the residual to one galaxy
    assert torch.allclose(cascade_rate(rho, d, tr), torch.ones(3), atol=1e-5)


def test_cascade_with_zero_residual_samples_exactly_poisson_draws_of_its_rate():
    """A cascade model whose residual is zero (Gaussian baseline of spread 0, fresh U-Net) returns
    exactly the two-phase rates, so its samples are the Poisson draws of its rate channel."""
    cfg = parse_config({"task": "vdm", "representation": "rate", "offset": 0.1, "cascade": "/nowhere",
                        "data": {"crop": 8, "pad": 0, "focus": 0.0}, "model": {"dim": 3, "width": 8, "mults": [1, 2], "groups": 4,
                                                       "baseline": "gaussian", "prediction": "v"}})
    torch.manual_seed(0)
    model = VDM(cfg.model, cond_channels=2).eval()
    model.set_data_stats(0.0, 0.0)
    for name, p in model.net.named_parameters():          # any weights but the zero-initialised output layer
        if not name.startswith("conv_out"):
            torch.nn.init.normal_(p, std=0.2)
    gen = np.random.default_rng(0)
    rho = torch.from_numpy(gen.gamma(0.3, 1.0, size=(8, 8, 8)).astype(np.float32))
    tr = CountTransform.unit(0.1)
    cond = torch.stack([torch.randn(8, 8, 8), tr.forward(rho)])
    x = sample_box(model, cond, None, samples=3, seed=11, steps=5)
    assert torch.count_nonzero(x) == 0
    counts = sample_counts(cfg, tr, x, rho, 11)
    for k in range(3):
        assert np.array_equal(counts[k], np.random.default_rng([11, k, 0x504F4953]).poisson(rho.numpy().astype(np.float64)))
    assert not np.array_equal(counts[0], counts[1])


def test_cascade_run_end_to_end(tmp_path):
    """Two-phase run → VDM cascade run on its rates → prediction boxes with Poisson counts."""
    from learn_helpers import write_learnable_boxes

    from galaxygen.models.registry import predict, train, two_phase_rates

    boxes = write_learnable_boxes(tmp_path / "boxes", n=3)
    train({**tiny_config(steps=2, phases=("classifier", "regressor")), "sharpen": 3.0}, boxes, tmp_path / "tp")
    # the cascade's rate channel is exactly what the two-phase run realises (sharpening included)
    [tp_pred] = predict(tmp_path / "tp", [boxes / "CV_2.h5"], tmp_path / "tp_pred", counts="poisson", seed=0,
                        device="cpu")
    stored = read_box(tp_pred).galaxy_rate
    rho = two_phase_rates(tmp_path / "tp", torch.device("cpu"))(read_box(boxes / "CV_2.h5"))
    assert stored.sum() > 0 and np.array_equal(rho, stored)
    cfg = {"task": "vdm", "device": "cpu", "seed": 1, "representation": "rate", "offset": 0.1, "smoothing": 1.0,
           "cascade": str(tmp_path / "tp"), "data": {"crop": 8, "pad": 0, "focus": 0.0, "validation": 0.34},
           "model": {"dim": 3, "width": 8, "mults": [1, 2], "groups": 4, "baseline": "gaussian",
                     "weighting": "sigmoid", "prediction": "v"},
           "validation_crops": 1, "train": {"steps": 2, "batch_size": 2, "eval_every": 2, "checkpoint_every": 2}}
    summary = train(cfg, boxes, tmp_path / "vdm")
    assert np.isfinite(summary["vdm"]["last_validation"]["bpd"])
    paths = predict(tmp_path / "vdm", [boxes / "CV_2.h5"], tmp_path / "pred", samples=2, seed=3, device="cpu")
    r0 = read_box(paths[0])
    assert r0.meta["representation"] == "rate" and r0.meta["cascade"] == str(tmp_path / "tp")
    assert (r0.galaxies >= 0).all() and np.array_equal(r0.galaxies, np.round(r0.galaxies))
    again = predict(tmp_path / "vdm", [boxes / "CV_2.h5"], tmp_path / "pred", samples=2, seed=3, device="cpu",
                    overwrite=True)
    assert np.array_equal(read_box(again[0]).galaxies, r0.galaxies)


def test_point_baseline_untrained_cascade_is_the_poisson_peer():
    """baseline 'point' (a point prior at residual 0) ignores the fitted residual statistics: an
    untrained cascade samples exactly 0, i.e. the Poisson draws of its rates."""
    model = VDM(VDMConfig(dim=3, width=8, mults=(1,), groups=4, baseline="point", prediction="v"),
                cond_channels=2).eval()
    model.set_data_stats(-0.8, 0.6)           # what training would fit: not used by the point prior
    x = sample_box(model, torch.randn(2, 8, 8, 8), None, samples=2, seed=0, steps=4)
    assert torch.count_nonzero(x) == 0
