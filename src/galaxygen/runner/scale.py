"""`Scale`: which shard of the tasks this process takes, and the backend they run on."""

from __future__ import annotations

from dataclasses import dataclass

from galaxygen.errors import GalaxygenError
from galaxygen.runner.cluster import DaskBackend, import_distributed
from galaxygen.runner.pool import local
from galaxygen.runner.tasks import Backend

@dataclass(frozen=True)
class Scale:
    """Where the tasks run: `shard` (K, N) takes tasks i with i mod N = K - 1 (None: all); `dask`, the
    address of a Dask cluster (``local:W`` or ``tcp://host:8786``; None: this machine, `workers`
    processes)."""

    workers: int = 1
    shard: tuple[int, int] | None = None
    dask: str | None = None

    def __post_init__(self) -> None:
        if self.shard is not None and not 1 <= self.shard[0] <= self.shard[1]:
            raise GalaxygenError(f"--shard: expected K/N with 1 <= K <= N, got {self.shard[0]}/{self.shard[1]}")
        if self.workers < 1:
            raise GalaxygenError(f"--workers: expected >= 1, got {self.workers}")
        if self.dask:
            import_distributed()  # say what to install before any work

    def backend(self, n_tasks: int) -> Backend:
        return DaskBackend(self.dask) if self.dask else local(self.workers, n_tasks)
