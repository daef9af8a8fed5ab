"""Box files: round trip, atomic writes, and one clear error per kind of bad input."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from galaxygen.box import FORMAT, read_box, read_info, write_box
from galaxygen.errors import BoxFormatError, GalaxygenError


def test_round_trip_keeps_everything(tmp_path, make_box):
    box = make_box(grid=16)
    box = box.replace(dm_velocity=np.random.default_rng(0).normal(size=(3, 16, 16, 16)).astype(np.float32),
                      meta={"generator": "test", "particles": 32})
    path = write_box(tmp_path / "b.h5", box)
    back = read_box(path)
    assert (back.box_size, back.grid, back.redshift, back.source, back.suite, back.name) == \
        (box.box_size, box.grid, box.redshift, box.source, box.suite, box.name)
    np.testing.assert_array_equal(back.dm, box.dm)
    np.testing.assert_array_equal(back.galaxies, box.galaxies)
    np.testing.assert_array_equal(back.dm_velocity, box.dm_velocity)
    assert back.params == box.params
    assert back.meta == {"generator": "test", "particles": 32}
    for cat, ref in ((back.halos, box.halos), (back.galaxy_catalog, box.galaxy_catalog)):
        assert set(cat) == set(ref)
        for k in ref:
            np.testing.assert_array_equal(cat[k], ref[k])


def test_write_refuses_to_overwrite_and_leaves_no_temporary(tmp_path, make_box):
    path = write_box(tmp_path / "b.h5", make_box(name="A"))
    with pytest.raises(GalaxygenError, match="already exists"):
        write_box(path, make_box(name="B"))
    assert read_box(path).name == "A"
    write_box(path, make_box(name="B"), overwrite=True)
    assert read_box(path).name == "B"
    assert [p.name for p in tmp_path.iterdir()] == ["b.h5"]


def test_failed_write_keeps_old_file(tmp_path, make_box, monkeypatch):
    path = write_box(tmp_path / "b.h5", make_box(name="A"))
    import galaxygen.box as boxmod

    def boom(*a, **k):
        raise RuntimeError("disk full")
    monkeypatch.setattr(boxmod.h5py if hasattr(boxmod, "h5py") else h5py.Group, "create_dataset", boom,
                        raising=False)
    monkeypatch.setattr(h5py.Group, "create_dataset", boom)
    with pytest.raises(RuntimeError):
        write_box(path, make_box(name="B"), overwrite=True)
    monkeypatch.undo()
    assert read_box(path).name == "A"
    assert [p.name for p in tmp_path.iterdir()] == ["b.h5"]


def _corrupt(path, edit):
    with h5py.File(path, "r+") as f:
        edit(f)


def _replace(key, value):
    def edit(f):
        del f[key]
        f[key] = value
    return edit


BAD = {
    "wrong format": (lambda f: f.attrs.__setitem__("format", "other"), "attribute 'format'"),
    "wrong version": (lambda f: f.attrs.__setitem__("version", 2), "attribute 'version'"),
    "missing attr": (lambda f: f.attrs.__delitem__("box_size"), "attribute 'box_size'"),
    "missing dm": (lambda f: f.__delitem__("fields/dm"), "fields/dm: missing"),
    "missing galaxies": (lambda f: f.__delitem__("fields/galaxies"), "fields/galaxies: missing"),
    "wrong shape": (_replace("fields/dm", np.zeros((8, 8, 8), np.float32)), "fields/dm: expected shape"),
    "wrong dtype": (_replace("fields/galaxies", np.zeros((16,) * 3, np.float64)), "fields/galaxies: expected dtype"),
    "nan": (_replace("fields/dm", np.full((16,) * 3, np.nan, np.float32)), "fields/dm: contains NaN"),
    "negative": (_replace("fields/galaxies", -np.ones((16,) * 3, np.float32)), "fields/galaxies: contains negative"),
    "bad source": (lambda f: f.attrs.__setitem__("source", "guess"), "source"),
    "ragged catalog": (_replace("catalogs/halos/mass", np.ones(3)), "catalogs/halos: columns differ"),
    "bad param": (lambda f: f["params"].attrs.__setitem__("omega_x", 1.0), "params/omega_x"),
    "negative rate": (lambda f: f["fields"].create_dataset("galaxy_rate", data=-np.ones((16,) * 3, np.float32)),
                      "fields/galaxy_rate: contains negative"),
    "rate shape": (lambda f: f["fields"].create_dataset("galaxy_rate", data=np.ones((8,) * 3, np.float32)),
                   "fields/galaxy_rate: expected shape"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_names_file_and_key(tmp_path, make_box, case):
    path = write_box(tmp_path / "b.h5", make_box(grid=16))
    edit, key = BAD[case]
    _corrupt(path, edit)
    with pytest.raises(BoxFormatError) as err:
        read_box(path)
    assert str(path) in str(err.value) and key in str(err.value)


def test_missing_and_non_hdf5_files(tmp_path):
    with pytest.raises(BoxFormatError, match="no such box file"):
        read_box(tmp_path / "nope.h5")
    junk = tmp_path / "junk.h5"
    junk.write_text("not hdf5")
    with pytest.raises(BoxFormatError, match=f"{junk}: not a readable HDF5 file"):
        read_box(junk)


def test_info_reports_counts(tmp_path, make_box):
    box = make_box(grid=16)
    path = write_box(tmp_path / "b.h5", box)
    info = read_info(path)
    assert info["n_dm_particles"] == pytest.approx(float(box.dm.sum()))
    assert info["n_galaxies"] == pytest.approx(float(box.galaxies.sum()))
    assert info["halos"]["count"] == len(box.halos["mass"])
    assert info["galaxies_catalog"]["count"] == len(box.galaxy_catalog["pos"])
    assert info["has_dm_velocity"] is False
    with h5py.File(path) as f:
        assert f.attrs["format"] == FORMAT


def test_constructor_validates(make_box):
    box = make_box()
    with pytest.raises(BoxFormatError, match="fields/dm: expected dtype float32"):
        box.replace(dm=box.dm.astype(np.float64))


def test_galaxy_rate_round_trip_and_info(tmp_path, make_box):
    box = make_box(grid=16)
    assert box.galaxy_rate is None and read_info(write_box(tmp_path / "a.h5", box))["expected_galaxies"] is None
    rate = np.random.default_rng(0).gamma(0.5, 0.2, (16,) * 3).astype(np.float32)
    path = write_box(tmp_path / "b.h5", box.replace(galaxy_rate=rate))
    back = read_box(path)
    np.testing.assert_array_equal(back.galaxy_rate, rate)
    assert read_info(path)["expected_galaxies"] == pytest.approx(float(rate.sum(dtype=np.float64)))
    with pytest.raises(BoxFormatError, match="fields/galaxy_rate: expected dtype float32"):
        box.replace(galaxy_rate=rate.astype(np.float64))
