"""CMD 3-D grids -> boxes: particle counts from total-mass density, stellar mass as the target, units."""

from __future__ import annotations

import numpy as np
import pytest

from galaxygen.box import read_box
from galaxygen.cli import main
from galaxygen.errors import GalaxygenError
from galaxygen.sources.camels.cmd import CmdIngestConfig, ingest_cmd

RHO_CRIT = 2.77536627e11   # (Msun/h) / (Mpc/h)^3
N, L, NP = 16, 25.0, 256
OMEGA = (0.3, 0.35, 0.25)


def _write_cmd(root, *, units="density", headerless=True):
    """Grids for three simulations made from known particle counts and stellar masses."""
    rng = np.random.default_rng(3)
    voxel_kpc3 = (L * 1000 / N) ** 3
    counts = np.stack([rng.multinomial(NP**3, np.full(N**3, 1.0 / N**3)).reshape((N,) * 3) for _ in OMEGA])
    stars = rng.exponential(1e9, size=(len(OMEGA),) + (N,) * 3) * (rng.random((len(OMEGA),) + (N,) * 3) < 0.05)
    mp = np.array([om * RHO_CRIT * L**3 / NP**3 for om in OMEGA])
    mass = counts * mp[:, None, None, None]
    scale = voxel_kpc3 if units == "density" else 1.0
    d = root / "CMD" / "3D_grids" / "data"
    d.mkdir(parents=True)
    np.save(d / f"Grids_Mtot_Nbody_IllustrisTNG_CV_{N}_z=0.00.npy", (mass / scale).astype(np.float32))
    np.save(d / f"Grids_Mstar_IllustrisTNG_CV_{N}_z=0.00.npy", (stars / scale).astype(np.float32))
    np.save(d / f"Grids_Mtot_Nbody_IllustrisTNG_CV_{N}_z=1.00.npy", np.zeros((1,) + (N,) * 3, np.float32))
    rows = [f"{om} {0.8 + 0.01 * i} 1 1 1 1" for i, om in enumerate(OMEGA)]
    text = "\n".join(rows) if headerless else "#Omega_m sigma_8 A_SN1 A_AGN1 A_SN2 A_AGN2\n" + "\n".join(rows)
    (root / "CMD" / "params_CV_IllustrisTNG.txt").write_text(text + "\n")
    return counts, stars


@pytest.mark.parametrize("units", ["density", "mass"])
def test_cmd_counts_and_stellar_mass(tmp_path, units):
    counts, stars = _write_cmd(tmp_path, units=units)
    cfg = CmdIngestConfig(suite="IllustrisTNG", set_name="CV", grid=N)
    report = ingest_cmd(tmp_path, tmp_path / "out", cfg)
    assert report.ok and report.written == ["CV_0", "CV_1", "CV_2"]
    for i, om in enumerate(OMEGA):
        box = read_box(tmp_path / "out" / f"CV_{i}.h5")
        assert box.source == "cmd" and box.name == f"CV_{i}" and box.box_size == L and box.grid == N
        np.testing.assert_allclose(box.dm, counts[i], rtol=2e-5, atol=1e-3)     # mass / particle mass
        assert box.dm.mean() == pytest.approx(NP**3 / N**3, rel=1e-5)
        np.testing.assert_allclose(box.galaxies, stars[i], rtol=2e-6, atol=1e-2)  # Msun/h per voxel
        assert box.params["omega_m"] == pytest.approx(om) and box.params["sigma_8"] == pytest.approx(0.8 + 0.01 * i)
        assert box.meta["cmd_units"] == units and "NOT galaxy counts" in box.meta["galaxies_units"]
        assert box.meta["galaxies_quantity"] == "stellar_mass"


def test_cmd_wrong_units_and_selection(tmp_path, capsys):
    _write_cmd(tmp_path, headerless=False)
    # declared 'mass' but the file holds densities: every box fails with the reason
    code = main(["ingest", "cmd", str(tmp_path), str(tmp_path / "out"), "--suite", "IllustrisTNG", "--grid", str(N),
                 "--sims", "1-2", "--units", "mass"])
    out = capsys.readouterr()
    assert code == 1 and "wrong units" in out.err and '"n_failed": 2' in out.out
    code = main(["ingest", "cmd", str(tmp_path), str(tmp_path / "out"), "--suite", "IllustrisTNG", "--grid", str(N),
                 "--sims", "1-2"])
    assert code == 0 and sorted(p.name for p in (tmp_path / "out").glob("*.h5")) == ["CV_1.h5", "CV_2.h5"]
    with pytest.raises(GalaxygenError, match="no index 7"):
        ingest_cmd(tmp_path, tmp_path / "o2", CmdIngestConfig(suite="IllustrisTNG", grid=N, sims=(7,)))
    with pytest.raises(GalaxygenError, match=r"Grids_Mstar_IllustrisTNG_CV_16_z=1.00.npy"):
        ingest_cmd(tmp_path, tmp_path / "o3", CmdIngestConfig(suite="IllustrisTNG", grid=N, redshift=1.0))
    with pytest.raises(GalaxygenError, match="Grids_Mtot_Nbody_SIMBA_CV_16"):
        ingest_cmd(tmp_path, tmp_path / "o4", CmdIngestConfig(suite="SIMBA", grid=N))
