"""FoF halo finding at 128^3 and 256^3 particles, and `simulate` of one box end to end.

Particles: a COLA run of the built-in universe (z = 0, 25 Mpc/h, fiducial cosmology, EH spectrum,
--cola-steps steps, force mesh = particles per side), or with --synthetic a clustered set (half
the particles in NFW halos with a power-law mass function, half uniform). Each FoF measurement runs
in a fresh process that first compiles/loads the numba kernels on a small set, then times
`fof_labels` and `find_halos` on the full set and reports the peak resident memory above the
particles already loaded. --peer also times scipy (cKDTree.query_pairs + connected_components,
the pair-list approach) on the same particles, with its ratio.

Usage: python benchmarks/bench_halos.py [--sizes 128 256] [--synthetic] [--peer]
                                        [--simulate 128] [--pm-steps 40] [--cola-steps 10]
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

import numpy as np

BOX = 25.0


def rss_mb() -> float:
    """Current resident memory [MB] (Linux /proc)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


def clustered(n_side: int, rng: np.random.Generator, frac: float = 0.5, c: float = 8.0) -> np.ndarray:
    """Half the particles in NFW halos (dN/dn ~ n^-1.9 from 20 members), half uniform."""
    n = n_side**3
    sizes, total = [], 0
    while total < frac * n:
        s = min(int(20 * (1 - rng.random()) ** (-1 / 0.9)), n // 50)
        sizes.append(s)
        total += s
    sizes = np.array(sizes)
    n_bg = n - sizes.sum()
    r200 = (sizes / (200 * n / BOX**3) * 3 / (4 * np.pi)) ** (1 / 3)
    owner = np.repeat(np.arange(len(sizes)), sizes)
    x = np.linspace(1e-4, 1, 4000)
    mu = lambda y: np.log1p(y) - y / (1 + y)  # noqa: E731
    r = np.interp(rng.random(len(owner)), mu(c * x) / mu(c), x) * r200[owner]
    u = rng.normal(size=(len(owner), 3))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    halo = rng.uniform(0, BOX, size=(len(sizes), 3))[owner] + r[:, None] * u
    return (np.concatenate([rng.uniform(0, BOX, size=(n_bg, 3)), halo]) % BOX).astype(np.float32)


def cola_particles(n_side: int, steps: int) -> tuple[np.ndarray, float]:
    from galaxygen.cosmology.linear import Cosmology
    from galaxygen.sources.universe.ics import initial_conditions
    from galaxygen.sources.universe.nbody import run_cola

    cosmo = Cosmology()
    ics = initial_conditions(cosmo, n_side, BOX, 1, device="cpu", method="eh")
    parts = run_cola(ics, cosmo, steps=steps, mesh_factor=1, device="cpu")
    return parts.pos.numpy(), parts.particle_mass


def child(path: str, what: str) -> None:
    """Time one FoF (in this fresh process) and print JSON."""
    pos = np.load(path)
    n_side = round(len(pos) ** (1 / 3))
    ll = 0.2 * BOX / n_side
    if what == "galaxygen":
        from galaxygen.halos.fof import find_halos, fof_labels

        warm = np.random.default_rng(0).uniform(0, BOX, size=(4096, 3)).astype(np.float32)
        find_halos(warm, BOX, 1.0, min_members=2)  # compile / load the kernels
        base = rss_mb()
        t = time.perf_counter()
        labels = fof_labels(pos, BOX, ll, 20)
        t_labels = time.perf_counter() - t
        t = time.perf_counter()
        cat = find_halos(pos, BOX, 1.0)
        t_cat = time.perf_counter() - t
        out = {"labels_s": t_labels, "find_halos_s": t_cat, "n_halos": int(labels.max() + 1),
               "n_halos_catalogue": len(cat["mass"]), "largest": int(cat["n_particles"][0])}
    else:
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components
        from scipy.spatial import cKDTree

        base = rss_mb()
        t = time.perf_counter()
        pairs = cKDTree(pos.astype(np.float64), boxsize=BOX).query_pairs(ll, output_type="ndarray")
        graph = coo_matrix((np.ones(len(pairs), np.int8), (pairs[:, 0], pairs[:, 1])), shape=(len(pos),) * 2)
        _, lab = connected_components(graph, directed=False)
        n_halos = int((np.bincount(lab) >= 20).sum())
        out = {"labels_s": time.perf_counter() - t, "n_halos": n_halos, "pairs": len(pairs)}
    out["peak_extra_mb"] = peak_mb() - base
    print(json.dumps(out))


def run_child(path: Path, what: str) -> dict:
    res = subprocess.run([sys.executable, __file__, "--child", str(path), what], capture_output=True,
                         text=True, env={**os.environ, "GALAXYGEN_NO_PROGRESS": "1"})
    if res.returncode:
        return {"error": res.stderr.strip().splitlines()[-1] if res.stderr else f"exit {res.returncode}"}
    return json.loads(res.stdout.strip().splitlines()[-1])


def bench_simulate(n_side: int, cola_steps: int, pm_steps: int) -> dict:
    from galaxygen.sources.universe.suite import SimulateConfig, simulate_suite

    with tempfile.TemporaryDirectory() as tmp:
        cfg = SimulateConfig(boxes=1, particles=n_side, cola_steps=cola_steps, pm_steps=pm_steps,
                             device="auto", power="camb")
        t = time.perf_counter()
        summary = simulate_suite(tmp, cfg)
        box = summary["boxes"][0]
        size = Path(box["path"]).stat().st_size / 1e6
    return {"seconds": time.perf_counter() - t, "n_halos_cola": box["n_halos"], "n_galaxies": box["n_galaxies"],
            "file_mb": size, "peak_rss_mb": peak_mb()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="*", default=[128, 256], help="particles per side for FoF")
    ap.add_argument("--synthetic", action="store_true", help="clustered synthetic particles instead of COLA")
    ap.add_argument("--cola-steps", type=int, default=10, help="COLA steps for the particles / the box")
    ap.add_argument("--pm-steps", type=int, default=40, help="PM steps of the simulated box")
    ap.add_argument("--peer", action="store_true", help="also time scipy's pair-list FoF (memory hungry)")
    ap.add_argument("--simulate", type=int, default=128, help="particles per side of the box (0: skip)")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return
    print(f"threads: {len(os.sched_getaffinity(0))} cores available")
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            t = time.perf_counter()
            if args.synthetic:
                pos, source = clustered(n, np.random.default_rng(n)), "clustered synthetic"
            else:
                pos, source = cola_particles(n, args.cola_steps)[0], f"COLA z=0 ({args.cola_steps} steps)"
            print(f"\n{n}^3 particles, {source}, made in {time.perf_counter() - t:.1f} s")
            path = Path(tmp) / f"pos{n}.npy"
            np.save(path, pos)
            del pos
            ours = run_child(path, "galaxygen")
            print(f"  galaxygen fof_labels {ours.get('labels_s', float('nan')):.2f} s, find_halos (all "
                  f"columns) {ours.get('find_halos_s', float('nan')):.2f} s, peak memory +"
                  f"{ours.get('peak_extra_mb', float('nan')):.0f} MB, halos {ours.get('n_halos')} "
                  f"(largest {ours.get('largest')} particles) {ours.get('error', '')}")
            if args.peer:
                peer = run_child(path, "scipy")
                ratio = peer.get("labels_s", float("nan")) / ours.get("labels_s", float("nan"))
                print(f"  scipy pair-list FoF {peer.get('labels_s', float('nan')):.2f} s, peak memory +"
                      f"{peer.get('peak_extra_mb', float('nan')):.0f} MB, {peer.get('pairs')} pairs, halos "
                      f"{peer.get('n_halos')}; ratio scipy/galaxygen {ratio:.1f} {peer.get('error', '')}")
    if args.simulate:
        r = bench_simulate(args.simulate, args.cola_steps, args.pm_steps)
        print(f"\nsimulate 1 box {args.simulate}^3 (COLA {args.cola_steps} + PM {args.pm_steps} steps, CAMB): "
              f"{r['seconds']:.1f} s, {r['n_halos_cola']} COLA halos, {r['n_galaxies']} galaxies, "
              f"file {r['file_mb']:.1f} MB, peak memory {r['peak_rss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
