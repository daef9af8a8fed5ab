"""One runner on one machine and beyond: 16 boxes of 64^3 serial vs ``--workers 2`` vs ``--dask
local:2`` (the ratios in the same run), per-box costs at 64^3 and 128^3, and the projection for a
1000-box Latin hypercube at 256^3 on 10 nodes of 32 cores (docs/scale.md).

The per-box cost at 256^3 is EXTRAPOLATED, not measured: the 64^3 -> 128^3 ratio of measured
per-box costs is applied once more (128^3 -> 256^3; the PM mesh, the FFTs and the particle count all
grow by 8, with a log factor). The projection assumes core-seconds add up (a box's work spread
over the cores it is given with the efficiency measured here) and counts no I/O or queue waits.
Boxes use the Eisenstein & Hu spectrum (--power-spectrum eh; CAMB adds a few seconds per box).
Usage: python benchmarks/bench_scale.py [--boxes 16] [--particles 64] [--big 128] [--out DIR]

Measured on the project's 2-core machine (shared, load 6-7 during the run), about 40 minutes:

    16 x 64^3   serial 430 s   --workers 2 270 s (x1.6)   --dask local:2 308 s (x1.4)
    per box     64^3 27 s   128^3 155 s   256^3 ~894 s (extrapolated)
    1000 x 256^3: ~497 core-hours, ~1.55 h on 10 nodes x 32 cores (docs/scale.md discusses the limits)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from galaxygen import runner
from galaxygen.device import cpu_cores
from galaxygen.sources.universe.suite import SimulateConfig, simulate_suite


def timed(out: Path, cfg: SimulateConfig, scale: runner.Scale) -> float:
    """Wall seconds of one simulate run into a fresh `out`."""
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    simulate_suite(out, cfg, scale)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--boxes", type=int, default=16)
    ap.add_argument("--particles", type=int, default=64)
    ap.add_argument("--big", type=int, default=128, help="particles per side of the second per-box measurement")
    ap.add_argument("--big-boxes", type=int, default=2)
    ap.add_argument("--out", default=None, help="scratch folder (default: a temporary one)")
    args = ap.parse_args()
    os.environ.setdefault("GALAXYGEN_NO_PROGRESS", "1")
    scratch = Path(args.out or tempfile.mkdtemp(prefix="bench_scale_"))
    cores = cpu_cores()
    cfg = SimulateConfig(boxes=args.boxes, particles=args.particles, set="lh", power="eh", device="cpu")
    walls = {"serial": timed(scratch / "serial", cfg, runner.Scale()),
             "workers 2": timed(scratch / "pool", cfg, runner.Scale(workers=2)),
             "dask local:2": timed(scratch / "dask", cfg, runner.Scale(dask="local:2"))}
    small = walls["serial"] / args.boxes
    big_cfg = SimulateConfig(boxes=args.big_boxes, particles=args.big, set="lh", power="eh", device="cpu")
    big = timed(scratch / "big", big_cfg, runner.Scale()) / args.big_boxes
    growth = big / small                    # per-box cost x this per doubling of the side
    at_256 = big * growth ** max(0, (256 // args.big).bit_length() - 1)
    core_hours = 1000 * at_256 * cores / 3600
    result = {
        "cores": cores, "boxes": args.boxes, "particles": args.particles,
        "wall_s": {k: round(v, 1) for k, v in walls.items()},
        "speedup_vs_serial": {k: round(walls["serial"] / v, 2) for k, v in walls.items()},
        "per_box_s": {f"{args.particles}^3": round(small, 2), f"{args.big}^3": round(big, 2),
                      "256^3 (extrapolated)": round(at_256, 1)},
        "lh_1000_at_256": {"core_hours": round(core_hours, 1),
                           "hours_on_10_nodes_x_32_cores": round(core_hours / 320, 2)},
    }
    print(json.dumps(result, indent=2))
    if args.out is None:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
