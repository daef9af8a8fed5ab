"""Painting and P(k) at full size, side by side with Pylians in the same run.

CIC painting of 256^3 random particles onto a 256^3 grid, and P(k) of a 256^3 grid (CIC window
deconvolved). Prints each time (best of --repeat), the ratio Pylians / galaxygen (> 1: galaxygen is
faster) and the largest relative difference of the results.
Usage: python benchmarks/bench_stats.py [--grid 256] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from galaxygen.mesh import paint
from galaxygen.stats.power import power_spectrum


def best_time(fn, repeat: int):
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--grid", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    import MAS_library as masl
    import Pk_library as pkl

    n, box = args.grid, 25.0
    threads = len(os.sched_getaffinity(0))
    print(f"cores {threads}, torch threads {torch.get_num_threads()}, grid {n}^3, particles {n}^3")
    pos = np.random.default_rng(0).uniform(0, box, size=(n ** 3, 3)).astype(np.float32)
    paint(pos[:1000], n, box, scheme="cic")  # compile the numba kernels outside the timing

    t_ours, ours = best_time(lambda: paint(pos, n, box, scheme="cic").numpy(), args.repeat)

    def pylians_paint():
        grid = np.zeros((n, n, n), dtype=np.float32)
        masl.MA(pos, grid, box, "CIC", verbose=False)
        return grid
    t_ref, ref = best_time(pylians_paint, args.repeat)
    # galaxygen's nodes sit at voxel centres, Pylians' at corners: compare on shifted positions
    shifted = np.zeros((n, n, n), dtype=np.float32)
    masl.MA(((pos - 0.5 * box / n) % box).astype(np.float32), shifted, box, "CIC", verbose=False)
    diff = np.abs(ours - shifted).max() / shifted.max()
    print(f"paint CIC   galaxygen {t_ours:6.3f} s   Pylians {t_ref:6.3f} s   ratio {t_ref / t_ours:5.2f}x"
          f"   max rel diff {diff:.1e}")

    field = ref
    delta = (field / field.mean() - 1).astype(np.float32)
    t_pk, pk = best_time(lambda: power_spectrum(field, box, scheme="cic"), args.repeat)
    t_pk_ref, pk_ref = best_time(lambda: pkl.Pk(delta, box, 0, "CIC", threads, verbose=False), args.repeat)
    pdiff = np.abs(pk.power / pk_ref.Pk[:, 0] - 1).max()
    print(f"P(k) CIC    galaxygen {t_pk:6.3f} s   Pylians {t_pk_ref:6.3f} s   ratio {t_pk_ref / t_pk:5.2f}x"
          f"   max rel diff {pdiff:.1e}   N_modes equal {np.array_equal(pk.n_modes, pk_ref.Nmodes3D)}")


if __name__ == "__main__":
    main()
