"""Frozen dataclass configs: build from dicts / YAML with checked keys and types, dump to JSON.

Every config class is a frozen dataclass that validates itself in ``__post_init__``. This module
turns nested plain data into such classes (nested dataclasses, tuples, optionals, literals), names
the offending key on any error, and applies ``a.b.c=value`` overrides from the command line.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from pathlib import Path
from typing import Any, Mapping, TypeVar

import yaml

from galaxygen.errors import ConfigError

C = TypeVar("C")


def from_dict(cls: type[C], data: Mapping[str, Any] | None, where: str = "config") -> C:
    """Build dataclass `cls` from `data`; unknown or missing keys and wrong types raise ConfigError.

    Messages name the full key path (``classifier.train.steps: expected >= 1, got 0``); `where`
    names the source: the default "config" adds nothing, a file name is put in front.
    """
    try:
        return _build(cls, data, "")
    except ConfigError as exc:
        if where == "config":
            raise
        raise ConfigError(f"{where}: {exc}") from exc


def _build(cls: type[C], data: Mapping[str, Any] | None, key: str) -> C:
    """`from_dict` for the section at key path `key` ("" = the top level)."""
    label = key or "config"
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{label}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{label}: unknown key(s) {unknown}; allowed: {sorted(fields)}")
    missing = sorted(name for name, f in fields.items() if name not in data
                     and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
    if missing:
        raise ConfigError(f"{label}: missing key(s) {missing}")
    kwargs = {name: _convert(hints[name], value, _child(key, name)) for name, value in data.items()}
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        raise ConfigError(_qualify(key, str(exc))) from exc
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{label}: {exc}") from exc


def _child(key: str, name: str) -> str:
    return f"{key}.{name}" if key else name


_KEY_PATH = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")


def _qualify(key: str, message: str) -> str:
    """A ``__post_init__`` message with its leading key path made full.

    A section's checks name keys relative to the section, often led by the section's usual name:
    ``train.steps: ...`` from the section at ``classifier.train`` becomes
    ``classifier.train.steps: ...``, and ``steps: ...`` becomes the same.
    """
    head, sep, rest = message.partition(":")
    if not key or not sep or not _KEY_PATH.fullmatch(head):
        return message
    outer, inner = key.split("."), head.split(".")
    overlap = next((n for n in range(min(len(outer), len(inner)), 0, -1) if outer[-n:] == inner[:n]), 0)
    return ".".join(outer[:len(outer) - overlap] + inner) + sep + rest


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, where)
            except ConfigError as exc:
                errors.append(str(exc))
        if len(errors) == 1:
            raise ConfigError(errors[0])
        forms = "; ".join(e.removeprefix(f"{where}: ") for e in errors)
        raise ConfigError(f"{where}: {value!r} is none of the allowed forms ({forms})")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{where}: {value!r} is not one of {list(args)}")
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        return _build(tp, value, where)
    if origin in (tuple, list):
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            items = [_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)]
        elif origin is tuple and args:
            if len(args) != len(value):
                raise ConfigError(f"{where}: expected {len(args)} items, got {len(value)}")
            items = [_convert(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value))]
        else:
            items = [_convert(args[0] if args else Any, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def to_dict(cfg: Any) -> dict[str, Any]:
    """A dataclass config as plain data (tuples become lists), for JSON / YAML."""
    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, Path):
            return str(v)
        return v
    return plain(cfg)


PACKAGED_CONFIGS = Path(__file__).resolve().parent / "configs"


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader that also reads YAML 1.2 floats such as ``1e-3`` as numbers.

    (PyYAML resolves YAML 1.1, whose floats need a dot: it reads ``1e-3`` as a string.)
    """


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."))


def parse_yaml(text: str) -> Any:
    """Parse YAML text with the config loader (safe; YAML 1.2 floats)."""
    return yaml.load(text, Loader=_Loader)


def find_config(name: str | Path) -> Path:
    """The config file `name`; a bare name that is no file here (``two-phase-small``, with or
    without ``.yaml``) names a packaged config (galaxygen/configs/)."""
    path = Path(name)
    if path.is_file() or path.parent != Path("."):
        return path
    for candidate in (PACKAGED_CONFIGS / path.name, PACKAGED_CONFIGS / f"{path.name}.yaml"):
        if candidate.is_file():
            return candidate
    return path


def packaged_configs() -> list[str]:
    """Names of the packaged configs."""
    return sorted(p.name for p in PACKAGED_CONFIGS.glob("*.yaml"))


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML (or JSON) mapping (a bare name may name a packaged config, see `find_config`);
    a clear error for a missing file or bad syntax."""
    path = find_config(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found (nor a packaged config: {', '.join(packaged_configs())})")
    try:
        data = parse_yaml(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def apply_overrides(data: Mapping[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` overrides (value parsed as YAML) to nested plain data."""
    out = _deepcopy(dict(data))
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected KEY=VALUE, e.g. optim.lr=3e-4")
        key, raw = item.split("=", 1)
        try:
            value = parse_yaml(raw)
        except yaml.YAMLError as exc:
            raise ConfigError(f"override {item!r}: value is not valid YAML ({exc})") from exc
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"override {item!r}: {part!r} is not a section")
            node = child
        node[parts[-1]] = value
    return out


def _deepcopy(d: Any) -> Any:
    if isinstance(d, dict):
        return {k: _deepcopy(v) for k, v in d.items()}
    if isinstance(d, list):
        return [_deepcopy(v) for v in d]
    return d


def require(condition: bool, message: str) -> None:
    """Raise ConfigError(message) unless `condition` (for ``__post_init__`` validation)."""
    if not condition:
        raise ConfigError(message)
