"""Where a CAMELS simulation's files are, in either directory layout.

Before 2024 (z = 0 is snapshot 033)::

    Sims/<Suite>/<Set>_<i>/snap_033.hdf5            (or snap_033.0.hdf5, snap_033.1.hdf5, ...)
    Sims/<Suite>/<Set>_<i>/fof_subhalo_tab_033.hdf5 (or FOF_Subfind/<Suite>/<Set>_<i>/...)

Since the 2024 reorganisation (z = 0 is snapshot 090)::

    Sims/<Suite>/L25n256/<Set>/<Set>_<i>/snapshot_090.hdf5
    FOF_Subfind/<Suite>/L25n256/<Set>/<Set>_<i>/groups_090.hdf5

The N-body twin of a hydro run is the simulation of the same name in suite ``<Suite>_DM``.
Only the twin's snapshot and the hydro run's Subfind catalogue are needed (the hydro snapshot,
the largest file, is never read). `ROOT` is the CAMELS root (holding ``Sims/``) or ``Sims/`` itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from galaxygen.sources.camels.hdf5 import IngestError, find_output, open_h5, output_numbers

SNAP_STEMS = ("snapshot", "snap")
GROUP_STEMS = ("groups", "fof_subhalo_tab")
Z0_SNAPSHOTS = (90, 33)  # z = 0 in the 2024 layout, then in the older one


@dataclass(frozen=True)
class SimFiles:
    """The files of one CAMELS simulation pair (hydro run + N-body twin) at one snapshot."""

    name: str                 # e.g. "CV_0"
    snapshot: int             # snapshot number (090 / 033 at z = 0)
    redshift: float           # from the twin snapshot's header
    layout: str               # "2024" or "pre-2024"
    dm_snapshot: Path         # first file of the twin's snapshot
    dm_groups: Path | None    # first file of the twin's Subfind catalogue, None if absent
    hydro_groups: Path        # first file of the hydro run's Subfind catalogue


def _sims_bases(root: Path) -> list[Path]:
    return [root / "Sims", root]


def _groups_bases(root: Path) -> list[Path]:
    return [root / "FOF_Subfind", root.parent / "FOF_Subfind", root / "Sims", root]


def _candidates(bases: list[Path], suite: str, set_name: str, name: str) -> list[tuple[Path, str]]:
    out = []
    for base in bases:
        out.append((base / suite / "L25n256" / set_name / name, "2024"))
        out.append((base / suite / set_name / name, "pre-2024"))
        out.append((base / suite / name, "pre-2024"))
    return out


def discover(root: Path, suite: str, set_name: str) -> list[str]:
    """Names of the simulations of set `set_name` present for the hydro `suite` (natural order)."""
    pat = re.compile(rf"{re.escape(set_name)}_\w+")
    names = set()
    for base in _sims_bases(root) + _groups_bases(root):
        for folder in (base / suite / "L25n256" / set_name, base / suite / set_name, base / suite):
            if folder.is_dir():
                names.update(p.name for p in folder.iterdir() if p.is_dir() and pat.fullmatch(p.name))
    key = lambda s: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]  # noqa: E731
    return sorted(names, key=key)


def sim_folders(root: str | Path, suite: str, set_name: str, name: str) -> list[Path]:
    """The existing folders of simulation `name` under ``Sims/``: the hydro run's, then its twin's."""
    root = Path(root)
    return [folder for s in (suite, f"{suite}_DM")
            for folder, _ in _candidates(_sims_bases(root), s, set_name, name) if folder.is_dir()]


def _find(cands: list[tuple[Path, str]], stems: tuple[str, ...], number: int) -> tuple[Path, str] | None:
    for folder, layout in cands:
        hit = find_output(folder, stems, number)
        if hit is not None:
            return hit, layout
    return None


def _redshift(path: Path) -> float:
    with open_h5(path) as f:
        if "Header" not in f or "Redshift" not in f["Header"].attrs:
            raise IngestError(f"{path}: attribute 'Header/Redshift' missing")
        return float(f["Header"].attrs["Redshift"])


def _choose_snapshot(cands: list[tuple[Path, str]], redshift: float, where: str) -> tuple[int, Path, str]:
    """The twin snapshot closest to `redshift` (tries 090 and 033 first for z = 0)."""
    tried = []
    if abs(redshift) < 1e-6:
        for number in Z0_SNAPSHOTS:
            hit = _find(cands, SNAP_STEMS, number)
            if hit is not None and abs(_redshift(hit[0])) < 0.01:
                return number, hit[0], hit[1]
    best = None
    for folder, layout in cands:
        for number in output_numbers(folder, SNAP_STEMS):
            path = find_output(folder, SNAP_STEMS, number)
            z = _redshift(path)
            tried.append(f"{number:03d} (z={z:.3g})")
            if best is None or abs(z - redshift) < abs(best[0] - redshift):
                best = (z, number, path, layout)
        if tried:
            break
    if best is None or abs(best[0] - redshift) > 0.02 * (1 + redshift):
        raise IngestError(f"{where}: no N-body snapshot at z = {redshift:g}"
                          + (f"; found {', '.join(tried)}" if tried else "") + " (use --snapshot N)")
    return best[1], best[2], best[3]


def locate(root: str | Path, suite: str, set_name: str, name: str, *, snapshot: int | None = None,
           redshift: float = 0.0) -> SimFiles:
    """Find the twin snapshot and both Subfind catalogues of simulation `name` of `suite`.

    Parameters
    ----------
    root : CAMELS root folder (holding ``Sims/`` and ``FOF_Subfind/``) or the ``Sims`` folder
    suite : hydro suite, e.g. ``"IllustrisTNG"``; the twin is ``suite + "_DM"``
    set_name : ``"CV"``, ``"LH"``, ``"1P"``, ``"EX"``, ...
    name : simulation folder name, e.g. ``"CV_0"``
    snapshot : snapshot number; None picks the one at `redshift` (090 or 033 for z = 0)

    Raises
    ------
    IngestError
        Naming the simulation and the folders searched, when the twin, its snapshot or the hydro
        Subfind catalogue is missing.
    """
    root = Path(root)
    twin = f"{suite}_DM"
    dm_cands = [c for c in _candidates(_sims_bases(root), twin, set_name, name) if c[0].is_dir()]
    if not dm_cands:
        looked = [str(c[0]) for c in _candidates(_sims_bases(root), twin, set_name, name)[:3:2]]
        raise IngestError(f"{suite} {name}: N-body twin {twin}/{name} not found (looked in {', '.join(looked)})")
    if snapshot is None:
        snapshot, dm_snap, layout = _choose_snapshot(dm_cands, redshift, f"{twin} {name}")
    else:
        hit = _find(dm_cands, SNAP_STEMS, snapshot)
        if hit is None:
            raise IngestError(f"{twin} {name}: snapshot {snapshot:03d} not found in {dm_cands[0][0]} "
                              f"(looked for snapshot_{snapshot:03d}.hdf5, snap_{snapshot:03d}.hdf5 and .0.hdf5 parts)")
        dm_snap, layout = hit
    z = _redshift(dm_snap)
    dm_groups = _find(_candidates(_groups_bases(root), twin, set_name, name), GROUP_STEMS, snapshot)
    hydro = _find(_candidates(_groups_bases(root), suite, set_name, name), GROUP_STEMS, snapshot)
    if hydro is None:
        looked = [str(c[0]) for c in _candidates(_groups_bases(root), suite, set_name, name)[:3:2]]
        raise IngestError(f"{suite} {name}: hydro Subfind catalogue groups_{snapshot:03d}.hdf5 / "
                          f"fof_subhalo_tab_{snapshot:03d}.hdf5 not found (looked in {', '.join(looked)}, ...)")
    return SimFiles(name=name, snapshot=snapshot, redshift=z, layout=layout, dm_snapshot=dm_snap,
                    dm_groups=dm_groups[0] if dm_groups else None, hydro_groups=hydro[0])
