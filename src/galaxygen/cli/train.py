"""`galaxygen train`: train a network (two-phase CNN or diffusion model) into a run directory."""

from __future__ import annotations

from galaxygen.cli.common import add_overwrite, emit_json
from galaxygen.config import apply_overrides, load_yaml, packaged_configs


def register(sub) -> None:
    p = sub.add_parser(
        "train", help="train a network on box files into a run directory",
        description="Train the task named by the config's top-level key `task` (two_phase, vdm) on the box "
                    "files in --boxes (split into training and validation boxes by the config's data section; "
                    "keep test boxes elsewhere). The run directory receives config.json (the resolved config), "
                    "transform.json, checkpoints and CSV logs. Runs under torchrun for DDP on several GPUs, "
                    "CPU processes or nodes: `torchrun --nproc-per-node K -m galaxygen train ...`.")
    p.add_argument("--config", required=True,
                   help="YAML config file, or when no such file exists here the name of a packaged config, with "
                        f"or without .yaml: {', '.join(packaged_configs())}")
    p.add_argument("--boxes", required=True, nargs="+", help="box files or folders of *.h5 box files")
    p.add_argument("--out", required=True, help="run directory to create (or to continue with --resume)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out exactly from its last checkpoint (default: start a new run)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set classifier.train.steps=200 (repeatable; value in YAML)")
    p.add_argument("--device", default=None,
                   help="torch device: auto, cpu, cuda (default: the config's `device`, else auto)")
    add_overwrite(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from galaxygen.training import distributed as D
    from galaxygen.models.registry import train

    config = apply_overrides(load_yaml(args.config), args.overrides)
    summary = train(config, args.boxes, args.out, resume=args.resume, overwrite=args.overwrite, device=args.device)
    if D.is_main():
        emit_json(summary)
    D.cleanup()
    return 0
