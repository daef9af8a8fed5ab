"""The six CAMELS parameters as command-line options (``--omega-m 0.25 --a-sn1 2 ...``), shared by
`galaxygen simulate` and `galaxygen ingest nbody`: added by their parsers, read back by their work
modules (`parameter_values`)."""

from __future__ import annotations

import argparse

#: option -> (parameter name, what it is)
OPTIONS = {"--omega-m": ("omega_m", "Omega_m"), "--sigma-8": ("sigma_8", "sigma_8"),
           "--a-sn1": ("a_sn1", "A_SN1, supernova feedback energy"),
           "--a-agn1": ("a_agn1", "A_AGN1, AGN feedback energy"),
           "--a-sn2": ("a_sn2", "A_SN2, supernova wind speed"),
           "--a-agn2": ("a_agn2", "A_AGN2, AGN jet speed / burstiness")}


def add_parameter_options(parser: argparse.ArgumentParser, unset: str) -> None:
    """Add one float option per parameter; `unset` says what an option not given means."""
    group = parser.add_argument_group("parameters", f"CAMELS parameters (not given: {unset})")
    for option, (name, what) in OPTIONS.items():
        group.add_argument(option, dest=f"param_{name}", type=float, default=None, metavar="X", help=what)


def parameter_values(args: argparse.Namespace) -> dict[str, float]:
    """The parameters given on the command line, {name: value}."""
    return {name: v for name, _ in OPTIONS.values() if (v := getattr(args, f"param_{name}")) is not None}
