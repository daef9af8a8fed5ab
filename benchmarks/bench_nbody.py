"""Built-in N-body at full size: time and peak memory of ICs, COLA and PM; COLA/PM P(k) per k.

For each particle count N (default 128 and 256) in a 25 Mpc/h box, three stages run in separate
child processes so that each peak resident memory (ru_maxrss) is its own; wall time and CPU time
(all threads) are printed, the latter for a machine shared with other jobs:
  ics   2LPT initial conditions (CAMB spectrum, z = 49),
  cola  ICs + COLA, 10 steps (or each of --cola-steps), 2x force mesh,
  pm    ICs + PM, 40 steps, 2x force mesh (FastPM factors).
Each child paints its z = 0 particles (CIC, N^3 grid) to a temporary file; the parent prints the
P(k) ratio COLA/PM per k bin (CIC deconvolved) and the largest |ratio - 1| below k = 0.5, 1, 2
and 4 h/Mpc, for each COLA step count: `--cola-steps 10 20 40` shows how COLA converges to PM.
Targets (issue 3, 2 cores): COLA 128^3 < 20 s, 256^3 < 4 min within 8 GiB; COLA/PM within 2 %
for k < 2 h/Mpc at 128^3.

The FFT stage (`--fft 64 128 256`, run first) prices thread-count independence: on the CPU every
3-D transform is `galaxygen.mesh.rfft3`/`irfft3`, composed of batched 1-D transforms, because
MKL's own 3-D transform gives results that change with the thread count. It times a forward and
inverse pair of both at each grid size and thread count (the peer: torch.fft.rfftn/irfftn) and
says whether each is bit-identical across thread counts.

Usage: python benchmarks/bench_nbody.py [--sizes 128 256] [--box 25] [--pm-steps 40]
       [--cola-steps 10 [20 40]] [--device auto] [--threads N] [--fft 64 128 256]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _cpu() -> float:
    """CPU seconds of this process, all threads (user + system)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def child(args) -> None:
    import numpy as np
    import torch

    from galaxygen.mesh import paint
    from galaxygen.cosmology.linear import Cosmology
    from galaxygen.sources.universe.ics import initial_conditions
    from galaxygen.sources.universe.nbody import run_cola, run_pm

    if args.threads:
        torch.set_num_threads(args.threads)
    cosmo = Cosmology()
    cosmo.linear_power([0.1])  # CAMB once, outside the timings
    t0, c0 = time.perf_counter(), _cpu()
    ics = initial_conditions(cosmo, args.n, args.box, 1, z_start=49.0, device=args.device)
    out = {"stage": args.stage, "n": args.n, "ics_s": time.perf_counter() - t0, "ics_cpu_s": _cpu() - c0}
    if args.stage != "ics":
        t0, c0 = time.perf_counter(), _cpu()
        if args.stage == "cola":
            parts = run_cola(ics, steps=args.cola_steps[0], mesh_factor=2)
        else:
            parts = run_pm(ics, steps=args.pm_steps, mesh_factor=2)
        if parts.pos.is_cuda:
            torch.cuda.synchronize()
        out["run_s"] = time.perf_counter() - t0
        out["run_cpu_s"] = _cpu() - c0
        del ics
        rho = paint(parts.pos, args.n, args.box, scheme="cic")
        np.save(args.out, rho.cpu().numpy())
    out["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
    if torch.cuda.is_available():
        out["peak_cuda_gib"] = torch.cuda.max_memory_allocated() / 2 ** 30
    print(json.dumps(out))


def fft_cost(grids: list[int], repeats: int = 3) -> None:
    """Time rfft3 + irfft3 against torch.fft.rfftn + irfftn (best of `repeats`), at 1 and 2
    threads, and check bit-identity across the thread counts."""
    import torch

    from galaxygen.mesh import irfft3, rfft3

    pairs = {"composed": lambda x: irfft3(rfft3(x), x.shape),
             "torch": lambda x: torch.fft.irfftn(torch.fft.rfftn(x), s=x.shape)}
    old = torch.get_num_threads()
    for n in grids:
        x = torch.randn((n,) * 3, generator=torch.Generator().manual_seed(0))
        times, outs = {}, {}
        for threads in (1, 2):
            torch.set_num_threads(threads)
            for name, f in pairs.items():
                best = float("inf")
                for _ in range(repeats):
                    t0 = time.perf_counter()
                    y = f(x)
                    best = min(best, time.perf_counter() - t0)
                times[name, threads], outs[name, threads] = best, y
        torch.set_num_threads(old)
        for name in pairs:
            same = bool(torch.equal(outs[name, 1], outs[name, 2]))
            print(f"fft {n}^3 {name:8s}: 1 thread {times[name, 1]:.3f} s, 2 threads {times[name, 2]:.3f} s "
                  f"(forward + inverse); identical across threads: {same}", flush=True)
        print(f"fft {n}^3 composed/torch time at 2 threads: "
              f"{times['composed', 2] / times['torch', 2]:.2f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[128, 256], help="particles per side")
    ap.add_argument("--box", type=float, default=25.0, help="box side [Mpc/h] (default 25)")
    ap.add_argument("--cola-steps", type=int, nargs="+", default=[10], help="one COLA run per count")
    ap.add_argument("--pm-steps", type=int, default=40)
    ap.add_argument("--stages", nargs="+", default=["ics", "cola", "pm"], choices=["ics", "cola", "pm"])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    ap.add_argument("--fft", type=int, nargs="*", default=[64, 128, 256],
                    help="grid sizes of the FFT cost stage (none: skip it)")
    ap.add_argument("--stage", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.stage:
        child(args)
        return
    if args.fft:
        fft_cost(args.fft)

    import numpy as np

    from galaxygen.stats.power import power_spectrum

    env = dict(os.environ, GALAXYGEN_NO_PROGRESS="1")
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            runs = [(stage, steps) for stage in args.stages
                    for steps in (args.cola_steps if stage == "cola" else [args.pm_steps])]
            res = {}
            for stage, steps in runs:
                name = f"{stage}{steps}" if stage != "ics" else stage
                out = Path(tmp) / f"{name}_{n}.npy"
                cmd = [sys.executable, __file__, "--stage", stage, "--n", str(n), "--box", str(args.box),
                       "--cola-steps", str(steps), "--pm-steps", str(args.pm_steps),
                       "--device", args.device, "--threads", str(args.threads), "--out", str(out)]
                proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
                if proc.returncode:
                    print(proc.stderr, file=sys.stderr)
                    raise SystemExit(f"stage {name} at {n}^3 failed")
                res[name] = r = json.loads(proc.stdout.strip().splitlines()[-1])
                line = f"{n}^3 {name:6s}: ics {r['ics_s']:7.2f} s ({r['ics_cpu_s']:.1f} CPU s)"
                if "run_s" in r:
                    line += f"  run {r['run_s']:8.2f} s ({r['run_cpu_s']:.1f} CPU s)"
                line += f"  peak RSS {r['peak_rss_gib']:.2f} GiB"
                if "peak_cuda_gib" in r:
                    line += f"  peak CUDA {r['peak_cuda_gib']:.2f} GiB"
                print(line, flush=True)
            pm = f"pm{args.pm_steps}"
            if pm not in res:
                continue
            pp = power_spectrum(np.load(Path(tmp) / f"{pm}_{n}.npy"), args.box, scheme="cic")
            for steps in args.cola_steps if "cola" in args.stages else []:
                pc = power_spectrum(np.load(Path(tmp) / f"cola{steps}_{n}.npy"), args.box, scheme="cic")
                ratio = pc.power / pp.power
                print(f"{n}^3 P(k) COLA({steps})/PM({args.pm_steps}):")
                shown = set(np.flatnonzero(pc.k < 2.0)) | set(
                    np.unique(np.searchsorted(pc.k, np.geomspace(2.0, pc.k[-1], 12))).clip(0, len(pc.k) - 1))
                for i in sorted(shown):
                    print(f"  k = {pc.k[i]:7.3f} h/Mpc  {ratio[i]:.4f}")
                worst = "  ".join(f"k < {kmax:g}: {np.max(np.abs(ratio[pc.k < kmax] - 1)):.4f}"
                                  for kmax in (0.5, 1.0, 2.0, 4.0))
                print(f"{n}^3 max |COLA({steps})/PM - 1|  {worst}", flush=True)


if __name__ == "__main__":
    main()
