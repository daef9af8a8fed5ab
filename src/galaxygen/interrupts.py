"""Ctrl-C: recognised however it surfaces, and handled by the parent when work runs in worker processes.

A Ctrl-C inside a numba kernel comes back as a ``SystemError`` ("returned a result with an exception
set") whose cause is the KeyboardInterrupt; :func:`is_interrupt` sees through that. Worker processes
started under :func:`sigint_ignored` inherit an ignored SIGINT, so a Ctrl-C while they start or wait
for work prints nothing there; :func:`call_interruptibly` lets a Ctrl-C stop the work itself (its
atomic writes then clean up) and hands the parent a plain KeyboardInterrupt; after a Ctrl-C the
parent calls :func:`stop_workers`, which interrupts the jobs still running (also when the Ctrl-C
reached only the parent, or came while a worker was still starting).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import os
import signal
import threading
from typing import Any, Callable, Iterable, Iterator


def is_interrupt(exc: BaseException | None) -> bool:
    """Whether `exc` is a KeyboardInterrupt or was raised from (or while handling) one."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


@contextlib.contextmanager
def sigint_ignored() -> Iterator[None]:
    """Ignore SIGINT in this process while the block runs (start worker processes in it: they keep
    it ignored). A no-op outside the main thread, where signal handlers cannot be set."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def call_interruptibly(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` in a worker started under :func:`sigint_ignored`, with Ctrl-C raising
    KeyboardInterrupt while it runs (ignored again afterwards). An exception caused by a Ctrl-C
    becomes a plain KeyboardInterrupt, which survives the trip back to the parent process."""
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        return fn(*args)
    except Exception as exc:
        if is_interrupt(exc):
            raise KeyboardInterrupt from None
        raise
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def stop_workers(futures: Iterable[cf.Future], every: float = 0.2) -> None:
    """After a Ctrl-C in the parent: cancel the jobs not started and interrupt (SIGINT to this process's
    children, every `every` seconds) those running under :func:`call_interruptibly` until all are done.
    Idle workers started under :func:`sigint_ignored` and multiprocessing's manager process ignore it."""
    futures = list(futures)
    for f in futures:
        f.cancel()
    while not all(f.done() for f in futures):
        for child in multiprocessing.active_children():
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGINT)
        cf.wait(futures, timeout=every)
