"""Benchmark of the variational diffusion model against its peers on held-out built-in boxes (issue 16).

Trains, on the fitting boxes (all but the last `--test` by name): the two-phase network
(`--two-phase-config`), the HOD (`--hod-model`, likelihood fit) and the VDM (`--config`, with
`--cascade` conditioned on that two-phase run's rates). On each test box it draws `--samples`
VDM samples, as many Poisson draws of the two-phase rates and HOD realisations, and prints (JSON
on stdout, progress on stderr), for each of the three in the same run:

* each sample's galaxy count / the truth's (and whether within 15 %);
* P(k) band test: the share of k bins below k_Nyq/2 where the truth's P(k) lies within 2 standard
  deviations of the samples' mean P(k) or within 10 % of it (target ≥ 0.8);
* r(k) between sample and truth (mean over samples), and the share of those bins where it is ≥ the
  HOD realisations' mean r(k) (target ≥ 0.8);
* calibration: the rank histogram (randomised PIT) of the truth among the samples over the voxels
  where the truth or a sample holds galaxies, its χ² and p-value (`galaxygen.stats.calibration`);
* voxel recall and precision of each sample against the truth (pooled; target: VDM ≥ the Poisson
  draws of the two-phase rates);
* training time, sampling time per 64³ sample (per step too);
* the ceiling of the ``rate`` representation: the same figures for Poisson draws of the test box's own
  counts smoothed by a Gaussian of 0, 0.5, 1 and 2 voxels (what a perfect model of the smoothed
  target could reach; `representation.py`).

Usage::

    python benchmarks/bench_vdm.py --boxes DIR [--work DIR] [--config configs/vdm-small.yaml]
        [--set key=value ...] [--cascade] [--test 1] [--samples 4] [--sample-steps T]
        [--two-phase-config configs/two-phase-small.yaml] [--two-phase-set key=value ...]
        [--hod-model seed3]

The issue's set: ``galaxygen simulate DIR --boxes 5 --particles 128 --grid 64 --box-size 25 --set cv
--cola-steps 10 --pm-steps 20`` (4 fitting boxes, 1 test box). Runs already in WORK are reused
(delete them to retrain).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def log(msg: str) -> None:
    print(f"[bench_vdm] {msg}", file=sys.stderr, flush=True)


def group_metrics(samples: list[np.ndarray], truth: np.ndarray, box_size: float, rng: np.random.Generator) -> dict:
    """Counts, P(k) band, r(k), rank histogram and voxel metrics of samples (S, N, N, N) of one box."""
    from galaxygen.stats.calibration import rank_histogram, truth_ranks
    from galaxygen.stats.classification import pooled
    from galaxygen.stats.power import cross_power, nyquist

    n_true = float(truth.sum())
    ratios = [float(s.sum()) / n_true for s in samples]
    k = pk = None
    pks, rs = [], []
    for s in samples:
        cp = cross_power(s, truth, box_size)
        sel = (cp.k < nyquist(truth.shape[0], box_size) / 2) & (cp.n_modes > 0)
        k, pk = cp.k[sel], cp.p_bb[sel]
        pks.append(cp.p_aa[sel] if s.sum() > 0 else np.full(sel.sum(), np.nan))
        rs.append(cp.r[sel] if s.sum() > 0 else np.full(sel.sum(), np.nan))
    pks, rs = np.array(pks), np.array(rs)
    mean, std = pks.mean(0), pks.std(0, ddof=1) if len(pks) > 1 else np.zeros(pks.shape[1])
    inside = (np.abs(pk - mean) <= 2 * std) | (np.abs(pk - mean) <= 0.1 * np.abs(mean))
    stack = np.stack(samples)
    active = (truth > 0) | (stack > 0).any(0)
    hist = rank_histogram(truth_ranks(truth[active], stack[:, active], rng), len(samples))
    vm = pooled([(s, truth) for s in samples]).as_dict()
    return {"count_ratio": ratios, "counts_within_15pct": float(np.mean([abs(r - 1) <= 0.15 for r in ratios])),
            "k": k.tolist(), "p_true": pk.tolist(), "p_mean": mean.tolist(), "p_std": std.tolist(),
            "pk_band_fraction": float(np.mean(inside)), "r_mean": np.nanmean(rs, 0).tolist(),
            "rank_histogram": hist.as_dict(), "recall": vm["recall"], "precision": vm["precision"],
            "voxel_metrics": vm}


def representation_ceiling(truth: np.ndarray, box_size: float, samples: int, rng: np.random.Generator) -> dict:
    """Figures of Poisson draws of the truth's own smoothed counts, per smoothing [voxels]."""
    from galaxygen.models.vdm.representation import gaussian_smooth, poisson_counts

    out = {}
    for sigma in (0.0, 0.5, 1.0, 2.0):
        lam = gaussian_smooth(truth, sigma)
        m = group_metrics([poisson_counts(lam, 0, k) for k in range(samples)], truth, box_size, rng)
        out[str(sigma)] = {k: m[k] for k in ("recall", "precision", "count_ratio", "pk_band_fraction", "r_mean")}
        out[str(sigma)]["pk_ratio"] = (np.array(m["p_mean"]) / np.array(m["p_true"])).tolist()
    return out


