"""Box-level HOD work: fit on training box files → hod.json; populate box files → prediction boxes.

hod.json (written atomically) holds: ``format`` = "galaxygen.hod", ``version`` = 1, ``model``,
``method``, ``params`` (log10 masses [Msun/h], α, σ_logM), ``errors`` (1σ), ``covariance``
(``names`` + ``matrix``), ``number_density`` (the target n̄ [(h/Mpc)^3]),
``expected_number_density`` (the fitted model's ⟨n⟩ on the training halos), ``trained_on`` (the
suites, comma-joined), ``boxes`` (what was fit: path, name, suite, counts, matching) and
``details`` (log-likelihood, intervals, notes) and ``warnings`` (degenerate results: a box whose
galaxies match no halo, a parameter at an edge of its search range; also logged, and carried into
every prediction box populated with the fit).
"""

from __future__ import annotations

import json
import logging
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from galaxygen import __version__
from galaxygen.box import Box, list_boxes, read_box, read_header, write_box
from galaxygen.errors import ConfigError, GalaxygenError
from galaxygen.io import write_json
from galaxygen.models.hod.fit import fit_occupation
from galaxygen.models.hod.fit_pk import fit_power, pk_data
from galaxygen.models.hod.matching import box_occupation
from galaxygen.models.hod.occupation import HODModel, make_model, model_class
from galaxygen.models.hod.populate import populate_box, require_halos
from galaxygen.outputs import check_file, record, staged_folder
from galaxygen.progress import progress

log = logging.getLogger(__name__)

FORMAT = "galaxygen.hod"
VERSION = 1
METHODS = ("likelihood", "pk")


@dataclass(frozen=True)
class HODFit:
    """A fitted HOD (the content of hod.json)."""

    model: str
    method: str
    params: dict[str, float]
    errors: dict[str, float]
    covariance_names: tuple[str, ...]
    covariance: list[list[float]]
    number_density: float
    expected_number_density: float
    trained_on: str
    boxes: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def build(self) -> HODModel:
        """The model object with these parameters."""
        return make_model(self.model, self.params)

    def as_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "galaxygen_version": __version__,
                "model": self.model, "method": self.method, "params": dict(self.params),
                "errors": dict(self.errors),
                "covariance": {"names": list(self.covariance_names), "matrix": self.covariance},
                "number_density": self.number_density,
                "expected_number_density": self.expected_number_density,
                "trained_on": self.trained_on, "boxes": list(self.boxes), "details": dict(self.details),
                "warnings": list(self.warnings)}


def write_fit(path: str | os.PathLike, fit: HODFit, *, overwrite: bool = False) -> Path:
    """Write hod.json atomically; refuse to replace an existing file unless `overwrite`, and then only a
    file that `galaxygen hod fit` wrote (recorded in its folder, see :mod:`galaxygen.outputs`)."""
    path = check_file(path, "hod fit", overwrite)
    write_json(path, fit.as_dict(), overwrite=overwrite)
    record(path.parent, "hod fit", [path.name])
    return path


def read_fit(path: str | os.PathLike) -> HODFit:
    """Read and check a hod.json written by `write_fit`."""
    path = Path(path)
    if not path.is_file():
        raise GalaxygenError(f"{path}: no such HOD fit file")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise GalaxygenError(f"{path}: not a readable JSON file ({exc})") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise GalaxygenError(f"{path}: format: expected {FORMAT!r} (a file from `galaxygen hod fit`)")
    if data.get("version") != VERSION:
        raise GalaxygenError(f"{path}: version: expected {VERSION}, got {data.get('version')!r}")
    for key in ("model", "params", "number_density"):
        if key not in data:
            raise GalaxygenError(f"{path}: {key}: missing")
    try:
        model = make_model(data["model"], data["params"])
    except ConfigError as exc:
        raise GalaxygenError(f"{path}: params: {exc}") from exc
    cov = data.get("covariance") or {}
    return HODFit(model=model.name, method=data.get("method", "likelihood"), params=model.params(),
                  errors=dict(data.get("errors") or {}), covariance_names=tuple(cov.get("names", [])),
                  covariance=cov.get("matrix", []), number_density=float(data["number_density"]),
                  expected_number_density=float(data.get("expected_number_density", np.nan)),
                  trained_on=str(data.get("trained_on", "")), boxes=list(data.get("boxes", [])),
                  details=dict(data.get("details", {})), warnings=[str(w) for w in data.get("warnings") or []])


def _read_training(paths: Sequence[str | os.PathLike]) -> list[tuple[Path, Box]]:
    out = []
    for p in list_boxes(list(paths)):
        box = read_box(p, catalogs=True, velocity=False)
        require_halos(box.halos, str(p))
        out.append((p, box))
    return out


