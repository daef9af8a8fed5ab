"""`galaxygen demo`: the whole pipeline on the built-in universe, end to end, with one progress display.

Stages (each a small function of the shared `Demo` state, calling the parts' library functions):

1. simulate  a CV set (fiducial parameters, different seeds) for two galaxy-surrogate variants:
             training and test boxes, the same DM for both variants;
2. hod       fit the HOD on each variant's training boxes, populate every test box;
3. two-phase train the two-phase network on each variant (side by side on CPU cores), predict every
             test box (cross prediction), and Poisson samples on the variant's own test boxes;
4. sweep     a parameter sweep in A_SN1: boxes at several A_SN1 values (other parameters fiducial,
             own initial conditions each) train the parameter-conditioned two-phase network
             (``two-phase-lh-small.yaml``, ``condition_params: auto``); it predicts boxes at three values
             made from one set of initial conditions (the same DM), shown beside their truth;
5. vdm       a short variational-diffusion run on the first variant, several samples per test box;
6. evaluate  every prediction against the truth: metrics.json, figures, report.html (with the sweep).

Sizes: ``tiny`` (tests, about two minutes),
``small`` (2 CPU cores, under 15 minutes), ``full`` (the design's scale, for a GPU).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from galaxygen import runner
from galaxygen.config import PACKAGED_CONFIGS, apply_overrides, load_yaml
from galaxygen.device import cpu_cores, resolve_device
from galaxygen.errors import GalaxygenError
from galaxygen.evaluate import evaluate
from galaxygen.evaluate.pipeline import Sweep
from galaxygen.interrupts import is_interrupt
from galaxygen.io import write_json, write_text
from galaxygen.models import registry as tasks
from galaxygen.models.hod import task as hod
from galaxygen.outputs import claim_folder
from galaxygen.progress import progress
from galaxygen.sources.universe import suite, surrogate
from galaxygen.sources.universe.sets import box_seeds

MARKER = "demo.json"  # the demo's stages and status, written into the output folder
SUBDIRS = ("boxes", "hod", "runs", "predictions", "report")
SWEEP_PARAMETER = "a_sn1"  # the parameter the demo's sweep varies (a box parameter of sets.FIDUCIAL)


@dataclass(frozen=True)
class DemoSize:
    """Scale of a demo run.

    grid / particles: voxels and N-body particles per side; box_size [Mpc/h]; n_train / n_test:
    CV boxes per variant for training (split again into train/validation by the network's config)
    and for testing; *_set: config overrides (``key=value``) of the two-phase and VDM runs;
    two_phase_samples: Poisson realisations of the two-phase network on its own variant's test boxes
    (label ``two-phase_<variant>_poisson``), beside its default (structured, seeded) prediction (0: none);
    vdm_cascade: the VDM is conditioned on the first variant's two-phase run (``cascade``), so its
    samples start from that network's calibrated rates (docs/diffusion.md).
    sweep_*: the A_SN1 sweep: training values (one box each), the three values shown, particles and
    voxels per side of its boxes, the conditioned network's config and overrides.
    """

    grid: int
    particles: int
    box_size: float
    n_train: int
    n_test: int
    cola_steps: int
    pm_steps: int
    two_phase_config: str = "two-phase-small.yaml"
    two_phase_set: tuple[str, ...] = ()
    vdm_config: str = "vdm-small.yaml"
    vdm_set: tuple[str, ...] = ()
    vdm_samples: int = 3
    vdm_cascade: bool = True
    two_phase_samples: int = 3
    hod_model: str = "seed3"
    hod_realisations: int = 3
    sweep_train: tuple[float, ...] = (0.25, 0.44, 0.76, 1.32, 2.3, 4.0)  # A_SN1 over its CAMELS range
    sweep_values: tuple[float, ...] = (0.25, 1.0, 4.0)
    sweep_particles: int = 64
    sweep_grid: int = 32
    sweep_config: str = "two-phase-lh-small.yaml"
    sweep_set: tuple[str, ...] = ()


def _both(prefix_keys: tuple[str, ...], value: str) -> tuple[str, ...]:
    return tuple(f"{k}={value}" for k in prefix_keys)


_TWO_PHASE_TINY = (
    *_both(("classifier.train.steps", "regressor.train.steps", "classifier.train.eval_every",
            "regressor.train.eval_every", "classifier.train.checkpoint_every",
            "regressor.train.checkpoint_every", "classifier.train.log_every", "regressor.train.log_every"), "4"),
    "classifier.train.warmup_steps=0", "regressor.train.warmup_steps=0",
    "classifier.train.batch_size=2", "regressor.train.batch_size=2", "classifier.model.width=4",
    "regressor.model.width=4", "data.crop=8", "infer.tile=16", "infer.halo=8")
_VDM_TINY = ("train.steps=4", "train.eval_every=4", "train.checkpoint_every=4", "train.log_every=4",
             "train.warmup_steps=0", "data.crop=16", "model.width=8", "model.groups=4", "validation_crops=1",
             "sample.steps=4")

SIZES: dict[str, DemoSize] = {
    "tiny": DemoSize(grid=16, particles=32, box_size=25.0, n_train=2, n_test=1, cola_steps=3, pm_steps=6,
                     two_phase_set=_TWO_PHASE_TINY, vdm_set=_VDM_TINY, vdm_samples=2, two_phase_samples=2,
                     hod_realisations=2, sweep_train=(0.25, 1.0, 4.0), sweep_particles=32, sweep_grid=16,
                     sweep_set=_TWO_PHASE_TINY),
    "small": DemoSize(grid=64, particles=64, box_size=25.0, n_train=6, n_test=2, cola_steps=8, pm_steps=24,
                      two_phase_set=("regressor.train.steps=450",),  # the config's 1000 steps: the demo's 15 minutes
                      # minutes of CPU do not train a diffusion model (docs/diffusion.md): the cascade
                      # starts from the two-phase rates and learns a residual; the time goes to that network
                      vdm_set=("train.steps=60", "train.eval_every=30", "train.checkpoint_every=30",
                               "sample.steps=15", "sample.mean=false"), vdm_samples=2,
                      # the A_SN1 sweep kept within the demo's budget: 32^3 particles on 16^3 voxels, a short
                      # training (48^3 on 24^3 with 150 + 250 steps took ~27 min under shared load)
                      sweep_particles=32, sweep_grid=16,
                      sweep_set=("classifier.train.steps=60", "regressor.train.steps=100", "data.crop=8",
                                 "infer.tile=16", *_both(("classifier.train.batch_size",
                                                          "regressor.train.batch_size"), "2"))),
    "full": DemoSize(grid=256, particles=256, box_size=25.0, n_train=22, n_test=5, cola_steps=10, pm_steps=40,
                     two_phase_config="two-phase-full.yaml", vdm_config="vdm-full.yaml", vdm_samples=8),
}


@dataclass
class Demo:
    """State shared by the stages: where things are and what has been produced."""

    out: Path
    size_name: str
    size: DemoSize
    device: str = "auto"
    seed: int = 0
    variants: tuple[str, ...] = ()
    train_dirs: dict[str, Path] = field(default_factory=dict)   # variant -> training boxes
    test_dirs: dict[str, Path] = field(default_factory=dict)    # variant -> test boxes (the truth)
    predictions: dict[str, list[Path]] = field(default_factory=dict)  # label -> prediction folders
    sweep: Sweep | None = None                                         # the A_SN1 sweep's boxes
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)   # stage -> status, seconds, note
    metrics: dict[str, Any] | None = None

    def path(self, *parts: str) -> Path:
        return self.out.joinpath(*parts)


def find_config(name: str) -> Path:
    """A config file shipped with the package (galaxygen/configs/, also the repository's configs/)."""
    path = PACKAGED_CONFIGS / name
    if not path.is_file():
        raise GalaxygenError(f"{path}: shipped config missing (is galaxygen installed completely?)")
    return path


# ------------------------------------------------------------------------------------------ stages

def stage_simulate(demo: Demo) -> str:
    """Built-in CV boxes for two surrogate variants (same seeds: same DM, different galaxies)."""
    s = demo.size
    demo.variants = tuple(surrogate.VARIANTS)[:2]
    for v in demo.variants:
        for split, n, seed in (("train", s.n_train, demo.seed), ("test", s.n_test, demo.seed + 1)):
            folder = demo.path("boxes", v, split)
            cfg = suite.SimulateConfig(boxes=n, particles=s.particles, grid=s.grid, box_size=s.box_size,
                                       galaxy_model=v, set="cv", seed=seed, cola_steps=s.cola_steps,
                                       pm_steps=s.pm_steps, device=demo.device)
            suite.simulate_suite(folder, cfg)
            (demo.train_dirs if split == "train" else demo.test_dirs)[v] = folder
    return (f"{' and '.join(demo.variants)}: {s.n_train} training + {s.n_test} test boxes each, "
            f"{s.particles}^3 particles, {s.grid}^3 voxels, {s.box_size:g} Mpc/h")


def stage_hod(demo: Demo) -> str:
    """Fit the HOD on each variant's training boxes; populate every variant's test boxes."""
    s = demo.size
    for v in demo.variants:
        fit_path = hod.write_fit(demo.path("hod", f"hod_{v}.json"),
                                 hod.fit_boxes([demo.train_dirs[v]], s.hod_model), overwrite=True)
        label = f"hod_{v}"
        demo.predictions[label] = []
        for tested in demo.variants:
            folder = demo.path("predictions", label, tested)
            hod.populate_boxes(fit_path, [demo.test_dirs[tested]], folder, seed=demo.seed,
                               realisations=s.hod_realisations, overwrite=True)
            demo.predictions[label].append(folder)
    return f"fitted {s.hod_model} on {', '.join(demo.variants)}, {s.hod_realisations} realisations per test box"


def _train_and_predict(demo: Demo, kind: str, config_name: str, overrides: tuple[str, ...], variant: str,
                       tested: tuple[str, ...], samples: int) -> tuple[str, list[Path]]:
    """Train `kind` on one variant's training boxes, predict the test boxes of every `tested` variant.

    Returns the prediction label and its folders (one per tested variant)."""
    config = apply_overrides(load_yaml(find_config(config_name)), list(overrides))
    label = f"{kind}_{variant}"
    run_dir = demo.path("runs", label)
    tasks.train(config, [demo.train_dirs[variant]], run_dir, overwrite=True, device=demo.device)
    folders = []
    for t in tested:
        folder = demo.path("predictions", label, t)
        tasks.predict(run_dir, _test_boxes(demo, t), folder, samples=samples, seed=demo.seed, device=demo.device,
                      overwrite=True)
        folders.append(folder)
    return label, folders


def _test_boxes(demo: Demo, variant: str) -> list[Path]:
    return sorted(demo.test_dirs[variant].glob("*.h5"))


def parallel_jobs(device: str, n_jobs: int, cpus: int | None = None) -> int:
    """Worker processes for `n_jobs` independent CPU trainings: one per core, at most one per job.

    Tiny networks use two threads poorly (a 3-D R2U-Net step on 2 cores: 0.26 s with 2 threads,
    0.34 s with 1), so two trainings side by side with one thread each finish ~1.5x sooner than one
    after the other. On a GPU the trainings run in turn (one process owns the device)."""
    if resolve_device(device).type != "cpu":
        return 1
    return max(1, min(n_jobs, cpus if cpus is not None else cpu_cores()))


def stage_two_phase(demo: Demo) -> str:
    """Train the two-phase network on each variant (side by side on CPU cores); predict every variant's
    test boxes; then Poisson samples of each network on its own variant's test boxes."""
    trainings = [runner.Task(f"two-phase_{v}", _train_and_predict, (demo, "two-phase", demo.size.two_phase_config,
                                                                     demo.size.two_phase_set, v, demo.variants, 1))
                 for v in demo.variants]
    workers = parallel_jobs(demo.device, len(trainings))
    # side by side in spawned workers (cores shared among them, the first one's progress bars shown);
    # a failing training stops nothing else, its error is raised once the others are done
    backend = runner.Serial() if workers == 1 else runner.ProcessPool(workers, show_first=True)
    done = runner.run(runner.plan(trainings), backend=backend)
    if done.failed:
        raise next(iter(done.failed.values()))
    for label, folders in (done.results[t.name] for t in trainings):
        demo.predictions[label] = folders
    note = f"trained on {', '.join(demo.variants)} ({workers} at a time), predicted {len(demo.variants) ** 2} variant pairs"
    if demo.size.two_phase_samples:
        # the peer of the default (structured) realisation: independent Poisson draws of the same
        # expected counts (fields/galaxy_rate), without the central/satellite structure
        for v in demo.variants:
            label = f"two-phase_{v}_poisson"
            folder = demo.path("predictions", label, v)
            tasks.predict(demo.path("runs", f"two-phase_{v}"), _test_boxes(demo, v), folder,
                          samples=demo.size.two_phase_samples, seed=demo.seed, device=demo.device,
                          counts="poisson", overwrite=True)
            demo.predictions[label] = [folder]
        note += f", {demo.size.two_phase_samples} Poisson samples per own test box"
    return note


def stage_vdm(demo: Demo) -> str:
    """A short VDM run on the first variant (a cascade on its two-phase run); several samples of its
    test boxes."""
    v = demo.variants[0]
    overrides = demo.size.vdm_set
    if demo.size.vdm_cascade:
        # a point prior at zero residual: the untrained cascade is the Poisson draws of the rates (docs/diffusion.md)
        overrides = (*overrides, f"cascade={demo.path('runs', f'two-phase_{v}').resolve()}", "model.baseline=point")
    label, folders = _train_and_predict(demo, "vdm", demo.size.vdm_config, overrides, v, (v,),
                                        samples=demo.size.vdm_samples)
    demo.predictions[label] = folders
    cascade = ", a cascade on two-phase_" + v if demo.size.vdm_cascade else ""
    return f"trained on {v}{cascade}, {demo.size.vdm_samples} samples per test box"


def _points_csv(path: Path, values: tuple[float, ...], seeds: list[int]) -> Path:
    """A `galaxygen simulate --set points` file: one box per value of the sweep's parameter."""
    lines = [f"name,{SWEEP_PARAMETER},seed"] + [f"{SWEEP_PARAMETER.upper()}_{v:g},{v!r},{s}"
                                                for v, s in zip(values, seeds)]
    return write_text(path, "\n".join(lines) + "\n", overwrite=True)


def stage_sweep(demo: Demo) -> str:
    """The A_SN1 sweep: simulate its training boxes (one per value, own initial conditions) and test boxes
    (the shown values, one set of initial conditions), train the conditioned network, predict."""
    s = demo.size
    v = demo.variants[0]
    folder = demo.path("boxes", "sweep")
    seeds = {"train": [box_seeds(demo.seed + 2, i)[0] for i in range(len(s.sweep_train))],
             "test": [box_seeds(demo.seed + 3, 0)[0]] * len(s.sweep_values)}
    boxes = {}
    for split, values in (("train", s.sweep_train), ("test", s.sweep_values)):
        points = _points_csv(folder / f"{split}_points.csv", values, seeds[split])
        cfg = suite.SimulateConfig(particles=s.sweep_particles, grid=s.sweep_grid, box_size=s.box_size,
                                   galaxy_model=v, set="points", points=str(points), seed=demo.seed,
                                   cola_steps=s.cola_steps, pm_steps=s.pm_steps, device=demo.device)
        boxes[split] = [Path(b["path"]) for b in suite.simulate_suite(folder / split, cfg)["boxes"]]
    config = apply_overrides(load_yaml(find_config(s.sweep_config)), ["condition_params=auto", *s.sweep_set])
    run_dir = demo.path("runs", "two-phase_sweep")
    tasks.train(config, boxes["train"], run_dir, overwrite=True, device=demo.device)
    truth = boxes["test"]  # in the order of the points file: the values
    preds = tasks.predict(run_dir, truth, demo.path("predictions", "two-phase_sweep"), seed=demo.seed,
                          device=demo.device, overwrite=True)
    demo.sweep = Sweep(SWEEP_PARAMETER, tuple(s.sweep_values), tuple(truth), tuple(preds))
    return (f"{v}: trained on {len(s.sweep_train)} boxes at {SWEEP_PARAMETER} = "
            f"{', '.join(f'{x:g}' for x in s.sweep_train)}; predicted {', '.join(f'{x:g}' for x in s.sweep_values)} "
            f"(one set of initial conditions), {s.sweep_particles}^3 particles, {s.sweep_grid}^3 voxels")


def stage_evaluate(demo: Demo) -> str:
    """Every prediction against the truth test boxes: metrics.json, figures, report.html (with the sweep)."""
    truth = [demo.test_dirs[v] for v in demo.variants]
    demo.metrics = evaluate(truth, demo.predictions, demo.path("report"), overwrite=True, sweep=demo.sweep)
    return f"{len(demo.predictions)} predictions → {demo.path('report', 'report.html')}"


STAGES: tuple[tuple[str, Callable[[Demo], str]], ...] = (
    ("simulate", stage_simulate), ("hod", stage_hod), ("two-phase", stage_two_phase),
    ("sweep", stage_sweep), ("vdm", stage_vdm), ("evaluate", stage_evaluate))


# ------------------------------------------------------------------------------------------ driver

def prepare_out(out: Path, overwrite: bool) -> None:
    """Make the output folder: new or empty, or (with `overwrite`) one that only a previous demo wrote,
    which is cleared (see :func:`galaxygen.outputs.claim_folder`)."""
    claim_folder(out, "demo", (MARKER, *SUBDIRS), overwrite=overwrite)


def run_demo(out: str | Path = "demo-out", size: str = "small", *, overwrite: bool = False, device: str = "auto",
             seed: int = 0, echo: Callable[[str], None] = print) -> Demo:
    """Run every stage; returns the demo state (stage notes and times, predictions, metrics)."""
    if size not in SIZES:
        raise GalaxygenError(f"--size: {size!r} is not one of {sorted(SIZES)}")
    out = Path(out)
    prepare_out(out, overwrite)
    demo = Demo(out=out, size_name=size, size=SIZES[size], device=device, seed=seed)
    _write_state(demo, "running")
    bar = progress(total=len(STAGES), desc="demo", unit="stage")
    for name, stage in STAGES:
        bar.set_description(f"demo: {name}")
        t0 = time.perf_counter()
        try:
            note = stage(demo)
        except BaseException as exc:  # demo.json says which stage stopped the demo, and why
            status = "interrupted" if is_interrupt(exc) else "failed"
            demo.stages[name] = {"status": status, "seconds": round(time.perf_counter() - t0, 1),
                                 "note": str(exc) or type(exc).__name__}
            bar.close()
            _write_state(demo, status)
            raise
        seconds = time.perf_counter() - t0
        demo.stages[name] = {"status": "done", "seconds": round(seconds, 1), "note": note}
        (bar.write if hasattr(bar, "write") else echo)(f"[{name}] {note} ({seconds:.0f} s)")
        bar.update(1)
    bar.close()
    _write_state(demo, "finished")
    return demo


def _write_state(demo: Demo, status: str) -> None:
    """``demo.json``: size, status (running, finished, failed or interrupted), stages, predictions."""
    write_json(demo.path(MARKER), {"size": demo.size_name, "status": status, "stages": demo.stages,
                                   "predictions": {k: [str(p) for p in v] for k, v in demo.predictions.items()}},
               overwrite=True)
