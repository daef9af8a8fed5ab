"""The `galaxygen` command: one entry point; per sub-command a parser module and a work module.

``galaxygen.cli.parsers.<command>`` adds the command's options with ``register(subparsers)`` and
names the function that runs it (:func:`~galaxygen.cli.parsers.common.calls`); parsers import no
science, so ``galaxygen --help`` is quick. ``galaxygen.cli.<command>`` holds that function, which only
turns the parsed options into a call of the library; :func:`main` imports it when the command runs.
Errors meant for the user (GalaxygenError) are printed without a traceback, exit status 2; a
Ctrl-C (however it surfaces) prints one line, exit status 130. Warnings and progress notes go
through Python's logging, set up once here (`-v` / `-q`, see :mod:`galaxygen.cli.verbosity`).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from galaxygen import __version__
from galaxygen.cli.parsers import demo, evaluate, generate, hod, info, ingest, power, predict, simulate, train
from galaxygen.cli.verbosity import add_verbosity, setup_logging
from galaxygen.errors import GalaxygenError
from galaxygen.interrupts import is_interrupt

# Sub-command parsers in the order `galaxygen --help` lists them.
COMMANDS = [info, power, simulate, ingest, hod, train, predict, generate, evaluate, demo]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="galaxygen",
        description="Fast galaxy generation from dark-matter fields: simulate, fit the HOD baseline, "
                    "train networks, predict and evaluate. Lengths in Mpc/h, masses in Msun/h.")
    parser.add_argument("--version", action="version", version=f"galaxygen {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in COMMANDS:
        module.register(sub)
    add_verbosity(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args)
    module, function = args.call
    try:
        result = getattr(importlib.import_module(module), function)(args)
    except GalaxygenError as exc:
        print(f"galaxygen {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BaseException as exc:  # a Ctrl-C, also as numba's SystemError from inside a kernel
        if not is_interrupt(exc):
            raise
        print(f"galaxygen {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)
