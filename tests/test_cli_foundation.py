"""The `galaxygen` entry point: info and power, JSON output, clear errors without tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from galaxygen.box import write_box
from galaxygen.cli import main


def test_info_text_and_json(tmp_path, make_box, capsys):
    box = make_box(grid=16)
    path = write_box(tmp_path / "CV_0.h5", box)
    assert main(["info", str(path)]) == 0
    text = capsys.readouterr().out
    assert "16^3" in text and "CV_0" in text
    assert main(["info", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["grid"] == 16 and info["n_galaxies"] == pytest.approx(float(box.galaxies.sum()))


def test_power_and_cross_json(tmp_path, make_box):
    a = write_box(tmp_path / "a.h5", make_box(name="a", seed=1))
    b = write_box(tmp_path / "b.h5", make_box(name="b", seed=2))
    out = tmp_path / "pk.json"
    assert main(["power", str(a), "--field", "dm", "--out", str(out)]) == 0
    pk = json.loads(out.read_text())
    assert len(pk["k"]) == len(pk["power"]) == len(pk["n_modes"]) and pk["shot_noise"] > 0
    out2 = tmp_path / "x.json"
    assert main(["power", str(a), "--cross", str(a), "--out", str(out2)]) == 0
    assert np.allclose(json.loads(out2.read_text())["r"], 1.0)
    assert main(["power", str(a), "--cross", str(b), "--field", "dm"]) == 0


def test_power_json_flag_before_the_box_prints_json(tmp_path, make_box, capsys):
    a = write_box(tmp_path / "a.h5", make_box(name="a", seed=1))
    assert main(["power", "--json", str(a)]) == 0
    pk = json.loads(capsys.readouterr().out)
    assert pk["box"] == str(a) and pk["field"] == "galaxies" and len(pk["k"]) > 0


def test_power_out_refuses_an_existing_file_unless_overwrite(tmp_path, make_box):
    a = write_box(tmp_path / "a.h5", make_box(name="a", seed=1))
    out = tmp_path / "pk.json"
    out.write_text("my notes\n")
    proc = subprocess.run([sys.executable, "-m", "galaxygen", "power", str(a), "--out", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == f"galaxygen power: error: {out}: already exists (pass --overwrite to replace it)"
    assert out.read_text() == "my notes\n"
    assert main(["power", str(a), "--out", str(out), "--overwrite"]) == 0
    assert json.loads(out.read_text())["box"] == str(a)


def test_bad_box_is_one_line_error(tmp_path):
    bad = tmp_path / "bad.h5"
    bad.write_text("nope")
    proc = subprocess.run([sys.executable, "-m", "galaxygen", "info", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "not a readable HDF5 file" in proc.stderr and "Traceback" not in proc.stderr


def test_parsers_import_no_science():
    """Building the parsers (what `galaxygen --help` does) imports neither torch, numba, scipy nor h5py:
    each command's work module is imported only when it runs (timed in benchmarks/bench_cli.py)."""
    code = ("import sys; from galaxygen.cli import build_parser; build_parser(); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'numba', 'scipy', 'h5py', 'numpy'}))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"


def test_parser_choices_name_the_library_registries():
    """The parsers list model names without importing the models; they must be the registries' names."""
    from galaxygen.cli.parsers.hod import HOD_MODELS
    from galaxygen.cli.parsers.simulate import GALAXY_MODELS
    from galaxygen.models.hod.occupation import MODELS
    from galaxygen.sources.universe.surrogate import VARIANTS

    assert HOD_MODELS == tuple(sorted(MODELS))
    assert GALAXY_MODELS == tuple(sorted(VARIANTS))
