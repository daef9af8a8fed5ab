"""Options shared by several sub-commands, and `calls`: which function a sub-command runs."""

from __future__ import annotations

import argparse


def calls(parser: argparse.ArgumentParser, module: str, function: str = "run") -> None:
    """Make `parser`'s command run ``module.function(args)``.

    `module` is imported only when the command runs (:func:`galaxygen.cli.main`), so that building
    the parsers (and ``galaxygen --help``) imports no torch, numba or scipy.
    """
    parser.set_defaults(call=(module, function))


def add_overwrite(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--overwrite", action="store_true",
                        help="replace existing output files (default: refuse)")


def add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto",
                        help="torch device: auto (CUDA when available), cpu, cuda, cuda:N (default: auto)")
