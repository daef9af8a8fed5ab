"""A fake CAMELS tree: tiny files with exactly the CAMELS keys, attributes, units and folder names of
both directory layouts, holding a designed simulation whose ingest result is known (`fake_simulation`).

For the ingest tests and benchmark, and to try `galaxygen ingest camels` without a download:
``write_camels_tree(root)`` then ``galaxygen ingest camels ROOT OUT --suite IllustrisTNG``.
Units as on disk: kpc/h for BoxSize / Coordinates / GroupPos / SubhaloPos / Group_R_Crit200,
1e10 Msun/h for MassTable and Subfind masses, sqrt(a) km/s for snapshot velocities.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import hdf5plugin
import numpy as np

from galaxygen.constants import RHO_CRIT

BOX_KPC = 25000.0
PARAM_HEADER = ["Name", "Omega_m", "sigma_8", "A_SN1", "A_AGN1", "A_SN2", "A_AGN2", "seed"]
STAR_COUNTS = [0, 5, 19, 20, 21, 100, 500]   # star particles of successive subhalos, around the 20 cut
STAR_MASS = 1.27e-3                           # per star particle [1e10 Msun/h]
HALO_CENTRES = np.array([[5, 5, 5], [5, 15, 20], [15, 5, 12], [20, 20, 5], [24.8, 0.3, 12]])  # Mpc/h
ISOLATED = np.array([[2, 22, 2], [22, 2, 22], [10, 20, 12]])                                   # Mpc/h
HALO_R200 = 0.6   # Mpc/h


def sim_params(index: int) -> dict[str, float]:
    """Distinct parameters per simulation (so that a column mix-up would show)."""
    return {"omega_m": 0.3 + 0.01 * index, "sigma_8": 0.8 - 0.01 * index, "a_sn1": 1.0 + 0.1 * index,
            "a_agn1": 1.5 + 0.1 * index, "a_sn2": 0.7 + 0.05 * index, "a_agn2": 1.2 + 0.02 * index,
            "seed": 1000.0 + index}


def write_params_file(path: Path, indices, set_name: str = "CV", order=None) -> Path:
    """A CosmoAstroSeed file with a header line; `order` permutes the columns (names stay right)."""
    cols = order or PARAM_HEADER
    key = {"Name": None, "Omega_m": "omega_m", "sigma_8": "sigma_8", "A_SN1": "a_sn1", "A_AGN1": "a_agn1",
           "A_SN2": "a_sn2", "A_AGN2": "a_agn2", "seed": "seed"}
    lines = ["#" + " ".join(cols)]
    for i in indices:
        p = sim_params(i)
        lines.append(" ".join(f"{set_name}_{i}" if c == "Name" else
                              (f"{int(p['seed'])}" if c == "seed" else f"{p[key[c]]:.5f}") for c in cols))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def _header(f, **attrs):
    h = f.create_group("Header")
    for k, v in attrs.items():
        h.attrs[k] = v


def write_snapshot(first: Path, pos_kpc: np.ndarray, vel: np.ndarray, *, omega_m: float, redshift: float = 0.0,
                   n_files: int = 1, blosc: bool = False, box_kpc: float = BOX_KPC) -> list[Path]:
    """An N-body snapshot (PartType1 only); `vel` are peculiar km/s, stored / sqrt(a) as Gadget does.

    `first` is ``.../snap_033.hdf5``; with ``n_files > 1`` the parts are ``snap_033.<k>.hdf5``.
    """
    n = len(pos_kpc)
    a = 1.0 / (1.0 + redshift)
    mass = omega_m * RHO_CRIT * (box_kpc / 1000) ** 3 / n / 1e10
    stem = first.name[: -len(".hdf5")]
    paths = [first] if n_files == 1 else [first.with_name(f"{stem}.{k}.hdf5") for k in range(n_files)]
    bounds = np.linspace(0, n, n_files + 1).astype(int)
    opts = dict(hdf5plugin.Blosc(cname="lz4", clevel=5, shuffle=hdf5plugin.Blosc.SHUFFLE)) if blosc else {}
    first.parent.mkdir(parents=True, exist_ok=True)
    for k, path in enumerate(paths):
        s = slice(bounds[k], bounds[k + 1])
        with h5py.File(path, "w") as f:
            _header(f, BoxSize=box_kpc, Redshift=redshift, Time=a, HubbleParam=0.6711, Omega0=omega_m,
                    OmegaLambda=1 - omega_m, OmegaBaryon=0.0,
                    MassTable=np.array([0, mass, 0, 0, 0, 0], dtype=np.float64),
                    NumPart_ThisFile=np.array([0, s.stop - s.start, 0, 0, 0, 0], dtype=np.int32),
                    NumPart_Total=np.array([0, n, 0, 0, 0, 0], dtype=np.uint32),
                    NumPart_Total_HighWord=np.zeros(6, dtype=np.uint32), NumFilesPerSnapshot=n_files)
            g = f.create_group("PartType1")
            g.create_dataset("Coordinates", data=pos_kpc[s].astype(np.float32), **opts)
            g.create_dataset("Velocities", data=(vel[s] / np.sqrt(a)).astype(np.float32), **opts)
            g.create_dataset("ParticleIDs", data=np.arange(s.start, s.stop, dtype=np.uint64), **opts)
    return paths


def write_groups(path: Path, groups: dict, subhalos: dict, *, omega_m: float, redshift: float = 0.0) -> Path:
    """A Subfind file (single part) with the Group/ and Subhalo/ datasets CAMELS has (kpc/h, 1e10 Msun/h)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ng, ns = len(groups["GroupPos"]), len(subhalos.get("SubhaloPos", []))
    with h5py.File(path, "w") as f:
        _header(f, BoxSize=BOX_KPC, Redshift=redshift, Time=1 / (1 + redshift), HubbleParam=0.6711, Omega0=omega_m,
                Ngroups_ThisFile=ng, Ngroups_Total=ng, Nsubgroups_ThisFile=ns, Nsubgroups_Total=ns, NumFiles=1)
        for name, cols in (("Group", groups), ("Subhalo", subhalos)):
            g = f.create_group(name)
            for k, v in cols.items():
                g.create_dataset(k, data=v)
    return path


