"""The generator across parameter space and its speed (issue 15, items 6 and 7; docs/generate.md).

(a) Accuracy. A Latin-hypercube (LH) training set and an LH test set drawn with another seed (other
parameter points, other initial conditions) are simulated with the built-in universe. Three models,
trained/fitted on the training set only, predict every test box in the same run:

* ``conditioned``: the two-phase network of ``two-phase-lh-small.yaml`` (``condition_params: auto``:
  the six parameters through FiLM);
* ``unconditioned``: the same config with ``condition_params: none``;
* ``hod``: the HOD (``seed3``) fitted on the training boxes, populated on the test boxes' halos.

Per test box: N_pred/N_true, and per k bin below k_Nyq/2 the P(k) ratio P_pred/P_true and r(k)
(`benchmarks/bench_train.field_stats`). Overall per model: the median |ln(N_pred/N_true)| and the
Pearson correlation of predicted and true galaxy numbers across the test boxes. Targets: conditioned
median |ln| <= 0.10 and correlation >= 0.9, ahead of both peers; its r(k) >= the HOD's in every bin on
every test box (printed pass/fail).

(b) Speed. For each size (particles per side P, voxels P/2): one box simulated the expensive way
(ICs, COLA, FoF, PM, FoF, surrogate: `galaxygen.sources.universe.suite.simulate_box`, seconds per
stage), a network of the same config trained a few steps on that box (the inference cost does not
depend on the training), then `galaxygen generate` (`galaxygen.pipelines.generate.generate`) end to
end at the same parameters, seconds per stage. Targets: 128^3 -> 64^3 <= 30 s, 256^3 -> 128^3 <= 3
min on 2 cores.

Usage::

    python benchmarks/bench_generate.py [--train 24] [--test 8] [--particles 128] [--grid 64]
        [--speed 128,256] [--set key=value ...] [--work DIR] [--skip-accuracy] [--skip-speed]

Defaults are the issue's full size (24 + 8 boxes of 128^3 particles on 64^3 voxels, 25 Mpc/h).
The reduced runs of docs/generate.md (2 shared CPU cores): ``--skip-speed --train 16 --test 6 --particles 64
--grid 32`` with 100 steps of batch 2 per phase (``--set classifier.train.steps=100`` ...), and
``--skip-accuracy --speed 128``.
JSON on stdout (and WORK/bench_generate.json), progress on stderr. ``--cola P`` adds the time of a
COLA run of P^3 particles (10 steps), ``--throughput CONFIG`` the training throughput of a two-phase
config's networks; `benchmarks/gpu_check.sh` runs these on a GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_train import field_stats, network_throughput  # noqa: E402  (the benchmarks' shared helpers)

from galaxygen.box import read_box, read_header, write_box  # noqa: E402
from galaxygen.config import apply_overrides, load_yaml  # noqa: E402
from galaxygen.cosmology.linear import Cosmology  # noqa: E402
from galaxygen.device import resolve_device  # noqa: E402
from galaxygen.io import write_json  # noqa: E402
from galaxygen.models import registry  # noqa: E402
from galaxygen.models.hod import task as hod  # noqa: E402
from galaxygen.pipelines.demo import find_config  # noqa: E402
from galaxygen.pipelines.generate import GenerateConfig, generate  # noqa: E402
from galaxygen.sources.universe.ics import initial_conditions  # noqa: E402
from galaxygen.sources.universe.nbody import run_cola  # noqa: E402
from galaxygen.sources.universe.sets import FIDUCIAL, parameter_table  # noqa: E402
from galaxygen.sources.universe.suite import SimulateConfig, simulate_box, simulate_suite  # noqa: E402

CONFIG = "two-phase-lh-small.yaml"
MODELS = ("conditioned", "unconditioned", "hod")
#: a few steps: the speed part times inference, which does not depend on how long the network trained;
#: its one box is split in slabs, which unbiased crop weights refuse (they need whole boxes)
QUICK = tuple(f"{p}.train.{k}={v}" for p in ("classifier", "regressor")
              for k, v in (("steps", 4), ("eval_every", 4), ("checkpoint_every", 4), ("log_every", 4),
                           ("warmup_steps", 0))) + ("data.unbiased=false",)


def log(msg: str) -> None:
    print(f"[bench_generate] {msg}", file=sys.stderr, flush=True)


def simulate(out: Path, boxes: int, seed: int, args) -> list[Path]:
    """An LH set of `boxes` boxes (resumable: complete boxes are kept)."""
    cfg = SimulateConfig(boxes=boxes, particles=args.particles, grid=args.grid, box_size=args.box_size, set="lh",
                         seed=seed, power=args.power, device=args.device)
    t0 = time.perf_counter()
    simulate_suite(out, cfg)
    log(f"simulated {boxes} LH boxes (seed {seed}) into {out} in {time.perf_counter() - t0:.0f} s")
    return sorted(out.glob("*.h5"))


def train(config: dict, boxes: Path, run: Path, device: str) -> float:
    t0 = time.perf_counter()
    registry.train(config, [boxes], run, overwrite=True, device=device)
    return time.perf_counter() - t0


def by_name(paths) -> dict[str, Path]:
    return {read_header(p).name: Path(p) for p in paths}


def box_metrics(pred: np.ndarray, truth: np.ndarray, box_size: float) -> dict:
    s = field_stats(pred, truth, box_size)
    n_pred, n_true = float(pred.sum()), float(truth.sum())
    return {"n_pred": n_pred, "n_true": n_true, "n_ratio": n_pred / n_true if n_true else float("nan"),
            "k": s["k"].tolist(), "pk_ratio": (s["ratio"] ** 2).tolist(), "r": s["r"].tolist()}


def summarise(per_box: dict[str, dict[str, dict]]) -> dict:
    """Per model: median |ln(N_pred/N_true)|, correlation of N_pred with N_true across boxes."""
    out = {}
    for m in MODELS:
        rows = [per_box[b][m] for b in per_box]
        n_pred = np.array([r["n_pred"] for r in rows])
        n_true = np.array([r["n_true"] for r in rows])
        ln = np.abs(np.log(np.maximum(n_pred, 1e-12) / n_true))
        corr = float(np.corrcoef(n_pred, n_true)[0, 1]) if len(rows) > 1 and n_pred.std() > 0 else float("nan")
        out[m] = {"median_abs_ln_n_ratio": float(np.median(ln)), "n_correlation": corr,
                  "mean_r": float(np.nanmean([np.nanmean(r["r"]) for r in rows]))}
    return out


def targets(per_box: dict, summary: dict) -> dict:
    c, u, h = (summary[m] for m in MODELS)
    r_ahead = {b: bool(np.all(np.array(v["conditioned"]["r"]) >= np.array(v["hod"]["r"]))) for b, v in per_box.items()}
    return {
        "median_abs_ln_n_ratio <= 0.10": c["median_abs_ln_n_ratio"] <= 0.10,
        "n_correlation >= 0.9": bool(c["n_correlation"] >= 0.9),
        "ahead of both peers (median |ln| and correlation)": bool(
            c["median_abs_ln_n_ratio"] < min(u["median_abs_ln_n_ratio"], h["median_abs_ln_n_ratio"])
            and c["n_correlation"] > np.nanmax([u["n_correlation"], h["n_correlation"], -1.0])),
        "r(k) >= HOD's in every bin on every box": all(r_ahead.values()),
        "r(k) >= HOD's, per box": r_ahead,
    }


def accuracy(work: Path, args) -> dict:
    train_dir, test_dir = work / "lh_train", work / "lh_test"
    simulate(train_dir, args.train, args.seed, args)
    test = simulate(test_dir, args.test, args.seed + 1, args)
    base = apply_overrides(load_yaml(find_config(CONFIG)), list(args.set))
    seconds = {}
    preds: dict[str, dict[str, Path]] = {}
    for m, choice in (("conditioned", "auto"), ("unconditioned", "none")):
        run = work / "runs" / m
        seconds[f"train {m}"] = train({**base, "condition_params": choice}, train_dir, run, args.device)
        log(f"trained {m} in {seconds[f'train {m}']:.0f} s")
        preds[m] = by_name(registry.predict(run, test, work / "pred" / m, seed=args.seed, device=args.device,
                                            overwrite=True))
    t0 = time.perf_counter()
    fit = hod.write_fit(work / "hod.json", hod.fit_boxes([train_dir], "seed3"), overwrite=True)
    preds["hod"] = by_name(hod.populate_boxes(fit, [test_dir], work / "pred" / "hod", seed=args.seed,
                                              overwrite=True))
    seconds["hod fit + populate"] = time.perf_counter() - t0
    per_box = {}
    for path in test:
        truth = read_box(path, catalogs=False)
        per_box[truth.name] = {"params": {k: round(float(v), 4) for k, v in truth.params.items()}}
        for m in MODELS:
            pred = read_box(preds[m][truth.name], catalogs=False).galaxies
            per_box[truth.name][m] = box_metrics(pred, truth.galaxies, truth.box_size)
    summary = summarise(per_box)
    return {"sizes": {"train_boxes": args.train, "test_boxes": args.test, "particles": args.particles,
                      "grid": args.grid, "box_size": args.box_size, "config": CONFIG, "overrides": list(args.set)},
            "seconds": {k: round(v, 1) for k, v in seconds.items()}, "per_box": per_box, "summary": summary,
            "targets": targets(per_box, summary)}


def speed_one(work: Path, particles: int, args) -> dict:
    """Expensive path vs generate for one box of `particles`^3 particles on (`particles`/2)^3 voxels."""
    grid = particles // 2
    folder = work / f"speed_{particles}"
    cfg = SimulateConfig(boxes=1, particles=particles, grid=grid, box_size=args.box_size, set="cv", seed=args.seed,
                         power=args.power, device=args.device)
    row = {**parameter_table("cv", 1, args.seed)[0], "name": "CV_0"}
    stages, t0 = {}, [time.perf_counter()]

    def stage(name: str) -> None:
        now = time.perf_counter()
        stages[name] = round(now - t0[0], 2)
        t0[0] = now

    start = time.perf_counter()
    box = simulate_box(cfg, row, stage)
    expensive = time.perf_counter() - start
    write_box(folder / "boxes" / "CV_0.h5", box, overwrite=True)
    log(f"{particles}^3 expensive path {expensive:.0f} s")
    config = apply_overrides(load_yaml(find_config(CONFIG)), [*QUICK, *args.set])
    train(config, folder / "boxes", folder / "run", args.device)
    start = time.perf_counter()
    summary = generate(folder / "run", folder / "gen", GenerateConfig(seed=args.seed + 7, device=args.device,
                                                                      overwrite=True))
    wall = time.perf_counter() - start
    log(f"{particles}^3 generate {wall:.0f} s")
    target = {128: 30.0, 256: 180.0}.get(particles)
    return {"particles": particles, "grid": grid, "box_size": args.box_size,
            "expensive_path_s": round(expensive, 1), "expensive_stages_s": stages,
            "generate_s": round(wall, 1), "generate_stages_s": summary["boxes"][0]["seconds"],
            "speedup": round(expensive / wall, 2), "target_s": target,
            "target_met": None if target is None else wall <= target}


def _sync(dev) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def cola_timing(particles: int, steps: int, args) -> dict:
    """COLA of `particles`^3 particles (mesh 2x per side), `steps` steps at the fiducial cosmology: seconds
    in all and per step, beside pmwd's 8 ms per PM step at 256^3 on an H100 (arXiv:2211.09815)."""
    dev = resolve_device(args.device)
    cosmo = Cosmology(omega_m=FIDUCIAL["omega_m"], sigma_8=FIDUCIAL["sigma_8"])
    t0 = time.perf_counter()
    ics = initial_conditions(cosmo, particles, args.box_size, args.seed, device=dev, method=args.power)
    _sync(dev)
    t1 = time.perf_counter()
    run_cola(ics, cosmo, steps=1, device=dev)  # warm-up (kernels, FFT plans)
    _sync(dev)
    t2 = time.perf_counter()
    run_cola(ics, cosmo, steps=steps, device=dev)
    _sync(dev)
    t3 = time.perf_counter()
    per_step = (t3 - t2) / steps
    return {"particles": particles, "mesh": 2 * particles, "steps": steps, "device": str(dev),
            "initial_conditions_s": round(t1 - t0, 3), "warm_up_run_s": round(t2 - t1, 3),
            "cola_s": round(t3 - t2, 3), "ms_per_step": round(1e3 * per_step, 2),
            "pmwd_ms_per_step_h100_256": 8.0, "ratio_to_pmwd": round(1e3 * per_step / 8.0, 2)}


