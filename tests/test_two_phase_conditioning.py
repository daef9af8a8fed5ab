"""The parameter-conditioned two-phase network: FiLM in every block, condition_params, train and predict."""

from __future__ import annotations

import json
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from galaxygen.box import write_box
from galaxygen.errors import ConfigError, GalaxygenError
from galaxygen.models.two_phase.film import Conditioning
from galaxygen.models.two_phase.networks import ModelConfig, build_network, halo_for
from galaxygen.models.two_phase.phases import InferConfig, infer_box
from galaxygen.models.two_phase.task import parse_config, predict, train
from galaxygen.training.data import BoxData
from galaxygen.training.params import ParamTransform, condition_names, varying_param_names
from learn_helpers import learnable_box, tiny_config

pytestmark = pytest.mark.usefixtures("single_thread")

TINY = {"unet": dict(width=4, depth=1), "r2unet": dict(width=4, depth=1, t=1), "inception": dict(width=8, depth=1)}
PARAMS = {"omega_m": 0.3, "sigma_8": 0.8, "a_sn1": 1.0, "a_agn1": 1.0, "a_sn2": 1.0, "a_agn2": 1.0, "seed": 0.0}


def _shake_films(model: nn.Module) -> None:
    """Random FiLM maps, as after training (they start at zero: the identity)."""
    for m in model.modules():
        if isinstance(m, Conditioning):
            for f in m.films:
                nn.init.normal_(f.weight, std=0.5)
                nn.init.normal_(f.bias, std=0.2)


@pytest.mark.parametrize("name", sorted(TINY))
def test_identity_film_equals_the_unconditioned_network_at_init(name):
    cfg = ModelConfig(name=name, **TINY[name])
    torch.manual_seed(0)
    plain = build_network(cfg, 1, 1).eval()
    torch.manual_seed(0)
    cond = build_network(cfg, 1, 1, n_params=3).eval()
    own = cond.state_dict()
    for k, v in plain.state_dict().items():  # the same weights (the conditioning is drawn last) ...
        assert torch.equal(own[k], v), k
    assert any(k.startswith("cond.") for k in own)
    x = torch.randn(2, 1, 8, 8, 8)
    with torch.no_grad():  # ... and, with FiLM at the identity, the same output whatever the parameters
        assert torch.equal(cond(x, torch.randn(2, 3)), plain(x))
    with pytest.raises(ConfigError, match="conditioned on 3"):
        cond(x)
    with pytest.raises(ConfigError, match="without conditioning"):
        plain(x, torch.randn(2, 3))


@pytest.mark.parametrize("name", sorted(TINY))
def test_output_changes_with_a_conditioned_parameter_and_not_otherwise(name):
    plist = [{**PARAMS, "omega_m": 0.2, "a_sn1": 0.5}, {**PARAMS, "omega_m": 0.4, "a_sn1": 2.0}]
    ptr = ParamTransform.fit(("omega_m", "a_sn1"), plist)
    torch.manual_seed(1)
    net = build_network(ModelConfig(name=name, **TINY[name]), 1, 1, n_params=2).eval()
    _shake_films(net)
    x = torch.randn(1, 1, 8, 8, 8)

    def out(params):
        with torch.no_grad():
            return net(x, ptr.forward(params)[None])

    base = out(PARAMS)
    assert torch.equal(out(dict(PARAMS)), base)  # the same parameters: the same output
    for k in ("sigma_8", "a_agn1", "a_sn2", "a_agn2", "seed"):  # not conditioned on: no change
        assert torch.equal(out({**PARAMS, k: PARAMS[k] * 1.5 + 0.1}), base), k
    for k in ("omega_m", "a_sn1"):  # conditioned on: the output changes
        assert float((out({**PARAMS, k: PARAMS[k] * 1.5}) - base).abs().max()) > 1e-4, k


