"""`galaxygen evaluate`: the options (the work: :mod:`galaxygen.cli.evaluate`)."""

from __future__ import annotations

from galaxygen.cli.parsers.common import add_overwrite, calls


def register(sub) -> None:
    p = sub.add_parser(
        "evaluate", help="compare predictions with the truth: metrics.json, figures, report.html",
        description="Compare any number of predictions (networks, diffusion samples, HOD realisations) "
                    "with the same truth boxes, matched by the boxes' name attribute (not the file name). "
                    "Writes metrics.json (voxel accuracy/precision/recall/F1 and confusion counts pooled over "
                    "all test voxels, total galaxies, P(k) [(Mpc/h)^3] and r(k) against k [h/Mpc] with the NGP "
                    "window deconvolved, one-point histograms, summaries over k below half the grid Nyquist, "
                    "and the cross-prediction matrix by the predictions' meta 'trained_on' and the truth "
                    "suite), PNG figures and report.html into --out. Several realisations of one "
                    "prediction (meta 'realisation') give means and 16-84 % bands.")
    p.add_argument("--truth", nargs="+", required=True, metavar="BOX",
                   help="truth box files or folders of *.h5 box files")
    p.add_argument("--pred", nargs="+", action="append", required=True, metavar="NAME=BOX",
                   help="a named prediction: NAME=BOX [BOX ...], boxes or folders (all realisations); "
                        "repeat --pred for more predictions")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder for metrics.json, *.png, report.html")
    p.add_argument("--json", action="store_true", help="print the headline rows as JSON (stable keys)")
    add_overwrite(p)
    calls(p, "galaxygen.cli.evaluate")

