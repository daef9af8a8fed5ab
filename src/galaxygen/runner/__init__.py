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

from galaxygen.runner.cluster import DaskBackend
from galaxygen.runner.pool import ProcessPool, local
from galaxygen.runner.scale import Scale
from galaxygen.runner.tasks import (ITEM_ERRORS, Backend, Outcome, Plan, RunReport, Serial, Task, describe, plan, run,
                                    shard_part)

__all__ = ["ITEM_ERRORS", "Backend", "DaskBackend", "Outcome", "Plan", "ProcessPool", "RunReport", "Scale", "Serial",
           "Task", "describe", "local", "plan", "run", "shard_part"]
