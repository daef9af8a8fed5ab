"""`galaxygen train`: train a network (two-phase CNN or diffusion model) into a run directory.

The work of the command: its options are in :mod:`galaxygen.cli.parsers.train`.
"""

from __future__ import annotations

from galaxygen.cli.common import emit_json
from galaxygen.config import apply_overrides, load_yaml
from galaxygen.models.registry import train
from galaxygen.training import distributed as D


def run(args) -> int:
    config = apply_overrides(load_yaml(args.config), args.overrides)
    summary = train(config, args.boxes, args.out, resume=args.resume, overwrite=args.overwrite, device=args.device)
    if D.is_main():
        emit_json(summary)
    D.cleanup()
    return 0
