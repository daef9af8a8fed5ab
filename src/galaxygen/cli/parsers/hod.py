"""`galaxygen hod fit|populate`: the options (the work: :mod:`galaxygen.cli.hod`)."""

from __future__ import annotations

from galaxygen.cli.parsers.common import add_overwrite, calls

# The HOD models: the names of galaxygen.models.hod.occupation.MODELS (a test checks).
HOD_MODELS = ("central-satellite", "seed3", "zheng07")


def register(sub) -> None:
    p = sub.add_parser("hod", help="the HOD baseline: fit on training boxes, populate halos",
                       description="Halo occupation distribution baseline. `fit` finds the parameters "
                                   "on training box files (halo and galaxy catalogues); `populate` "
                                   "fills the halos of box files and writes prediction box files.")
    hs = p.add_subparsers(dest="hod_command", metavar="ACTION")
    hs.required = True

    f = hs.add_parser("fit", help="fit an HOD on training boxes → hod.json",
                      description="Fit an HOD on box files with catalogs/halos and catalogs/galaxies. "
                                  "M_min and M1 are tied by the galaxy number density (imposed exactly); "
                                  "the rest by maximum likelihood of the galaxies per halo (default) or "
                                  "by chi^2 on the large-scale P(k). Masses in Msun/h (log10).")
    f.add_argument("boxes", nargs="+", metavar="BOX", help="training box files or folders of *.h5")
    f.add_argument("--model", required=True, choices=HOD_MODELS,
                   help="seed3: N~Poisson((M/M1)^alpha) for M>M_min; central-satellite: one central "
                        "above M_min + Poisson satellites; zheng07: Zheng et al. 2007 (5 parameters)")
    f.add_argument("--out", required=True, help="output JSON file (hod.json), written atomically")
    f.add_argument("--method", default="likelihood", choices=["likelihood", "pk"],
                   help="likelihood: per-halo occupation (default); pk: chi^2 on the galaxy P(k)")
    f.add_argument("--k-max", type=float, default=1.0,
                   help="largest k of the P(k) fit [h/Mpc] (method pk; default 1.0)")
    add_overwrite(f)
    calls(f, "galaxygen.cli.hod", "run_fit")

    q = hs.add_parser("populate", help="populate halos with a fitted HOD → prediction boxes",
                      description="Draw HOD galaxies in the halos of each box file and write prediction "
                                  "box files (source=prediction, same name and suite, fields/dm copied, "
                                  "fields/galaxies = NGP counts of the HOD galaxies, catalogs/galaxies). "
                                  "Files: DIR/<name>.h5, or DIR/<name>_r<k>.h5 for several realisations.")
    q.add_argument("fit", metavar="HOD_JSON", help="hod.json from `galaxygen hod fit`")
    q.add_argument("boxes", nargs="+", metavar="BOX", help="box files or folders with catalogs/halos")
    q.add_argument("--out", required=True, metavar="DIR", help="output folder for prediction boxes")
    q.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    q.add_argument("--realisations", type=int, default=1,
                   help="independent realisations per box (default 1)")
    add_overwrite(q)
    calls(q, "galaxygen.cli.hod", "run_populate")

