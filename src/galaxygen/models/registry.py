"""The registry of model families: the config's top-level key ``task`` selects what `galaxygen train`
trains and `galaxygen predict` predicts with.

A task is a module (or object) with three functions::

    train(config: dict, boxes: list[Path], run_dir: Path, *, resume: bool = False,
          overwrite: bool = False, device: str | None = None) -> dict      # JSON-ready summary
    predict(run_dir: Path, boxes: list[Path], out_dir: Path, *, samples: int = 1, seed: int = 0,
            device: str = "auto", overwrite: bool = False, **options) -> list[Path]
    prediction_files(run_dir: Path, name: str, out_dir: Path, *, samples: int = 1, **options) -> list[Path]

`predict` here calls the task's ``predict`` once per box, as a `galaxygen.runner` task (whose
outputs are the box's ``prediction_files``), so that boxes may be split into shards or run on a
Dask cluster (``--shard``, ``--dask``).

``config`` is the whole resolved config (overrides applied, ``task`` included); the run directory
holds it as ``config.json`` (see :class:`galaxygen.training.run.RunDir`), so `predict` needs only
the run directory. The tasks: ``two_phase`` (`galaxygen.models.two_phase.task`) and ``vdm``
(`galaxygen.models.vdm.task`). Both commands may run under torchrun.

Each family keeps its own table of parts, chosen by a field of its own config: the two-phase
networks (`galaxygen.models.two_phase.networks.NETWORKS`, ``model.name``), the VDM's noise
schedules (`galaxygen.models.vdm.schedule.SCHEDULES`, ``model.schedule``) and the HOD's occupation
models (`galaxygen.models.hod.occupation.MODELS`, `galaxygen hod fit --model`). They stay in their
families: a family may not import this module (it imports them), and no part serves two families.
The HOD is fitted and applied by `galaxygen hod`, not trained by `galaxygen train`, so it is no
task here.

Families do not import each other; where one uses another's trained run, the registry hands it over:
a task's ``train`` / ``predict`` that takes ``rate_source`` gets `expected_counts`, which turns a run
directory (`RATE_SOURCES`: a two-phase run) into its expected counts on any box (the VDM cascade).
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from galaxygen import runner
from galaxygen.box import list_boxes, read_header
from galaxygen.errors import ConfigError
from galaxygen.models.two_phase import counts as two_phase_counts
from galaxygen.models.two_phase import task as two_phase_task
from galaxygen.models.vdm import task as vdm_task
from galaxygen.outputs import staged_folder
from galaxygen.training.run import RunDir
from galaxygen.training.run_inputs import check_inputs

TASKS: dict[str, Any] = {"two_phase": two_phase_task, "vdm": vdm_task}


def two_phase_rates(run_dir: str | os.PathLike, device: Any) -> Callable[[Any], np.ndarray]:
    """Box -> expected galaxy counts (N, N, N) float32 of a trained two-phase run, by its public API:
    `counts.expected_counts` with the run's mask threshold and ``sharpen`` — what its predictions
    store as ``fields/galaxy_rate`` and realise (Poisson draws of them are its ``counts: poisson``)."""
    cfg, transform, models = two_phase_task.load_run(Path(run_dir), device)
    if "regressor" not in models:
        raise ConfigError(f"cascade: the two-phase run {run_dir} has no regressor (no rate field)")

    def rates(box: Any) -> np.ndarray:
        prob, rate = two_phase_task.network_outputs(cfg, transform, models, box, cfg.infer, device)
        return two_phase_counts.expected_counts(prob, rate, models.get("threshold"), sharpen=cfg.sharpen,
                                                sharpen_satellites=cfg.sharpen_satellites)
    return rates


#: run tasks whose expected counts can feed a VDM cascade (`expected_counts`)
RATE_SOURCES = {"two_phase": two_phase_rates}


def expected_counts(run_dir: str | os.PathLike, device: Any) -> Callable[[Any], np.ndarray]:
    """A trained run's expected counts on any box (the rate channel of a VDM cascade, ``cascade``)."""
    if not (Path(run_dir) / "config.json").is_file():
        raise ConfigError(f"cascade: {run_dir} is not a run directory (no config.json)")
    name = task_name(RunDir(run_dir).config())
    if name not in RATE_SOURCES:
        raise ConfigError(f"cascade: {run_dir} is a {name} run; expected one of {sorted(RATE_SOURCES)}")
    return RATE_SOURCES[name](run_dir, device)


def _injected(task: Any, fn: Callable) -> dict[str, Any]:
    """The registry's services a task's `fn` (train or predict) takes: ``rate_source``."""
    return {"rate_source": expected_counts} if "rate_source" in inspect.signature(fn).parameters else {}
COMMAND = "predict"  # the name under which predictions are recorded as written (galaxygen.outputs)


def get_task(name: str) -> Any:
    """The task module for `name`; a ConfigError naming the allowed tasks otherwise."""
    if name not in TASKS:
        raise ConfigError(f"task: {name!r} is not one of {sorted(TASKS)}")
    return TASKS[name]


