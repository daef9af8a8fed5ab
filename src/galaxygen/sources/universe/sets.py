"""Parameter sets of `galaxygen simulate`: which boxes to make, one row of parameters each.

The six parameters are CAMELS' (Villaescusa-Navarro et al. arXiv:2010.00619): Omega_m, sigma_8 and
the feedback amplitudes A_SN1, A_AGN1, A_SN2, A_AGN2. Sets, as in CAMELS:

* ``cv``: every box at one point (the fiducial values, or the ones given), a different seed each.
* ``lh``: a Latin hypercube over the CAMELS ranges (A_SN1 and A_AGN1 log-uniform).
* ``1p``: one parameter at a time: the base point (``1P_base``) and, per parameter j = 1..6, K - 1
  values across its CAMELS range (``1P_p<j>_<k>``, k = n2, n1, 1, 2 for K = 5; ``n`` = negative),
  the others at the base; evenly spaced in log for the feedback amplitudes (as CAMELS' 1P set),
  linearly for Omega_m and sigma_8, the base in the middle. All boxes share one seed, so that
  they differ only by the parameter.
* ``points``: one box per row of a CSV file whose header names the parameters (and optionally
  ``name`` and ``seed``, the initial-conditions seed).

Values given by the caller (`base`) replace the fiducial ones: cv boxes sit at them, a 1p set
varies one parameter at a time around them, rows of a points file take them for the parameters
they do not name; an lh set draws all six and takes none.

A row is ``{name, omega_m, sigma_8, a_sn1, a_agn1, a_sn2, a_agn2, seed, galaxy_seed}`` (seed: of
the initial conditions; galaxy_seed: of the galaxy model).
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Mapping

import numpy as np
from scipy.stats import qmc

from galaxygen.errors import ConfigError

FIDUCIAL = {"omega_m": 0.3, "sigma_8": 0.8, "a_sn1": 1.0, "a_agn1": 1.0, "a_sn2": 1.0, "a_agn2": 1.0}
#: CAMELS ranges (arXiv:2010.00619): (low, high, log-uniform?)
LH_RANGES = {"omega_m": (0.1, 0.5, False), "sigma_8": (0.6, 1.0, False), "a_sn1": (0.25, 4.0, True),
             "a_agn1": (0.25, 4.0, True), "a_sn2": (0.5, 2.0, False), "a_agn2": (0.5, 2.0, False)}
#: Parameters whose 1P values are evenly spaced in log (CAMELS' 1P: the four feedback amplitudes).
ONE_P_LOG = ("a_sn1", "a_agn1", "a_sn2", "a_agn2")
CSV_COLUMNS = ("name", "omega_m", "sigma_8", "a_sn1", "a_agn1", "a_sn2", "a_agn2", "seed")
SETS = ("cv", "lh", "1p", "points")
DEFAULT_BOXES = {"cv": 4, "lh": 4, "1p": 5}


def box_seeds(seed: int, index: int) -> tuple[int, int]:
    """(initial-conditions seed, galaxy seed) of box `index` of a set made with `seed`."""
    ic, gal = np.random.SeedSequence([seed, index]).generate_state(2)
    return int(ic), int(gal)


def check_values(values: Mapping[str, float], where: str = "") -> dict[str, float]:
    """`values` as floats after checking names and ranges (Omega_m in (0, 1], the others > 0).

    Raises ConfigError led by `where` (e.g. ``"file.csv:3: "``) and the parameter.
    """
    out = {}
    for key, v in values.items():
        if key not in FIDUCIAL:
            raise ConfigError(f"{where}{key}: not a parameter; expected some of {', '.join(FIDUCIAL)}")
        v = float(v)
        if not (0 < v <= 1 if key == "omega_m" else 0 < v < math.inf):
            rule = "in (0, 1]" if key == "omega_m" else "finite and > 0"
            raise ConfigError(f"{where}{key}: {v:g} is out of range (expected a value {rule})")
        out[key] = v
    return out


def _row(name: str, point: Mapping[str, float], seeds: tuple[int, int]) -> dict:
    return {"name": name, **{k: float(point[k]) for k in FIDUCIAL}, "seed": seeds[0], "galaxy_seed": seeds[1]}


def _lh_rows(n_boxes: int, seed: int) -> list[dict]:
    unit = qmc.LatinHypercube(d=len(LH_RANGES), seed=np.random.default_rng([seed, 2**31])).random(n_boxes)
    rows = []
    for i in range(n_boxes):
        point = {key: lo * (hi / lo) ** u if log else lo + (hi - lo) * u
                 for u, (key, (lo, hi, log)) in zip(unit[i], LH_RANGES.items())}
        rows.append(_row(f"LH_{i}", point, box_seeds(seed, i)))
    return rows


def one_p_values(key: str, base: float, n_values: int) -> list[float]:
    """The `n_values` (odd) values of parameter `key` in a 1P set: its CAMELS range's low end up to
    `base` (the middle value) and on to the high end, evenly in log for `ONE_P_LOG`, else linearly."""
    lo, hi, _ = LH_RANGES[key]
    half = n_values // 2
    log = key in ONE_P_LOG

    def between(a: float, b: float, t: float) -> float:
        return float(a * (b / a) ** t if log else a + (b - a) * t)

    return ([between(lo, base, k / half) for k in range(half)] + [float(base)]
            + [between(base, hi, k / half) for k in range(1, half + 1)])


def _one_p_rows(n_values: int, seed: int, base: Mapping[str, float]) -> list[dict]:
    if n_values < 3 or n_values % 2 == 0:
        raise ConfigError(f"boxes: a 1p set takes an odd number >= 3 of values per parameter (the base "
                          f"point in the middle), got {n_values}")
    for key, (lo, hi, _) in LH_RANGES.items():
        if not lo < base[key] < hi:
            raise ConfigError(f"{key}: {base[key]:g} lies outside the CAMELS range ({lo:g}, {hi:g}) that a 1p "
                              f"set spans on either side of it")
    seeds = box_seeds(seed, 0)
    rows = [_row("1P_base", base, seeds)]
    half = n_values // 2
    for j, key in enumerate(FIDUCIAL, 1):
        for k, v in zip(range(-half, half + 1), one_p_values(key, base[key], n_values)):
            if k != 0:
                rows.append(_row(f"1P_p{j}_{'n' if k < 0 else ''}{abs(k)}", {**base, key: v}, seeds))
    return rows


def read_points(path: str | Path, seed: int, base: Mapping[str, float] | None = None) -> list[dict]:
    """Rows of a points file: CSV whose header names some of the six parameters (any case, e.g.
    ``Omega_m``), optionally ``name`` (default ``P_<i>``) and ``seed`` (the initial-conditions seed;
    default derived from (`seed`, i)); one box per row, parameters it lacks from `base` or fiducial.

    Raises ConfigError naming the file and line for an unknown column, a value that is not a number,
    a parameter out of range, a repeated name, or no rows.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such points file")
    reader = csv.reader(io.StringIO(path.read_text()))
    lines = [(n, row) for n, row in enumerate(reader, 1) if row and not row[0].lstrip().startswith("#")]
    if not lines:
        raise ConfigError(f"{path}: empty; expected a header such as 'name,omega_m,sigma_8' and rows")
    header = [c.strip().lower() for c in lines[0][1]]
    unknown = [c for c in header if c not in CSV_COLUMNS]
    if unknown:
        raise ConfigError(f"{path}:{lines[0][0]}: unknown column(s) {unknown}; expected some of "
                          f"{', '.join(CSV_COLUMNS)}")
    point0 = {**FIDUCIAL, **(base or {})}
    rows, names = [], set()
    for i, (lineno, cells) in enumerate(lines[1:]):
        where = f"{path}:{lineno}: "
        if len(cells) != len(header):
            raise ConfigError(f"{where}{len(cells)} values, the header names {len(header)}")
        cell = dict(zip(header, (c.strip() for c in cells)))
        try:
            values = {k: float(v) for k, v in cell.items() if k in FIDUCIAL}
            ic_seed = int(cell["seed"]) if "seed" in cell else box_seeds(seed, i)[0]
        except ValueError as exc:
            raise ConfigError(f"{where}not a number ({exc})") from None
        name = cell.get("name") or f"P_{i}"
        if name in names:
            raise ConfigError(f"{where}name {name!r} repeats an earlier row")
        names.add(name)
        point = {**point0, **check_values(values, where)}
        rows.append(_row(name, point, (ic_seed, box_seeds(seed, i)[1])))
    if not rows:
        raise ConfigError(f"{path}: a header but no rows")
    return rows