def training_throughput(config_name: str, args, steps: int = 5) -> list[dict]:
    """Training steps of both networks of a two-phase config at its crop, pad and batch size (random
    crops; `bench_train.network_throughput`, on CUDA when torch sees one)."""
    cfg = apply_overrides(load_yaml(find_config(config_name)), list(args.set))
    crop, pad = int(cfg["data"]["crop"]), int(cfg["data"]["pad"])
    out = []
    for phase in cfg.get("phases", ("classifier", "regressor")):
        model, batch = cfg[phase]["model"], int(cfg[phase]["train"]["batch_size"])
        out.append({"phase": phase, "config": config_name,
                    **network_throughput(model["name"], int(model["width"]), int(model["depth"]), crop, pad, batch,
                                         steps)})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=int, default=24, help="LH training boxes")
    ap.add_argument("--test", type=int, default=8, help="LH test boxes (another seed)")
    ap.add_argument("--particles", type=int, default=128, help="particles per side of the LH boxes")
    ap.add_argument("--grid", type=int, default=64, help="voxels per side of the LH boxes")
    ap.add_argument("--box-size", type=float, default=25.0, help="Mpc/h")
    ap.add_argument("--power", default="eh", choices=("eh", "camb"), help="linear spectrum of the ICs")
    ap.add_argument("--speed", default="128,256", help="particles per side of the speed boxes (voxels: half)")
    ap.add_argument("--set", action="append", default=[], help="override of the network config (key=value)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--work", default=None, help="work folder (kept; default: a temporary one)")
    ap.add_argument("--skip-accuracy", action="store_true")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--cola", type=int, default=0, help="also time COLA (10 steps) of this many particles per side")
    ap.add_argument("--throughput", default=None, help="also time training steps of this two-phase config's networks")
    args = ap.parse_args()
    os.environ.setdefault("GALAXYGEN_NO_PROGRESS", "1")
    work = Path(args.work or tempfile.mkdtemp(prefix="bench_generate_"))
    work.mkdir(parents=True, exist_ok=True)
    result: dict = {"device": args.device, "torch_threads": torch.get_num_threads()}
    if not args.skip_accuracy:
        result["accuracy"] = accuracy(work, args)
        write_json(work / "bench_generate.json", result, overwrite=True)  # kept should the speed part stop
    if not args.skip_speed:
        result["speed"] = [speed_one(work, int(p), args) for p in args.speed.split(",") if p]
    if args.cola:
        result["cola"] = cola_timing(args.cola, 10, args)
    if args.throughput:
        result["training_throughput"] = training_throughput(args.throughput, args)
    write_json(work / "bench_generate.json", result, overwrite=True)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
