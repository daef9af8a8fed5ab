"""`galaxygen hod fit` + `galaxygen hod populate` end to end, writing prediction box files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hod_helpers import hod_box, ngp_counts

from galaxygen.box import read_box, write_box
from galaxygen.cli import main
from galaxygen.models.hod.occupation import make_model

TRUE = {"log10_m_min": 11.8, "log10_m1": 12.6, "alpha": 0.9}


@pytest.fixture(scope="module")
def boxes(tmp_path_factory):
    d = tmp_path_factory.mktemp("hod")
    model = make_model("seed3", TRUE)
    rng = np.random.default_rng(17)
    train = [hod_box(model, rng, name=f"CV_{i}", members=(i == 0), suite="truth") for i in range(2)]
    for b in train:
        write_box(d / "train" / f"{b.name}.h5", b)
    test = hod_box(model, rng, name="CV_9", suite="truth", with_host=False)
    write_box(d / "test" / "CV_9.h5", test)
    return d


def _fit(boxes, model, *extra):
    out = boxes / f"{model}{'_'.join(extra)}.json"
    rc = main(["hod", "fit", str(boxes / "train"), "--model", model, "--out", str(out), *extra])
    assert rc == 0
    return out, json.loads(out.read_text())


def test_fit_writes_hod_json_with_parameters_and_errors(boxes, capsys):
    out, fit = _fit(boxes, "seed3")
    train = [read_box(boxes / "train" / f"CV_{i}.h5") for i in range(2)]
    n_gal = sum(len(b.galaxy_catalog["pos"]) for b in train)
    vol = sum(b.box_size ** 3 for b in train)
    assert fit["format"] == "galaxygen.hod" and fit["model"] == "seed3" and fit["method"] == "likelihood"
    assert fit["number_density"] == pytest.approx(n_gal / vol, rel=1e-12)
    assert fit["expected_number_density"] == pytest.approx(fit["number_density"], rel=5e-3)
    assert fit["trained_on"] == "truth" and [b["name"] for b in fit["boxes"]] == ["CV_0", "CV_1"]
    assert all(b["matching"] == "host_halo" for b in fit["boxes"])
    assert fit["covariance"]["names"][0] == "log10_m_min" and len(fit["covariance"]["matrix"]) == 3
    for k, v in TRUE.items():
        assert abs(fit["params"][k] - v) < 3 * fit["errors"][k] + 1e-9, (k, fit["params"][k], v)
    printed = json.loads(capsys.readouterr().out)
    assert printed["params"] == pytest.approx(fit["params"])
    # nothing is overwritten unless asked
    assert main(["hod", "fit", str(boxes / "train"), "--model", "seed3", "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err


def test_populate_writes_valid_prediction_boxes(boxes, tmp_path):
    fit_path, fit = _fit(boxes, "zheng07")
    out = tmp_path / "pred"
    rc = main(["hod", "populate", str(fit_path), str(boxes / "test" / "CV_9.h5"), "--out", str(out),
               "--seed", "5", "--realisations", "2"])
    assert rc == 0
    assert sorted(p.name for p in out.iterdir()) == [".galaxygen-outputs.json", "CV_9_r0.h5", "CV_9_r1.h5"]
    src = read_box(boxes / "test" / "CV_9.h5")
    preds = [read_box(out / f"CV_9_r{k}.h5") for k in range(2)]
    for k, p in enumerate(preds):
        assert (p.source, p.name, p.suite) == ("prediction", "CV_9", "truth")
        np.testing.assert_array_equal(p.dm, src.dm)
        np.testing.assert_array_equal(p.halos["mass"], src.halos["mass"])
        assert p.params == src.params
        assert p.meta["model"] == "hod:zheng07" and p.meta["trained_on"] == "truth"
        assert p.meta["realisation"] == k and p.meta["realisations"] == 2
        assert p.meta["fit"] == str(fit_path)
        cat = p.galaxy_catalog
        assert p.galaxies.sum() == len(cat["pos"])
        np.testing.assert_array_equal(p.galaxies, ngp_counts(cat["pos"], p.grid, p.box_size))
        cen = cat["is_central"] == 1
        np.testing.assert_allclose(cat["pos"][cen], src.halos["pos"][cat["host_halo"][cen]], atol=1e-4)
    assert not np.array_equal(preds[0].galaxies, preds[1].galaxies)
    # nothing is overwritten unless asked; the same seed gives the same galaxies
    args = ["hod", "populate", str(fit_path), str(boxes / "test"), "--out", str(out), "--seed", "5",
            "--realisations", "2"]
    assert main(args) == 2
    assert main(args + ["--overwrite"]) == 0
    np.testing.assert_array_equal(read_box(out / "CV_9_r1.h5").galaxies, preds[1].galaxies)


def test_populated_number_density_matches_target(boxes, tmp_path):
    fit_path, fit = _fit(boxes, "central-satellite")
    out = tmp_path / "dens"
    reps = 2
    assert main(["hod", "populate", str(fit_path), str(boxes / "train"), "--out", str(out),
                 "--realisations", str(reps)]) == 0
    files = sorted(out.glob("*.h5"))
    assert len(files) == 2 * reps
    count = sum(float(read_box(f, catalogs=False).galaxies.sum()) for f in files)
    vol = sum(read_box(boxes / "train" / f"CV_{i}.h5", catalogs=False).box_size ** 3 for i in range(2))
    expected = fit["number_density"] * vol * reps
    assert abs(count - expected) < 4 * np.sqrt(expected)
    # in expectation the fitted model gives the target density on the fit boxes (to 0.5 %)
    model = make_model("central-satellite", fit["params"])
    halos = [read_box(boxes / "train" / f"CV_{i}.h5").halos for i in range(2)]
    mean = sum(model.mean_occupation(h["mass"]).sum() for h in halos)
    assert mean == pytest.approx(fit["number_density"] * vol, rel=5e-3)


def test_pk_method_lowers_chi2_from_the_likelihood_start(boxes):
    from galaxygen.models.hod.fit_pk import model_power, pk_data

    _, fit = _fit(boxes, "central-satellite", "--method", "pk")
    assert fit["method"] == "pk" and fit["details"]["k_max"] == 1.0
    train = [read_box(boxes / "train" / f"CV_{i}.h5") for i in range(2)]
    data = [pk_data(b.galaxies, b.halos["pos"], b.halos["mass"], b.box_size, 1.0, b.name) for b in train]

    def chi2(params):
        m = make_model("central-satellite", params)
        return sum(float(np.sum((model_power(m, d) - d.power) ** 2 * d.n_modes / (2 * d.power ** 2)))
                   for d in data)

    start = fit["details"]["likelihood_fit"]["params"]
    assert fit["details"]["chi2"] == pytest.approx(chi2(fit["params"]), rel=1e-6)
    assert chi2(fit["params"]) <= chi2(start) + 1e-9
    assert fit["expected_number_density"] == pytest.approx(fit["number_density"], rel=5e-3)


def test_box_without_halos_is_a_clear_error(boxes, make_box, tmp_path, capsys):
    bare = tmp_path / "bare.h5"
    write_box(bare, make_box(name="bare", with_catalogs=False))
    fit_path = boxes / "seed3.json"
    if not fit_path.exists():
        _fit(boxes, "seed3")
    assert main(["hod", "populate", str(fit_path), str(bare), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "bare.h5" in err and "catalogs/halos" in err
    assert main(["hod", "fit", str(bare), "--model", "seed3", "--out", str(tmp_path / "f.json")]) == 2
    assert "catalogs/halos" in capsys.readouterr().err
    assert not (tmp_path / "o").exists() and not (tmp_path / "f.json").exists()


def test_hod_json_round_trip_and_bad_files(boxes, tmp_path):
    from galaxygen.errors import GalaxygenError
    from galaxygen.models.hod.task import read_fit, write_fit

    fit_path = boxes / "seed3.json"
    if not fit_path.exists():
        _fit(boxes, "seed3")
    fit = read_fit(fit_path)
    copy = write_fit(tmp_path / "copy.json", fit)
    assert read_fit(copy).as_dict() == fit.as_dict()
    assert fit.build().params() == fit.params
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**fit.as_dict(), "format": "other"}))
    with pytest.raises(GalaxygenError, match="format"):
        read_fit(bad)
    bad.write_text(json.dumps({**fit.as_dict(), "params": {"log10_m_min": 12.0}}))
    with pytest.raises(GalaxygenError, match="params"):
        read_fit(bad)
    with pytest.raises(GalaxygenError, match="no such HOD fit file"):
        read_fit(tmp_path / "missing.json")


def test_populate_a_dm_only_box_with_fof_halos(boxes, tmp_path):
    """One's own DM: positions -> `ingest nbody --halos` (FoF, no fields/galaxies) -> `hod populate`."""
    rng = np.random.default_rng(4)
    centres = rng.uniform(0, 50, size=(60, 3))
    clumps = np.repeat(centres, 50, axis=0) + rng.normal(0, 0.03, size=(3000, 3))
    pos = np.concatenate([clumps, rng.uniform(0, 50, size=(5000, 3))]) % 50.0
    np.save(tmp_path / "mine.npy", pos)
    assert main(["ingest", "nbody", str(tmp_path / "mine.npy"), str(tmp_path / "dm"), "--grid", "16",
                 "--box-size", "50", "--halos", "--omega-m", "0.3"]) == 0
    box = read_box(tmp_path / "dm" / "mine.h5", allow_dm_only=True)
    assert len(box.halos["mass"]) == 60 and not box.galaxies.any()
    fit_path = boxes / "zheng07.json"                           # fitted by an earlier test, else now
    if not fit_path.exists():
        fit_path, _ = _fit(boxes, "zheng07")
    out = tmp_path / "pred"
    assert main(["hod", "populate", str(fit_path), str(tmp_path / "dm" / "mine.h5"), "--out", str(out)]) == 0
    pred = read_box(out / "mine.h5")
    cat = pred.galaxy_catalog
    assert pred.galaxies.sum() == len(cat["pos"]) >= 60        # a central in each massive halo, and satellites
    cen = cat["is_central"] == 1
    np.testing.assert_allclose(cat["pos"][cen], box.halos["pos"][cat["host_halo"][cen]], atol=1e-4)
