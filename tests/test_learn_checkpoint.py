"""Checkpoints hold only tensors and plain data: loaded with weights_only=True, a pickled object is refused."""

from __future__ import annotations

import json
import os
import random

import numpy as np
import pytest
import torch

from learn_helpers import tiny_config, write_learnable_boxes

pytestmark = pytest.mark.usefixtures("single_thread")


class _Payload:
    """Unpickling this runs a shell command (what a malicious checkpoint would do)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _malicious_checkpoint(path, marker):
    """A file shaped like a checkpoint whose 'rng' entry unpickles by calling os.system."""
    torch.save({"model": {"w": torch.zeros(2)}, "step": 3, "rng": [_Payload(marker)]}, path)
    return path


def test_pickled_object_is_refused_and_nothing_runs(tmp_path):
    from galaxygen.errors import GalaxygenError
    from galaxygen.training.checkpoint import load_checkpoint

    marker = tmp_path / "ran"
    path = _malicious_checkpoint(tmp_path / "evil.pt", marker)
    with pytest.raises(GalaxygenError) as err:
        load_checkpoint(path)
    msg = str(err.value)
    assert str(path) in msg and "refused" in msg and "\n" not in msg
    assert not marker.exists()
    # the file is really malicious: a plain (weights_only=False) load runs the command
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_rng_states_survive_a_weights_only_round_trip(tmp_path):
    from galaxygen.training.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state

    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    random.gauss(0, 1), np.random.standard_normal()  # leave cached Gaussians in both generators
    save_checkpoint(tmp_path / "ck.pt", {"rng": [rng_state()]})

    def draws():
        return (random.random(), random.gauss(0, 1), np.random.standard_normal(3).tolist(),
                np.random.randint(0, 1 << 30), torch.rand(3).tolist())
    expected = draws()
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    ck = torch.load(tmp_path / "ck.pt", weights_only=True)  # plain data only
    set_rng_state(load_checkpoint(tmp_path / "ck.pt")["rng"][0])
    assert draws() == expected
    assert isinstance(ck["rng"][0]["numpy"]["key"], torch.Tensor)


def test_train_resume_and_predict_refuse_a_malicious_checkpoint(tmp_path, capsys):
    from galaxygen.cli import main

    boxes = write_learnable_boxes(tmp_path / "boxes", n=3)
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(tiny_config(steps=2, batch=2)))
    run = tmp_path / "run"
    assert main(["train", "--config", str(cfg), "--boxes", str(boxes), "--out", str(run)]) == 0
    last = run / "classifier" / "checkpoints" / "last.pt"
    assert torch.load(last, weights_only=True)["step"] == 2  # what galaxygen writes loads safely
    marker = tmp_path / "ran"
    _malicious_checkpoint(last, marker)
    (run / "classifier" / "done.json").unlink()  # make --resume read last.pt
    capsys.readouterr()
    assert main(["train", "--config", str(cfg), "--boxes", str(boxes), "--out", str(run), "--resume"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(last) in err and "refused" in err
    (run / "classifier" / "done.json").write_text("{}")
    # -q: the input check warns that these are training boxes; the refusal is the one error line
    assert main(["-q", "predict", str(run), str(boxes), "--out", str(tmp_path / "pred")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(last) in err and "refused" in err
    assert not marker.exists() and not (tmp_path / "pred").exists()
