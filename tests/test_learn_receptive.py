"""Receptive radii (analytic, checked by perturbation), the exact default halo, tie-breaking of counts."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from galaxygen.training.tiling import predict_tiled
from galaxygen.models.two_phase.networks import ModelConfig, build_network, halo_for
from galaxygen.training.receptive import chain_radius, exact_halo

pytestmark = pytest.mark.usefixtures("single_thread")

CONFIGS = Path(__file__).resolve().parents[1] / "src" / "galaxygen" / "configs"


def measured_radius(f, n: int, channels: int, align: int, dim: int = 3) -> int:
    """Largest periodic Chebyshev distance between a perturbed input voxel and an output voxel that
    changes, over perturbations at every position of the down-sampling lattice. Outputs outside the
    receptive field are computed from bitwise the same inputs, so they do not change at all."""
    x = torch.randn(1, channels, *(n,) * dim, generator=torch.Generator().manual_seed(0))
    radius = 0
    with torch.no_grad():
        base = f(x)
        for k in range(align):
            p = n // 2 + k
            y = x.clone()
            y[(0, slice(None)) + (p,) * dim] += 1e3  # large: far-field changes stay far above float rounding
            changed = torch.nonzero((f(y) - base).abs().amax(dim=(0, 1)) > 0)
            dist = (changed - p).abs()
            radius = max(radius, int(torch.minimum(dist, n - dist).max()))
    assert 2 * radius < n - 1, "grid too small to see the radius"
    return radius


@pytest.mark.parametrize("name,kw,n", [("inception", dict(width=4, depth=3), 20),
                                       ("unet", dict(width=4, depth=2), 48),
                                       ("r2unet", dict(width=4, depth=1, t=1), 40)])
def test_receptive_radius_is_exact(name, kw, n):
    torch.manual_seed(0)
    # leaky ReLU: no dead units that could hide a path (the radius does not depend on the activation)
    model = build_network(ModelConfig(name=name, activation="leaky_relu", **kw), 2, 1).eval()
    assert measured_radius(model, n, 2, model.align) == model.receptive_radius


def test_small_regressor_radius_and_halo():
    # two-phase-small's regressor: R2U-Net width 4, depth 1, t 2
    model = build_network(ModelConfig(name="r2unet", width=4, depth=1, t=2), 2, 1)
    assert model.receptive_radius == 25 and halo_for(model) == 26
    assert chain_radius([("conv", 6), ("pool", 2), ("conv", 6), ("up", 2), ("conv", 6)]) == 25
    assert exact_halo(25, 2) == 26 and exact_halo(24, 8) == 24 and exact_halo(3) == 3


@pytest.mark.parametrize("dim,mults,blocks,n", [(3, (1, 2), 1, 64), (2, (1, 2, 2), 1, 144)])
def test_diffusion_unet_radius_is_exact(dim, mults, blocks, n):
    from galaxygen.models.vdm.unet import DiffusionUNet

    torch.manual_seed(1)
    net = DiffusionUNet(1, 1, dim=dim, cond_channels=1, width=4, mults=mults, blocks=blocks, groups=2).eval()
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d)):  # the zero-initialised output convs would hide every path
            nn.init.normal_(m.weight, std=0.3)
    for m in list(net.modules()):  # GroupNorm couples every voxel through its statistics: the radius is the convs'
        for child_name, child in list(m.named_children()):
            if isinstance(child, nn.GroupNorm):
                setattr(m, child_name, nn.Identity())
    gamma = torch.zeros(1)
    assert measured_radius(lambda x: net(x[:, :1], gamma, x[:, 1:]), n, 2, net.multiple, dim) == net.receptive_radius


def _counting(model):
    calls = []

    def fn(x):
        calls.append(tuple(x.shape[2:]))
        return model(x)
    return fn, calls


@pytest.mark.parametrize("name,tiles,grid", [("unet", (4, 8), 32), ("inception", (3, 5), 16)])
def test_default_halo_tiles_equal_the_whole_box(name, tiles, grid):
    from galaxygen.training.data import BoxData
    from galaxygen.models.two_phase.phases import InferConfig, infer_box

    torch.manual_seed(0)
    model = build_network(ModelConfig(name=name, width=4, depth=1), 2, 1).eval()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm3d):  # non-trivial statistics (eval mode: a local affine map)
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
        if isinstance(m, nn.Conv3d):  # weights large enough for the far field to matter, as in a trained net
            nn.init.normal_(m.weight, std=0.15)
    vol = torch.randn(2, grid, grid, grid)
    with torch.no_grad():
        whole = model(vol[None])[0]
    scale = float(whole.abs().max())
    shell = SimpleNamespace(grid=grid)  # infer_box reads only the grid of the box
    box = BoxData(None, shell, vol, torch.zeros(grid, grid, grid), torch.zeros(0), np.zeros((0, 3), np.int64))
    assert InferConfig().halo is None  # the default: the exact halo
    for tile in tiles:
        cfg = InferConfig(tile=tile, batch=3)
        out = infer_box(model, box, cfg, torch.device("cpu"))
        torch.testing.assert_close(out, whole, rtol=0, atol=1e-5 * scale)  # float rounding only
        # really tiled: windows smaller than the box
        fn, calls = _counting(model)
        predict_tiled(fn, vol, tile=tile, halo=halo_for(model), batch=3, align=model.align)
        assert calls and all(max(c) < grid for c in calls)
    # a halo well below the radius is visibly wrong: the comparison has teeth (tiles starting on the
    # down-sampling lattice need a little less than the worst-case radius: the U-Net's 10 -> 8 is still exact)
    short = predict_tiled(model, vol, tile=tiles[0], halo=halo_for(model) - 2 * model.align, align=model.align)
    assert float((short - whole).abs().max()) > 1e-3 * scale


def test_window_as_large_as_the_box_runs_one_whole_box_pass():
    torch.manual_seed(0)
    model = build_network(ModelConfig(name="unet", width=4, depth=1), 2, 1).eval()
    vol = torch.randn(2, 16, 16, 16)
    fn, calls = _counting(model)
    out = predict_tiled(fn, vol, tile=8, halo=halo_for(model), align=model.align)  # 8 + 2 x 10 >= 16
    assert calls == [(16, 16, 16)]
    with torch.no_grad():
        assert torch.equal(out, model(vol[None])[0])


def test_shipped_configs_tile_exactly_by_default():
    import yaml

    from galaxygen.config import from_dict
    from galaxygen.models.vdm.task import VDMTaskConfig
    from galaxygen.models.two_phase.phases import TwoPhaseConfig

    for path in sorted(CONFIGS.glob("two-phase-*.yaml")):
        cfg = from_dict(TwoPhaseConfig, yaml.safe_load(path.read_text()))
        for phase in cfg.phases:
            model = build_network(getattr(cfg, phase).model, 1, 1)
            assert halo_for(model, cfg.infer.halo) >= model.receptive_radius, (path.name, phase)
    for path in sorted(CONFIGS.glob("vdm-*.yaml")):
        cfg = from_dict(VDMTaskConfig, yaml.safe_load(path.read_text()))
        assert cfg.sample.halo is None, path.name  # the U-Net's receptive radius
        if cfg.model.dim == 3:
            assert cfg.sample.tile is None, path.name  # GroupNorm: only the whole box is exact


def test_total_counts_break_equal_remainders_by_voxel_index():
    from galaxygen.models.two_phase.counts import galaxy_counts, largest_remainder

    rate = np.zeros((4, 4, 4))
    tied = [(3, 3, 3), (0, 2, 1), (2, 0, 0), (0, 0, 3), (1, 1, 1), (3, 0, 2)]  # six remainders of 0.5
    for v in tied:
        rate[v] = 0.5
    rate[1, 2, 3] = 1.5  # floor 1, remainder 0.5 as well
    out = largest_remainder(rate)
    assert out.sum() == round(rate.sum()) == 4  # 1 + 3 extra (round half to even of 4.0)
    flat = sorted(np.ravel_multi_index(v, rate.shape) for v in tied + [(1, 2, 3)])
    winners = set(flat[:3])  # the three lowest flat indices among the seven equal remainders
    for v in tied + [(1, 2, 3)]:
        i = np.ravel_multi_index(v, rate.shape)
        assert out[v] == np.floor(rate[v]) + (i in winners), v
    # the same field in another memory order or dtype gives the same counts
    assert np.array_equal(largest_remainder(np.asfortranarray(rate)), out)
    assert np.array_equal(largest_remainder(rate.astype(np.float32)), out)
    assert np.array_equal(largest_remainder(rate.transpose(2, 1, 0).copy().transpose(2, 1, 0)), out)
    assert np.array_equal(galaxy_counts(None, rate, None, counts="total"), out)


def test_predict_refuses_a_negative_halo(tmp_path, capsys):
    from galaxygen.box import write_box
    from galaxygen.cli import main
    from learn_helpers import learnable_box

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text('{"task": "two_phase"}')
    write_box(tmp_path / "CV_0.h5", learnable_box())
    capsys.readouterr()
    assert main(["-q", "predict", str(run), str(tmp_path / "CV_0.h5"), "--out", str(tmp_path / "pred"),
                 "--halo", "-1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--halo" in err
    assert not (tmp_path / "pred").exists()
