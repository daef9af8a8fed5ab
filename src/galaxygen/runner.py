"""One task per item, with one resume rule: run serially or in a local process pool, progress over
items, failures collected per item.

Used by `galaxygen simulate` (a box per parameter row), `galaxygen ingest` (a box per simulation),
`galaxygen predict` (a box per input box) and the demo (trainings side by side).

Shards (`plan`'s `shard` = (K, N), ``--shard K/N``): of the full, deterministic list of tasks this
process takes those of index i with i mod N = K - 1; N processes (a job array) together do the
whole list, each recording its outputs in its own part of the folder's record (``galaxygen.outputs``).

Resume rule (`plan`): a task whose `output` files all exist is complete and skipped. Outputs are
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
``galaxygen.interrupts`` describes; `DaskBackend` on a ``dask.distributed`` cluster (an optional
dependency, imported when used), one task per box, retried when it fails or its worker dies.
`Scale` (``--shard``, ``--dask``) chooses the shard and the backend.

A failure of one item (a GalaxygenError, or one of `ITEM_ERRORS`) is collected in the report under
the item's name and the other items still run; anything else (a bug, a Ctrl-C) stops the run: tasks
not started are dropped and running ones finish (or, for a Ctrl-C, are interrupted).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing as mp
import os
import secrets
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
    """One item: ``fn(*args)`` makes `output`, a file or a tuple of files (None: an item without a
    file, never skipped).

    A task of `steps` > 1 is called as ``fn(*args, report=report)`` and calls ``report(step_name)``
    as each of its steps completes (progress within the item). For a process pool, `fn` must be a
    module-level function and `args` picklable.
    """

    name: str
    fn: Callable[..., Any]
    args: tuple = ()
    output: Path | tuple[Path, ...] | None = None
    steps: int = 1

    @property
    def files(self) -> tuple[Path, ...]:
        """The output files (none for an item without a file)."""
        if self.output is None:
            return ()
        return tuple(Path(p) for p in self.output) if isinstance(self.output, tuple) else (Path(self.output),)


@dataclass(frozen=True)
class Outcome:
    """How a task ended: its result, or the exception it raised."""

    task: Task
    result: Any = None
    error: BaseException | None = None


@dataclass(frozen=True)
class Plan:
    """The tasks still to do and those skipped as complete, for `command` (None: record nothing);
    `part`: the part of the folders' records this process writes (None: the record itself)."""

    command: str | None
    todo: tuple[Task, ...]
    skipped: tuple[Task, ...]
    part: str | None = None


@dataclass(frozen=True)
class Scale:
    """Where the tasks run: `shard` (K, N) takes tasks i with i mod N = K - 1 (None: all); `dask`, the
    address of a Dask cluster (``local:W`` or ``tcp://host:8786``; None: this machine, `workers`
    processes)."""

    workers: int = 1
    shard: tuple[int, int] | None = None
    dask: str | None = None

    def __post_init__(self) -> None:
        if self.shard is not None and not 1 <= self.shard[0] <= self.shard[1]:
            raise GalaxygenError(f"--shard: expected K/N with 1 <= K <= N, got {self.shard[0]}/{self.shard[1]}")
        if self.workers < 1:
            raise GalaxygenError(f"--workers: expected >= 1, got {self.workers}")
        if self.dask:
            _import_distributed()  # say what to install before any work

    def backend(self, n_tasks: int) -> Backend:
        return DaskBackend(self.dask) if self.dask else local(self.workers, n_tasks)


