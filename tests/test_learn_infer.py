"""Tiled inference: stitched tiles == one pass over the whole periodic box, whatever the tile."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from galaxygen.training.tiling import periodic_window, predict_tiled, tile_starts
from galaxygen.models.two_phase.networks import ModelConfig, build_network, halo_for

pytestmark = pytest.mark.usefixtures("single_thread")


def test_periodic_window_wraps():
    v = torch.arange(5.0).reshape(1, 5, 1, 1).expand(1, 5, 5, 5)
    w = periodic_window(v, (-2, 0, 0), 9)
    assert w[0, :, 0, 0].tolist() == [3, 4, 0, 1, 2, 3, 4, 0, 1]
    assert tile_starts(16, 6) == [0, 6, 10] and tile_starts(8, 16) == [0]


@pytest.mark.parametrize("name,tiles,grid", [("unet", (8, 16), 40), ("inception", (3, 5, 16), 16)])
def test_stitched_equals_single_pass(name, tiles, grid):
    torch.manual_seed(0)
    model = build_network(ModelConfig(name=name, width=4, depth=1), 2, 1).eval()
    for m in model.modules():  # non-trivial BatchNorm statistics (eval mode: a local affine map)
        if isinstance(m, torch.nn.BatchNorm3d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    vol = torch.randn(2, grid, grid, grid)  # the U-Net's halo is 10: tiles of 8 and 16 need a grid above 36
    with torch.no_grad():
        whole = model(vol[None])[0]
    halo = halo_for(model)
    for tile in tiles:
        tile = -(-tile // model.align) * model.align
        out = predict_tiled(model, vol, tile=tile, halo=halo, batch=3, align=model.align)
        torch.testing.assert_close(out, whole, rtol=1e-4, atol=1e-5)
    # too small a halo is visibly wrong: the check above has teeth
    if name == "unet":
        bad = predict_tiled(model, vol, tile=4, halo=0, batch=3, align=model.align)
        assert not torch.allclose(bad, whole, atol=1e-3)


def test_tile_not_dividing_grid_and_numpy_input():
    f = lambda x: x * 2.0 + torch.roll(x, 1, dims=2)  # radius-1 periodic stencil
    vol = np.random.default_rng(0).normal(size=(1, 12, 12, 12)).astype(np.float32)
    out = predict_tiled(f, vol, tile=5, halo=1)
    ref = f(torch.from_numpy(vol)[None])[0]
    torch.testing.assert_close(out, ref)
