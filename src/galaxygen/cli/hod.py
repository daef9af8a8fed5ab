"""`galaxygen hod fit …` / `galaxygen hod populate …`: the HOD baseline.

The work of the command: its options are in :mod:`galaxygen.cli.parsers.hod`.
"""

from __future__ import annotations

from galaxygen.cli.common import emit_json
from galaxygen.models.hod.task import fit_boxes, populate_boxes, write_fit


def run_fit(args) -> int:
    fit = fit_boxes(args.boxes, args.model, method=args.method, k_max=args.k_max)
    write_fit(args.out, fit, overwrite=args.overwrite)
    emit_json({"out": args.out, "model": fit.model, "method": fit.method, "params": fit.params,
               "errors": fit.errors, "number_density": fit.number_density,
               "expected_number_density": fit.expected_number_density})
    return 0


def run_populate(args) -> int:
    written = populate_boxes(args.fit, args.boxes, args.out, seed=args.seed,
                             realisations=args.realisations, overwrite=args.overwrite)
    emit_json({"written": [str(p) for p in written]})
    return 0
