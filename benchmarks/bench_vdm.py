"""Benchmark of the variational diffusion model on built-in boxes (split by box).

Prints (JSON on stdout, progress on stderr), on the test boxes:
* voxel recall / precision / F1 of the sampled galaxy fields (every sample against the truth,
  pooled), and of the union of the samples;
* P(k) of the samples: mean and 16-84 % band against the truth's P(k), the share of k bins
  (k < k_Nyq/2) where the truth lies inside the band; r(k) of samples and truth; count ratio;
* the same voxel metrics, P(k) ratio and r(k) for the two-phase network (trained here with
  --two-phase-config, unless --no-two-phase) and for HOD prediction boxes given by --hod-dir;
* training time and sampling time per box (and per sampling step);
* on built-in boxes, the surrogate's limit: the voxel precision at recall 0.95 that a perfect model
  of P(voxel occupied) expects (`bench_train.surrogate_limit`). A sample is a draw that, given the
  DM, is independent of the truth's own random draws, so no sampler can expect more.

Targets (issue 8): precision >= 0.8 at recall >= 0.95 (the design's 0.837 / 1.0 in 2-D on CAMELS);
truth inside the samples' P(k) band at most k.

Usage::

    python benchmarks/bench_vdm.py [--boxes DIR] [--work DIR] [--config configs/vdm-small.yaml]
        [--set key=value ...] [--test 2] [--samples 4] [--sample-steps T]
        [--two-phase-config configs/two-phase-small.yaml] [--two-phase-set key=value ...]
        [--no-two-phase] [--hod-dir DIR]

Without --boxes, `galaxygen simulate` writes CV boxes of 64^3 particles into WORK/boxes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from bench_train import simulate, surrogate_limit  # beside this script: the same boxes as the two-phase benchmark

ROOT = Path(__file__).resolve().parents[1]


def spectra(preds: list[np.ndarray], truth: np.ndarray, box_size: float) -> dict:
    """P(k) band of the predictions (16-84 %) against the truth, r(k), k < k_Nyq/2."""
    from galaxygen.stats.power import cross_power, nyquist, power_spectrum

    pt = power_spectrum(truth, box_size)
    sel = (pt.k < nyquist(truth.shape[0], box_size) / 2) & (pt.n_modes > 0)
    pks, rs = [], []
    for p in preds:
        if p.sum() == 0:
            continue
        cp = cross_power(p, truth, box_size)
        pks.append(cp.p_aa[sel])
        rs.append(cp.r[sel])
    if not pks:
        return {"k": pt.k[sel].tolist(), "empty_predictions": True}
    pks, rs = np.array(pks), np.array(rs)
    lo, hi = np.percentile(pks, [16, 84], axis=0)
    truth_pk = pt.power[sel]
    return {"k": pt.k[sel].tolist(), "p_true": truth_pk.tolist(), "p_mean": pks.mean(0).tolist(),
            "p16": lo.tolist(), "p84": hi.tolist(), "r_mean": rs.mean(0).tolist(),
            "truth_in_band_fraction": float(np.mean((truth_pk >= lo) & (truth_pk <= hi))),
            "pk_ratio_mean": (pks.mean(0) / truth_pk).tolist()}


def summarise(groups: dict[str, list[np.ndarray]], truths: dict[str, np.ndarray], box_size: float) -> dict:
    """Voxel metrics of every prediction (pooled), of the union per box, and spectra per box."""
    from galaxygen.stats.classification import pooled

    pairs = [(p, truths[name]) for name, ps in groups.items() for p in ps]
    union = [(np.max(np.stack(ps), axis=0), truths[name]) for name, ps in groups.items()]
    out = {"voxel_metrics": pooled(pairs).as_dict(), "voxel_metrics_union": pooled(union).as_dict(),
           "count_ratio": float(sum(p.sum() for p, _ in pairs) / sum(t.sum() for _, t in pairs)),
           "spectra": {name: spectra(ps, truths[name], box_size) for name, ps in groups.items()}}
    inband = [s["truth_in_band_fraction"] for s in out["spectra"].values() if "truth_in_band_fraction" in s]
    out["truth_in_band_fraction_mean"] = float(np.mean(inband)) if inband else None
    rm = [np.nanmean(s["r_mean"]) for s in out["spectra"].values() if "r_mean" in s]
    out["r_mean_over_k"] = float(np.mean(rm)) if rm else None
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--boxes", type=Path, help="folder of box files (default: simulate into WORK/boxes)")
    ap.add_argument("--work", type=Path, default=Path("bench-vdm-out"), help="work folder")
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "vdm-small.yaml")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="VDM config override KEY=VALUE")
    ap.add_argument("--test", type=int, default=2, help="boxes kept apart for testing (the last by name)")
    ap.add_argument("--n-boxes", type=int, default=6, help="boxes to simulate without --boxes")
    ap.add_argument("--particles", type=int, default=64, help="particles per side to simulate")
    ap.add_argument("--samples", type=int, default=4, help="samples per test box")
    ap.add_argument("--sample-steps", type=int, help="ancestral steps T (default: the config's sample.steps)")
    ap.add_argument("--two-phase-config", type=Path, default=ROOT / "configs" / "two-phase-small.yaml")
    ap.add_argument("--two-phase-set", action="append", default=[], help="two-phase config override KEY=VALUE")
    ap.add_argument("--no-two-phase", action="store_true", help="skip the two-phase comparison")
    ap.add_argument("--hod-dir", type=Path, help="HOD prediction boxes of the test boxes (matched by name)")
    args = ap.parse_args()
    os.environ.setdefault("GALAXYGEN_NO_PROGRESS", "1")

    import torch

    from galaxygen.box import list_boxes, read_box
    from galaxygen.config import apply_overrides, load_yaml
    from galaxygen.models.registry import predict, train

    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    boxes = list_boxes(args.boxes or simulate(work / "boxes", args.n_boxes, args.particles))
    if len(boxes) < args.test + 2:
        raise SystemExit(f"need at least {args.test + 2} boxes, got {len(boxes)}")
    test, fit = boxes[-args.test:], boxes[:-args.test]
    truths = {}
    box_size = None
    for t in test:
        tb = read_box(t, catalogs=False, velocity=False)
        truths[tb.name] = tb.galaxies
        box_size = tb.box_size
    config = apply_overrides(load_yaml(args.config), args.overrides)
    report: dict = {"config": str(args.config), "overrides": args.overrides, "threads": torch.get_num_threads(),
                    "device": "cuda" if torch.cuda.is_available() else "cpu", "grid": int(next(iter(truths.values())).shape[0]),
                    "fit_boxes": [p.name for p in fit], "test_boxes": [p.name for p in test], "samples": args.samples}

    run = work / "vdm-run"
    t0 = time.perf_counter()
    summary = train(config, fit, run, resume=(run / "config.json").is_file())
    report["vdm_train_seconds"] = time.perf_counter() - t0
    report["vdm_train_steps"] = summary["vdm"]["steps"]
    report["vdm_last_validation"] = summary["vdm"]["last_validation"]
    report["vdm_gamma"] = summary["gamma"]
    t0 = time.perf_counter()
    steps = args.sample_steps or config.get("sample", {}).get("steps", 250)
    paths = predict(run, test, work / "vdm-pred", samples=args.samples, seed=0, device="auto", overwrite=True,
                    steps=steps)
    dt = time.perf_counter() - t0
    report["vdm_sampling"] = {"steps": steps, "seconds_per_box": dt / len(test),
                              "seconds_per_sample": dt / (len(test) * args.samples),
                              "seconds_per_step_per_sample": dt / (len(test) * args.samples * steps)}
    groups: dict[str, list[np.ndarray]] = {}
    for p in paths:
        b = read_box(p, catalogs=False, velocity=False)
        if b.meta.get("kind") != "mean":
            groups.setdefault(b.name, []).append(b.galaxies)
    report["vdm"] = summarise(groups, truths, box_size)

    if not args.no_two_phase:
        tp_cfg = apply_overrides(load_yaml(args.two_phase_config), args.two_phase_set)
        tp_run = work / "two-phase-run"
        t0 = time.perf_counter()
        train(tp_cfg, fit, tp_run, resume=(tp_run / "config.json").is_file())
        report["two_phase_train_seconds"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        tp_paths = predict(tp_run, test, work / "two-phase-pred", overwrite=True)
        report["two_phase_seconds_per_box"] = (time.perf_counter() - t0) / len(test)
        tp = {}
        for p in tp_paths:
            b = read_box(p, catalogs=False, velocity=False)
            tp.setdefault(b.name, []).append(b.galaxies)
        report["two_phase"] = summarise(tp, truths, box_size)
    if args.hod_dir:
        hod: dict[str, list[np.ndarray]] = {}
        for p in list_boxes(args.hod_dir):
            b = read_box(p, catalogs=False, velocity=False)
            if b.name in truths:
                hod.setdefault(b.name, []).append(b.galaxies)
        report["hod"] = summarise(hod, truths, box_size) if hod else {"error": "no HOD box matches a test box"}
    vm = report["vdm"]["voxel_metrics"]
    # what a perfect model of P(voxel occupied) could reach on these boxes (built-in surrogate only)
    report["surrogate_limit"] = surrogate_limit(test, 0.95)
    report["targets"] = {"precision>=0.8_at_recall>=0.95": bool(vm["precision"] >= 0.8 and vm["recall"] >= 0.95),
                         "truth_in_band_most_k": bool((report["vdm"]["truth_in_band_fraction_mean"] or 0) > 0.5)}
    json.dump(report, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
