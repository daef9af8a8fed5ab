"""Atomic output: write to a temporary file beside the target, then rename.

A crash never leaves a half-written box, checkpoint or report, and nothing that exists is
overwritten unless the caller asks for it.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from galaxygen.errors import GalaxygenError


def check_writable(path: str | os.PathLike, overwrite: bool) -> Path:
    """Return `path` as a Path; fail if it exists and `overwrite` is False."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise GalaxygenError(f"{path}: already exists (pass --overwrite to replace it)")
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto `path` on success.

    The file gets the permissions of any new file (0666 less the umask). On an exception the
    temporary file is removed and `path` is left as it was.
    """
    path = check_writable(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = _new_temp_file(path)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def new_temp_folder(path: Path, suffix: str = ".tmp") -> Path:
    """Create an empty, uniquely named folder beside `path`, with mode 0777 less the umask.

    (tempfile.mkdtemp would create it 0700 whatever the umask.)
    """
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}{suffix}")
        try:
            os.mkdir(tmp, 0o777)
        except FileExistsError:
            continue
        return tmp


def _new_temp_file(path: Path) -> Path:
    """Create an empty, uniquely named file beside `path`, with mode 0666 less the umask.

    (tempfile.mkstemp would create it 0600 whatever the umask.)
    """
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp


def write_text(path: str | os.PathLike, text: str, *, overwrite: bool = False) -> Path:
    """Write a text file atomically."""
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json(path: str | os.PathLike, obj: Any, *, overwrite: bool = False) -> Path:
    """Write JSON atomically (sorted keys, indented, NaN written as null)."""
    return write_text(path, json.dumps(to_jsonable(obj), indent=2, sort_keys=True) + "\n",
                      overwrite=overwrite)


def to_jsonable(obj: Any) -> Any:
    """Convert numpy / torch scalars and arrays, tuples and paths to plain JSON types."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "detach"):  # torch tensor
        obj = obj.detach().cpu().numpy()
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
