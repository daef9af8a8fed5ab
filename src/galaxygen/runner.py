"""One task per item, with one resume rule: run serially or in a local process pool, progress over
items, failures collected per item.

Used by `galaxygen simulate` (a box per parameter row), `galaxygen ingest` (a box per simulation)
and the demo (trainings side by side).

Resume rule (`plan`): a task whose `output` file exists is complete and skipped. Outputs are
written atomically (``galaxygen.io.atomic_path``), so an existing file is whole; a `check` given by
the caller may still refuse one made with other settings (it raises). With `overwrite` nothing is
skipped, and every existing output must be one that the same command wrote (the folder's record,
``galaxygen.outputs``), all checked before any work. `run` records each output written as the
command's, so that a later `--overwrite` may replace it.

Backends: `run` hands the tasks still to do to a backend, ``backend.run(tasks, done, step)``, which
runs them and calls ``done(Outcome)`` in this process as each finishes and ``step(task name, step
name)`` for each step a task reports. `Serial` runs them here one after another; `ProcessPool` in
spawned worker processes, one task per worker at a time (so a Ctrl-C leaves none queued), the CPU
cores shared among them (torch and numba threads), with Ctrl-C handled as
``galaxygen.interrupts`` describes. A backend of another kind (a cluster, a shard of the list)
implements the same ``run``.

A failure of one item (a GalaxygenError, or one of `ITEM_ERRORS`) is collected in the report under
the item's name and the other items still run; anything else (a bug, a Ctrl-C) stops the run: tasks
not started are dropped and running ones finish (or, for a Ctrl-C, are interrupted).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing as mp
import os
import traceback
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import numba
import torch

from galaxygen.device import cpu_cores
from galaxygen.errors import GalaxygenError
from galaxygen.interrupts import call_interruptibly, is_interrupt, sigint_ignored, stop_workers
from galaxygen.outputs import check_file, record
from galaxygen.progress import enabled as progress_enabled, progress

#: Exceptions that fail one item only (besides GalaxygenError): bad or unreadable inputs, full disks.
ITEM_ERRORS = (GalaxygenError, OSError, KeyError, ValueError, IndexError, TypeError, RuntimeError, MemoryError)
NO_PROGRESS = "GALAXYGEN_NO_PROGRESS"


@dataclass(frozen=True)
class Task:
    """One item: ``fn(*args)`` makes `output` (None: an item without a file, never skipped).

    A task of `steps` > 1 is called as ``fn(*args, report=report)`` and calls ``report(step_name)``
    as each of its steps completes (progress within the item). For a process pool, `fn` must be a
    module-level function and `args` picklable.
    """

    name: str
    fn: Callable[..., Any]
    args: tuple = ()
    output: Path | None = None
    steps: int = 1


@dataclass(frozen=True)
class Outcome:
    """How a task ended: its result, or the exception it raised."""

    task: Task
    result: Any = None
    error: BaseException | None = None


@dataclass(frozen=True)
class Plan:
    """The tasks still to do and those skipped as complete, for `command` (None: record nothing)."""

    command: str | None
    todo: tuple[Task, ...]
    skipped: tuple[Task, ...]


@dataclass
class RunReport:
    """What `run` did: results of the tasks that succeeded (completion order), names of the tasks
    skipped as complete, and the exceptions of the items that failed."""

    results: dict[str, Any] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, BaseException] = field(default_factory=dict)


class Backend(Protocol):
    def run(self, tasks: Sequence[Task], done: Callable[[Outcome], None], step: Callable[[str, str], None]) -> None:
        """Run every task; call `done` (in this process) as each ends and `step` for its reported steps."""


def plan(tasks: Sequence[Task], *, command: str | None = None, overwrite: bool = False,
         check: Callable[[Task], None] | None = None) -> Plan:
    """Apply the resume rule (module docstring); raises before any work when an output may not be
    replaced (`overwrite`) or `check` refuses an existing one."""
    names = [t.name for t in tasks]
    if len(set(names)) != len(names):
        raise GalaxygenError(f"tasks must have distinct names, got {names}")
    if overwrite:
        for t in tasks:
            if t.output is not None and command is not None:
                check_file(t.output, command, overwrite=True)
        return Plan(command, tuple(tasks), ())
    todo, skipped = [], []
    for t in tasks:
        complete = t.output is not None and Path(t.output).exists()
        if complete and check is not None:
            check(t)
        (skipped if complete else todo).append(t)
    return Plan(command, tuple(todo), tuple(skipped))


def run(planned: Plan, *, workers: int = 1, backend: Backend | None = None, desc: str | None = None,
        unit: str = "item") -> RunReport:
    """Run the tasks of `planned` on `backend` (default: `local(workers, n)`), with a progress bar over
    their steps when `desc` is given; returns the report (failures of single items collected)."""
    report = RunReport(skipped=[t.name for t in planned.skipped])
    backend = backend or local(workers, len(planned.todo))
    bar = progress(total=sum(t.steps for t in planned.todo), desc=desc, unit=unit) if desc else None
    counted: dict[str, int] = {}

    def step(name: str, what: str) -> None:
        counted[name] = counted.get(name, 0) + 1
        if bar is not None:
            bar.set_postfix_str(f"{name}: {what}", refresh=False)
            bar.update(1)

    def done(outcome: Outcome) -> None:
        task, exc = outcome.task, outcome.error
        if bar is not None:
            bar.update(max(0, task.steps - counted.get(task.name, 0)))
        if exc is None:
            report.results[task.name] = outcome.result
            if task.output is not None and planned.command is not None:
                record(Path(task.output).parent, planned.command, [Path(task.output).name])
        elif isinstance(exc, ITEM_ERRORS) and not is_interrupt(exc):
            report.failed[task.name] = exc
        else:
            raise exc

    try:
        if planned.todo:
            backend.run(planned.todo, done, step)
    finally:
        if bar is not None:
            bar.close()
    return report


def describe(exc: BaseException) -> str:
    """One line on a failed item: a GalaxygenError's message, else the exception's type, message and
    the line it came from (when its traceback is at hand)."""
    if isinstance(exc, GalaxygenError):
        return str(exc)
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


def local(workers: int, n_tasks: int) -> Backend:
    """`Serial` for one worker or at most one task, else a `ProcessPool` of ``min(workers, n_tasks)``."""
    n = min(workers, n_tasks)
    return Serial() if n <= 1 else ProcessPool(n)


def _call(task: Task, report: Callable[[str], None]) -> Any:
    return task.fn(*task.args, report=report) if task.steps > 1 else task.fn(*task.args)


class Serial:
    """The tasks one after another in this process."""

    def run(self, tasks: Sequence[Task], done: Callable[[Outcome], None], step: Callable[[str, str], None]) -> None:
        for task in tasks:
            try:
                result = _call(task, lambda what, name=task.name: step(name, what))
            except Exception as exc:
                if is_interrupt(exc):
                    raise
                done(Outcome(task, error=exc))
            else:
                done(Outcome(task, result=result))


def _worker_init(threads: int) -> None:
    os.environ[NO_PROGRESS] = "1"
    torch.set_num_threads(threads)
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))


@dataclass(frozen=True)
class _Report:
    """A task's `report` in a worker: its steps go to the parent through a manager queue."""

    queue: Any
    name: str

    def __call__(self, what: str) -> None:
        self.queue.put((self.name, what))


