"""Small helpers shared by the sub-commands' work modules: printing JSON, naming options in errors."""

from __future__ import annotations

import contextlib
import json
import re
import sys
from typing import Any, Iterator, Mapping

from galaxygen.errors import ConfigError
from galaxygen.io import to_jsonable, write_json


def emit_json(obj: Any, out: str | None = None, overwrite: bool = True) -> None:
    """Print `obj` as JSON on stdout, or write it atomically to `out` ('-' = stdout)."""
    if out in (None, "-"):
        json.dump(to_jsonable(obj), sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
    else:
        write_json(out, obj, overwrite=overwrite)


@contextlib.contextmanager
def options_named(renamed: Mapping[str, str] | None = None) -> Iterator[None]:
    """Make a config built from command-line options speak of options, not of fields.

    In a ConfigError raised inside, the key that leads the message and every snake_case key
    become options: ``box_size: ...`` -> ``--box-size: ...``; `renamed` maps keys whose option is
    spelled otherwise (``{"power": "--power-spectrum"}``).
    """
    renamed = dict(renamed or {})

    def option(key: str) -> str:
        return renamed.get(key, "--" + key.replace("_", "-"))

    try:
        yield
    except ConfigError as exc:
        message = re.sub(r"(?<![\w.-])([a-z]+(?:_[a-z0-9]+)+)(?![\w-])", lambda m: option(m[1]), str(exc))
        head, sep, rest = message.partition(":")
        if sep and re.fullmatch(r"[a-z]+", head):
            message = option(head) + sep + rest
        raise ConfigError(message) from exc

