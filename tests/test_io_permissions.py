"""Atomically written files get the permissions of any new file: 0666 less the umask."""

from __future__ import annotations

import os

import pytest

from galaxygen.box import write_box
from galaxygen.io import write_json
from galaxygen.outputs import staged_folder


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077], ids=oct)
def test_atomic_files_respect_the_umask(tmp_path, make_box, mask):
    old = os.umask(mask)
    try:
        json_path = write_json(tmp_path / "a.json", {"x": 1})
        box_path = write_box(tmp_path / "b.h5", make_box(grid=16))
    finally:
        os.umask(old)
    for path in (json_path, box_path):
        assert os.stat(path).st_mode & 0o777 == 0o666 & ~mask, path
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.h5"]  # no temporary file left


@pytest.mark.parametrize("mask", [0o022, 0o077], ids=oct)
def test_staged_output_folders_respect_the_umask(tmp_path, mask):
    """A folder written whole (predict, evaluate, hod populate) is 0777 less the umask, like mkdir's."""
    old = os.umask(mask)
    try:
        with staged_folder(tmp_path / "out", "predict", overwrite=False) as tmp:
            write_json(tmp / "x.json", {"x": 1})
    finally:
        os.umask(old)
    assert os.stat(tmp_path / "out").st_mode & 0o777 == 0o777 & ~mask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
