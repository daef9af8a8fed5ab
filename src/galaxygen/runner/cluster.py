"""Tasks on a ``dask.distributed`` cluster (an optional dependency, imported when used)."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import secrets
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from galaxygen.device import cpu_cores
from galaxygen.errors import GalaxygenError
from galaxygen.progress import NO_PROGRESS
from galaxygen.runner.pool import worker_init
from galaxygen.runner.tasks import Outcome, Task, call

DASK_MISSING = "--dask needs Dask: pip install galaxygen[dask]  (or: pip install 'dask[distributed]')"


def import_distributed() -> Any:
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
            worker_init(threads)
    return call(task, lambda _what: None)


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
        distributed = import_distributed()
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
        distributed = import_distributed()
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
