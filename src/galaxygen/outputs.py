"""What galaxygen wrote into a folder: a record, so that `--overwrite` replaces only galaxygen's own outputs.

Every command that writes into a folder notes, in ``FOLDER/.galaxygen-outputs.json``, the entries it
wrote there (top-level file names, or sub-folders it created whole) and which command wrote them::

    {"format": "galaxygen.outputs", "version": 1, "written": {"CV_0.h5": "simulate", ...}}

`--overwrite` replaces or removes an existing entry only when this record lists it as written by
the same command; anything else (a user's notes, data, a file another command wrote, a folder with
no record) is refused with one line naming the folder, and nothing is removed.

Three ways to write a folder, one per kind of output:

* :func:`staged_folder` - an output that is a folder as a whole (an evaluation report, a set of
  predictions): written into a temporary folder beside the target and renamed into place at the
  end, so an interrupted command leaves no folder and can simply be run again;
* :func:`claim_folder` - a folder written in place over a long time and meant to be continued
  (a training run, the demo): the entries it will write are recorded when it starts;
* :func:`check_file` + :func:`record` - files added one at a time to a folder that is resumed box by
  box (simulate, ingest) or that holds other things (hod.json).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import Iterable, Iterator

from galaxygen.errors import GalaxygenError
from galaxygen.io import check_writable, new_temp_folder, write_json

RECORD = ".galaxygen-outputs.json"
FORMAT = "galaxygen.outputs"
VERSION = 1


def written_by(folder: str | os.PathLike) -> dict[str, str]:
    """``{entry name: command}`` for what galaxygen recorded writing in `folder` ({} if nothing or unreadable)."""
    try:
        data = json.loads((Path(folder) / RECORD).read_text())
    except (OSError, ValueError):
        return {}
    written = data.get("written") if isinstance(data, dict) and data.get("format") == FORMAT else None
    return {str(k): str(v) for k, v in written.items()} if isinstance(written, dict) else {}


def record(folder: str | os.PathLike, command: str, names: Iterable[str]) -> None:
    """Add the top-level entries `names` of `folder` to its record, as written by `command`."""
    folder = Path(folder)
    written = {**written_by(folder), **{str(n): command for n in names}}
    write_json(folder / RECORD, {"format": FORMAT, "version": VERSION, "written": written}, overwrite=True)


def foreign(folder: str | os.PathLike, command: str) -> list[str]:
    """Entries of `folder` (sorted names) that its record does not list as written by `command`."""
    folder = Path(folder)
    mine = {n for n, c in written_by(folder).items() if c == command}
    return sorted(p.name for p in folder.iterdir() if p.name != RECORD and p.name not in mine)


def _refuse(folder: Path, names: list[str], command: str) -> GalaxygenError:
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    return GalaxygenError(f"{folder}: --overwrite refused: {shown} not written there by galaxygen {command} "
                          f"(no entry in {RECORD}); move {'it' if len(names) == 1 else 'them'} away yourself "
                          f"or choose another folder")


def check_file(path: str | os.PathLike, command: str, overwrite: bool) -> Path:
    """Return `path` as a Path if `command` may write it: it does not exist, or `overwrite` is given and
    the folder's record lists it as written by `command`; a GalaxygenError otherwise."""
    path = check_writable(path, overwrite)
    if path.exists() and path.name not in {n for n, c in written_by(path.parent).items() if c == command}:
        raise _refuse(path.parent, [path.name], command)
    return path


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def _is_empty(folder: Path) -> bool:
    return not any(p.name != RECORD for p in folder.iterdir())


def _check_replaceable(folder: Path, command: str, overwrite: bool) -> bool:
    """Whether `folder` exists with content, after checking that `command` may replace it (else raise)."""
    if folder.exists() and not folder.is_dir():
        raise GalaxygenError(f"{folder}: exists and is not a folder")
    if not folder.exists() or _is_empty(folder):
        return False
    if not overwrite:
        raise GalaxygenError(f"{folder}: already exists and is not empty (pass --overwrite to replace what "
                             f"galaxygen {command} wrote there, or choose another folder)")
    names = foreign(folder, command)
    if names:
        raise _refuse(folder, names, command)
    return True


def claim_folder(folder: str | os.PathLike, command: str, names: Iterable[str], *, overwrite: bool) -> Path:
    """Make `folder` the in-place output of `command`, which will write the top-level entries `names`.

    The folder must be new or empty, or (with `overwrite`) hold only what `command` wrote there,
    which is then removed. The record lists `names` from now on, so an interrupted run can be
    replaced with `--overwrite` later. Returns the folder.
    """
    folder = Path(folder)
    if _check_replaceable(folder, command, overwrite):
        for name, by in written_by(folder).items():
            if by == command and ((folder / name).exists() or (folder / name).is_symlink()):
                _remove(folder / name)
    folder.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        (folder / RECORD).unlink()
    record(folder, command, names)
    return folder


@contextlib.contextmanager
def staged_folder(folder: str | os.PathLike, command: str, *, overwrite: bool) -> Iterator[Path]:
    """Yield a new temporary folder beside `folder`; on success it becomes `folder`, whole.

    Checked first: `folder` must be new or empty, or (with `overwrite`) hold only what `command`
    wrote there. On success every entry of the temporary folder is recorded as `command`'s and the
    folder is renamed into place (a replaced folder is removed only then). On any exception,
    KeyboardInterrupt included, the temporary folder is removed and `folder` is left as it was.
    """
    folder = Path(folder)
    _check_replaceable(folder, command, overwrite)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = new_temp_folder(folder)
    try:
        yield tmp
        record(tmp, command, [p.name for p in tmp.iterdir() if p.name != RECORD])
        old = None
        if folder.exists():
            if _check_replaceable(folder, command, overwrite):
                old = new_temp_folder(folder, ".old")
                os.replace(folder, old / folder.name)
            else:
                shutil.rmtree(folder)  # empty, or holding only an empty record
        os.replace(tmp, folder)
        if old is not None:
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
