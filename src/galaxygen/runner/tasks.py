"""Tasks, the resume rule, and running a plan on a backend (see the package docstring)."""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

from galaxygen.errors import GalaxygenError
from galaxygen.interrupts import is_interrupt
from galaxygen.outputs import check_file, record
from galaxygen.progress import progress

ITEM_ERRORS = (GalaxygenError, OSError, KeyError, ValueError, IndexError, TypeError, RuntimeError, MemoryError)


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


def run(planned: Plan, *, backend: Backend | None = None, desc: str | None = None,
        unit: str = "item") -> RunReport:
    """Run the tasks of `planned` on `backend` (default: `Serial`), with a progress bar over
    their steps when `desc` is given; returns the report (failures of single items collected)."""
    report = RunReport(skipped=[t.name for t in planned.skipped])
    backend = backend or Serial()
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


def call(task: Task, report: Callable[[str], None]) -> Any:
    return task.fn(*task.args, report=report) if task.steps > 1 else task.fn(*task.args)


class Serial:
    """The tasks one after another in this process."""

    def run(self, tasks: Sequence[Task], done: Callable[[Outcome], None], step: Callable[[str, str], None]) -> None:
        for task in tasks:
            try:
                result = call(task, lambda what, name=task.name: step(name, what))
            except Exception as exc:
                if is_interrupt(exc):
                    raise
                done(Outcome(task, error=exc))
            else:
                done(Outcome(task, result=result))
