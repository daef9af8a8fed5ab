"""`galaxygen power BOX`: the options (the work: :mod:`galaxygen.cli.power`)."""

from __future__ import annotations

from galaxygen.cli.parsers.common import add_overwrite, calls


def register(sub) -> None:
    p = sub.add_parser(
        "power", help="power spectrum of a box field, or cross-power and r(k) with another box",
        description="P(k) of δ = n/n̄ − 1 of a box field (NGP window deconvolved, bins of the fundamental "
                    "k_F = 2π/L unless --bin-width), with N_modes and the shot noise 1/n̄. With --cross, "
                    "the cross-power, r(k) = P_ab/sqrt(P_aa P_bb) and transfer sqrt(P_aa/P_bb). "
                    "k in h/Mpc, P in (Mpc/h)^3.")
    p.add_argument("box", help="box file")
    p.add_argument("--field", choices=("dm", "galaxies"), default="galaxies", help="field (default: galaxies)")
    p.add_argument("--cross", metavar="OTHER_BOX", help="box file whose field to cross-correlate with")
    p.add_argument("--cross-field", choices=("dm", "galaxies"), default=None,
                   help="field of OTHER_BOX (default: same as --field)")
    p.add_argument("--bin-width", type=float, default=None, help="bin width in h/Mpc (default: k_F = 2π/L)")
    p.add_argument("--k-max", type=float, default=None, help="largest |k| in h/Mpc (default: all modes)")
    p.add_argument("--json", action="store_true", help="print JSON on stdout instead of a table")
    p.add_argument("--out", metavar="FILE",
                   help="write the JSON to FILE (atomically) instead of printing a table; "
                        "refuses an existing FILE unless --overwrite")
    add_overwrite(p)
    calls(p, "galaxygen.cli.power")