def fake_simulation(index: int, *, n_part: int = 4096, grid: int = 16, seed: int = 0):
    """Particles, twin halos and hydro subhalos of one fake simulation, plus the truth to check against.

    DM particles sit inside voxels of a `grid`^3 mesh (never on a voxel edge), so the NGP counts
    per voxel are known exactly.
    """
    rng = np.random.default_rng(seed + 17 * index)
    h_kpc = BOX_KPC / grid
    idx = rng.integers(0, grid, size=(n_part, 3))
    pos = ((idx + rng.uniform(0.1, 0.9, size=(n_part, 3))) * h_kpc).astype(np.float32)
    vel = rng.normal(0, 300, size=(n_part, 3)).astype(np.float32)
    counts = np.zeros((grid,) * 3, np.float32)
    np.add.at(counts, (idx[:, 0], idx[:, 1], idx[:, 2]), 1)

    centres = (HALO_CENTRES + rng.uniform(-0.1, 0.1, size=HALO_CENTRES.shape)) % 25.0
    nh = len(centres)
    twin = {"GroupPos": (centres * 1000).astype(np.float32),
            "GroupMass": np.linspace(50, 10, nh).astype(np.float32),
            "Group_M_Crit200": np.linspace(40, 8, nh).astype(np.float32),
            "Group_R_Crit200": np.full(nh, HALO_R200 * 1000, np.float32),
            "GroupLenType": np.stack([np.zeros(nh), np.linspace(5000, 1000, nh), *np.zeros((4, nh))], 1).astype(np.int32),
            "GroupVel": rng.normal(0, 100, size=(nh, 3)).astype(np.float32),
            "GroupFirstSub": np.arange(nh, dtype=np.int32), "GroupNsubs": np.ones(nh, np.int32)}

    # hydro: one group per twin halo (central + 2 satellites, one across the periodic edge), then isolated ones
    sub_pos, sub_grp, first_sub = [], [], []
    for g, c in enumerate(centres):
        first_sub.append(len(sub_pos))
        for off in ([0.03, 0, 0], [0.25, -0.2, 0.1], [-0.3, 0.1, -0.2]):
            sub_pos.append((c + off) % 25.0)
            sub_grp.append(g)
    for k, c in enumerate(ISOLATED):
        first_sub.append(len(sub_pos))
        sub_pos.append(c)
        sub_grp.append(nh + k)
    ns = len(sub_pos)
    nstar = np.array([STAR_COUNTS[(i + index) % len(STAR_COUNTS)] for i in range(ns)], np.int32)
    mtype = np.zeros((ns, 6), np.float32)
    mtype[:, 0] = 1.0          # gas
    mtype[:, 1] = 20.0         # DM
    mtype[:, 4] = nstar * STAR_MASS
    mtype[:, 5] = 0.5          # black holes: must not be taken for stars
    ltype = np.zeros((ns, 6), np.int32)
    ltype[:, 1] = 500
    ltype[:, 4] = nstar
    sub_pos_kpc = (np.array(sub_pos) * 1000).astype(np.float32)
    subhalos = {"SubhaloPos": sub_pos_kpc, "SubhaloMassType": mtype, "SubhaloLenType": ltype,
                "SubhaloGrNr": np.array(sub_grp, np.int32), "SubhaloVel": rng.normal(0, 50, (ns, 3)).astype(np.float32),
                "SubhaloMass": mtype.sum(1)}
    ngh = nh + len(ISOLATED)
    hydro_groups = {"GroupPos": sub_pos_kpc[first_sub], "GroupMass": np.full(ngh, 10, np.float32),
                    "Group_M_Crit200": np.full(ngh, 8, np.float32), "Group_R_Crit200": np.full(ngh, 500, np.float32),
                    "GroupFirstSub": np.array(first_sub, np.int32), "GroupNsubs": np.bincount(sub_grp).astype(np.int32),
                    "GroupLenType": np.zeros((ngh, 6), np.int32)}
    host = np.array([g if g < nh else -1 for g in sub_grp])
    central = np.isin(np.arange(ns), first_sub)
    truth = {"counts": counts, "pos_kpc": pos, "vel": vel, "sub_pos_mpc": sub_pos_kpc.astype(np.float64) / 1000,
             "nstar": nstar, "mstar": mtype[:, 4].astype(np.float64) * 1e10, "host": host, "central": central,
             "halo_pos_mpc": twin["GroupPos"].astype(np.float64) / 1000, "params": sim_params(index)}
    return pos, vel, twin, subhalos, hydro_groups, truth