def parameter_table(set_: str, n_boxes: int | None, seed: int, base: Mapping[str, float] | None = None,
                    points: str | Path | None = None) -> list[dict]:
    """Rows (see the module doc) of a cv, lh, 1p or points set.

    `n_boxes`: boxes of a cv or lh set, values per parameter of a 1p set (None: `DEFAULT_BOXES`);
    `base`: parameter values replacing the fiducial ones (not for lh); `points`: the CSV file of a
    points set.
    """
    if set_ not in SETS:
        raise ConfigError(f"set: expected one of {', '.join(SETS)}, got {set_!r}")
    base = check_values(base or {})
    if base and set_ == "lh":
        raise ConfigError(f"{next(iter(base))}: an lh set draws all six parameters; give values with a cv, "
                          f"1p or points set")
    if set_ == "points":
        if points is None:
            raise ConfigError("points: a points set needs its CSV file")
        return read_points(points, seed, base)
    n = DEFAULT_BOXES[set_] if n_boxes is None else int(n_boxes)
    if n < 1:
        raise ConfigError(f"boxes: expected >= 1, got {n}")
    point = {**FIDUCIAL, **base}
    if set_ == "lh":
        return _lh_rows(n, seed)
    if set_ == "1p":
        return _one_p_rows(n, seed, point)
    return [_row(f"CV_{i}", point, box_seeds(seed, i)) for i in range(n)]


def params_csv(rows: list[dict]) -> str:
    """The parameter table as CSV text (header ``name,omega_m,...,seed``)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for r in rows:
        w.writerow([r["name"]] + [repr(float(r[k])) for k in CSV_COLUMNS[1:-1]] + [int(r["seed"])])
    return buf.getvalue()
