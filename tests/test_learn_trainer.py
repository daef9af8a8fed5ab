"""Trainer: exact resume after a kill, and DDP with 2 gloo processes == 1 process."""

from __future__ import annotations

import csv
import socket

import pytest
import torch

from learn_helpers import ddp_worker, tiny_config, write_learnable_boxes

pytestmark = pytest.mark.usefixtures("single_thread")


def _classifier_trainer(config, boxes, work_dir, resume):
    from galaxygen.config import from_dict
    from galaxygen.training.data import fit_transform, load_region, split_boxes
    from galaxygen.models.two_phase.networks import build_network
    from galaxygen.training.trainer import Trainer
    from galaxygen.models.two_phase.phases import ClassifierTask, TwoPhaseConfig
    from galaxygen.box import list_boxes

    cfg = from_dict(TwoPhaseConfig, config)
    split = split_boxes(list_boxes(boxes), cfg.data)
    tr = fit_transform(split.train, cfg.data)
    train_b = [load_region(r, tr, cfg.data) for r in split.train]
    val_b = [load_region(r, tr, cfg.data) for r in split.validation]
    torch.manual_seed(0)
    model = build_network(cfg.classifier.model, tr.channels, 1)
    task = ClassifierTask(model, train_b, val_b, cfg, torch.device("cpu"))
    return Trainer(task, cfg.classifier.train, work_dir, resume=resume, config=config, name="classifier")


def test_resume_after_kill_equals_uninterrupted(tmp_path):
    boxes = write_learnable_boxes(tmp_path / "boxes", n=3)
    config = tiny_config(steps=6, batch=2)
    config["classifier"]["train"].update(checkpoint_every=3, eval_every=3, ema_decay=0.5,
                                         early_stopping={"metric": "precision_at_recall", "mode": "max"})
    full = _classifier_trainer(config, boxes, tmp_path / "full", resume=False)
    full.fit()

    def kill_at_3(trainer):
        if trainer.step == 3:
            raise KeyboardInterrupt
    first = _classifier_trainer(config, boxes, tmp_path / "killed", resume=False)
    with pytest.raises(KeyboardInterrupt):
        first.fit(callbacks=[kill_at_3])
    torch.manual_seed(123)  # the resumed process starts from other RNG states: the checkpoint restores them
    resumed = _classifier_trainer(config, boxes, tmp_path / "killed", resume=True)
    assert resumed.step == 3
    resumed.fit()
    assert resumed.step == 6
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in full.history[3:]]
    for (k, a), (_, b) in zip(full.model.state_dict().items(), resumed.model.state_dict().items()):
        assert torch.equal(a, b), k
    for a, b in zip(full.ema.state_dict().values(), resumed.ema.state_dict().values()):
        assert torch.equal(a, b)
    assert full.best_step == resumed.best_step and full.best_value == resumed.best_value
    rows = list(csv.DictReader(open(tmp_path / "killed" / "train_log.csv")))
    assert [int(r["step"]) for r in rows] == list(range(1, 7))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_two_processes_match_one(tmp_path):
    import torch.multiprocessing as mp

    from galaxygen.training.checkpoint import load_checkpoint
    from galaxygen.models.registry import train

    boxes = write_learnable_boxes(tmp_path / "boxes", n=3)
    config = tiny_config(steps=4, batch=4, norm="none")  # CPU BatchNorm is per process: compare without it
    train(config, str(boxes), tmp_path / "one", device="cpu")
    mp.start_processes(ddp_worker, args=(2, _free_port(), config, str(boxes), str(tmp_path / "two")),
                       nprocs=2, join=True, start_method="spawn")
    loss = lambda d: [float(r["loss"]) for r in csv.DictReader(open(tmp_path / d / "classifier" / "train_log.csv"))]
    assert len(loss("one")) == 4
    assert loss("two") == pytest.approx(loss("one"), rel=1e-5, abs=1e-6)
    a = load_checkpoint(tmp_path / "one" / "classifier" / "checkpoints" / "last.pt")
    b = load_checkpoint(tmp_path / "two" / "classifier" / "checkpoints" / "last.pt")
    assert b["world_size"] == 2 and len(b["rng"]) == 2
    for k in a["model"]:
        torch.testing.assert_close(b["model"][k], a["model"][k], rtol=1e-5, atol=1e-6)
    # the weights moved: the comparison is not between two untrained models
    init = _classifier_trainer(config, boxes, tmp_path / "init", resume=False).model.state_dict()
    assert any(not torch.allclose(init[k], a["model"][k]) for k in a["model"])


def test_losses_are_reduced_every_log_every_steps_only(tmp_path, monkeypatch):
    """Each step's loss stays on the device; one reduction (sync + all-reduce) per log row."""
    from galaxygen.training import distributed as D

    boxes = write_learnable_boxes(tmp_path / "boxes", n=3)
    config = tiny_config(steps=7, batch=2)
    config["classifier"]["train"].update(log_every=3, eval_every=7, checkpoint_every=7)
    trainer = _classifier_trainer(config, boxes, tmp_path / "run", resume=False)
    calls = []
    real = D.all_reduce_mean
    monkeypatch.setattr(D, "all_reduce_mean", lambda values: calls.append(tuple(values.shape)) or real(values))
    trainer.fit()
    assert calls == [(3, 3), (3, 3), (1, 3)]  # steps 1-3, 4-6 and the last: (steps, loss + 2 metrics)
    assert [h["step"] for h in trainer.history] == list(range(1, 8))
    rows = list(csv.DictReader(open(tmp_path / "run" / "train_log.csv")))
    assert [int(r["step"]) for r in rows] == [3, 6, 7]
    mean = sum(h["loss"] for h in trainer.history[3:6]) / 3
    assert float(rows[1]["loss"]) == pytest.approx(mean, rel=1e-12)
