"""What the ingest commands share: one box per simulation on `galaxygen.runner`, and their report.

A box whose file already exists is skipped (unless `overwrite`), so an interrupted ingest resumes
where it stopped. A box that fails (missing file, corrupt HDF5, wrong units, ...) is reported by
name with the reason and the others still run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from galaxygen import runner
from galaxygen.box import Box, write_box
from galaxygen.errors import ConfigError

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
    meta: dict[str, dict] = field(default_factory=dict, repr=False)  # name -> meta of each box written

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


def build_and_write(build: Callable[[], Box], path: Path, overwrite: bool, dm_only: bool = False) -> dict:
    """Build one box and write it to `path` (a `galaxygen.runner` task; `dm_only`: see `write_box`);
    returns the box's meta."""
    box = build()
    write_box(path, box, overwrite=overwrite, dm_only=dm_only)
    return dict(box.meta)


def run_boxes(jobs: Sequence[tuple[str, Callable[[], Box]]], out_dir: str | Path, *, overwrite: bool = False,
              desc: str = "ingest", dm_only: bool = False, scale: runner.Scale | None = None) -> IngestReport:
    """Build and write one box per job ``(name, build)`` into ``out_dir/<name>.h5``: one after another,
    or `scale`'s shard of them on its backend (a Dask cluster: `build` travels there by cloudpickle,
    so it should hold paths, not data).

    Existing files are skipped unless `overwrite`, which replaces only box files `galaxygen ingest`
    wrote (recorded in the folder, see :mod:`galaxygen.outputs`; all checked before any work).
    Exceptions from `build` or the writer are caught per box and recorded as ``failed[name] =
    reason`` (`galaxygen.runner.describe`); KeyboardInterrupt and bugs still stop the run. `dm_only`:
    boxes are written without ``fields/galaxies`` (`galaxygen.box.write_box`).
    """
    out_dir = Path(out_dir)
    tasks = [runner.Task(name, build_and_write, (build, out_dir / f"{name}.h5", overwrite, dm_only),
                         output=out_dir / f"{name}.h5") for name, build in jobs]
    scale = scale or runner.Scale()
    planned = runner.plan(tasks, command=COMMAND, overwrite=overwrite, shard=scale.shard)
    out_dir.mkdir(parents=True, exist_ok=True)
    done = runner.run(planned, backend=scale.backend(len(planned.todo)), desc=desc, unit="box")
    return IngestReport(out_dir=str(out_dir), written=list(done.results), skipped=done.skipped,
                        failed={name: runner.describe(exc) for name, exc in done.failed.items()}, meta=done.results)