def shard_part(shard: tuple[int, int] | None) -> str | None:
    """The record part written by shard (K, N): ``shard-K-of-N`` (None: no shard)."""
    return None if shard is None else f"shard-{shard[0]}-of-{shard[1]}"


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
         check: Callable[[Task], None] | None = None, shard: tuple[int, int] | None = None) -> Plan:
    """Apply the resume rule to `tasks`, or to shard (K, N) of them (module docstring); raises before
    any work when an output may not be replaced (`overwrite`) or `check` refuses an existing one."""
    names = [t.name for t in tasks]
    if len(set(names)) != len(names):
        raise GalaxygenError(f"tasks must have distinct names, got {names}")
    if shard is not None:
        tasks = [t for i, t in enumerate(tasks) if i % shard[1] == shard[0] - 1]
    part = shard_part(shard)
    if overwrite:
        for t in tasks:
            for f in t.files if command is not None else ():
                check_file(f, command, overwrite=True)
        return Plan(command, tuple(tasks), (), part)
    todo, skipped = [], []
    for t in tasks:
        complete = bool(t.files) and all(f.exists() for f in t.files)
        if complete and check is not None:
            check(t)
        (skipped if complete else todo).append(t)
    return Plan(command, tuple(todo), tuple(skipped), part)


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
            for f in task.files if planned.command is not None else ():
                record(f.parent, planned.command, [f.name], part=planned.part)
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


DASK_MISSING = "--dask needs Dask: pip install galaxygen[dask]  (or: pip install 'dask[distributed]')"


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError as exc:
        raise GalaxygenError(DASK_MISSING) from exc
    return distributed


def _call_on_dask(task: Task, threads: int | None) -> Any:
    """A task on a Dask worker: in a worker process of its own, no progress bars and (for a local
    cluster) `threads` torch and numba threads; its steps are not reported (progress is per task)."""
    if mp.current_process().name != "MainProcess":
        os.environ[NO_PROGRESS] = "1"
        if threads is not None:
            _worker_init(threads)
    return _call(task, lambda _what: None)


@dataclass(frozen=True)
class DaskBackend:
    """The tasks on a ``dask.distributed`` cluster, one Dask task per task, as many at once as the
    cluster has threads.

    `address`: ``local:W`` starts a LocalCluster of W worker processes (each running one task at a
    time with ``cores // W`` torch and numba threads; `processes` False: threads of this process,
    for tests), ``tcp://host:8786`` (or any scheduler address) uses a running cluster, whose workers'
    thread counts are theirs to set (OMP_NUM_THREADS, NUMBA_NUM_THREADS; docs/scale.md). A task
    that raises is retried `retries` times before it counts as failed; one whose worker dies is
    rescheduled by Dask (its ``distributed.scheduler.allowed-failures``, 3 by default) and, after
    that, stops the run with a GalaxygenError. Outputs are written atomically, so a killed task
    leaves no partial output and is simply redone.
    """

    address: str
    retries: int = 2
    processes: bool = True

    def _client(self, stack: contextlib.ExitStack) -> tuple[Any, int | None]:
        distributed = _import_distributed()
        if not self.address.startswith("local:"):
            return stack.enter_context(distributed.Client(self.address)), None
        try:
            workers = int(self.address[len("local:"):])
        except ValueError:
            workers = 0
        if workers < 1:
            raise GalaxygenError(f"--dask: expected local:W with W >= 1 workers, or a scheduler address such as "
                                 f"tcp://host:8786; got {self.address!r}")
        threads = max(1, cpu_cores() // workers)
        cluster = stack.enter_context(distributed.LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=self.processes, dashboard_address=None,
            silence_logs=40))
        return stack.enter_context(distributed.Client(cluster)), threads

    def run(self, tasks: Sequence[Task], done: Callable[[Outcome], None], step: Callable[[str, str], None]) -> None:
        distributed = _import_distributed()
        with contextlib.ExitStack() as stack:
            client, threads = self._client(stack)
            run_id = secrets.token_hex(4)
            futures = {client.submit(_call_on_dask, task, threads, key=f"galaxygen-{task.name}-{run_id}",
                                     pure=False, retries=self.retries): task for task in tasks}
            try:
                for future in distributed.as_completed(futures):
                    done(_dask_outcome(futures[future], future, distributed))
            except BaseException:
                client.cancel(list(futures))
                raise


def _dask_outcome(task: Task, future: Any, distributed: Any) -> Outcome:
    if future.status == "finished":
        return Outcome(task, result=future.result())
    exc = future.exception()
    if isinstance(exc, distributed.KilledWorker):
        raise GalaxygenError(f"{task.name}: Dask workers died running it again and again (killed, e.g. out of "
                             f"memory): {exc}") from exc
    return Outcome(task, error=exc)
