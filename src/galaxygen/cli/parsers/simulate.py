"""`galaxygen simulate OUT_DIR`: the options (the work: :mod:`galaxygen.cli.simulate`)."""

from __future__ import annotations

from galaxygen.cli.parsers.common import add_device, add_overwrite, add_scale, calls
from galaxygen.cli.parsers.params import add_parameter_options

# The surrogate's variants: the names of galaxygen.sources.universe.surrogate.VARIANTS (a test checks).
GALAXY_MODELS = ("simba-like", "tng-like")


def register(sub) -> None:
    p = sub.add_parser(
        "simulate", help="built-in universe -> box files (CV, LH, 1P set or chosen parameters)",
        description="For each box: 2LPT initial conditions -> cheap COLA run (fields/dm = NGP particle "
                    "counts, FoF halos -> catalogs/halos) -> accurate PM run from the same ICs -> FoF "
                    "halos -> galaxy-formation SURROGATE (a stochastic galaxy model, not hydrodynamics; "
                    "docs/surrogate.md) -> catalogs/galaxies and fields/galaxies (NGP counts). Boxes are "
                    "written atomically as OUT_DIR/<name>.h5 with OUT_DIR/params.csv (one row a box); a rerun "
                    "skips finished boxes (resume). Prints a JSON summary.")
    p.add_argument("out_dir", metavar="OUT_DIR", help="folder for the box files and params.csv")
    p.add_argument("--boxes", type=int, default=None, metavar="K",
                   help="number of boxes of a cv or lh set (default: 4); values per parameter of a 1p set, "
                        "odd (default: 5)")
    p.add_argument("--particles", type=int, default=64, metavar="N",
                   help="DM particles per side, N^3 in all (default: 64; CAMELS uses 256)")
    p.add_argument("--grid", type=int, default=None, metavar="G",
                   help="voxels per side of fields/dm and fields/galaxies (default: = --particles)")
    p.add_argument("--box-size", type=float, default=25.0, metavar="L",
                   help="side of the periodic box [comoving Mpc/h] (default: 25)")
    p.add_argument("--redshift", type=float, default=0.0, metavar="Z", help="output redshift (default: 0)")
    p.add_argument("--galaxy-model", default="tng-like", choices=GALAXY_MODELS,
                   help="surrogate variant; also the boxes' suite name (default: tng-like)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--set", dest="set_", choices=("cv", "lh", "1p"), default="cv",
                       help="cv: every box at the fiducial Omega_m=0.3, sigma_8=0.8, A_*=1 (or at the values "
                            "given below) with a seed per box; lh: Latin hypercube over Omega_m [0.1,0.5], "
                            "sigma_8 [0.6,1], A_SN1, A_AGN1 [0.25,4] log-uniform, A_SN2, A_AGN2 [0.5,2]; 1p: one "
                            "parameter at a time across its range, the others at the fiducial (or given) "
                            "values, one seed for all: 1P_base and 1P_p<j>_<k> (default: cv)")
    which.add_argument("--points", default=None, metavar="FILE.csv",
                       help="one box per row of a CSV file whose header names parameters (omega_m, sigma_8, "
                            "a_sn1, a_agn1, a_sn2, a_agn2; any case) and optionally name and seed; parameters "
                            "it lacks take the values given below or the fiducial ones")
    add_parameter_options(p, "the fiducial value; an lh set takes none")
    p.add_argument("--seed", type=int, default=0, metavar="S",
                   help="seed of the set; box i uses seeds derived from (S, i) (default: 0)")
    p.add_argument("--cola-steps", type=int, default=10, metavar="n", help="COLA time steps (default: 10)")
    p.add_argument("--pm-steps", type=int, default=40, metavar="n", help="PM time steps (default: 40)")
    p.add_argument("--z-start", type=float, default=49.0, help="redshift of the 2LPT initial conditions (default: 49)")
    p.add_argument("--power-spectrum", choices=("camb", "eh"), default="camb",
                   help="linear spectrum of the ICs: camb, or the Eisenstein & Hu fit (fast) (default: camb)")
    p.add_argument("--workers", type=int, default=1, metavar="W",
                   help="boxes simulated in parallel processes (default: 1)")
    p.add_argument("--velocities", action="store_true",
                   help="also write fields/dm_velocity, the mean COLA velocity per voxel [km/s]")
    p.add_argument("--members-stored", type=int, default=100, metavar="M",
                   help="member particles kept per halo in catalogs/halos (0: all) (default: 100)")
    add_scale(p)
    add_device(p)
    add_overwrite(p)
    calls(p, "galaxygen.cli.simulate")