def fit_boxes(paths: Sequence[str | os.PathLike], model: str, *, method: str = "likelihood",
              k_max: float = 1.0) -> HODFit:
    """Fit HOD `model` on training box files (or folders of them).

    Parameters
    ----------
    paths : box files or folders
        Each needs ``catalogs/halos`` (pos, mass) and ``catalogs/galaxies`` (pos; host_halo when
        the host is known, else galaxies are matched to the nearest halo within its radius).
    model : ``seed3`` | ``central-satellite`` | ``zheng07``
    method : ``likelihood`` (per-halo occupation) or ``pk`` (χ² on P(k) at k ≤ `k_max` [h/Mpc],
        started from the likelihood fit).
    """
    model_class(model)
    if method not in METHODS:
        raise ConfigError(f"HOD fit method {method!r} unknown; choose one of {list(METHODS)}")
    boxes = _read_training(paths)
    occ = [box_occupation(b, where=str(p)) for p, b in progress(boxes, desc="matching galaxies")]
    mass = np.concatenate([o.mass for o in occ])
    n_gal = np.concatenate([o.n_gal for o in occ])
    n_target = float(sum(o.n_galaxies for o in occ))
    volume = float(sum(o.volume for o in occ))
    res = fit_occupation(model, mass, n_gal, n_target)
    details: dict[str, Any] = {"log_likelihood": res.log_likelihood, **res.extra}
    if method == "pk":
        data = [pk_data(b.galaxies, b.halos["pos"], b.halos["mass"], b.box_size, k_max, str(p))
                for p, b in boxes]
        start = res
        res = fit_power(model, data, n_target, start)
        details = {"likelihood_fit": {"params": start.params, "errors": start.errors, **details},
                   "k_max": k_max, "chi2": res.extra["chi2"], "n_bins": res.extra["n_bins"],
                   "hessian_singular": res.extra["hessian_singular"]}
    warnings = [f"{p}: none of its {o.n_galaxies} galaxies lies in a halo ({o.matching} matching); "
                f"the fit sees no occupied halo in this box" for (p, _), o in zip(boxes, occ)
                if o.n_galaxies > 0 and o.n_gal.sum() == 0]
    warnings += res.warnings()
    for (p, _), o in zip(boxes, occ):
        log.info(f"{p}: {o.n_galaxies - o.n_unmatched} of {o.n_galaxies} galaxies matched to "
                 f"{int((o.n_gal > 0).sum())} halos ({o.matching})")
    for w in warnings:
        log.warning(w)
    suites = sorted({b.suite for _, b in boxes})
    return HODFit(
        model=model, method=method, params=res.params, errors=res.errors,
        covariance_names=res.names, covariance=np.asarray(res.covariance).tolist(),
        number_density=n_target / volume, expected_number_density=res.expected_count / volume,
        trained_on=",".join(suites),
        boxes=[{"path": str(p), "name": b.name, "suite": b.suite, "n_halos": int(len(o.mass)),
                "n_galaxies": o.n_galaxies, "n_unmatched": o.n_unmatched, "matching": o.matching}
               for (p, b), o in zip(boxes, occ)],
        details=details, warnings=warnings)


def box_rng(seed: int, name: str, realisation: int) -> np.random.Generator:
    """The generator for one (box name, realisation): independent of the order boxes come in."""
    return np.random.default_rng(np.random.SeedSequence(
        entropy=int(seed), spawn_key=(zlib.crc32(name.encode()), int(realisation))))


def _peek_name(path: Path) -> str:
    """A box file's name, after checking (cheaply: its header) that it has the halo columns the HOD needs."""
    header = read_header(path)
    columns = header.catalogs.get("halos")
    require_halos(None if columns is None else dict.fromkeys(columns), str(path))
    return header.name


def output_names(name: str, realisations: int) -> list[str]:
    """``<name>.h5`` for one realisation, ``<name>_r<k>.h5`` (k = 0..R−1) for several."""
    if realisations == 1:
        return [f"{name}.h5"]
    return [f"{name}_r{k}.h5" for k in range(realisations)]


def populate_boxes(fit_path: str | os.PathLike, paths: Sequence[str | os.PathLike],
                   out_dir: str | os.PathLike, *, seed: int = 0, realisations: int = 1,
                   overwrite: bool = False) -> list[Path]:
    """Populate the halos of box files with the HOD in `fit_path`; write prediction boxes.

    Each output keeps the input's name, suite, ``fields/dm``, params and halos; its
    ``fields/galaxies`` holds the HOD galaxies (NGP counts) and ``catalogs/galaxies`` their
    catalogue; meta: what it was made from (`galaxygen.prediction.PREDICTION_META`), the fit's warnings,
    and ``fit`` (the hod.json path). `out_dir` is one output, written whole (a temporary folder
    renamed into place at the end); an existing non-empty `out_dir` is replaced only with
    `overwrite` and only if `galaxygen hod populate` wrote it (see :mod:`galaxygen.outputs`).
    Everything is checked before any work starts.
    """
    if realisations < 1:
        raise ConfigError(f"--realisations must be >= 1, got {realisations}")
    fit = read_fit(fit_path)
    model = fit.build()
    files = list_boxes(list(paths))
    out_dir = Path(out_dir)
    planned: dict[str, Path] = {}
    for p in files:
        name = _peek_name(p)
        for out in output_names(name, realisations):
            if out in planned:
                raise GalaxygenError(f"{p}: box name {name!r} also used by {planned[out]}; "
                                     "outputs would collide")
            planned[out] = p
    written = []
    with staged_folder(out_dir, "hod populate", overwrite=overwrite) as tmp:
        for p in progress(files, desc="populating boxes"):
            box = read_box(p, catalogs=True, velocity=False, allow_dm_only=True)
            for k, out in enumerate(output_names(box.name, realisations)):
                pred = populate_box(box, model, box_rng(seed, box.name, k), model=f"hod:{fit.model}",
                                    trained_on=fit.trained_on, seed=seed, source_path=p, realisation=k,
                                    realisations=realisations, warnings=fit.warnings,
                                    extra_meta={"fit": str(fit_path)})
                write_box(tmp / out, pred)
                written.append(out_dir / out)
    return written
