"""`galaxygen simulate OUT_DIR`: built-in universe -> box files (a CV, LH, 1P set or chosen points).

The work of the command: its options are in :mod:`galaxygen.cli.parsers.simulate`.
"""

from __future__ import annotations

from galaxygen.cli.common import emit_json, options_named, scale_of
from galaxygen.cli.parsers.params import parameter_values
from galaxygen.errors import ConfigError
from galaxygen.sources.universe import suite


def run(args) -> int:
    if args.members_stored < 0:
        raise ConfigError(f"--members-stored: expected >= 0, got {args.members_stored}")
    if args.points and args.boxes is not None:
        raise ConfigError("--boxes: a --points file makes one box per row")
    with options_named({"power": "--power-spectrum", "max_members_stored": "--members-stored"}):
        cfg = suite.SimulateConfig(
            boxes=args.boxes, particles=args.particles, grid=args.grid, box_size=args.box_size,
            redshift=args.redshift, galaxy_model=args.galaxy_model,
            set="points" if args.points else args.set_, seed=args.seed,
            values=tuple(parameter_values(args).items()), points=args.points,
            cola_steps=args.cola_steps, pm_steps=args.pm_steps, z_start=args.z_start, power=args.power_spectrum,
            workers=args.workers, device=args.device, velocities=args.velocities,
            max_members_stored=args.members_stored or None, overwrite=args.overwrite)
    emit_json(suite.simulate_suite(args.out_dir, cfg, scale_of(args, args.workers)))
    return 0
