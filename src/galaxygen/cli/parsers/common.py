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


def shard_option(text: str) -> tuple[int, int]:
    """``"K/N"`` -> (K, N) with 1 <= K <= N (an argparse type)."""
    k, sep, n = text.partition("/")
    if not (sep and k.strip().isdigit() and n.strip().isdigit()) or not 1 <= int(k) <= int(n):
        raise argparse.ArgumentTypeError(f"expected K/N with 1 <= K <= N (e.g. 3/10), got {text!r}")
    return int(k), int(n)


def add_scale(parser: argparse.ArgumentParser) -> None:
    """``--shard K/N`` and ``--dask ADDRESS``, shared by simulate, ingest and predict (docs/scale.md)."""
    parser.add_argument("--shard", type=shard_option, default=None, metavar="K/N",
                        help="do only boxes i with i mod N = K-1 of the full list (a job array runs K = 1..N "
                             "into the same folder; resubmitting a shard skips its finished boxes)")
    parser.add_argument("--dask", default=None, metavar="ADDRESS",
                        help="run one task per box on Dask: local:W (a local cluster of W worker processes) or "
                             "the scheduler address of a running cluster, tcp://host:8786 (needs "
                             "pip install galaxygen[dask])")
