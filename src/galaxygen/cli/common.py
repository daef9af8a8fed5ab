"""Small helpers shared by the sub-command modules (printing JSON, common options)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from galaxygen.io import to_jsonable, write_json


def emit_json(obj: Any, out: str | None = None, overwrite: bool = True) -> None:
    """Print `obj` as JSON on stdout, or write it atomically to `out` ('-' = stdout)."""
    if out in (None, "-"):
        json.dump(to_jsonable(obj), sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
    else:
        write_json(out, obj, overwrite=overwrite)


def add_overwrite(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--overwrite", action="store_true",
                        help="replace existing output files (default: refuse)")


def add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto",
                        help="torch device: auto (CUDA when available), cpu, cuda, cuda:N (default: auto)")
