"""`galaxygen generate RUN --out DIR`: the options (the work: :mod:`galaxygen.cli.generate`)."""

from __future__ import annotations

from galaxygen.cli.parsers.common import add_device, add_overwrite, calls
from galaxygen.cli.parsers.params import add_parameter_options


def register(sub) -> None:
    p = sub.add_parser(
        "generate", help="chosen parameters -> COLA DM -> a trained run -> galaxy fields and catalogues",
        description="For each sample: 2LPT initial conditions at the chosen parameters -> COLA -> DM painted "
                    "(NGP) at the box size, grid and redshift the run was trained on -> the run's network -> "
                    "DIR/<name>.h5 (names gen_<k>) whose fields/galaxies is the galaxy field and whose "
                    "catalogs/galaxies/pos is a galaxy catalogue [Mpc/h]: each galaxy inside the voxel that "
                    "counts it, on a DM particle of that voxel chosen at random, or uniform in the voxel where "
                    "it has none. The DM-only input boxes are kept as DIR/dm/<name>.h5, the settings and "
                    "timings in DIR/generate.json; DIR is written whole. Prints a JSON summary. "
                    "See docs/generate.md.")
    p.add_argument("run", help="run directory written by `galaxygen train` (two_phase or vdm)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (written whole)")
    add_parameter_options(p, "the fiducial value")
    p.add_argument("--seed", type=int, default=0, metavar="S",
                   help="seed: sample k's initial conditions, network sampling and catalogue derive from (S, k) "
                        "(default: 0)")
    p.add_argument("--samples", type=int, default=1, metavar="K",
                   help="boxes to generate, each from its own initial conditions (default: 1)")
    p.add_argument("--particles", type=int, default=None, metavar="N",
                   help="DM particles per side (default: the run's training boxes' count when they record it, "
                        "else one per voxel)")
    add_device(p)
    add_overwrite(p)
    calls(p, "galaxygen.cli.generate")
