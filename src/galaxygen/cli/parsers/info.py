"""`galaxygen info BOX`: the options (the work: :mod:`galaxygen.cli.info`)."""

from __future__ import annotations

from galaxygen.cli.parsers.common import calls


def register(sub) -> None:
    p = sub.add_parser("info", help="what a box file holds",
                       description="Print a box file's grid, box size [Mpc/h], source, suite, parameters, "
                                   "numbers of DM particles and galaxies, and which optional parts it has.")
    p.add_argument("box", help="box file (.h5)")
    p.add_argument("--json", action="store_true", help="print JSON (stable keys) instead of text")
    calls(p, "galaxygen.cli.info")

