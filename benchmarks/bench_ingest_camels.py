"""Ingest speed and memory on a fake CAMELS simulation (galaxygen.synthetic.camels, bigger).

Prints: time to write the fake files, time of `ingest_camels` for one box (read in chunks + NGP paint
+ catalogues + write), the peak resident memory of the ingest process next to the snapshot size,
and the NGP painting time of all particles by galaxygen.mesh vs Pylians MAS_library.MA in this run.

    python benchmarks/bench_ingest_camels.py            # 128^3 particles, 128^3 grid
    python benchmarks/bench_ingest_camels.py --n 256    # the CAMELS size (256^3), ~1 GB of disk
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from galaxygen.synthetic.camels import fake_simulation, write_groups, write_params_file, write_snapshot

os.environ.setdefault("GALAXYGEN_NO_PROGRESS", "1")


def _status_kib(key: str) -> int:
    """VmRSS / VmHWM of this process [KiB] (Linux); ru_maxrss would include the parent's peak."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _ingest(root: str, out: str, grid: int, velocities: bool, queue) -> None:
    import galaxygen.mesh  # noqa: F401  (imports torch and numba: count them in the baseline)
    from galaxygen.sources.camels.camels import CamelsIngestConfig, ingest_camels

    before = _status_kib("VmRSS")
    t = time.perf_counter()
    report = ingest_camels(root, out, CamelsIngestConfig(suite="IllustrisTNG", grid=grid, velocities=velocities))
    queue.put((time.perf_counter() - t, before, _status_kib("VmHWM"), report.failed))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=128, help="particles per side (default 128)")
    ap.add_argument("--velocities", action="store_true")
    args = ap.parse_args()
    n = args.n
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "camels"
        t = time.perf_counter()
        _, _, twin, subs, hgroups, truth = fake_simulation(0, n_part=8, grid=n)
        rng = np.random.default_rng(0)
        pos = rng.uniform(0, 25000.0, size=(n**3, 3)).astype(np.float32)
        vel = rng.normal(0, 300, size=(n**3, 3)).astype(np.float32)
        om = truth["params"]["omega_m"]
        d = root / "Sims" / "IllustrisTNG_DM" / "L25n256" / "CV" / "CV_0"
        snap = write_snapshot(d / "snapshot_090.hdf5", pos, vel, omega_m=om)[0]
        write_groups(root / "FOF_Subfind" / "IllustrisTNG_DM" / "L25n256" / "CV" / "CV_0" / "groups_090.hdf5",
                     twin, {}, omega_m=om)
        write_groups(root / "FOF_Subfind" / "IllustrisTNG" / "L25n256" / "CV" / "CV_0" / "groups_090.hdf5",
                     hgroups, subs, omega_m=om)
        write_params_file(root / "Sims" / "IllustrisTNG" / "CosmoAstroSeed_IllustrisTNG_L25n256_CV.txt", [0])
        print(f"write fake {n}^3 snapshot: {time.perf_counter() - t:.2f} s, {snap.stat().st_size / 2**20:.0f} MiB")

        # warm the numba caches in a throw-away run, then measure in a fresh process
        ctx = mp.get_context("spawn")
        for label in ("warm-up", "measured"):
            q = ctx.Queue()
            out = Path(tmp) / f"out-{label}"
            p = ctx.Process(target=_ingest, args=(str(root), str(out), n, args.velocities, q))
            p.start()
            dt, rss0, rss1, failed = q.get()
            p.join()
            assert not failed, failed
        print(f"ingest_camels, one box, {n}^3 particles -> {n}^3 grid{' + velocities' if args.velocities else ''}: "
              f"{dt:.2f} s; peak RSS {rss1 / 1024:.0f} MiB (after imports {rss0 / 1024:.0f} MiB, "
              f"snapshot {snap.stat().st_size / 2**20:.0f} MiB)")

        from galaxygen.mesh import paint

        p64 = pos.astype(np.float64) / 1000
        paint(p64[:1000], n, 25.0, scheme="ngp")
        t = time.perf_counter()
        ours = paint(p64, n, 25.0, scheme="ngp")
        t_ours = time.perf_counter() - t
        try:
            import MAS_library as MASL

            grid = np.zeros((n,) * 3, dtype=np.float32)
            # Pylians' NGP cells are centred on i*h; galaxygen's voxel i covers [i h, (i+1) h): shift by h/2
            p32 = ((pos.astype(np.float64) / 1000 - 12.5 / n) % 25.0).astype(np.float32)
            t = time.perf_counter()
            MASL.MA(p32, grid, 25.0, "NGP", verbose=False)
            t_pyl = time.perf_counter() - t
            agree = float(np.abs(np.asarray(ours) - grid).max())
            print(f"NGP paint of {n}^3 particles: galaxygen.mesh {t_ours:.3f} s, Pylians {t_pyl:.3f} s, "
                  f"ratio {t_ours / t_pyl:.2f}; max |difference| {agree:g}")
        except ImportError:
            print(f"NGP paint of {n}^3 particles: galaxygen.mesh {t_ours:.3f} s (Pylians not installed)")


if __name__ == "__main__":
    main()
