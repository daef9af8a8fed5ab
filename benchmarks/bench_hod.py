"""HOD speed: fitting each model and populating halos, beside Pylians' HOD_library.hod_fast.

Usage: python benchmarks/bench_hod.py [--halos 100000] [--members 30]
Prints seconds per fit / per populate and the ratio to Pylians (same halos, same parameters,
central-satellite model, satellites on member particles).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from galaxygen.models.hod.fit import fit_occupation
from galaxygen.models.hod.occupation import make_model
from galaxygen.models.hod.populate import populate
from galaxygen.synthetic.halos import halo_catalogue

TRUE = {
    "seed3": {"log10_m_min": 12.0, "log10_m1": 12.8, "alpha": 0.9},
    "central-satellite": {"log10_m_min": 12.0, "log10_m1": 13.2, "alpha": 1.0},
    "zheng07": {"log10_m_min": 12.0, "sigma_log_m": 0.3, "log10_m0": 11.5, "log10_m1": 13.2, "alpha": 1.0},
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--halos", type=int, default=100000)
    ap.add_argument("--members", type=int, default=30)
    ap.add_argument("--box", type=float, default=200.0)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    halos = halo_catalogue(rng, a.halos, a.box, members=True, max_members=a.members)
    mass = halos["mass"]
    print(f"{a.halos} halos, {a.members} members max, box {a.box} Mpc/h")
    for name, p in TRUE.items():
        model = make_model(name, p)
        c, s = model.draw(mass, rng)
        t = time.perf_counter()
        res = fit_occupation(name, mass, c + s, float((c + s).sum()))
        dt = time.perf_counter() - t
        print(f"fit {name:18s} {dt:7.2f} s  ({(c + s).sum()} galaxies; alpha {res.params['alpha']:.3f} "
              f"± {res.errors['alpha']:.3f}, true {p['alpha']})")
    model = make_model("central-satellite", TRUE["central-satellite"])
    t = time.perf_counter()
    cat = populate(model, halos, a.box, np.random.default_rng(1))
    ours = time.perf_counter() - t
    print(f"populate (members) {ours:7.3f} s  ({len(cat['pos'])} galaxies)")
    plain = {k: halos[k] for k in ("pos", "mass")}
    t = time.perf_counter()
    populate(model, plain, a.box, np.random.default_rng(1))
    print(f"populate (NFW)     {time.perf_counter() - t:7.3f} s")
    try:
        import random

        import HOD_library
    except ImportError:
        print("Pylians HOD_library not installed: no peer timing")
        return
    HOD_library.random.sample = lambda pop, k: list(np.asarray(pop)[:k])  # py>=3.11 fix
    off = halos["member_offset"]
    n_mem = np.diff(off)
    n_target = model.mean_occupation(mass).sum()
    t = time.perf_counter()
    HOD_library.hod_fast(halos["member_pos"], np.zeros_like(halos["member_pos"]), np.arange(off[-1]),
                         np.arange(off[-1]), mass, halos["pos"], np.zeros_like(halos["pos"]),
                         np.full(len(n_mem), 10.0), n_mem, off[:-1], a.box, 1e10, 1e16,
                         n_target / a.box ** 3, 10 ** 13.2, 1.0, 1)
    theirs = time.perf_counter() - t
    random.seed()
    print(f"Pylians hod_fast   {theirs:7.3f} s  -> galaxygen is {theirs / ours:.1f}x faster")


if __name__ == "__main__":
    main()
