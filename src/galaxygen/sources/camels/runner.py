"""The loop shared by the ingest commands: one box per simulation, resumable, failures collected.

A box whose file already exists is skipped (unless `overwrite`), so an interrupted ingest resumes
where it stopped. A box that fails (missing file, corrupt HDF5, wrong units, ...) is reported by
name with the reason and the others still run.
"""

from __future__ import annotations

import re
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from galaxygen.box import Box, write_box
from galaxygen.errors import ConfigError, GalaxygenError
from galaxygen.outputs import check_file, record
from galaxygen.progress import progress

COMMAND = "ingest"  # the name under which boxes are recorded as written (galaxygen.outputs)


@dataclass
class IngestReport:
    """What an ingest run did: box files written, skipped (already there) and failed (name -> reason),
    and warnings about what was written (e.g. parameters that are unknown)."""

    out_dir: str
    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed

    def as_dict(self) -> dict:
        return {"out_dir": self.out_dir, "written": list(self.written), "skipped": list(self.skipped),
                "failed": dict(self.failed), "n_written": len(self.written), "n_skipped": len(self.skipped),
                "n_failed": len(self.failed), "warnings": list(self.warnings)}


def parse_index_list(text: str) -> tuple[int, ...]:
    """``"0-26"`` / ``"0-3,7,9"`` / ``"5"`` -> sorted unique indices (ranges inclusive)."""
    out: set[int] = set()
    for item in text.replace(" ", "").split(","):
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", item)
        if m is None:
            raise ConfigError(f"--sims: {item!r} is not an index or a range such as 0-26")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi < lo:
            raise ConfigError(f"--sims: range {item!r} runs backwards")
        out.update(range(lo, hi + 1))
    return tuple(sorted(out))


def run_boxes(jobs: Sequence[tuple[str, Callable[[], Box]]], out_dir: str | Path, *, overwrite: bool = False,
              desc: str = "ingest", dm_only: bool = False) -> IngestReport:
    """Build and write one box per job ``(name, build)`` into ``out_dir/<name>.h5``.

    Existing files are skipped unless `overwrite`, which replaces only box files `galaxygen ingest`
    wrote (recorded in the folder, see :mod:`galaxygen.outputs`; all checked before any work).
    Exceptions from `build` or the writer are caught per box and recorded as ``failed[name] =
    reason`` (the message of a GalaxygenError, or the exception type, message and the line it came
    from for anything else); KeyboardInterrupt still stops the run. `dm_only`: boxes are written
    without ``fields/galaxies`` (`galaxygen.box.write_box`).
    """
    out_dir = Path(out_dir)
    if overwrite and out_dir.is_dir():
        for name, _ in jobs:
            check_file(out_dir / f"{name}.h5", COMMAND, overwrite=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = IngestReport(out_dir=str(out_dir))
    for name, build in progress(jobs, desc=desc, total=len(jobs), unit="box"):
        path = out_dir / f"{name}.h5"
        if path.exists() and not overwrite:
            report.skipped.append(name)
            continue
        try:
            box = build()
            write_box(path, box, overwrite=overwrite, dm_only=dm_only)
        except GalaxygenError as exc:
            report.failed[name] = str(exc)
        except (OSError, KeyError, ValueError, IndexError, TypeError, RuntimeError, MemoryError) as exc:
            where = traceback.extract_tb(exc.__traceback__)[-1]
            report.failed[name] = f"{type(exc).__name__}: {exc} (at {Path(where.filename).name}:{where.lineno})"
        else:
            record(out_dir, COMMAND, [path.name])
            report.written.append(name)
    return report
