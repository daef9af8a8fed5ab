"""Length units of N-body outputs, as Mpc/h per unit.

Gadget and AREPO lengths carry h^-1: ``UnitLength_in_cm = 3.085678e21`` (in ``Header``,
``Parameters`` or ``Units``) means kpc/h. SWIFT lengths carry none: its ``Units`` group's
``Unit length in cgs (U_L)`` is in plain cm (3.0857e24: Mpc), so a SWIFT length in Mpc is h Mpc/h.
"""

from __future__ import annotations

import math

import numpy as np

from galaxygen.errors import ConfigError
from galaxygen.sources.camels.hdf5 import IngestError

MPC_CM = 3.0856775814913673e24   # 1 Mpc in cm
#: unit name -> (Mpc per unit, carries h^-1)
UNITS = {"Mpc/h": (1.0, True), "kpc/h": (1e-3, True), "Mpc": (1.0, False), "kpc": (1e-3, False)}
REL_TOL = 1e-3                   # two units agree to this relative tolerance
SWIFT_LENGTH = "Unit length in cgs (U_L)"


def length_factor(unit: str, hubble: float | None, where: str) -> float:
    """Mpc/h per `unit` (one of `UNITS`); a unit without h needs `hubble` (h)."""
    if unit not in UNITS:
        raise ConfigError(f"length_unit: expected one of {', '.join(UNITS)}, got {unit!r}")
    mpc, per_h = UNITS[unit]
    if per_h:
        return mpc
    if hubble is None:
        raise IngestError(f"{where}: lengths in {unit} need the Hubble parameter h to become Mpc/h; pass --hubble")
    return mpc * hubble


def unit_name(factor: float, hubble: float | None) -> str:
    """A name for a unit worth `factor` Mpc/h: a name of `UNITS` when one matches, else '<x> Mpc/h'."""
    for name, (mpc, per_h) in UNITS.items():
        value = mpc if per_h else (mpc * hubble if hubble else math.nan)
        if math.isclose(factor, value, rel_tol=REL_TOL):
            return name
    return f"{factor:g} Mpc/h"


def _scalar(value) -> float:
    return float(np.asarray(value).reshape(-1)[0])


def header_length(f, hubble: float | None, where: str) -> tuple[float, str] | None:
    """(Mpc/h per length unit, where it was read) from an open snapshot's own unit records; None when
    it has none. SWIFT's needs `hubble`."""
    if "Units" in f and SWIFT_LENGTH in f["Units"].attrs:
        if hubble is None:
            raise IngestError(f"{where}: a SWIFT snapshot without the Hubble parameter (Cosmology/h): "
                              f"its lengths cannot become Mpc/h")
        return _scalar(f["Units"].attrs[SWIFT_LENGTH]) / MPC_CM * hubble, f"Units/{SWIFT_LENGTH}"
    for group in ("Header", "Parameters", "Units"):
        if group in f and "UnitLength_in_cm" in f[group].attrs:
            return _scalar(f[group].attrs["UnitLength_in_cm"]) / MPC_CM, f"{group}/UnitLength_in_cm"
    return None


def resolve_length(recorded: tuple[float, str] | None, given: str | None, hubble: float | None,
                   where: str) -> tuple[float, str]:
    """(Mpc/h per unit, its name) from the unit a snapshot records and the one the caller gives.

    Raises IngestError in one line when neither is known, or when both are and they differ.
    """
    if given is not None:
        factor = length_factor(given, hubble, where)
        if recorded is not None and not math.isclose(recorded[0], factor, rel_tol=REL_TOL):
            raise IngestError(f"{where}: mismatched units: the file gives lengths in "
                              f"{unit_name(recorded[0], hubble)} ({recorded[1]}), --length-unit says {given}")
        return factor, given
    if recorded is None:
        raise IngestError(f"{where}: no length unit in the file (Header/UnitLength_in_cm, SWIFT's Units group): "
                          f"pass --length-unit ({', '.join(UNITS)})")
    return recorded[0], unit_name(recorded[0], hubble)
