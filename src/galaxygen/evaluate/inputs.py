"""Which boxes to compare: truth boxes, named predictions, matching by box name, realisations.

A prediction box (source "prediction") carries the truth box's ``name`` and ``suite``; its meta
holds the prediction contract (``galaxygen.prediction``): ``model``, ``trained_on``, for several
samples of one prediction ``realisation`` (0-based) and ``realisations`` (total), and what it was
made from. Matching uses these attributes, never the file names; a matched pair is then checked by
content: the prediction must have been made from that very truth box (its fields/dm, params and,
when the input held galaxies, fields/galaxies). A truth box must not itself be a prediction.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from galaxygen.box import BoxHeader, list_boxes, read_box, read_header
from galaxygen.errors import GalaxygenError
from galaxygen.prediction import PredictionMeta, made_from, made_from_differences, read_prediction_meta


@dataclass(frozen=True)
class TruthBox(BoxHeader):
    """A truth box's header and the content hashes a prediction made from it must record
    (`galaxygen.prediction.made_from`)."""

    made_from: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Prediction:
    """One named prediction: realisation index -> {truth key -> prediction box path}."""

    label: str
    model: str
    trained_on: str
    realisations: Mapping[int, Mapping[tuple[str, str], Path]]
    ignored: tuple[Path, ...] = ()  # mean-of-samples boxes set aside beside the samples
    warnings: tuple[str, ...] = ()  # degenerate results its boxes carry (meta 'warnings'), in order

    @property
    def truth_keys(self) -> list[tuple[str, str]]:
        """The (suite, name) of the truth boxes this prediction covers, sorted."""
        return sorted(next(iter(self.realisations.values())))

    @property
    def tested_on(self) -> list[str]:
        """Suites of the truth boxes it covers."""
        return sorted({suite for suite, _ in self.truth_keys})

    @property
    def family(self) -> str:
        """Model family: the part of ``model`` before ':' ("hod:seed3" -> "hod")."""
        return self.model.split(":", 1)[0] if self.model else self.label


def read_truth(paths: Sequence[str | os.PathLike]) -> dict[tuple[str, str], TruthBox]:
    """The truth boxes keyed by (suite, name), with the content hashes a prediction made from each
    must record; all must share grid and box size.

    Raises GalaxygenError naming the file for a truth box that is a prediction or holds no galaxies.
    """
    out: dict[tuple[str, str], TruthBox] = {}
    for path in list_boxes(list(paths)):
        h = read_header(path)
        if h.source == "prediction":
            raise GalaxygenError(f"{path}: is a prediction (source 'prediction', model "
                                 f"{str(h.meta.get('model', '?'))!r}), not a truth box; --truth takes "
                                 f"simulated or ingested boxes")
        if h.key in out:
            raise GalaxygenError(f"truth boxes {out[h.key].path} and {path} have the same suite and name "
                                 f"{h.key}; names must be unique within a suite")
        box = read_box(path, catalogs=False, velocity=False)
        if not box.galaxies.any():
            raise GalaxygenError(f"{path}: fields/galaxies: the truth box holds no galaxies; nothing to "
                                 f"score a prediction against")
        out[h.key] = TruthBox(**vars(h), made_from=made_from(box))
    if not out:
        raise GalaxygenError("no truth boxes given")
    first = next(iter(out.values()))
    for h in out.values():
        if (h.grid, h.box_size) != (first.grid, first.box_size):
            raise GalaxygenError(f"truth boxes differ in grid or box size: {first.path} has "
                                 f"{first.grid}^3 in {first.box_size:g} Mpc/h, {h.path} has "
                                 f"{h.grid}^3 in {h.box_size:g} Mpc/h")
    return out


def parse_pred_spec(spec: Sequence[str]) -> tuple[str, list[str]]:
    """``["NAME=BOX", "BOX2", ...]`` (one ``--pred`` option) -> (NAME, [BOX, BOX2, ...])."""
    if not spec or "=" not in spec[0]:
        raise GalaxygenError(f"--pred expects NAME=BOX [BOX ...], got {' '.join(spec)!r}")
    label, first = spec[0].split("=", 1)
    if not label or not first:
        raise GalaxygenError(f"--pred expects NAME=BOX [BOX ...] with a non-empty NAME and BOX, got {spec[0]!r}")
    return label, [first, *spec[1:]]


def _match(h: BoxHeader, pm: PredictionMeta, truth: Mapping[tuple[str, str], TruthBox], label: str) -> TruthBox:
    """The truth box of prediction box `h` (contract `pm`): by suite and name (or name alone when that
    is unique), same grid and box size, and made from it (content hashes)."""
    if h.source != "prediction":
        raise GalaxygenError(f"prediction {label!r}: {h.path} is not a prediction box (source {h.source!r}); "
                             f"--pred takes boxes written by `galaxygen predict` or `galaxygen hod populate`")
    if "made_from_dm" not in pm.made_from:
        raise GalaxygenError(f"prediction {label!r}: {h.path} does not record what it was made from (no "
                             f"meta 'made_from_dm'; written by an older galaxygen?); predict it again")
    t = truth.get(h.key)
    if t is None:
        same_name = [x for x in truth.values() if x.name == h.name]
        if len(same_name) == 1:
            t = same_name[0]
        elif not same_name:
            raise GalaxygenError(f"prediction {label!r}: {h.path} is for box {h.name!r} (suite {h.suite!r}) "
                                 f"but no truth box has that name; truth boxes: "
                                 f"{sorted(x.name for x in truth.values())}")
        else:
            raise GalaxygenError(f"prediction {label!r}: {h.path} is for box {h.name!r} of suite {h.suite!r}; "
                                 f"truth boxes of that name exist only in suites "
                                 f"{sorted(x.suite for x in same_name)}")
    if h.grid != t.grid or not np.isclose(h.box_size, t.box_size, rtol=1e-6):
        raise GalaxygenError(f"prediction {label!r}: {h.path} ({h.grid}^3, {h.box_size:g} Mpc/h) does not match "
                             f"its truth box {t.path} ({t.grid}^3, {t.box_size:g} Mpc/h)")
    diff = made_from_differences(pm.made_from, t.made_from)
    if diff:
        raise GalaxygenError(f"prediction {label!r}: {h.path} was not made from the truth box {t.path} "
                             f"({' and '.join(diff)} differ); give the truth boxes it was predicted from")
    return t


def group_prediction(label: str, paths: Sequence[str | os.PathLike],
                     truth: Mapping[tuple[str, str], TruthBox]) -> Prediction:
    """Read the headers of one named prediction, match each box to its truth, group realisations.

    A box with meta ``realisation`` < 0 or ``kind`` = "mean" (the mean of several samples, as the
    diffusion model writes it) is set aside when samples are present (listed in ``ignored``) and
    is the prediction when only such boxes are given.

    Raises GalaxygenError naming the files for a box that is no prediction or does not record its
    input, a box with no truth of that name, a grid or box size mismatch, a box made from another
    box than its truth, two boxes for the same truth box and realisation, or realisations that
    cover different truth boxes.
    """
    reals: dict[int, dict[tuple[str, str], Path]] = {}
    means: dict[tuple[str, str], Path] = {}
    models, trained = set(), set()
    notes: dict[Path, list[str]] = {}
    for path in list_boxes(list(paths)):
        h = read_header(path)
        pm = read_prediction_meta(h.meta, str(path))
        t = _match(h, pm, truth, label)
        notes[path] = list(pm.warnings)
        r = pm.realisation
        models.add(pm.model)
        trained.add(pm.trained_on)
        if pm.is_mean:  # the mean of several samples
            if t.key in means:
                raise GalaxygenError(f"prediction {label!r}: {means[t.key]} and {path} are both the mean "
                                     f"of box {t.name!r}")
            means[t.key] = path
            continue
        slot = reals.setdefault(r, {})
        if t.key in slot:
            raise GalaxygenError(f"prediction {label!r}: {slot[t.key]} and {path} are both realisation {r} "
                                 f"of box {t.name!r}; give each sample its meta 'realisation'")
        slot[t.key] = path
    ignored: tuple[Path, ...] = ()
    if not reals:  # only means: evaluate them as the prediction
        reals = {0: means}
    else:  # samples and their means: the samples are the prediction; pass the means as their own --pred
        ignored = tuple(means.values())
    cover = {r: set(s) for r, s in reals.items()}
    first = min(cover)
    for r, keys in cover.items():
        if keys != cover[first]:
            missing = sorted(n for _, n in cover[first] ^ keys)
            raise GalaxygenError(f"prediction {label!r}: realisation {r} and realisation {first} cover different "
                                 f"boxes (differ in {missing})")
    model = ",".join(sorted(m for m in models if m)) or label
    trained_on = ",".join(sorted(x for x in trained if x)) or "unknown"
    used = [p for boxes in reals.values() for p in boxes.values()]
    return Prediction(label=label, model=model, trained_on=trained_on,
                      realisations={r: dict(sorted(s.items())) for r, s in sorted(reals.items())},
                      ignored=ignored, warnings=tuple(dict.fromkeys(w for p in used for w in notes[p])))


def load_fields(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(dm, galaxies) grids of a box file, float32 (N, N, N) each."""
    box = read_box(path, catalogs=False, velocity=False)
    return box.dm, box.galaxies


def load_prediction(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """(galaxies, galaxy_rate) grids of a prediction box, float32 (N, N, N); galaxy_rate None when the
    box stores no expected counts."""
    box = read_box(path, catalogs=False, velocity=False)
    return box.galaxies, box.galaxy_rate
