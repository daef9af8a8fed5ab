"""`galaxygen generate RUN --out DIR`: galaxy fields and catalogues at chosen parameters.

The work of the command: its options are in :mod:`galaxygen.cli.parsers.generate`.
"""

from __future__ import annotations

from galaxygen.cli.common import emit_json, options_named
from galaxygen.cli.parsers.params import parameter_values
from galaxygen.pipelines.generate import GenerateConfig, generate
from galaxygen.sources.universe.sets import check_values


def run(args) -> int:
    with options_named():
        values = check_values(parameter_values(args))
        cfg = GenerateConfig(values=tuple(values.items()), seed=args.seed, samples=args.samples,
                             particles=args.particles, device=args.device, overwrite=args.overwrite)
    emit_json(generate(args.run, args.out, cfg))
    return 0