def read_groups(paths: list[Path]) -> dict[str, list[np.ndarray]]:
    """Prediction files -> {box name: [galaxy fields]} (means skipped)."""
    from galaxygen.box import read_box

    out: dict[str, list[np.ndarray]] = {}
    for p in sorted(paths):
        b = read_box(p, catalogs=False, velocity=False)
        if b.meta.get("kind") != "mean":
            out.setdefault(b.name, []).append(b.galaxies)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--boxes", type=Path, required=True, help="folder of built-in box files")
    ap.add_argument("--work", type=Path, default=Path("bench-vdm-out"), help="work folder (runs reused)")
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "vdm-small.yaml")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="VDM config override KEY=VALUE")
    ap.add_argument("--cascade", action="store_true", help="condition the VDM on the bench's two-phase rates")
    ap.add_argument("--vdm-run", default="vdm-run", help="name of the VDM run folder in WORK")
    ap.add_argument("--test", type=int, default=1, help="boxes kept apart for testing (the last by name)")
    ap.add_argument("--samples", type=int, default=4, help="samples (and peer realisations) per test box")
    ap.add_argument("--sample-steps", type=int, help="ancestral steps T (default: the config's sample.steps)")
    ap.add_argument("--two-phase-config", type=Path, default=ROOT / "configs" / "two-phase-small.yaml")
    ap.add_argument("--two-phase-set", action="append", default=[], help="two-phase config override KEY=VALUE")
    ap.add_argument("--hod-model", default="seed3")
    args = ap.parse_args()
    os.environ.setdefault("GALAXYGEN_NO_PROGRESS", "1")

    import torch

    from galaxygen.box import list_boxes, read_box
    from galaxygen.config import apply_overrides, load_yaml
    from galaxygen.models.hod import task as hod
    from galaxygen.models.registry import predict, train

    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    boxes = list_boxes(args.boxes)
    test, fit = boxes[-args.test:], boxes[:-args.test]
    truths, box_size = {}, None
    for t in test:
        tb = read_box(t, catalogs=False, velocity=False)
        truths[tb.name], box_size = tb.galaxies, tb.box_size
    grid = int(next(iter(truths.values())).shape[0])
    report: dict = {"threads": torch.get_num_threads(), "device": "cuda" if torch.cuda.is_available() else "cpu",
                    "grid": grid, "box_size": box_size, "fit_boxes": [p.name for p in fit],
                    "test_boxes": [p.name for p in test], "samples": args.samples,
                    "truth_counts": {k: float(v.sum()) for k, v in truths.items()}}

    # two-phase network: Poisson draws of its rates are a peer, and its rates the cascade's channel
    tp_run = work / "two-phase-run"
    t0 = time.perf_counter()
    if not (tp_run / "summary.json").is_file():
        log("training the two-phase network")
        train(apply_overrides(load_yaml(args.two_phase_config), args.two_phase_set), fit, tp_run, overwrite=True)
        report["two_phase_train_seconds"] = time.perf_counter() - t0
    tp = read_groups(predict(tp_run, test, work / "two-phase-pred", samples=args.samples, seed=0, counts="poisson",
                             overwrite=True))

    # HOD: fitted on the fitting boxes, realisations on the test boxes
    log("fitting the HOD")
    fit_path = hod.write_fit(work / "hod.json", hod.fit_boxes(fit, args.hod_model), overwrite=True)
    hod_groups = read_groups(hod.populate_boxes(fit_path, test, work / "hod-pred", seed=0,
                                                realisations=args.samples, overwrite=True))

    # the VDM
    config = apply_overrides(load_yaml(args.config), args.overrides)
    if args.cascade:
        config["cascade"] = str(tp_run.resolve())
    report["vdm_config"] = {"file": str(args.config), "overrides": args.overrides, "cascade": args.cascade}
    run = work / args.vdm_run
    t0 = time.perf_counter()
    if not (run / "summary.json").is_file():
        log("training the VDM")
        summary = train(config, fit, run, overwrite=True)
        report["vdm_train_seconds"] = time.perf_counter() - t0
    summary = json.loads((run / "summary.json").read_text())
    report["vdm_train_steps"] = summary["vdm"]["steps"]
    report["vdm_last_validation"] = summary["vdm"]["last_validation"]
    report["vdm_gamma"] = summary["gamma"]
    steps = args.sample_steps or config.get("sample", {}).get("steps", 250)
    log(f"sampling the VDM ({args.samples} samples x {len(test)} boxes, {steps} steps)")
    t0 = time.perf_counter()
    vdm = read_groups(predict(run, test, work / "vdm-pred", samples=args.samples, seed=0, device="auto",
                              overwrite=True, steps=steps))
    dt = time.perf_counter() - t0
    per_sample = dt / (len(test) * args.samples) * (64 / grid) ** 3
    report["vdm_sampling"] = {"steps": steps, "seconds_per_64cube_sample": per_sample,
                              "seconds_per_step_per_64cube_sample": per_sample / steps}

    rng = np.random.default_rng(0)
    for label, groups in (("vdm", vdm), ("two_phase_poisson", tp), ("hod", hod_groups)):
        report[label] = {name: group_metrics(groups[name], truths[name], box_size, rng) for name in truths}
    targets = {}
    for name in truths:
        v, t, h = report["vdm"][name], report["two_phase_poisson"][name], report["hod"][name]
        for label in ("vdm", "two_phase_poisson"):
            g = report[label][name]
            g["r_ge_hod_fraction"] = float(np.mean(np.array(g["r_mean"]) >= np.array(h["r_mean"])))
        targets[name] = {
            "counts_within_15pct_all": v["counts_within_15pct"] == 1.0,
            "pk_band_ge_0.8": v["pk_band_fraction"] >= 0.8,
            "r_ge_hod_in_0.8_of_bins": v["r_ge_hod_fraction"] >= 0.8,
            "pit_p_value_gt_0.01": v["rank_histogram"]["p_value"] > 0.01,
            "recall_ge_two_phase_poisson": v["recall"] >= t["recall"],
            "precision_ge_two_phase_poisson": v["precision"] >= t["precision"]}
    report["targets"] = targets
    report["representation_ceiling"] = {name: representation_ceiling(truths[name], box_size, args.samples, rng)
                                        for name in truths}
    json.dump(report, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