def write_suite_params_file(path: Path, names_indices) -> Path:
    """The older layout's ``Sims/<S>/CosmoAstroSeed_params.txt``: every set of the suite, no header,
    rows ``name Omega_m sigma_8 A_SN1 A_AGN1 A_SN2 A_AGN2 seed`` as CAMELS wrote them ('%6s %.5f ... %d')."""
    lines = []
    for name, i in names_indices:
        p = sim_params(i)
        lines.append("%6s %.5f %.5f %.5f %.5f %.5f %.5f %d" % (name, p["omega_m"], p["sigma_8"], p["a_sn1"],
                                                             p["a_agn1"], p["a_sn2"], p["a_agn2"], p["seed"]))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def write_sim_params_file(path: Path, index: int) -> Path:
    """The older layout's per-simulation ``CosmoAstro_params.txt``: the six bare values, no seed."""
    p = sim_params(index)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(" ".join(f"{p[k]:.5f}" for k in ("omega_m", "sigma_8", "a_sn1", "a_agn1", "a_sn2", "a_agn2"))
                    + "\n")
    return path


def write_camels_tree(root: Path, *, layout: str = "2024", suite: str = "IllustrisTNG", set_name: str = "CV",
                      indices=(0, 1), n_files: int = 1, blosc: bool = False, twin_groups: bool = True,
                      params_order=None, redshifts=(0.0,), n_part: int = 4096, grid: int = 16,
                      params: str = "set") -> dict:
    """Write a fake CAMELS tree in the 2024 or the pre-2024 layout; returns the truth per simulation.

    2024: ``Sims/<S>[_DM]/L25n256/<Set>/<Set>_<i>/snapshot_090.hdf5``, ``FOF_Subfind/<S>[_DM]/L25n256/<Set>/
    <Set>_<i>/groups_090.hdf5``, the parameter file in ``Sims/<S>/L25n256/<Set>/``.
    pre-2024: ``Sims/<S>[_DM]/<Set>_<i>/snap_033.hdf5`` and ``fof_subhalo_tab_033.hdf5`` side by side, the
    parameter file in ``Sims/<S>/``. Several `redshifts` give snapshots 090, 089, ... (033, 032, ...).
    `params`: "set" (the CosmoAstroSeed file of the set, with a header), "suite" (the older layout's
    header-less ``Sims/<S>/CosmoAstroSeed_params.txt``, with rows of another set too), "sim" (a
    ``CosmoAstro_params.txt`` in each hydro simulation's folder) or "none".
    """
    truth = {}
    z0 = 90 if layout == "2024" else 33
    for i in indices:
        name = f"{set_name}_{i}"
        pos, vel, twin, subs, hgroups, t = fake_simulation(i, n_part=n_part, grid=grid)
        om = t["params"]["omega_m"]
        if layout == "2024":
            dm_dir = root / "Sims" / f"{suite}_DM" / "L25n256" / set_name / name
            dm_grp_dir = root / "FOF_Subfind" / f"{suite}_DM" / "L25n256" / set_name / name
            hy_grp_dir = root / "FOF_Subfind" / suite / "L25n256" / set_name / name
            snap, grp = "snapshot", "groups"
        else:
            dm_dir = dm_grp_dir = root / "Sims" / f"{suite}_DM" / name
            hy_grp_dir = root / "Sims" / suite / name
            snap, grp = "snap", "fof_subhalo_tab"
        for k, z in enumerate(redshifts):
            num = f"{z0 - k:03d}"
            write_snapshot(dm_dir / f"{snap}_{num}.hdf5", pos, vel, omega_m=om, redshift=z, n_files=n_files, blosc=blosc)
            if twin_groups:
                write_groups(dm_grp_dir / f"{grp}_{num}.hdf5", twin, {}, omega_m=om, redshift=z)
            write_groups(hy_grp_dir / f"{grp}_{num}.hdf5", hgroups, subs, omega_m=om, redshift=z)
        truth[name] = t
    if params == "set":
        pdir = root / "Sims" / suite / "L25n256" / set_name if layout == "2024" else root / "Sims" / suite
        write_params_file(pdir / f"CosmoAstroSeed_{suite}_L25n256_{set_name}.txt", indices, set_name, params_order)
    elif params == "suite":
        rows = [(f"LH_{i}", i + 40) for i in indices] + [(f"{set_name}_{i}", i) for i in indices]
        write_suite_params_file(root / "Sims" / suite / "CosmoAstroSeed_params.txt", rows)
    elif params == "sim":
        for i in indices:
            sim_dir = (root / "Sims" / suite / "L25n256" / set_name / f"{set_name}_{i}" if layout == "2024"
                       else root / "Sims" / suite / f"{set_name}_{i}")
            write_sim_params_file(sim_dir / "CosmoAstro_params.txt", i)
    return truth
