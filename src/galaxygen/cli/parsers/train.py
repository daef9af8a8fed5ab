"""`galaxygen train`: the options (the work: :mod:`galaxygen.cli.train`)."""

from __future__ import annotations

from galaxygen.cli.parsers.common import add_overwrite, calls
from galaxygen.config import packaged_configs


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
    calls(p, "galaxygen.cli.train")