def _call_in_worker(task: Task, report: Callable[[str], None] | None, show_progress: bool) -> Any:
    os.environ[NO_PROGRESS] = "0" if show_progress else "1"
    return _call(task, report)


@dataclass(frozen=True)
class ProcessPool:
    """The tasks in `workers` spawned processes (torch and numba thread pools do not survive fork),
    one task per worker at a time, each worker with ``cores // workers`` torch and numba threads.

    Workers show no progress bars, except, with `show_first`, the first task's (when the parent
    shows them). A worker process that dies (killed, e.g. out of memory) stops the run with a
    GalaxygenError.
    """

    workers: int
    show_first: bool = False

    def run(self, tasks: Sequence[Task], done: Callable[[Outcome], None], step: Callable[[str, str], None]) -> None:
        ctx = mp.get_context("spawn")
        workers = min(self.workers, len(tasks))
        queue = list(tasks)
        show = self.show_first and progress_enabled()
        running: dict[cf.Future, Task] = {}
        with contextlib.ExitStack() as stack:
            events = stack.enter_context(ctx.Manager()).Queue() if any(t.steps > 1 for t in tasks) else None
            pool = stack.enter_context(cf.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init,
                                                              initargs=(max(1, cpu_cores() // workers),)))

            def submit() -> None:
                task = queue.pop(0)
                report = _Report(events, task.name) if events is not None else None
                first = show and task is tasks[0]
                running[pool.submit(call_interruptibly, _call_in_worker, task, report, first)] = task

            def drain() -> None:
                while events is not None and not events.empty():
                    step(*events.get())

            with sigint_ignored():  # the workers start now and keep Ctrl-C ignored outside a task
                for _ in range(workers):
                    submit()
            try:
                while running:
                    finished, _ = cf.wait(running, timeout=0.5, return_when=cf.FIRST_COMPLETED)
                    drain()
                    for f in finished:
                        done(_outcome(running.pop(f), f))
                        if queue:
                            submit()
            except BaseException as exc:
                if is_interrupt(exc):  # stop the tasks still running; keep the outcome of those that ended
                    stop_workers(running)
                    for f, task in running.items():
                        if not f.cancelled() and f.exception() is None:
                            done(Outcome(task, result=f.result()))
                raise


def _outcome(task: Task, future: cf.Future) -> Outcome:
    exc = future.exception()
    if isinstance(exc, BrokenProcessPool):
        raise GalaxygenError(f"{task.name}: a worker process died unexpectedly (killed, e.g. out of memory): "
                             f"{exc}") from exc
    return Outcome(task, error=exc) if exc is not None else Outcome(task, result=future.result())