def task_name(config: Mapping[str, Any]) -> str:
    name = config.get("task")
    if not isinstance(name, str):
        raise ConfigError(f"config: top-level key 'task' missing or not a string; expected one of {sorted(TASKS)}")
    return name


def train(config: Mapping[str, Any], boxes: Sequence[str | os.PathLike] | str | os.PathLike,
          run_dir: str | os.PathLike, *, resume: bool = False, overwrite: bool = False,
          device: str | None = None) -> dict[str, Any]:
    """Train the task named by ``config['task']`` on the box files in `boxes` into `run_dir`."""
    task = get_task(task_name(config))
    return task.train(dict(config), list_boxes(boxes), Path(run_dir), resume=resume, overwrite=overwrite,
                      device=device, **_injected(task, task.train))


def predict_one(name: str, run_dir: Path, box: Path, out_dir: Path, options: dict[str, Any]) -> list[Path]:
    """One box's predictions with the task `name` (a `galaxygen.runner` task)."""
    task = get_task(name)
    return task.predict(run_dir, [box], out_dir, **options, **_injected(task, task.predict))


def _leftovers(files: Sequence[Path]) -> bool:
    """Whether some of a box's `files` are there, all predictions: what an interrupted box left (each
    file is written atomically, the set one file after another), to be replaced when it is redone."""
    there = [f for f in files if f.exists()]
    return bool(there) and all(read_header(f).source == "prediction" for f in there)


def predict(run_dir: str | os.PathLike, boxes: Sequence[str | os.PathLike], out_dir: str | os.PathLike,
            *, allow_mismatch: bool = False, scale: runner.Scale | None = None, **options: Any) -> list[Path]:
    """Predict with a trained run (its task is read from ``config.json``): one box file per input.

    The inputs are checked against the run's training boxes first (`galaxygen.training.run_inputs`):
    a box size, voxel size or redshift the run was not trained on is refused unless
    `allow_mismatch`; a box of the training split gets a warning.

    `out_dir` is one output, written whole: the task writes into a temporary folder beside it that is
    renamed into place at the end (an interrupted prediction leaves nothing); an existing non-empty
    `out_dir` is replaced only with ``overwrite=True`` and only if `galaxygen predict` wrote it (see
    :mod:`galaxygen.outputs`). With a shard in `scale` (``--shard K/N``: N processes share
    `out_dir`), it is written box by box instead, each box's files atomically, and a box whose files
    are all there is skipped (resume), as `galaxygen simulate` does (files an interrupted box left
    are replaced). The boxes run on `scale`'s backend (default: one after another here). Returns the
    files' final paths (the shard's). Options the task's ``predict`` does not take raise a
    ConfigError naming them.
    """
    overwrite = bool(options.pop("overwrite", False))
    out_dir, scale = Path(out_dir), scale or runner.Scale()
    if scale.shard is not None:
        return _predict_boxes(run_dir, boxes, out_dir, allow_mismatch, scale, overwrite, options)
    with staged_folder(out_dir, COMMAND, overwrite=overwrite) as tmp:
        written = _predict_boxes(run_dir, boxes, tmp, allow_mismatch, scale, False, options)
    return [out_dir / Path(p).relative_to(tmp) for p in written]


def predict_into(run_dir: str | os.PathLike, boxes: Sequence[str | os.PathLike], folder: Path,
                 *, allow_mismatch: bool = False, **options: Any) -> list[Path]:
    """`predict` writing straight into the existing `folder` (the caller owns it, e.g. a staged one),
    one box after another here."""
    return _predict_boxes(run_dir, boxes, Path(folder), allow_mismatch, runner.Scale(), False, options)


def _predict_boxes(run_dir: str | os.PathLike, boxes: Sequence[str | os.PathLike], folder: Path,
                   allow_mismatch: bool, scale: runner.Scale, overwrite: bool,
                   options: dict[str, Any]) -> list[Path]:
    """Check the options and inputs, then predict each box (or `scale`'s shard of them) into
    `folder` as one `galaxygen.runner` task per box; returns the chosen boxes' files."""
    config = RunDir(run_dir).config()
    name = task_name(config)
    task = get_task(name)
    params = inspect.signature(task.predict).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        unknown = sorted(k for k in options if k not in params or k == "rate_source")
        if unknown:
            raise ConfigError(f"predict: option(s) {['--' + k for k in unknown]} do not apply to a {name} run")
    paths = list_boxes(list(boxes))
    check_inputs(run_dir, paths, allow_mismatch=allow_mismatch)
    tasks = []
    for p in paths:
        box = read_header(p).name
        files = tuple(task.prediction_files(Path(run_dir), box, folder, **options))
        args = (name, Path(run_dir), p, folder, {**options, "overwrite": overwrite or _leftovers(files)})
        tasks.append(runner.Task(box, predict_one, args, output=files))
    planned = runner.plan(tasks, command=COMMAND, overwrite=overwrite, shard=scale.shard)
    folder.mkdir(parents=True, exist_ok=True)
    done = runner.run(planned, backend=scale.backend(len(planned.todo)))
    if done.failed:
        raise next(iter(done.failed.values()))
    chosen = {t.name for t in planned.todo + planned.skipped}
    return [f for t in tasks if t.name in chosen for f in t.files]
