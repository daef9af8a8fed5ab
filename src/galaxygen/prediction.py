"""The prediction contract: what a prediction box records about how it was made, written by one
function (`prediction_box`) and read back by one (`read_prediction_meta`).

A prediction box is a box file (``galaxygen.box``) of source "prediction" made from an input box:
that box's name, suite, geometry, fields/dm and params, with ``fields/galaxies`` predicted and the
keys of `PREDICTION_META` in /meta. Evaluation matches a prediction to its truth box by suite and
name and refuses any truth box it was not made from (the ``made_from_*`` content hashes).
See docs/box-format.md.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from galaxygen.box import Box
from galaxygen.fingerprint import array_hash, params_hash
from galaxygen.errors import BoxFormatError

log = logging.getLogger(__name__)

PREDICTION_META = {
    "model": "what made the prediction, e.g. 'two-phase:inception+unet', 'vdm', 'hod:zheng07'",
    "trained_on": "suites the model was trained (or the HOD fitted) on, comma-joined",
    "seed": "random seed of the prediction",
    "made_from_file": "path of the input box file, as given",
    "made_from_source": "the input box's source attribute",
    "made_from_dm": "content hash of the input box's fields/dm",
    "made_from_galaxies": "content hash of the input box's fields/galaxies (absent when it held none)",
    "made_from_params": "content hash of the input box's params",
    "realisation": "0-based sample index (several samples of one prediction); -1 for their mean",
    "realisations": "number of samples",
    "kind": "'mean' for the mean of several samples (absent otherwise)",
    "warnings": "degenerate results met while making it, one per line (absent when none)",
}
MADE_FROM = {"made_from_dm": "fields/dm", "made_from_galaxies": "fields/galaxies", "made_from_params": "params"}


def made_from(box: Box) -> dict[str, str]:
    """What a prediction made from `box` records about it: ``made_from_dm``, ``made_from_params``
    and, when the box holds galaxies, ``made_from_galaxies`` (hashes, see `array_hash`)."""
    out = {"made_from_dm": array_hash(box.dm), "made_from_params": params_hash(box.params)}
    if box.galaxies.any():
        out["made_from_galaxies"] = array_hash(box.galaxies)
    return out


def made_from_differences(meta: Mapping[str, Any], source: Mapping[str, str]) -> list[str]:
    """The parts (``fields/dm``, ``fields/galaxies``, ``params``) where a prediction's recorded
    input (`meta`) differs from box `source` (``made_from(box)``); [] when it was made from it.
    ``made_from_galaxies`` is compared only when the prediction recorded it."""
    diff = []
    for key, part in MADE_FROM.items():
        if key == "made_from_galaxies" and key not in meta:
            continue
        if meta.get(key) != source.get(key):
            diff.append(part)
    return diff


def prediction_box(source: Box, galaxies: np.ndarray, *, model: str, trained_on: str, seed: int,
                   source_path: str | os.PathLike | None = None, realisation: int | None = None,
                   realisations: int | None = None, galaxy_catalog: Mapping[str, np.ndarray] | None = None,
                   warnings: tuple[str, ...] | list[str] = (), empty_note: str = "",
                   extra_meta: Mapping[str, Any] | None = None, galaxy_rate: np.ndarray | None = None) -> Box:
    """The prediction box made from `source`: its name, suite, geometry, fields/dm (and DM velocity
    when read), params and halos; source 'prediction'; ``fields/galaxies`` = `galaxies` (N,N,N)
    counts; ``fields/galaxy_rate`` = `galaxy_rate` (N,N,N) expected counts that `galaxies` realises (or
    none); ``catalogs/galaxies`` = `galaxy_catalog` (or none); /meta per PREDICTION_META.

    `warnings` are degenerate results met while making it (already reported); a prediction holding no
    galaxies adds (and logs) one, ending with `empty_note` (why, when the caller knows).
    """
    gal = np.ascontiguousarray(galaxies, dtype=np.float32)
    meta: dict[str, Any] = {"model": model, "trained_on": trained_on, "seed": int(seed),
                            "made_from_source": source.source, **made_from(source)}
    if source_path is not None:
        meta["made_from_file"] = str(source_path)
    if realisation is not None:
        meta.update(realisation=int(realisation), realisations=int(realisations or 1))
    notes = list(warnings)
    if not gal.any():
        which = ("" if realisation is None or (realisations or 1) == 1 else " (mean of the samples)"
                 if realisation < 0 else f" (realisation {realisation})")
        msg = f"{model} prediction for box {source.name!r}{which} holds no galaxies"
        msg += f": {empty_note}" if empty_note else ""
        log.warning(msg)
        notes.append(msg)
    if notes:
        meta["warnings"] = "\n".join(notes)
    meta.update(extra_meta or {})
    rate = None if galaxy_rate is None else np.ascontiguousarray(galaxy_rate, dtype=np.float32)
    return source.replace(source="prediction", galaxies=gal, galaxy_catalog=galaxy_catalog, meta=meta,
                          galaxy_rate=rate)


def meta_warnings(meta: Mapping[str, Any]) -> list[str]:
    """The ``warnings`` a prediction box's meta carries, one per line ([] when none)."""
    text = meta.get("warnings", "")
    return [line for line in str(text).splitlines() if line.strip()]


@dataclass(frozen=True)
class PredictionMeta:
    """The contract as read back from a prediction box's /meta (`PREDICTION_META`).

    made_from : the ``made_from_*`` hashes it records ({} when none: not a galaxygen prediction, or
    an old one); realisation : 0-based sample index (0 for a single prediction); is_mean : it is the
    mean of several samples (realisation -1, or kind "mean"); warnings : one per line, in order.
    """

    model: str
    trained_on: str
    seed: int | None
    made_from: Mapping[str, str]
    realisation: int
    realisations: int
    is_mean: bool
    warnings: tuple[str, ...]


def read_prediction_meta(meta: Mapping[str, Any], where: str) -> PredictionMeta:
    """The prediction contract of a box's `meta` (missing keys: empty, 0 or None); BoxFormatError
    naming `where` when ``realisation``, ``realisations`` or ``seed`` is not an integer."""
    def integer(key: str, default: int | None) -> int | None:
        try:
            return int(meta[key]) if key in meta else default
        except (TypeError, ValueError):
            raise BoxFormatError(f"{where}: meta/{key}: expected an integer, got {meta[key]!r}") from None

    realisation = integer("realisation", 0)
    return PredictionMeta(model=str(meta.get("model", "")), trained_on=str(meta.get("trained_on", "")),
                          seed=integer("seed", None), made_from={k: str(meta[k]) for k in MADE_FROM if k in meta},
                          realisation=realisation, realisations=integer("realisations", 1),
                          is_mean=realisation < 0 or str(meta.get("kind", "")) == "mean",
                          warnings=tuple(meta_warnings(meta)))
