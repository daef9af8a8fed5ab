"""Networks: shapes, periodic-shift equivariance (circular padding), R2U-Net recurrence, no logit activation."""

from __future__ import annotations

import pytest
import torch

from galaxygen.models.two_phase.networks import NETWORKS, ModelConfig, build_network

pytestmark = pytest.mark.usefixtures("single_thread")

TINY = {"inception": dict(width=4, depth=1), "unet": dict(width=4, depth=1), "r2unet": dict(width=4, depth=1, t=2)}


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_shapes_and_registry(name):
    torch.manual_seed(0)
    model = build_network(ModelConfig(name=name, **TINY[name]), 2, 3).eval()
    out = model(torch.randn(2, 2, 8, 8, 8))
    assert out.shape == (2, 3, 8, 8, 8)
    assert model.receptive_radius > 0 and 8 % model.align == 0


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_periodic_shift_equivariance(name):
    torch.manual_seed(1)
    model = build_network(ModelConfig(name=name, **TINY[name]), 1, 1).eval()
    x = torch.randn(1, 1, 12, 12, 12)
    shift = (model.align * 3, -model.align, model.align * 5)
    with torch.no_grad():
        a = torch.roll(model(x), shift, dims=(2, 3, 4))
        b = model(torch.roll(x, shift, dims=(2, 3, 4)))
    assert torch.allclose(a, b, atol=1e-5)
    # zero padding would break this: the border voxels would see zeros, not the other side
    assert not torch.allclose(a, torch.zeros_like(a))


def test_r2unet_recurrence_count_used_by_every_block():
    torch.manual_seed(2)
    m1 = build_network(ModelConfig(name="r2unet", width=4, depth=1, t=1), 1, 1).eval()
    m3 = build_network(ModelConfig(name="r2unet", width=4, depth=1, t=3), 1, 1).eval()
    m3.load_state_dict(m1.state_dict())  # t adds no weights: the same convolutions are re-applied
    x = torch.randn(1, 1, 4, 4, 4)
    with torch.no_grad():
        assert not torch.allclose(m1(x), m3(x))
    rec = [m for m in m3.modules() if type(m).__name__ == "RecurrentConv"]
    assert len(rec) == 2 * 3 and all(m.t == 3 for m in rec)  # 2 per block, enc + bottom + dec blocks
    calls = []
    for m in rec:
        m.f.register_forward_hook(lambda *a, c=calls: c.append(1))
    with torch.no_grad():
        m3(x)
    assert len(calls) == len(rec) * (3 + 1)


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_no_activation_after_logit_layer(name):
    """The output is the last 1³ convolution's output itself (a ReLU after it would freeze training)."""
    torch.manual_seed(3)
    model = build_network(ModelConfig(name=name, **TINY[name]), 1, 1).eval()
    seen = []
    model.head.register_forward_hook(lambda mod, inp, out: seen.append(out))
    with torch.no_grad():
        out = model(torch.randn(1, 1, 8, 8, 8))
    assert isinstance(model.head, torch.nn.Conv3d) and out is seen[0]
