"""The two-phase network (Zhang et al. arXiv:1902.05965): classifier → mask → regressor.

Phase 1 trains a classifier of occupied voxels (class-weighted cross-entropy on logits); the mask
threshold is chosen on the validation boxes to reach a target recall at the best precision.
Phase 2 trains a regressor of galaxy counts on the voxels the mask keeps plus the truly occupied
ones. The expected counts are mask × rate (optionally sharpened inside each rate peak); the prediction
realises them (`counts`: structured, Poisson with a seed, or rounded). Either phase can
run alone (classifier alone: one galaxy per kept voxel; regressor alone: counts everywhere).
With ``condition_params`` both networks also take the box parameters (`film`), standardised by
`galaxygen.training.params.ParamTransform`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, Sequence

import numpy as np
import torch

from galaxygen.config import require
from galaxygen.errors import ConfigError
from galaxygen.stats.classification import voxel_metrics
from galaxygen.models.two_phase.counts import STOCHASTIC, galaxy_counts
from galaxygen.models.two_phase.losses import LossConfig, make_loss, rate_from_output
from galaxygen.models.two_phase.networks import ModelConfig, halo_for
from galaxygen.training.crops import CropDataset
from galaxygen.training.data import BoxData, DataConfig
from galaxygen.training.params import ConditionChoice, ParamTransform, check_condition_params
from galaxygen.training.tiling import predict_tiled
from galaxygen.training.trainer import EarlyStopping, TrainConfig

PHASES = ("classifier", "regressor")


@dataclass(frozen=True)
class PhaseConfig:
    """One phase: its network, loss and optimisation."""

    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def _classifier_default() -> PhaseConfig:
    return PhaseConfig(ModelConfig(name="inception", width=16, depth=3), LossConfig("weighted_ce"),
                       TrainConfig(early_stopping=EarlyStopping("precision_at_recall", "max")))


def _regressor_default() -> PhaseConfig:
    return PhaseConfig(ModelConfig(name="r2unet", width=8, depth=2), LossConfig("poisson"),
                       TrainConfig(early_stopping=EarlyStopping("loss", "min")))


@dataclass(frozen=True)
class InferConfig:
    """Tiled inference: tile side and halo [voxels], windows per forward pass.

    halo None (the default): each network's receptive radius rounded up to its down-sampling
    factor, so the prediction equals one whole-box pass whatever the tile (to float rounding); a
    number forces that halo (rounded up likewise), which is faster and approximate when smaller.
    """

    tile: int = 64
    halo: int | None = None
    batch: int = 1

    def __post_init__(self) -> None:
        require(self.tile >= 1 and self.batch >= 1, "infer.tile and infer.batch: expected >= 1")
        require(self.halo is None or self.halo >= 0, "infer.halo: expected >= 0 or null")


@dataclass(frozen=True)
class TwoPhaseConfig:
    """The whole `task: two_phase` config (configs/two-phase-*.yaml).

    counts : how the regressor's expected counts become galaxies (`galaxy_counts`); 'total' (the
        dataclass default) keeps the box's expected number of galaxies in the likeliest voxels, which
        needs calibrated rates: the default regressor loss 'poisson' (an up-weighted MSE inflates
        them); the shipped configs use 'structured' with ``sharpen: 3, sharpen_satellites: 1`` (a
        seeded realisation, measured against the HOD by benchmarks/bench_realisation.py,
        docs/evaluation.md).
    sharpen : the expected counts are redistributed inside each peak region as (rate × classifier
        probability) ** sharpen, keeping the region's total (`expected_counts`; 1: unchanged).
    sharpen_satellites : None: the sharpening moves all the region's expected galaxies; a power: the
        central follows score ** sharpen and the satellites score ** sharpen_satellites
        (`realisation.central_sharpened`).
    condition_params : box parameters both networks take (`film`): 'none' (the default), 'auto' (those
        that vary across the training boxes) or a list of names.
    calibrate_counts : after training, scale the regressor's rates so that their masked total over the
        training and validation boxes equals those boxes' galaxy number (`count_scale`, saved in
        calibration.json): short trainings leave the total off by ±10-20 %, which moves the
        realisations' P(k), r(k) and F1 (docs/training.md, "Count calibration").
    """

    task: Literal["two_phase"] = "two_phase"
    device: str = "auto"
    seed: int = 0
    phases: tuple[str, ...] = PHASES
    target_recall: float = 0.95
    counts: Literal["round", "total", "poisson", "structured"] = "total"
    sharpen: float = 1.0
    sharpen_satellites: float | None = None
    condition_params: ConditionChoice = "none"
    calibrate_counts: bool = True
    data: DataConfig = field(default_factory=DataConfig)
    classifier: PhaseConfig = field(default_factory=_classifier_default)
    regressor: PhaseConfig = field(default_factory=_regressor_default)
    infer: InferConfig = field(default_factory=InferConfig)

    def __post_init__(self) -> None:
        require(len(self.phases) >= 1 and all(p in PHASES for p in self.phases) and len(set(self.phases)) == len(self.phases),
                f"phases: expected a non-empty subset of {list(PHASES)}, got {list(self.phases)}")
        require(self.sharpen > 0, f"sharpen: expected a power > 0, got {self.sharpen}")
        require(self.sharpen_satellites is None or self.sharpen_satellites > 0,
                f"sharpen_satellites: expected a power > 0 or null, got {self.sharpen_satellites}")
        require(0.0 < self.target_recall <= 1.0, f"target_recall: expected in (0, 1], got {self.target_recall}")
        require(self.classifier.loss.kind == "classifier",
                f"classifier.loss.name: {self.classifier.loss.name!r} is a regression loss")
        require(self.regressor.loss.kind == "regressor",
                f"regressor.loss.name: {self.regressor.loss.name!r} is a classification loss")
        check_condition_params(self.condition_params)


# ----------------------------------------------------------------------------- metrics and threshold

@dataclass(frozen=True)
class ThresholdResult:
    """The chosen mask threshold on probabilities and the voxel metrics it gives."""

    threshold: float
    recall: float
    precision: float
    f1: float
    kept_fraction: float

    def as_dict(self) -> dict[str, float]:
        return {"threshold": self.threshold, "recall": self.recall, "precision": self.precision,
                "f1": self.f1, "kept_fraction": self.kept_fraction}


def voxel_scores(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Recall, precision, F1, accuracy and confusion counts of occupied voxels (count > 0)
    (:func:`galaxygen.stats.classification.voxel_metrics`; undefined ratios are NaN)."""
    return voxel_metrics(pred, truth).as_dict()


