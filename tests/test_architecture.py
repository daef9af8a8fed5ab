"""The layering of the package (docs/architecture.md), enforced by reading every module's imports.

A module may import galaxygen modules of its own unit (the top-level module or sub-package it lives
in) or of a strictly lower layer; dotted module names in strings (importlib, monkeypatch targets)
count as imports too.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import galaxygen

ROOT = Path(galaxygen.__file__).parent

#: Layers from the bottom up; each unit is a top-level module or sub-package of galaxygen.
LAYERS = [
    ["__init__", "errors", "constants", "progress"],
    ["io", "config", "device", "interrupts", "fingerprint"],
    ["outputs", "mesh", "box"],
    ["cosmology", "stats", "runner", "prediction", "catalog"],
    ["halos", "synthetic"],
    ["sources"],
    ["training"],
    ["models"],
    ["report"],
    ["evaluate"],
    ["pipelines"],
    ["cli"],
    ["__main__"],
]
LAYER = {unit: i for i, units in enumerate(LAYERS) for unit in units}
DOTTED = re.compile(r"^galaxygen(\.[a-z_][a-z_0-9]*)+$")


def _unit(module: str) -> str:
    """Top-level unit of a dotted module name below galaxygen ('galaxygen' itself: '__init__')."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _is_module(dotted: str) -> bool:
    """Whether a dotted name below galaxygen names one of its modules or packages."""
    rel = Path(*dotted.split(".")[1:])
    return (ROOT / rel).with_suffix(".py").exists() or (ROOT / rel / "__init__.py").exists()


def _imports(path: Path) -> set[str]:
    """galaxygen modules `path` imports: import statements, from-imports and dotted strings."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("galaxygen")}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and \
                node.module.startswith("galaxygen"):
            if node.module == "galaxygen":  # from galaxygen import x: x is a unit or a name of __init__
                out |= {f"galaxygen.{a.name}" if (ROOT / a.name).exists() or (ROOT / f"{a.name}.py").exists()
                        else "galaxygen" for a in node.names}
            else:
                out.add(node.module)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and DOTTED.match(node.value) \
                and _is_module(node.value):  # not a format name such as "galaxygen.hod"
            out.add(node.value)
    return out


def _modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        out.append((".".join(("galaxygen",) + rel.parts), path))
    return out


def test_every_unit_has_a_layer():
    units = {_unit(name) for name, _ in _modules()}
    assert units <= set(LAYER), f"units without a layer in LAYERS: {sorted(units - set(LAYER))}"


def test_imports_go_down_the_layers():
    bad = []
    for name, path in _modules():
        unit = _unit(name)
        for target in _imports(path):
            other = _unit(target)
            if other == unit:
                continue
            if other not in LAYER or LAYER[other] >= LAYER[unit]:
                bad.append(f"{name} imports {target}")
    assert not bad, "imports against the layering (docs/architecture.md):\n" + "\n".join(sorted(bad))


def test_models_do_not_import_each_other():
    """models/: each model family (hod, two_phase, vdm) stands alone; only the registry sees them all."""
    bad = []
    for name, path in _modules():
        parts = name.split(".")
        if parts[1:2] != ["models"] or len(parts) < 4:
            continue
        for target in _imports(path):
            t = target.split(".")
            if t[1:2] == ["models"] and len(t) > 2 and t[2] != parts[2]:
                bad.append(f"{name} imports {target}")
    assert not bad, "\n".join(sorted(bad))


def test_the_reader_sees_string_imports(tmp_path):
    """The rule covers imports written as strings (importlib), not only import statements."""
    probe = tmp_path / "probe.py"
    probe.write_text("import importlib\nimportlib.import_module('galaxygen.models.vdm.task')\n"
                     "from galaxygen.box import read_box\n")
    assert _imports(probe) == {"galaxygen.models.vdm.task", "galaxygen.box"}


def test_the_documented_layers_are_these():
    """docs/architecture.md draws LAYERS: one diagram row per layer, top down, its units in order."""
    doc = (Path(__file__).resolve().parents[1] / "docs/architecture.md").read_text()
    diagram = doc.split("```")[1]
    rows = []
    for line in diagram.splitlines():
        layer, *cells = re.split(r"\s{2,}", line.strip())
        if layer.isdigit():
            units = [c for c in cells if re.fullmatch(r"[a-z_]+(/|\.py)", c)]
            rows.append((int(layer), [u.removesuffix("/").removesuffix(".py") for u in units]))
    assert rows == [(i, units) for i, units in reversed(list(enumerate(LAYERS)))]
