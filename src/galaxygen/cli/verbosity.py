"""The global `-v` / `-q` options and the one logging set-up of the `galaxygen` command.

The library reports through the ``galaxygen`` loggers (``logging.getLogger(__name__)``): warnings
about degenerate results (an HOD fit at a bound, an empty prediction, ...) and, with `-v`, what a
command is doing. The CLI prints them on stderr as ``galaxygen COMMAND: warning: ...``. Levels: default
WARNING, ``-v`` INFO, ``-vv`` DEBUG, ``-q`` ERROR (warnings are still written to metrics.json,
hod.json and the prediction boxes).
"""

from __future__ import annotations

import argparse
import logging
import sys

LOGGER = "galaxygen"


def add_verbosity(parser: argparse.ArgumentParser) -> None:
    """Add -v/--verbose and -q/--quiet to `parser` and to every sub-command parser below it, so that
    they work before or after the command name."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS,
                       help="say more (-v: what each step does, -vv: debugging detail)")
    group.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                       help="print errors only (warnings are still recorded in the output files)")
    for action in parser._actions:  # noqa: SLF001 - argparse offers no public walk of sub-parsers
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            for sub in dict.fromkeys(action.choices.values()):
                add_verbosity(sub)


def level(args: argparse.Namespace) -> int:
    """The logging level the parsed -v / -q options ask for."""
    if getattr(args, "quiet", False):
        return logging.ERROR
    verbose = getattr(args, "verbose", 0) or 0
    return logging.DEBUG if verbose >= 2 else logging.INFO if verbose == 1 else logging.WARNING


class _StderrHandler(logging.StreamHandler):
    """Writes to the current ``sys.stderr`` (looked up at each record, as print does)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ assigns it
        pass


def setup_logging(args: argparse.Namespace) -> None:
    """Route the ``galaxygen`` loggers to stderr at the level of -v / -q (once per command run;
    calling it again replaces the handler it installed)."""
    logger = logging.getLogger(LOGGER)
    for h in [h for h in logger.handlers if isinstance(h, _StderrHandler)]:
        logger.removeHandler(h)
    handler = _StderrHandler()
    handler.setFormatter(_Formatter(f"galaxygen {getattr(args, 'command', '')}".rstrip()))
    logger.addHandler(handler)
    logger.setLevel(level(args))


class _Formatter(logging.Formatter):
    """``<prefix>: warning: message``, as the CLI's ``error:`` lines."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def format(self, record: logging.LogRecord) -> str:
        return f"{self.prefix}: {record.levelname.lower()}: {record.getMessage()}"
