"""Box files (format version 1): one HDF5 file per simulated volume.

Layout (docs/box-format.md)::

    /                attrs format="galaxygen.box", version=1, box_size [Mpc/h], grid N,
                     redshift, source, suite, name
    /params          attrs omega_m, sigma_8, a_sn1, a_agn1, a_sn2, a_agn2, seed (as known)
    /meta            attrs: free provenance (str / number), optional
    /fields/dm           float32 (N,N,N)    DM particles per voxel
    /fields/galaxies     float32 (N,N,N)    galaxies per voxel (target or prediction; absent: DM-only)
    /fields/dm_velocity  float32 (3,N,N,N)  optional, mean DM velocity per voxel [km/s]
    /fields/galaxy_rate  float32 (N,N,N)    optional (predictions): expected galaxies per voxel, the
                                            mean of the realisations fields/galaxies is drawn from
    /catalogs/halos/*    columns of equal length n (pos (n,3) [Mpc/h], mass [Msun/h], ...)
    /catalogs/galaxies/* columns of equal length n (pos (n,3), stellar_mass, is_central, host_halo)

A prediction box (source "prediction") records in /meta what it was made from: the prediction
contract, ``galaxygen.prediction``.

Catalog columns share their first dimension, except the ragged member lists ``member_offset``
(n+1,) and ``member_pos`` (m,3) [Mpc/h] (CSR: the members of halo i are
``member_pos[member_offset[i]:member_offset[i+1]]``). Grid axes are (x, y, z); voxel i covers
[i L/N, (i+1) L/N). Readers check everything and fail with a message naming file and key.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import h5py
import hdf5plugin  # noqa: F401  (registers Blosc etc. for compressed inputs)
import numpy as np

from galaxygen.errors import BoxFormatError
from galaxygen.io import atomic_path

FORMAT = "galaxygen.box"
VERSION = 1
SOURCES = ("synthetic", "camels", "cmd", "nbody", "prediction")
PARAM_NAMES = ("omega_m", "sigma_8", "a_sn1", "a_agn1", "a_sn2", "a_agn2", "seed")
CATALOGS = ("halos", "galaxies")
RAGGED = ("member_offset", "member_pos")
_ROOT_ATTRS = {"format": str, "version": int, "box_size": float, "grid": int, "redshift": float,
               "source": str, "suite": str, "name": str}


@dataclass(frozen=True, eq=False)
class Box:
    """One simulated volume: DM and galaxy count grids, catalogues and parameters.

    Attributes
    ----------
    box_size : float
        Side of the periodic box [comoving Mpc/h].
    grid : int
        Voxels per side N.
    dm, galaxies : ndarray, float32 (N, N, N)
        DM particles per voxel; galaxies per voxel (truth or prediction).
    dm_velocity : ndarray, float32 (3, N, N, N) or None
        Mean DM velocity per voxel [km/s].
    params : mapping
        Cosmological / astrophysical parameters, keys from PARAM_NAMES.
    halos, galaxy_catalog : mapping of column name to ndarray, or None
    meta : mapping of str to str / number, provenance.
    galaxy_rate : ndarray, float32 (N, N, N), or None
        A prediction's expected galaxies per voxel (``galaxies`` is one realisation of it).
    """

    box_size: float
    grid: int
    redshift: float
    source: str
    suite: str
    name: str
    dm: np.ndarray
    galaxies: np.ndarray
    params: Mapping[str, float] = field(default_factory=dict)
    dm_velocity: np.ndarray | None = None
    halos: Mapping[str, np.ndarray] | None = None
    galaxy_catalog: Mapping[str, np.ndarray] | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)
    galaxy_rate: np.ndarray | None = None

    def __post_init__(self) -> None:
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731
        set_("dm", np.asarray(self.dm))
        set_("galaxies", np.asarray(self.galaxies))
        set_("box_size", float(self.box_size))
        set_("grid", int(self.grid))
        set_("redshift", float(self.redshift))
        set_("params", dict(self.params))
        set_("meta", dict(self.meta))
        if self.dm_velocity is not None:
            set_("dm_velocity", np.asarray(self.dm_velocity))
        if self.galaxy_rate is not None:
            set_("galaxy_rate", np.asarray(self.galaxy_rate))
        for attr in ("halos", "galaxy_catalog"):
            cat = getattr(self, attr)
            if cat is not None:
                set_(attr, {k: np.asarray(v) for k, v in dict(cat).items()})
        validate(self, where=f"box {self.name!r}")
        set_("params", {k: float(v) for k, v in self.params.items()})

    def replace(self, **changes: Any) -> "Box":
        """A copy with some attributes changed (validated again)."""
        return dataclasses.replace(self, **changes)

    @property
    def voxel_size(self) -> float:
        """Side of one voxel [Mpc/h]."""
        return self.box_size / self.grid


def _fail(where: str, key: str, msg: str) -> None:
    raise BoxFormatError(f"{where}: {key}: {msg}")


def _check_grid(where: str, key: str, arr: np.ndarray, shape: tuple[int, ...], counts: bool) -> None:
    if arr.dtype != np.float32:
        _fail(where, key, f"expected dtype float32, got {arr.dtype}")
    if arr.shape != shape:
        _fail(where, key, f"expected shape {shape}, got {arr.shape}")
    if not np.isfinite(arr).all():
        _fail(where, key, "contains NaN or infinite values")
    if counts and (arr < 0).any():
        _fail(where, key, "contains negative counts")


def _check_catalog(where: str, key: str, cat: Mapping[str, np.ndarray]) -> None:
    lengths = {name: len(col) for name, col in cat.items() if name not in RAGGED and np.ndim(col) >= 1}
    for name, col in cat.items():
        if name not in RAGGED and np.ndim(col) == 0:
            _fail(where, f"{key}/{name}", "expected a column (1-D or (n, k)), got a scalar")
    if len(set(lengths.values())) > 1:
        _fail(where, key, f"columns differ in length: {lengths}")
    if "pos" in cat:
        pos = cat["pos"]
        if pos.ndim != 2 or pos.shape[1] != 3:
            _fail(where, f"{key}/pos", f"expected shape (n, 3), got {pos.shape}")
        if not np.isfinite(pos).all():
            _fail(where, f"{key}/pos", "contains NaN or infinite values")
    if ("member_offset" in cat) != ("member_pos" in cat):
        _fail(where, key, "member_offset and member_pos go together")
    if "member_offset" in cat:
        off, mpos = cat["member_offset"], cat["member_pos"]
        n = next(iter(lengths.values()), 0)
        if off.ndim != 1 or len(off) != n + 1 or (len(off) and off[0] != 0) or (np.diff(off) < 0).any():
            _fail(where, f"{key}/member_offset", f"expected non-decreasing offsets of length n+1 = {n + 1}")
        if mpos.ndim != 2 or mpos.shape[1] != 3 or len(mpos) != (off[-1] if len(off) else 0):
            _fail(where, f"{key}/member_pos", f"expected shape ({off[-1] if len(off) else 0}, 3), got {mpos.shape}")


def validate(box: Box, where: str) -> None:
    """Check a Box against the format; raise BoxFormatError naming `where` and the key."""
    validate_parts(where, box_size=box.box_size, grid=box.grid, source=box.source, name=box.name,
                   dm=box.dm, galaxies=box.galaxies, dm_velocity=box.dm_velocity, params=box.params,
                   halos=box.halos, galaxy_catalog=box.galaxy_catalog, galaxy_rate=box.galaxy_rate)


def validate_parts(where: str, *, box_size: float, grid: int, source: str, name: str, dm: np.ndarray,
                   galaxies: np.ndarray, dm_velocity: np.ndarray | None, params: Mapping[str, Any],
                   halos: Mapping[str, np.ndarray] | None, galaxy_catalog: Mapping[str, np.ndarray] | None,
                   galaxy_rate: np.ndarray | None = None) -> None:
    """The checks of `validate` on loose parts (used by the reader before a Box exists)."""
    if not box_size > 0:
        _fail(where, "box_size", f"expected a positive size in Mpc/h, got {box_size}")
    if grid < 1:
        _fail(where, "grid", f"expected a positive voxel count per side, got {grid}")
    if source not in SOURCES:
        _fail(where, "source", f"expected one of {SOURCES}, got {source!r}")
    if not name:
        _fail(where, "name", "must not be empty")
    shape = (grid,) * 3
    _check_grid(where, "fields/dm", dm, shape, counts=True)
    _check_grid(where, "fields/galaxies", galaxies, shape, counts=True)
    if dm_velocity is not None:
        _check_grid(where, "fields/dm_velocity", dm_velocity, (3,) + shape, counts=False)
    if galaxy_rate is not None:
        _check_grid(where, "fields/galaxy_rate", galaxy_rate, shape, counts=True)
    for k, v in params.items():
        if k not in PARAM_NAMES:
            _fail(where, f"params/{k}", f"unknown parameter; allowed: {list(PARAM_NAMES)}")
        if isinstance(v, bool) or not isinstance(v, (int, float, np.number)):
            _fail(where, f"params/{k}", f"expected a number, got {v!r}")
    for key, cat in (("catalogs/halos", halos), ("catalogs/galaxies", galaxy_catalog)):
        if cat is not None:
            _check_catalog(where, key, cat)


def write_box(path: str | os.PathLike, box: Box, *, overwrite: bool = False,
              compression: str | None = "gzip", dm_only: bool = False) -> Path:
    """Write `box` to `path` atomically (temporary file, then rename); returns the path.

    Fails if `path` exists unless `overwrite`. Grids are chunked and gzip-compressed (level 1)
    unless `compression` is None. `dm_only`: no ``fields/galaxies`` (the box's galaxies must be zero).
    """
    validate(box, where=str(path))
    if dm_only and box.galaxies.any():
        _fail(str(path), "fields/galaxies", "a DM-only box holds no galaxies")
    opts: dict[str, Any] = {}
    if compression:
        opts = {"compression": compression, "compression_opts": 1, "shuffle": True}
    with atomic_path(path, overwrite=overwrite) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs.update({"format": FORMAT, "version": VERSION, "box_size": float(box.box_size),
                            "grid": int(box.grid), "redshift": float(box.redshift), "source": box.source,
                            "suite": box.suite, "name": box.name})
            f.create_group("params").attrs.update({k: float(v) for k, v in box.params.items()})
            f.create_group("meta").attrs.update(box.meta)
            g = f.create_group("fields")
            g.create_dataset("dm", data=box.dm, **opts)
            if not dm_only:
                g.create_dataset("galaxies", data=box.galaxies, **opts)
            if box.dm_velocity is not None:
                g.create_dataset("dm_velocity", data=box.dm_velocity, **opts)
            if box.galaxy_rate is not None:
                g.create_dataset("galaxy_rate", data=box.galaxy_rate, **opts)
            for name, cat in (("halos", box.halos), ("galaxies", box.galaxy_catalog)):
                if cat is not None:
                    c = f.require_group("catalogs").create_group(name)
                    for col, arr in cat.items():
                        c.create_dataset(col, data=arr, **(opts if np.ndim(arr) >= 1 and len(arr) > 0 else {}))
    return Path(path)


def _open(path: Path):
    if not path.exists():
        raise BoxFormatError(f"{path}: no such box file")
    if not path.is_file():
        raise BoxFormatError(f"{path}: not a file")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise BoxFormatError(f"{path}: not a readable HDF5 file ({exc})") from exc


def _root_attrs(f, where: str) -> dict[str, Any]:
    out = {}
    for key, typ in _ROOT_ATTRS.items():
        if key not in f.attrs:
            _fail(where, f"attribute '{key}'", "missing")
        val = f.attrs[key]
        val = val.decode() if isinstance(val, bytes) else val
        try:
            if (typ is str and not isinstance(val, str)) or (typ is int and float(val) != int(val)):
                raise TypeError
            out[key] = typ(val)
        except (TypeError, ValueError):
            _fail(where, f"attribute '{key}'", f"expected {typ.__name__}, got {val!r}")
    if out["format"] != FORMAT:
        _fail(where, "attribute 'format'", f"expected {FORMAT!r}, got {out['format']!r}")
    if out["version"] != VERSION:
        _fail(where, "attribute 'version'", f"expected {VERSION}, got {out['version']} (this galaxygen reads version {VERSION})")
    return out


def _attrs_dict(group) -> dict[str, Any]:
    """A group's attributes as Python values (bytes decoded, numpy scalars unwrapped)."""
    return {k: v.decode() if isinstance(v, bytes) else v.item() if isinstance(v, np.generic) else v
            for k, v in group.attrs.items()}


def _read_dataset(f, key: str, where: str) -> np.ndarray:
    if key not in f:
        _fail(where, key, "missing")
    obj = f[key]
    if not isinstance(obj, h5py.Dataset):
        _fail(where, key, "expected a dataset, found a group")
    try:
        return obj[()]
    except OSError as exc:
        _fail(where, key, f"cannot be read ({exc})")


def _read_catalog(f, key: str, where: str) -> dict[str, np.ndarray] | None:
    if key not in f:
        return None
    return {col: _read_dataset(f, f"{key}/{col}", where) for col in f[key]}


@dataclass(frozen=True)
class BoxHeader:
    """A box file's header, read without its grids or catalogues.

    Attributes: the root attributes (`name`, `suite`, `source`, `grid` N, `box_size` [Mpc/h],
    `redshift`), `params` and `meta` (as in `Box`), `fields` (the grids it holds, e.g. ("dm",
    "dm_velocity", "galaxies")) and `catalogs` (catalogue name -> its column names).
    """

    path: Path
    name: str
    suite: str
    source: str
    grid: int
    box_size: float
    redshift: float
    params: Mapping[str, float]
    meta: Mapping[str, Any]
    fields: tuple[str, ...]
    catalogs: Mapping[str, tuple[str, ...]]

    @property
    def key(self) -> tuple[str, str]:
        """(suite, name): a box's identity (names are unique within a suite)."""
        return (self.suite, self.name)


def _header(f, path: Path) -> BoxHeader:
    a = _root_attrs(f, str(path))
    return BoxHeader(path=path, name=a["name"], suite=a["suite"], source=a["source"], grid=a["grid"],
                     box_size=a["box_size"], redshift=a["redshift"],
                     params=_attrs_dict(f["params"]) if "params" in f else {},
                     meta=_attrs_dict(f["meta"]) if "meta" in f else {},
                     fields=tuple(f["fields"]) if "fields" in f else (),
                     catalogs={c: tuple(f[f"catalogs/{c}"]) for c in CATALOGS if f"catalogs/{c}" in f})


def read_header(path: str | os.PathLike) -> BoxHeader:
    """The header of a box file (`BoxHeader`), without reading its grids.

    Raises BoxFormatError naming the file (and the attribute) for a missing or non-HDF5 file, a
    wrong format or version, or a missing or mistyped root attribute.
    """
    path = Path(path)
    with _open(path) as f:
        return _header(f, path)


def read_box(path: str | os.PathLike, *, catalogs: bool = True, velocity: bool = True,
             allow_dm_only: bool = False) -> Box:
    """Read and validate a box file.

    Parameters
    ----------
    path : file path
    catalogs : bool
        Also read ``catalogs/halos`` and ``catalogs/galaxies`` when present.
    velocity : bool
        Also read ``fields/dm_velocity`` when present.
    allow_dm_only : bool
        Read a DM-only box (no ``fields/galaxies``: predicted, never trained on or scored) as zero galaxies.

    Raises
    ------
    BoxFormatError
        Naming the file and the key for a missing file, non-HDF5 file, wrong format or version,
        a missing key, a wrong shape or dtype, NaN or negative counts.
    """
    path = Path(path)
    where = str(path)
    with _open(path) as f:
        h = _header(f, path)
        dm = _read_dataset(f, "fields/dm", where)
        if "fields/galaxies" not in f and not allow_dm_only:
            _fail(where, "fields/galaxies", "missing: a DM-only box can be predicted, not trained on or scored")
        gal = _read_dataset(f, "fields/galaxies", where) if "fields/galaxies" in f else np.zeros_like(dm)
        vel = _read_dataset(f, "fields/dm_velocity", where) if velocity and "fields/dm_velocity" in f else None
        rate = _read_dataset(f, "fields/galaxy_rate", where) if "fields/galaxy_rate" in f else None
        halos = _read_catalog(f, "catalogs/halos", where) if catalogs else None
        gcat = _read_catalog(f, "catalogs/galaxies", where) if catalogs else None
    validate_parts(where, box_size=h.box_size, grid=h.grid, source=h.source, name=h.name, dm=dm, galaxies=gal,
                   dm_velocity=vel, params=h.params, halos=halos, galaxy_catalog=gcat, galaxy_rate=rate)
    return Box(box_size=h.box_size, grid=h.grid, redshift=h.redshift, source=h.source, suite=h.suite, name=h.name,
               dm=dm, galaxies=gal, params=h.params, dm_velocity=vel, halos=halos, galaxy_catalog=gcat, meta=h.meta,
               galaxy_rate=rate)


def read_info(path: str | os.PathLike) -> dict[str, Any]:
    """What a box holds, without keeping its grids: header, params, counts, optional parts.

    Returns a JSON-ready dict with stable keys.
    """
    box = read_box(path, catalogs=True, velocity=False, allow_dm_only=True)
    fields = read_header(path).fields

    def cat_info(cat):
        if cat is None:
            return None
        n = len(next((v for k, v in cat.items() if k not in RAGGED), []))
        return {"count": int(n), "columns": sorted(cat)}
    return {"path": str(path), "name": box.name, "suite": box.suite, "source": box.source,
            "box_size": box.box_size, "grid": box.grid, "redshift": box.redshift, "params": dict(box.params),
            "meta": dict(box.meta), "n_dm_particles": float(box.dm.sum(dtype=np.float64)),
            "n_galaxies": float(box.galaxies.sum(dtype=np.float64)),
            "occupied_voxels": int((box.galaxies > 0).sum()),
            "has_dm_velocity": "dm_velocity" in fields, "dm_only": "galaxies" not in fields,
            "expected_galaxies": (float(box.galaxy_rate.sum(dtype=np.float64))
                                  if box.galaxy_rate is not None else None),
            "halos": cat_info(box.halos), "galaxies_catalog": cat_info(box.galaxy_catalog)}


def list_boxes(paths: list[str | os.PathLike] | str | os.PathLike) -> list[Path]:
    """Expand box paths and directories (all ``*.h5`` inside, sorted by name) into file paths."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(p.glob("*.h5"))
            if not found:
                raise BoxFormatError(f"{p}: directory holds no box files (*.h5)")
            out.extend(found)
        else:
            if not p.exists():
                raise BoxFormatError(f"{p}: no such box file or directory")
            out.append(p)
    return out
