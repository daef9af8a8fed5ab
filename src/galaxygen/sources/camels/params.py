"""CAMELS parameter files: find them and parse them by their header line.

The files ``CosmoAstroSeed_<Suite>_L25n256_<Set>.txt`` hold one row per simulation under a header
such as ``#Name Omega_m sigma_8 A_SN1 A_AGN1 A_SN2 A_AGN2 seed`` (Villaescusa-Navarro et al.
arXiv:2010.00619). Older copies order the columns differently or add columns, so columns are
always looked up by their header name, never by position. The older directory layout has one
file for the whole suite, ``Sims/<Suite>/CosmoAstroSeed_params.txt``, whose rows have no header
and the documented order `CAMELS_COLUMNS` (name, the six parameters, seed), and one file per
simulation, ``Sims/<Suite>/<Set>_<i>/CosmoAstro_params.txt``, with the six bare values (see
`read_sim_params`). The CMD ``params_<Set>_<Suite>.txt`` files have no header: six columns in the
documented order Omega_m sigma_8 A_SN1 A_AGN1 A_SN2 A_AGN2, one row per simulation. Header-less
files are read only when the caller gives their columns (`headerless`).
"""

from __future__ import annotations

from pathlib import Path

from galaxygen.sources.camels.hdf5 import IngestError

# Header spellings (lower case, without '#') -> box parameter names.
_ALIASES = {
    "omega_m": "omega_m", "omegam": "omega_m", "omega0": "omega_m", "om": "omega_m",
    "sigma_8": "sigma_8", "sigma8": "sigma_8", "s8": "sigma_8",
    "a_sn1": "a_sn1", "asn1": "a_sn1", "a_agn1": "a_agn1", "aagn1": "a_agn1",
    "a_sn2": "a_sn2", "asn2": "a_sn2", "a_agn2": "a_agn2", "aagn2": "a_agn2",
    "seed": "seed", "random_seed": "seed",
    "name": "name", "simulation": "name", "sim": "name",
}
CMD_COLUMNS = ("omega_m", "sigma_8", "a_sn1", "a_agn1", "a_sn2", "a_agn2")
CAMELS_COLUMNS = ("name", *CMD_COLUMNS, "seed")   # rows of a CosmoAstroSeed file without a header line
SUITE_FILE = "CosmoAstroSeed_params.txt"           # the older layout's file of a whole suite
SIM_FILES = ("CosmoAstroSeed_params.txt", "CosmoAstro_params.txt")  # in a simulation's own folder
# The CV sets' fiducial parameters (every CV simulation; only the seed differs).
CV_FIDUCIAL = {"omega_m": 0.3, "sigma_8": 0.8, "a_sn1": 1.0, "a_agn1": 1.0, "a_sn2": 1.0, "a_agn2": 1.0}


def parse_params(path: str | Path, *, headerless: tuple[str, ...] | None = None) -> dict[str, dict[str, float]]:
    """Parse a parameter file into ``{simulation name: {parameter: value}}``.

    Parameters
    ----------
    path : file path
    headerless : tuple of parameter names, optional
        Column names for a file without a header line (e.g. `CMD_COLUMNS`); rows are then named
        by their index ``"0"``, ``"1"``, .... Without it a header line is required.

    Returns
    -------
    dict
        Keys are the ``Name`` column (e.g. ``"CV_3"``) or the row index as a string when the file
        has no name column. Values hold the known parameters among omega_m, sigma_8, a_sn1,
        a_agn1, a_sn2, a_agn2, seed; unknown columns are ignored.

    Raises
    ------
    IngestError
        Naming the file and line for a missing header, a row with the wrong number of columns, or
        a value that is not a number.
    """
    path = Path(path)
    if not path.is_file():
        raise IngestError(f"{path}: parameter file not found")
    lines = [ln.strip() for ln in path.read_text().splitlines()]
    names: list[str] | None = list(headerless) if headerless else None
    rows: dict[str, dict[str, float]] = {}
    index = 0
    for lineno, line in enumerate(lines, 1):
        if not line:
            continue
        header = _header_names(line)
        if header is not None:
            names = header
            continue
        if line.startswith("#"):
            continue
        if names is None:
            raise IngestError(f"{path}:{lineno}: data before a header line such as "
                              f"'#Name Omega_m sigma_8 A_SN1 A_AGN1 A_SN2 A_AGN2 seed'")
        words = line.split()
        if len(words) != len(names):
            raise IngestError(f"{path}:{lineno}: {len(words)} columns, the header names {len(names)}")
        row: dict[str, float] = {}
        label = str(index)
        for key, word in zip(names, words):
            if key == "name":
                label = word
            elif not key.startswith("_ignored_"):
                try:
                    row[key] = float(word)
                except ValueError:
                    raise IngestError(f"{path}:{lineno}: column {key!r}: {word!r} is not a number") from None
        rows[label] = row
        index += 1
    if names is None:
        raise IngestError(f"{path}: no header line such as '#Name Omega_m sigma_8 A_SN1 A_AGN1 A_SN2 A_AGN2 seed'")
    return rows


def _header_names(line: str) -> list[str] | None:
    """The column names of a header line (unknown columns as ``_ignored_<i>``); None for a data line."""
    words = line.lstrip("#").split()
    keys = [_ALIASES.get(w.lower()) for w in words]
    if sum(k is not None and k != "name" for k in keys) >= 2 and not _numeric(words[-1]):
        return [k or f"_ignored_{i}" for i, k in enumerate(keys)]
    return None


