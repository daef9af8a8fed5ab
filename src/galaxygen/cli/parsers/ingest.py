"""`galaxygen ingest camels|cmd|nbody`: the options (the work: :mod:`galaxygen.cli.ingest`)."""

from __future__ import annotations

from galaxygen.cli.parsers.common import add_overwrite, add_scale, calls
from galaxygen.cli.parsers.params import add_parameter_options


def register(sub) -> None:
    p = sub.add_parser("ingest", help="CAMELS simulations, CMD grids or your own N-body DM -> box files",
                       description="Turn CAMELS data on disk into galaxygen box files (one per simulation). "
                                   "See docs/camels.md for what to download.")
    kinds = p.add_subparsers(dest="kind", metavar="KIND")
    kinds.required = True

    c = kinds.add_parser(
        "camels", help="CAMELS snapshots + Subfind catalogues (N-body twin = input, hydro galaxies = target)",
        description="For each simulation <Set>_<i> of a hydro suite: paint the N-body twin's (<Suite>_DM) DM "
                    "particles (NGP counts per voxel), take halos from the twin's Subfind file (else galaxygen's "
                    "FoF) and galaxies from the hydro Subfind file, parameters from the CosmoAstroSeed file "
                    "(see --params). "
                    "Both directory layouts (before/after 2024) are recognised. Existing boxes are skipped (resume). "
                    "Prints a JSON summary; exit status 1 if any simulation failed.")
    c.add_argument("root", help="CAMELS root folder (holding Sims/ and FOF_Subfind/), or its Sims/ folder")
    c.add_argument("out_dir", help="output folder; boxes are written as OUT_DIR/<Set>_<i>.h5")
    c.add_argument("--suite", required=True, help="hydro suite: IllustrisTNG, SIMBA, Astrid, ... (the N-body twin "
                                                  "<Suite>_DM is used for the DM input)")
    c.add_argument("--set", dest="set_name", default="CV", help="simulation set: CV, LH, 1P, EX, ... (default: CV)")
    c.add_argument("--sims", default=None, help="indices i of <Set>_<i>, e.g. 0-26 or 0-3,7 (default: all found)")
    when = c.add_mutually_exclusive_group()
    when.add_argument("--snapshot", type=int, default=None,
                      help="snapshot number (default: the one at --redshift; z = 0 is 090 since 2024, 033 before)")
    when.add_argument("--redshift", type=float, default=0.0, help="redshift of the snapshot to use (default: 0)")
    c.add_argument("--grid", type=int, default=256, help="voxels per side N (default: 256, i.e. ~0.1 Mpc/h voxels "
                                                         "in a 25 Mpc/h box)")
    cut = c.add_mutually_exclusive_group()
    cut.add_argument("--min-star-particles", type=int, default=20,
                     help="galaxy = subhalo with at least this many star particles, SubhaloLenType[:,4] "
                          "(default: 20, about 2.5e8 Msun/h)")
    cut.add_argument("--min-stellar-mass", type=float, default=None,
                     help="galaxy = subhalo with stellar mass SubhaloMassType[:,4] >= this, in Msun/h "
                          "(replaces --min-star-particles)")
    c.add_argument("--params", default=None,
                   help="parameter file (CosmoAstroSeed_<Suite>_L25n256_<Set>.txt; read by its header line); "
                        "default: searched under ROOT, then in each simulation's folder; with none found, "
                        "Omega_m comes from the snapshot header (CV: the fiducial values) and a warning names "
                        "the parameters left unknown")
    c.add_argument("--velocities", action="store_true",
                   help="also store fields/dm_velocity: mean DM peculiar velocity per voxel in km/s")
    c.add_argument("--chunk", type=int, default=1 << 22,
                   help="particles read at a time (default: 4194304, i.e. 100 MB of float64 positions)")
    add_scale(c)
    add_overwrite(c)
    calls(c, "galaxygen.cli.ingest", "run_camels")

    m = kinds.add_parser(
        "cmd", help="CAMELS Multifield Dataset 3-D grids (Mtot_Nbody = input, Mstar = regression target)",
        description="One box per index of Grids_Mtot_Nbody_<Suite>_<Set>_<N>_z=<z>.npy (-> fields/dm, DM particles "
                    "per voxel = mass / particle mass) and Grids_Mstar_<Suite>_<Set>_<N>_z=<z>.npy (-> fields/galaxies "
                    "= stellar mass per voxel in Msun/h, NOT galaxy counts). Files are memory-mapped. Prints a JSON "
                    "summary; exit status 1 if any box failed.")
    m.add_argument("root", help="folder searched (recursively) for the Grids_*.npy and parameter files")
    m.add_argument("out_dir", help="output folder; boxes are written as OUT_DIR/<Set>_<i>.h5")
    m.add_argument("--suite", required=True, help="hydro suite in the file names: IllustrisTNG, SIMBA, Astrid")
    m.add_argument("--set", dest="set_name", default="CV", help="set in the file names: CV, LH, 1P, EX (default: CV)")
    m.add_argument("--grid", type=int, default=256, help="N in the file names: 128, 256 or 512 (default: 256)")
    m.add_argument("--redshift", type=float, default=0.0, help="z in the file names (default: 0)")
    m.add_argument("--sims", default=None, help="indices to ingest, e.g. 0-26 (default: all in the file)")
    m.add_argument("--params", default=None, help="parameter file (header line, or CMD's header-less 6 columns "
                                                  "Omega_m sigma_8 A_SN1 A_AGN1 A_SN2 A_AGN2); default: searched under ROOT")
    m.add_argument("--units", choices=("auto", "density", "mass"), default="auto",
                   help="units of the grids: density in (Msun/h)/(kpc/h)^3 (CMD), mass per voxel in Msun/h, or "
                        "auto: recognised from the mean of Mtot, which must be Omega_m rho_crit (default: auto)")
    m.add_argument("--box-size", type=float, default=25.0, help="box side in Mpc/h (default: 25)")
    m.add_argument("--n-particles-side", type=int, default=256,
                   help="DM particles per side of the N-body runs, for the particle mass (default: 256)")
    add_scale(m)
    add_overwrite(m)
    calls(m, "galaxygen.cli.ingest", "run_cmd")
    _register_nbody(kinds)


