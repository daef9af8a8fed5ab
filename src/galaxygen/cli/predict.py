"""`galaxygen predict RUN BOX... --out DIR`: prediction box files from a trained run.

The work of the command: its options are in :mod:`galaxygen.cli.parsers.predict`.
"""

from __future__ import annotations

from galaxygen.cli.common import emit_json, scale_of
from galaxygen.models.registry import predict


def run(args) -> int:
    options = {k: v for k, v in (("tile", args.tile), ("halo", args.halo), ("batch", args.batch),
                                 ("counts", args.counts), ("sharpen", args.sharpen), ("sharpen_satellites", args.sharpen_satellites),
                                 ("steps", args.steps), ("mean", args.mean)) if v is not None}
    paths = predict(args.run, args.boxes, args.out, samples=args.samples, seed=args.seed, device=args.device,
                    overwrite=args.overwrite, allow_mismatch=args.allow_mismatch, scale=scale_of(args),
                    **options)
    emit_json({"predictions": [str(p) for p in paths]})
    return 0