def read_sim_params(path: str | Path, name: str) -> dict[str, float]:
    """The parameters of simulation `name` from a file in its own folder (older layout).

    ``CosmoAstro_params.txt`` holds the bare values Omega_m sigma_8 A_SN1 A_AGN1 A_SN2 A_AGN2 (on
    one line or one per line); a ``CosmoAstroSeed_params.txt`` there may add the seed and lead
    with the simulation's name. A file with a header line is read by it (`parse_params`).

    Raises IngestError naming the file for a wrong number of values, a value that is not a
    number, or a leading name that is not `name`.
    """
    path = Path(path)
    if not path.is_file():
        raise IngestError(f"{path}: parameter file not found")
    lines = [ln.strip() for ln in path.read_text().splitlines()]
    if any(_header_names(ln) is not None for ln in lines if ln):
        return params_for(parse_params(path), name, None, path)
    words = [w for ln in lines if ln and not ln.startswith("#") for w in ln.split()]
    if words and not _numeric(words[0]):
        if words[0] != name:
            raise IngestError(f"{path}: holds simulation {words[0]!r}, not {name!r}")
        words = words[1:]
    columns = CAMELS_COLUMNS[1:]
    if len(words) not in (len(columns) - 1, len(columns)):
        raise IngestError(f"{path}: {len(words)} values; expected {len(columns) - 1} or {len(columns)}: "
                          f"Omega_m sigma_8 A_SN1 A_AGN1 A_SN2 A_AGN2 [seed]")
    out = {}
    for key, word in zip(columns, words):
        if not _numeric(word):
            raise IngestError(f"{path}: {key}: {word!r} is not a number")
        out[key] = float(word)
    return out


def header_params(omega_m: float, set_name: str) -> tuple[dict[str, float], str]:
    """Parameters of a simulation without any parameter file: Omega_m from its snapshot header.

    A CV simulation gets the CV sets' fiducial values (`CV_FIDUCIAL`), Omega_m still from the
    header. Returns ``(params, what they are, for the box's meta)``.
    """
    if set_name == "CV":
        params = {**CV_FIDUCIAL, "omega_m": omega_m}
        fiducial = ", ".join(f"{k} = {v:g}" for k, v in CV_FIDUCIAL.items())
        source = f"the CV sets' fiducial values ({fiducial}), omega_m from the snapshot header (Omega0)"
    else:
        params = {"omega_m": omega_m}
        source = "omega_m from the snapshot header (Omega0)"
    unknown = ", ".join(k for k in CAMELS_COLUMNS[1:] if k not in params)
    note = f"no parameter file: {source}; unknown, not written: {unknown}"
    return params, note


def find_sim_params_file(folders: list[Path]) -> Path | None:
    """The first of `SIM_FILES` in `folders` (a simulation's folders, hydro run first); None if none."""
    for folder in folders:
        for file_name in SIM_FILES:
            if (folder / file_name).is_file():
                return folder / file_name
    return None


def _numeric(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


def params_for(table: dict[str, dict[str, float]], name: str, index: int | None, path: Path) -> dict[str, float]:
    """The row of simulation `name` (or row `index` when the file has no name column)."""
    if name in table:
        return table[name]
    if index is not None and str(index) in table:
        return table[str(index)]
    if len(table) == 1 and all(k.isdigit() for k in table):
        return next(iter(table.values()))  # a per-simulation file with a single unnamed row
    raise IngestError(f"{path}: no row for simulation {name!r} (rows: {', '.join(list(table)[:5])}"
                      f"{', ...' if len(table) > 5 else ''})")


def find_params_file(root: Path, suite: str, set_name: str) -> Path | None:
    """Search the usual places for ``CosmoAstroSeed_<suite>*_<set>.txt``; None if not found.

    Looks in the suite's folders under ``Sims/`` (the set folder, the resolution folder, the suite
    folder), ``Parameters/<suite>/``, ``docs/params/<suite>/``, then anywhere below those trees;
    last for the older layout's ``Sims/<suite>/CosmoAstroSeed_params.txt`` (all sets of the suite).
    """
    pattern = f"CosmoAstroSeed_{suite}_*{set_name}.txt"
    exact = f"CosmoAstroSeed_{suite}_L25n256_{set_name}.txt"
    trees = [root / "Sims" / suite, root / suite, root / "Parameters" / suite, root / "docs" / "params" / suite,
             root / "Parameters", root]
    near = [root / "Sims" / suite / "L25n256" / set_name, root / "Sims" / suite / "L25n256", *trees]
    for folder in near:
        if (folder / exact).is_file():
            return folder / exact
    for folder in near:
        if folder.is_dir():
            hits = _keep(sorted(folder.glob(pattern)), suite)
            if hits:
                return hits[0]
    for folder in trees[:4]:
        if folder.is_dir():
            hits = _keep(sorted(folder.rglob(pattern)), suite)
            if hits:
                return hits[0]
    for folder in (root / "Sims" / suite, root / suite):  # the older layout's file of the whole suite
        if (folder / SUITE_FILE).is_file():
            return folder / SUITE_FILE
    return None


def _keep(hits: list[Path], suite: str) -> list[Path]:
    """Drop the N-body twin's files (``<suite>_DM_...``) when looking for the hydro suite's."""
    return [p for p in hits if suite.endswith("_DM") or not p.name.startswith(f"CosmoAstroSeed_{suite}_DM_")]
