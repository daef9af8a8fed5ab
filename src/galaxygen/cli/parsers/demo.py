"""`galaxygen demo`: the options (the work: :mod:`galaxygen.cli.demo`)."""

from __future__ import annotations

from galaxygen.cli.parsers.common import add_device, add_overwrite, calls


def register(sub) -> None:
    p = sub.add_parser(
        "demo", help="run the whole pipeline on the embedded default, end to end",
        description="Simulate a built-in CV set for two galaxy-surrogate variants, fit the HOD, train the "
                    "two-phase network and a short diffusion model, predict the test boxes (also across "
                    "variants), evaluate model vs HOD vs truth and write report.html.")
    p.add_argument("--out", default="demo-out", help="output folder (default: demo-out)")
    p.add_argument("--size", choices=("tiny", "small", "full"), default="small",
                   help="tiny: 16^3 voxels, about two minutes (tests); small: 64^3 voxels in a 25 Mpc/h box, "
                        "under 15 minutes on 2 CPU cores; full: 256^3 voxels, the design's scale, for a GPU "
                        "(default: small)")
    p.add_argument("--seed", type=int, default=0, help="base random seed of the simulations and samples (default 0)")
    p.add_argument("--json", action="store_true", help="print the stage statuses and headline rows as JSON")
    add_device(p)
    add_overwrite(p)
    calls(p, "galaxygen.cli.demo")

