"""Reading Gadget/Arepo HDF5 outputs (CAMELS snapshots and Subfind catalogues) with clear errors.

Every failure (a missing file, a truncated or corrupt file, a missing key) raises `IngestError`
with a message that names the file and the key. Blosc-compressed files (CAMELS N-body runs) are
readable because `hdf5plugin` is imported before any file is opened.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterable

import h5py
import hdf5plugin  # noqa: F401  (registers Blosc, used by the CAMELS N-body snapshots)
import numpy as np

from galaxygen.errors import GalaxygenError


class IngestError(GalaxygenError):
    """A simulation output is missing, unreadable, incomplete or in unexpected units."""


def open_h5(path: str | Path):
    """Open an HDF5 file read-only, with the compression filters of `hdf5plugin` registered."""
    path = Path(path)
    if not path.is_file():
        raise IngestError(f"{path}: no such file")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise IngestError(f"{path}: not a readable HDF5 file, truncated or corrupt ({exc})") from exc


def read_attrs(path: Path, group: str, keys: Iterable[str]) -> dict[str, Any]:
    """Attributes `keys` of `group` in file `path` (arrays stay arrays, scalars become Python)."""
    with open_h5(path) as f:
        if group not in f:
            raise IngestError(f"{path}: group '{group}' missing")
        attrs = f[group].attrs
        out = {}
        for key in keys:
            if key not in attrs:
                raise IngestError(f"{path}: attribute '{group}/{key}' missing")
            val = attrs[key]
            out[key] = val.item() if isinstance(val, np.generic) else val
        return out


def read_dataset(f, key: str, rows: slice | None = None) -> np.ndarray:
    """Dataset `key` of the open file `f` (or a slice of its rows), naming file and key on error."""
    where = f.filename
    if key not in f:
        raise IngestError(f"{where}: dataset '{key}' missing")
    obj = f[key]
    if not isinstance(obj, h5py.Dataset):
        raise IngestError(f"{where}: '{key}' is a group, expected a dataset")
    try:
        return obj[rows] if rows is not None else obj[()]
    except (OSError, ValueError) as exc:
        raise IngestError(f"{where}: dataset '{key}' cannot be read, truncated or corrupt ({exc})") from exc


def file_parts(first: Path) -> list[Path]:
    """All files of a possibly multi-file output, given its first file.

    ``name.hdf5`` is a single file; ``name.0.hdf5`` is part 0 of ``Header/NumFilesPerSnapshot``
    (snapshots) or ``Header/NumFiles`` (Subfind catalogues) parts ``name.<k>.hdf5``; a missing part
    raises IngestError.
    """
    m = re.fullmatch(r"(.*)\.0\.hdf5", first.name)
    if m is None:
        return [first]
    with open_h5(first) as f:
        header = f["Header"].attrs if "Header" in f else {}
        n = None
        for key in ("NumFilesPerSnapshot", "NumFiles"):
            if key in header:
                n = int(np.asarray(header[key]).item())
                break
    if n is None:
        raise IngestError(f"{first}: attribute 'Header/NumFilesPerSnapshot' (or 'Header/NumFiles') missing "
                          f"in a multi-file output")
    parts = [first.with_name(f"{m.group(1)}.{k}.hdf5") for k in range(n)]
    missing = [str(p) for p in parts if not p.is_file()]
    if missing:
        raise IngestError(f"{first}: multi-file output of {n} parts, missing {', '.join(missing)}")
    return parts


def find_output(folder: Path, stems: Iterable[str], number: int) -> Path | None:
    """The first file of output `number` under `folder`, trying each stem (e.g. ``snapshot``, ``snap``).

    Looks for ``<stem>_NNN.hdf5``, ``<stem>_NNN.0.hdf5`` and the same inside ``snapdir_NNN/`` or
    ``groups_NNN/``; returns None if none exists.
    """
    tag = f"{number:03d}"
    for sub in ("", f"snapdir_{tag}", f"groups_{tag}"):
        base = folder / sub if sub else folder
        for stem in stems:
            for name in (f"{stem}_{tag}.hdf5", f"{stem}_{tag}.0.hdf5"):
                if (base / name).is_file():
                    return base / name
    return None


def output_numbers(folder: Path, stems: Iterable[str]) -> list[int]:
    """Output numbers present in `folder` (and its ``snapdir_NNN`` folders) for the given stems."""
    pat = re.compile(r"(?:%s)_(\d{3})(?:\.0)?\.hdf5" % "|".join(map(re.escape, stems)))
    found = set()
    if folder.is_dir():
        for p in list(folder.iterdir()) + list(folder.glob("snapdir_*/*")):
            m = pat.fullmatch(p.name)
            if m:
                found.add(int(m.group(1)))
    return sorted(found)


def concat_columns(parts: list[Path], group: str, keys: Iterable[str],
                   optional: Iterable[str] = ()) -> dict[str, np.ndarray]:
    """Columns `keys` of `group` concatenated over the parts of a (multi-file) Subfind catalogue.

    A part whose group is absent or empty (no halos in that file) contributes nothing. Keys in
    `optional` are returned only when every non-empty part has them.
    """
    keys, optional = list(keys), list(optional)
    cols: dict[str, list[np.ndarray]] = {k: [] for k in keys + optional}
    have_optional = {k: True for k in optional}
    seen_any = False
    for part in parts:
        with open_h5(part) as f:
            if group not in f or len(f[group].keys()) == 0:
                continue
            seen_any = True
            for k in keys:
                cols[k].append(read_dataset(f, f"{group}/{k}"))
            for k in optional:
                if f"{group}/{k}" in f:
                    cols[k].append(read_dataset(f, f"{group}/{k}"))
                else:
                    have_optional[k] = False
    if not seen_any:
        return {}
    out = {k: np.concatenate(cols[k]) for k in keys}
    out.update({k: np.concatenate(cols[k]) for k in optional if have_optional[k] and cols[k]})
    return out
