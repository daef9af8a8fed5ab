"""Distributed data parallel (DDP) helpers: one process, `torchrun` on one node, or many nodes.

`torchrun --nproc-per-node K -m galaxygen train ...` sets the environment variables RANK,
WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; :func:`init_distributed` reads them and joins
the process group (NCCL on CUDA, gloo on CPU). Multi-node runs use torchrun's own rendezvous flags
(``--nnodes``, ``--node-rank``, ``--rdzv-endpoint``...). Without these variables everything runs
in one process and nothing here needs a flag. Only rank 0 writes files (:func:`is_main`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

from galaxygen.device import resolve_device
from galaxygen.errors import ConfigError


_CURRENT = None


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits: global rank, world size, rank on its node and its device."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"environment variable {name}={raw!r}: expected an integer") from exc


def init_distributed(device: str | torch.device | None = "auto", backend: str | None = None) -> DistInfo:
    """Join the process group described by torchrun's environment variables, if any.

    Parameters
    ----------
    device : 'auto', 'cpu', 'cuda' or a torch.device
        'auto' picks CUDA when available. On CUDA each process takes ``cuda:LOCAL_RANK``.
    backend : 'nccl', 'gloo' or None
        None: NCCL for CUDA, gloo for CPU.

    Returns
    -------
    DistInfo
        rank 0 / world 1 when not launched by torchrun (no process group is created).
    """
    world = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", 0)
    dev = resolve_device(device)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", local_rank if world > 1 else torch.cuda.current_device())
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if world > 1 and not (dist.is_available() and dist.is_initialized()):
        if not dist.is_available():
            raise ConfigError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
        backend = backend or ("nccl" if dev.type == "cuda" else "gloo")
        dist.init_process_group(backend=backend, rank=rank, world_size=world)
    global _CURRENT
    _CURRENT = DistInfo(rank=rank, world_size=world, local_rank=local_rank, device=dev)
    return _CURRENT


def current() -> DistInfo | None:
    """The DistInfo returned by the last :func:`init_distributed` of this process, or None."""
    return _CURRENT


def is_main() -> bool:
    """True on rank 0, or when not distributed."""
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def barrier() -> None:
    """Wait for every rank (no-op in one process)."""
    if world_size() > 1:
        dist.barrier()


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank `src`'s `obj` on every rank (identity in one process)."""
    if world_size() == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    """Sum a tensor over ranks (in place, returned); identity in one process."""
    if world_size() > 1:
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def all_reduce_mean(values: torch.Tensor) -> torch.Tensor:
    """Mean of a tensor over ranks; identity in one process."""
    return all_reduce_sum(values) / world_size() if world_size() > 1 else values


def wrap_model(model: torch.nn.Module, info: DistInfo) -> torch.nn.Module:
    """DistributedDataParallel around `model` when distributed, else `model` itself.

    BatchNorm layers become SyncBatchNorm on CUDA so that the statistics cover the global batch.
    """
    if not info.distributed:
        return model
    if info.device.type == "cuda":
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return DDP(model, device_ids=[info.device.index], output_device=info.device.index)
    return DDP(model)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside a DDP (or torch.compile) wrapper."""
    while hasattr(model, "module") or hasattr(model, "_orig_mod"):
        model = getattr(model, "module", None) or getattr(model, "_orig_mod")
    return model


def cleanup() -> None:
    """Leave the process group, if one was joined."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
