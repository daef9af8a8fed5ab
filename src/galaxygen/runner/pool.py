"""Tasks on this machine: `ProcessPool` (spawned workers sharing the CPU cores) or `Serial`."""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing as mp
import os
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numba
import torch

from galaxygen.device import cpu_cores
from galaxygen.errors import GalaxygenError
from galaxygen.interrupts import call_interruptibly, is_interrupt, sigint_ignored, stop_workers
from galaxygen.progress import NO_PROGRESS, enabled as progress_enabled
from galaxygen.runner.tasks import Backend, Outcome, Serial, Task, call

def local(workers: int, n_tasks: int) -> Backend:
    """`Serial` for one worker or at most one task, else a `ProcessPool` of ``min(workers, n_tasks)``."""
    n = min(workers, n_tasks)
    return Serial() if n <= 1 else ProcessPool(n)


def worker_init(threads: int) -> None:
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
    return call(task, report)


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
            pool = stack.enter_context(cf.ProcessPoolExecutor(workers, mp_context=ctx, initializer=worker_init,
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
