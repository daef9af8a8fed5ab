"""The two-phase network (Zhang et al. arXiv:1902.05965): classifier → mask → regressor.

Phase 1 trains a classifier of occupied voxels (class-weighted cross-entropy on logits); the mask
threshold is chosen on the validation boxes to reach a target recall at the best precision.
Phase 2 trains a regressor of galaxy counts on the voxels the mask keeps plus the truly occupied
ones. The expected counts are mask × rate (optionally sharpened inside each rate peak); the prediction
realises them: structured (a central per peak, Poisson satellites: `realisation`) or Poisson with a
seed, or rounded (`galaxy_counts`). Either phase can
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
from galaxygen.models.two_phase.losses import LossConfig, make_loss, rate_from_output
from galaxygen.models.two_phase.networks import ModelConfig, halo_for
from galaxygen.models.two_phase.realisation import central_sharpened, peak_regions, sharpen_rates, structured_counts
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


COUNTS = ("round", "total", "poisson", "structured")
STOCHASTIC = ("poisson", "structured")  # modes drawn with a random generator (several samples make sense)


def expected_counts(prob: np.ndarray | None, rate: np.ndarray | None, threshold: float | None, *,
                    sharpen: float = 1.0, regions: np.ndarray | None = None,
                    sharpen_satellites: float | None = None) -> np.ndarray:
    """The expected galaxies per voxel (N, N, N) float32 that `galaxy_counts` realises: the regressor's
    rate (clipped at 0) times the classifier mask (prob >= threshold); with `sharpen` != 1, its rates
    redistributed inside each peak region of the score as score**sharpen, keeping the region's total
    (`realisation.sharpen_rates`; score = rate × prob with a classifier, else the rate; `regions`:
    `sharpening_regions`), or with `sharpen_satellites` the central by score**sharpen and the
    satellites by score**sharpen_satellites (`realisation.central_sharpened`); without a regressor
    the mask itself (one galaxy per kept voxel). What a prediction box stores as ``fields/galaxy_rate``."""
    masked = _masked(prob, rate, threshold)
    if rate is None or (sharpen == 1.0 and sharpen_satellites is None):
        return masked
    regions = sharpening_regions(prob, masked) if regions is None else regions
    return _sharpened(prob, masked, sharpen, regions, sharpen_satellites)[0]


def count_scale(n_true: float, n_expected: float) -> float:
    """The factor on the regressor's rates that makes the expected galaxy number equal the true one,
    ``n_true / n_expected`` (totals over the same voxels; sharpening keeps region totals, so the masked
    rates' total is the expected number). 1 when nothing is expected (nothing to scale)."""
    if not (n_true >= 0 and n_expected >= 0):
        raise ValueError(f"count_scale: totals must be >= 0, got {n_true}, {n_expected}")
    return n_true / n_expected if n_expected > 0 else 1.0


def _masked(prob, rate, threshold) -> np.ndarray:
    """The regressor's rate (clipped at 0) times the classifier mask, float32 (N, N, N); the mask alone
    without a regressor."""
    if rate is None:
        if prob is None:
            raise ConfigError("galaxy_counts: need a classifier probability or a regressor rate")
        return (prob >= threshold).astype(np.float32)
    out = np.clip(rate, 0.0, None).astype(np.float32)
    return out if prob is None else out * (prob >= threshold)


def _sharpened(prob, masked, sharpen, regions, sharpen_satellites) -> tuple[np.ndarray, np.ndarray | None]:
    """The sharpened expected counts of the masked rates in their `regions` and the central shares of a
    separate satellite sharpening (else None)."""
    score = None if prob is None else sharpening_score(prob, masked)
    if sharpen_satellites is not None:
        return central_sharpened(masked, sharpen, sharpen_satellites, regions, score)
    return sharpen_rates(masked, sharpen, regions, score=score), None


def sharpening_score(prob: np.ndarray, masked: np.ndarray) -> np.ndarray:
    """What ranks the voxels for sharpening: the masked rate times the classifier probability (float64),
    the probability floored at 1e-30 so that a kept voxel whose probability is 0 (threshold 0, or a
    float32 sigmoid underflow) still ranks, last, and keeps its rate in its region's total."""
    return np.asarray(masked, np.float64) * np.maximum(np.asarray(prob, np.float64), 1e-30)


def sharpening_regions(prob: np.ndarray | None, masked: np.ndarray) -> np.ndarray:
    """The peak regions (`realisation.peak_regions`) of the sharpening score (`sharpening_score`; the
    masked rate alone without a classifier)."""
    return peak_regions(masked if prob is None else sharpening_score(prob, masked))


def galaxy_counts(prob: np.ndarray | None, rate: np.ndarray | None, threshold: float | None, *,
            counts: str = "round", rng: np.random.Generator | None = None, sharpen: float = 1.0,
            sharpen_satellites: float | None = None) -> np.ndarray:
    """Galaxies per voxel from the expected counts `expected_counts(prob, rate, threshold, sharpen,
    sharpen_satellites)`.

    counts:
    * 'round': each voxel's rate rounded (a voxel needs rate >= 0.5 to hold a galaxy);
    * 'total': rounded so that the box holds round(sum of the kept rates) galaxies, by the largest
      remainder method (Hamilton apportionment): every kept voxel gets floor(rate), and the voxels
      with the largest fractional parts one more, until the total is reached (ties by voxel index).
      The galaxies sit in the likeliest voxels: the best voxel metrics, but a field more clustered
      than the truth;
    * 'poisson': Poisson(rate) draws with `rng` (one realisation of the stochastic field);
    * 'structured': a central at each rate peak and Poisson satellites around it, with `rng`
      (`realisation.structured_counts`; Berlind & Weinberg 2002, Zheng et al. 2005): each voxel's
      expected count is its rate, as for 'poisson', with the structure of halo occupation.
    Without a regressor (rate None) each kept voxel holds one galaxy; without a classifier (prob
    None) the counts are used everywhere.
    """
    if counts not in COUNTS:
        raise ConfigError(f"counts: expected one of {COUNTS}, got {counts!r}")
    if rate is None:
        return expected_counts(prob, rate, threshold)
    return realise(*realisation_inputs(prob, rate, threshold, counts=counts, sharpen=sharpen,
                                       sharpen_satellites=sharpen_satellites), counts, rng)


def realisation_inputs(prob: np.ndarray | None, rate: np.ndarray | None, threshold: float | None, *,
                       counts: str, sharpen: float = 1.0,
                       sharpen_satellites: float | None = None) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """What `realise` needs, computed once per box for any number of realisations: the expected counts
    (`expected_counts`, float32 (N, N, N)), the peak regions the structured mode and sharpening use
    (`realisation.peak_regions` of the sharpening score; None when neither applies) and the central
    shares of a separate satellite sharpening (else None)."""
    masked = _masked(prob, rate, threshold)
    if rate is None:
        return masked, None, None
    if sharpen != 1.0 or sharpen_satellites is not None:
        regions = sharpening_regions(prob, masked)
        lam, central = _sharpened(prob, masked, sharpen, regions, sharpen_satellites)
        return lam, regions, central
    return masked, (peak_regions(masked) if counts == "structured" else None), None


def realise(lam: np.ndarray, regions: np.ndarray | None, central: np.ndarray | None, counts: str,
            rng: np.random.Generator | None) -> np.ndarray:
    """Galaxies per voxel (float32 whole numbers) from expected counts `lam`, their `regions` and central
    shares (`realisation_inputs`) by the mode `counts` (see `galaxy_counts`)."""
    if counts in STOCHASTIC and rng is None:
        raise ConfigError(f"galaxy_counts: {counts} counts need a random generator (seed)")
    if counts == "poisson":
        return rng.poisson(lam).astype(np.float32)
    if counts == "structured":
        return structured_counts(lam, rng, regions, central)
    if counts == "round":
        return np.rint(lam).astype(np.float32)
    return largest_remainder(lam)


def largest_remainder(rate: np.ndarray) -> np.ndarray:
    """Integer counts with total round(sum(rate)), each floor(rate) or floor(rate) + 1: the voxels
    with the largest fractional parts get the extra one (Hamilton's method; ties by flat index).
    Same shape as `rate` (>= 0), float32."""
    r = np.asarray(rate, dtype=np.float64)
    base = np.floor(r)
    extra = int(round(float(r.sum()))) - int(base.sum())
    out = base.ravel()
    if extra > 0:
        frac = (r - base).ravel()
        top = np.argsort(-frac, kind="stable")[:extra]
        out[top] += 1.0
    return out.reshape(r.shape).astype(np.float32)


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
