"""Config loading: YAML 1.2 floats, packaged config names, full key paths in errors, CLI-speaking errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from galaxygen.config import PACKAGED_CONFIGS, apply_overrides, load_yaml, parse_yaml
from galaxygen.errors import ConfigError
from galaxygen.models.two_phase.task import parse_config


def test_yaml_12_floats_load_as_numbers_from_files_and_overrides(tmp_path):
    text = (PACKAGED_CONFIGS / "two-phase-small.yaml").read_text()
    assert text.count("lr: 1.0e-2") == 2
    path = tmp_path / "c.yaml"
    path.write_text(text.replace("lr: 1.0e-2", "lr: 1e-3", 1))
    config = apply_overrides(load_yaml(path), ["regressor.train.lr=2e-4", "target_recall=9E-1"])
    cfg = parse_config(config)
    assert cfg.classifier.train.lr == 1e-3 and cfg.regressor.train.lr == 2e-4 and cfg.target_recall == 0.9


def test_yaml_floats_leave_other_scalars_alone():
    assert parse_yaml("[1, 1e3, .5e-2, 1.0e+2, -2E-3, 7, 0x10, 1e, e3, abc, true, null]") == \
        [1, 1000.0, 0.005, 100.0, -0.002, 7, 16, "1e", "e3", "abc", True, None]
    assert isinstance(parse_yaml("7"), int)


@pytest.mark.parametrize("name", ["two-phase-small.yaml", "two-phase-small"])
def test_bare_name_is_the_packaged_config(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    assert load_yaml(name) == load_yaml(PACKAGED_CONFIGS / "two-phase-small.yaml")


def test_a_file_here_wins_over_the_packaged_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "two-phase-small.yaml").write_text("task: two_phase\nseed: 7\n")
    assert load_yaml("two-phase-small.yaml") == {"task": "two_phase", "seed": 7}


def test_unknown_config_name_lists_the_packaged_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"two-phases\.yaml: config file not found .*two-phase-small\.yaml"):
        load_yaml("two-phases.yaml")


@pytest.mark.parametrize("override, message", [
    ("classifier.train.steps=0", "classifier.train.steps: expected >= 1, got 0"),
    ("regressor.train.early_stopping.patience=-1", "regressor.train.early_stopping.patience: expected >= 0"),
    ("classifier.train.lr=fast", "classifier.train.lr: expected a number, got 'fast'"),
    ("regressor.train.bogus=1", "regressor.train: unknown key(s) ['bogus']"),
    ("data.crop=0", "data.crop: expected >= 1 voxel, got 0"),
])
def test_errors_name_the_full_key_path(override, message):
    config = apply_overrides(load_yaml("two-phase-small"), [override])
    with pytest.raises(ConfigError) as err:
        parse_config(config)
    assert str(err.value).startswith(message)


def test_error_from_a_file_names_the_file_then_the_key():
    config = apply_overrides(load_yaml("two-phase-small"), ["classifier.train.steps=0"])
    with pytest.raises(ConfigError, match=r"^run/config\.json: classifier\.train\.steps: expected >= 1"):
        parse_config(config, where="run/config.json")


def test_missing_required_key_is_named():
    from galaxygen.config import from_dict
    from galaxygen.sources.camels.camels import CamelsIngestConfig

    with pytest.raises(ConfigError, match=r"^config: missing key\(s\) \['suite'\]$"):
        from_dict(CamelsIngestConfig, {"grid": 64})


@pytest.mark.parametrize("argv, message", [
    (["simulate", "OUT", "--box-size", "-1"], "--box-size: expected > 0 Mpc/h"),
    (["simulate", "OUT", "--cola-steps", "0"], "--cola-steps and --pm-steps must be >= 1"),
    (["simulate", "OUT", "--power-spectrum", "eh", "--redshift", "60"], "--redshift: expected in [0, --z-start="),
    (["ingest", "camels", "ROOT", "OUT", "--suite", "X", "--chunk", "0"], "--chunk: expected >= 1"),
    (["ingest", "cmd", "ROOT", "OUT", "--suite", "X", "--n-particles-side", "0"], "--n-particles-side: expected"),
])
def test_option_errors_speak_cli(tmp_path, argv, message):
    proc = subprocess.run([sys.executable, "-m", "galaxygen", *argv], capture_output=True, text=True, cwd=tmp_path)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith(f"galaxygen {argv[0]}: error: ")
    assert message in lines[0]
    assert not (tmp_path / "OUT").exists()