def _register_nbody(kinds) -> None:
    """Add the ``nbody`` kind to the ``ingest`` sub-parsers `kinds`."""
    n = kinds.add_parser(
        "nbody", help="your own N-body DM (snapshot, positions or density grid) -> DM-only boxes to predict",
        description="One DM-only box per input (no fields/galaxies: `galaxygen predict` fills it), named after the "
                    "input file: an HDF5 snapshot of the Gadget/AREPO/SWIFT family (Header/BoxSize, "
                    "PartType1/Coordinates; a multi-file one by its part snap.0.hdf5; lengths in the units its "
                    "header records, or --length-unit), a positions array (n, 3) or a density grid (M, M, M) "
                    "(FILE.npy, or FILE.h5:DATASET; with --box-size). fields/dm = NGP counts of the particles, or "
                    "the grid summed into coarser voxels. Paint at --grid N voxels per side, or at the voxel size "
                    "of a trained run (--like RUN), which refuses in one line when it cannot match. Existing boxes "
                    "are skipped (resume). Prints a JSON summary; exit status 1 if any input failed. See "
                    "docs/own-dm.md.")
    n.add_argument("inputs", nargs="+", metavar="INPUT", help="snapshot file, FILE.npy or FILE.h5:DATASET")
    n.add_argument("out_dir", metavar="OUT_DIR", help="output folder; boxes are written as OUT_DIR/<name>.h5")
    size = n.add_mutually_exclusive_group()
    size.add_argument("--grid", type=int, default=None, metavar="N",
                      help="voxels per side (a density grid: a divisor of its own, default its own)")
    size.add_argument("--like", default=None, metavar="RUN",
                      help="paint at the voxel size of the boxes this trained run learnt from (its inputs.json)")
    n.add_argument("--box-size", type=float, default=None, metavar="L",
                   help="box side in --length-unit (positions and grids; a snapshot's header has it)")
    n.add_argument("--length-unit", default=None, choices=("Mpc/h", "kpc/h", "Mpc", "kpc"),
                   help="unit of the positions and box size (default: a snapshot's own, else Mpc/h); one that "
                        "differs from a snapshot's own is refused")
    n.add_argument("--hubble", type=float, default=None, metavar="h",
                   help="h, for lengths in Mpc or kpc when the file does not record it")
    n.add_argument("--redshift", type=float, default=None, metavar="Z",
                   help="redshift of the DM (default: a snapshot's own, else 0)")
    n.add_argument("--halos", action="store_true",
                   help="find FoF halos (b = 0.2, >= 20 members) -> catalogs/halos, so that `galaxygen hod "
                        "populate` can fill the box too (needs Omega_m: the snapshot's or --omega-m)")
    n.add_argument("--mean-count", type=float, default=None, metavar="X",
                   help="density grids holding another density than DM particles per voxel (1 + delta, mass): "
                        "rescale to a mean of X particles per voxel")
    n.add_argument("--suite", default="nbody", help="suite name of the boxes (default: nbody)")
    n.add_argument("--chunk", type=int, default=1 << 22,
                   help="particles read at a time (default: 4194304)")
    add_parameter_options(n, "unknown, left out of the box; a snapshot's Omega_m fills --omega-m")
    add_overwrite(n)
    calls(n, "galaxygen.cli.ingest", "run_nbody")