def threshold_for_recall(scores: np.ndarray, occupied: np.ndarray, target_recall: float = 0.95) -> ThresholdResult:
    """The mask threshold reaching `target_recall` at the best precision.

    A voxel is kept when ``score >= threshold``. Every distinct score is a candidate; among those
    whose recall on `occupied` is at least `target_recall`, the one with the highest precision wins
    (ties: the highest threshold). Exact, by sorting (O(n log n)).

    Parameters
    ----------
    scores : (n,) or any shape, probabilities (or logits) per voxel
    occupied : same shape, bool truth
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(occupied, dtype=bool).ravel()
    n_pos = int(y.sum())
    if n_pos == 0:
        raise ConfigError("threshold search: the validation voxels hold no galaxy")
    order = np.argsort(-s, kind="stable")
    s_sorted, tp = s[order], np.cumsum(y[order])
    ends = np.flatnonzero(np.r_[s_sorted[1:] != s_sorted[:-1], True])  # last index of each tie group
    kept = ends + 1
    recall = tp[ends] / n_pos
    precision = tp[ends] / kept
    ok = np.flatnonzero(recall >= target_recall - 1e-12)
    # highest precision; among equal precisions the smallest kept set (highest threshold)
    cand = ok[precision[ok] == precision[ok].max()]
    best = int(cand[0])
    rec, prec = float(recall[best]), float(precision[best])
    return ThresholdResult(threshold=float(s_sorted[ends[best]]), recall=rec, precision=prec,
                           f1=2 * rec * prec / (rec + prec) if rec + prec else 0.0,
                           kept_fraction=float(kept[best]) / s.size)


# ----------------------------------------------------------------------------- phase tasks

def infer_box(model: torch.nn.Module, b: BoxData, cfg: InferConfig, device: torch.device,
              params: torch.Tensor | None = None) -> torch.Tensor:
    """Raw network output (C_out, N, N, N) on the CPU for a whole box, by tiles; `params` (1, P): the
    box's standardised parameters for a conditioned network (every tile gets them)."""
    align = int(getattr(model, "align", 1))
    tile = min(b.grid, -(-cfg.tile // align) * align)
    fn = model if params is None else (lambda w: model(w, params.to(w.device).expand(w.shape[0], -1)))
    return predict_tiled(fn, b.inputs, tile=tile, halo=halo_for(model, cfg.halo), batch=cfg.batch,
                         align=align, device=device)


def box_params(ptr: ParamTransform, b: BoxData) -> torch.Tensor | None:
    """The standardised parameters (1, P) of a loaded box, None without conditioning."""
    return ptr.forward_batch(b.params[None]) if ptr.names else None


def crop_weights(batch: dict[str, torch.Tensor], like: torch.Tensor) -> torch.Tensor | None:
    """The crops' importance weights (``data.unbiased``, `galaxygen.training.crops`) as a voxel mask
    shaped like `like` (B, 1, c, c, c), or None: the losses' masked mean Σ w·loss / Σ w is then the
    self-normalised importance-sampling estimate of the loss over uniform crops."""
    w = batch.get("weight")
    return None if w is None else w.to(like.dtype).reshape(-1, *([1] * (like.ndim - 1))).expand_as(like)


class ClassifierTask:
    """Phase 1 for :class:`~galaxygen.training.trainer.Trainer`: occupied-voxel logits."""

    def __init__(self, model: torch.nn.Module, train_boxes: Sequence[BoxData], val_boxes: Sequence[BoxData],
                 cfg: TwoPhaseConfig, device: torch.device, params: ParamTransform = ParamTransform((), (), ())):
        self.model, self.cfg, self.device, self.params = model, cfg, device, params
        self.train_dataset = CropDataset(train_boxes, cfg.data, seed=cfg.seed)
        self.val_boxes = list(val_boxes)
        self.loss = make_loss(cfg.classifier.loss)
        self.pad = cfg.data.pad

    def _crop(self, out: torch.Tensor) -> torch.Tensor:
        p = self.pad
        return out[:, :, p:out.shape[2] - p, p:out.shape[3] - p, p:out.shape[4] - p] if p else out

    def training_loss(self, model, batch):
        logits = self._crop(model(batch["input"], self.params.forward_batch(batch["params"]))).float()
        y = batch["target"]
        loss = self.loss(logits, y, crop_weights(batch, y))
        with torch.no_grad():
            pred, occ = logits > 0, y > 0
            tp = (pred & occ).sum().float()
            metrics = {"recall": tp / occ.sum().clamp_min(1), "precision": tp / pred.sum().clamp_min(1)}
        return loss, metrics

    def probabilities(self, model, b: BoxData) -> np.ndarray:
        """Classifier probability (N,N,N) float32 for a whole box."""
        out = infer_box(model, b, self.cfg.infer, self.device, box_params(self.params, b))
        return torch.sigmoid(out[0].float()).numpy()

    def validate(self, model) -> dict[str, float]:
        if not self.val_boxes:
            return {}
        probs, truths, losses = [], [], []
        for b in self.val_boxes:
            m = b.mask()
            logits = infer_box(model, b, self.cfg.infer, self.device, box_params(self.params, b))[0].float()
            t = b.target
            losses.append(float(self.loss(logits[torch.from_numpy(m)], t[torch.from_numpy(m)], None)))
            probs.append(torch.sigmoid(logits).numpy()[m])
            truths.append(b.target.numpy()[m])
        p, t = np.concatenate(probs), np.concatenate(truths)
        at_half = voxel_scores(p >= 0.5, t)
        out = {"loss": float(np.mean(losses)), "recall": at_half["recall"], "precision": at_half["precision"],
               "f1": at_half["f1"]}
        if (t > 0).any():
            th = threshold_for_recall(p, t > 0, self.cfg.target_recall)
            out.update(precision_at_recall=th.precision, threshold=th.threshold)
        return out


def calibrate_head(model: torch.nn.Module, boxes: Sequence[BoxData], loss: LossConfig) -> float:
    """Start the regressor at the training boxes' mean count m over the voxels it trains on (the
    ``keep`` mask, else the region): its 1³ head's bias set to log m for the Poisson loss (rate = exp
    output), to m otherwise. Without it an un-normalised network starts near rate 1 and its first
    steps, on crops where nearly every voxel is empty, push all rates towards 0. Returns m."""
    total = count = 0.0
    for b in boxes:
        sel = torch.from_numpy(b.mask())
        if "keep" in b.extras:
            sel = sel & (b.extras["keep"] > 0)
        total += float(b.target[sel].sum(dtype=torch.float64))
        count += float(sel.sum())
    m = max(total / max(count, 1.0), 1e-6)
    with torch.no_grad():
        model.head.bias.fill_(math.log(m) if loss.name == "poisson" else m)
    return m


class RegressorTask:
    """Phase 2: counts on the kept voxels (``extras['keep']`` of each box; all voxels without it)."""

    def __init__(self, model: torch.nn.Module, train_boxes: Sequence[BoxData], val_boxes: Sequence[BoxData],
                 cfg: TwoPhaseConfig, device: torch.device, threshold: float | None,
                 params: ParamTransform = ParamTransform((), (), ())):
        self.model, self.cfg, self.device, self.threshold, self.params = model, cfg, device, threshold, params
        self.train_dataset = CropDataset(train_boxes, cfg.data, seed=cfg.seed + 1)
        self.val_boxes = list(val_boxes)
        self.loss_cfg = cfg.regressor.loss
        self.loss = make_loss(self.loss_cfg)
        self.pad = cfg.data.pad

    def training_loss(self, model, batch):
        p = self.pad
        out = model(batch["input"], self.params.forward_batch(batch["params"]))
        out = (out[:, :, p:-p, p:-p, p:-p] if p else out).float()
        keep, w = batch.get("keep"), crop_weights(batch, batch["target"])
        loss = self.loss(out, batch["target"], keep if w is None else w if keep is None else keep * w)
        with torch.no_grad():
            rate = rate_from_output(out, self.loss_cfg)
            metrics = {"mean_rate": rate.mean(), "mean_count": batch["target"].mean()}
        return loss, metrics

    def validate(self, model) -> dict[str, float]:
        if not self.val_boxes:
            return {}
        losses, preds, truths = [], [], []
        for b in self.val_boxes:
            m = torch.from_numpy(b.mask())
            keep = b.extras.get("keep")
            sel = m & (keep > 0) if keep is not None else m
            out = infer_box(model, b, self.cfg.infer, self.device, box_params(self.params, b))[0].float()
            losses.append(float(self.loss(out[sel], b.target[sel], None)))
            rate = rate_from_output(out, self.loss_cfg).numpy()
            prob = b.extras["prob"].numpy() if "prob" in b.extras else None
            # the run's counts rule (random draws would make the metrics random: rounded instead)
            counts = "round" if self.cfg.counts in STOCHASTIC else self.cfg.counts
            pred = galaxy_counts(prob, rate, self.threshold, counts=counts, sharpen=self.cfg.sharpen,
                                   sharpen_satellites=self.cfg.sharpen_satellites)
            preds.append(pred[m.numpy()])
            truths.append(b.target.numpy()[m.numpy()])
        p, t = np.concatenate(preds), np.concatenate(truths)
        s = voxel_scores(p, t)
        return {"loss": float(np.mean(losses)), "recall": s["recall"], "precision": s["precision"], "f1": s["f1"],
                "count_ratio": float(p.sum() / max(t.sum(), 1.0)), "mse": float(np.mean((p - t) ** 2))}
