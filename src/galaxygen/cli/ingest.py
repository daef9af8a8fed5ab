"""`galaxygen ingest camels|cmd ROOT OUT_DIR ...`: real data -> box files; `galaxygen ingest nbody
INPUT... OUT_DIR`: one's own N-body DM -> DM-only box files.

The work of the command: its options are in :mod:`galaxygen.cli.parsers.ingest`.
"""

from __future__ import annotations

import sys
from functools import partial

from galaxygen.cli.common import emit_json, options_named, scale_of
from galaxygen.cli.parsers.params import parameter_values
from galaxygen.sources.camels.camels import CamelsIngestConfig, ingest_camels
from galaxygen.sources.camels.cmd import CmdIngestConfig, ingest_cmd
from galaxygen.sources.camels.runner import parse_index_list
from galaxygen.sources.nbody.ingest import NbodyIngestConfig, ingest_nbody
from galaxygen.training.run_inputs import grid_like

# Config fields whose command-line option is spelled otherwise (for error messages).
RENAMED = {"set_name": "--set", "params_file": "--params", "chunk_particles": "--chunk"}


def _finish(report) -> int:
    emit_json(report.as_dict())
    for name, reason in report.failed.items():
        print(f"galaxygen ingest: {name} failed: {reason}", file=sys.stderr)
    print(f"galaxygen ingest: {len(report.written)} written, {len(report.skipped)} skipped (already there), "
          f"{len(report.failed)} failed", file=sys.stderr)
    return 0 if report.ok else 1


def run_camels(args) -> int:
    with options_named(RENAMED):
        cfg = CamelsIngestConfig(
            suite=args.suite, set_name=args.set_name, sims=parse_index_list(args.sims) if args.sims else None,
            snapshot=args.snapshot, redshift=args.redshift, grid=args.grid,
            min_star_particles=args.min_star_particles, min_stellar_mass=args.min_stellar_mass,
            params_file=args.params, velocities=args.velocities, overwrite=args.overwrite,
            chunk_particles=args.chunk)
    return _finish(ingest_camels(args.root, args.out_dir, cfg, scale_of(args)))


def run_cmd(args) -> int:
    with options_named(RENAMED):
        cfg = CmdIngestConfig(
            suite=args.suite, set_name=args.set_name, grid=args.grid, redshift=args.redshift,
            sims=parse_index_list(args.sims) if args.sims else None, params_file=args.params, units=args.units,
            box_size=args.box_size, n_particles_side=args.n_particles_side, overwrite=args.overwrite)
    return _finish(ingest_cmd(args.root, args.out_dir, cfg, scale_of(args)))


def run_nbody(args) -> int:
    with options_named(RENAMED):
        cfg = NbodyIngestConfig(grid=args.grid, box_size=args.box_size, length_unit=args.length_unit,
                                hubble=args.hubble, redshift=args.redshift,
                                params=tuple(parameter_values(args).items()), halos=args.halos,
                                mean_count=args.mean_count, suite=args.suite, chunk_particles=args.chunk,
                                overwrite=args.overwrite)
        report = ingest_nbody(args.inputs, args.out_dir, cfg,
                              grid_for=partial(grid_like, args.like) if args.like else None)
    return _finish(report)