def test_auto_picks_the_parameters_that_vary():
    plist = [{**PARAMS, "omega_m": 0.2, "a_agn2": 0.5}, {**PARAMS, "omega_m": 0.4, "a_agn2": 2.0},
             {**PARAMS, "omega_m": 0.3, "a_agn2": 1.0}]
    plist[1].pop("a_sn2")
    plist[2]["a_sn2"] = 3.0  # varies but one box lacks it: not picked
    assert varying_param_names(plist) == ("omega_m", "a_agn2")
    assert condition_names("auto", plist, varying_param_names) == ("omega_m", "a_agn2")
    assert condition_names("none", plist, varying_param_names) == ()
    assert condition_names(("sigma_8",), plist, varying_param_names) == ("sigma_8",)
    assert varying_param_names([PARAMS, dict(PARAMS)]) == ()  # a CV set: nothing varies
    cfg = parse_config(tiny_config())
    assert cfg.condition_params == "none"  # the default: today's network
    with pytest.raises(ConfigError, match="condition_params: unknown"):
        parse_config({**tiny_config(), "condition_params": ["omega_m", "h0"]})


def test_tiles_of_a_conditioned_network_equal_the_whole_box():
    torch.manual_seed(0)
    model = build_network(ModelConfig(name="unet", width=4, depth=1), 1, 1, n_params=2).eval()
    _shake_films(model)
    for m in model.modules():
        if isinstance(m, nn.Conv3d):
            nn.init.normal_(m.weight, std=0.15)
    grid = 32
    vol = torch.randn(1, grid, grid, grid)
    p = torch.tensor([[0.5, -1.0]])
    with torch.no_grad():
        whole = model(vol[None], p)[0]
    shell = SimpleNamespace(grid=grid)  # infer_box reads only the grid of the box
    box = BoxData(None, shell, vol, torch.zeros(grid, grid, grid), torch.zeros(0), np.zeros((0, 3), np.int64))
    assert halo_for(model) == 10  # FiLM changes no receptive radius
    out = infer_box(model, box, InferConfig(tile=8, batch=3), torch.device("cpu"), p)
    torch.testing.assert_close(out, whole, rtol=0, atol=1e-5 * float(whole.abs().max()))


def _lh_boxes(folder, n=3, missing=None):
    """Learnable boxes whose omega_m and a_sn1 vary (sigma_8 does not); `missing`: drop it from the last."""
    paths = []
    for i in range(n):
        box = learnable_box(f"LH_{i}", 16, seed=i, suite="lh")
        params = {**PARAMS, "omega_m": 0.2 + 0.1 * i, "a_sn1": 0.5 * 2 ** i, "seed": float(i)}
        if missing and i == n - 1:
            params.pop(missing)
        paths.append(folder / f"LH_{i}.h5")
        write_box(paths[-1], replace(box, params=params))
    return paths


def test_conditioned_train_and_predict_round_trip(tmp_path):
    (tmp_path / "boxes").mkdir()
    boxes = _lh_boxes(tmp_path / "boxes")
    cfg = {**tiny_config(steps=3, phases=("classifier", "regressor")), "condition_params": "auto"}
    summary = train(cfg, boxes, tmp_path / "run")
    assert summary["condition_params"] == ["omega_m", "a_sn1"]
    saved = json.loads((tmp_path / "run" / "transform.json").read_text())["params"]
    assert saved["names"] == ["omega_m", "a_sn1"]
    train_names = [f"LH_{i}" for i in range(3) if f"LH_{i}" in summary["train_boxes"]]
    om = [0.2 + 0.1 * int(n[-1]) for n in train_names]
    assert saved["mean"][0] == pytest.approx(np.mean(om))  # standardised on the training boxes only
    ck = torch.load(tmp_path / "run" / "classifier" / "checkpoints" / "last.pt", weights_only=False)
    assert any(k.startswith("cond.") for k in ck["model"])
    out = predict(tmp_path / "run", boxes, tmp_path / "pred")
    assert [p.name for p in out] == ["LH_0.h5", "LH_1.h5", "LH_2.h5"]


def test_predict_refuses_a_box_lacking_a_conditioned_parameter(tmp_path):
    (tmp_path / "boxes").mkdir()
    boxes = _lh_boxes(tmp_path / "boxes")
    cfg = {**tiny_config(steps=2), "condition_params": ["omega_m", "a_sn1"]}
    train(cfg, boxes, tmp_path / "run")
    (tmp_path / "odd").mkdir()
    odd = _lh_boxes(tmp_path / "odd", n=2, missing="a_sn1")
    with pytest.raises(GalaxygenError, match=r"LH_1\.h5: parameters \['a_sn1'\] are needed for conditioning") as e:
        predict(tmp_path / "run", odd, tmp_path / "pred")
    assert "\n" not in str(e.value)
    assert not (tmp_path / "pred").exists() or not any((tmp_path / "pred").iterdir())  # refused before writing
